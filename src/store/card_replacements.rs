//! What a paid card replacement records, in the same transaction as the new card: the payment
//! either settles the customer's outstanding charge (when that charge can still be settled:
//! failed, not being retried, its subscription still waiting for it) or is a verification
//! payment, recorded as a charge of its own and refunded at once. The checkout's `card_outcome`
//! says which, so that a second activation of the same payment finds the same answer.

use super::db::{Stmt, stmt};
use super::subscriptions::after_payment_set;
use crate::params;

pub struct Paid<'a> {
    pub checkout_id: &'a str,
    pub order_id: &'a str,
    pub payment_id: &'a str,
    pub payment_method_id: &'a str,
    /// The verification charge's id and key, used only when the payment settles nothing.
    pub verification_charge_id: &'a str,
    pub description: &'a str,
    pub now: i64,
    pub wall_now: i64,
}

/// The statements, in order. Each is conditioned so that running them again changes nothing.
pub fn record(p: &Paid<'_>) -> Vec<Stmt> {
    vec![
        // 1. The outstanding charge is paid by this order, if nothing else is paying it.
        stmt(
            crate::sql!("UPDATE charges SET status = 'succeeded', order_id = ?1, payment_id = ?2,
                 payment_method_id = ?3, next_retry_at = NULL, settled_at = ?4, updated_at = ?4
             WHERE id = (SELECT settles_charge_id FROM checkouts
                         WHERE id = ?5 AND status = 'pending' AND purpose = 'card')
               AND status = 'failed'
               AND amount = (SELECT amount FROM checkouts WHERE id = ?5)
               AND currency = (SELECT currency FROM checkouts WHERE id = ?5)
               AND (lease_until IS NULL OR lease_until < ?6)
               AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = charges.subscription_id
                             AND s.status IN ('past_due', 'unpaid')
                             AND s.current_period = charges.period_index)"),
            params![p.order_id, p.payment_id, p.payment_method_id, p.now, p.checkout_id, p.wall_now],
        ),
        // 2. Its subscription recovers, exactly as after a successful retry.
        stmt(
            concat!(
                after_payment_set!(),
                "WHERE id = (SELECT subscription_id FROM charges WHERE order_id = ?
                             AND status = 'succeeded' AND payment_id = ?)
                   AND current_period = (SELECT period_index FROM charges WHERE order_id = ?
                             AND status = 'succeeded' AND payment_id = ?)
                   AND status IN ('active', 'past_due', 'unpaid')"
            ),
            params![p.now, p.order_id, p.payment_id, p.order_id, p.payment_id],
        ),
        // 3. The checkout is paid, and says what its payment became.
        stmt(
            crate::sql!("UPDATE checkouts SET status = 'paid', completed_at = ?1, updated_at = ?1,
                 card_outcome = CASE WHEN EXISTS (SELECT 1 FROM charges
                                   WHERE id = checkouts.settles_charge_id AND order_id = ?2
                                     AND status = 'succeeded')
                                 THEN 'settled' ELSE 'verified' END
             WHERE id = ?3 AND status = 'pending'"),
            params![p.now, p.order_id, p.checkout_id],
        ),
        // 4. A verification payment is a charge of its own (refunded right after).
        stmt(
            crate::sql!("INSERT INTO charges (id, charge_key, customer_ref, subscription_id, period_index, kind,
                 amount, currency, description, status, order_id, payment_id, payment_method_id,
                 attempts, created_at, updated_at, settled_at)
             SELECT ?1, 'checkout:' || c.id, c.customer_ref, NULL, NULL, 'checkout', c.amount,
                 c.currency, ?2, 'succeeded', ?3, ?4, ?5, 1, ?6, ?6, ?6
             FROM checkouts c WHERE c.id = ?7 AND c.card_outcome = 'verified'
             ON CONFLICT (charge_key) DO NOTHING"),
            params![
                p.verification_charge_id,
                p.description,
                p.order_id,
                p.payment_id,
                p.payment_method_id,
                p.now,
                p.checkout_id
            ],
        ),
        // 5. A charge parked for this replacement that it did not settle goes back to dunning,
        //    now, with the card now on file.
        stmt(
            crate::sql!("UPDATE charges SET next_retry_at = ?1, updated_at = ?1
             WHERE id = (SELECT settles_charge_id FROM checkouts
                         WHERE id = ?2 AND card_outcome = 'verified')
               AND status = 'failed' AND next_retry_at IS NULL
               AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = charges.subscription_id
                             AND s.status IN ('past_due', 'unpaid')
                             AND s.current_period = charges.period_index)"),
            params![p.now, p.checkout_id],
        ),
    ]
}

crate::row! {
    /// The customer's oldest charge that a new card could pay now: failed, of a subscription that
    /// waits for it (`past_due` or `unpaid`), and not being retried at this moment.
    #[derive(Debug, Clone)]
    pub struct Outstanding {
        pub id: String,
        pub amount: i64,
        pub currency: String,
        pub description: String,
    }
}

pub async fn outstanding(
    db: super::db::Db<'_>,
    customer_ref: &str,
    wall_now: i64,
) -> Result<Option<Outstanding>, recurring_core::http::problem::Problem> {
    db.first(
        crate::sql!(
            "SELECT c.id, c.amount, c.currency, c.description
         FROM charges c JOIN subscriptions s ON s.id = c.subscription_id
         WHERE c.customer_ref = ? AND s.customer_ref = c.customer_ref AND c.status = 'failed'
           AND s.status IN ('past_due', 'unpaid') AND s.current_period = c.period_index
           AND (c.lease_until IS NULL OR c.lease_until < ?)
         ORDER BY c.created_at, c.id LIMIT 1"
        ),
        params![customer_ref, wall_now],
    )
    .await
}

/// The currency a verification payment is taken in: the customer's latest subscription's.
pub async fn customer_currency(
    db: super::db::Db<'_>,
    customer_ref: &str,
) -> Result<Option<String>, recurring_core::http::problem::Problem> {
    crate::row! {
        struct Row {
            currency: String,
        }
    }
    let row: Option<Row> = db
        .first(
            crate::sql!(
                "SELECT currency FROM subscriptions WHERE customer_ref = ?
             ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            params![customer_ref],
        )
        .await?;
    Ok(row.map(|r| r.currency))
}
