//! Refunds as the provider's return orders. Creating the return order is what moves the money
//! back, so it happens at most once per refund; an unknown outcome is never retried blindly.

use std::time::Duration;

use worker::Delay;

use crate::context::Ctx;
use crate::store::charges::ChargeRow;
use crate::store::refunds::{self, RefundRow};
use recurring_core::http::problem::Problem;
use recurring_core::psp::outcome::{PageOutcome, return_outcome};
use recurring_core::psp::types::*;

const POLL_DELAYS_MS: [u64; 4] = [100, 250, 500, 1000];

/// Creates the return order for a freshly claimed refund, then reads its status.
pub async fn start(ctx: &Ctx, refund: &RefundRow, charge: &ChargeRow) -> Result<(), Problem> {
    let now = ctx.now().await?;
    if !refunds::take_creation(ctx.db(), &refund.id, now).await? {
        return Ok(());
    }
    let Some(purchase_order_id) = refund
        .purchase_order_id
        .clone()
        .or_else(|| charge.order_id.clone())
    else {
        refunds::finish(ctx.db(), refund, false, Some("no_purchase_order"), now).await?;
        return Ok(());
    };
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
        Err(e) if e.is_refusal() => {
            refunds::finish(ctx.db(), refund, false, Some(&e.code()), now).await?;
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
        PageOutcome::Paid { .. } => refunds::finish(ctx.db(), &refund, true, None, now).await?,
        PageOutcome::Failed { reason } => {
            refunds::finish(ctx.db(), &refund, false, Some(&reason), now).await?
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
