//! Merchant-initiated charges of a stored card: `POST /v1/charges` and the reads.

use serde_json::Value;
use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::services::charging::{self, Mode, Patience};
use crate::store::charges::{self, ChargeRow, NewCharge};
use crate::store::idempotency::{self, Claim};
use crate::store::incidents;
use crate::store::payment_methods;
use crate::views;
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::secure::request_fingerprint;
use recurring_core::validate;

/// Status reads after `POST /payments`, in ms: the provider settles asynchronously, usually
/// within a second; past these the answer is `pending` and webhooks or the cron finish it.
pub const API_POLL_DELAYS_MS: [u32; 4] = [150, 300, 600, 1200];

struct CreateCharge {
    customer_ref: String,
    amount: i64,
    currency: String,
    description: String,
    metadata: Option<serde_json::Map<String, Value>>,
}

pub async fn create(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let key = body::required_idempotency_key(req)?;
    let map = body::object(req).await?;
    let hash = request_fingerprint("charge", &Value::Object(map.clone()));
    let input = read(map, ctx)?;
    ctx.log.tag("customerRef", &input.customer_ref);
    // The customer's card, charges and this key's claim are all in the customer's shard.
    let ctx = &ctx.for_customer(&input.customer_ref, false).await?;
    let amount = input.amount;
    let db = ctx.db();

    // A replay finds its charge before anything else is checked: the card may be gone by now,
    // the stored result is still the answer.
    if let Some(charge_id) = idempotency::existing(db, "charge", &key, &hash).await? {
        return replay(ctx, &charge_id).await;
    }
    if !payment_methods::has_active(db, &input.customer_ref).await? {
        return Err(Problem::conflict(
            "no-payment-method",
            "No card on file",
            format!(
                "Customer {:?} has no stored card; send them through a checkout first.",
                input.customer_ref
            ),
        ));
    }

    let now = ctx.now().await?;
    let charge_id = ctx.new_id("ch");
    ctx.log.tag("chargeId", &charge_id);
    let metadata = input
        .metadata
        .as_ref()
        .map(|m| Value::Object(m.clone()).to_string());
    let charge_key = format!("api:{key}");
    let new = NewCharge {
        id: &charge_id,
        charge_key: &charge_key,
        customer_ref: &input.customer_ref,
        subscription_id: None,
        period_index: None,
        kind: "api",
        amount,
        currency: &input.currency,
        description: input.description.trim(),
        metadata: metadata.as_deref(),
        request_hash: Some(&hash),
        now,
    };
    let claim = idempotency::claim(
        ctx.db(),
        "charge",
        &key,
        &hash,
        &charge_id,
        now,
        vec![charges::claim(&new)],
    )
    .await?;
    if let Claim::Replay { resource_id } = claim {
        return replay(ctx, &resource_id).await;
    }
    let charge = charging::drive_charge(
        ctx,
        &charge_id,
        Mode::Initiate,
        Patience::Poll(&API_POLL_DELAYS_MS),
    )
    .await?;
    let status = if is_final(&charge) { 201 } else { 202 };
    respond::json(status, &views::charge(&charge))
}

/// The same request again: a final charge answers from the ledger with no provider call; an
/// open one is driven on from where it stopped.
async fn replay(ctx: &Ctx, charge_id: &str) -> Result<Response, Problem> {
    let charge = charges::get(ctx.db(), charge_id)
        .await?
        .ok_or_else(|| Problem::internal("An idempotency key points to a missing charge."))?;
    if is_final(&charge) {
        return respond::json(200, &views::charge(&charge));
    }
    let charge = charging::drive_charge(
        ctx,
        charge_id,
        Mode::Initiate,
        Patience::Poll(&API_POLL_DELAYS_MS),
    )
    .await?;
    respond::json(
        if is_final(&charge) { 200 } else { 202 },
        &views::charge(&charge),
    )
}

fn is_final(charge: &ChargeRow) -> bool {
    matches!(charge.status.as_str(), "succeeded" | "failed") && charge.next_retry_at.is_none()
}

fn read(map: serde_json::Map<String, Value>, ctx: &Ctx) -> Result<CreateCharge, Problem> {
    let config = &ctx.config;
    let mut f = Fields::new(map);
    let customer_ref = f.string("customerRef");
    if let Some(c) = &customer_ref {
        f.check(
            validate::is_identifier(c),
            "customerRef",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        );
    }
    let amount = f.integer("amount");
    if let Some(a) = amount {
        f.check(
            (config.min_charge_amount..=config.max_charge_amount).contains(&a),
            "amount",
            &format!(
                "must be from {} to {} (minor units)",
                config.min_charge_amount, config.max_charge_amount
            ),
        );
    }
    let currency = f.string("currency");
    if let Some(c) = &currency {
        f.check(
            config.currencies.contains(c),
            "currency",
            &format!(
                "must be one of {} (ISO 4217 numeric)",
                config.currencies.join(", ")
            ),
        );
    }
    let description = f.string("description");
    if let Some(d) = &description {
        let d = d.trim();
        f.check(
            !d.is_empty() && d.chars().count() <= 200,
            "description",
            "must be 1-200 characters",
        );
    }
    let metadata = f.optional_string_map("metadata", 20, 40, 500);
    f.finish()?;
    Ok(CreateCharge {
        customer_ref: customer_ref.unwrap_or_default(),
        amount: amount.unwrap_or_default(),
        currency: currency.unwrap_or_default(),
        description: description.unwrap_or_default(),
        metadata,
    })
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The charge"));
    }
    let charge = charges::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::not_found("The charge"))?;
    let mut shown = views::charge(&charge);
    shown.incidents = incidents::kinds_for_charge(ctx.db(), id).await?;
    respond::json(200, &shown)
}

/// Newest first; `?limit=` (1-100, default 20) and `?startingAfter=<charge id>` page through.
pub async fn list_for_customer(
    req: &Request,
    ctx: &Ctx,
    customer: &str,
) -> Result<Response, Problem> {
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let limit = page::limit(req)?;
    let db = ctx.db();
    let cursor = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let c = charges::get(db, &id)
                .await?
                .filter(|c| c.customer_ref == customer)
                .ok_or_else(|| {
                    Problem::invalid_request("startingAfter is not a charge of this customer.")
                })?;
            Some((c.created_at, c.id))
        }
    };
    let rows = charges::list_for_customer(
        db,
        customer,
        cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
        limit + 1,
    )
    .await?;
    respond::json(200, &page::of(&rows, limit, |c| &c.id, views::charge))
}
