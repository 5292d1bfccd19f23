//! `POST /v1/webhooks/psp`: the provider's event notifications.
//!
//! The signature is checked over the raw bytes before anything else; a bad one stores nothing.
//! An event is a hint: it only tells which order to look at, and the order status decides.
//! Each eventId is processed once. When an event announces an outcome the status does not show
//! yet (the provider's status lags), the answer is 503 and nothing is recorded, so a redelivery
//! is processed afresh; the cron reconciles the order in any case.

use serde::Deserialize;
use worker::{Request, Response, console_log};

use super::{body, respond};
use crate::context::Ctx;
use crate::http::problem::Problem;
use crate::params;
use crate::psp::signature;
use crate::psp::webhook::WebhookEvent;
use crate::services::activation::{self, Activation};
use crate::services::charging::{self, Mode, Patience};
use crate::services::refunding;
use crate::store::checkouts;
use crate::store::db::stmt;
use crate::validate::MAX_WEBHOOK_BYTES;

#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// The order reached a final state in the ledger (now or earlier).
    Settled,
    /// Nothing final yet, and the event did not claim otherwise.
    Noted,
    /// The event announced an outcome the provider's status does not confirm yet.
    Unconfirmed,
    /// Not an order of ours.
    Ignored,
}

#[derive(Deserialize)]
struct Owner {
    owner_kind: String,
    owner_id: String,
    status: String,
}

pub async fn receive(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let raw = body::raw(req, MAX_WEBHOOK_BYTES).await?;
    let presented = req.headers().get("x-webhook-signature").ok().flatten();
    if !signature::verify(&ctx.config.webhook_secret, &raw, presented.as_deref()) {
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
    // Whether the event was seen, and whose order it is, in one round trip.
    let lookup = ctx
        .db()
        .batch_results(vec![
            stmt(
                "SELECT event_id FROM webhook_events WHERE event_id = ?",
                params![&event.metadata.event_id],
            ),
            stmt(
                "SELECT owner_kind, owner_id, status FROM provider_orders WHERE order_id = ?",
                params![event.order_id()],
            ),
        ])
        .await?;
    if !lookup[0].rows::<serde_json::Value>()?.is_empty() {
        return respond::json(
            200,
            &serde_json::json!({"received": true, "duplicate": true}),
        );
    }
    let owner: Option<Owner> = lookup[1].rows::<Owner>()?.into_iter().next();

    let wall = ctx.wall_ms();
    let stale = event.is_stale(wall, ctx.config.webhook_max_age_ms);
    let handled = match event.order_id() {
        None => Handled::Ignored,
        // An event that announces no outcome changes nothing we record: note it and move on.
        Some(_) if !event.announces_outcome() => Handled::Noted,
        Some(order_id) => handle_order(ctx, &event, order_id, owner, stale).await?,
    };
    console_log!(
        "webhook {} {} order {} -> {:?}{}",
        event.metadata.event_id,
        event.event_type,
        event.order_id().unwrap_or("-"),
        handled,
        if stale { " (stale)" } else { "" }
    );
    if handled == Handled::Unconfirmed {
        return Err(Problem::new(503, "not-confirmed-yet", "Not confirmed yet")
            .detail("The order status does not confirm this event yet; deliver it again later.")
            .header("Retry-After", "5"));
    }
    let outcome = match handled {
        Handled::Settled => "settled",
        Handled::Noted => "noted",
        Handled::Ignored => "ignored",
        Handled::Unconfirmed => unreachable!(),
    };
    let now = ctx.now().await?;
    ctx.db()
        .run(
            "INSERT INTO webhook_events (event_id, event_type, order_id, outcome, received_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            params![
                &event.metadata.event_id,
                &event.event_type,
                event.order_id(),
                outcome,
                now
            ],
        )
        .await?;
    respond::json(200, &serde_json::json!({"received": true}))
}

async fn handle_order(
    ctx: &Ctx,
    event: &WebhookEvent,
    order_id: &str,
    owner: Option<Owner>,
    stale: bool,
) -> Result<Handled, Problem> {
    let settled = match owner {
        // We cancelled this order ourselves to settle an unknown attempt; its charge moved on.
        Some(Owner { status, .. }) if status == "fenced" => return Ok(Handled::Noted),
        Some(Owner {
            owner_kind,
            owner_id,
            ..
        }) => match owner_kind.as_str() {
            "checkout" => {
                let Some(checkout) = checkouts::get(ctx.db(), &owner_id).await? else {
                    return Ok(Handled::Ignored);
                };
                !matches!(
                    activation::reconcile(ctx, &checkout).await?,
                    Activation::Pending { .. }
                )
            }
            "charge" => {
                let charge =
                    charging::drive_charge(ctx, &owner_id, Mode::SettleOnly, Patience::Poll(&[]))
                        .await?;
                charge.status == "succeeded" || charge.status == "failed"
            }
            "refund" => refunding::settle(ctx, &owner_id).await?,
            _ => return Ok(Handled::Ignored),
        },
        // A return order whose creation timed out: the refund learns its order id from the
        // signed event, confirmed by that order's status. Old events are not trusted for this.
        None => match event.reference_id() {
            Some(reference) if reference.starts_with("re_") && !stale => {
                if !refunding::adopt_order(ctx, reference, order_id).await? {
                    return Ok(Handled::Ignored);
                }
                refunding::settle(ctx, reference).await?
            }
            _ => return Ok(Handled::Ignored),
        },
    };
    Ok(if settled {
        Handled::Settled
    } else {
        Handled::Unconfirmed
    })
}
