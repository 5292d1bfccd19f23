//! Webhooks: one signed event per payment and order transition, sent to the order's
//! `callBackUrl` (once, never retried, as the provider does) and to the console registration
//! (retried with backoff). Delivery never blocks the API call that caused it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha512;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::{OrderKind, PaymentStatus};
use crate::state::{Inner, Shared, new_id, now_ms};

/// The default retry schedule of console webhooks: about 5 s, then 5 and 10 minutes.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 3] = [5_000, 300_000, 600_000];

#[derive(Debug, Clone)]
pub struct Event {
    pub order_id: String,
    pub callback_url: Option<String>,
    pub body: Value,
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Builds the event for the order's current state and sends it, subject to webhook faults.
pub fn emit(
    sb: &Shared,
    inner: &mut Inner,
    order_id: &str,
    payment_id: Option<&str>,
    event_type: &str,
) {
    let Some(order) = inner.ledger.orders.get(order_id) else {
        return;
    };
    let payment = payment_id.and_then(|id| inner.ledger.payments.get(id));
    let created = now_ms();
    let event_id = new_id();
    let kind = match order.kind {
        OrderKind::Purchase => "PURCHASE",
        OrderKind::Return => "RETURN",
    };
    // The provider sends amounts as strings in some events and numbers in others.
    let amount = payment.map_or(order.amount.abs(), |p| p.amount);
    let amount: Value = if event_type == "order.paymentcompleted" {
        json!(amount.to_string())
    } else {
        json!(amount)
    };
    let details: Vec<Value> = payment
        .map(|p| {
            vec![json!({
                "transactionId": format!("t{}", &p.id[1..]),
                "amount": p.amount.to_string(),
                "currency": p.currency,
                "type": kind,
                "cardBrand": p.card.as_ref().map(|c| c.brand.clone()),
                "truncatedPan": p.card.as_ref().map(|c| c.last4.clone()),
            })]
        })
        .unwrap_or_default();
    let mut data = json!({
        "orderId": order.id,
        "referenceId": order.reference_id,
        "merchantId": sb.config.merchant_id,
        "paymentId": payment.map(|p| p.id.clone()),
        "paymentStatus": payment.map(|p| p.status.as_str()),
        "paymentMethod": payment.map(|p| p.method.clone()),
        "truncatedPan": payment.and_then(|p| p.card.as_ref().map(|c| c.last4.clone())),
        "amount": amount,
        "type": kind,
    });
    if payment.is_some_and(|p| p.status == PaymentStatus::PaymentFailed) {
        data["failedTransactionDetails"] = json!(details);
        data["failureReason"] = json!(payment.and_then(|p| p.failure_reason.clone()));
    } else {
        data["transactionDetails"] = json!(details);
    }
    let event = Event {
        order_id: order.id.clone(),
        callback_url: order.callback_url.clone(),
        body: json!({
            "eventType": event_type,
            "metadata": {
                "eventId": event_id,
                "created": created,
                "retryAttempt": 0,
                "originalCreated": created,
                "webhookEventId": new_id(),
            },
            "data": data,
        }),
    };

    let faults = inner.faults.decide_webhook();
    if faults.drop {
        return;
    }
    let mut batch = vec![event.clone()];
    if faults.duplicate {
        batch.push(event.clone());
    }
    if faults.reorder {
        match inner.held.remove(order_id) {
            // Send this one first, then the one held back before it.
            Some(held) => batch.push(held),
            None => {
                inner.held.insert(order_id.to_owned(), event);
                // Never hold an event forever: flush it if no later event comes.
                let (sb2, order) = (sb.clone(), order_id.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1_000)).await;
                    let held = sb2.lock().held.remove(&order);
                    if let Some(held) = held {
                        deliver(&sb2, held, 0);
                    }
                });
                return;
            }
        }
    }
    let console = inner.ledger.webhook_url.clone();
    let delays = if inner.ledger.webhook_retry_delays_ms.is_empty() {
        DEFAULT_RETRY_DELAYS_MS.to_vec()
    } else {
        inner.ledger.webhook_retry_delays_ms.clone()
    };
    for (i, e) in batch.into_iter().enumerate() {
        let latency = faults.latency_ms + i as u64 * 20;
        deliver_to(sb, e.clone(), e.callback_url.clone(), Vec::new(), latency);
        if let Some(url) = &console {
            deliver_to(sb, e, Some(url.clone()), delays.clone(), latency);
        }
    }
}

fn deliver(sb: &Shared, event: Event, latency_ms: u64) {
    let console = sb.lock().ledger.webhook_url.clone();
    deliver_to(
        sb,
        event.clone(),
        event.callback_url.clone(),
        Vec::new(),
        latency_ms,
    );
    if let Some(url) = console {
        deliver_to(
            sb,
            event,
            Some(url),
            DEFAULT_RETRY_DELAYS_MS.to_vec(),
            latency_ms,
        );
    }
}

fn deliver_to(
    sb: &Shared,
    event: Event,
    url: Option<String>,
    retry_delays: Vec<u64>,
    latency_ms: u64,
) {
    let Some(url) = url else { return };
    let secret = sb.config.webhook_secret.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        let mut body = event.body;
        for attempt in 0..=retry_delays.len() {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(retry_delays[attempt - 1])).await;
                body["metadata"]["retryAttempt"] = json!(attempt);
                body["metadata"]["created"] = json!(now_ms());
            }
            let raw = body.to_string();
            let signature = sign(&secret, raw.as_bytes());
            let status = post(&url, &raw, &signature).await;
            eprintln!(
                "webhook {} {} -> {}",
                body["eventType"].as_str().unwrap_or(""),
                url,
                status
                    .as_ref()
                    .map_or_else(|e| e.clone(), |s| s.to_string())
            );
            if status.is_ok_and(|s| (200..300).contains(&s)) {
                return;
            }
        }
    });
}

/// A minimal HTTP/1.1 POST over plain TCP: webhook targets of a local sandbox are http.
pub async fn post(url: &str, body: &str, signature: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// webhook URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let exchange = async {
        let mut stream = TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             x-webhook-signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_sha512_of_the_raw_body() {
        // RFC 4231 test case 2.
        let expected = "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw==";
        assert_eq!(sign("Jefe", b"what do ya want for nothing?"), expected);
    }
}
