//! The control API under `/_sandbox/` (never part of the provider's real API): pay without a
//! browser, script how tokens behave, inject faults, register a console webhook, read the ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::model::*;
use crate::page::{self, PayForm};
use crate::state::{Shared, now_ms};

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// A control request body; `Err` is the message of the 400 answer.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("bad body: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PayRequest {
    card_number: String,
    #[serde(default)]
    expiry_month: Option<u8>,
    #[serde(default)]
    expiry_year: Option<u16>,
    #[serde(default)]
    cardholder_name: Option<String>,
}

/// Completes a hosted payment as if a person paid on the page, and answers once the payment is
/// final (the webhooks still go out asynchronously, as they would).
pub async fn pay(State(sb): State<Shared>, Path(order_id): Path<String>, bytes: Bytes) -> Response {
    let req: PayRequest = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    let form = PayForm {
        card_number: req.card_number,
        expiry: format!(
            "{}/{}",
            req.expiry_month.unwrap_or(12),
            req.expiry_year.unwrap_or(2031)
        ),
        cvc: String::new(),
        name: req.cardholder_name.unwrap_or_default(),
    };
    let payment_id = {
        let mut guard = sb.lock();
        match page::attempt(&sb, &mut guard, &order_id, &form) {
            Ok(a) => a.payment_id,
            Err(Some(message)) => return problem(StatusCode::BAD_REQUEST, &message),
            Err(None) => return problem(StatusCode::GONE, "Invalid or Expired Link"),
        }
    };
    let deadline = now_ms() + sb.config.processing_ms as i64 + 10_000;
    loop {
        {
            let guard = sb.lock();
            let p = &guard.ledger.payments[&payment_id];
            if p.status.is_final() || now_ms() > deadline {
                let tokenized = guard.ledger.tokens.values().any(|t| t.order_id == order_id);
                return Json(json!({
                    "orderId": order_id,
                    "paymentId": payment_id,
                    "paymentStatus": p.status.as_str(),
                    "failureReason": p.failure_reason,
                    "tokenized": tokenized,
                }))
                .into_response();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BehaviourRequest {
    outcome: String,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default, alias = "delayMs")]
    delay_ms: Option<u64>,
}

pub async fn set_behaviour(
    State(sb): State<Shared>,
    Path(token_id): Path<String>,
    bytes: Bytes,
) -> Response {
    let req: BehaviourRequest = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    let outcome = match req.outcome.as_str() {
        "approve" | "slow" => Outcome::Approve,
        "decline" => Outcome::Decline {
            reason: req
                .failure_reason
                .clone()
                .unwrap_or_else(|| "DENIED".into()),
        },
        other => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("unknown outcome {other:?}"),
            );
        }
    };
    let delay_ms = req.delay_ms.or((req.outcome == "slow").then_some(3_000));
    let mut guard = sb.lock();
    if !guard.ledger.tokens.contains_key(&token_id) {
        return problem(StatusCode::NOT_FOUND, "unknown token");
    }
    guard.ledger.behaviours.insert(
        token_id.clone(),
        Behaviour {
            outcome,
            times: req.times.filter(|t| *t > 0),
            delay_ms,
        },
    );
    sb.persist(&guard);
    Json(json!({"tokenId": token_id, "behaviour": guard.ledger.behaviours[&token_id]}))
        .into_response()
}

pub async fn set_faults(State(sb): State<Shared>, bytes: Bytes) -> Response {
    let config: FaultConfig = match body(&bytes) {
        Ok(c) => c,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    let rules = config.rules.len();
    sb.lock().faults.configure(config, sb.config.seed);
    Json(json!({"rules": rules})).into_response()
}

pub async fn clear_faults(State(sb): State<Shared>) -> Response {
    sb.lock().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRegistration {
    url: String,
    #[serde(default = "yes")]
    retries: bool,
    #[serde(default)]
    retry_delays_ms: Option<Vec<u64>>,
}

fn yes() -> bool {
    true
}

pub async fn set_webhooks(State(sb): State<Shared>, bytes: Bytes) -> Response {
    let req: WebhookRegistration = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    if !req.url.starts_with("http://") {
        return problem(
            StatusCode::BAD_REQUEST,
            "the sandbox delivers to http:// URLs",
        );
    }
    let mut guard = sb.lock();
    guard.ledger.webhook_url = Some(req.url.clone());
    guard.ledger.webhook_retry_delays_ms = match (req.retries, req.retry_delays_ms) {
        (false, _) => vec![],
        (true, Some(d)) => d,
        (true, None) => crate::webhooks::DEFAULT_RETRY_DELAYS_MS.to_vec(),
    };
    // An empty list means "no retries" only when asked for; keep one zero delay out of it.
    if !req.retries {
        guard.ledger.webhook_retry_delays_ms = vec![];
    }
    sb.persist(&guard);
    Json(json!({"url": req.url, "retryDelaysMs": guard.ledger.webhook_retry_delays_ms}))
        .into_response()
}

pub async fn clear_webhooks(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    guard.ledger.webhook_url = None;
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

pub async fn reset(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    guard.ledger = Ledger::default();
    guard.faults.clear();
    guard.held.clear();
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerQuery {
    reference_id: Option<String>,
    order_id: Option<String>,
}

/// Every order, payment, return and token, and per-token totals, so a test can prove that
/// nothing was charged twice.
pub async fn ledger(State(sb): State<Shared>, Query(q): Query<LedgerQuery>) -> Response {
    let guard = sb.lock();
    let l = &guard.ledger;
    let keep = |o: &Order| {
        q.reference_id
            .as_deref()
            .is_none_or(|r| o.reference_id.as_deref() == Some(r))
            && q.order_id.as_deref().is_none_or(|id| o.id == id)
    };
    let orders: Vec<&Order> = l.orders.values().filter(|o| keep(o)).collect();
    let order_ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let order_view = |o: &Order| {
        json!({
            "orderId": o.id,
            "referenceId": o.reference_id,
            "terminal": o.terminal,
            "kind": o.kind,
            "status": l.status_of(o)["orderStatus"],
            "amount": o.amount,
            "currency": o.currency,
            "purchaseOrderId": o.purchase_order_id,
            "tokenize": o.tokenize,
            "cancelled": o.cancelled,
            "createdAt": crate::rfc3339(o.created_at),
        })
    };
    let payments: Vec<Value> = l
        .payments
        .values()
        .filter(|p| order_ids.contains(&p.order_id.as_str()))
        .map(|p| {
            json!({
                "paymentId": p.id,
                "orderId": p.order_id,
                "method": p.method,
                "tokenId": p.token_id,
                "amount": p.amount,
                "currency": p.currency,
                "status": p.status.as_str(),
                "failureReason": p.failure_reason,
                "voided": p.voided,
                "createdAt": crate::rfc3339(p.created_at),
            })
        })
        .collect();
    let mut per_token: BTreeMap<&str, Value> = BTreeMap::new();
    for t in l.tokens.values() {
        let charges: Vec<&Payment> = l
            .payments
            .values()
            .filter(|p| p.token_id.as_deref() == Some(&t.id))
            .collect();
        let count = |s: PaymentStatus| charges.iter().filter(|p| p.status == s).count();
        let completed_amount: i64 = charges
            .iter()
            .filter(|p| p.status == PaymentStatus::PaymentCompleted)
            .map(|p| p.amount)
            .sum();
        let charge_orders: Vec<&str> = charges.iter().map(|p| p.order_id.as_str()).collect();
        let refunded_amount: i64 = l
            .orders
            .values()
            .filter(|o| {
                o.purchase_order_id
                    .as_deref()
                    .is_some_and(|p| charge_orders.contains(&p))
            })
            .map(|o| o.amount.abs())
            .sum();
        per_token.insert(
            &t.id,
            json!({
                "attempted": charges.len(),
                "completed": count(PaymentStatus::PaymentCompleted),
                "failed": count(PaymentStatus::PaymentFailed),
                "cancelled": count(PaymentStatus::PaymentCancelled),
                "completed_amount": completed_amount,
                "refunded_amount": refunded_amount,
            }),
        );
    }
    Json(json!({
        "orders": orders.iter().filter(|o| o.kind == OrderKind::Purchase).map(|o| order_view(o)).collect::<Vec<_>>(),
        "returns": orders.iter().filter(|o| o.kind == OrderKind::Return).map(|o| order_view(o)).collect::<Vec<_>>(),
        "payments": payments,
        "tokens": l.tokens.values().map(|t| json!({
            "tokenId": t.id,
            "orderId": t.order_id,
            "brand": t.card.brand,
            "last4": t.card.last4,
            "expiryMonth": t.card.expiry_month,
            "expiryYear": t.card.expiry_year,
            "defaultOutcome": t.default_outcome,
            "behaviour": l.behaviours.get(&t.id),
        })).collect::<Vec<_>>(),
        "payments_per_token": per_token,
    }))
    .into_response()
}
