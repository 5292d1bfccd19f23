//! The control API under `/_sandbox/` (never part of the provider's real API, no credentials):
//! pay without a browser, script how tokens behave, inject faults, register a console webhook,
//! move the clock, run the settlement batches, read the ledger, payouts and receipts sent,
//! reset.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::batches::{payout_view, run_due};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::faults::{FaultConfig, Faults};
use crate::hosted_page::{self, PayForm, Refusal};
use crate::ledger;
use crate::model::*;
use crate::processing::wait_final;
use crate::state::Shared;
use crate::webhooks::DEFAULT_RETRY_DELAYS_MS;

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// A control request body; `Err` answers 400.
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

/// Completes a hosted payment as if a person paid on the page (no redirect), and answers once
/// the payment is final so tests are deterministic; the webhooks go out asynchronously as usual.
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
    let started = hosted_page::attempt(&sb, &mut sb.lock(), &order_id, &form);
    let payment_id = match started {
        Ok(a) => a.payment_id,
        Err(Refusal::UnknownOrder) => return problem(StatusCode::NOT_FOUND, "unknown order"),
        Err(Refusal::NotPayable) => {
            return problem(
                StatusCode::CONFLICT,
                "not a PaymentPage purchase: nothing to pay on a page",
            );
        }
        Err(Refusal::Expired) => return problem(StatusCode::GONE, "Invalid or Expired Link"),
        Err(Refusal::Invalid(message)) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    wait_final(&sb, &payment_id, hosted_page::settle_wait(&sb)).await;
    let guard = sb.lock();
    // Gone only if a reset came in meanwhile.
    let Some(p) = guard.ledger.payments.get(&payment_id) else {
        return problem(StatusCode::GONE, "the sandbox was reset");
    };
    Json(json!({
        "orderId": order_id,
        "paymentId": payment_id,
        "paymentStatus": p.status.as_str(),
        "failureReason": p.failure_reason,
        "tokenized": guard.ledger.tokens.values().any(|t| t.order_id == order_id),
    }))
    .into_response()
}

/// The provider forgets an order: from now on its API answers 404 for it (status, tokens,
/// cancel, `POST /payments`, refunds of it, the payment page). The ledger keeps it, marked
/// `lost`, with whatever moved on it; a payment in flight on it settles as usual.
pub async fn lose_order(State(sb): State<Shared>, Path(order_id): Path<String>) -> Response {
    let mut guard = sb.lock();
    let Some(order) = guard.ledger.orders.get_mut(&order_id) else {
        return problem(StatusCode::NOT_FOUND, "unknown order");
    };
    order.lost = true;
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BehaviourRequest {
    outcome: String,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default, alias = "delay_ms")]
    delay_ms: Option<u64>,
}

/// How long an `"outcome": "slow"` charge takes when no `delay_ms` is given.
const SLOW_MS: u64 = 3_000;

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
            reason: req.failure_reason.unwrap_or_else(|| "DENIED".into()),
        },
        other => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("unknown outcome {other:?}: approve, decline or slow"),
            );
        }
    };
    if req.times == Some(0) {
        return problem(StatusCode::BAD_REQUEST, "times must be at least 1");
    }
    let delay_ms = req.delay_ms.or((req.outcome == "slow").then_some(SLOW_MS));
    let mut guard = sb.lock();
    if !guard.ledger.tokens.contains_key(&token_id) {
        return problem(StatusCode::NOT_FOUND, "unknown token");
    }
    guard.ledger.set_behaviour(
        &token_id,
        Behaviour {
            outcome,
            times: req.times,
            delay_ms,
        },
    );
    sb.persist(&guard);
    Json(json!({"behaviours": guard.ledger.token_behaviours[&token_id]})).into_response()
}

/// Forgets every behaviour of a token: its card decides again.
pub async fn clear_behaviour(State(sb): State<Shared>, Path(token_id): Path<String>) -> Response {
    let mut guard = sb.lock();
    if !guard.ledger.tokens.contains_key(&token_id) {
        return problem(StatusCode::NOT_FOUND, "unknown token");
    }
    guard.ledger.token_behaviours.remove(&token_id);
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

pub async fn set_faults(State(sb): State<Shared>, bytes: Bytes) -> Response {
    let config: FaultConfig = match body(&bytes) {
        Ok(c) => c,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    if let Err(message) = Faults::validate(&config) {
        return problem(StatusCode::BAD_REQUEST, &message);
    }
    let mut guard = sb.lock();
    guard.faults.configure(config, sb.config.seed);
    Json(guard.faults.current()).into_response()
}

pub async fn get_faults(State(sb): State<Shared>) -> Response {
    Json(sb.lock().faults.current()).into_response()
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
    #[serde(default, alias = "retryDelaysMs")]
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
            "the sandbox delivers to http:// URLs only",
        );
    }
    let delays = match (req.retries, req.retry_delays_ms) {
        (false, _) => Vec::new(),
        (true, Some(delays)) => delays,
        (true, None) => DEFAULT_RETRY_DELAYS_MS.to_vec(),
    };
    let mut guard = sb.lock();
    guard.ledger.webhook_url = Some(req.url.clone());
    guard.ledger.webhook_retry_delays_ms = delays;
    sb.persist(&guard);
    Json(json!({"url": req.url, "retry_delays_ms": guard.ledger.webhook_retry_delays_ms}))
        .into_response()
}

pub async fn get_webhooks(State(sb): State<Shared>) -> Response {
    let guard = sb.lock();
    Json(json!({
        "url": guard.ledger.webhook_url,
        "retry_delays_ms": guard.ledger.webhook_retry_delays_ms,
        // First attempts still waiting on their URL's queue: a harness can wait for them.
        "queued": sb.webhooks_queued.load(std::sync::atomic::Ordering::SeqCst),
    }))
    .into_response()
}

pub async fn clear_webhooks(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    guard.ledger.webhook_url = None;
    guard.ledger.webhook_retry_delays_ms.clear();
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

/// Empties everything: orders, payments, tokens, behaviours, faults, the webhook registration,
/// payouts and receipts sent; the clock goes back to where `--clock` (or real time) starts it.
/// Payments in flight stop where they are (their tasks find nothing left to move).
pub async fn reset(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    let offset = sb.start_offset();
    sb.clock.reset_to(offset);
    guard.ledger = Ledger {
        clock_offset_ms: Some(offset),
        ..Ledger::default()
    };
    guard.faults.clear();
    guard.held.clear();
    guard.settlement_due = None;
    sb.persist(&guard);
    StatusCode::NO_CONTENT.into_response()
}

pub async fn get_clock(State(sb): State<Shared>) -> Response {
    Json(json!({"now": rfc3339(sb.now())})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    now: String,
}

/// Moves the clock forward to `now` (it keeps running from there), then runs every settlement
/// step that became due: `{"now", "settlement": {"processed", "settled", "errors", "payouts"}}`.
/// A move back answers 409: instants already recorded must stay in the past.
pub async fn set_clock(State(sb): State<Shared>, bytes: Bytes) -> Response {
    let req: ClockRequest = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return problem(StatusCode::BAD_REQUEST, &message),
    };
    let Some(target) = parse_rfc3339(&req.now) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "now must be an RFC 3339 instant, like 2026-03-02T10:00:00Z",
        );
    };
    let mut guard = sb.lock();
    let offset = match sb.clock.move_to(target) {
        Ok(offset) => offset,
        Err(backwards) => {
            return problem(
                StatusCode::CONFLICT,
                &format!(
                    "the clock only moves forward: it is {} already",
                    rfc3339(backwards.now)
                ),
            );
        }
    };
    guard.ledger.clock_offset_ms = Some(offset);
    let run = run_due(&sb, &mut guard, target);
    sb.persist(&guard);
    Json(json!({"now": rfc3339(target), "settlement": run.view(&guard.ledger)})).into_response()
}

/// Applies every settlement step due now, at once (a task does it about once a second).
pub async fn run_settlements(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    let run = run_due(&sb, &mut guard, sb.now());
    Json(run.view(&guard.ledger)).into_response()
}

pub async fn payouts(State(sb): State<Shared>) -> Response {
    let mut guard = sb.lock();
    run_due(&sb, &mut guard, sb.now());
    let all: Vec<_> = guard.ledger.payouts.iter().map(payout_view).collect();
    Json(all).into_response()
}

/// Every receipt email the sandbox would have sent, oldest first.
pub async fn receipt_emails(State(sb): State<Shared>) -> Response {
    let guard = sb.lock();
    let emails: Vec<_> = guard
        .ledger
        .receipt_emails
        .iter()
        .map(|e| {
            json!({
                "to": e.to,
                "receiptURL": e.receipt_url,
                "orderId": e.order_id,
                "paymentId": e.payment_id,
                "transactionId": e.transaction_id,
                "sentAt": rfc3339(e.sent_at),
            })
        })
        .collect();
    Json(emails).into_response()
}

pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn ledger(State(sb): State<Shared>, Query(filter): Query<ledger::Filter>) -> Response {
    let mut guard = sb.lock();
    run_due(&sb, &mut guard, sb.now());
    Json(ledger::report(&guard.ledger, &filter, &guard.steps_pending)).into_response()
}
