//! `POST /v1/checkout` starts the customer's first, tokenizing payment on the provider's hosted
//! page; `GET /v1/checkout/:id` is what the return page polls.

use serde::{Deserialize, Serialize};
use worker::{Request, Response};

use super::{body, respond};
use crate::catalog::Plan;
use crate::context::Ctx;
use crate::http::problem::Problem;
use crate::psp::types::*;
use crate::secure::{new_id, request_fingerprint};
use crate::services::activation;
use crate::store::checkouts::{self, CheckoutRow, NewCheckout};
use crate::store::idempotency::{self, Claim};
use crate::store::payment_methods;
use crate::validate::{self, Errors};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateCheckout {
    customer_ref: String,
    plan_id: String,
    #[serde(default)]
    installments: Option<u32>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    return_url: String,
    #[serde(default)]
    cancel_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutCreated<'a> {
    checkout_id: &'a str,
    order_id: &'a str,
    payment_page_url: &'a str,
    status: &'a str,
    plan_id: &'a str,
    amount: i64,
    currency: &'a str,
}

pub async fn create(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let key = body::idempotency_key(req)?;
    let (input, raw): (CreateCheckout, _) = body::json(req).await?;
    let plan = validate_input(&input, ctx)?.clone();
    let amount = first_payment(&plan, input.installments)?;
    let cancel_url = input
        .cancel_url
        .clone()
        .unwrap_or_else(|| input.return_url.clone());
    let now = ctx.now().await?;
    let db = ctx.db();

    let mut checkout_id = new_id("co");
    let customer = checkouts::upsert_customer(
        &input.customer_ref,
        input.email.as_deref(),
        input.name.as_deref(),
        now,
    );
    let new = NewCheckout {
        id: &checkout_id,
        customer_ref: &input.customer_ref,
        plan: &plan,
        installments: input.installments,
        amount,
        currency: &plan.currency,
        return_url: &input.return_url,
        cancel_url: &cancel_url,
        now,
    };
    match &key {
        Some(key) => {
            let hash = request_fingerprint("checkout", &raw);
            let won_params = idempotency::if_won_params("checkout", key, &checkout_id);
            let insert = checkouts::insert(&new, Some(won_params));
            let claim = idempotency::claim(
                db,
                "checkout",
                key,
                &hash,
                &checkout_id,
                now,
                vec![customer, insert],
            )
            .await?;
            if let Claim::Replay { resource_id } = claim {
                checkout_id = resource_id;
            }
        }
        None => {
            db.batch(vec![customer, checkouts::insert(&new, None)])
                .await?;
        }
    }

    let checkout = checkouts::get(db, &checkout_id)
        .await?
        .ok_or_else(|| Problem::internal("The checkout was not recorded."))?;
    if checkout.order_id.is_some() || checkout.status != "creating" {
        return checkout_response(200, &checkout);
    }
    // A replay resumes with the plan as first priced, even if the catalog changed since.
    let plan = checkout.plan()?;
    open_order(ctx, &checkout, &plan, &input).await
}

fn validate_input<'c>(input: &CreateCheckout, ctx: &'c Ctx) -> Result<&'c Plan, Problem> {
    let config = &ctx.config;
    let mut errors = Errors::new();
    errors.check(
        validate::is_identifier(&input.customer_ref),
        "customerRef",
        "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
    );
    if let Some(email) = &input.email {
        errors.check(
            validate::is_email(email),
            "email",
            "is not an email address",
        );
    }
    if let Some(name) = &input.name {
        errors.check(
            !name.trim().is_empty() && name.chars().count() <= 100,
            "name",
            "must be 1-100 characters",
        );
    }
    errors.check(
        validate::is_allowed_redirect(&input.return_url, &config.allowed_origins),
        "returnUrl",
        "must be an http(s) URL on one of the merchant's allowed origins",
    );
    if let Some(cancel) = &input.cancel_url {
        errors.check(
            validate::is_allowed_redirect(cancel, &config.allowed_origins),
            "cancelUrl",
            "must be an http(s) URL on one of the merchant's allowed origins",
        );
    }
    errors.check(
        validate::is_identifier(&input.plan_id),
        "planId",
        "is not a plan id",
    );
    errors.into_result()?;
    config.catalog.get(&input.plan_id).ok_or_else(|| {
        Problem::not_found(&format!("Plan {:?}", input.plan_id))
            .with("planId", input.plan_id.clone())
    })
}

/// What the customer pays on the hosted page: a period's fee, or the first installment.
fn first_payment(plan: &Plan, installments: Option<u32>) -> Result<i64, Problem> {
    let field_error = |msg: String| {
        Problem::validation(vec![crate::http::problem::FieldError::new(
            "installments",
            msg,
        )])
    };
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
        (Some(_), Some(n)) => crate::billing::installments::split(plan.amount, n)
            .map(|parts| parts[0])
            .map_err(|e| field_error(e.to_string())),
    }
}

/// Creates the hosted-page order for a checkout that has none yet.
async fn open_order(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    plan: &Plan,
    input: &CreateCheckout,
) -> Result<Response, Problem> {
    let config = &ctx.config;
    let line_name = match checkout.installments {
        Some(n) => format!("{} (installment 1 of {n})", plan.name),
        None => plan.name.clone(),
    };
    let person = (input.email.is_some() || input.name.is_some()).then(|| Person {
        name: input.name.as_deref().map(split_name),
        email: input.email.clone(),
    });
    let order = CreateOrder {
        terminal_id: config.psp.page_terminal_id.clone(),
        reference_id: checkout.id.clone(),
        order_lines: vec![OrderLine {
            id: plan.id.clone(),
            name: line_name,
            quantity: 1,
            amount: Amount::of(checkout.amount, &checkout.currency),
            purchase_order_id: None,
        }],
        total_order_amount: Amount::of(checkout.amount, &checkout.currency),
        customer: person.map(|person| Customer { person }),
        control_functions: ControlFunctions {
            initiate_payments_options: Some(InitiatePaymentsOptions {
                payment_method: "CARD".into(),
                amount: Some(checkout.amount),
            }),
            call_back_url: Some(config.webhook_url()),
            online: Some(Online {
                enforce_tokenization: true,
                redirect_url: Some(with_checkout_id(&checkout.return_url, &checkout.id)),
                failure_redirect_url: Some(with_checkout_id(&checkout.cancel_url, &checkout.id)),
            }),
        },
    };
    let now = ctx.now().await?;
    let db = ctx.db();
    match ctx.psp().create_order(&order).await {
        Ok(created) => {
            let Some(page_url) = created
                .payment_page_link
                .filter(|l| crate::config::is_http_url(l))
            else {
                checkouts::mark_failed(db, &checkout.id, "provider_no_payment_page", now).await?;
                return Err(
                    Problem::new(502, "provider-error", "Payment provider error")
                        .detail("The provider created the order without a payment page link."),
                );
            };
            checkouts::set_order(db, &checkout.id, &created.order_id, &page_url, now).await?;
            let checkout = checkouts::get(db, &checkout.id)
                .await?
                .ok_or_else(|| Problem::internal("The checkout vanished."))?;
            checkout_response(201, &checkout)
        }
        Err(e) if e.is_refusal() => {
            checkouts::mark_failed(db, &checkout.id, &e.code(), now).await?;
            Err(Problem::new(
                502,
                "provider-refused",
                "Payment provider refused the order",
            )
            .detail(format!(
                "The provider refused to create the order ({}).",
                e.code()
            ))
            .with("providerCode", e.code()))
        }
        Err(e) => Err(Problem::provider_unavailable(format!(
            "The payment page could not be created ({}). Retry with the same Idempotency-Key.",
            e.code()
        ))),
    }
}

fn checkout_response(status: u16, checkout: &CheckoutRow) -> Result<Response, Problem> {
    match (&checkout.order_id, &checkout.payment_page_url) {
        (Some(order_id), Some(url)) => respond::json(
            status,
            &CheckoutCreated {
                checkout_id: &checkout.id,
                order_id,
                payment_page_url: url,
                status: public_status(&checkout.status),
                plan_id: &checkout.plan_id,
                amount: checkout.amount,
                currency: &checkout.currency,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutState<'a> {
    checkout_id: &'a str,
    status: &'a str,
    plan_id: &'a str,
    amount: i64,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    installments: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<payment_methods::MaskedCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The checkout"));
    }
    let db = ctx.db();
    let mut checkout = checkouts::get(db, id)
        .await?
        .ok_or_else(|| Problem::not_found("The checkout"))?;
    if checkout.status == "pending" {
        // The webhook may have been lost: ask the provider, through the same idempotent path.
        activation::reconcile(ctx, &checkout).await?;
        checkout = checkouts::get(ctx.db(), id)
            .await?
            .ok_or_else(|| Problem::internal("The checkout vanished."))?;
    }
    let card = match (&checkout.order_id, checkout.status.as_str()) {
        (Some(order_id), "paid") => payment_methods::masked_by_order(ctx.db(), order_id).await?,
        _ => None,
    };
    respond::json(
        200,
        &CheckoutState {
            checkout_id: &checkout.id,
            status: public_status(&checkout.status),
            plan_id: &checkout.plan_id,
            amount: checkout.amount,
            currency: &checkout.currency,
            installments: checkout.installments,
            card,
            subscription_id: checkout.subscription_id.as_deref(),
            failure_reason: (checkout.status == "failed")
                .then_some(checkout.failure_reason.as_deref())
                .flatten(),
        },
    )
}

/// The frontend sees three states; `creating` is an internal detail of `pending`.
fn public_status(status: &str) -> &str {
    match status {
        "paid" => "paid",
        "failed" => "failed",
        _ => "pending",
    }
}

/// The return page learns which checkout to poll from its own URL.
pub fn with_checkout_id(url: &str, checkout_id: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{separator}checkoutId={checkout_id}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn split_name(full: &str) -> PersonName {
    let full = full.trim();
    match full.rsplit_once(' ') {
        Some((first, last)) => PersonName {
            first_name: first.trim().to_owned(),
            last_name: last.trim().to_owned(),
        },
        None => PersonName {
            first_name: full.to_owned(),
            last_name: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_id_is_added_before_the_fragment() {
        assert_eq!(
            with_checkout_id("https://s.example/done", "co_1"),
            "https://s.example/done?checkoutId=co_1"
        );
        assert_eq!(
            with_checkout_id("https://s.example/done?a=1#top", "co_1"),
            "https://s.example/done?a=1&checkoutId=co_1#top"
        );
    }

    #[test]
    fn names_split_on_the_last_space() {
        let n = split_name(" Ada King Lovelace ");
        assert_eq!(
            (n.first_name.as_str(), n.last_name.as_str()),
            ("Ada King", "Lovelace")
        );
        assert_eq!(split_name("Cher").last_name, "");
    }
}
