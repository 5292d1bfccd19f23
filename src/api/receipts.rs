//! `GET /v1/charges/:id/receipt` and `POST /v1/charges/:id/receipt/email`: the provider's
//! receipt of a charge, which exists once the charge's payment has settled.

use serde::Serialize;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::services::receipts::{self, Receipt};
use crate::store::charges::{self, ChargeRow};
use crate::store::settlements;
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::validate;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptView<'a> {
    charge_id: &'a str,
    receipt_url: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmailedView<'a> {
    charge_id: &'a str,
    /// Where the provider sends it. Not the customer's email unless the request named none.
    email: &'a str,
    status: &'static str,
}

async fn succeeded_charge(ctx: &Ctx, id: &str) -> Result<ChargeRow, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The charge"));
    }
    let charge = charges::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::not_found("The charge"))?;
    if charge.status != "succeeded" || charge.settlement_status.as_deref() == Some("voided") {
        return Err(Problem::conflict(
            "receipt-unavailable",
            "No receipt for this charge",
            "Only a succeeded charge whose payment was not voided has a receipt.",
        ));
    }
    Ok(charge)
}

fn not_ready(retry_after_s: u32) -> Problem {
    Problem::new(409, "receipt-not-ready", "Receipt not ready")
        .detail(
            "The provider issues a receipt once the payment has settled (the business day after \
             its daily batch). Ask again after Retry-After seconds.",
        )
        .header("Retry-After", retry_after_s.to_string())
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let charge = succeeded_charge(ctx, id).await?;
    match receipts::link(ctx, &charge).await? {
        Receipt::Ready(url) => respond::json(
            200,
            &ReceiptView {
                charge_id: &charge.id,
                receipt_url: &url,
            },
        ),
        Receipt::NotReady { retry_after_s } => Err(not_ready(retry_after_s)),
    }
}

/// `{"email"?}`: to that address, or to the customer's own.
pub async fn email(req: &mut Request, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let map = body::optional_object(req).await?.unwrap_or_default();
    let mut f = Fields::new(map);
    let given = f.optional_string("email");
    if let Some(e) = &given {
        f.check(validate::is_email(e), "email", "must be an email address");
    }
    f.finish()?;
    let charge = succeeded_charge(ctx, id).await?;
    let to = match given {
        Some(email) => email,
        None => settlements::customer_email(ctx.db(), &charge.customer_ref)
            .await?
            .ok_or_else(|| {
                Problem::conflict(
                    "customer-email-unknown",
                    "No email for this customer",
                    "The customer gave no email at checkout; send one in the body.",
                )
            })?,
    };
    match receipts::email(ctx, &charge, &to).await? {
        None => respond::json(
            202,
            &EmailedView {
                charge_id: &charge.id,
                email: &to,
                status: "sent",
            },
        ),
        Some(Receipt::NotReady { retry_after_s }) => Err(not_ready(retry_after_s)),
        Some(Receipt::Ready(_)) => Err(Problem::internal("An email answered with a link.")),
    }
}
