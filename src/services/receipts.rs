//! Receipts, which the provider issues once a transaction has settled: its link, kept on the
//! charge once known, and its email, sent by the provider to the customer.

use crate::context::Ctx;
use crate::store::charges::ChargeRow;
use crate::store::settlements;
use recurring_core::billing::settlement;
use recurring_core::http::problem::Problem;

/// Where a charge's receipt stands.
pub enum Receipt {
    Ready(String),
    /// Not issued yet: ask again in about this many seconds.
    NotReady {
        retry_after_s: u32,
    },
}

/// A receipt is asked for again this long after the provider said it has none yet.
const NOT_READY_RETRY_S: u32 = 3_600;

fn not_ready(charge: &ChargeRow, now: i64) -> Receipt {
    let completed = charge.settled_at.unwrap_or(charge.updated_at);
    let expected = settlement::expected_settlement(completed);
    let seconds = ((expected - now) / 1000).clamp(60, i64::from(NOT_READY_RETRY_S) * 24);
    Receipt::NotReady {
        retry_after_s: seconds as u32,
    }
}

/// The charge's receipt URL: known, asked of the provider once settled, or not ready.
pub async fn link(ctx: &Ctx, charge: &ChargeRow) -> Result<Receipt, Problem> {
    if let Some(url) = &charge.receipt_url {
        return Ok(Receipt::Ready(url.clone()));
    }
    let now = ctx.now().await?;
    let (Some("settled"), Some(order_id)) = (
        charge.settlement_status.as_deref(),
        charge.order_id.as_deref(),
    ) else {
        return Ok(not_ready(charge, now));
    };
    match ctx.psp().receipt_link(order_id).await {
        Ok(link) => {
            settlements::set_receipt_url(ctx.db(), &charge.id, &link.receipt_url).await?;
            Ok(Receipt::Ready(link.receipt_url))
        }
        // "No Completed transaction found": the provider has not caught up with its batch.
        Err(e) if e.is_refusal() => Ok(Receipt::NotReady {
            retry_after_s: NOT_READY_RETRY_S,
        }),
        Err(e) => Err(Problem::provider_unavailable(format!(
            "The provider did not answer for the receipt ({}); try again.",
            e.code()
        ))),
    }
}

/// Asks the provider to email the charge's receipt to `to`. `Ok(None)` once sent.
pub async fn email(ctx: &Ctx, charge: &ChargeRow, to: &str) -> Result<Option<Receipt>, Problem> {
    let now = ctx.now().await?;
    let (Some("settled"), Some(order_id)) = (
        charge.settlement_status.as_deref(),
        charge.order_id.as_deref(),
    ) else {
        return Ok(Some(not_ready(charge, now)));
    };
    match ctx.psp().email_receipt(order_id, to).await {
        Ok(()) => Ok(None),
        Err(e) if e.is_refusal() => Ok(Some(Receipt::NotReady {
            retry_after_s: NOT_READY_RETRY_S,
        })),
        Err(e) => Err(Problem::provider_unavailable(format!(
            "The provider did not answer for the receipt email ({}); try again.",
            e.code()
        ))),
    }
}

/// `RECEIPTS=email`: emails a settled charge's receipt to its customer, once. True when sent.
pub async fn email_once(ctx: &Ctx, charge_id: &str, now: i64) -> Result<bool, Problem> {
    let Some(charge) = crate::store::charges::get(ctx.db(), charge_id).await? else {
        return Ok(false);
    };
    let Some(to) = settlements::customer_email(ctx.db(), &charge.customer_ref).await? else {
        ctx.log.info(
            "receipt not emailed: the customer has no email",
            crate::fields! {"chargeId": charge_id},
        );
        return Ok(false);
    };
    if !settlements::claim_receipt_email(ctx.db(), charge_id, now).await? {
        return Ok(false);
    }
    match email(ctx, &charge, &to).await {
        Ok(None) => Ok(true),
        Ok(Some(_)) | Err(_) => {
            // Not sent: the claim is given back, and the merchant can send it with
            // `POST /v1/charges/:id/receipt/email`.
            ctx.log.warn(
                "receipt not emailed",
                crate::fields! {"chargeId": charge_id},
            );
            settlements::release_receipt_email(ctx.db(), charge_id, now).await?;
            Ok(false)
        }
    }
}
