//! What the provider knows: orders, payments, tokens, and how test cards behave.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Terminal {
    PaymentPage,
    MerchantInitiated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderKind {
    Purchase,
    Return,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    PaymentInitiated,
    PaymentProcessing,
    PaymentProcessed,
    PaymentCompleted,
    PaymentFailed,
    PaymentCancelled,
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::PaymentCompleted
                | PaymentStatus::PaymentFailed
                | PaymentStatus::PaymentCancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::PaymentInitiated => "PAYMENT_INITIATED",
            PaymentStatus::PaymentProcessing => "PAYMENT_PROCESSING",
            PaymentStatus::PaymentProcessed => "PAYMENT_PROCESSED",
            PaymentStatus::PaymentCompleted => "PAYMENT_COMPLETED",
            PaymentStatus::PaymentFailed => "PAYMENT_FAILED",
            PaymentStatus::PaymentCancelled => "PAYMENT_CANCELLED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub reference_id: Option<String>,
    pub terminal: Terminal,
    pub kind: OrderKind,
    /// Order total in minor units; negative for a return.
    pub amount: i64,
    pub currency: String,
    pub lines: Value,
    pub customer: Option<Value>,
    pub tokenize: bool,
    pub callback_url: Option<String>,
    pub redirect_url: Option<String>,
    pub failure_redirect_url: Option<String>,
    pub purchase_order_id: Option<String>,
    pub cancelled: bool,
    /// The hosted page link is one-shot: set once an attempt started.
    pub link_used: bool,
    pub payments: Vec<String>,
    pub created_at: i64,
    /// (time, status body) after every change, so status reads can lag behind on purpose.
    pub history: Vec<(i64, Value)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
    pub expiry_month: u8,
    pub expiry_year: u16,
    pub holder: String,
    /// How later token charges of this card end (the test card decides; the number is not kept).
    #[serde(default)]
    pub later: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    pub method: String,
    pub token_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub card: Option<Card>,
    pub voided: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Decided when the payment starts; applied when it settles.
    pub planned: Outcome,
    pub settle_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Approve,
    Decline {
        #[serde(rename = "failureReason")]
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub order_id: String,
    pub card: Card,
    /// What charges of this token do when no behaviour is set: decided by the test card.
    pub default_outcome: Outcome,
    pub created_at: i64,
}

/// A behaviour set through the control API for the next charges of a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Behaviour {
    pub outcome: Outcome,
    /// Charges left under this behaviour; `None` until changed.
    pub times: Option<u32>,
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    pub orders: BTreeMap<String, Order>,
    pub payments: BTreeMap<String, Payment>,
    pub tokens: BTreeMap<String, Token>,
    pub behaviours: BTreeMap<String, Behaviour>,
    /// Console-style webhook registration.
    pub webhook_url: Option<String>,
    pub webhook_retry_delays_ms: Vec<u64>,
}

/// The test cards of the contract. Any other number that passes the Luhn check is approved.
pub fn card_outcomes(number: &str) -> (Outcome, Outcome) {
    let decline = |r: &str| Outcome::Decline { reason: r.into() };
    match number {
        // (at checkout, later token charges)
        "4000000000009995" => (Outcome::Approve, decline("DENIED_NO_FUNDS")),
        "4000000000000119" => (Outcome::Approve, decline("DENIED_DO_NOT_TRY_AGAIN")),
        "4000000000000002" => (decline("DENIED"), decline("DENIED")),
        _ => (Outcome::Approve, Outcome::Approve),
    }
}

pub fn luhn_valid(number: &str) -> bool {
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn brand(number: &str) -> &'static str {
    let prefix2: u32 = number.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let prefix4: u32 = number.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    match () {
        _ if number.starts_with('4') => "VISA",
        _ if (51..=55).contains(&prefix2) || (2221..=2720).contains(&prefix4) => "MASTERCARD",
        _ if prefix2 == 34 || prefix2 == 37 => "AMEX",
        _ => "CARD",
    }
}

impl Ledger {
    /// The status body of an order as it is now.
    pub fn status_of(&self, order: &Order) -> Value {
        let payments: Vec<&Payment> = order
            .payments
            .iter()
            .filter_map(|id| self.payments.get(id))
            .collect();
        let completed = payments
            .iter()
            .any(|p| p.status == PaymentStatus::PaymentCompleted);
        let order_status = if completed {
            "PAYMENT_COMPLETED"
        } else if order.cancelled {
            "PAYMENT_CANCELLED"
        } else {
            match payments.last().map(|p| p.status) {
                None => "PENDING",
                Some(PaymentStatus::PaymentInitiated | PaymentStatus::PaymentProcessing) => {
                    "PAYMENT_INITIATED"
                }
                Some(PaymentStatus::PaymentProcessed) => "PAYMENT_PROCESSED",
                Some(PaymentStatus::PaymentFailed) => "PAYMENT_FAILED",
                Some(PaymentStatus::PaymentCancelled) => "PAYMENT_CANCELLED",
                Some(PaymentStatus::PaymentCompleted) => "PAYMENT_COMPLETED",
            }
        };
        let mut body = json!({
            "orderStatus": order_status,
            "payments": payments.iter().map(|p| json!({
                "paymentId": p.id,
                "paymentStatus": p.status.as_str(),
                "paymentMethod": p.method,
                "amount": p.amount,
                "failureReason": p.failure_reason,
            })).collect::<Vec<_>>(),
        });
        // Transactions appear once (part of) the order completed, with amounts as strings.
        if completed {
            let done: Vec<&&Payment> = payments
                .iter()
                .filter(|p| p.status == PaymentStatus::PaymentCompleted)
                .collect();
            body["paymentIds"] = json!(done.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
            body["transactions"] = json!(done.iter().map(|p| json!({
                "transactionId": format!("t{}", &p.id[1..]),
                "paymentId": p.id,
                "amount": p.amount.to_string(),
                "currency": p.currency,
                "type": match order.kind { OrderKind::Purchase => "PURCHASE", OrderKind::Return => "RETURN" },
                "voided": p.voided,
                "settlementStatus": "NOT_SETTLED",
                "truncatedPan": p.card.as_ref().map(|c| c.last4.clone()),
                "cardBrand": p.card.as_ref().map(|c| c.brand.clone()),
                "customerResponseCode": "00",
            })).collect::<Vec<_>>());
        }
        body
    }

    /// Records the order's status after a change, for lagging reads.
    pub fn snapshot(&mut self, order_id: &str, now: i64) {
        let Some(order) = self.orders.get(order_id) else {
            return;
        };
        let body = self.status_of(order);
        if let Some(order) = self.orders.get_mut(order_id) {
            if order.history.last().map(|(_, b)| b) != Some(&body) {
                order.history.push((now, body));
            }
            // Bounded: enough for any lag a test asks for.
            if order.history.len() > 64 {
                order.history.drain(..order.history.len() - 64);
            }
        }
    }

    /// The status as it was `lag_ms` ago (the oldest known state if the order is younger).
    pub fn status_lagging(&self, order: &Order, now: i64, lag_ms: u64) -> Value {
        if lag_ms == 0 {
            return self.status_of(order);
        }
        let cutoff = now - lag_ms as i64;
        order
            .history
            .iter()
            .rev()
            .find(|(t, _)| *t <= cutoff)
            .or_else(|| order.history.first())
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| self.status_of(order))
    }

    /// Sum of completed and in-flight returns against a purchase.
    pub fn returned_amount(&self, purchase_order_id: &str) -> i64 {
        self.orders
            .values()
            .filter(|o| o.purchase_order_id.as_deref() == Some(purchase_order_id) && !o.cancelled)
            .map(|o| o.amount.abs())
            .sum()
    }

    pub fn purchase_completed(&self, order_id: &str) -> Option<i64> {
        let order = self.orders.get(order_id)?;
        order
            .payments
            .iter()
            .filter_map(|id| self.payments.get(id))
            .find(|p| p.status == PaymentStatus::PaymentCompleted && !p.voided)
            .map(|p| p.amount)
    }

    /// What the next charge of a token does, consuming one use of a behaviour.
    pub fn next_outcome(&mut self, token_id: &str) -> (Outcome, Option<u64>) {
        let default = self
            .tokens
            .get(token_id)
            .map_or(Outcome::Approve, |t| t.default_outcome.clone());
        let Some(behaviour) = self.behaviours.get_mut(token_id) else {
            return (default, None);
        };
        let result = (behaviour.outcome.clone(), behaviour.delay_ms);
        if let Some(times) = behaviour.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.behaviours.remove(token_id);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brands() {
        for ok in [
            "4111111111111111",
            "4000000000009995",
            "4000000000000119",
            "4000000000000002",
            "5555555555554444",
        ] {
            assert!(luhn_valid(ok), "{ok}");
        }
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("4111"));
        assert_eq!(brand("4111111111111111"), "VISA");
        assert_eq!(brand("5555555555554444"), "MASTERCARD");
        assert_eq!(brand("378282246310005"), "AMEX");
    }

    #[test]
    fn test_cards_decide_outcomes() {
        assert_eq!(
            card_outcomes("4111111111111111"),
            (Outcome::Approve, Outcome::Approve)
        );
        assert!(
            matches!(card_outcomes("4000000000009995").1, Outcome::Decline { reason } if reason == "DENIED_NO_FUNDS")
        );
        assert!(
            matches!(card_outcomes("4000000000000119").1, Outcome::Decline { reason } if reason == "DENIED_DO_NOT_TRY_AGAIN")
        );
        assert!(matches!(
            card_outcomes("4000000000000002").0,
            Outcome::Decline { .. }
        ));
    }
}
