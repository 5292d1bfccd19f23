//! What the provider knows: orders, payments, tokens, the behaviours scripted for tokens,
//! settlement and payouts, receipts sent, and the clock's offset. Plain data, serialised as a
//! whole into the state file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

impl OrderKind {
    /// The `type` of transactions and webhooks.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Purchase => "PURCHASE",
            OrderKind::Return => "RETURN",
        }
    }
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
    /// Final states are never overwritten: that is what makes cancelling an order a fence.
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
    /// The provider forgot the order (control API or the `lost` fault): its API answers 404
    /// for it. It stays here so the ledger still shows what moved on it.
    #[serde(default)]
    pub lost: bool,
    /// The hosted page link is one-shot: set once an attempt started.
    pub link_used: bool,
    pub payments: Vec<String>,
    pub created_at: i64,
    /// (time, status body) after every change, so status reads can lag behind on purpose.
    /// Not kept in the state file: after a restart, reads start from the current state.
    #[serde(default, skip_serializing)]
    pub history: Vec<(i64, Value)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
    pub expiry_month: u8,
    pub expiry_year: u16,
    pub holder: String,
    /// How later token charges of this card end. The number itself is never kept, so the test
    /// card's behaviour is recorded when the card is typed.
    #[serde(default)]
    pub later: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    #[serde(default = "crate::state::new_id")]
    pub transaction_id: String,
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
    /// When it became `PAYMENT_COMPLETED` (sandbox clock): what its daily batch and its refund
    /// period count from. Absent in state files older than settlement: `updated_at` stands in.
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// Decided when the payment starts (by the card or the token's behaviour), applied when it
    /// settles, unless it was cancelled meanwhile.
    pub planned: Outcome,
    pub settle_after_ms: u64,
    #[serde(default)]
    pub settlement: Settlement,
    /// The opaque id in its receipt URL, given out the first time a receipt is asked for, so
    /// the URL stays the same.
    #[serde(default)]
    pub receipt_id: Option<String>,
}

impl Payment {
    /// The instant its money moved, if it did.
    pub fn completed(&self) -> Option<i64> {
        (self.status == PaymentStatus::PaymentCompleted)
            .then(|| self.completed_at.unwrap_or(self.updated_at))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettlementStatus {
    #[default]
    NotSettled,
    Processed,
    Settled,
    Error,
}

impl SettlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementStatus::NotSettled => "NOT_SETTLED",
            SettlementStatus::Processed => "PROCESSED",
            SettlementStatus::Settled => "SETTLED",
            SettlementStatus::Error => "ERROR",
        }
    }
}

/// Where a completed transaction is on its way to the merchant's account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settlement {
    pub status: SettlementStatus,
    /// The cutoff of the batch that took it (`PROCESSED`, `SETTLED`) or failed on it (`ERROR`).
    pub batch_at: Option<i64>,
    /// `YYYY-MM-DD`, known from `PROCESSED` on.
    pub settlement_date: Option<String>,
    /// Once `SETTLED`: minor units, the provider's fee and what reached the merchant (negative
    /// for a refund, which is taken from the payout).
    pub fee: Option<i64>,
    pub payout: Option<i64>,
    pub settlement_ref: Option<String>,
    /// Settled under the `short_payout` fault: `payout` (and its line in the payout) is one
    /// minor unit below what the fee leaves.
    #[serde(default)]
    pub short_paid: bool,
}

/// The money of one settlement date in one currency: every transaction settled that date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payout {
    pub settlement_ref: String,
    /// `YYYY-MM-DD`.
    pub settlement_date: String,
    pub currency: String,
    pub transactions: Vec<PayoutLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutLine {
    pub transaction_id: String,
    pub order_id: String,
    pub payment_id: String,
    pub kind: OrderKind,
    /// The transaction's amount, positive for either kind.
    pub amount: i64,
    pub fee: i64,
    pub payout: i64,
}

impl Payout {
    /// Σ purchase amounts.
    pub fn gross(&self) -> i64 {
        self.sum(OrderKind::Purchase, |l| l.amount)
    }

    pub fn fees(&self) -> i64 {
        self.transactions.iter().map(|l| l.fee).sum()
    }

    /// Σ refunded amounts.
    pub fn refunds(&self) -> i64 {
        self.sum(OrderKind::Return, |l| l.amount)
    }

    /// What reaches the merchant: the sum of its transactions' payouts, i.e. gross − fees −
    /// refunds, less one minor unit per transaction short-paid by the `short_payout` fault.
    pub fn amount(&self) -> i64 {
        self.transactions.iter().map(|l| l.payout).sum()
    }

    fn sum(&self, kind: OrderKind, value: fn(&PayoutLine) -> i64) -> i64 {
        self.transactions
            .iter()
            .filter(|l| l.kind == kind)
            .map(value)
            .sum()
    }
}

/// A receipt the sandbox would have emailed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptEmail {
    pub to: String,
    pub receipt_url: String,
    pub order_id: String,
    pub payment_id: String,
    pub transaction_id: String,
    pub sent_at: i64,
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
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Charges left under this behaviour; `None`: until changed.
    pub times: Option<u32>,
    /// Processing time of these charges, instead of `--processing-ms`.
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    pub orders: BTreeMap<String, Order>,
    pub payments: BTreeMap<String, Payment>,
    pub tokens: BTreeMap<String, Token>,
    /// Per token, a stack: the top applies; a behaviour with `times` falls back to the one
    /// below it once used up.
    #[serde(default)]
    pub token_behaviours: BTreeMap<String, Vec<Behaviour>>,
    /// Console-style webhook registration.
    pub webhook_url: Option<String>,
    pub webhook_retry_delays_ms: Vec<u64>,
    /// The sandbox clock's offset from real time; `None` in a state that never had one.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// In the order they were opened.
    #[serde(default)]
    pub payouts: Vec<Payout>,
    #[serde(default)]
    pub receipt_emails: Vec<ReceiptEmail>,
}

impl Ledger {
    /// An order the provider's API still knows: not lost.
    pub fn known_order(&self, order_id: &str) -> Option<&Order> {
        self.orders.get(order_id).filter(|o| !o.lost)
    }

    pub fn payments_of<'a>(
        &'a self,
        order: &'a Order,
    ) -> impl DoubleEndedIterator<Item = &'a Payment> + Clone {
        order.payments.iter().filter_map(|id| self.payments.get(id))
    }

    /// The payment of a receipt id (`:id` of the receipt routes): an order id, a payment id or
    /// a transaction id, of an order the provider still knows.
    pub fn find_transaction(&self, id: &str) -> Option<&Payment> {
        let payment = match self.known_order(id) {
            Some(order) => self
                .payments_of(order)
                .find(|p| p.status == PaymentStatus::PaymentCompleted),
            None => self
                .payments
                .get(id)
                .or_else(|| self.payments.values().find(|p| p.transaction_id == id)),
        }?;
        self.known_order(&payment.order_id).map(|_| payment)
    }

    /// The completed, not voided payment of an order: the money that moved.
    pub fn completed_payment(&self, order_id: &str) -> Option<&Payment> {
        let order = self.orders.get(order_id)?;
        self.payments_of(order)
            .find(|p| p.status == PaymentStatus::PaymentCompleted && !p.voided)
    }

    /// Return orders against a purchase that are not cancelled (in flight or completed).
    pub fn returns_of<'a>(&'a self, purchase_order_id: &'a str) -> impl Iterator<Item = &'a Order> {
        self.orders.values().filter(move |o| {
            o.purchase_order_id.as_deref() == Some(purchase_order_id) && !o.cancelled
        })
    }

    /// What has been (or is being) given back on a purchase; a voided refund gave nothing.
    pub fn returned_amount(&self, purchase_order_id: &str) -> i64 {
        self.returns_of(purchase_order_id)
            .filter(|o| !self.payments_of(o).any(|p| p.voided))
            .map(|o| o.amount.abs())
            .sum()
    }

    /// Sets how the next charges of a token end. Without `times` it replaces everything set
    /// before; with `times` it applies on top and then falls back to what was there.
    pub fn set_behaviour(&mut self, token_id: &str, behaviour: Behaviour) {
        let stack = self
            .token_behaviours
            .entry(token_id.to_owned())
            .or_default();
        if behaviour.times.is_none() {
            stack.clear();
        }
        stack.push(behaviour);
    }

    /// What the next charge of a token does, using up one charge of a behaviour with `times`.
    pub fn next_outcome(&mut self, token_id: &str) -> (Outcome, Option<u64>) {
        let default = self
            .tokens
            .get(token_id)
            .map_or(Outcome::Approve, |t| t.default_outcome.clone());
        let Some(stack) = self.token_behaviours.get_mut(token_id) else {
            return (default, None);
        };
        let Some(top) = stack.last_mut() else {
            return (default, None);
        };
        let result = (top.outcome.clone(), top.delay_ms);
        if let Some(times) = top.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                stack.pop();
            }
        }
        if stack.is_empty() {
            self.token_behaviours.remove(token_id);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decline(reason: &str, times: Option<u32>) -> Behaviour {
        Behaviour {
            outcome: Outcome::Decline {
                reason: reason.into(),
            },
            times,
            delay_ms: None,
        }
    }

    #[test]
    fn a_behaviour_with_times_falls_back_to_the_previous_one() {
        let mut l = Ledger::default();
        l.set_behaviour("t", decline("DENIED_NO_FUNDS", None));
        l.set_behaviour("t", decline("ERROR_SYSTEM", Some(2)));
        let reasons: Vec<Outcome> = (0..4).map(|_| l.next_outcome("t").0).collect();
        let d = |r: &str| Outcome::Decline { reason: r.into() };
        assert_eq!(
            reasons,
            [
                d("ERROR_SYSTEM"),
                d("ERROR_SYSTEM"),
                d("DENIED_NO_FUNDS"),
                d("DENIED_NO_FUNDS")
            ]
        );
        // Timed behaviours stack up and unwind in order.
        l.set_behaviour("t", decline("DENIED", Some(1)));
        l.set_behaviour(
            "t",
            Behaviour {
                outcome: Outcome::Approve,
                times: Some(1),
                delay_ms: Some(5),
            },
        );
        assert_eq!(l.next_outcome("t"), (Outcome::Approve, Some(5)));
        assert_eq!(l.next_outcome("t").0, d("DENIED"));
        assert_eq!(l.next_outcome("t").0, d("DENIED_NO_FUNDS"));
        // Without times it replaces the whole stack.
        l.set_behaviour(
            "t",
            Behaviour {
                outcome: Outcome::Approve,
                times: None,
                delay_ms: None,
            },
        );
        assert_eq!(l.token_behaviours["t"].len(), 1);
    }
}
