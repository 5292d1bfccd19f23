//! Subscription rows. Status changes are recorded by a database trigger with `status_reason`,
//! so every UPDATE of `status` here also sets the reason.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::billing::dunning::{DunningStep, GiveUpReason};
use recurring_core::billing::interval::{Interval, IntervalUnit};
use recurring_core::billing::renewal::{Kind, Subscription, Terms};
use recurring_core::catalog::Plan;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct SubscriptionRow {
        pub id: String,
        pub customer_ref: String,
        pub checkout_id: String,
        pub plan_id: String,
        pub kind: String,
        pub amount: i64,
        pub currency: String,
        pub interval_unit: String,
        pub interval_count: u32,
        pub unit_amount: Option<i64>,
        pub installments_total: Option<u32>,
        pub anchor_at: i64,
        pub anchor_period: u32,
        pub current_period: u32,
        pub current_period_start: i64,
        pub current_period_end: i64,
        pub status: String,
        pub status_reason: String,
        pub cancel_at_period_end: i64,
        pub pending_plan_id: Option<String>,
        pub pending_plan: Option<String>,
        pub paused_at: Option<i64>,
        pub canceled_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
        /// Seats; absent in events written before quantities existed (then 1).
        pub quantity: Option<u32>,
        /// A quantity change that takes effect with the next period.
        pub pending_quantity: Option<u32>,
        /// When the free trial (period 0) ends, for a subscription that started with one.
        pub trial_end: Option<i64>,
        /// The coupon of the subscription's discount, and the charges it still reduces (none:
        /// for ever).
        pub coupon_id: Option<String>,
        pub discount_periods_left: Option<u32>,
    }
}

pub const COLUMNS: &str = "id, customer_ref, checkout_id, plan_id, kind, amount, currency, \
    interval_unit, interval_count, unit_amount, installments_total, anchor_at, anchor_period, \
    current_period, current_period_start, current_period_end, status, status_reason, \
    cancel_at_period_end, pending_plan_id, pending_plan, paused_at, canceled_at, created_at, \
    updated_at, quantity, pending_quantity, trial_end, coupon_id, discount_periods_left";

pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub customer_ref: &'a str,
    pub checkout_id: &'a str,
    pub plan_id: &'a str,
    pub kind: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub interval_unit: &'a str,
    pub interval_count: u32,
    pub unit_amount: Option<i64>,
    pub installments_total: Option<u32>,
    /// Period `anchor_period` starts at `anchor_at` (1 after a trial, which is period 0).
    pub anchor_at: i64,
    pub anchor_period: u32,
    pub period_end: i64,
    pub trial: Option<Trial>,
    /// The discount the checkout's coupon gives from the next charges on.
    pub coupon_id: Option<&'a str>,
    pub discount_periods_left: Option<u32>,
    pub now: i64,
}

/// A trial's end and when it is announced.
#[derive(Debug, Clone, Copy)]
pub struct Trial {
    pub end: i64,
    pub notice_at: i64,
}

/// One subscription per checkout, whatever the number of activations that race to create it.
pub fn insert(s: &NewSubscription<'_>) -> Stmt {
    stmt(
        crate::sql!("INSERT INTO subscriptions (id, customer_ref, checkout_id, plan_id, kind, amount, currency,
             interval_unit, interval_count, unit_amount, installments_total, anchor_at,
             anchor_period, current_period, current_period_start, current_period_end, status,
             status_reason, trial_end, trial_notice_at, coupon_id, discount_periods_left,
             created_at, updated_at, test_clock)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 'active', 'checkout paid',
                 ?, ?, ?, ?, ?, ?, (SELECT test_clock FROM checkouts WHERE id = ?))
         ON CONFLICT (checkout_id) DO NOTHING"),
        params![
            s.id,
            s.customer_ref,
            s.checkout_id,
            s.plan_id,
            s.kind,
            s.amount,
            s.currency,
            s.interval_unit,
            s.interval_count,
            s.unit_amount,
            s.installments_total,
            s.anchor_at,
            s.anchor_period,
            s.now,
            s.period_end,
            s.trial.map(|t| t.end),
            s.trial.map(|t| t.notice_at),
            s.coupon_id,
            s.discount_periods_left,
            s.now,
            s.now,
            s.checkout_id
        ],
    )
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<SubscriptionRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM subscriptions WHERE id = ?");
    db.first(sql, params![id]).await
}

/// A new card on file gives subscriptions that stopped on a decline another chance: their
/// outstanding charge is retried at the next tick, with a fresh dunning cycle for the new card.
pub fn revive_after_new_card(customer_ref: &str, now: i64) -> Vec<Stmt> {
    vec![
        stmt(
            crate::sql!(
                "UPDATE charges SET next_retry_at = ?, declines = 0, first_failed_at = NULL,
                 updated_at = ?
             WHERE customer_ref = ? AND status = 'failed' AND subscription_id IN
               (SELECT id FROM subscriptions WHERE customer_ref = ?
                  AND status IN ('unpaid', 'past_due') AND current_period = charges.period_index)"
            ),
            params![now, now, customer_ref, customer_ref],
        ),
        stmt(
            crate::sql!(
                "UPDATE subscriptions SET status = 'past_due',
                 status_reason = 'new card on file: retrying the outstanding charge', updated_at = ?
             WHERE customer_ref = ? AND status = 'unpaid'"
            ),
            params![now, customer_ref],
        ),
    ]
}

/// The SET clause of a subscription whose period's charge succeeded: a recovered subscription
/// is active again, an installment plan whose last installment this was is completed. A macro,
/// so that statements with other WHERE clauses embed it in static SQL.
macro_rules! after_payment_set {
    () => {
        "UPDATE subscriptions SET
           status = CASE
             WHEN kind = 'installments' AND current_period + 1 >= installments_total THEN 'completed'
             WHEN status IN ('past_due', 'unpaid') THEN 'active'
             ELSE status END,
           status_reason = CASE
             WHEN kind = 'installments' AND current_period + 1 >= installments_total
               THEN 'last installment paid'
             WHEN status IN ('past_due', 'unpaid') THEN 'payment recovered'
             ELSE status_reason END,
           updated_at = ? "
    };
}
pub(crate) use after_payment_set;

/// After a subscription's charge for `period` succeeded.
pub fn after_payment(subscription_id: &str, period: u32, now: i64) -> Stmt {
    stmt(
        concat!(
            after_payment_set!(),
            "WHERE id = ? AND current_period = ? AND status IN ('active', 'past_due', 'unpaid')"
        ),
        params![now, subscription_id, period],
    )
}

/// After a subscription's charge for `period` was declined (or refused): `past_due` while
/// dunning retries, `unpaid` once it gives up, saying why.
pub fn after_decline(
    subscription_id: &str,
    period: u32,
    step: &DunningStep,
    reason: &str,
    now: i64,
) -> Stmt {
    let (status, why) = match step {
        DunningStep::RetryAt(_) => ("past_due", format!("payment declined ({reason}); retrying")),
        DunningStep::GiveUp(GiveUpReason::HardDecline) => (
            "unpaid",
            format!("payment declined ({reason}); a new card is needed"),
        ),
        DunningStep::GiveUp(_) => (
            "unpaid",
            format!("payment declined ({reason}); retries exhausted"),
        ),
    };
    stmt(
        crate::sql!(
            "UPDATE subscriptions SET status = ?, status_reason = ?, updated_at = ?
         WHERE id = ? AND current_period = ? AND status IN ('active', 'past_due', 'unpaid')"
        ),
        params![status, why, now, subscription_id, period],
    )
}

/// After a subscription's charge for `period` failed without a decline, for a reason only a new
/// card can cure (no card on file, a card that hard-declined elsewhere): `unpaid`, saying why.
pub fn after_failure(subscription_id: &str, period: u32, why: &str, now: i64) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE subscriptions SET status = 'unpaid', status_reason = ?, updated_at = ?
         WHERE id = ? AND current_period = ? AND status IN ('active', 'past_due', 'unpaid')"
        ),
        params![why, now, subscription_id, period],
    )
}

/// The row as the pure renewal model sees it.
pub fn to_model(row: &SubscriptionRow) -> Result<Subscription, Problem> {
    let broken = || Problem::internal(format!("Subscription {} has unreadable terms.", row.id));
    let interval = Interval {
        unit: row
            .interval_unit
            .parse::<IntervalUnit>()
            .map_err(|_| broken())?,
        count: row.interval_count,
    };
    let kind = match (row.kind.as_str(), row.installments_total) {
        ("installments", Some(total_count)) => Kind::Installments { total_count },
        ("recurring", _) => Kind::Recurring,
        _ => return Err(broken()),
    };
    let pending = match &row.pending_plan {
        None => None,
        Some(json) => {
            let plan = Plan::from_snapshot(json).ok_or_else(broken)?;
            Some(terms_of(&plan))
        }
    };
    Ok(Subscription {
        kind,
        terms: Terms {
            plan_id: row.plan_id.clone(),
            amount: row.amount,
            currency: row.currency.clone(),
            interval,
            unit_amount: row.unit_amount,
        },
        anchor_at: row.anchor_at,
        anchor_period: row.anchor_period,
        current_period: row.current_period,
        cancel_at_period_end: row.cancel_at_period_end != 0,
        pending,
        quantity: row.quantity.unwrap_or(1),
        pending_quantity: row.pending_quantity,
        trial: row.trial_end.is_some() && row.current_period == 0,
    })
}

pub fn terms_of(plan: &Plan) -> Terms {
    Terms {
        plan_id: plan.id.clone(),
        amount: plan.amount,
        currency: plan.currency.clone(),
        interval: plan.billing_interval(),
        unit_amount: plan.unit_amount,
    }
}

pub async fn list(
    db: Db<'_>,
    customer_ref: Option<&str>,
    status: Option<&str>,
    after: Option<(i64, &str)>,
    limit: u32,
) -> Result<Vec<SubscriptionRow>, Problem> {
    let (after_at, after_id) = after.map_or((i64::MAX, ""), |(t, id)| (t, id));
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM subscriptions
         WHERE (?1 IS NULL OR customer_ref = ?1) AND (?2 IS NULL OR status = ?2)
           AND (created_at < ?3 OR (created_at = ?3 AND id < ?4) OR ?4 = '')
         ORDER BY created_at DESC, id DESC LIMIT ?5"
    );
    db.all(
        sql,
        params![customer_ref, status, after_at, after_id, limit],
    )
    .await
}

crate::row! {
    #[derive(Debug, serde::Serialize)]
    pub struct EventRow {
        pub from_status: Option<String>,
        pub to_status: String,
        pub reason: String,
        pub at: i64,
    }
}

pub async fn events(db: Db<'_>, id: &str) -> Result<Vec<EventRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT from_status, to_status, reason, at FROM subscription_events
         WHERE subscription_id = ? ORDER BY id"
        ),
        params![id],
    )
    .await
}
