//! `POST /v1/charges/:id/refunds` (full or partial), and the refund reads.

use serde_json::Value;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::services::refunding;
use crate::store::charges;
use crate::store::refunds::{self, Claimed};
use crate::views;
use recurring_core::billing::refund_plan::{self, Purchase};
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::secure::request_fingerprint;
use recurring_core::validate;

pub async fn create(req: &mut Request, ctx: &Ctx, charge_id: &str) -> Result<Response, Problem> {
    let key = body::required_idempotency_key(req)?;
    let map = body::object(req).await?;
    // The same key on another charge is another request.
    let mut raw = Value::Object(map.clone());
    raw["chargeId"] = Value::String(charge_id.to_owned());
    let hash = request_fingerprint("refund", &raw);
    // Minor units; left out, the whole remaining amount. `null` is not "left out".
    let mut f = Fields::new(map);
    let requested = f.optional_integer("amount");
    if let Some(a) = requested {
        f.check(a > 0, "amount", "must be a positive integer in minor units");
    }
    f.finish()?;
    if !validate::is_identifier(charge_id) {
        return Err(Problem::not_found("The charge"));
    }
    let db = ctx.db();
    if let Some(refund_id) = crate::store::idempotency::existing(db, "refund", &key, &hash).await? {
        return replay(ctx, &refund_id).await;
    }
    let charge = charges::get(db, charge_id)
        .await?
        .ok_or_else(|| Problem::not_found("The charge"))?;
    if charge.status != "succeeded" {
        return Err(Problem::conflict(
            "charge-not-refundable",
            "Charge not refundable",
            "Only a succeeded charge can be refunded.",
        ));
    }
    let remaining = refunds::remaining(db, charge_id).await?;
    let amount = requested.unwrap_or(remaining);
    if amount <= 0 || amount > remaining {
        return Err(exceeds(remaining));
    }
    let now = ctx.now().await?;
    let purchase = Purchase {
        amount: charge.amount,
        completed_at: charge.settled_at.unwrap_or(charge.updated_at),
    };
    if !refund_plan::within_window(purchase, now) {
        return Err(Problem::new(
            422,
            "refund-window-expired",
            "Refund window expired",
        )
        .detail(
            "The provider takes refunds up to 90 days after the payment; this charge's payment \
             is older. Return the money to the customer another way.",
        )
        .with(
            "paidAt",
            recurring_core::billing::time::format_rfc3339(purchase.completed_at),
        ));
    }
    let refund_id = ctx.new_id("re");
    let claimed = refunds::claim(
        ctx.db(),
        &key,
        &hash,
        &refund_id,
        charge_id,
        amount,
        &charge.currency,
        now,
    )
    .await?;
    match claimed {
        Claimed::Replay(id) => replay(ctx, &id).await,
        Claimed::Exceeds => {
            let remaining = refunds::remaining(ctx.db(), charge_id).await?;
            Err(exceeds(remaining))
        }
        Claimed::Won => {
            let refund = refunds::get(ctx.db(), &refund_id)
                .await?
                .ok_or_else(|| Problem::internal("The refund was not recorded."))?;
            refunding::start(ctx, &refund, &charge).await?;
            let refund = refunds::get(ctx.db(), &refund_id)
                .await?
                .ok_or_else(|| Problem::internal("The refund vanished."))?;
            let status = if refund.status == "pending" { 202 } else { 201 };
            respond::json(status, &views::refund(&refund))
        }
    }
}

fn exceeds(remaining: i64) -> Problem {
    Problem::new(
        422,
        "refund-exceeds-remaining",
        "Refund exceeds the refundable amount",
    )
    .detail(format!(
        "At most {remaining} (minor units) of this charge can still be refunded."
    ))
    .with("refundable", remaining)
}

async fn replay(ctx: &Ctx, refund_id: &str) -> Result<Response, Problem> {
    refunding::advance(ctx, refund_id).await?;
    let refund = refunds::get(ctx.db(), refund_id)
        .await?
        .ok_or_else(|| Problem::internal("An idempotency key points to a missing refund."))?;
    respond::json(200, &views::refund(&refund))
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The refund"));
    }
    let refund = refunds::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::not_found("The refund"))?;
    respond::json(200, &views::refund(&refund))
}

pub async fn list_for_charge(ctx: &Ctx, charge_id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(charge_id) || charges::get(ctx.db(), charge_id).await?.is_none() {
        return Err(Problem::not_found("The charge"));
    }
    let rows = refunds::list_for_charge(ctx.db(), charge_id).await?;
    respond::data(200, &rows.iter().map(views::refund).collect::<Vec<_>>())
}
