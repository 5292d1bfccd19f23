//! `POST /v1/webhooks/psp`: the provider's event notifications.
//!
//! The signature is checked over the raw bytes before anything else; a bad one stores nothing.
//! A correctly signed event that announces an outcome is recorded and answered 200 at once: the
//! provider does not retry events sent to an order's `callBackUrl`, so an answer that asks for a
//! redelivery would lose them. Its confirmation (reading the order status) runs after the
//! answer, and again from the cron until the order settles. 503 means only that the event could
//! not be recorded. An event without an outcome is answered first and recorded after.

use worker::{Context, Env, Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::meter::Usage;
use crate::services::webhook_events::{self, Confirmation, OwnerLookup, Received, Recorded};
use recurring_core::http::problem::Problem;
use recurring_core::psp::signature;
use recurring_core::psp::webhook::WebhookEvent;
use recurring_core::validate::MAX_WEBHOOK_BYTES;

pub async fn receive(
    req: &mut Request,
    ctx: &Ctx,
    env: &Env,
    worker_ctx: &Context,
) -> Result<Response, Problem> {
    let raw = body::raw(req, MAX_WEBHOOK_BYTES).await?;
    let presented = req.headers().get("x-webhook-signature").ok().flatten();
    // During a rotation the previous secret is still accepted: the provider may sign with
    // either until its dashboard has the new one everywhere.
    let signed_by = |secret: &str| signature::verify(secret, &raw, presented.as_deref());
    if !signed_by(&ctx.config.webhook_secret)
        && !ctx
            .config
            .webhook_secret_previous
            .as_deref()
            .is_some_and(signed_by)
    {
        return Err(Problem::unauthorized(
            "The x-webhook-signature header does not match the body.",
        )
        .with(
            "hint",
            "HMAC-SHA512 of the raw body with the webhook secret, base64",
        ));
    }
    let event = WebhookEvent::parse(&raw).ok_or_else(|| {
        Problem::invalid_request("The body is not a webhook event with metadata.eventId.")
    })?;
    let stale = event.is_stale(ctx.wall_ms(), ctx.config.webhook_max_age_ms);
    // The order's records, and this event's with them, are in the shard of what it pays for.
    let ctx = &shard_of(ctx, &event).await?;
    if !event.announces_outcome() {
        // An event that announces no outcome (a payment initiated or processing) moves nothing
        // and needs no retry: it is answered at once and recorded after the answer. A provider
        // that sends a URL's events one at a time then waits for no database write on two of
        // its three events a payment; one lost with a failed write only loses a hint.
        let failed = "webhook without an outcome not recorded";
        after_answer(
            ctx,
            env,
            worker_ctx,
            event.metadata.event_id.clone(),
            failed,
            move |ctx| async move {
                match webhook_events::record(&ctx, &event, stale).await {
                    Ok(recorded) => {
                        if let Some(owner) = recorded.confirmation_owner() {
                            let spent = ctx.meter.usage();
                            confirm(&ctx, &event, stale, owner, spent).await;
                        }
                    }
                    Err(p) => ctx.log.warn(
                        failed,
                        crate::fields! {"eventId": event.metadata.event_id, "detail": p.detail},
                    ),
                }
            },
        );
        return respond::json_text(200, r#"{"received":true}"#.to_owned());
    }
    let recorded = webhook_events::record(ctx, &event, stale)
        .await
        .map_err(|_| {
            Problem::new(503, "not-recorded", "Event not recorded")
                .detail("The event could not be recorded; deliver it again later.")
                .header("Retry-After", "5")
        })?;
    if recorded == (Recorded::Duplicate { settled: true }) {
        return respond::json_text(200, r#"{"duplicate":true,"received":true}"#.to_owned());
    }
    let Some(owner) = recorded.confirmation_owner() else {
        return respond::json_text(200, r#"{"received":true}"#.to_owned());
    };
    // What recording it cost, for the confirmation's log line.
    let spent = ctx.meter.usage();
    // The cron confirms it later if this cannot: the event is recorded.
    let deferred = "webhook confirmation deferred to the cron";
    after_answer(
        ctx,
        env,
        worker_ctx,
        event.metadata.event_id.clone(),
        deferred,
        move |ctx| async move {
            confirm(&ctx, &event, stale, owner, spent).await;
        },
    );
    respond::json_text(200, r#"{"received":true}"#.to_owned())
}

/// The shard of what the event is about: the one its `referenceId` (our charge's, checkout's or
/// refund's id) names, else the one that has its order. The signature vouches for both fields;
/// the shard only says where to look, and what is not found there is an unknown order as
/// before.
async fn shard_of(ctx: &Ctx, event: &WebhookEvent) -> Result<Ctx, Problem> {
    if ctx.shard_count() == 1 {
        return Ok(ctx.on_shard(0));
    }
    if let Some(shard) = event.reference_id().and_then(|r| ctx.for_id(r)) {
        return Ok(shard);
    }
    if let Some(order_id) = event.order_id() {
        crate::row! {
            struct Known {
                known: i64,
            }
        }
        for shard in ctx.every_shard() {
            let known: Option<Known> = shard
                .db()
                .first(
                    crate::sql!(
                        "SELECT EXISTS (SELECT 1 FROM provider_orders WHERE order_id = ?1)
                             OR EXISTS (SELECT 1 FROM checkouts WHERE order_id = ?1)
                             OR EXISTS (SELECT 1 FROM charges WHERE order_id = ?1) AS known"
                    ),
                    crate::params![order_id],
                )
                .await?;
            if known.is_some_and(|k| k.known != 0) {
                return Ok(shard);
            }
        }
    }
    Ok(ctx.on_shard(0))
}

/// Runs `work` after the answer, in a context of its own that shares the request's log and
/// business time (read once: the work need not read it again). A context that cannot be made
/// is logged as `failed`, naming the event by `event_id`.
fn after_answer<F, Fut>(
    ctx: &Ctx,
    env: &Env,
    worker_ctx: &Context,
    event_id: String,
    failed: &'static str,
    work: F,
) where
    F: FnOnce(Ctx) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (env, config, log, clock, shard) = (
        env.clone(),
        ctx.config.clone(),
        ctx.log.clone(),
        ctx.clock(),
        ctx.shard(),
    );
    worker_ctx.wait_until(async move {
        match Ctx::with_log(&env, config, log.clone()) {
            Ok(ctx) => {
                ctx.share_clock(&clock);
                work(ctx.on_shard(shard)).await;
            }
            Err(p) => log.warn(
                failed,
                crate::fields! {"eventId": event_id, "detail": p.detail},
            ),
        }
    });
}

/// Confirms a recorded event by reading its order's status (after the answer); a failure
/// leaves it to the cron, which confirms every recorded event that is not settled.
async fn confirm(ctx: &Ctx, event: &WebhookEvent, stale: bool, owner: OwnerLookup, spent: Usage) {
    let confirmed = async {
        let received = Received {
            event_id: event.metadata.event_id.clone(),
            event_type: event.event_type.clone(),
            order_id: event.order_id().map(str::to_owned),
            reference_id: (!stale)
                .then(|| event.reference_id().map(str::to_owned))
                .flatten(),
            checks: 0,
            received_at: ctx.now().await?,
        };
        let confirmation = Confirmation::AfterWebhook { owner, spent };
        webhook_events::confirm(ctx, &received, confirmation)
            .await
            .map(|_| ())
    };
    if let Err(p) = confirmed.await {
        ctx.log.warn(
            "webhook confirmation deferred to the cron",
            crate::fields! {"eventId": event.metadata.event_id, "detail": p.detail},
        );
    }
}
