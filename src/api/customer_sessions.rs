//! `POST /v1/customer-sessions`: the merchant's backend vouches for one of its customers and
//! gets a short-lived secret to hand to that customer's browser. Nothing is stored: the secret
//! carries its customer and expiry, signed (see `session`).
//!
//! `POST /v1/demo/session` plays that backend for the demo storefront, only with `DEMO=on`, and
//! only for the visitor's own random demo reference.

use serde::Serialize;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use recurring_core::billing::time::format_rfc3339;
use recurring_core::catalog::MAX_TRIAL_DAYS;
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::session::{self, Claims, DEFAULT_LIFETIME_SECONDS, MIN_LIFETIME_SECONDS};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionCreated<'a> {
    client_secret: String,
    customer_ref: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_clock: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coupon: Option<&'a str>,
}

pub async fn create(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let mut f = Fields::new(body::object(req).await?);
    let customer_ref = f.string("customerRef");
    let email = f.optional_string("email");
    let name = f.optional_string("name");
    let lifetime = f.optional_integer("expiresInSeconds");
    let test_clock = f.optional_string("testClock");
    let trial_days = f.optional_integer("trialDays");
    let coupon = f.optional_string("coupon");
    if let Some(c) = &coupon {
        f.check(
            recurring_core::validate::is_identifier(c),
            "coupon",
            "is not a coupon id",
        );
    }
    if let Some(days) = trial_days {
        f.check(
            (0..=i64::from(MAX_TRIAL_DAYS)).contains(&days),
            "trialDays",
            "must be from 0 (no trial) to 730",
        );
    }
    if let Some(clock) = &test_clock {
        f.check(
            ctx.config.test_clock,
            "testClock",
            "is only accepted with the test clock on (TEST_CLOCK)",
        );
        f.check(
            recurring_core::validate::is_identifier(clock),
            "testClock",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        );
    }
    let max = ctx.config.session_max_lifetime_s;
    if let Some(seconds) = lifetime {
        f.check(
            (MIN_LIFETIME_SECONDS..=max).contains(&seconds),
            "expiresInSeconds",
            &format!("must be from {MIN_LIFETIME_SECONDS} to {max}"),
        );
    }
    let claims = claims(&mut f, customer_ref, email, name, ctx, lifetime).map(|c| Claims {
        test_clock,
        trial_days: trial_days.map(|d| d as u32),
        coupon: coupon.clone(),
        ..c
    });
    f.finish()?;
    // A coupon that cannot be redeemed now is refused here, not at the customer's checkout.
    if let Some(c) = &coupon {
        let now = ctx.now().await?;
        super::coupons::redeemable(ctx, c, None, now).await?;
    }
    mint(ctx, claims)
}

/// Only references of this shape can be minted by the demo route: 128 random bits chosen by the
/// visitor's browser, so that the route can never speak for a real customer.
fn is_demo_reference(customer_ref: &str) -> bool {
    customer_ref.strip_prefix("demo-").is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

pub async fn demo(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    if !ctx.config.demo {
        return Err(Problem::route_not_found("/v1/demo/session"));
    }
    let mut f = Fields::new(body::object(req).await?);
    let customer_ref = f.string("customerRef");
    if let Some(c) = &customer_ref {
        f.check(
            is_demo_reference(c),
            "customerRef",
            "must be \"demo-\" and 32 lowercase hex digits",
        );
    }
    let email = f.optional_string("email");
    let name = f.optional_string("name");
    // Each visitor's subscriptions run on a clock of their own: moving it bills nobody else.
    let test_clock = customer_ref
        .as_deref()
        .filter(|_| ctx.config.test_clock)
        .map(|c| format!("clock-{c}"));
    let claims =
        claims(&mut f, customer_ref, email, name, ctx, None).map(|c| Claims { test_clock, ..c });
    f.finish()?;
    mint(ctx, claims)
}

fn claims(
    f: &mut Fields,
    customer_ref: Option<String>,
    email: Option<String>,
    name: Option<String>,
    ctx: &Ctx,
    lifetime: Option<i64>,
) -> Option<Claims> {
    for (field, rule) in
        session::claim_errors(customer_ref.as_deref(), email.as_deref(), name.as_deref())
    {
        f.error(field, rule);
    }
    if f.has_errors() {
        return None;
    }
    let now = ctx.wall_ms() / 1000;
    Some(Claims {
        customer_ref: customer_ref?,
        exp: now + lifetime.unwrap_or(DEFAULT_LIFETIME_SECONDS),
        kid: String::new(),
        email,
        name: name.map(|n| n.trim().to_owned()),
        test_clock: None,
        trial_days: None,
        coupon: None,
    })
}

fn mint(ctx: &Ctx, claims: Option<Claims>) -> Result<Response, Problem> {
    // Every field was valid (else `finish` refused the request), so the claims exist.
    let claims = claims.ok_or_else(|| Problem::internal("The session could not be built."))?;
    let client_secret = session::mint(&ctx.config.session_keys.current, &claims);
    respond::json(
        201,
        &SessionCreated {
            client_secret,
            customer_ref: &claims.customer_ref,
            expires_at: format_rfc3339(claims.exp * 1000),
            test_clock: claims.test_clock.as_deref(),
            trial_days: claims.trial_days,
            coupon: claims.coupon.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_references_are_random_and_prefixed() {
        assert!(is_demo_reference("demo-0123456789abcdef0123456789abcdef"));
        assert!(!is_demo_reference("demo-0123456789ABCDEF0123456789abcdef"));
        assert!(!is_demo_reference("demo-0123"));
        assert!(!is_demo_reference("cust-1"));
        assert!(!is_demo_reference("1"));
    }
}
