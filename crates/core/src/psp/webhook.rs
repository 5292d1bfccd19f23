//! The provider's webhook body, as far as routing needs it. The body is a hint: what it says
//! about money is always confirmed by reading the order status.

use serde_json::Value;

use crate::json_read::{self, FromJson, Object};

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub event_type: String,
    pub metadata: Metadata,
    pub data: Option<EventData>,
}

impl FromJson for WebhookEvent {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = WebhookEvent {
            event_type: o.text("eventType"),
            metadata: o.required_as("metadata").unwrap_or_default(),
            data: o.optional("data"),
        };
        o.finish(read)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub event_id: String,
    /// Epoch milliseconds.
    pub created: Option<i64>,
}

impl FromJson for Metadata {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = Metadata {
            event_id: o.text("eventId"),
            created: o.optional_integer("created"),
        };
        o.finish(read)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    pub order_id: Option<String>,
    pub reference_id: Option<String>,
    pub kind: Option<String>,
}

impl FromJson for EventData {
    fn from_json(value: &Value) -> Option<Self> {
        let o = Object::new(value)?;
        let read = EventData {
            order_id: o.optional_text("orderId"),
            reference_id: o.optional_text("referenceId"),
            kind: o.optional_text("type"),
        };
        o.finish(read)
    }
}

/// Whether an event of this type announces a final outcome.
pub fn announces_outcome(event_type: &str) -> bool {
    matches!(
        event_type,
        "order.paymentcompleted"
            | "order.paymentfailed"
            | "order.paymentcancelled"
            | "order.cancelled"
    )
}

impl WebhookEvent {
    pub fn parse(body: &[u8]) -> Option<WebhookEvent> {
        let event = WebhookEvent::from_json(&json_read::parse(body)?)?;
        let id = &event.metadata.event_id;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        id_ok.then_some(event)
    }

    pub fn order_id(&self) -> Option<&str> {
        self.data.as_ref()?.order_id.as_deref()
    }

    pub fn reference_id(&self) -> Option<&str> {
        self.data.as_ref()?.reference_id.as_deref()
    }

    /// Events that announce a final outcome: worth confirming by the order's status.
    pub fn announces_outcome(&self) -> bool {
        announces_outcome(&self.event_type)
    }

    pub fn is_stale(&self, now_ms: i64, max_age_ms: i64) -> bool {
        self.metadata
            .created
            .is_some_and(|created| now_ms - created > max_age_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETED: &str = r#"{"eventType": "order.paymentcompleted",
      "metadata": {"eventId": "831fc2f040bf405fff", "created": 1745821536443, "retryAttempt": 0,
                   "originalCreated": 1745821536443, "webhookEventId": "831fc2f02a031015ff"},
      "data": {"orderId": "o1", "referenceId": "ch_1", "merchantId": "m", "paymentId": "p1",
               "paymentStatus": "PAYMENT_COMPLETED", "paymentMethod": "CARD", "truncatedPan": "1111",
               "amount": "29900", "type": "PURCHASE", "transactionDetails": [{}]}}"#;

    #[test]
    fn parses_the_contract_example() {
        let e = WebhookEvent::parse(COMPLETED.as_bytes()).unwrap();
        assert_eq!(e.metadata.event_id, "831fc2f040bf405fff");
        assert_eq!(e.order_id(), Some("o1"));
        assert_eq!(e.reference_id(), Some("ch_1"));
        assert!(e.announces_outcome());
        assert!(e.is_stale(1745821536443 + 25 * 3_600_000, 24 * 3_600_000));
        assert!(!e.is_stale(1745821536443 + 1_000, 24 * 3_600_000));
    }

    #[test]
    fn refuses_bodies_without_a_usable_event_id() {
        assert!(WebhookEvent::parse(b"{}").is_none());
        assert!(WebhookEvent::parse(br#"{"eventType":"x","metadata":{"eventId":""}}"#).is_none());
        assert!(
            WebhookEvent::parse(br#"{"eventType":"x","metadata":{"eventId":"a b"}}"#).is_none()
        );
        assert!(WebhookEvent::parse(b"not json").is_none());
        let minimal =
            WebhookEvent::parse(br#"{"eventType":"test.webhook","metadata":{"eventId":"e1"}}"#)
                .unwrap();
        assert_eq!(minimal.order_id(), None);
        assert!(!minimal.announces_outcome());
    }
}
