//! A refund as the merchant's backend sees it, in responses and in events.

use serde::Serialize;

use super::charge::SettlementView;
use crate::store::refunds::RefundRow;
use recurring_core::billing::time::format_rfc3339;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView<'a> {
    id: &'a str,
    charge_id: &'a str,
    status: &'a str,
    amount: i64,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_order_id: Option<&'a str>,
    /// Automatic refunds only: the provider payment returned, one nobody expected (a second
    /// payment of the charge, or a payment on an order given up).
    #[serde(skip_serializing_if = "Option::is_none")]
    reverses_payment_id: Option<&'a str>,
    created_at: String,
    /// When the resource last changed: of two copies (events may arrive out of order), the
    /// newer `updatedAt` wins.
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<String>,
    /// How the money goes back: `void` (the same day, before the provider's cutoff: the
    /// payment is cancelled whole, no fee) or `return` (a return order, once the payment has
    /// settled). Absent until decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    /// A return's own settlement: it is taken from a payout.
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement: Option<SettlementView<'a>>,
}

pub fn refund(r: &RefundRow) -> RefundView<'_> {
    let status = match r.status.as_str() {
        "succeeded" => "succeeded",
        "failed" => "failed",
        _ => "pending",
    };
    RefundView {
        id: &r.id,
        charge_id: &r.charge_id,
        status,
        amount: r.amount,
        currency: &r.currency,
        failure_reason: r.failure_reason.as_deref(),
        provider_order_id: r.order_id.as_deref(),
        reverses_payment_id: r.reverses_payment_id.as_deref(),
        created_at: format_rfc3339(r.created_at),
        updated_at: format_rfc3339(r.updated_at),
        settled_at: r.settled_at.map(format_rfc3339),
        method: r.method.as_deref(),
        settlement: r.settlement_status.as_deref().map(|status| SettlementView {
            status,
            transaction_id: r.transaction_id.as_deref(),
            fee: (status == "settled").then_some(0),
            net: (status == "settled").then_some(-r.amount),
            payout_id: r.payout_ref.as_deref(),
            settlement_date: r.settlement_date.as_deref(),
        }),
    }
}
