//! The customer portal: what a customer may see and do for themselves, with a customer session.
//! Their subscriptions (with the next charge), their charges (paged), cancelling a subscription
//! at the end of its period and undoing that, and replacing the card on file.
//!
//! Everything is scoped by the session's customer: another customer's subscription answers the
//! same 404 as one that does not exist.

use serde::Serialize;
use serde_json::{Value, json};
use worker::{Request, Response};

use super::checkout::{REDIRECT_RULE, checkout_response, too_many_open};
use super::{body, page, respond};
use crate::context::Ctx;
use crate::params;
use crate::services::activation::{self, VERIFICATION_DESCRIPTION};
use crate::services::hosted_checkout::{self, Claim};
use crate::store::card_replacements;
use crate::store::charges::{self, ChargeRow};
use crate::store::checkouts::{self, CheckoutRow, KeyClaim, NewCheckout};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::views;
use recurring_core::billing::charge_machine::ChargeStatus;
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::http::router::PortalAction;
use recurring_core::input::Fields;
use recurring_core::secure::request_fingerprint;
use recurring_core::session::Claims;
use recurring_core::validate;

/// A customer has few subscriptions; the portal lists them all, up to this many.
const MAX_SUBSCRIPTIONS: u32 = 100;

pub async fn subscriptions(ctx: &Ctx, customer: &Claims) -> Result<Response, Problem> {
    let rows = subscriptions::list(
        ctx.db(),
        Some(&customer.customer_ref),
        None,
        None,
        MAX_SUBSCRIPTIONS,
    )
    .await?;
    let data: Vec<_> = rows.iter().map(views::subscription).collect();
    respond::data(200, &data)
}

/// A charge as its customer sees it: no provider ids, no merchant metadata.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortalCharge<'a> {
    id: &'a str,
    status: &'static str,
    kind: &'a str,
    amount: i64,
    currency: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_retry_at: Option<String>,
    refunded_amount: i64,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<String>,
    /// The provider's receipt, once the payment has settled and the receipt was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_url: Option<&'a str>,
}

fn charge_view(c: &ChargeRow) -> PortalCharge<'_> {
    let status = match ChargeStatus::parse(&c.status) {
        Some(ChargeStatus::Succeeded) => "succeeded",
        Some(ChargeStatus::Failed) => "failed",
        _ => "pending",
    };
    PortalCharge {
        id: &c.id,
        status,
        kind: c.purpose.as_deref().unwrap_or(&c.kind),
        amount: c.amount,
        currency: &c.currency,
        description: &c.description,
        subscription_id: c.subscription_id.as_deref(),
        failure_reason: (status == "failed")
            .then_some(c.failure_reason.as_deref())
            .flatten(),
        next_retry_at: c.next_retry_at.map(format_rfc3339),
        refunded_amount: c.refunded_amount,
        created_at: format_rfc3339(c.created_at),
        settled_at: c.settled_at.map(format_rfc3339),
        receipt_url: c.receipt_url.as_deref(),
    }
}

/// Newest first; `?limit=` (1-100, default 20) and `?startingAfter=<charge id>` page through.
pub async fn charges(req: &Request, ctx: &Ctx, customer: &Claims) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let db = ctx.db();
    let cursor = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let c = charges::get(db, &id)
                .await?
                .filter(|c| c.customer_ref == customer.customer_ref)
                .ok_or_else(|| {
                    Problem::invalid_request("startingAfter is not one of your charges.")
                })?;
            Some((c.created_at, c.id))
        }
    };
    let rows = charges::list_for_customer(
        db,
        &customer.customer_ref,
        cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
        limit + 1,
    )
    .await?;
    respond::json(200, &page::of(&rows, limit, |c| &c.id, charge_view))
}

pub async fn act(
    req: &mut Request,
    ctx: &Ctx,
    customer: &Claims,
    id: &str,
    action: PortalAction,
) -> Result<Response, Problem> {
    body::nothing(req).await?;
    let sub = own_subscription(ctx, customer, id).await?;
    let now = ctx.now().await?;
    let changed = match action {
        PortalAction::Cancel => {
            if sub.kind != "recurring" {
                return Err(Problem::conflict(
                    "not-cancellable",
                    "Not cancellable",
                    "An installment plan is a purchase paid in parts; it ends with its last \
                     installment.",
                ));
            }
            require_active(
                &sub,
                "Only an active subscription can be cancelled at period end.",
            )?;
            ctx.db()
                .run(
                    crate::sql!(
                        "UPDATE subscriptions SET cancel_at_period_end = 1, updated_at = ?
                     WHERE id = ? AND customer_ref = ? AND status = 'active'"
                    ),
                    params![now, &sub.id, &customer.customer_ref],
                )
                .await?
        }
        PortalAction::Reactivate => {
            require_active(&sub, "Only an active subscription can be kept.")?;
            if sub.cancel_at_period_end == 0 {
                return Err(Problem::conflict(
                    "not-canceled",
                    "Not set to end",
                    "The subscription is not set to end at the end of its period.",
                ));
            }
            ctx.db()
                .run(
                    crate::sql!(
                        "UPDATE subscriptions SET cancel_at_period_end = 0, updated_at = ?
                     WHERE id = ? AND customer_ref = ? AND status = 'active'
                       AND cancel_at_period_end = 1"
                    ),
                    params![now, &sub.id, &customer.customer_ref],
                )
                .await?
        }
    };
    if changed == 0 {
        return Err(Problem::conflict(
            "subscription-changed",
            "Subscription changed meanwhile",
            "The subscription changed while this request ran; read it and try again.",
        ));
    }
    let sub = own_subscription(ctx, customer, id).await?;
    respond::json(200, &views::subscription(&sub))
}

async fn own_subscription(
    ctx: &Ctx,
    customer: &Claims,
    id: &str,
) -> Result<SubscriptionRow, Problem> {
    let not_found = || Problem::not_found("The subscription");
    if !validate::is_identifier(id) {
        return Err(not_found());
    }
    subscriptions::get(ctx.db(), id)
        .await?
        .filter(|s| s.customer_ref == customer.customer_ref)
        .ok_or_else(not_found)
}

fn require_active(sub: &SubscriptionRow, detail: &str) -> Result<(), Problem> {
    if sub.status == "active" {
        return Ok(());
    }
    Err(Problem::conflict(
        "invalid-subscription-state",
        "Not allowed in this state",
        format!("{detail} It is {}.", sub.status),
    )
    .with("subscriptionStatus", sub.status.clone()))
}

/// `POST /v1/portal/payment-method {"returnUrl", "cancelUrl"?}`: a hosted-page payment that
/// tokenizes the new card. The provider tokenizes only with a payment, so the payment is the
/// customer's outstanding charge when there is one (a `past_due` or `unpaid` subscription's),
/// else the smallest amount the provider accepts, refunded as soon as it is paid.
pub async fn replace_card(
    req: &mut Request,
    ctx: &Ctx,
    customer: &Claims,
) -> Result<Response, Problem> {
    let key = body::idempotency_key(req)?;
    let map = body::object(req).await?;
    let raw = Value::Object(map.clone());
    let allowed = &ctx.config.allowed_origins;
    let mut f = Fields::new(map);
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
    let return_url = return_url.unwrap_or_default();
    let cancel_url = cancel_url.unwrap_or_else(|| return_url.clone());

    let db = ctx.db();
    let config = &ctx.config;
    let now = ctx.now().await?;
    let hash = request_fingerprint(
        "card",
        &json!({"customer": customer.customer_ref, "body": raw}),
    );
    let key_claim = key.as_deref().map(|key| KeyClaim {
        scope: "card",
        key,
        request_hash: &hash,
    });

    // One attempt, and a second after superseding the customer's open replacement.
    for attempt in 0..2 {
        let outstanding = card_replacements::outstanding(db, &customer.customer_ref, ctx.wall_ms())
            .await?
            .filter(|c| (config.min_charge_amount..=config.max_charge_amount).contains(&c.amount));
        let (amount, currency) = match &outstanding {
            Some(c) => (c.amount, c.currency.clone()),
            None => (
                config.min_charge_amount,
                card_replacements::customer_currency(db, &customer.customer_ref)
                    .await?
                    .unwrap_or_else(|| config.currencies[0].clone()),
            ),
        };
        let checkout_id = ctx.new_id("co");
        let lease_token = hosted_checkout::new_lease_token();
        let new = NewCheckout {
            id: &checkout_id,
            customer_ref: &customer.customer_ref,
            plan: None,
            installments: None,
            amount,
            currency: &currency,
            settles_charge_id: outstanding.as_ref().map(|c| c.id.as_str()),
            return_url: &return_url,
            cancel_url: &cancel_url,
            lease_token: &lease_token,
            lease_until: ctx.wall_ms() + hosted_checkout::lease_ms(ctx),
            test_clock: customer.test_clock.as_deref(),
            trial_days: None,
            coupon_id: None,
            discount_amount: 0,
            now,
        };
        let customer_row = checkouts::upsert_customer(
            &customer.customer_ref,
            customer.email.as_deref(),
            customer.name.as_deref(),
            now,
        );
        let description = outstanding.as_ref().map(|c| c.description.clone());
        let build = |checkout: &CheckoutRow| {
            let line_name = match &description {
                Some(d) if checkout.settles_charge_id.is_some() => {
                    format!("Outstanding payment: {d}")
                }
                _ => VERIFICATION_DESCRIPTION.to_owned(),
            };
            Ok(hosted_checkout::page_order(
                config,
                checkout,
                "card-update",
                line_name,
                hosted_checkout::person(customer.email.as_deref(), customer.name.as_deref()),
            ))
        };
        match hosted_checkout::claim(ctx, &new, key_claim.as_ref(), vec![customer_row]).await? {
            Claim::Won { lease_token } => {
                let checkout =
                    hosted_checkout::settle_order(ctx, &checkout_id, Some(&lease_token), &build)
                        .await?;
                return checkout_response(201, &checkout);
            }
            Claim::Replay { checkout_id } => {
                let checkout =
                    hosted_checkout::settle_order(ctx, &checkout_id, None, &build).await?;
                return checkout_response(200, &checkout);
            }
            Claim::Blocked if attempt == 0 => {
                let Some(open) =
                    checkouts::open_card_replacement(db, &customer.customer_ref).await?
                else {
                    return Err(too_many_open(ctx));
                };
                // It may have been paid a moment ago: then it completes, and this request
                // starts the next one.
                if open.status == "pending" {
                    activation::reconcile(ctx, &open).await?;
                }
                let still_open = checkouts::get(db, &open.id)
                    .await?
                    .filter(|c| c.status == "creating" || c.status == "pending");
                if let Some(open) = still_open
                    && !hosted_checkout::supersede(ctx, &open).await?
                {
                    return Err(Problem::conflict(
                        "card-replacement-in-progress",
                        "Card replacement in progress",
                        "Another request is starting a card replacement; retry shortly.",
                    )
                    .header("Retry-After", "1"));
                }
            }
            Claim::Blocked => return Err(too_many_open(ctx)),
        }
    }
    Err(too_many_open(ctx))
}
