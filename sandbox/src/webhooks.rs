//! Webhooks: one signed event per payment and order transition, sent to the order's
//! `callBackUrl` (once, never retried, as the provider does) and to the console registration
//! (retried with backoff). Delivery never blocks the API call that caused it.
//!
//! Each URL has one queue, so first attempts reach a receiver in the order things happened;
//! only the `reorder` fault (or a retry) changes that, as on the real provider.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha512;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::clock::wall_ms;
use crate::model::PaymentStatus;
use crate::state::{Inner, Shared, new_id};

/// Console webhooks are retried after about 5 s, then up to 3 more times (1, 5, 10 minutes).
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 4] = [5_000, 60_000, 300_000, 600_000];
/// How long a held-back event (`reorder` fault) waits for a later one before it goes anyway.
pub const REORDER_HOLD: Duration = Duration::from_secs(1);
/// One delivery attempt gives up after this long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Event {
    pub order_id: String,
    pub callback_url: Option<String>,
    pub body: Value,
}

/// One event on its way to one URL.
#[derive(Debug)]
pub struct Delivery {
    body: Value,
    retry_delays_ms: Vec<u64>,
    latency_ms: u64,
}

/// `x-webhook-signature`: standard base64 (padded) of HMAC-SHA512(secret, raw body).
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
    let Some(event) = build(sb, inner, order_id, payment_id, event_type) else {
        return;
    };
    let faults = inner.faults.decide_webhook();
    if faults.drop {
        return;
    }
    let mut batch = vec![event.clone()];
    if faults.duplicate {
        // The same event twice, same eventId: receivers must deduplicate.
        batch.push(event.clone());
    }
    if faults.reorder {
        match inner.held.remove(order_id) {
            // This one goes first, then the one held back before it.
            Some(held) => batch.push(held),
            None => {
                inner.held.insert(order_id.to_owned(), event);
                // Never hold an event forever: it goes anyway if no later event comes.
                let (sb, order_id) = (sb.clone(), order_id.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(REORDER_HOLD).await;
                    let mut guard = sb.lock();
                    if let Some(held) = guard.held.remove(&order_id) {
                        dispatch(&sb, &mut guard, held, 0);
                    }
                });
                return;
            }
        }
    } else if let Some(held) = inner.held.remove(order_id) {
        batch.push(held);
    }
    for event in batch {
        dispatch(sb, inner, event, faults.latency_ms);
    }
}

fn build(
    sb: &Shared,
    inner: &Inner,
    order_id: &str,
    payment_id: Option<&str>,
    event_type: &str,
) -> Option<Event> {
    let order = inner.ledger.orders.get(order_id)?;
    let payment = payment_id.and_then(|id| inner.ledger.payments.get(id));
    // Real time, not the sandbox clock: a receiver judges an event's age by its own clock.
    let created = wall_ms();
    let kind = order.kind.as_str();
    let amount = payment.map_or(order.amount.abs(), |p| p.amount);
    // The provider sends `amount` as a string in some events and a number in others; so do we,
    // so receivers learn to accept both.
    let amount = match event_type {
        "order.paymentcompleted" | "order.paymentfailed" => json!(amount.to_string()),
        _ => json!(amount),
    };
    let details: Vec<Value> = payment
        .map(|p| {
            vec![json!({
                "transactionId": p.transaction_id,
                "paymentId": p.id,
                "amount": p.amount.to_string(),
                "currency": p.currency,
                "type": kind,
                "cardBrand": p.card.as_ref().map(|c| &c.brand),
                "truncatedPan": p.card.as_ref().map(|c| &c.last4),
                "failureReason": p.failure_reason,
            })]
        })
        .unwrap_or_default();
    let mut data = json!({
        "orderId": order.id,
        "referenceId": order.reference_id,
        "merchantId": sb.config.merchant_id,
        "paymentId": payment.map(|p| &p.id),
        "paymentStatus": payment.map(|p| p.status.as_str()),
        "paymentMethod": payment.map(|p| &p.method),
        "truncatedPan": payment.and_then(|p| p.card.as_ref().map(|c| &c.last4)),
        "amount": amount,
        "currency": order.currency,
        "type": kind,
    });
    if payment.is_some_and(|p| p.status == PaymentStatus::PaymentFailed) {
        data["failureReason"] = json!(payment.and_then(|p| p.failure_reason.clone()));
        data["failedTransactionDetails"] = json!(details);
    } else {
        data["transactionDetails"] = json!(details);
    }
    Some(Event {
        order_id: order.id.clone(),
        callback_url: order.callback_url.clone(),
        body: json!({
            "eventType": event_type,
            "metadata": {
                "eventId": new_id(),
                "created": created,
                "retryAttempt": 0,
                "originalCreated": created,
                "webhookEventId": new_id(),
            },
            "data": data,
        }),
    })
}

/// Queues an event for the order's callback (no retries) and the console registration.
fn dispatch(sb: &Shared, inner: &mut Inner, event: Event, latency_ms: u64) {
    let console = inner.ledger.webhook_url.clone();
    let retries = inner.ledger.webhook_retry_delays_ms.clone();
    let targets = [(event.callback_url.clone(), Vec::new()), (console, retries)];
    for (url, retry_delays_ms) in targets {
        let Some(url) = url else { continue };
        let delivery = Delivery {
            body: event.body.clone(),
            retry_delays_ms,
            latency_ms,
        };
        sb.webhooks_queued.fetch_add(1, Ordering::SeqCst);
        let queue = inner
            .queues
            .entry(url.clone())
            .or_insert_with(|| start_queue(sb, url.clone()));
        if let Err(mpsc::error::SendError(delivery)) = queue.send(delivery) {
            // The queue's task is gone (its runtime ended): start another.
            let queue = start_queue(sb, url.clone());
            let _ = queue.send(delivery);
            inner.queues.insert(url, queue);
        }
    }
}

/// One URL's queue: first attempts start in the order things happened, at most
/// `--webhook-concurrency` in flight (one by default: each waits for the one before it).
fn start_queue(sb: &Shared, url: String) -> mpsc::UnboundedSender<Delivery> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let secret = sb.config.webhook_secret.clone();
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(sb.config.webhook_concurrency));
    let sb = sb.clone();
    tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let (sb, secret, url) = (sb.clone(), secret.clone(), url.clone());
            tokio::spawn(async move {
                if d.latency_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(d.latency_ms)).await;
                }
                let delivered = attempt(&secret, &url, &d.body).await;
                sb.webhooks_queued.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                if !delivered && !d.retry_delays_ms.is_empty() {
                    // Retries wait on their own, so one failing event does not hold up the
                    // others.
                    retry(secret, url, d.body, d.retry_delays_ms).await;
                }
            });
        }
    });
    tx
}

async fn retry(secret: String, url: String, mut body: Value, delays_ms: Vec<u64>) {
    for (n, delay) in delays_ms.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        body["metadata"]["retryAttempt"] = json!(n + 1);
        body["metadata"]["created"] = json!(wall_ms());
        if attempt(&secret, &url, &body).await {
            return;
        }
    }
}

/// One signed POST; true on a 2xx answer.
async fn attempt(secret: &str, url: &str, body: &Value) -> bool {
    let raw = body.to_string();
    let signature = sign(secret, raw.as_bytes());
    let result = post(url, &raw, &signature).await;
    // Never the body: it names orders and payments, and the log is for humans.
    eprintln!(
        "webhook {} attempt {} -> {}",
        body["eventType"].as_str().unwrap_or(""),
        body["metadata"]["retryAttempt"],
        result.as_ref().map_or_else(String::clone, u16::to_string)
    );
    result.is_ok_and(|s| (200..300).contains(&s))
}

/// A minimal HTTP/1.1 POST over plain TCP: the sandbox is a local tool and its webhook targets
/// are http. Answers the status code of the response.
pub async fn post(url: &str, body: &str, signature: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// webhook URLs are supported")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    // A port is needed to connect; "host" alone means port 80 ("[::1]" is an IPv6 host).
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.ends_with(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = TcpStream::connect(&address)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             User-Agent: psp-sandbox\r\nx-webhook-signature: {signature}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Only the status line matters; read until it is complete.
        let mut head = Vec::with_capacity(128);
        let mut chunk = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status line".to_owned())
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
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

    #[tokio::test]
    async fn post_reports_connection_errors_and_refuses_https() {
        assert!(post("https://example.invalid/x", "{}", "s").await.is_err());
        // Port 1 on loopback: nothing listens there.
        assert!(post("http://127.0.0.1:1/x", "{}", "s").await.is_err());
    }
}
