//! The hosted-page order of a checkout, created exactly once.
//!
//! The provider has no idempotency keys, so the checkout is claimed in D1 first (see
//! `store::checkouts::claim`) and the provider is called only by the request holding the
//! checkout's lease. Concurrent requests with the same Idempotency-Key wait for the holder's
//! answer (a bounded poll of D1), take the lease over if the holder died, or are told to retry.
//! An order the checkout cannot use is recorded `fenced` and cancelled.

use std::time::Duration;

use worker::Delay;

use crate::context::Ctx;
use crate::ids::new_id;
use crate::services::discounting;
use crate::store::checkouts::{self, CheckoutRow, KeyClaim, NewCheckout};
use crate::store::db::Stmt;
use crate::store::idempotency;
use recurring_core::config::Config;
use recurring_core::http::problem::Problem;
use recurring_core::psp::types::*;

const WAIT_STEP_MS: u64 = 200;

/// How long a lease holder may take to create the order: the provider's timeout and a margin.
pub fn lease_ms(ctx: &Ctx) -> i64 {
    i64::from(ctx.config.psp.timeout_ms) + 5_000
}

pub enum Claim {
    /// This request inserted the checkout and holds its lease.
    Won { lease_token: String },
    /// The Idempotency-Key was used before, for this same request: the checkout it created.
    Replay { checkout_id: String },
    /// Not inserted: the customer has too many open checkouts (or, for a card replacement,
    /// another one open).
    Blocked,
}

/// Claims a new checkout. `before` runs first in the same transaction (the customer's row).
pub async fn claim(
    ctx: &Ctx,
    new: &NewCheckout<'_>,
    key: Option<&KeyClaim<'_>>,
    before: Vec<Stmt>,
) -> Result<Claim, Problem> {
    let db = ctx.db();
    let offset = before.len();
    let mut batch = before;
    batch.extend(checkouts::claim(
        new,
        key,
        ctx.config.max_open_checkouts,
        ctx.wall_ms(),
    ));
    let changes = db.batch(batch).await?;
    if changes.get(offset).is_some_and(|&n| n > 0) {
        return Ok(Claim::Won {
            lease_token: new.lease_token.to_owned(),
        });
    }
    let Some(k) = key else {
        return Ok(Claim::Blocked);
    };
    let scoped = checkouts::scoped_key(new.customer_ref, k.key);
    Ok(
        match idempotency::existing(db, k.scope, &scoped, k.request_hash).await? {
            Some(checkout_id) => Claim::Replay { checkout_id },
            None => Claim::Blocked,
        },
    )
}

/// A fresh lease token.
pub fn new_lease_token() -> String {
    new_id("lease")
}

/// The checkout once it has its order (or has failed): opened by this request if it holds the
/// lease, else awaited.
pub async fn settle_order(
    ctx: &Ctx,
    checkout_id: &str,
    won: Option<&str>,
    build: &dyn Fn(&CheckoutRow) -> Result<CreateOrder, Problem>,
) -> Result<CheckoutRow, Problem> {
    let db = ctx.db();
    if let Some(token) = won {
        let checkout = load(ctx, checkout_id).await?;
        return open(ctx, &checkout, token, build).await;
    }
    let deadline = ctx.wall_ms() + lease_ms(ctx) + 1_000;
    loop {
        let checkout = load(ctx, checkout_id).await?;
        if checkout.order_id.is_some() || checkout.status != "creating" {
            return Ok(checkout);
        }
        let wall = ctx.wall_ms();
        if checkout.lease_until.is_none_or(|until| until < wall) {
            let token = new_lease_token();
            if checkouts::take_lease(db, checkout_id, &token, wall, lease_ms(ctx)).await? {
                return open(ctx, &checkout, &token, build).await;
            }
        }
        if wall >= deadline {
            return Err(Problem::conflict(
                "checkout-in-progress",
                "Checkout in progress",
                "Another request with this Idempotency-Key is creating the payment page; retry \
                 shortly with the same key.",
            )
            .header("Retry-After", "1"));
        }
        Delay::from(Duration::from_millis(WAIT_STEP_MS)).await;
    }
}

async fn load(ctx: &Ctx, id: &str) -> Result<CheckoutRow, Problem> {
    checkouts::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::internal("The checkout was not recorded."))
}

/// Creates the provider order as the lease holder and records it.
async fn open(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    token: &str,
    build: &dyn Fn(&CheckoutRow) -> Result<CreateOrder, Problem>,
) -> Result<CheckoutRow, Problem> {
    let order = build(checkout)?;
    let now = ctx.now().await?;
    let db = ctx.db();
    match ctx.psp().create_order(&order).await {
        Ok(created) => {
            let page_url = created
                .payment_page_link
                .filter(|l| recurring_core::config::is_http_url(l));
            let Some(page_url) = page_url else {
                discounting::fail_checkout_creation(
                    ctx,
                    checkout,
                    token,
                    "provider_no_payment_page",
                    Some(&created.order_id),
                    now,
                )
                .await?;
                cancel_unused(ctx, &created.order_id).await;
                return Err(
                    Problem::new(502, "provider-error", "Payment provider error")
                        .detail("The provider created the order without a payment page link."),
                );
            };
            let taken =
                checkouts::record_order(db, &checkout.id, token, &created.order_id, &page_url, now)
                    .await?;
            if !taken {
                // The lease ran out and another request took over: this order is not the
                // checkout's. It was recorded fenced; close it at the provider.
                cancel_unused(ctx, &created.order_id).await;
            }
            load(ctx, &checkout.id).await
        }
        Err(e) if e.is_refusal() => {
            discounting::fail_checkout_creation(ctx, checkout, token, &e.code(), None, now).await?;
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
        Err(e) => {
            // Whether an order exists is unknown, and its id (if any) too; nobody has its page
            // link, so nobody can pay it. A retry creates the checkout's order afresh.
            checkouts::release_lease(db, &checkout.id, token).await?;
            Err(Problem::provider_unavailable(format!(
                "The payment page could not be created ({}). Retry with the same Idempotency-Key.",
                e.code()
            )))
        }
    }
}

/// The tokenizing hosted-page order of a checkout: one line, the checkout's amount, and the
/// return page told which checkout to poll. `person` comes from the customer session (the
/// merchant's word), never from the browser.
pub fn page_order(
    config: &Config,
    checkout: &CheckoutRow,
    line_id: &str,
    line_name: String,
    person: Option<Person>,
) -> CreateOrder {
    CreateOrder {
        terminal_id: config.psp.page_terminal_id.clone(),
        reference_id: checkout.id.clone(),
        order_lines: vec![OrderLine {
            id: line_id.to_owned(),
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
    }
}

/// The provider's view of the customer, from the session's claims.
pub fn person(email: Option<&str>, name: Option<&str>) -> Option<Person> {
    (email.is_some() || name.is_some()).then(|| Person {
        name: name.map(split_name),
        email: email.map(str::to_owned),
    })
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

/// Cancels an order the worker stopped using; it is already recorded `fenced`, so whatever the
/// provider answers, reconciliation watches it and refunds a payment that completes there.
pub async fn cancel_unused(ctx: &Ctx, order_id: &str) {
    if let Err(e) = ctx.psp().cancel_order(order_id).await {
        ctx.log.warn(
            "cancel of a fenced order failed",
            crate::fields! {"orderId": order_id, "code": e.code()},
        );
    }
}

/// Ends an open checkout that a newer one replaces (a card replacement superseded by the next).
/// False when it cannot be ended now: another request is still creating its order.
pub async fn supersede(ctx: &Ctx, checkout: &CheckoutRow) -> Result<bool, Problem> {
    let now = ctx.now().await?;
    match checkout.status.as_str() {
        "creating"
            if checkout
                .lease_until
                .is_some_and(|until| until >= ctx.wall_ms()) =>
        {
            Ok(false)
        }
        "creating" | "pending" => {
            discounting::mark_checkout_failed(ctx, checkout, "superseded", true, now).await?;
            if let Some(order_id) = &checkout.order_id {
                cancel_unused(ctx, order_id).await;
            }
            Ok(true)
        }
        _ => Ok(true),
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
