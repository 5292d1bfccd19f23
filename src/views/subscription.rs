//! A subscription as the API shows it, in responses and in events.

use serde::Serialize;

use crate::store::subscriptions::SubscriptionRow;
use recurring_core::billing::time::format_rfc3339;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView<'a> {
    id: &'a str,
    customer_ref: &'a str,
    plan_id: &'a str,
    kind: &'a str,
    status: &'a str,
    status_reason: &'a str,
    amount: i64,
    currency: &'a str,
    /// Seats: `amount` is the price of one, billed `quantity` times each period.
    quantity: u32,
    /// A quantity that takes effect with the next period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_quantity: Option<u32>,
    interval: &'a str,
    interval_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    installments: Option<u32>,
    current_period: u32,
    current_period_start: String,
    current_period_end: String,
    /// When the next charge is due, if one is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_charge_at: Option<String>,
    cancel_at_period_end: bool,
    /// A free trial's end (its first charge), while the subscription is or was in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_end: Option<String>,
    /// In its free trial now (period 0 of a subscription started with one).
    trialing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_plan_id: Option<&'a str>,
    /// The subscription's own discount (a customer's discount shows on the customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<DiscountView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    canceled_at: Option<String>,
    created_at: String,
    /// When the resource last changed: of two copies (events may arrive out of order), the
    /// newer `updatedAt` wins.
    updated_at: String,
}

pub fn subscription(s: &SubscriptionRow) -> SubscriptionView<'_> {
    let renews = s.status == "active" && s.cancel_at_period_end == 0;
    SubscriptionView {
        id: &s.id,
        customer_ref: &s.customer_ref,
        plan_id: &s.plan_id,
        kind: &s.kind,
        status: &s.status,
        status_reason: &s.status_reason,
        amount: s.amount,
        currency: &s.currency,
        quantity: s.quantity.unwrap_or(1),
        pending_quantity: s.pending_quantity,
        interval: &s.interval_unit,
        interval_count: s.interval_count,
        unit_amount: s.unit_amount,
        installments: s.installments_total,
        current_period: s.current_period,
        current_period_start: format_rfc3339(s.current_period_start),
        current_period_end: format_rfc3339(s.current_period_end),
        next_charge_at: renews.then(|| format_rfc3339(s.current_period_end)),
        cancel_at_period_end: s.cancel_at_period_end != 0,
        trial_end: s.trial_end.map(format_rfc3339),
        trialing: s.trial_end.is_some() && s.current_period == 0 && s.status != "canceled",
        pending_plan_id: s.pending_plan_id.as_deref(),
        discount: discount(s.coupon_id.as_deref(), s.discount_periods_left),
        paused_at: s.paused_at.map(format_rfc3339),
        canceled_at: s.canceled_at.map(format_rfc3339),
        created_at: format_rfc3339(s.created_at),
        updated_at: format_rfc3339(s.updated_at),
    }
}

/// A discount: its coupon, and the charges it still reduces (absent: every charge, for ever).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscountView<'a> {
    coupon: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    periods_left: Option<u32>,
}

pub fn discount(coupon: Option<&str>, periods_left: Option<u32>) -> Option<DiscountView<'_>> {
    coupon.map(|coupon| DiscountView {
        coupon,
        periods_left,
    })
}
