//! An event as the merchant receives it (delivered, or read from the feed): the resource in
//! `data` exactly as the API shows it, and on `GET /v1/events/:id` how its delivery went.

use serde::Serialize;

use recurring_core::billing::time::format_rfc3339;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView<'a, T: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    created_at: String,
    data: T,
    /// `subscription.updated`: the members of `data` that changed, as they were before.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_attributes: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a DeliveryView>,
}

pub fn event<'a, T: Serialize>(
    id: &'a str,
    kind: &'a str,
    created_at: i64,
    data: T,
    previous_attributes: Option<serde_json::Value>,
    delivery: Option<&'a DeliveryView>,
) -> EventView<'a, T> {
    EventView {
        id,
        kind,
        created_at: format_rfc3339(created_at),
        data,
        previous_attributes,
        delivery,
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    /// `pending` (on its way), `delivered`, `failed`, or `none` (no webhook URL was set).
    pub status: &'static str,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub attempt: u32,
    pub at: String,
    pub latency_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The delivery states as the merchant sees them: pending and queued are one state to them.
pub fn delivery_status(stored: &str) -> &'static str {
    match stored {
        "delivered" => "delivered",
        "failed" => "failed",
        "none" => "none",
        _ => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn an_event_wraps_its_resource_and_shows_delivery_only_when_asked() {
        let plain = serde_json::to_value(event(
            "evt_1",
            "charge.succeeded",
            0,
            json!({"id": "ch_1"}),
            None,
            None,
        ))
        .unwrap();
        assert_eq!(
            plain,
            json!({"id": "evt_1", "type": "charge.succeeded",
                   "createdAt": "1970-01-01T00:00:00.000Z", "data": {"id": "ch_1"}})
        );
        let delivery = DeliveryView {
            status: delivery_status("queued"),
            attempts: vec![AttemptView {
                attempt: 1,
                at: "1970-01-01T00:00:01.000Z".into(),
                latency_ms: 12,
                status_code: Some(500),
                error: Some("http_500".into()),
            }],
        };
        let shown: Value = serde_json::to_value(event(
            "evt_1",
            "charge.succeeded",
            0,
            1,
            None,
            Some(&delivery),
        ))
        .unwrap();
        assert_eq!(shown["delivery"]["status"], "pending");
        assert_eq!(
            shown["delivery"]["attempts"][0],
            json!({"attempt": 1, "at": "1970-01-01T00:00:01.000Z", "latencyMs": 12,
                   "statusCode": 500, "error": "http_500"})
        );
    }
}
