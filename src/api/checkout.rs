//! `POST /v1/checkout` starts the customer's first, tokenizing payment on the provider's hosted
//! page; `GET /v1/checkout/:id` is what the return page polls. Both act for the customer of the
//! session only: the body names a plan, never a customer, and another customer's checkout is
//! as absent as one that does not exist.

use serde::Serialize;
use serde_json::{Value, json};
use worker::{Request, Response};

use super::{body, coupons, respond};
use crate::context::Ctx;
use crate::services::activation;
use crate::services::hosted_checkout::{self, Claim};
use crate::store::checkouts::{self, CheckoutRow, KeyClaim, NewCheckout};
use crate::store::coupons as store_coupons;
use crate::store::payment_methods;
use crate::views;
use recurring_core::billing::{discount, trial};
use recurring_core::catalog::Plan;
use recurring_core::http::problem::{FieldError, Problem};
use recurring_core::input::Fields;
use recurring_core::secure::request_fingerprint;
use recurring_core::session::Claims;
use recurring_core::validate;

pub(crate) const REDIRECT_RULE: &str =
    "must be an http(s) URL on one of the merchant's allowed origins";

struct CreateCheckout {
    plan_id: String,
    installments: Option<u32>,
    return_url: String,
    cancel_url: Option<String>,
}

fn read(map: serde_json::Map<String, Value>, ctx: &Ctx) -> Result<CreateCheckout, Problem> {
    let allowed = &ctx.config.allowed_origins;
    let mut f = Fields::new(map);
    let plan_id = f.string("planId");
    if let Some(id) = &plan_id {
        f.check(validate::is_identifier(id), "planId", "is not a plan id");
    }
    let installments = f.optional_integer("installments");
    if let Some(n) = installments {
        f.check(
            (1..=i64::from(u16::MAX)).contains(&n),
            "installments",
            "must be a positive integer",
        );
    }
    let return_url = f.string("returnUrl");
    if let Some(url) = &return_url {
        f.check(
            validate::is_allowed_redirect(url, allowed),
            "returnUrl",
            REDIRECT_RULE,
        );
    }
    let cancel_url = f.optional_string("cancelUrl");
    if let Some(url) = &cancel_url {
        f.check(
            validate::is_allowed_redirect(url, allowed),
            "cancelUrl",
            REDIRECT_RULE,
        );
    }
    f.finish()?;
    Ok(CreateCheckout {
        plan_id: plan_id.unwrap_or_default(),
        installments: installments.map(|n| n as u32),
        return_url: return_url.unwrap_or_default(),
        cancel_url,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutCreated<'a> {
    checkout_id: &'a str,
    purpose: &'a str,
    order_id: &'a str,
    payment_page_url: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_id: Option<&'a str>,
    amount: i64,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    settles_charge_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_days: Option<u32>,
    /// The session's coupon and what it took off the page's payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    coupon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_amount: Option<i64>,
}

pub async fn create(req: &mut Request, ctx: &Ctx, customer: &Claims) -> Result<Response, Problem> {
    let key = body::idempotency_key(req)?;
    let map = body::object(req).await?;
    let raw = Value::Object(map.clone());
    let input = read(map, ctx)?;
    let plan = ctx
        .config
        .catalog
        .get(&input.plan_id)
        .ok_or_else(|| {
            Problem::not_found(&format!("Plan {:?}", input.plan_id))
                .with("planId", input.plan_id.clone())
        })?
        .clone();
    let trial_days = trial::days(
        plan.trial_days,
        customer.trial_days,
        plan.installments.is_some(),
    );
    // With a trial the page takes the smallest payment the provider accepts, to prove the card;
    // it is given back as soon as it is paid.
    let now = ctx.now().await?;
    // The session's coupon (never one the browser names): redeemed with the checkout; it
    // reduces the page's payment, or (after a trial) the first charges. Installment plans take
    // none.
    let coupon = match (&customer.coupon, &plan.installments) {
        (Some(id), None) => Some(coupons::redeemable(ctx, id, Some(&plan.currency), now).await?),
        _ => None,
    };
    let (amount, discount_amount) = match (trial_days, &coupon) {
        (Some(_), _) => (ctx.config.min_charge_amount, 0),
        (None, Some(c)) => {
            let price = first_payment(&plan, input.installments)?;
            let applied = discount::apply(price, c.model()?.off, ctx.config.min_charge_amount);
            match applied.due {
                // Nothing left to pay: the page only verifies the card.
                0 => (ctx.config.min_charge_amount, applied.discount),
                due => (due, applied.discount),
            }
        }
        (None, None) => (first_payment(&plan, input.installments)?, 0),
    };
    let cancel_url = input
        .cancel_url
        .clone()
        .unwrap_or_else(|| input.return_url.clone());

    let checkout_id = ctx.new_id("co");
    ctx.log.tag("checkoutId", &checkout_id);
    let lease_token = hosted_checkout::new_lease_token();
    let new = NewCheckout {
        id: &checkout_id,
        customer_ref: &customer.customer_ref,
        plan: Some(&plan),
        installments: input.installments,
        amount,
        currency: &plan.currency,
        settles_charge_id: None,
        return_url: &input.return_url,
        cancel_url: &cancel_url,
        lease_token: &lease_token,
        lease_until: ctx.wall_ms() + hosted_checkout::lease_ms(ctx),
        test_clock: customer.test_clock.as_deref(),
        trial_days,
        coupon_id: coupon.as_ref().map(|c| c.id.as_str()),
        discount_amount,
        now,
    };
    let hash = request_fingerprint(
        "checkout",
        &json!({"customer": customer.customer_ref, "body": raw}),
    );
    let key_claim = key.as_deref().map(|key| KeyClaim {
        scope: "checkout",
        key,
        request_hash: &hash,
    });
    let customer_row = checkouts::upsert_customer(
        &customer.customer_ref,
        customer.email.as_deref(),
        customer.name.as_deref(),
        now,
    );
    // Outside `DB`, the redemption is reserved in `DB` first (see `coupons::reserve`) and the
    // shard gets its copy of the coupon with the checkout.
    let mut before = vec![customer_row];
    let reserved = match &coupon {
        Some(c) if ctx.shard() != 0 => {
            if !matches!(
                store_coupons::reserve(ctx.main_db(), &c.id, now).await,
                Ok(true)
            ) {
                coupons::redeemable(ctx, &c.id, Some(&plan.currency), now).await?;
                return Err(Problem::new(503, "not-recorded", "Coupon not redeemed")
                    .detail("The coupon could not be redeemed just now; try again.")
                    .header("Retry-After", "1"));
            }
            before.push(store_coupons::copy(c));
            Some(c.id.as_str())
        }
        _ => None,
    };
    let claimed = hosted_checkout::claim(ctx, &new, key_claim.as_ref(), before).await;
    if let Some(id) = reserved
        && !matches!(claimed, Ok(Claim::Won { .. }))
    {
        store_coupons::release(ctx.main_db(), id).await?;
    }
    let claim = match claimed {
        Ok(claim) => claim,
        // The coupon's last redemption went to another checkout meanwhile (its CHECK failed
        // the batch): say so rather than fail.
        Err(e) => match &coupon {
            Some(c) => {
                coupons::redeemable(ctx, &c.id, Some(&plan.currency), now).await?;
                return Err(e);
            }
            None => return Err(e),
        },
    };
    let build = |checkout: &CheckoutRow| subscription_order(ctx, checkout, customer);
    let (checkout, status) = match claim {
        Claim::Won { lease_token } => (
            hosted_checkout::settle_order(ctx, &checkout_id, Some(&lease_token), &build).await?,
            201,
        ),
        Claim::Replay { checkout_id } => (
            hosted_checkout::settle_order(ctx, &checkout_id, None, &build).await?,
            200,
        ),
        Claim::Blocked => return Err(too_many_open(ctx)),
    };
    checkout_response(status, &checkout)
}

pub(crate) fn too_many_open(ctx: &Ctx) -> Problem {
    let max = ctx.config.max_open_checkouts;
    Problem::conflict(
        "too-many-open-checkouts",
        "Too many open checkouts",
        format!(
            "This customer already has {max} checkouts waiting for payment; pay one, or wait \
             until the unpaid ones expire (a day)."
        ),
    )
    .with("maxOpenCheckouts", max)
}

/// The hosted-page order of a new subscription, priced as the checkout was (a replay resumes
/// with the plan as first priced, even if the catalog changed since).
fn subscription_order(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    customer: &Claims,
) -> Result<recurring_core::psp::types::CreateOrder, Problem> {
    let plan = checkout.plan()?;
    let line_name = match (checkout.installments, checkout.trial_days) {
        (Some(n), _) => format!("{} (installment 1 of {n})", plan.name),
        (None, Some(days)) => format!(
            "{}: {days}-day free trial (card verification, refunded at once)",
            plan.name
        ),
        (None, None) => plan.name.clone(),
    };
    Ok(hosted_checkout::page_order(
        &ctx.config,
        checkout,
        &plan.id,
        line_name,
        hosted_checkout::person(customer.email.as_deref(), customer.name.as_deref()),
    ))
}

/// What the customer pays on the hosted page: a period's fee, or the first installment.
fn first_payment(plan: &Plan, installments: Option<u32>) -> Result<i64, Problem> {
    let field_error = |msg: String| Problem::validation(vec![FieldError::new("installments", msg)]);
    match (&plan.installments, installments) {
        (None, None) => Ok(plan.amount),
        (None, Some(_)) => Err(field_error(format!(
            "plan {} is not paid in installments",
            plan.id
        ))),
        (Some(options), None) => Err(field_error(format!("choose one of {options:?}"))),
        (Some(options), Some(n)) if !options.contains(&n) => {
            Err(field_error(format!("choose one of {options:?}")))
        }
        (Some(_), Some(n)) => recurring_core::billing::installments::split(plan.amount, n)
            .map(|parts| parts[0])
            .map_err(|e| field_error(e.to_string())),
    }
}

pub(crate) fn checkout_response(status: u16, checkout: &CheckoutRow) -> Result<Response, Problem> {
    match (&checkout.order_id, &checkout.payment_page_url) {
        (Some(order_id), Some(url)) => respond::json(
            status,
            &CheckoutCreated {
                checkout_id: &checkout.id,
                purpose: &checkout.purpose,
                order_id,
                payment_page_url: url,
                status: views::checkout::public_status(&checkout.status),
                plan_id: checkout.plan_id.as_deref(),
                amount: checkout.amount,
                currency: &checkout.currency,
                settles_charge_id: checkout.settles_charge_id.as_deref(),
                trial_days: checkout.trial_days,
                coupon: checkout.coupon_id.as_deref(),
                discount_amount: checkout.discount_amount.filter(|d| *d > 0),
            },
        ),
        _ if checkout.status == "failed" => Err(Problem::conflict(
            "checkout-failed",
            "Checkout failed",
            format!(
                "This checkout failed ({}); start a new one with a new Idempotency-Key.",
                checkout.failure_reason.as_deref().unwrap_or("unknown")
            ),
        )),
        _ => Err(Problem::provider_unavailable(
            "The payment page is still being created. Retry with the same Idempotency-Key.",
        )),
    }
}

pub async fn get(ctx: &Ctx, customer: &Claims, id: &str) -> Result<Response, Problem> {
    let not_found = || Problem::not_found("The checkout");
    if !validate::is_identifier(id) {
        return Err(not_found());
    }
    let db = ctx.db();
    let mut checkout = checkouts::get_for_customer(db, id, &customer.customer_ref)
        .await?
        .ok_or_else(not_found)?;
    if checkout.status == "pending" {
        // The webhook may have been lost: ask the provider, through the same idempotent path.
        activation::reconcile(ctx, &checkout).await?;
        checkout = checkouts::get_for_customer(ctx.db(), id, &customer.customer_ref)
            .await?
            .ok_or_else(|| Problem::internal("The checkout vanished."))?;
    }
    let card = match (&checkout.order_id, checkout.status.as_str()) {
        (Some(order_id), "paid") => payment_methods::masked_by_order(ctx.db(), order_id).await?,
        _ => None,
    };
    respond::json(200, &views::checkout(&checkout, card))
}
