//! The provider's request and response bodies, in the formal API reference's
//! form: flat paths, `controlFunctions.online.enforceTokenization`, `paymentMethodParams.tokenId`.

use serde::Serialize;
use serde_json::Value;

use crate::json_read::{FromJson, Object};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    #[serde(rename = "terminal$id")]
    pub terminal_id: String,
    pub reference_id: String,
    pub order_lines: Vec<OrderLine>,
    pub total_order_amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    pub control_functions: ControlFunctions,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub id: String,
    pub name: String,
    /// Negative on a return order.
    pub quantity: i64,
    /// Per unit.
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_order_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Amount {
    pub regular: i64,
    pub total: i64,
    pub currency: String,
}

impl Amount {
    pub fn of(total: i64, currency: &str) -> Amount {
        Amount {
            regular: total,
            total,
            currency: currency.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Customer {
    pub person: Person,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Person {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PersonName {
    pub first_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_name: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControlFunctions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_payments_options: Option<InitiatePaymentsOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<Online>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InitiatePaymentsOptions {
    pub payment_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Online {
    pub enforce_tokenization: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_redirect_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InitiatePayment {
    pub order_id: String,
    pub payment_method: String,
    pub payment_method_params: PaymentMethodParams,
}

#[derive(Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodParams {
    pub token_id: String,
}

// A token must never reach a log line through a stray `{:?}`.
impl std::fmt::Debug for PaymentMethodParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentMethodParams { token_id: <redacted> }")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreatedOrder {
    pub order_id: String,
    pub payment_page_link: Option<String>,
    pub payment_id: Option<String>,
}

impl FromJson for CreatedOrder {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = CreatedOrder {
            order_id: o.text("orderId"),
            payment_page_link: o.optional_text("paymentPageLink"),
            payment_id: o.optional_text("paymentId"),
        };
        o.finish(read)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InitiatedPayment {
    pub payment_id: String,
}

impl FromJson for InitiatedPayment {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = InitiatedPayment {
            payment_id: o.text("paymentId"),
        };
        o.finish(read)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderStatus {
    pub order_status: String,
    pub payments: Vec<PaymentStatus>,
    /// Present once the order is (partially) completed. Read leniently: a transaction we cannot
    /// read only delays its settlement record, and must never make the order's payments, which
    /// decide charges, unreadable.
    pub transactions: Vec<Transaction>,
}

impl FromJson for OrderStatus {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = OrderStatus {
            order_status: o.text("orderStatus"),
            payments: o.list("payments"),
            transactions: o.lenient_list("transactions"),
        };
        o.finish(read)
    }
}

impl OrderStatus {
    /// The transaction of `payment_id` of the given `type` (`PURCHASE` or `RETURN`). A
    /// transaction that names no payment stands for the order's only one of that type.
    pub fn transaction(&self, payment_id: Option<&str>, kind: &str) -> Option<&Transaction> {
        let of_kind = || {
            self.transactions
                .iter()
                .filter(move |t| t.kind.as_deref().is_none_or(|k| k == kind))
        };
        match payment_id {
            Some(id) => of_kind()
                .find(|t| t.payment_id.as_deref() == Some(id))
                .or_else(|| {
                    let mut unnamed = of_kind().filter(|t| t.payment_id.is_none());
                    match (unnamed.next(), unnamed.next()) {
                        (Some(t), None) => Some(t),
                        _ => None,
                    }
                }),
            None => {
                let mut all = of_kind();
                match (all.next(), all.next()) {
                    (Some(t), None) => Some(t),
                    _ => None,
                }
            }
        }
    }
}

/// One money movement of an order, with its settlement once the provider has settled it.
/// Amounts are strings in the provider's examples and numbers elsewhere: both are read.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub transaction_id: String,
    pub payment_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// `PURCHASE` or `RETURN`.
    pub kind: Option<String>,
    pub voided: Option<bool>,
    /// `NOT_SETTLED`, `PROCESSED`, `SETTLED`, `ERROR`.
    pub settlement_status: Option<String>,
    pub fee: Option<i64>,
    pub payout: Option<i64>,
    pub settlement_ref: Option<String>,
    pub settlement_date: Option<String>,
}

impl FromJson for Transaction {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = Transaction {
            transaction_id: o.text("transactionId"),
            payment_id: o.optional_text("paymentId"),
            amount: lenient_amount(&o, "amount"),
            currency: o.optional_text("currency"),
            kind: o.optional_text("type"),
            voided: o.optional_bool("voided"),
            settlement_status: o.optional_text("settlementStatus"),
            fee: lenient_amount(&o, "fee"),
            payout: lenient_amount(&o, "payout"),
            settlement_ref: o.optional_text("settlementRef"),
            settlement_date: o.optional_text("settlementDate"),
        };
        o.finish(read)
    }
}

/// The answer to `PUT /payments/:id/void`.
#[derive(Debug, Clone, PartialEq)]
pub struct VoidAnswer {
    /// `VOID_INITIATED`, `VOIDED` or `CANNOT_VOID`.
    pub void_status: String,
}

impl FromJson for VoidAnswer {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = VoidAnswer {
            void_status: o.text("voidStatus"),
        };
        o.finish(read)
    }
}

/// The answer to `GET /receipts/:id/link`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptLink {
    pub receipt_url: String,
}

impl FromJson for ReceiptLink {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = ReceiptLink {
            receipt_url: o.text("receiptURL"),
        };
        o.finish(read)
    }
}

/// `PUT /receipts/:id/email`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReceiptEmail {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentStatus {
    pub payment_id: String,
    pub payment_status: String,
    pub payment_method: Option<String>,
    pub amount: Option<i64>,
    pub failure_reason: Option<String>,
}

impl FromJson for PaymentStatus {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = PaymentStatus {
            payment_id: o.text("paymentId"),
            payment_status: o.text("paymentStatus"),
            payment_method: o.optional_text("paymentMethod"),
            amount: lenient_amount(&o, "amount"),
            failure_reason: o.optional_text("failureReason"),
        };
        o.finish(read)
    }
}

/// A card token as the provider returns it. Deliberately not `Debug`-printable with its id.
#[derive(Clone, PartialEq)]
pub struct Token {
    pub token_id: String,
    pub card_brand: Option<String>,
    pub cardholder_name: Option<String>,
    pub expiry_month: Option<u8>,
    pub expiry_year: Option<u16>,
    pub truncated_pan: Option<String>,
    pub created_at: Option<String>,
}

impl FromJson for Token {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = Token {
            token_id: o.text("tokenId"),
            card_brand: o.optional_text("cardBrand"),
            cardholder_name: o.optional_text("cardholderName"),
            expiry_month: o.optional_integer("expiryMonth"),
            expiry_year: o.optional_integer("expiryYear"),
            truncated_pan: o.optional_text("truncatedPan"),
            created_at: o.optional_text("createdAt"),
        };
        o.finish(read)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token_id", &"<redacted>")
            .field("card_brand", &self.card_brand)
            .field("truncated_pan", &self.truncated_pan)
            .finish_non_exhaustive()
    }
}

/// `amount` is a string in some provider payloads and a number in others. A whole number is
/// the amount; text is trimmed and read as one (text that is not one gives no amount); any
/// other value is not an answer of the provider's.
fn lenient_amount(o: &Object<'_>, name: &str) -> Option<i64> {
    match o.get(name)? {
        Value::String(text) => text.trim().parse().ok(),
        _ => o.optional_integer(name),
    }
}

/// Provider payment and order states, as far as this backend needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    InFlight,
    Completed,
    Failed,
    Cancelled,
}

impl PaymentState {
    /// Unknown states are treated as still in flight: only an explicit final state ends a payment.
    pub fn parse(status: &str) -> PaymentState {
        match status {
            "PAYMENT_COMPLETED" => PaymentState::Completed,
            "PAYMENT_FAILED" => PaymentState::Failed,
            "PAYMENT_CANCELLED" => PaymentState::Cancelled,
            _ => PaymentState::InFlight,
        }
    }

    pub fn is_final(self) -> bool {
        self != PaymentState::InFlight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_order_serialises_in_the_formal_form() {
        let order = CreateOrder {
            terminal_id: "t1".into(),
            reference_id: "co_1".into(),
            order_lines: vec![OrderLine {
                id: "basic".into(),
                name: "Basic".into(),
                quantity: 1,
                amount: Amount::of(29900, "752"),
                purchase_order_id: None,
            }],
            total_order_amount: Amount::of(29900, "752"),
            customer: None,
            control_functions: ControlFunctions {
                initiate_payments_options: Some(InitiatePaymentsOptions {
                    payment_method: "CARD".into(),
                    amount: Some(29900),
                }),
                call_back_url: Some("https://m.example/v1/webhooks/psp".into()),
                online: Some(Online {
                    enforce_tokenization: true,
                    redirect_url: Some("https://shop.example/done".into()),
                    failure_redirect_url: None,
                }),
            },
        };
        let v = serde_json::to_value(&order).unwrap();
        assert_eq!(v["terminal$id"], "t1");
        assert_eq!(v["referenceId"], "co_1");
        assert_eq!(v["orderLines"][0]["amount"]["total"], 29900);
        assert_eq!(v["controlFunctions"]["online"]["enforceTokenization"], true);
        assert_eq!(
            v["controlFunctions"]["callBackUrl"],
            "https://m.example/v1/webhooks/psp"
        );
        assert!(
            v["controlFunctions"]["online"]
                .get("failureRedirectUrl")
                .is_none()
        );
        assert!(v["orderLines"][0].get("purchaseOrderId").is_none());
    }

    #[test]
    fn token_goes_in_payment_method_params_and_never_in_debug() {
        let p = InitiatePayment {
            order_id: "o1".into(),
            payment_method: "CTOKEN".into(),
            payment_method_params: PaymentMethodParams {
                token_id: "822d544dc48c200308".into(),
            },
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["paymentMethodParams"]["tokenId"], "822d544dc48c200308");
        assert!(!format!("{p:?}").contains("822d544dc48c200308"));
    }

    #[test]
    fn status_parses_the_contract_example_with_string_or_number_amounts() {
        let s = OrderStatus::from_json(&json!({
            "orderStatus": "PAYMENT_COMPLETED",
            "payments": [
                {"paymentId": "p1", "paymentStatus": "PAYMENT_COMPLETED", "paymentMethod": "CTOKEN",
                 "amount": 29900, "failureReason": null},
                {"paymentId": "p0", "paymentStatus": "PAYMENT_FAILED", "amount": "29900",
                 "failureReason": "DENIED_NO_FUNDS"}
            ],
            "paymentIds": ["p1"],
            "transactions": [{"transactionId": "t", "amount": "29900"}]
        }))
        .unwrap();
        assert_eq!(s.payments[0].amount, Some(29900));
        assert_eq!(s.payments[1].amount, Some(29900));
        assert_eq!(
            s.payments[1].failure_reason.as_deref(),
            Some("DENIED_NO_FUNDS")
        );
        assert_eq!(
            PaymentState::parse(&s.payments[1].payment_status),
            PaymentState::Failed
        );
    }

    #[test]
    fn transactions_are_read_leniently_and_never_break_the_status() {
        let s = OrderStatus::from_json(&json!({
            "orderStatus": "PAYMENT_COMPLETED",
            "payments": [{"paymentId": "p1", "paymentStatus": "PAYMENT_COMPLETED"}],
            "transactions": [
                {"transactionId": "t1", "paymentId": "p1", "amount": "29900", "currency": "752",
                 "type": "PURCHASE", "voided": false, "settlementStatus": "SETTLED",
                 "fee": "718", "payout": 29182, "settlementRef": "r1",
                 "settlementDate": "2026-12-08"},
                {"transactionId": 7},
                "garbage",
                {"transactionId": "t2", "paymentId": "p9", "type": "RETURN", "amount": "-500",
                 "settlementStatus": "NOT_SETTLED"}
            ]
        }))
        .unwrap();
        assert_eq!(s.payments.len(), 1);
        assert_eq!(s.transactions.len(), 2, "{:?}", s.transactions);
        let t = s.transaction(Some("p1"), "PURCHASE").unwrap();
        assert_eq!((t.fee, t.payout), (Some(718), Some(29182)));
        assert_eq!(t.settlement_ref.as_deref(), Some("r1"));
        assert!(s.transaction(Some("p9"), "PURCHASE").is_none());
        assert_eq!(s.transaction(None, "RETURN").unwrap().transaction_id, "t2");
        // Not a list, or named twice: no transactions, the status still reads.
        for transactions in [json!("x"), json!(null), json!({"a": 1})] {
            let s = OrderStatus::from_json(&json!({
                "orderStatus": "PAYMENT_COMPLETED", "transactions": transactions
            }))
            .unwrap();
            assert!(s.transactions.is_empty());
        }
    }

    #[test]
    fn unknown_payment_states_are_not_final() {
        assert!(!PaymentState::parse("PAYMENT_PROCESSED").is_final());
        assert!(!PaymentState::parse("SOMETHING_NEW").is_final());
        assert!(PaymentState::parse("PAYMENT_CANCELLED").is_final());
    }

    #[test]
    fn tokens_parse_and_hide_their_id() {
        let t = Vec::<Token>::from_json(&json!([{
            "cardBrand": "VISA", "cardholderName": "Ada L", "tokenId": "822d544dc48c200308",
            "createdAt": "2026-04-25T11:22:24.845Z", "expiryMonth": 7, "expiryYear": 2030,
            "truncatedPan": "1111", "cardArt": "AAAA"
        }]))
        .unwrap();
        assert_eq!(t[0].expiry_year, Some(2030));
        assert!(!format!("{t:?}").contains("822d544dc48c200308"));
    }
}
