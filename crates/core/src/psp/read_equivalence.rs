//! The provider's answers and webhooks are read by the hand-written readers of
//! `crate::json_read`. These tests hold them to the derived `Deserialize` they replaced, kept
//! here as the reference: for every answer type, a valid body and many broken variants of it
//! (a member missing, `null`, of another type, out of range, named twice before or after the
//! original, at every depth) must give exactly what the derived reading gave: the same value,
//! or the same error (a `Garbage` or `Rejected` answer is an unknown outcome, reconciled
//! before anything is retried, so a broken answer never loses a payment).
//!
//! One difference is deliberate and tested on its own: a derived struct also accepted a JSON
//! array holding its members in order; the readers take objects only.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::envelope::{PspError, business_error, interpret};
use super::types::{CreatedOrder, InitiatedPayment, OrderStatus, PaymentStatus, Token};
use super::webhook::WebhookEvent;
use crate::json_read::FromJson;

/// The derived types as they were.
mod derived {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    pub struct Envelope<T> {
        pub status: Option<String>,
        pub data: Option<T>,
        pub message: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CreatedOrder {
        pub order_id: String,
        #[serde(default)]
        pub payment_page_link: Option<String>,
        #[serde(default)]
        pub payment_id: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct InitiatedPayment {
        pub payment_id: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OrderStatus {
        pub order_status: String,
        #[serde(default)]
        pub payments: Vec<PaymentStatus>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PaymentStatus {
        pub payment_id: String,
        pub payment_status: String,
        #[serde(default)]
        pub payment_method: Option<String>,
        #[serde(default, deserialize_with = "lenient_amount")]
        pub amount: Option<i64>,
        #[serde(default)]
        pub failure_reason: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Token {
        pub token_id: String,
        #[serde(default)]
        pub card_brand: Option<String>,
        #[serde(default)]
        pub cardholder_name: Option<String>,
        #[serde(default)]
        pub expiry_month: Option<u8>,
        #[serde(default)]
        pub expiry_year: Option<u16>,
        #[serde(default)]
        pub truncated_pan: Option<String>,
        #[serde(default)]
        pub created_at: Option<String>,
    }

    fn lenient_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => None,
            Some(Raw::Int(n)) => Some(n),
            Some(Raw::Text(s)) => s.trim().parse().ok(),
        })
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct WebhookEvent {
        pub event_type: String,
        pub metadata: Metadata,
        #[serde(default)]
        pub data: Option<EventData>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Metadata {
        pub event_id: String,
        #[serde(default)]
        pub created: Option<i64>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct EventData {
        #[serde(default)]
        pub order_id: Option<String>,
        #[serde(default)]
        pub reference_id: Option<String>,
        #[serde(default, rename = "type")]
        pub kind: Option<String>,
    }
}

/// A derived type in the shape of its replacement, for comparing the two readings.
trait Derived: DeserializeOwned {
    type Now: FromJson + PartialEq + std::fmt::Debug;
    fn now(self) -> Self::Now;
}

impl Derived for derived::CreatedOrder {
    type Now = CreatedOrder;
    fn now(self) -> CreatedOrder {
        CreatedOrder {
            order_id: self.order_id,
            payment_page_link: self.payment_page_link,
            payment_id: self.payment_id,
        }
    }
}

impl Derived for derived::InitiatedPayment {
    type Now = InitiatedPayment;
    fn now(self) -> InitiatedPayment {
        InitiatedPayment {
            payment_id: self.payment_id,
        }
    }
}

impl Derived for derived::OrderStatus {
    type Now = OrderStatus;
    fn now(self) -> OrderStatus {
        OrderStatus {
            // The derived type did not read transactions; the examples below have none, and
            // their lenient reading is tested in `types`.
            transactions: Vec::new(),
            order_status: self.order_status,
            payments: self
                .payments
                .into_iter()
                .map(|p| PaymentStatus {
                    payment_id: p.payment_id,
                    payment_status: p.payment_status,
                    payment_method: p.payment_method,
                    amount: p.amount,
                    failure_reason: p.failure_reason,
                })
                .collect(),
        }
    }
}

/// `tokens` asks for `Option<Vec<Token>>`.
impl Derived for Option<Vec<derived::Token>> {
    type Now = Option<Vec<Token>>;
    fn now(self) -> Option<Vec<Token>> {
        self.map(|tokens| {
            tokens
                .into_iter()
                .map(|t| Token {
                    token_id: t.token_id,
                    card_brand: t.card_brand,
                    cardholder_name: t.cardholder_name,
                    expiry_month: t.expiry_month,
                    expiry_year: t.expiry_year,
                    truncated_pan: t.truncated_pan,
                    created_at: t.created_at,
                })
                .collect()
        })
    }
}

/// `cancel_order` took any `data` as a `serde_json::Value`, and did not read it.
impl Derived for Value {
    type Now = ();
    fn now(self) {}
}

/// The answer interpretation as it was, with the derived types.
fn derived_interpret<T: Derived>(http_status: u16, body: &[u8]) -> Result<T::Now, PspError> {
    match http_status {
        401 | 403 => return Err(PspError::Unauthorized),
        404 => return Err(PspError::NotFound),
        200..=299 | 400..=499 => {}
        _ => {
            return Err(PspError::Unavailable {
                status: http_status,
            });
        }
    }
    let envelope = match serde_json::from_slice::<derived::Envelope<Value>>(body) {
        Ok(e) => e,
        Err(_) if (400..=499).contains(&http_status) => {
            return Err(PspError::Rejected {
                status: http_status,
            });
        }
        Err(_) => return Err(PspError::Garbage),
    };
    if envelope.status.as_deref() == Some("ERROR") {
        return Err(business_error(&envelope.message.unwrap_or_default()));
    }
    if (400..=499).contains(&http_status) {
        return Err(PspError::Rejected {
            status: http_status,
        });
    }
    if envelope.status.as_deref() != Some("SUCCESS") {
        return Err(PspError::Garbage);
    }
    let data = envelope.data.unwrap_or(Value::Null);
    serde_json::from_value::<T>(data)
        .map(Derived::now)
        .map_err(|_| PspError::Garbage)
}

/// What routing takes from a webhook: type, event id, creation time, order, reference, kind.
type Routed = Option<(String, String, Option<i64>, [Option<String>; 3])>;

fn derived_webhook(body: &[u8]) -> Routed {
    let e: derived::WebhookEvent = serde_json::from_slice(body).ok()?;
    let id = e.metadata.event_id;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let data = e
        .data
        .map(|d| [d.order_id, d.reference_id, d.kind])
        .unwrap_or_default();
    id_ok.then_some((e.event_type, id, e.metadata.created, data))
}

fn webhook(body: &[u8]) -> Routed {
    let e = WebhookEvent::parse(body)?;
    let data = e
        .data
        .map(|d| [d.order_id, d.reference_id, d.kind])
        .unwrap_or_default();
    Some((e.event_type, e.metadata.event_id, e.metadata.created, data))
}

/// Values put in place of a member: every JSON kind, integers at the edges of the types' ranges,
/// and text that is or is not a number.
const OTHERS: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "7",
    "1.5",
    "7.0",
    "1e3",
    "255",
    "256",
    "65535",
    "65536",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    r#""""#,
    r#""x""#,
    r#""7""#,
    r#"" 12 ""#,
    r#""SUCCESS""#,
    r#""ERROR""#,
    "[1]",
    "{}",
    r#"{"a":1}"#,
];

/// JSON text of `value`, with `edit` applied to the object at `path` (a list of member names
/// and array indexes from the root).
fn text(value: &Value, path: &[Step], edit: &Edit) -> String {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(String, String)> = map
                .iter()
                .map(|(k, v)| {
                    let inner = match path.split_first() {
                        Some((Step::Member(name), rest)) if name == k => text(v, rest, edit),
                        _ => text(v, &[], &Edit::None),
                    };
                    (k.clone(), inner)
                })
                .collect();
            if path.is_empty() {
                edit.apply(&mut members);
            }
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, v)| match path.split_first() {
                    Some((Step::Item(n), rest)) if *n == i => text(v, rest, edit),
                    _ => text(v, &[], &Edit::None),
                })
                .collect();
            format!("[{}]", body.join(","))
        }
        other => other.to_string(),
    }
}

#[derive(Clone)]
enum Step {
    Member(String),
    Item(usize),
}

enum Edit {
    None,
    Remove(String),
    Replace(String, String),
    /// The member named twice: the other value first, or last.
    Twice(String, String, bool),
    Add(String, String),
}

impl Edit {
    fn apply(&self, members: &mut Vec<(String, String)>) {
        match self {
            Edit::None => {}
            Edit::Remove(name) => members.retain(|(k, _)| k != name),
            Edit::Replace(name, other) => {
                for (k, v) in members.iter_mut() {
                    if k == name {
                        *v = other.clone();
                    }
                }
            }
            Edit::Twice(name, other, other_last) => {
                let at = members.iter().position(|(k, _)| k == name).unwrap();
                let extra = (name.clone(), other.clone());
                members.insert(if *other_last { at + 1 } else { at }, extra);
            }
            Edit::Add(name, other) => members.push((name.clone(), other.clone())),
        }
    }
}

/// Every object in `value`, with its path.
fn objects(value: &Value, path: Vec<Step>, out: &mut Vec<(Vec<Step>, Vec<String>)>) {
    match value {
        Value::Object(map) => {
            out.push((path.clone(), map.keys().cloned().collect()));
            for (k, v) in map {
                let mut p = path.clone();
                p.push(Step::Member(k.clone()));
                objects(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = path.clone();
                p.push(Step::Item(i));
                objects(v, p, out);
            }
        }
        _ => {}
    }
}

/// `valid` itself and its broken variants, as JSON texts.
pub(crate) fn variants(valid: &Value) -> Vec<String> {
    let mut found = Vec::new();
    objects(valid, Vec::new(), &mut found);
    let mut out = vec![valid.to_string()];
    for (path, names) in found {
        for name in names {
            out.push(text(valid, &path, &Edit::Remove(name.clone())));
            for other in OTHERS {
                let other = other.to_string();
                out.push(text(
                    valid,
                    &path,
                    &Edit::Replace(name.clone(), other.clone()),
                ));
                for last in [false, true] {
                    out.push(text(
                        valid,
                        &path,
                        &Edit::Twice(name.clone(), other.clone(), last),
                    ));
                }
            }
        }
        for unknown in ["unknownMember", "\u{0}duplicated"] {
            out.push(text(
                valid,
                &path,
                &Edit::Add(unknown.into(), r#"["status","data"]"#.into()),
            ));
        }
    }
    out
}

/// Every variant of `data` in a success envelope (and of the envelope itself), read both ways
/// under several HTTP statuses: the same value or the same error each time.
fn same_as_derived<T: Derived>(data: Value) -> usize {
    let envelope = json!({"status": "SUCCESS", "message": "fine", "data": data});
    let mut bodies = variants(&envelope);
    bodies.extend(
        [
            "",
            " ",
            "null",
            "[]",
            "1",
            r#""SUCCESS""#,
            "not json",
            "{",
            r#"{"status":"SUCCESS"} x"#,
            r#"{"status":"SUCCESS"}{}"#,
            "\u{feff}{}",
            r#"{"status":"ERROR","message":"OR_0037: Invalid total order price"}"#,
            r#"{"status":"ERROR","message":"OR_0037: no","message":"x"}"#,
            r#"{"status":"ERROR","message":7}"#,
            r#"{"status":"ERROR"}"#,
        ]
        .map(String::from),
    );
    for body in &bodies {
        for status in [200, 201, 400, 409, 422] {
            let now = interpret::<T::Now>(status, body.as_bytes());
            let before = derived_interpret::<T>(status, body.as_bytes());
            assert_eq!(now, before, "HTTP {status}: {body}");
        }
    }
    bodies.len()
}

#[test]
fn created_orders_are_read_as_the_derived_type_read_them() {
    let n = same_as_derived::<derived::CreatedOrder>(json!({
        "orderId": "o1", "paymentPageLink": "https://pay/o1", "paymentId": "p1"
    }));
    assert!(n > 400, "{n}");
}

#[test]
fn initiated_payments_are_read_as_the_derived_type_read_them() {
    same_as_derived::<derived::InitiatedPayment>(json!({"paymentId": "p1"}));
}

#[test]
fn order_statuses_are_read_as_the_derived_type_read_them() {
    same_as_derived::<derived::OrderStatus>(json!({
        "orderStatus": "PAYMENT_COMPLETED",
        "payments": [
            {"paymentId": "p1", "paymentStatus": "PAYMENT_COMPLETED", "paymentMethod": "CTOKEN",
             "amount": "29900", "failureReason": "none"},
            {"paymentId": "p2", "paymentStatus": "PAYMENT_FAILED", "amount": 100}
        ]
    }));
    same_as_derived::<derived::OrderStatus>(json!({"orderStatus": "PENDING"}));
}

#[test]
fn tokens_are_read_as_the_derived_type_read_them() {
    same_as_derived::<Option<Vec<derived::Token>>>(json!([{
        "tokenId": "822d544dc48c200308", "cardBrand": "VISA", "cardholderName": "Ada L",
        "expiryMonth": 7, "expiryYear": 2030, "truncatedPan": "1111",
        "createdAt": "2026-04-25T11:22:24.845Z"
    }]));
    same_as_derived::<Option<Vec<derived::Token>>>(json!(null));
}

#[test]
fn cancellations_take_any_data_as_before() {
    same_as_derived::<Value>(json!({"orderId": "o1", "orderStatus": "CANCELLED"}));
}

#[test]
fn webhooks_are_read_as_the_derived_type_read_them() {
    let valid = json!({
        "eventType": "order.paymentcompleted",
        "metadata": {"eventId": "831fc2f040bf405fff", "created": 1745821536443i64, "retryAttempt": 0},
        "data": {"orderId": "o1", "referenceId": "ch_1", "type": "PURCHASE", "amount": "29900",
                 "transactionDetails": [{}]}
    });
    let mut bodies = variants(&valid);
    bodies.extend(
        [
            "",
            "null",
            "{}",
            "not json",
            r#"{"eventType":"x","metadata":{"eventId":"e1"}} x"#,
            r#"{"eventType":"x","metadata":{"eventId":"a b"}}"#,
            r#"{"eventType":"x","metadata":{"eventId":""}}"#,
        ]
        .map(String::from),
    );
    for body in &bodies {
        assert_eq!(
            webhook(body.as_bytes()),
            derived_webhook(body.as_bytes()),
            "{body}"
        );
    }
}

/// The derived structs took an array of their members in order (`["o1"]` for an order); no
/// answer of the provider's has that form, and the readers refuse it: an unknown outcome for an
/// answer, a refused webhook (which the provider sends again).
#[test]
fn arrays_in_place_of_objects_are_refused() {
    let order = br#"{"status":"SUCCESS","data":["o1",null,null]}"#;
    assert!(derived_interpret::<derived::CreatedOrder>(201, order).is_ok());
    assert_eq!(
        interpret::<CreatedOrder>(201, order),
        Err(PspError::Garbage)
    );
    let event = br#"{"eventType":"x","metadata":["e1"],"data":[]}"#;
    assert!(derived_webhook(event).is_some());
    assert!(webhook(event).is_none());
}

/// The derived reader is kept above only as the reference; this is what makes it one.
#[test]
fn the_reference_is_the_derived_reading() {
    let body = br#"{"status":"SUCCESS","data":{"orderId":"a","orderId":"b"}}"#;
    assert_eq!(
        derived_interpret::<derived::CreatedOrder>(201, body)
            .unwrap()
            .order_id,
        "b"
    );
    let twice = br#"{"status":"SUCCESS","status":"SUCCESS","data":{"orderId":"a"}}"#;
    assert!(derived_interpret::<derived::CreatedOrder>(201, twice).is_err());
    assert!(serde_json::from_str::<derived::Metadata>(r#"{"eventId":"e","eventId":"f"}"#).is_err());
}
