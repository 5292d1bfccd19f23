//! Provider webhooks after their signature was checked: recorded first (so the provider gets
//! its 200 as soon as the event is safe), then confirmed by reading the order status, right
//! after the answer and again from the cron until the order settles. An event is a hint: it
//! only says which order to look at, and the status decides.

use std::time::Duration;

use worker::Delay;

use crate::context::Ctx;
use crate::meter::Usage;
use crate::params;
use crate::services::activation::{self, Activation};
use crate::services::charging::{self, Looked};
use crate::services::{order_watching, refunding};
use crate::store::checkouts;
use crate::store::db::Stmt;
use crate::store::orders::{self, OwnerRow};
use recurring_core::http::problem::Problem;
use recurring_core::psp::webhook::{WebhookEvent, announces_outcome};

crate::row! {
    /// An event as recorded, with what its confirmation needs.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub event_id: String,
        pub event_type: String,
        pub order_id: Option<String>,
        /// The reference the signed event echoes; absent when the event was too old to trust it
        /// for anything but a status read.
        pub reference_id: Option<String>,
        pub checks: u32,
        pub received_at: i64,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; its confirmation follows, with the order's owner as the same batch read it.
    New(OwnerLookup),
    /// Recorded and settled at once: it announces no outcome, for an order of ours that is in
    /// use, so there is nothing to confirm (see [`handle_order`]).
    Noted,
    /// Seen before; `settled` when its confirmation is done.
    Duplicate { settled: bool },
}

impl Recorded {
    /// Where the event's confirmation starts from, when it needs one: a new event from the
    /// owner its record read, one seen before and not settled from scratch.
    pub fn confirmation_owner(self) -> Option<OwnerLookup> {
        match self {
            Recorded::New(owner) => Some(owner),
            Recorded::Duplicate { settled: false } => Some(OwnerLookup::NotRead),
            Recorded::Noted | Recorded::Duplicate { settled: true } => None,
        }
    }
}

/// The owner of an event's order, when it was read already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerLookup {
    Read(Option<OwnerRow>),
    NotRead,
}

/// Records a verified event. Only a failure to record it keeps the provider from its 200.
pub async fn record(ctx: &Ctx, event: &WebhookEvent, stale: bool) -> Result<Recorded, Problem> {
    crate::row! {
        struct Seen {
            outcome: String,
        }
    }
    let now = ctx.now().await?;
    let reference = if stale { None } else { event.reference_id() };
    let mut batch = vec![crate::store::db::stmt(
        crate::sql!(
            "INSERT INTO webhook_events (event_id, event_type, order_id, reference_id, outcome,
                 received_at, next_check_at)
             VALUES (?, ?, ?, ?, 'received', ?, ?) ON CONFLICT (event_id) DO NOTHING"
        ),
        params![
            &event.metadata.event_id,
            &event.event_type,
            event.order_id(),
            reference,
            now,
            now
        ],
    )];
    // What `handle_order` would conclude without a status read, decided in the same batch: an
    // event without an outcome, for an order we know and have not fenced, changes nothing.
    // An unknown or fenced order is left to the confirmation, which looks at it.
    let noted_here = match event.order_id() {
        Some(order_id) if !event.announces_outcome() => {
            batch.push(crate::store::db::stmt(
                crate::sql!(
                    "UPDATE webhook_events SET outcome = 'noted', checks = checks + 1,
                     next_check_at = NULL, settled_at = ?
                 WHERE event_id = ? AND outcome = 'received'
                   AND EXISTS (SELECT 1 FROM provider_orders
                               WHERE order_id = ? AND status != 'fenced')"
                ),
                params![now, &event.metadata.event_id, order_id],
            ));
            true
        }
        _ => false,
    };
    batch.push(crate::store::db::stmt(
        crate::sql!("SELECT outcome FROM webhook_events WHERE event_id = ?"),
        params![&event.metadata.event_id],
    ));
    // The confirmation right after starts from the order's owner: read it here too (an event
    // settled in this batch needs none).
    let seen_at = batch.len() - 1;
    if let (Some(order_id), false) = (event.order_id(), noted_here) {
        batch.push(orders::owner_sql(order_id));
    }
    let results = ctx.db().batch_results(batch).await?;
    let seen: Option<Seen> = results[seen_at].rows::<Seen>()?.into_iter().next();
    let owner = match results.get(seen_at + 1) {
        Some(owner) => OwnerLookup::Read(owner.rows::<OwnerRow>()?.into_iter().next()),
        None => OwnerLookup::NotRead,
    };
    if results[0].changes == 0 {
        return Ok(Recorded::Duplicate {
            settled: seen.is_some_and(|s| s.outcome != "received"),
        });
    }
    if noted_here && results[1].changes > 0 {
        log_confirmed(
            ctx,
            &event.metadata.event_id,
            &event.event_type,
            event.order_id(),
            Handled::Noted,
            ctx.meter.usage(),
        );
        return Ok(Recorded::Noted);
    }
    Ok(Recorded::New(owner))
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Handled {
    /// The order reached a final state in the ledger (now or earlier), or its watch looked.
    Settled,
    /// Nothing to confirm: the event announced no outcome.
    Noted,
    /// The status does not confirm the event's outcome yet: looked at again later.
    Unconfirmed,
    /// Not an order of ours.
    Ignored,
}

impl Handled {
    /// The variant's name, as logged.
    pub fn name(self) -> &'static str {
        match self {
            Handled::Settled => "Settled",
            Handled::Noted => "Noted",
            Handled::Unconfirmed => "Unconfirmed",
            Handled::Ignored => "Ignored",
        }
    }

    fn outcome(self) -> &'static str {
        match self {
            Handled::Settled => "settled",
            Handled::Noted => "noted",
            Handled::Unconfirmed => "received",
            Handled::Ignored => "ignored",
        }
    }
}

/// Confirmation is given up after this long: the order's own reconciliation (pending charges,
/// stale checkouts, watched orders) carries on without the event.
const CONFIRM_FOR_MS: i64 = 24 * 3_600_000;

/// Pauses (ms) of a confirmation right after the webhook, while the charge it announces is
/// held by the drive that started its payment: the provider's webhook often overtakes the
/// answer to `POST /payments`, and that drive lets go as soon as it has recorded the payment.
/// Three seconds in all, well inside the time an invocation has after its answer.
const HELD_CHARGE_PAUSES_MS: [u32; 5] = [100, 200, 400, 800, 1600];

/// When a confirmation runs.
pub enum Confirmation {
    /// Right after the webhook's answer: from the owner its record read, waiting a little for a
    /// charge another process holds, and handing on the merchant events it caused. `spent` is
    /// what recording the event cost, for the log line.
    AfterWebhook { owner: OwnerLookup, spent: Usage },
    /// From the cron, which hands on events once at the end of its run.
    Cron,
}

/// Confirms one recorded event by reading its order's status, and records how that went.
pub async fn confirm(
    ctx: &Ctx,
    event: &Received,
    confirmation: Confirmation,
) -> Result<Handled, Problem> {
    let before = ctx.meter.usage();
    let (owner, spent, held_pauses_ms, dispatch): (_, _, &[u32], _) = match confirmation {
        Confirmation::AfterWebhook { owner, spent } => (owner, spent, &HELD_CHARGE_PAUSES_MS, true),
        Confirmation::Cron => (OwnerLookup::NotRead, Usage::default(), &[], false),
    };
    // Set when the event was marked settled together with the outcome it announced.
    let mut event_settled = false;
    let handled = match &event.order_id {
        None => Handled::Ignored,
        Some(order_id) => {
            handle_order(
                ctx,
                event,
                order_id,
                owner,
                held_pauses_ms,
                &mut event_settled,
            )
            .await?
        }
    };
    let now = ctx.now().await?;
    let (outcome, next_check_at) = match handled {
        Handled::Unconfirmed if now - event.received_at > CONFIRM_FOR_MS => ("lapsed", None),
        Handled::Unconfirmed => ("received", Some(now + backoff(event.checks))),
        other => (other.outcome(), None),
    };
    if !event_settled {
        ctx.db()
            .run(
                crate::sql!(
                    "UPDATE webhook_events SET outcome = ?, checks = checks + 1, next_check_at = ?,
                     settled_at = CASE WHEN ? = 'received' THEN NULL ELSE ? END
                 WHERE event_id = ? AND outcome = 'received'"
                ),
                params![outcome, next_check_at, outcome, now, &event.event_id],
            )
            .await?;
    }
    // Only a look that changed something can have left events for the merchant (those of an
    // outcome written with the event were handed on already).
    if dispatch && !event_settled && matches!(handled, Handled::Settled | Handled::Unconfirmed) {
        crate::services::events::dispatch(ctx).await?;
    }
    log_confirmed(
        ctx,
        &event.event_id,
        &event.event_type,
        event.order_id.as_deref(),
        handled,
        spent.plus(&ctx.meter.usage().since(&before)),
    );
    Ok(handled)
}

/// One line per event once it is settled or looked at, with what recording and confirming it
/// cost: operators sizing D1 (and `make bench`) see that a renewal's webhooks are part of its
/// price.
fn log_confirmed(
    ctx: &Ctx,
    event_id: &str,
    event_type: &str,
    order_id: Option<&str>,
    handled: Handled,
    usage: Usage,
) {
    ctx.log.info(
        "webhook confirmed",
        crate::fields! {
            "eventId": event_id,
            "type": event_type,
            "orderId": order_id,
            "outcome": handled.name(),
            "d1Calls": usage.d1_calls,
            "d1Queries": usage.d1_queries,
            "subrequests": usage.subrequests,
        },
    );
}

/// Marks an event settled (the confirmation's own write, when it rides with an outcome).
fn settled_sql(event_id: &str, now: i64) -> Stmt {
    crate::store::db::stmt(
        crate::sql!(
            "UPDATE webhook_events SET outcome = 'settled', checks = checks + 1,
             next_check_at = NULL, settled_at = ?
         WHERE event_id = ? AND outcome = 'received'"
        ),
        params![now, event_id],
    )
}

/// Thirty seconds, doubling up to an hour.
fn backoff(checks: u32) -> i64 {
    (30_000_i64 << checks.min(7)).min(3_600_000)
}

/// Events still unconfirmed whose next look is due (the cron's part).
pub async fn confirm_due(ctx: &Ctx, limit: u32) -> Result<u32, Problem> {
    let now = ctx.now().await?;
    let due: Vec<Received> = ctx
        .db()
        .all(
            crate::sql!(
                "SELECT event_id, event_type, order_id, reference_id, checks, received_at
             FROM webhook_events WHERE outcome = 'received' AND next_check_at <= ?
             ORDER BY next_check_at LIMIT ?"
            ),
            params![now, limit],
        )
        .await?;
    let mut settled = 0;
    for event in &due {
        if confirm(ctx, event, Confirmation::Cron).await? != Handled::Unconfirmed {
            settled += 1;
        }
    }
    Ok(settled)
}

async fn handle_order(
    ctx: &Ctx,
    event: &Received,
    order_id: &str,
    owner: OwnerLookup,
    held_pauses_ms: &[u32],
    event_settled: &mut bool,
) -> Result<Handled, Problem> {
    let owner: Option<OwnerRow> = match owner {
        OwnerLookup::Read(owner) => owner,
        OwnerLookup::NotRead => ctx
            .db()
            .batch_results(vec![orders::owner_sql(order_id)])
            .await?[0]
            .rows::<OwnerRow>()?
            .into_iter()
            .next(),
    };
    let Some(owner) = owner else {
        return unknown_order(ctx, event, order_id).await;
    };
    // An order we stopped using is always looked at: a payment may complete there anyway.
    if owner.status == "fenced" {
        return Ok(match orders::watched(ctx.db(), order_id).await? {
            Some(order) => {
                order_watching::look_at(ctx, &order).await?;
                Handled::Settled
            }
            None => Handled::Ignored,
        });
    }
    // An event that announces no outcome changes nothing we record.
    if !announces_outcome(&event.event_type) {
        return Ok(Handled::Noted);
    }
    let settled = match owner.owner_kind.as_str() {
        "checkout" => {
            let Some(checkout) = checkouts::get(ctx.db(), &owner.owner_id).await? else {
                return Ok(Handled::Ignored);
            };
            !matches!(
                activation::reconcile(ctx, &checkout).await?,
                Activation::Pending { .. }
            )
        }
        "charge" => {
            let mut pauses = held_pauses_ms.iter();
            loop {
                // The event is marked settled, and the merchant events the outcome makes are
                // claimed for delivery, in the write that records the outcome.
                let with_outcome = vec![
                    settled_sql(&event.event_id, ctx.now().await?),
                    crate::services::events::dispatch_sql(ctx),
                ];
                match charging::settle_charge(ctx, &owner.owner_id, with_outcome).await? {
                    (Looked::Final, Some(riding)) => {
                        crate::services::events::dispatch_claimed(ctx, &riding[1]).await?;
                        *event_settled = true;
                        break true;
                    }
                    (Looked::Final, None) => break true,
                    (Looked::Open, _) => break false,
                    (Looked::Held, _) => match pauses.next() {
                        Some(&ms) => Delay::from(Duration::from_millis(u64::from(ms))).await,
                        None => break false,
                    },
                }
            }
        }
        "refund" => refunding::settle(ctx, &owner.owner_id).await?,
        _ => return Ok(Handled::Ignored),
    };
    Ok(if settled {
        Handled::Settled
    } else {
        Handled::Unconfirmed
    })
}

/// An order we have no record of. A return order whose creation timed out learns its id from
/// the signed event (confirmed by the order's status); an order of one of our checkouts or
/// charges that we never recorded is watched; anything else is not ours.
async fn unknown_order(ctx: &Ctx, event: &Received, order_id: &str) -> Result<Handled, Problem> {
    let Some(reference) = event.reference_id.as_deref() else {
        return Ok(Handled::Ignored);
    };
    if reference.starts_with("re_") {
        if !refunding::adopt_order(ctx, reference, order_id).await? {
            return Ok(Handled::Ignored);
        }
        return Ok(if refunding::settle(ctx, reference).await? {
            Handled::Settled
        } else {
            Handled::Unconfirmed
        });
    }
    Ok(
        match order_watching::adopt_unknown(ctx, order_id, reference).await? {
            Some(_) => Handled::Settled,
            None => Handled::Ignored,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::Handled;

    #[test]
    fn an_outcome_is_logged_by_its_variant_name() {
        for handled in [
            Handled::Settled,
            Handled::Noted,
            Handled::Unconfirmed,
            Handled::Ignored,
        ] {
            assert_eq!(handled.name(), format!("{handled:?}"));
        }
    }
}
