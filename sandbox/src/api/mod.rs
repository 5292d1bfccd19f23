//! The provider's API, as its public reference describes it: credentials, the response envelope, and fault
//! injection around every call. Business errors answer HTTP 200/201 with `"status": "ERROR"`,
//! no `data`, and the code first in `message`.

pub mod orders;
pub mod payments;
pub mod receipts;

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{Action, Decision, Endpoint};
use crate::state::Shared;

pub fn success(status: StatusCode, data: Value, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "SUCCESS", "data": data, "message": message})),
    )
        .into_response()
}

/// A business error: HTTP 200/201 like the provider, the code first in the message.
pub fn business(status: StatusCode, message: &str) -> Response {
    error(status, message)
}

pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": "ERROR", "message": message}))).into_response()
}

pub fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("{what} not found"))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized access. Please provide valid credentials to access this endpoint.",
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Every provider call needs API-KEY, API-SECRET and MERCHANT-ID (and, on the
/// `/merchants/:merchantId/...` form of the paths, the same merchant in the path).
pub fn authorize(
    sb: &Shared,
    headers: &HeaderMap,
    path_merchant: Option<&str>,
) -> Option<Response> {
    let c = &sb.config;
    let ok = header(headers, "API-KEY") == c.api_key
        && header(headers, "API-SECRET") == c.api_secret
        && header(headers, "MERCHANT-ID") == c.merchant_id
        && path_merchant.is_none_or(|m| m == c.merchant_id);
    (!ok).then(unauthorized)
}

/// `/orders/:id/...` or `/merchants/:merchant/orders/:id/...`: (merchant, id). The same handler
/// serves both path forms.
pub fn split_path(path: &[String]) -> (Option<&str>, &str) {
    match path {
        [merchant, id] => (Some(merchant.as_str()), id.as_str()),
        [id] => (None, id.as_str()),
        _ => (None, ""),
    }
}

/// The JSON object of a request body; `None` answers [`malformed`].
pub fn parse_body(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

pub fn malformed() -> Response {
    error(StatusCode::BAD_REQUEST, "Malformed request body")
}

/// Runs `work` under the faults configured for `endpoint`. `status` is the HTTP status of a
/// business error on this endpoint (201 on creates).
pub async fn with_faults(
    sb: &Shared,
    endpoint: Endpoint,
    status: StatusCode,
    work: impl FnOnce(&Shared, Decision) -> Response,
) -> Response {
    let decision = sb.decide(endpoint);
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    let server_error = || error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    let timeout = || error(StatusCode::GATEWAY_TIMEOUT, "Gateway timeout");
    match decision.action {
        Action::Proceed if decision.answer_latency_ms > 0 => {
            let answer = work(sb, decision);
            tokio::time::sleep(Duration::from_millis(decision.answer_latency_ms)).await;
            answer
        }
        Action::Proceed => work(sb, decision),
        Action::ErrorBefore => server_error(),
        Action::Business => business(status, endpoint.business_error()),
        // The work is done and the caller cannot know it: the case a client must reconcile.
        Action::ErrorAfter => {
            let _ = work(sb, decision);
            server_error()
        }
        Action::TimeoutAfter(ms) => {
            let _ = work(sb, decision);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            timeout()
        }
        Action::TimeoutBefore(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            timeout()
        }
    }
}
