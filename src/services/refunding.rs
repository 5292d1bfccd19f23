//! Refunds the provider accepts: a full refund on the day of the purchase is a void; anything
//! else waits until the purchase has settled and is then a return order (the provider refuses
//! a return of an unsettled purchase with `OR_0035`). The decisions are the core's
//! (`billing::refund_plan`); this flow claims each step in the ledger before the call that can
//! move money, and reads the provider's status whenever an answer was lost.

use std::time::Duration;

use worker::Delay;

use crate::context::Ctx;
use crate::store::charges::{self, ChargeRow};
use crate::store::refunds::{self, Finished, RefundRow};
use recurring_core::billing::refund_plan::{self, Method, Purchase, Stage, Step};
use recurring_core::billing::settlement::{self, Stage as Settlement};
use recurring_core::billing::time::HOUR_MS;
use recurring_core::http::problem::Problem;
use recurring_core::psp::outcome::{PageOutcome, return_outcome};
use recurring_core::psp::types::*;

const POLL_DELAYS_MS: [u64; 4] = [100, 250, 500, 1000];

/// The provider refuses a return of a purchase it has not settled with this code.
const NOT_SETTLED: &str = "OR_0035";

/// A status that could not be read is read again after this long.
const UNREADABLE_RETRY_MS: i64 = 5 * 60_000;

/// What the refund gives back: the charge's own payment, or a payment nobody expected.
struct Refunded {
    purchase: Purchase,
    order_id: Option<String>,
    payment_id: Option<String>,
    /// The ledger saw the payment batched (or settled) by the provider: too late to void.
    batched: bool,
}

fn refunded(refund: &RefundRow, charge: &ChargeRow) -> Refunded {
    let order_id = refund
        .purchase_order_id
        .clone()
        .or_else(|| charge.order_id.clone());
    match &refund.reverses_payment_id {
        // An unexpected payment is refunded whole, from the moment it was found.
        Some(payment_id) => Refunded {
            purchase: Purchase {
                amount: refund.amount,
                completed_at: refund.created_at,
            },
            order_id,
            payment_id: Some(payment_id.clone()),
            batched: false,
        },
        None => Refunded {
            purchase: Purchase {
                amount: charge.amount,
                completed_at: charge.settled_at.unwrap_or(charge.updated_at),
            },
            order_id,
            payment_id: charge.payment_id.clone(),
            batched: matches!(
                charge.settlement_status.as_deref(),
                Some("processed" | "settled" | "error")
            ),
        },
    }
}

/// Moves a freshly claimed refund as far as it can go now.
pub async fn start(ctx: &Ctx, refund: &RefundRow, charge: &ChargeRow) -> Result<(), Problem> {
    advance_with(ctx, refund, charge).await
}

/// Moves a refund as far as it can go now: the cron calls it for refunds whose purchase is due
/// to be read again.
pub async fn advance(ctx: &Ctx, refund_id: &str) -> Result<(), Problem> {
    let Some(refund) = refunds::get(ctx.db(), refund_id).await? else {
        return Ok(());
    };
    let Some(charge) = charges::get(ctx.db(), &refund.charge_id).await? else {
        return Ok(());
    };
    advance_with(ctx, &refund, &charge).await
}

async fn advance_with(ctx: &Ctx, refund: &RefundRow, charge: &ChargeRow) -> Result<(), Problem> {
    let now = ctx.now().await?;
    let what = refunded(refund, charge);
    let stage = Stage::parse(refund.stage.as_deref());
    if what.order_id.is_none() && matches!(stage, Stage::New | Stage::AwaitingSettlement) {
        let reason = Finished::Failed("no_purchase_order");
        return refunds::finish(ctx.db(), refund, reason, now).await;
    }
    match stage {
        Stage::New => {
            match refund_plan::first_step(refund.amount, what.purchase, what.batched, now) {
                Step::Void => void(ctx, refund, &what, now).await,
                _ => read_purchase(ctx, refund, charge, &what, stage, now).await,
            }
        }
        Stage::Voiding | Stage::AwaitingSettlement => {
            read_purchase(ctx, refund, charge, &what, stage, now).await
        }
        Stage::Returning => settle(ctx, &refund.id).await.map(|_| ()),
        Stage::Done => Ok(()),
    }
}

/// Claims and sends a void. Its answer decides when it is clear; a lost answer is settled by
/// reading the purchase's status later.
async fn void(ctx: &Ctx, refund: &RefundRow, what: &Refunded, now: i64) -> Result<(), Problem> {
    let Some(payment_id) = what.payment_id.as_deref() else {
        return wait(ctx, refund, now, now).await;
    };
    if !refunds::take_void(ctx.db(), &refund.id, now).await? {
        return Ok(());
    }
    match ctx.psp().void_payment(payment_id).await {
        Ok(answer) if answer.void_status == "VOIDED" => {
            refunds::finish(ctx.db(), refund, Finished::Succeeded(Method::Void), now).await
        }
        // Too late (the day's batch has it) or refused: it waits for settlement instead, read
        // again by the next tick.
        Ok(answer) if answer.void_status == "CANNOT_VOID" => wait(ctx, refund, now, now).await,
        Err(e) if e.is_refusal() => wait(ctx, refund, now, now).await,
        // VOID_INITIATED, or no answer: the purchase's status tells, at the next read.
        Ok(_) | Err(_) => {
            ctx.log.info(
                "void outcome not known yet",
                crate::fields! {"refundId": refund.id},
            );
            Ok(())
        }
    }
}

/// Nothing is sent; the purchase is read again at `next_at`.
async fn wait(ctx: &Ctx, refund: &RefundRow, next_at: i64, now: i64) -> Result<(), Problem> {
    refunds::await_settlement(ctx.db(), &refund.id, next_at, now).await?;
    Ok(())
}

/// Reads the purchase's transaction and takes the step it allows.
async fn read_purchase(
    ctx: &Ctx,
    refund: &RefundRow,
    charge: &ChargeRow,
    what: &Refunded,
    stage: Stage,
    now: i64,
) -> Result<(), Problem> {
    let Some(order_id) = what.order_id.as_deref() else {
        return Ok(());
    };
    let status = match ctx.psp().order_status(order_id).await {
        Ok(status) => status,
        Err(_) => {
            let next_at = now + UNREADABLE_RETRY_MS;
            return match stage {
                // A void that may be in flight stays one: the next read decides.
                Stage::Voiding => Ok(()),
                _ => wait(ctx, refund, next_at, now).await,
            };
        }
    };
    let seen = status
        .transaction(what.payment_id.as_deref(), "PURCHASE")
        .map(settlement::stage_of)
        .unwrap_or(Settlement::Unknown);
    match refund_plan::after_reading(stage, refund.amount, what.purchase, &seen, now, 1) {
        Step::Void => void(ctx, refund, what, now).await,
        Step::Return => {
            if stage != Stage::AwaitingSettlement {
                wait(ctx, refund, now, now).await?;
            }
            create_return(ctx, refund, charge, what, now).await
        }
        Step::WaitUntil(next_at) => wait(ctx, refund, next_at.max(now + HOUR_MS / 60), now).await,
        Step::Succeeded(method) => {
            refunds::finish(ctx.db(), refund, Finished::Succeeded(method), now).await
        }
        Step::Failed(reason) => {
            refunds::finish(ctx.db(), refund, Finished::Failed(reason), now).await
        }
    }
}

/// Claims the return order, creates it, then reads its status for a while.
async fn create_return(
    ctx: &Ctx,
    refund: &RefundRow,
    charge: &ChargeRow,
    what: &Refunded,
    now: i64,
) -> Result<(), Problem> {
    let Some(purchase_order_id) = what.order_id.clone() else {
        return Ok(());
    };
    if !refunds::take_return(ctx.db(), &refund.id, now).await? {
        return Ok(());
    }
    let config = &ctx.config;
    // The return goes through the terminal the purchase went through: the hosted page for a
    // checkout, and for a charge a card replacement paid.
    let through_page = charge.kind == "checkout"
        || crate::store::checkouts::owns_order(ctx.db(), &purchase_order_id).await?;
    let terminal_id = if through_page {
        &config.psp.page_terminal_id
    } else {
        &config.psp.mit_terminal_id
    };
    let order = CreateOrder {
        terminal_id: terminal_id.clone(),
        reference_id: refund.id.clone(),
        order_lines: vec![OrderLine {
            id: "refund".into(),
            name: match refund.reverses_payment_id {
                None => format!("Refund: {}", charge.description),
                Some(_) => format!("Refund of an unexpected payment: {}", charge.description),
            },
            quantity: -1,
            amount: Amount::of(refund.amount, &refund.currency),
            purchase_order_id: Some(purchase_order_id),
        }],
        total_order_amount: Amount::of(-refund.amount, &refund.currency),
        customer: None,
        control_functions: ControlFunctions {
            initiate_payments_options: Some(InitiatePaymentsOptions {
                payment_method: "CARD_NP".into(),
                amount: None,
            }),
            call_back_url: Some(config.webhook_url()),
            online: None,
        },
    };
    match ctx.psp().create_order(&order).await {
        Ok(created) => {
            refunds::set_order(ctx.db(), &refund.id, &created.order_id, now).await?;
            // The return settles asynchronously, usually within a second; past that the
            // webhook or the cron finishes it.
            for delay in POLL_DELAYS_MS {
                Delay::from(Duration::from_millis(delay)).await;
                if settle(ctx, &refund.id).await? {
                    break;
                }
            }
        }
        // Not settled in the provider's eyes (its status lagged ours): nothing moved; wait.
        Err(e) if e.is_refusal() && e.code() == NOT_SETTLED => {
            let next_at = settlement::next_check(now, &Settlement::Processed, 1);
            refunds::return_refused_unsettled(ctx.db(), &refund.id, next_at, now).await?;
        }
        Err(e) if e.is_refusal() => {
            let code = e.code();
            refunds::finish(ctx.db(), refund, Finished::Failed(&code), now).await?;
        }
        Err(e) => {
            // The return order may exist. Creating another could refund twice, so the refund
            // waits for the order's webhook (which names the refund) or for an operator.
            ctx.log.warn(
                "return order outcome unknown",
                crate::fields! {"refundId": refund.id, "code": e.code()},
            );
            refunds::note(ctx.db(), &refund.id, &e.code(), now).await?;
        }
    }
    Ok(())
}

/// Reads the return order's status and records a final outcome. True when the refund is final.
pub async fn settle(ctx: &Ctx, refund_id: &str) -> Result<bool, Problem> {
    let Some(refund) = refunds::get(ctx.db(), refund_id).await? else {
        return Ok(false);
    };
    if refund.status == "succeeded" || refund.status == "failed" {
        return Ok(true);
    }
    let Some(order_id) = refund.order_id.clone() else {
        return Ok(false);
    };
    let status = match ctx.psp().order_status(&order_id).await {
        Ok(status) => status,
        Err(_) => return Ok(false),
    };
    let now = ctx.now().await?;
    match return_outcome(&status) {
        PageOutcome::Paid { .. } => {
            refunds::finish(ctx.db(), &refund, Finished::Succeeded(Method::Return), now).await?
        }
        PageOutcome::Failed { reason } => {
            refunds::finish(ctx.db(), &refund, Finished::Failed(&reason), now).await?
        }
        PageOutcome::Pending => return Ok(false),
    }
    Ok(true)
}

/// A refund whose return order was created without our learning its id adopts the order a
/// signed webhook names (the provider signs the referenceId it echoes), once the provider
/// confirms the order exists.
pub async fn adopt_order(ctx: &Ctx, refund_id: &str, order_id: &str) -> Result<bool, Problem> {
    let Some(refund) = refunds::get(ctx.db(), refund_id).await? else {
        return Ok(false);
    };
    if refund.order_id.is_some() || refund.status != "pending" {
        return Ok(false);
    }
    if ctx.psp().order_status(order_id).await.is_err() {
        return Ok(false);
    }
    let now = ctx.now().await?;
    refunds::set_order(ctx.db(), refund_id, order_id, now).await
}
