//! A checkout as the API shows it: to the customer's page polling it, and in events.

use serde::Serialize;

use crate::store::checkouts::CheckoutRow;
use crate::store::payment_methods::MaskedCard;
use recurring_core::billing::time::format_rfc3339;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutView<'a> {
    checkout_id: &'a str,
    customer_ref: &'a str,
    purpose: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_id: Option<&'a str>,
    amount: i64,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    installments: Option<u32>,
    /// Days of free trial: `amount` only verified the card and is refunded at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<MaskedCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<&'a str>,
    /// Card replacements: the charge the payment settled (`settled`), or a verification
    /// payment refunded at once (`verified`).
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settles_charge_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    created_at: String,
    /// When the checkout last changed: of two copies (events may arrive out of order), the
    /// newer `updatedAt` wins.
    updated_at: String,
}

/// `card`: the card the checkout put on file, once paid.
pub fn checkout(c: &CheckoutRow, card: Option<MaskedCard>) -> CheckoutView<'_> {
    CheckoutView {
        checkout_id: &c.id,
        customer_ref: &c.customer_ref,
        purpose: &c.purpose,
        status: public_status(&c.status),
        plan_id: c.plan_id.as_deref(),
        amount: c.amount,
        currency: &c.currency,
        installments: c.installments,
        trial_days: c.trial_days,
        card,
        subscription_id: c.subscription_id.as_deref(),
        outcome: c.card_outcome.as_deref(),
        settles_charge_id: c.settles_charge_id.as_deref(),
        failure_reason: (c.status == "failed")
            .then_some(c.failure_reason.as_deref())
            .flatten(),
        created_at: format_rfc3339(c.created_at),
        updated_at: format_rfc3339(c.updated_at),
    }
}

/// The frontend sees three states; `creating` is an internal detail of `pending`.
pub fn public_status(status: &str) -> &str {
    match status {
        "paid" => "paid",
        "failed" => "failed",
        _ => "pending",
    }
}
