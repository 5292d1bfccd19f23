//! `GET /v1/incidents` and `GET /v1/incidents/:id`: what happened that the merchant's operators
//! or finance team must know about, oldest first so a backend can read them all in order.

use serde::Serialize;
use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::store::incidents::{self, IncidentRow};
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::validate;

/// Every kind of incident the backend records.
pub const KINDS: [&str; 9] = [
    "duplicateRefunded",
    "unexpectedPaymentRefunded",
    "latePaymentAdopted",
    "orderLost",
    "outcomeUnknown",
    "paymentStuck",
    "providerRefused",
    "settlementMismatch",
    "settlementError",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IncidentView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkout_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_payment_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    detail: &'a str,
    created_at: String,
}

fn view(i: &IncidentRow) -> IncidentView<'_> {
    IncidentView {
        id: &i.id,
        kind: &i.kind,
        charge_id: i.charge_id.as_deref(),
        checkout_id: i.checkout_id.as_deref(),
        provider_order_id: i.order_id.as_deref(),
        provider_payment_id: i.payment_id.as_deref(),
        refund_id: i.refund_id.as_deref(),
        customer_ref: i.customer_ref.as_deref(),
        amount: i.amount,
        currency: i.currency.as_deref(),
        detail: &i.detail,
        created_at: format_rfc3339(i.created_at),
    }
}

/// `?type=`, `?chargeId=`, `?limit=` and `?startingAfter=<incident id>`.
pub async fn list(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let kind = body::query_param(req, "type");
    if let Some(k) = kind.as_deref()
        && !KINDS.contains(&k)
    {
        return Err(Problem::invalid_request(format!(
            "type must be one of {}.",
            KINDS.join(", ")
        )));
    }
    let charge_id = body::query_param(req, "chargeId");
    if charge_id
        .as_deref()
        .is_some_and(|c| !validate::is_identifier(c))
    {
        return Err(Problem::invalid_request("chargeId is not a charge id."));
    }
    let after = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let i = find(ctx, &id)
                .await?
                .ok_or_else(|| Problem::invalid_request("startingAfter is not an incident id."))?;
            Some((i.created_at, i.id))
        }
    };
    let after = after.as_ref().map(|(t, id)| (*t, id.as_str()));
    let (kind, charge_id) = (kind.as_deref(), charge_id.as_deref());
    let rows = page::across_shards(
        ctx,
        limit + 1,
        |shard| async move { incidents::list(shard.db(), after, kind, charge_id, limit + 1).await },
        |a: &IncidentRow, b: &IncidentRow| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)),
    )
    .await?;
    respond::json(200, &page::of(&rows, limit, |i| &i.id, view))
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The incident"));
    }
    let row = find(ctx, id)
        .await?
        .ok_or_else(|| Problem::not_found("The incident"))?;
    respond::json(200, &view(&row))
}

async fn find(ctx: &Ctx, id: &str) -> Result<Option<IncidentRow>, Problem> {
    let found = page::find_in_shards(ctx, id, |shard| async move {
        incidents::get(shard.db(), id).await
    })
    .await?;
    Ok(found.map(|(_, row)| row))
}
