//! Customer balances: what the merchant owes a customer (a downgrade's unused part), used by
//! their next charges. Every change is a transaction row and a guarded update in one batch, so
//! a balance is never spent twice and never lost.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct BalanceRow {
        pub currency: String,
        pub amount: i64,
        pub updated_at: i64,
    }
}

/// A customer's balance in `currency` (0 when they have none).
pub async fn of(db: Db<'_>, customer_ref: &str, currency: &str) -> Result<i64, Problem> {
    let row: Option<BalanceRow> = db
        .first(
            crate::sql!(
                "SELECT currency, amount, updated_at FROM customer_balances
                 WHERE customer_ref = ? AND currency = ?"
            ),
            params![customer_ref, currency],
        )
        .await?;
    Ok(row.map_or(0, |r| r.amount))
}

pub async fn all_of(db: Db<'_>, customer_ref: &str) -> Result<Vec<BalanceRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT currency, amount, updated_at FROM customer_balances
             WHERE customer_ref = ? ORDER BY currency"
        ),
        params![customer_ref],
    )
    .await
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct TransactionRow {
        pub id: String,
        pub currency: String,
        pub amount: i64,
        pub reason: String,
        pub subscription_id: Option<String>,
        pub charge_id: Option<String>,
        pub refund_id: Option<String>,
        pub created_at: i64,
    }
}

/// A customer's balance transactions, newest first.
pub async fn transactions(
    db: Db<'_>,
    customer_ref: &str,
    limit: u32,
) -> Result<Vec<TransactionRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT id, currency, amount, reason, subscription_id, charge_id, refund_id,
               created_at
             FROM balance_transactions WHERE customer_ref = ?
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ),
        params![customer_ref, limit],
    )
    .await
}

/// Positive balances in `currency` of the given customers (`refs` a JSON array).
pub async fn positive_of(
    db: Db<'_>,
    refs_json: &str,
    currency: &str,
) -> Result<Vec<(String, i64)>, Problem> {
    crate::row! {
        struct Row {
            customer_ref: String,
            amount: i64,
        }
    }
    let rows: Vec<Row> = db
        .all(
            crate::sql!(
                "SELECT customer_ref, amount FROM customer_balances
                 WHERE currency = ? AND amount > 0
                   AND customer_ref IN (SELECT value FROM json_each(?))"
            ),
            params![currency, refs_json],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.customer_ref, r.amount))
        .collect())
}

/// Credits `amount` to a customer's balance, as transaction `id`, only if the change
/// `change_id` of the subscription happened in the same batch: the credit is written with the
/// change it pays back, or not at all.
pub fn credit(
    id: &str,
    customer_ref: &str,
    currency: &str,
    amount: i64,
    subscription_id: &str,
    change_id: &str,
    now: i64,
) -> Vec<Stmt> {
    vec![
        stmt(
            crate::sql!(
                "INSERT INTO balance_transactions (id, customer_ref, currency, amount, reason,
                   subscription_id, claim, created_at)
                 SELECT ?1, ?2, ?3, ?4, 'proration', ?5, ?7, ?6
                 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?5 AND last_change = ?7)"
            ),
            params![
                id,
                customer_ref,
                currency,
                amount,
                subscription_id,
                now,
                change_id
            ],
        ),
        stmt(
            crate::sql!(
                "INSERT INTO customer_balances (customer_ref, currency, amount, updated_at)
                 SELECT ?1, ?2, ?3, ?4
                 WHERE EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?5)
                 ON CONFLICT (customer_ref, currency)
                 DO UPDATE SET amount = amount + excluded.amount, updated_at = excluded.updated_at"
            ),
            params![customer_ref, currency, amount, now, id],
        ),
    ]
}

/// One use of a customer's balance: `amount` of it, as transaction `id` (deterministic: a
/// period or a change is paid once), by the attempt `claim` (random: each attempt its own).
pub struct Spend<'a> {
    pub id: &'a str,
    pub claim: &'a str,
    pub customer_ref: &'a str,
    pub currency: &'a str,
    pub amount: i64,
    pub subscription_id: Option<&'a str>,
    pub period_index: Option<u32>,
    pub charge_id: Option<&'a str>,
    pub now: i64,
}

/// What a spend is conditional on, besides the balance holding it.
pub enum Guard<'a> {
    /// The subscription stands at this period (after the batch's own advance).
    AtPeriod(&'a str, u32),
    /// The subscription's change `change_id` happened in this batch.
    Changed(&'a str, &'a str),
}

/// Spends the balance if it still holds `amount` when the batch runs and `guard` holds. The
/// charge statements after it test [`SPENT`] with `(id, claim)`.
pub fn spend(s: &Spend<'_>, guard: Guard<'_>) -> Vec<Stmt> {
    let (guard_sql, subscription_id, guard_value) = match guard {
        Guard::AtPeriod(id, period) => (
            crate::sql!(
                "INSERT INTO balance_transactions (id, customer_ref, currency, amount, reason,
                   subscription_id, charge_id, period_index, claim, created_at)
                 SELECT ?1, ?2, ?3, -?4, 'applied', ?5, ?6, ?7, ?8, ?9
                 WHERE (SELECT amount FROM customer_balances
                        WHERE customer_ref = ?2 AND currency = ?3) >= ?4
                   AND EXISTS (SELECT 1 FROM subscriptions WHERE id = ?10 AND current_period = ?11)
                 ON CONFLICT (id) DO NOTHING"
            ),
            id,
            super::db::P::from(period),
        ),
        Guard::Changed(id, change_id) => (
            crate::sql!(
                "INSERT INTO balance_transactions (id, customer_ref, currency, amount, reason,
                   subscription_id, charge_id, period_index, claim, created_at)
                 SELECT ?1, ?2, ?3, -?4, 'applied', ?5, ?6, ?7, ?8, ?9
                 WHERE (SELECT amount FROM customer_balances
                        WHERE customer_ref = ?2 AND currency = ?3) >= ?4
                   AND EXISTS (SELECT 1 FROM subscriptions WHERE id = ?10 AND last_change = ?11)
                 ON CONFLICT (id) DO NOTHING"
            ),
            id,
            super::db::P::from(change_id),
        ),
    };
    let mut insert_params = params![
        s.id,
        s.customer_ref,
        s.currency,
        s.amount,
        s.subscription_id,
        s.charge_id,
        s.period_index,
        s.claim,
        s.now,
        subscription_id
    ];
    insert_params.push(guard_value);
    vec![
        stmt(guard_sql, insert_params),
        stmt(
            crate::sql!(
                "UPDATE customer_balances SET amount = amount - ?, updated_at = ?
                 WHERE customer_ref = ? AND currency = ?
                   AND EXISTS (SELECT 1 FROM balance_transactions WHERE id = ? AND claim = ?)"
            ),
            params![s.amount, s.now, s.customer_ref, s.currency, s.id, s.claim],
        ),
    ]
}

/// The condition, for a statement of the same batch, that this attempt's spend happened (binds
/// the spend's id and claim).
pub const SPENT: &str = "EXISTS (SELECT 1 FROM balance_transactions WHERE id = ? AND claim = ?)";
