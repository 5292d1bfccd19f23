//! `POST /v1/webhooks/psp`: the provider's event notifications.
//!
//! The signature is checked over the raw bytes before anything else; a bad one stores nothing.
//! A correctly signed event is recorded and answered 200 at once: the provider does not retry
//! events sent to an order's `callBackUrl`, so an answer that asks for a redelivery would lose
//! them. Its confirmation (reading the order status) runs after the answer, and again from the
//! cron until the order settles. 503 means only that the event could not be recorded.

use worker::{Context, Env, Request, Response};

use super::{body, respond};
use crate::context::Ctx;
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
    let recorded = webhook_events::record(ctx, &event, stale)
        .await
        .map_err(|_| {
            Problem::new(503, "not-recorded", "Event not recorded")
                .detail("The event could not be recorded; deliver it again later.")
                .header("Retry-After", "5")
        })?;
    let owner = match recorded {
        Recorded::Duplicate { settled: true } => {
            return respond::json_text(200, r#"{"duplicate":true,"received":true}"#.to_owned());
        }
        Recorded::Noted => return respond::json_text(200, r#"{"received":true}"#.to_owned()),
        Recorded::New(owner) => owner,
        Recorded::Duplicate { settled: false } => OwnerLookup::NotRead,
    };
    let now = ctx.now().await?;
    let received = Received {
        event_id: event.metadata.event_id.clone(),
        event_type: event.event_type.clone(),
        order_id: event.order_id().map(str::to_owned),
        reference_id: (!stale)
            .then(|| event.reference_id().map(str::to_owned))
            .flatten(),
        checks: 0,
        received_at: now,
    };
    let recorded_cost = ctx.meter.usage();
    let clock = ctx.clock();
    let env = env.clone();
    let config = ctx.config.clone();
    let log = ctx.log.clone();
    worker_ctx.wait_until(async move {
        let confirmed = match Ctx::with_log(&env, config, log.clone()) {
            Ok(ctx) => {
                // Business time as the record saw it: the confirmation need not read it again.
                ctx.share_clock(&clock);
                let confirmation = Confirmation::AfterWebhook {
                    owner,
                    spent: recorded_cost,
                };
                webhook_events::confirm(&ctx, &received, confirmation)
                    .await
                    .map(|_| ())
            }
            Err(p) => Err(p),
        };
        // The cron confirms it later: the event is recorded.
        if let Err(p) = confirmed {
            log.warn(
                "webhook confirmation deferred to the cron",
                crate::fields! {"eventId": received.event_id, "detail": p.detail},
            );
        }
    });
    respond::json_text(200, r#"{"received":true}"#.to_owned())
}
