//! `GET /v1/events`, `GET /v1/events/:id`, `POST /v1/events/:id/redeliver`: the feed of events
//! for the merchant's backend, oldest first, so a backend that was down can catch up, and a
//! way to have one sent again (with the same `webhook-id`).

use futures_util::future::try_join_all;
use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::services::{events, retention};
use crate::store::events as store;
use crate::views::event::{AttemptView, DeliveryView, delivery_status};
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::shards::{FeedCursor, FeedKey, advance, merge_feed};
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
    if ctx.shard_count() > 1 {
        return list_merged(req, ctx, kind.as_deref(), limit).await;
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
    feed_page(data, has_more, next_cursor)
}

/// The page around the events, which are JSON text already (as delivered).
fn feed_page(
    data: Vec<String>,
    has_more: bool,
    next_cursor: Option<String>,
) -> Result<Response, Problem> {
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

/// The feed over several shards. Each shard's events are read in their own order (by `seq`),
/// so none is ever passed over, and the page shows them by time; the cursor holds every
/// shard's position (`fc1.` and one number a shard). An event id is still a cursor: its shard
/// continues after it, the others after their last event not later than it.
async fn list_merged(
    req: &Request,
    ctx: &Ctx,
    kind: Option<&str>,
    limit: u32,
) -> Result<Response, Problem> {
    let shards = ctx.every_shard();
    let before = match body::query_param(req, "startingAfter") {
        None => FeedCursor {
            positions: vec![0; shards.len()],
        },
        Some(text) => match FeedCursor::decode(&text, shards.len()) {
            Some(cursor) => cursor,
            None => cursor_at_event(ctx, &text)
                .await?
                .ok_or_else(|| Problem::invalid_request("startingAfter is not an event id."))?,
        },
    };
    let pages = try_join_all(shards.iter().map(|shard| {
        store::list(
            shard.db(),
            Some(before.positions[shard.shard()]),
            kind,
            limit + 1,
        )
    }))
    .await?;
    let keys: Vec<Vec<FeedKey>> = pages
        .iter()
        .enumerate()
        .map(|(shard, rows)| {
            rows.iter()
                .map(|r| FeedKey {
                    shard,
                    at: r.created_at,
                    seq: r.seq,
                })
                .collect()
        })
        .collect();
    let (taken, has_more) = merge_feed(&keys, limit as usize);
    let mut data = Vec::with_capacity(taken.len());
    for (shard, index) in &taken {
        data.push(events::render(&shards[*shard], &pages[*shard][*index], None).await?);
    }
    // Every page says where it ended, the last one too: a backend that polls for newer events
    // keeps it (an event id is only placed in the other shards by its time).
    let next_cursor = Some(advance(&before, &keys, &taken).encode());
    feed_page(data, has_more, next_cursor)
}

/// The feed's position just after event `id`, in every shard.
async fn cursor_at_event(ctx: &Ctx, id: &str) -> Result<Option<FeedCursor>, Problem> {
    if !validate::is_identifier(id) {
        return Ok(None);
    }
    let Some((home, row)) = find(ctx, id).await? else {
        return Ok(None);
    };
    crate::row! {
        struct Last {
            seq: i64,
        }
    }
    // Where the merged order (time, shard, sequence) put the event: a shard before its own
    // has shown its events of the same time, a shard after it has not.
    let mut positions = Vec::with_capacity(ctx.shard_count());
    for shard in ctx.every_shard() {
        if shard.shard() == home.shard() {
            positions.push(row.seq);
            continue;
        }
        let shown_until = if shard.shard() < home.shard() {
            row.created_at
        } else {
            row.created_at - 1
        };
        let last: Option<Last> = shard
            .db()
            .first(
                crate::sql!(
                    "SELECT seq FROM events WHERE created_at <= ?
                     ORDER BY created_at DESC, seq DESC LIMIT 1"
                ),
                crate::params![shown_until],
            )
            .await?;
        positions.push(last.map_or(0, |l| l.seq));
    }
    Ok(Some(FeedCursor { positions }))
}

/// An event in the ledger, with the shard that has it.
async fn find_live(ctx: &Ctx, id: &str) -> Result<Option<(Ctx, store::EventRow)>, Problem> {
    page::find_in_shards(
        ctx,
        id,
        |shard| async move { store::get(shard.db(), id).await },
    )
    .await
}

/// An archived event with its deliveries, with the shard that archived it.
async fn find_archived(ctx: &Ctx, id: &str) -> Result<Option<(Ctx, Archived)>, Problem> {
    page::find_in_shards(ctx, id, |shard| async move {
        retention::archived_event(&shard, id).await
    })
    .await
}

type Archived = (store::EventRow, Vec<store::DeliveryRow>);

/// An event from whichever shard has it, in the ledger or archived.
async fn find(ctx: &Ctx, id: &str) -> Result<Option<(Ctx, store::EventRow)>, Problem> {
    if let Some(found) = find_live(ctx, id).await? {
        return Ok(Some(found));
    }
    Ok(find_archived(ctx, id)
        .await?
        .map(|(shard, (row, _))| (shard, row)))
}

async fn load(ctx: &Ctx, id: &str) -> Result<(Ctx, store::EventRow), Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The event"));
    }
    find_live(ctx, id)
        .await?
        .ok_or_else(|| Problem::not_found("The event"))
}

/// The event, with how its delivery went (every attempt, as the merchant's endpoint answered):
/// from the ledger, or from the archive once it left the ledger.
pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The event"));
    }
    let (ctx, (row, deliveries)) = match find_live(ctx, id).await? {
        Some((shard, row)) => {
            let deliveries = store::deliveries(shard.db(), &row.id).await?;
            (shard, (row, deliveries))
        }
        None => find_archived(ctx, id)
            .await?
            .ok_or_else(|| Problem::not_found("The event"))?,
    };
    let ctx = &ctx;
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
    let (ctx, row) = load(ctx, id).await?;
    let ctx = &ctx;
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
