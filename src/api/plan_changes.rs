//! Plan and quantity changes made now, prorated, and their preview
//! (`POST /v1/subscriptions/:id/change-plan` with `"effective": "now"`, and
//! `POST /v1/subscriptions/:id/change-plan/preview`).
//!
//! The unused part of the old price is credited, the rest of the period at the new price is
//! charged (`billing::proration`): an upgrade is charged now (the customer's balance pays first),
//! a downgrade's credit goes to the customer's balance, which their next charges use. The change,
//! its credit or its charge, and the claim of its Idempotency-Key are one batch: all or nothing.

use serde::Serialize;
use serde_json::json;
use worker::{Request, Response};

use super::charges::API_POLL_DELAYS_MS;
use super::subscriptions::{Change, changeable, load, plan_for_change, read_change};
use super::{body, respond};
use crate::context::Ctx;
use crate::params;
use crate::services::charging::{self, Mode, Patience};
use crate::store::balances::{self, Guard, Spend};
use crate::store::charges::{self, NewCharge};
use crate::store::db::{Stmt, stmt};
use crate::store::idempotency;
use crate::store::subscriptions::SubscriptionRow;
use crate::views;
use recurring_core::billing::proration::{self, ChangeCost, Proration};
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::secure::request_fingerprint;

/// A change worked out, not yet made.
struct Quote {
    plan_id: String,
    amount: i64,
    unit_amount: Option<i64>,
    quantity: u32,
    old_price: i64,
    new_price: i64,
    proration: Proration,
    cost: ChangeCost,
}

fn quote(
    ctx: &Ctx,
    sub: &SubscriptionRow,
    change: &Change,
    balance: i64,
    now: i64,
) -> Result<Quote, Problem> {
    changeable(sub)?;
    let plan = match &change.plan_id {
        Some(id) => Some(plan_for_change(ctx, sub, id)?),
        None => None,
    };
    if let Some(p) = plan {
        let interval = p.billing_interval();
        if interval.unit.as_str() != sub.interval_unit || interval.count != sub.interval_count {
            return Err(Problem::conflict(
                "interval-change-at-period-end",
                "A new billing interval starts with a period",
                "A plan of another interval takes effect at period end only (\"effective\": \
                 \"period_end\"): its periods cannot be prorated against this one's.",
            ));
        }
    }
    let quantity = change.quantity.unwrap_or_else(|| sub.quantity.unwrap_or(1));
    let amount = plan.map_or(sub.amount, |p| p.amount);
    let old_price = sub
        .amount
        .saturating_mul(i64::from(sub.quantity.unwrap_or(1)));
    let new_price = amount.saturating_mul(i64::from(quantity));
    if new_price > ctx.config.max_charge_amount {
        return Err(Problem::validation(vec![
            recurring_core::http::problem::FieldError::new(
                "quantity",
                "the price per period would be above the maximum charge",
            ),
        ]));
    }
    // A free trial costs nothing, before the change or after: the new price applies from the
    // first charge, at the trial's end.
    let trialing = sub.trial_end.is_some() && sub.current_period == 0;
    let (old_cost, new_cost) = if trialing {
        (0, 0)
    } else {
        (old_price, new_price)
    };
    let proration = proration::prorate(
        sub.current_period_start,
        sub.current_period_end,
        now,
        old_cost,
        new_cost,
    )
    .map_err(|_| {
        Problem::conflict(
            "subscription-changed",
            "The period is closing",
            "The subscription's period has ended and is being renewed; try again in a minute.",
        )
    })?;
    let cost = proration::cost(&proration, balance);
    Ok(Quote {
        plan_id: plan.map_or_else(|| sub.plan_id.clone(), |p| p.id.clone()),
        amount,
        unit_amount: plan.map_or(sub.unit_amount, |p| p.unit_amount),
        quantity,
        old_price,
        new_price,
        proration,
        cost,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProrationView {
    period_start: String,
    period_end: String,
    total_seconds: i64,
    remaining_seconds: i64,
    /// Old price per period (unit price × quantity) and new.
    old_price: i64,
    new_price: i64,
    credit: i64,
    charge: i64,
    /// charge − credit.
    net: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreviewView {
    effective: &'static str,
    plan_id: String,
    quantity: u32,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    proration: Option<ProrationView>,
    /// The customer's balance before the change.
    balance: i64,
    /// Paid from the balance now.
    balance_applied: i64,
    /// Charged to the card now.
    amount_due_now: i64,
    /// Added to the balance (a downgrade now).
    credited: i64,
    /// The next renewal: when, and its price before the balance is applied.
    next_charge_at: String,
    next_charge_amount: i64,
}

fn proration_view(sub: &SubscriptionRow, q: &Quote) -> ProrationView {
    ProrationView {
        period_start: format_rfc3339(sub.current_period_start),
        period_end: format_rfc3339(sub.current_period_end),
        total_seconds: q.proration.total_seconds,
        remaining_seconds: q.proration.remaining_seconds,
        old_price: q.old_price,
        new_price: q.new_price,
        credit: q.proration.credit,
        charge: q.proration.charge,
        net: q.proration.net(),
    }
}

/// `POST /v1/subscriptions/:id/change-plan/preview`: exactly what the change would charge or
/// credit, now or at period end, and changes nothing.
pub async fn preview(req: &mut Request, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let change = read_change(body::object(req).await?)?;
    let sub = load(ctx, id).await?;
    let now = ctx.now().await?;
    let balance = balances::of(ctx.db(), &sub.customer_ref, &sub.currency).await?;
    let view = if change.now {
        let q = quote(ctx, &sub, &change, balance, now)?;
        PreviewView {
            effective: "now",
            plan_id: q.plan_id.clone(),
            quantity: q.quantity,
            currency: sub.currency.clone(),
            proration: Some(proration_view(&sub, &q)),
            balance,
            balance_applied: q.cost.balance_applied,
            amount_due_now: q.cost.due_now,
            credited: q.cost.credited,
            next_charge_at: format_rfc3339(sub.current_period_end),
            next_charge_amount: q.new_price,
        }
    } else {
        changeable(&sub)?;
        let plan = match &change.plan_id {
            Some(p) => Some(plan_for_change(ctx, &sub, p)?),
            None => None,
        };
        let quantity = change
            .quantity
            .or(sub.pending_quantity)
            .unwrap_or_else(|| sub.quantity.unwrap_or(1));
        let amount = plan.map_or(sub.amount, |p| p.amount);
        PreviewView {
            effective: "period_end",
            plan_id: plan.map_or_else(|| sub.plan_id.clone(), |p| p.id.clone()),
            quantity,
            currency: sub.currency.clone(),
            proration: None,
            balance,
            balance_applied: 0,
            amount_due_now: 0,
            credited: 0,
            next_charge_at: format_rfc3339(sub.current_period_end),
            next_charge_amount: amount.saturating_mul(i64::from(quantity)),
        }
    };
    respond::json(200, &view)
}

/// What a change made now answers: the subscription as it is now, the proration, and the
/// charge it made (if any).
async fn answer(
    ctx: &Ctx,
    status: u16,
    sub_id: &str,
    charge_key: &str,
    proration: Option<ProrationView>,
    cost: Option<ChangeCost>,
) -> Result<Response, Problem> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ChangeView<'a> {
        subscription: views::subscription::SubscriptionView<'a>,
        /// Absent on a replay of the same request: the change was made before.
        #[serde(skip_serializing_if = "Option::is_none")]
        proration: Option<ProrationView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        balance_applied: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        credited: Option<i64>,
        /// The charge for the rest of the period, when the change cost more than the balance
        /// held.
        #[serde(skip_serializing_if = "Option::is_none")]
        charge: Option<views::charge::ChargeView<'a>>,
        /// The customer's balance after the change.
        balance: i64,
    }
    let sub = load(ctx, sub_id).await?;
    let charge = charges::by_key(ctx.db(), charge_key).await?;
    let balance = balances::of(ctx.db(), &sub.customer_ref, &sub.currency).await?;
    let body = ChangeView {
        subscription: views::subscription(&sub),
        proration,
        balance_applied: cost.map(|c| c.balance_applied),
        credited: cost.map(|c| c.credited),
        charge: charge.as_ref().map(views::charge),
        balance,
    };
    respond::json(status, &body)
}

/// The change made now. Requires an Idempotency-Key: it can charge the card.
pub async fn change_now(
    req: &mut Request,
    ctx: &Ctx,
    sub: &SubscriptionRow,
    change: &Change,
) -> Result<Response, Problem> {
    let key = body::required_idempotency_key(req)?;
    let hash = request_fingerprint(
        "change",
        &json!({"subscription": sub.id, "planId": change.plan_id, "quantity": change.quantity}),
    );
    let charge_key = format!("change:{}:{}", sub.id, key);
    let db = ctx.db();
    if idempotency::existing(db, "change", &key, &hash)
        .await?
        .is_some()
    {
        return answer(ctx, 200, &sub.id, &charge_key, None, None).await;
    }
    let now = ctx.now().await?;
    let balance = balances::of(db, &sub.customer_ref, &sub.currency).await?;
    let q = quote(ctx, sub, change, balance, now)?;
    let change_id = ctx.new_id("chg");
    let mut batch: Vec<Stmt> = vec![
        // The change itself, only from the subscription as read.
        stmt(
            crate::sql!(
                "UPDATE subscriptions SET plan_id = ?, amount = ?, unit_amount = ?, quantity = ?,
                   pending_plan_id = NULL, pending_plan = NULL, pending_quantity = NULL,
                   last_change = ?, updated_at = ?
                 WHERE id = ? AND updated_at = ? AND current_period = ?
                   AND status IN ('active', 'past_due')"
            ),
            params![
                &q.plan_id,
                q.amount,
                q.unit_amount,
                q.quantity,
                &change_id,
                now,
                &sub.id,
                sub.updated_at,
                sub.current_period
            ],
        ),
        // Its key, claimed with it (a replay finds the change made).
        stmt(
            crate::sql!(
                "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at)
                 SELECT 'change', ?, ?, ?, ?
                 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ? AND last_change = ?)
                 ON CONFLICT (scope, key) DO NOTHING"
            ),
            params![&key, &hash, &change_id, now, &sub.id, &change_id],
        ),
    ];
    let spend_id = format!("cbt_{change_id}");
    if q.cost.credited > 0 {
        batch.extend(balances::credit(
            &spend_id,
            &sub.customer_ref,
            &sub.currency,
            q.cost.credited,
            &sub.id,
            &change_id,
            now,
        ));
    }
    let charge_id = ctx.new_id("ch");
    let description = format!(
        "Change to {} × {}: the rest of period {}",
        q.plan_id,
        q.quantity,
        sub.current_period + 1
    );
    let net = q.proration.net();
    if net > 0 {
        if q.cost.balance_applied > 0 {
            batch.extend(balances::spend(
                &Spend {
                    id: &spend_id,
                    claim: &change_id,
                    customer_ref: &sub.customer_ref,
                    currency: &sub.currency,
                    amount: q.cost.balance_applied,
                    subscription_id: Some(&sub.id),
                    period_index: Some(sub.current_period),
                    charge_id: (q.cost.due_now > 0).then_some(charge_id.as_str()),
                    now,
                },
                Guard::Changed(&sub.id, &change_id),
            ));
        }
        let charge = NewCharge {
            id: &charge_id,
            charge_key: &charge_key,
            customer_ref: &sub.customer_ref,
            subscription_id: Some(&sub.id),
            period_index: Some(sub.current_period),
            kind: "api",
            amount: net,
            currency: &sub.currency,
            description: &description,
            metadata: None,
            request_hash: Some(&hash),
            now,
        };
        batch.extend(charges::claim_after_change(
            &charge,
            &sub.id,
            &change_id,
            q.cost.balance_applied,
            (&spend_id, &change_id),
        ));
    }
    let changes = db.batch(batch).await?;
    if changes.first().is_none_or(|&n| n == 0) {
        return Err(Problem::conflict(
            "subscription-changed",
            "Subscription changed meanwhile",
            "The subscription changed while this request ran; read it and try again.",
        ));
    }
    // The card is charged now, as an API charge is: polled for a moment, then left to the
    // webhook and the cron.
    let mut status = 200;
    if let Some(charge) = charges::by_key(db, &charge_key).await? {
        let driven = charging::drive_charge(
            ctx,
            &charge.id,
            Mode::Initiate,
            Patience::Poll(&API_POLL_DELAYS_MS),
        )
        .await?;
        if !matches!(driven.status.as_str(), "succeeded" | "failed") {
            status = 202;
        }
    }
    answer(
        ctx,
        status,
        &sub.id,
        &charge_key,
        Some(proration_view(sub, &q)),
        Some(q.cost),
    )
    .await
}

/// `GET /v1/customers/:ref/balance`: what the merchant owes the customer, per currency, and the
/// transactions that made it (newest first).
pub async fn balance(ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    if !recurring_core::validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let db = ctx.db();
    let balances = balances::all_of(db, customer).await?;
    let transactions = balances::transactions(db, customer, 100).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct TransactionView<'a> {
        id: &'a str,
        currency: &'a str,
        /// + credited, − used.
        amount: i64,
        /// `proration` (a change's unused part), `applied` (used by a charge or a period) or
        /// `refunded` (given back to the card on request).
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        subscription_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        charge_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        refund_id: Option<&'a str>,
        created_at: String,
    }
    let balances: Vec<_> = balances
        .iter()
        .map(|b| json!({"currency": b.currency, "amount": b.amount, "updatedAt": format_rfc3339(b.updated_at)}))
        .collect();
    let transactions: Vec<_> = transactions
        .iter()
        .map(|t| TransactionView {
            id: &t.id,
            currency: &t.currency,
            amount: t.amount,
            reason: &t.reason,
            subscription_id: t.subscription_id.as_deref(),
            charge_id: t.charge_id.as_deref(),
            refund_id: t.refund_id.as_deref(),
            created_at: format_rfc3339(t.created_at),
        })
        .collect();
    respond::json(
        200,
        &json!({"customerRef": customer, "balances": balances, "transactions": transactions}),
    )
}
