//! Runs the pure order watch (`billing::order_watch`) against the provider and the ledger: the
//! cron looks at every order we stopped using, with backoff, for a week; a webhook about such
//! an order looks at once.

use crate::context::Ctx;
use crate::params;
use crate::services::refunding;
use crate::store::charges::{self, ChargeRow, Lease, LeaseFor, NewCharge};
use crate::store::checkouts;
use crate::store::db::{Stmt, stmt};
use crate::store::incidents::{self, NewIncident};
use crate::store::orders;
use crate::store::refunds::{self, Reversal};
use crate::store::subscriptions;
use recurring_core::billing::decline::classify;
use recurring_core::billing::order_watch::{
    Adoption, Looked, Owner, WATCH, WatchIo, WatchedOrder, look,
};
use recurring_core::http::problem::Problem;
use recurring_core::psp::envelope::PspError;
use recurring_core::psp::types::OrderStatus;
use recurring_core::secure::digest_id;

/// Looks at the watched orders that are due; returns how many it looked at.
pub async fn look_at_due(ctx: &Ctx, limit: u32) -> Result<u32, Problem> {
    let now = ctx.now().await?;
    let due = orders::due(ctx.db(), now, limit).await?;
    let mut looked = 0;
    for order in &due {
        match look_at(ctx, order).await {
            Ok(_) => looked += 1,
            // One order the ledger cannot handle must not stop the others.
            Err(p) => ctx.log.warn(
                "watched order not looked at",
                crate::fields! {"orderId": order.order_id, "detail": p.detail},
            ),
        }
    }
    Ok(looked)
}

/// One look at a watched order, now.
pub async fn look_at(ctx: &Ctx, order: &WatchedOrder) -> Result<Looked, Problem> {
    let now = ctx.now().await?;
    let mut io = LedgerWatch { ctx, now };
    look(&mut io, order, now, &WATCH).await
}

struct LedgerWatch<'a> {
    ctx: &'a Ctx,
    now: i64,
}

impl LedgerWatch<'_> {
    async fn charge(&self, id: &str) -> Result<ChargeRow, Problem> {
        charges::get(self.ctx.db(), id)
            .await?
            .ok_or_else(|| Problem::internal("A watched order's charge is missing."))
    }

    /// The charge an unexpected payment on a checkout's order is recorded as, so that the
    /// money that moved (and its refund) shows in the customer's charges like any other.
    async fn unexpected_checkout_charge(
        &self,
        checkout_id: &str,
        order_id: &str,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<ChargeRow, Problem> {
        let checkout = checkouts::get(self.ctx.db(), checkout_id)
            .await?
            .ok_or_else(|| Problem::internal("A watched order's checkout is missing."))?;
        let id = self
            .ctx
            .shard_id("ch", &digest_id(&["unexpected", payment_id]));
        let key = format!("unexpected:{payment_id}");
        let description = format!("Unexpected payment on checkout {checkout_id}");
        let charge = NewCharge {
            id: &id,
            charge_key: &key,
            customer_ref: &checkout.customer_ref,
            subscription_id: None,
            period_index: None,
            kind: "checkout",
            amount: amount.unwrap_or(checkout.amount),
            currency: &checkout.currency,
            description: &description,
            metadata: None,
            request_hash: None,
            now: self.now,
        };
        self.ctx
            .db()
            .batch(vec![charges::record_settled(
                &charge, order_id, payment_id, None, None,
            )])
            .await?;
        self.charge(&id).await
    }
}

impl WatchIo for LedgerWatch<'_> {
    type Error = Problem;

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        self.ctx.psp().order_status(order_id).await
    }

    async fn adopt(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<Adoption, Problem> {
        let Owner::Charge { charge_id, .. } = &order.owner else {
            return Ok(Adoption::Declined);
        };
        let (now, wall) = (self.now, self.ctx.wall_ms());
        let lease = charges::lease_and_load(
            self.ctx.db(),
            charge_id,
            now,
            wall,
            self.ctx.config.charge_lease_ms,
            LeaseFor::Drive(None),
        )
        .await?;
        let leased = match lease {
            Lease::Taken(leased) => leased,
            Lease::Refused(charge) if charge.status == "succeeded" => {
                return Ok(if charge.payment_id.as_deref() == Some(payment_id) {
                    Adoption::Adopted
                } else {
                    Adoption::Declined
                });
            }
            Lease::Refused(_) => return Ok(Adoption::Busy),
        };
        let c = &leased.charge;
        // The charge's current order is lost: a payment there could never be seen, so adopting
        // this one could leave two. It is refunded instead; the charge waits for an operator.
        if c.attention.as_deref() == Some("orderLost") {
            charges::release_lease(self.ctx.db(), charge_id).await?;
            return Ok(Adoption::Declined);
        }
        if amount.is_some_and(|a| a != c.amount) {
            self.ctx.log.warn(
                "late payment of another amount",
                crate::fields! {"chargeId": charge_id, "reported": amount, "amount": c.amount},
            );
        }
        let mut batch: Vec<Stmt> = vec![
            stmt(
                crate::sql!("UPDATE charge_attempts SET status = 'succeeded', payment_id = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt =
                   (SELECT MAX(attempt) FROM charge_attempts WHERE charge_id = ? AND order_id = ?)"),
                params![payment_id, now, charge_id, charge_id, &order.order_id],
            ),
            // Whatever the charge still had in doubt elsewhere is over: its order is watched,
            // and a payment completing there is a second one, refunded.
            stmt(
                crate::sql!("UPDATE charge_attempts SET status = 'abandoned', updated_at = ?
                 WHERE charge_id = ? AND order_id != ?
                   AND status IN ('claimed', 'initiated', 'fenced')"),
                params![now, charge_id, &order.order_id],
            ),
            stmt(
                crate::sql!("UPDATE charges SET status = 'succeeded', payment_id = ?, order_id = ?,
                     failure_reason = NULL, decline_class = NULL, next_retry_at = NULL,
                     last_error = NULL, attention = NULL, settled_at = ?, updated_at = ?,
                     lease_until = NULL, queued_until = NULL
                 WHERE id = ? AND status != 'succeeded'"),
                params![payment_id, &order.order_id, now, now, charge_id],
            ),
            incidents::record(&NewIncident {
                key: format!("adopted:{payment_id}"),
                kind: "latePaymentAdopted",
                charge_id: Some(charge_id),
                order_id: Some(&order.order_id),
                payment_id: Some(payment_id),
                customer_ref: Some(&c.customer_ref),
                amount: amount.or(Some(c.amount)),
                currency: Some(&c.currency),
                detail: format!(
                    "A payment completed on order {} after the charge had given it up; it is \
                     the charge's payment.",
                    order.order_id
                ),
                now,
                ..NewIncident::default()
            }),
        ];
        for a in leased.attempts.iter().filter(|a| a.status.in_doubt()) {
            if let Some(other) = &a.order_id
                && *other != order.order_id
            {
                batch.push(orders::watch(other, "charge", charge_id, now));
            }
        }
        if let Some(subscription_id) = &c.subscription_id {
            batch.push(subscriptions::after_payment(
                subscription_id,
                c.period_index.unwrap_or(0),
                now,
            ));
        }
        self.ctx.db().batch(batch).await?;
        Ok(Adoption::Adopted)
    }

    async fn reverse(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Problem> {
        let db = self.ctx.db();
        let (charge, kind, detail) = match &order.owner {
            Owner::Charge { charge_id, .. } => {
                let charge = self.charge(charge_id).await?;
                let detail = format!(
                    "A second payment for this charge completed on order {} (a given-up order); \
                     it is refunded.",
                    order.order_id
                );
                (charge, "duplicateRefunded", detail)
            }
            Owner::Checkout { checkout_id, .. } => {
                let charge = self
                    .unexpected_checkout_charge(checkout_id, &order.order_id, payment_id, amount)
                    .await?;
                let detail = format!(
                    "A payment completed on order {} of checkout {checkout_id}, which no longer \
                     expected one; it is refunded.",
                    order.order_id
                );
                (charge, "unexpectedPaymentRefunded", detail)
            }
        };
        let amount = amount.unwrap_or(charge.amount);
        let refund_id = self
            .ctx
            .shard_id("re", &digest_id(&["reversal", payment_id]));
        db.batch(vec![
            refunds::claim_reversal(&Reversal {
                id: &refund_id,
                charge_id: &charge.id,
                amount,
                currency: &charge.currency,
                purchase_order_id: &order.order_id,
                payment_id,
                now: self.now,
            }),
            incidents::record(&NewIncident {
                key: format!("reversal:{payment_id}"),
                kind,
                charge_id: Some(&charge.id),
                checkout_id: match &order.owner {
                    Owner::Checkout { checkout_id, .. } => Some(checkout_id),
                    Owner::Charge { .. } => None,
                },
                order_id: Some(&order.order_id),
                payment_id: Some(payment_id),
                refund_id: Some(&refund_id),
                customer_ref: Some(&charge.customer_ref),
                amount: Some(amount),
                currency: Some(&charge.currency),
                detail,
                now: self.now,
            }),
        ])
        .await?;
        self.ctx.log.warn(
            "unexpected payment refunded",
            crate::fields! {"orderId": order.order_id, "kind": kind, "refundId": refund_id},
        );
        // The return order is created at most once per refund, whoever gets here first.
        if let Some(refund) = refunds::by_reversed_payment(db, payment_id).await? {
            refunding::start(self.ctx, &refund, &charge).await?;
        }
        Ok(())
    }

    async fn note_decline(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        reason: Option<&str>,
    ) -> Result<(), Problem> {
        let Owner::Charge { charge_id, .. } = &order.owner else {
            return Ok(());
        };
        let class = classify(reason).as_str();
        let reason = reason.unwrap_or("DECLINED");
        // The attempt that carried the payment: by its id, or the given-up attempt on this
        // order that never learned one. Never a payment already recorded elsewhere.
        self.ctx
            .db()
            .run(
                crate::sql!(
                    "UPDATE charge_attempts SET status = 'failed', payment_id = ?1,
                     failure_reason = ?2, decline_class = ?3, updated_at = ?4
                 WHERE charge_id = ?5 AND attempt = (
                     SELECT attempt FROM charge_attempts
                     WHERE charge_id = ?5 AND order_id = ?6 AND status = 'abandoned'
                       AND (payment_id = ?1 OR payment_id IS NULL)
                     ORDER BY payment_id IS NULL, attempt DESC LIMIT 1)
                   AND NOT EXISTS (SELECT 1 FROM charge_attempts
                                   WHERE charge_id = ?5 AND payment_id = ?1 AND status = 'failed')"
                ),
                params![
                    payment_id,
                    reason,
                    class,
                    self.now,
                    charge_id,
                    &order.order_id
                ],
            )
            .await?;
        Ok(())
    }

    async fn note_incident(&mut self, order: &WatchedOrder, kind: &str) -> Result<(), Problem> {
        let (charge_id, checkout_id) = match &order.owner {
            Owner::Charge { charge_id, .. } => (Some(charge_id.as_str()), None),
            Owner::Checkout { checkout_id, .. } => (None, Some(checkout_id.as_str())),
        };
        let detail = match kind {
            "orderLost" => format!(
                "The provider answers 404 for order {}, which we had given up; a payment on it \
                 could not be seen.",
                order.order_id
            ),
            _ => format!(
                "A payment on order {} was still in flight when its watch ended.",
                order.order_id
            ),
        };
        self.ctx
            .db()
            .batch(vec![incidents::record(&NewIncident {
                key: format!("{kind}:{}", order.order_id),
                kind,
                charge_id,
                checkout_id,
                order_id: Some(&order.order_id),
                detail,
                now: self.now,
                ..NewIncident::default()
            })])
            .await?;
        Ok(())
    }

    async fn reschedule(&mut self, order: &WatchedOrder, at: i64) -> Result<(), Problem> {
        self.ctx
            .db()
            .batch(vec![orders::reschedule(&order.order_id, at)])
            .await?;
        Ok(())
    }

    async fn close(&mut self, order: &WatchedOrder) -> Result<(), Problem> {
        self.ctx
            .db()
            .batch(vec![orders::close(&order.order_id)])
            .await?;
        Ok(())
    }
}

/// A signed webhook named an order we never recorded, for one of our checkouts or charges
/// (e.g. one whose creation timed out): it is watched like any order we do not use, and looked
/// at now.
pub async fn adopt_unknown(
    ctx: &Ctx,
    order_id: &str,
    reference_id: &str,
) -> Result<Option<Looked>, Problem> {
    crate::row! {
        struct Found {
            n: i64,
        }
    }
    let kind = if reference_id.starts_with("co_") {
        "checkout"
    } else if reference_id.starts_with("ch_") {
        "charge"
    } else {
        return Ok(None);
    };
    let sql = match kind {
        "checkout" => crate::sql!("SELECT COUNT(*) AS n FROM checkouts WHERE id = ?"),
        _ => crate::sql!("SELECT COUNT(*) AS n FROM charges WHERE id = ?"),
    };
    let found: Option<Found> = ctx.db().first(sql, params![reference_id]).await?;
    if found.is_none_or(|f| f.n == 0) {
        return Ok(None);
    }
    let now = ctx.now().await?;
    ctx.db()
        .batch(vec![orders::watch(order_id, kind, reference_id, now)])
        .await?;
    match orders::watched(ctx.db(), order_id).await? {
        Some(order) => look_at(ctx, &order).await.map(Some),
        None => Ok(None),
    }
}
