//! Events for the merchant: rendered from the outbox the database's triggers write, put on the
//! EVENTS queue, and delivered to `MERCHANT_WEBHOOK_URL` signed as the Standard Webhooks
//! specification says. Delivery is at least once: every attempt is recorded, a failure comes
//! back after a growing delay for over a day, and after the last retry the event is marked
//! failed (it stays in the feed, and can be redelivered).

use std::pin::pin;
use std::time::Duration;

use std::cell::RefCell;

use futures_util::future::{Either, select};
use serde::Serialize;
use serde_json::Value;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, MessageBatch, MessageExt, Queue,
    QueueRetryOptionsBuilder, RawMessage,
};

use crate::concurrently::{self, Job};
use crate::context::Ctx;
use crate::store::charges::ChargeRow;
use crate::store::checkouts::CheckoutRow;
use crate::store::db::{BatchResult, Stmt};
use crate::store::events::{self, Attempted, EventRow};
use crate::store::payment_methods::{self, MaskedCard};
use crate::store::refunds::RefundRow;
use crate::store::row::FromRow;
use crate::store::subscriptions::SubscriptionRow;
use crate::views;
use crate::views::event::DeliveryView;
use recurring_core::config::{Config, MerchantWebhook};
use recurring_core::http::problem::Problem;
use recurring_core::merchant_webhook::sign;

/// Messages per `sendBatch` call (the platform's limit).
const SEND_BATCH: usize = 100;
/// A queued event whose message was not heard of for this long is queued again.
const LOST_AFTER_MS: i64 = 6 * 3_600_000;

crate::row! {
    /// The queue message of an event delivery. Read like a row (the body is a JavaScript
    /// object).
    #[derive(Debug, Clone, Serialize)]
    pub struct EventJob {
        pub event: String,
        /// The shard the event is in (absent: `DB`): event ids are the database's, and do not
        /// say it.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub shard: Option<u32>,
    }
}

/// An event as the merchant receives it, as JSON text: `data` is the resource exactly as the
/// API returns it, rendered from the row as it was at the change. With `delivery`, how its
/// delivery went (`GET /v1/events/:id`).
pub async fn render(
    ctx: &Ctx,
    row: &EventRow,
    delivery: Option<&DeliveryView>,
) -> Result<String, Problem> {
    let broken = || Problem::internal(format!("Event {} has an unreadable snapshot.", row.id));
    let text = match row.resource.as_str() {
        "charge" => {
            let c: ChargeRow = snapshot(row).ok_or_else(broken)?;
            text(row, views::charge(&c), delivery)
        }
        "subscription" => {
            let s: SubscriptionRow = snapshot(row).ok_or_else(broken)?;
            let previous = serde_json::from_str::<Value>(&row.snapshot)
                .ok()
                .and_then(|mut v| v.get_mut("previous_attributes").map(Value::take));
            serde_json::to_string(&views::event(
                &row.id,
                row.kind.as_str(),
                row.created_at,
                views::subscription(&s),
                previous,
                delivery,
            ))
        }
        "refund" => {
            let r: RefundRow = snapshot(row).ok_or_else(broken)?;
            text(row, views::refund(&r), delivery)
        }
        "checkout" => {
            let c: CheckoutRow = snapshot(row).ok_or_else(broken)?;
            let card = match (&c.order_id, c.status.as_str()) {
                (Some(order_id), "paid") => {
                    payment_methods::masked_by_order(ctx.db(), order_id).await?
                }
                _ => None,
            };
            text(row, views::checkout(&c, card), delivery)
        }
        "payment_method" => {
            crate::row! {
                struct Pm {
                    customer_ref: String,
                    brand: Option<String>,
                    last4: Option<String>,
                    exp_month: Option<u8>,
                    exp_year: Option<u16>,
                    created_at: i64,
                }
            }
            let pm: Pm = snapshot(row).ok_or_else(broken)?;
            let card = MaskedCard {
                brand: pm.brand,
                last4: pm.last4,
                exp_month: pm.exp_month,
                exp_year: pm.exp_year,
            };
            let data = views::payment_method(&pm.customer_ref, &card, pm.created_at);
            text(row, data, delivery)
        }
        _ => return Err(broken()),
    };
    text.map_err(|_| broken())
}

fn text<T: Serialize>(
    row: &EventRow,
    data: T,
    delivery: Option<&DeliveryView>,
) -> serde_json::Result<String> {
    serde_json::to_string(&views::event(
        &row.id,
        row.kind.as_str(),
        row.created_at,
        data,
        None,
        delivery,
    ))
}

/// The row as the trigger saw it. Read the way D1 rows are (through a JavaScript value), so
/// each row type keeps a single decoder in the wasm.
fn snapshot<T: FromRow>(row: &EventRow) -> Option<T> {
    let value = js_sys::JSON::parse(&row.snapshot).ok()?;
    crate::store::row::one(value).ok()
}

/// Puts every event waiting for delivery on the EVENTS queue (or delivers them here when the
/// worker has no such queue). Called after each change-making invocation and by the cron,
/// which also finds events whose message was lost. Returns how many were dispatched.
pub async fn dispatch(ctx: &Ctx) -> Result<u32, Problem> {
    let result = ctx.db().batch_results(vec![dispatch_sql(ctx)]).await?;
    dispatch_claimed(ctx, &result[0]).await
}

/// The write half of [`dispatch`], to ride in the batch that writes the events: it claims them
/// for delivery (or marks them feed-only when no merchant webhook is configured).
pub fn dispatch_sql(ctx: &Ctx) -> Stmt {
    if ctx.config.merchant_webhook.is_none() {
        return events::mark_feed_only_sql();
    }
    let wall = ctx.wall_ms();
    events::claim_for_delivery_sql(wall, wall - LOST_AFTER_MS, SEND_BATCH as u32)
}

/// The rest of [`dispatch`], given the result of [`dispatch_sql`]: sends what it claimed.
pub async fn dispatch_claimed(ctx: &Ctx, claimed: &BatchResult) -> Result<u32, Problem> {
    if ctx.config.merchant_webhook.is_none() {
        return Ok(0);
    }
    let ids = events::claimed_ids(claimed)?;
    let count = ids.len() as u32;
    if ids.is_empty() {
        return Ok(0);
    }
    match ctx.events_queue() {
        Some(queue) => send(ctx, queue, ids).await,
        // No queue: one attempt each, here; a failed one is retried by a later dispatch.
        None => {
            for id in ids {
                deliver(ctx, &id).await?;
            }
        }
    }
    Ok(count)
}

async fn send(ctx: &Ctx, queue: &Queue, ids: Vec<String>) {
    let count = ids.len();
    let shard = u32::try_from(ctx.shard()).ok().filter(|k| *k > 0);
    let jobs: Vec<EventJob> = ids
        .into_iter()
        .map(|event| EventJob { event, shard })
        .collect();
    // Not sent: still `queued`, so the cron dispatches them again once they count as lost.
    if let Err(e) = queue.send_batch(jobs).await {
        ctx.log.error(
            "events not queued",
            crate::fields! {"count": count, "error": e.to_string()},
        );
    }
}

/// How one delivery attempt of an event ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered now, or nothing (more) to do for it.
    Done,
    /// Failed; try again after this many seconds.
    RetryIn(u32),
}

/// One attempt to deliver an event, recorded with its outcome.
pub async fn deliver(ctx: &Ctx, event_id: &str) -> Result<Delivery, Problem> {
    let Some(webhook) = ctx.config.merchant_webhook.clone() else {
        return Ok(Delivery::Done);
    };
    let Some(row) = events::get(ctx.db(), event_id).await? else {
        return Ok(Delivery::Done);
    };
    if !matches!(row.delivery.as_str(), "queued" | "pending") {
        return Ok(Delivery::Done);
    }
    let body = render(ctx, &row, None).await?;
    let attempt = row.attempts + 1;
    let wall = ctx.wall_ms();
    let started = wall;
    let (status, error) = post(ctx, &webhook, &row.id, wall / 1000, &body).await;
    let latency = ctx.wall_ms() - started;
    let delays = &ctx.config.event_retry_delays_s;
    let round_attempt = (attempt - row.round_base) as usize;
    let (outcome, result) = match (&status, &error) {
        (Some(s), None) if (200..300).contains(s) => (Attempted::Delivered, Delivery::Done),
        _ => {
            let error = error.as_deref().unwrap_or("http_error");
            match delays.get(round_attempt - 1) {
                Some(&delay) => (Attempted::Retry { error }, Delivery::RetryIn(delay)),
                None => (Attempted::GaveUp { error }, Delivery::Done),
            }
        }
    };
    ctx.db()
        .batch(events::record_attempt(
            &row.id, attempt, status, latency, &outcome, wall,
        ))
        .await?;
    ctx.log.info(
        "event delivery",
        crate::fields! {
            "eventId": row.id,
            "type": row.kind,
            "attempt": attempt,
            "status": status,
            "error": error,
            "durationMs": latency,
        },
    );
    Ok(result)
}

/// POSTs a signed event; the status code, or why there is none (the merchant's free text is
/// never kept: it could be anything).
async fn post(
    ctx: &Ctx,
    webhook: &MerchantWebhook,
    id: &str,
    timestamp: i64,
    body: &str,
) -> (Option<u16>, Option<String>) {
    let headers = Headers::new();
    // Signed with both secrets during a rotation (space-separated, as the specification
    // allows): the merchant's endpoint verifies with whichever it holds.
    let mut signature = sign(&webhook.key, id, timestamp, body);
    if let Some(previous) = &webhook.previous_key {
        signature = format!("{signature} {}", sign(previous, id, timestamp, body));
    }
    for (name, value) in [
        ("content-type", "application/json"),
        ("user-agent", "recurring-edge-webhooks"),
        ("webhook-id", id),
        ("webhook-timestamp", &timestamp.to_string()),
        ("webhook-signature", &signature),
    ] {
        if headers.set(name, value).is_err() {
            return (None, Some("bad_header".into()));
        }
    }
    let Some(request) = crate::outbound::request("POST", &webhook.url, Some(&headers), Some(body))
    else {
        return (None, Some("bad_url".into()));
    };
    let _connection = ctx.connections().acquire().await;
    ctx.meter.subrequest();
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
        let status = response.status_code();
        // The body is read (and dropped) so the connection is free for the next request.
        let _ = response.bytes().await;
        Ok::<u16, worker::Error>(status)
    };
    let timeout = Delay::from(Duration::from_millis(u64::from(webhook.timeout_ms)));
    match select(pin!(exchange), pin!(timeout)).await {
        Either::Left((Ok(status), _)) if (200..300).contains(&status) => (Some(status), None),
        Either::Left((Ok(status), _)) => (Some(status), Some(format!("http_{status}"))),
        Either::Left((Err(_), _)) => (None, Some("network".into())),
        Either::Right(_) => {
            controller.abort();
            (None, Some("timeout".into()))
        }
    }
}

/// Whether a queue message is an event delivery (the queue handler serves both queues).
pub fn is_event_job(raw: &RawMessage) -> bool {
    parse_job(raw).is_some()
}

fn parse_job(raw: &RawMessage) -> Option<EventJob> {
    crate::store::row::one(raw.body()).ok()
}

/// The `queue` handler for the events queue: one attempt per event, many at once.
pub async fn consume(batch: MessageBatch<Value>, env: &Env, config: Config) -> worker::Result<()> {
    let Ok(ctx) = Ctx::from_env(env, config) else {
        batch.retry_all();
        return Ok(());
    };
    let jobs: Vec<(RawMessage, Option<EventJob>)> = batch
        .raw_iter()
        .map(|raw| {
            let job = parse_job(&raw);
            (raw, job)
        })
        .collect();
    let ctx = &ctx;
    let results = RefCell::new(Vec::new());
    let done = &results;
    let mut deliveries = jobs.into_iter().map(|(raw, job)| -> Job<'_> {
        Box::pin(async move {
            let outcome = match &job {
                Some(job) => {
                    let shard = job.shard.map_or(0, |k| k as usize);
                    deliver(&ctx.on_shard(shard), &job.event).await
                }
                None => Ok(Delivery::Done),
            };
            done.borrow_mut().push((raw, outcome));
        })
    });
    concurrently::run(ctx.config.consumer_concurrency as usize, &mut deliveries).await;
    for (raw, outcome) in results.into_inner() {
        match outcome {
            Ok(Delivery::Done) => raw.ack(),
            Ok(Delivery::RetryIn(seconds)) => raw.retry_with_options(
                &QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(seconds)
                    .build(),
            ),
            // The ledger could not be read or written: the same attempt, a little later.
            Err(p) => {
                ctx.log
                    .error("event not delivered", crate::fields! {"detail": p.detail});
                raw.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(30)
                        .build(),
                );
            }
        }
    }
    Ok(())
}
