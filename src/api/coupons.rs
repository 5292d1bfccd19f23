//! Coupons (`/v1/coupons`) and the discounts the merchant applies with them: to a subscription
//! (`/v1/subscriptions/:id/discount`) or to a customer (`/v1/customers/:ref/discount`, for
//! their subscriptions without one of their own). A customer gets one at checkout only through
//! the session the merchant mints (`coupon`); a browser never names one.

use serde::Serialize;
use worker::{Request, Response};

use super::subscriptions::load as load_subscription;
use super::{body, page, respond};
use crate::context::Ctx;
use crate::store::coupons::{self, CouponRow, Holder, NewCoupon};
use crate::views;
use recurring_core::billing::discount::{Duration, NotRedeemable, Off};
use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};
use recurring_core::http::problem::Problem;
use recurring_core::input::{Fields, has_control};
use recurring_core::validate;

/// The longest `repeating` duration, in billing periods.
pub const MAX_PERIODS: i64 = 1_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent_off: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_off: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    duration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_in_periods: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redeem_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_redemptions: Option<u32>,
    times_redeemed: u32,
    /// Whether it can be redeemed now: not deleted, not expired, not used up.
    valid: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
}

fn view(c: &CouponRow, now: i64) -> CouponView<'_> {
    let valid = c.deleted_at.is_none()
        && c.redeem_by.is_none_or(|by| now < by)
        && c.max_redemptions.is_none_or(|max| c.times_redeemed < max);
    CouponView {
        id: &c.id,
        name: c.name.as_deref(),
        percent_off: c.percent_off,
        amount_off: c.amount_off,
        currency: c.currency.as_deref(),
        duration: &c.duration,
        duration_in_periods: c.duration_in_periods,
        redeem_by: c.redeem_by.map(format_rfc3339),
        max_redemptions: c.max_redemptions,
        times_redeemed: c.times_redeemed,
        valid,
        created_at: format_rfc3339(c.created_at),
        deleted_at: c.deleted_at.map(format_rfc3339),
    }
}

/// `POST /v1/coupons`.
pub async fn create(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let mut f = Fields::new(body::object(req).await?);
    let id = f.string("id");
    if let Some(id) = &id {
        f.check(
            validate::is_identifier(id),
            "id",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        );
    }
    let name = f.optional_string("name");
    if let Some(n) = &name {
        f.check(
            !n.trim().is_empty() && n.chars().count() <= 100 && !has_control(n),
            "name",
            "must be 1-100 characters without control characters",
        );
    }
    let percent = f.optional_integer("percentOff");
    let amount = f.optional_integer("amountOff");
    let currency = f.optional_string("currency");
    match (percent, amount) {
        (Some(p), None) => f.check((1..=100).contains(&p), "percentOff", "must be 1 to 100"),
        (None, Some(a)) => f.check(
            (1..=ctx.config.max_charge_amount).contains(&a),
            "amountOff",
            "must be a positive amount in minor units, at most the maximum charge",
        ),
        _ => f.error("percentOff", "give either percentOff or amountOff"),
    }
    match (&currency, amount) {
        (Some(c), Some(_)) => f.check(
            ctx.config.currencies.contains(c),
            "currency",
            "must be one of the merchant's currencies (CURRENCIES)",
        ),
        (None, Some(_)) => f.error("currency", "is required with amountOff"),
        (Some(_), None) => f.error("currency", "is only for amountOff"),
        (None, None) => {}
    }
    let duration = f.string("duration");
    let periods = f.optional_integer("durationInPeriods");
    let duration = match (duration.as_deref(), periods) {
        (Some("once"), None) => Some(Duration::Once),
        (Some("forever"), None) => Some(Duration::Forever),
        (Some("repeating"), Some(n)) if (1..=MAX_PERIODS).contains(&n) => {
            Some(Duration::Repeating(n as u32))
        }
        (Some("repeating"), _) => {
            f.error("durationInPeriods", "must be 1 to 1000 with repeating");
            None
        }
        (Some("once" | "forever"), Some(_)) => {
            f.error("durationInPeriods", "is only for repeating");
            None
        }
        (Some(_), _) => {
            f.error("duration", "must be once, repeating or forever");
            None
        }
        (None, _) => None,
    };
    let now = ctx.now().await?;
    let redeem_by = f.optional_string("redeemBy").and_then(|t| {
        match parse_rfc3339(&t) {
            Ok(at) if at > now => return Some(at),
            Ok(_) => f.error("redeemBy", "must be in the future"),
            Err(_) => f.error("redeemBy", "must be an RFC 3339 date-time"),
        }
        None
    });
    let max = f.optional_integer("maxRedemptions");
    if let Some(m) = max {
        f.check(
            (1..=i64::from(u32::MAX)).contains(&m),
            "maxRedemptions",
            "must be a positive integer",
        );
    }
    f.finish()?;
    let (Some(id), Some(duration)) = (id, duration) else {
        return Err(Problem::internal("A checked coupon lost its fields."));
    };
    let off = match (percent, amount) {
        (Some(p), _) => Off::Percent(p as u8),
        (_, Some(a)) => Off::Amount(a),
        _ => return Err(Problem::internal("A checked coupon lost its amount.")),
    };
    let created = coupons::create(
        ctx.db(),
        &NewCoupon {
            id: &id,
            name: name.as_deref().map(str::trim),
            off,
            currency: currency.as_deref(),
            duration,
            redeem_by,
            max_redemptions: max.map(|m| m as u32),
            now,
        },
    )
    .await?;
    if !created {
        return Err(Problem::conflict(
            "coupon-exists",
            "A coupon with this id exists",
            "Coupon ids are unique and a coupon's terms never change: pick another id.",
        )
        .with("coupon", id));
    }
    let row = load(ctx, &id).await?;
    respond::json(201, &view(&row, now))
}

async fn load(ctx: &Ctx, id: &str) -> Result<CouponRow, Problem> {
    let not_found = || Problem::not_found(&format!("Coupon {id:?}"));
    if !validate::is_identifier(id) {
        return Err(not_found());
    }
    // Coupons are merchant-wide: in `DB`, whichever shard asks.
    coupons::get(ctx.main_db(), id).await?.ok_or_else(not_found)
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let row = load(ctx, id).await?;
    let now = ctx.now().await?;
    respond::json(200, &view(&row, now))
}

/// `GET /v1/coupons`: by id, `?limit=` and `?startingAfter=`.
pub async fn list(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let after = body::query_param(req, "startingAfter");
    let rows = coupons::list(ctx.db(), after.as_deref(), limit + 1).await?;
    let now = ctx.now().await?;
    respond::json(200, &page::of(&rows, limit, |r| &r.id, |r| view(r, now)))
}

/// `DELETE /v1/coupons/:id`: no new redemptions; discounts given run their course.
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let row = load(ctx, id).await?;
    let now = ctx.now().await?;
    coupons::delete(ctx.db(), &row.id, now).await?;
    let row = load(ctx, id).await?;
    respond::json(200, &view(&row, now))
}

/// The coupon a discount is to use, redeemable now against prices in `currency` (any, when
/// `None`): 404 when unknown, 409 `coupon-not-redeemable` saying why otherwise.
pub async fn redeemable(
    ctx: &Ctx,
    id: &str,
    currency: Option<&str>,
    now: i64,
) -> Result<CouponRow, Problem> {
    let row = load(ctx, id).await?;
    let coupon = row.model()?;
    let currency = currency.or(coupon.currency.as_deref()).unwrap_or_default();
    if let Err(why) = coupon.redeemable(now, currency) {
        return Err(not_redeemable(&row.id, why));
    }
    Ok(row)
}

pub fn not_redeemable(id: &str, why: NotRedeemable) -> Problem {
    Problem::conflict(
        "coupon-not-redeemable",
        "The coupon cannot be redeemed",
        format!("Coupon {id:?} cannot be redeemed: {}.", why.detail()),
    )
    .with("coupon", id.to_owned())
}

fn coupon_field(map: serde_json::Map<String, serde_json::Value>) -> Result<String, Problem> {
    let mut f = Fields::new(map);
    let coupon = f.string("coupon");
    if let Some(c) = &coupon {
        f.check(validate::is_identifier(c), "coupon", "is not a coupon id");
    }
    f.finish()?;
    coupon.ok_or_else(|| Problem::internal("A checked field went missing."))
}

/// Applies a coupon in one batch; a redemption limit reached meanwhile fails the batch (the
/// CHECK on `times_redeemed`) and is told as such.
async fn apply(
    ctx: &Ctx,
    holder: Holder<'_>,
    coupon: &CouponRow,
    now: i64,
) -> Result<bool, Problem> {
    let periods = coupon.model()?.duration.periods();
    if ctx.shard() != 0 {
        return apply_in_shard(ctx, holder, coupon, periods, now).await;
    }
    match ctx
        .db()
        .batch(coupons::apply(holder, &coupon.id, periods, now))
        .await
    {
        Ok(changes) => Ok(changes.first().is_some_and(|&n| n > 0)),
        Err(e) => refusal_or(ctx, &coupon.id, now, Err(e)).await,
    }
}

/// A redemption that did not go through: the coupon's own reason when it can no longer be
/// redeemed (its last redemption taken meanwhile, deleted, expired), else `otherwise`.
async fn refusal_or(
    ctx: &Ctx,
    id: &str,
    now: i64,
    otherwise: Result<bool, Problem>,
) -> Result<bool, Problem> {
    let fresh = load(ctx, id).await?.model()?;
    match fresh.redeemable(now, fresh.currency.as_deref().unwrap_or_default()) {
        Err(why) => Err(not_redeemable(id, why)),
        Ok(()) => otherwise,
    }
}

/// [`apply`] in a shard other than `DB`, which holds the coupon's count: one redemption is
/// reserved there first, then the discount is given in the shard (with the shard's copy of the
/// coupon); a discount not given returns the reservation. A crash in between leaves the count
/// one ahead: a redemption refused that could have been taken, never one too many.
async fn apply_in_shard(
    ctx: &Ctx,
    holder: Holder<'_>,
    coupon: &CouponRow,
    periods: Option<u32>,
    now: i64,
) -> Result<bool, Problem> {
    let reserved = coupons::reserve(ctx.main_db(), &coupon.id, now).await;
    if !matches!(reserved, Ok(true)) {
        return refusal_or(ctx, &coupon.id, now, reserved.map(|_| false)).await;
    }
    let mut batch = vec![coupons::copy(coupon)];
    batch.extend(coupons::apply(holder, &coupon.id, periods, now));
    let given = ctx
        .db()
        .batch(batch)
        .await
        .map(|changes| changes.get(1).is_some_and(|&n| n > 0));
    if !matches!(given, Ok(true)) {
        coupons::release(ctx.main_db(), &coupon.id).await?;
    }
    given
}

/// `POST /v1/subscriptions/:id/discount {"coupon"}`: in place of any discount it had.
pub async fn set_on_subscription(
    req: &mut Request,
    ctx: &Ctx,
    id: &str,
) -> Result<Response, Problem> {
    let coupon_id = coupon_field(body::object(req).await?)?;
    let sub = load_subscription(ctx, id).await?;
    if sub.kind != "recurring" || matches!(sub.status.as_str(), "canceled" | "completed") {
        return Err(Problem::conflict(
            "invalid-subscription-state",
            "This subscription takes no discount",
            format!(
                "A discount applies to a recurring subscription that has not ended (this one is \
                 {} and {}).",
                sub.kind, sub.status
            ),
        ));
    }
    // The same coupon again changes nothing (and is not redeemed twice).
    if sub.coupon_id.as_deref() != Some(coupon_id.as_str()) {
        let now = ctx.now().await?;
        let coupon = redeemable(ctx, &coupon_id, Some(&sub.currency), now).await?;
        if !apply(ctx, Holder::Subscription(&sub.id), &coupon, now).await? {
            return Err(Problem::conflict(
                "subscription-changed",
                "Subscription changed meanwhile",
                "The subscription changed while this request ran; read it and try again.",
            ));
        }
    }
    let sub = load_subscription(ctx, id).await?;
    respond::json(200, &views::subscription(&sub))
}

/// `DELETE /v1/subscriptions/:id/discount`.
pub async fn remove_from_subscription(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let sub = load_subscription(ctx, id).await?;
    let now = ctx.now().await?;
    coupons::remove(ctx.db(), Holder::Subscription(&sub.id), now).await?;
    let sub = load_subscription(ctx, id).await?;
    respond::json(200, &views::subscription(&sub))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerDiscountView<'a> {
    customer_ref: &'a str,
    /// Absent when the customer has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<views::subscription::DiscountView<'a>>,
}

async fn customer_answer(ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    let found = coupons::customer_discount(ctx.db(), customer)
        .await?
        .ok_or_else(|| Problem::not_found("The customer"))?;
    respond::json(
        200,
        &CustomerDiscountView {
            customer_ref: &found.customer_ref,
            discount: views::subscription::discount(
                found.coupon_id.as_deref(),
                found.discount_periods_left,
            ),
        },
    )
}

/// `POST /v1/customers/:ref/discount {"coupon"}`: for the customer's subscriptions without a
/// discount of their own, from their next charge on.
pub async fn set_on_customer(
    req: &mut Request,
    ctx: &Ctx,
    customer: &str,
) -> Result<Response, Problem> {
    let coupon_id = coupon_field(body::object(req).await?)?;
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let current = coupons::customer_discount(ctx.db(), customer)
        .await?
        .ok_or_else(|| Problem::not_found("The customer"))?;
    if current.coupon_id.as_deref() != Some(coupon_id.as_str()) {
        let now = ctx.now().await?;
        let coupon = redeemable(ctx, &coupon_id, None, now).await?;
        apply(ctx, Holder::Customer(customer), &coupon, now).await?;
    }
    customer_answer(ctx, customer).await
}

/// `DELETE /v1/customers/:ref/discount`.
pub async fn remove_from_customer(ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let now = ctx.now().await?;
    coupons::remove(ctx.db(), Holder::Customer(customer), now).await?;
    customer_answer(ctx, customer).await
}
