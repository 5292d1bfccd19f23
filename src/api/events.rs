//! `GET /v1/events`, `GET /v1/events/:id`, `POST /v1/events/:id/redeliver`: the feed of events
//! for the merchant's backend, oldest first, so a backend that was down can catch up, and a
//! way to have one sent again (with the same `webhook-id`).

use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::services::{events, retention};
use crate::store::events as store;
use crate::views::event::{AttemptView, DeliveryView, delivery_status};
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::validate;

/// Every event type the backend writes (the database's triggers name them).
pub const TYPES: [&str; 21] = [
    "checkout.completed",
    "checkout.failed",
    "payment_method.updated",
    "payment_method.removed",
    "charge.succeeded",
    "charge.failed",
    "charge.pending",
    "charge.settled",
    "refund.succeeded",
    "refund.failed",
    "subscription.created",
    "subscription.renewed",
    "subscription.recovered",
    "subscription.past_due",
    "subscription.unpaid",
    "subscription.canceled",
    "subscription.paused",
    "subscription.updated",
    "subscription.trial_will_end",
    "subscription.resumed",
    "subscription.completed",
];

/// `?type=`, `?limit=` and `?startingAfter=<event id>`.
pub async fn list(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let kind = body::query_param(req, "type");
    if let Some(k) = kind.as_deref()
        && !TYPES.contains(&k)
    {
        return Err(Problem::invalid_request(format!(
            "type must be one of {}.",
            TYPES.join(", ")
        )));
    }
    let db = ctx.db();
    // A cursor may name an event archived since: it keeps its place in the feed.
    let after = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let live = store::get(db, &id).await?.map(|row| row.seq);
            let seq = match live {
                Some(seq) => Some(seq),
                None if validate::is_identifier(&id) => retention::archived_seq(ctx, &id).await?,
                None => None,
            };
            Some(seq.ok_or_else(|| Problem::invalid_request("startingAfter is not an event id."))?)
        }
    };
    let rows = store::list(db, after, kind.as_deref(), limit + 1).await?;
    let has_more = rows.len() > limit as usize;
    let mut data = Vec::new();
    for row in rows.iter().take(limit as usize) {
        data.push(events::render(ctx, row, None).await?);
    }
    let next_cursor = has_more
        .then(|| rows.get(limit as usize - 1).map(|r| r.id.clone()))
        .flatten();
    // The events are JSON text already (as delivered): the page is put together around them.
    let cursor = next_cursor
        .map(|c| format!(",\"nextCursor\":{}", serde_json::Value::String(c)))
        .unwrap_or_default();
    respond::json_text(
        200,
        format!(
            "{{\"data\":[{}],\"hasMore\":{has_more}{cursor}}}",
            data.join(",")
        ),
    )
}

async fn load(ctx: &Ctx, id: &str) -> Result<store::EventRow, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The event"));
    }
    store::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::not_found("The event"))
}

/// The event, with how its delivery went (every attempt, as the merchant's endpoint answered):
/// from the ledger, or from the archive once it left the ledger.
pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The event"));
    }
    let (row, deliveries) = match store::get(ctx.db(), id).await? {
        Some(row) => {
            let deliveries = store::deliveries(ctx.db(), &row.id).await?;
            (row, deliveries)
        }
        None => retention::archived_event(ctx, id)
            .await?
            .ok_or_else(|| Problem::not_found("The event"))?,
    };
    let attempts = deliveries
        .into_iter()
        .map(|d| AttemptView {
            attempt: d.attempt,
            at: format_rfc3339(d.at),
            latency_ms: d.latency_ms,
            status_code: d.status_code,
            error: d.error,
        })
        .collect();
    let delivery = DeliveryView {
        status: delivery_status(&row.delivery),
        attempts,
    };
    respond::json_text(200, events::render(ctx, &row, Some(&delivery)).await?)
}

/// Sends the event again, whatever became of earlier deliveries: a new round of attempts with
/// the same `webhook-id`, so a receiver that deduplicates sees it once.
pub async fn redeliver(req: &mut Request, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    body::nothing(req).await?;
    let row = load(ctx, id).await?;
    if ctx.config.merchant_webhook.is_none() {
        return Err(Problem::conflict(
            "no-webhook-url",
            "No webhook URL",
            "MERCHANT_WEBHOOK_URL is not set: events are kept for the feed only.",
        ));
    }
    store::redeliver(ctx.db(), &row.id).await?;
    events::dispatch(ctx).await?;
    respond::json_text(202, events::render(ctx, &row, None).await?)
}
