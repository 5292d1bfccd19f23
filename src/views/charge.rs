//! A charge as the merchant's backend sees it, in responses and in events.

use serde::Serialize;
use serde_json::Value;

use crate::store::charges::ChargeRow;
use recurring_core::billing::charge_machine::ChargeStatus;
use recurring_core::billing::decline::{DeclineClass, classify};
use recurring_core::billing::time::format_rfc3339;

/// The merchant's metadata as stored with the charge (JSON text of an object of strings,
/// written by us). Read by the parser every body goes through, the last of a member named
/// twice standing, as a plain `serde_json` parse into a `Value` would have it.
fn stored_metadata(text: &str) -> Option<Value> {
    let mut value = recurring_core::json_read::parse(text.as_bytes())?;
    recurring_core::json_read::forget_duplicates(&mut value);
    Some(value)
}

/// A charge as the merchant's backend sees it: never the token, never provider free text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeView<'a> {
    id: &'a str,
    status: &'static str,
    kind: &'a str,
    customer_ref: &'a str,
    amount: i64,
    currency: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    /// soft: may succeed later; hard: needs a new card; unknown: retried at most once.
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_category: Option<&'a str>,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_retry_at: Option<String>,
    attempts: u32,
    refunded_amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_order_id: Option<&'a str>,
    /// While `needs_attention`: why an operator must look (the incident's type).
    #[serde(skip_serializing_if = "Option::is_none")]
    attention: Option<&'a str>,
    /// Incidents recorded on the charge (e.g. `duplicateRefunded`), oldest first; see
    /// `GET /v1/incidents?chargeId=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
    created_at: String,
    /// When the resource last changed: of two copies (events may arrive out of order), the
    /// newer `updatedAt` wins.
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<String>,
    /// Once the charge succeeded: the provider's settlement of its payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement: Option<SettlementView<'a>>,
    /// The provider's receipt, once it was asked for after settlement.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_url: Option<&'a str>,
    /// What the customer's balance paid before the card was charged `amount`.
    #[serde(skip_serializing_if = "Option::is_none")]
    balance_applied: Option<i64>,
    /// What a coupon took off the price: the price was `amount + discount.amount` (plus any
    /// `balanceApplied`).
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<ChargeDiscount<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChargeDiscount<'a> {
    coupon: &'a str,
    amount: i64,
}

/// How the provider settled a payment: pending (not batched), processed (batched), settled
/// (fee, net and payout known), error (the provider retries it), voided (never settles).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementView<'a> {
    pub status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// What the merchant keeps of it before any refund: amount − fee for a charge (a voided one:
    /// its amount, no fee; the void is a refund), −amount for a refund's return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_date: Option<&'a str>,
}

/// Absent until the provider's status showed something of the payment's settlement: a charge
/// that just succeeded reads the same in its event and in the API.
fn settlement(c: &ChargeRow) -> Option<SettlementView<'_>> {
    let status = c.settlement_status.as_deref()?;
    if status == "pending" && c.transaction_id.is_none() {
        return None;
    }
    let settled = status == "settled" || status == "voided";
    Some(SettlementView {
        status,
        transaction_id: c.transaction_id.as_deref(),
        fee: c.fee.filter(|_| settled),
        net: c.net.filter(|_| settled),
        payout_id: c.payout_ref.as_deref(),
        settlement_date: c.settlement_date.as_deref(),
    })
}

pub fn charge(c: &ChargeRow) -> ChargeView<'_> {
    let status = match ChargeStatus::parse(&c.status) {
        Some(ChargeStatus::Succeeded) => "succeeded",
        Some(ChargeStatus::Failed) => "failed",
        // Still open and reconciled, but the provider lost it, keeps refusing it, or never
        // tells its outcome: an operator must look.
        _ if c.attention.is_some() => "needs_attention",
        _ => "pending",
    };
    let class = c.decline_class.as_deref();
    let retryable = status == "failed"
        && match class {
            Some(_) => classify(c.failure_reason.as_deref()) != DeclineClass::Hard,
            // A failure that is not a decline (refused by the provider, no card) is retryable
            // only once the cause is fixed, which a retry of the same request cannot do.
            None => false,
        };
    ChargeView {
        id: &c.id,
        status,
        // A change's charge is kept as kind `api` with its purpose (see migration 0009).
        kind: c.purpose.as_deref().unwrap_or(&c.kind),
        customer_ref: &c.customer_ref,
        amount: c.amount,
        currency: &c.currency,
        description: &c.description,
        metadata: c.metadata.as_deref().and_then(stored_metadata),
        subscription_id: c.subscription_id.as_deref(),
        period_index: c.period_index,
        failure_reason: (status == "failed")
            .then_some(c.failure_reason.as_deref())
            .flatten(),
        decline_category: (status == "failed").then_some(class).flatten(),
        retryable,
        next_retry_at: c.next_retry_at.map(format_rfc3339),
        attempts: c.attempts,
        refunded_amount: c.refunded_amount,
        provider_order_id: c.order_id.as_deref(),
        attention: (status == "needs_attention")
            .then_some(c.attention.as_deref())
            .flatten(),
        incidents: Vec::new(),
        created_at: format_rfc3339(c.created_at),
        updated_at: format_rfc3339(c.updated_at),
        settled_at: c.settled_at.map(format_rfc3339),
        settlement: settlement(c),
        receipt_url: c.receipt_url.as_deref(),
        balance_applied: c.balance_applied.filter(|a| *a > 0),
        discount: match (&c.coupon_id, c.discount_amount) {
            (Some(coupon), Some(amount)) if amount > 0 => Some(ChargeDiscount { coupon, amount }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_metadata_reads_as_a_plain_parse_would() {
        for text in [
            r#"{"order":"A-17","note":"ünïcode \"quoted\""}"#,
            r#"{}"#,
            r#"{"a":"1","a":"2"}"#,
            r#"{"n":{"deep":[1,2.5,null,true]}}"#,
            "not json",
            r#"{"a":"1"} x"#,
        ] {
            assert_eq!(
                stored_metadata(text),
                serde_json::from_str::<Value>(text).ok(),
                "{text}"
            );
        }
    }
}
