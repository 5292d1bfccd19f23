//! The provider's API (reference/psp-api.md): orders, payments, tokens, status, cancel, void,
//! refunds as return orders. Business errors answer HTTP 200/201 with `"status": "ERROR"`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{Action, Decision, Endpoint};
use crate::model::*;
use crate::state::{Inner, NewPayment, Shared, cancel_in_flight, now_ms, start_payment};
use crate::webhooks;

/// The enabled currencies of the sandbox merchant: SEK, EUR, DKK.
const CURRENCIES: [&str; 3] = ["752", "978", "208"];
/// Per-transaction limits: 3 SEK to 499,999 SEK, in minor units (the same numbers for all).
const MIN_AMOUNT: i64 = 300;
const MAX_AMOUNT: i64 = 49_999_900;

pub fn success(status: StatusCode, data: Value, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "SUCCESS", "data": data, "message": message})),
    )
        .into_response()
}

/// A business error: HTTP 200/201 like the provider, the code first in the message.
pub fn business(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": "ERROR", "message": message}))).into_response()
}

pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": "ERROR", "message": message}))).into_response()
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
fn authorized(sb: &Shared, headers: &HeaderMap, path_merchant: Option<&str>) -> bool {
    let c = &sb.config;
    header(headers, "API-KEY") == c.api_key
        && header(headers, "API-SECRET") == c.api_secret
        && header(headers, "MERCHANT-ID") == c.merchant_id
        && path_merchant.is_none_or(|m| m == c.merchant_id)
}

/// Runs `work` under the faults configured for `endpoint`.
async fn faulty(
    sb: &Shared,
    endpoint: Endpoint,
    created: bool,
    code: &str,
    work: impl FnOnce(&Shared, Decision) -> Response,
) -> Response {
    let decision = sb.decide(endpoint);
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    match decision.action {
        Action::Proceed => work(sb, decision),
        Action::ErrorBefore => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        Action::Business => business(
            status,
            &format!("{code}: The request could not be processed"),
        ),
        Action::ErrorAfter => {
            let _ = work(sb, decision);
            error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
        Action::TimeoutAfter(ms) => {
            let _ = work(sb, decision);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            error(StatusCode::GATEWAY_TIMEOUT, "Gateway timeout")
        }
        Action::TimeoutBefore(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            error(StatusCode::GATEWAY_TIMEOUT, "Gateway timeout")
        }
    }
}

/// The JSON object of a request body; `None` answers 400.
fn parse(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn malformed() -> Response {
    error(StatusCode::BAD_REQUEST, "Malformed request body")
}

// ---- orders ------------------------------------------------------------------------------

pub async fn create_order(
    State(sb): State<Shared>,
    merchant: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&sb, &headers, merchant.as_deref().map(String::as_str)) {
        return unauthorized();
    }
    let Some(req) = parse(&body) else {
        return malformed();
    };
    let is_return = req["orderLines"]
        .as_array()
        .is_some_and(|lines| lines.iter().any(|l| l.get("purchaseOrderId").is_some()));
    let (endpoint, code) = if is_return {
        (Endpoint::Refund, "OR_0006")
    } else {
        (Endpoint::CreateOrder, "OR_0001")
    };
    faulty(&sb, endpoint, true, code, |sb, _| {
        let mut guard = sb.lock();
        let response = create_order_now(sb, &mut guard, &req);
        sb.persist(&guard);
        response
    })
    .await
}

/// Validates amounts the way the provider does and creates the order.
fn create_order_now(sb: &Shared, inner: &mut Inner, req: &Value) -> Response {
    let c = &sb.config;
    let created = StatusCode::CREATED;
    let terminal = match req["terminal$id"].as_str() {
        Some(t) if t == c.page_terminal_id => Terminal::PaymentPage,
        Some(t) if t == c.mit_terminal_id => Terminal::MerchantInitiated,
        _ => return business(created, "OR_0010: Unknown terminal"),
    };
    let Some(lines) = req["orderLines"].as_array().filter(|l| !l.is_empty()) else {
        return business(created, "OR_0011: An order needs order lines");
    };
    let mut total: i64 = 0;
    let mut currency: Option<String> = None;
    let mut purchase_order: Option<String> = None;
    for line in lines {
        let amount = &line["amount"];
        let (Some(line_total), Some(quantity)) =
            (amount["total"].as_i64(), line["quantity"].as_i64())
        else {
            return business(
                created,
                "OR_0012: Every line needs an integer quantity and amount.total",
            );
        };
        let line_currency = amount["currency"].as_str().unwrap_or("");
        if !CURRENCIES.contains(&line_currency) {
            return business(created, "OR_0004: Currency not enabled for the merchant");
        }
        if currency.get_or_insert_with(|| line_currency.to_owned()) != line_currency {
            return business(created, "OR_0004: All lines must have the same currency");
        }
        if let Some(regular) = amount["regular"].as_i64() {
            let shipping = amount["shipping"].as_i64().unwrap_or(0);
            let campaign = amount["campaign"].as_i64().unwrap_or(0);
            if line_total != regular + shipping - campaign {
                return business(
                    created,
                    "OR_0023: Line total does not equal regular + shipping - campaign",
                );
            }
        }
        let Some(line_sum) = line_total.checked_mul(quantity) else {
            return business(created, "OR_0037: Invalid total order price");
        };
        total += line_sum;
        if let Some(p) = line["purchaseOrderId"].as_str() {
            purchase_order = Some(p.to_owned());
        }
    }
    let currency = currency.unwrap_or_default();
    if let Some(declared) = req["totalOrderAmount"]["total"].as_i64() {
        if declared != total {
            return business(created, "OR_0037: Invalid total order price");
        }
        if req["totalOrderAmount"]["currency"]
            .as_str()
            .is_some_and(|c| c != currency)
        {
            return business(created, "OR_0004: Currency not enabled for the merchant");
        }
    }
    let kind = if purchase_order.is_some() {
        OrderKind::Return
    } else {
        OrderKind::Purchase
    };
    if kind == OrderKind::Return {
        if lines
            .iter()
            .any(|l| l["purchaseOrderId"].as_str() != purchase_order.as_deref())
        {
            return business(
                created,
                "OR_0013: Every return line must name the same purchaseOrderId",
            );
        }
        if total >= 0 {
            return business(created, "OR_0014: A return order has negative totals");
        }
        let purchase = purchase_order.clone().unwrap_or_default();
        let Some(paid) = inner.ledger.purchase_completed(&purchase) else {
            return business(created, "OR_0035: The purchase order is not completed");
        };
        if inner.ledger.returned_amount(&purchase) + total.abs() > paid {
            return business(created, "OR_0036: Refunds would exceed the purchase amount");
        }
    } else if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&total) {
        return business(
            created,
            "OR_0038: The amount is outside the transaction limits",
        );
    }

    let control = &req["controlFunctions"];
    let tokenize = control["online"]["enforceTokenization"]
        .as_bool()
        .unwrap_or(false)
        || control["enforceTokenization"].as_bool().unwrap_or(false);
    for url in [
        &control["callBackUrl"],
        &control["online"]["redirectUrl"],
        &control["online"]["failureRedirectUrl"],
    ] {
        if let Some(u) = url.as_str()
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return business(created, "OR_0015: URLs must be http or https");
        }
    }
    let now = now_ms();
    let id = crate::state::new_id();
    let order = Order {
        id: id.clone(),
        reference_id: req["referenceId"].as_str().map(str::to_owned),
        terminal,
        kind,
        amount: total,
        currency: currency.clone(),
        lines: Value::Array(lines.clone()),
        customer: req.get("customer").cloned(),
        tokenize,
        callback_url: control["callBackUrl"].as_str().map(str::to_owned),
        redirect_url: control["online"]["redirectUrl"].as_str().map(str::to_owned),
        failure_redirect_url: control["online"]["failureRedirectUrl"]
            .as_str()
            .map(str::to_owned),
        purchase_order_id: purchase_order,
        cancelled: false,
        link_used: false,
        payments: Vec::new(),
        created_at: now,
        history: Vec::new(),
    };
    inner.ledger.orders.insert(id.clone(), order);
    inner.ledger.snapshot(&id, now);

    let mut data = json!({"orderId": id});
    match (kind, terminal) {
        // A return moves the money back to the card of the purchase by itself.
        (OrderKind::Return, _) => {
            let purchase = inner.ledger.orders[&id]
                .purchase_order_id
                .clone()
                .unwrap_or_default();
            let card = inner.ledger.orders[&purchase]
                .payments
                .iter()
                .filter_map(|p| inner.ledger.payments.get(p))
                .find(|p| p.status == PaymentStatus::PaymentCompleted)
                .and_then(|p| p.card.clone());
            let payment = start_payment(
                sb,
                inner,
                NewPayment {
                    order_id: &id,
                    method: "CARD_NP",
                    token_id: None,
                    card,
                    amount: total.abs(),
                    planned: Outcome::Approve,
                    delay_ms: None,
                },
            );
            data["paymentId"] = json!(payment);
        }
        (OrderKind::Purchase, Terminal::PaymentPage) => {
            data["paymentPageLink"] = json!(format!("{}/pay/{id}", sb.public_url));
        }
        (OrderKind::Purchase, Terminal::MerchantInitiated) => {}
    }
    success(StatusCode::CREATED, data, "Order created")
}

pub async fn order_status(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if !authorized(&sb, &headers, merchant) {
        return unauthorized();
    }
    faulty(
        &sb,
        Endpoint::OrderStatus,
        false,
        "OR_0002",
        |sb, decision| {
            let guard = sb.lock();
            let Some(order) = guard.ledger.orders.get(order_id) else {
                return error(StatusCode::NOT_FOUND, "Order not found");
            };
            let body = guard
                .ledger
                .status_lagging(order, now_ms(), decision.status_lag_ms);
            success(StatusCode::OK, body, "Fetched the order status.")
        },
    )
    .await
}

pub async fn order_tokens(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if !authorized(&sb, &headers, merchant) {
        return unauthorized();
    }
    faulty(&sb, Endpoint::Tokens, false, "OR_0003", |sb, _| {
        let guard = sb.lock();
        if !guard.ledger.orders.contains_key(order_id) {
            return error(StatusCode::NOT_FOUND, "Order not found");
        }
        let tokens: Vec<Value> = guard
            .ledger
            .tokens
            .values()
            .filter(|t| t.order_id == order_id)
            .map(|t| {
                json!({
                    "cardBrand": t.card.brand,
                    "cardholderName": t.card.holder,
                    "tokenId": t.id,
                    "createdAt": crate::rfc3339(t.created_at),
                    "expiryMonth": t.card.expiry_month,
                    "expiryYear": t.card.expiry_year,
                    "truncatedPan": t.card.last4,
                    "cardArt": CARD_ART,
                })
            })
            .collect();
        success(
            StatusCode::OK,
            json!(tokens),
            "Fetched the card information.",
        )
    })
    .await
}

/// A 1×1 transparent PNG, standing in for the provider's card image.
const CARD_ART: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

pub async fn cancel_order(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if !authorized(&sb, &headers, merchant) {
        return unauthorized();
    }
    faulty(&sb, Endpoint::CancelOrder, false, "OR_0005", |sb, _| {
        let mut guard = sb.lock();
        let inner = &mut *guard;
        let Some(order) = inner.ledger.orders.get(order_id) else {
            return error(StatusCode::NOT_FOUND, "Order not found");
        };
        if inner.ledger.purchase_completed(order_id).is_some() {
            return business(
                StatusCode::OK,
                "OR_0040: A completed order cannot be cancelled",
            );
        }
        // Every payment still in flight is cancelled with the order: nothing can complete on a
        // cancelled order, even a payment the caller does not know about.
        for id in order.payments.clone() {
            cancel_in_flight(sb, inner, &id, Some("ORDER_CANCELLED"));
        }
        let now = now_ms();
        if let Some(order) = inner.ledger.orders.get_mut(order_id) {
            order.cancelled = true;
        }
        inner.ledger.snapshot(order_id, now);
        webhooks::emit(sb, inner, order_id, None, "order.cancelled");
        sb.persist(inner);
        success(
            StatusCode::OK,
            json!({"orderId": order_id, "orderStatus": "PAYMENT_CANCELLED"}),
            "Order cancelled",
        )
    })
    .await
}

// ---- payments ----------------------------------------------------------------------------

pub async fn initiate_payment(
    State(sb): State<Shared>,
    merchant: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&sb, &headers, merchant.as_deref().map(String::as_str)) {
        return unauthorized();
    }
    let Some(req) = parse(&body) else {
        return malformed();
    };
    faulty(&sb, Endpoint::InitiatePayment, true, "PS_0001", |sb, _| {
        let mut guard = sb.lock();
        let inner = &mut *guard;
        let created = StatusCode::CREATED;
        let Some(order_id) = req["orderId"].as_str() else {
            return error(StatusCode::BAD_REQUEST, "orderId is required");
        };
        let Some(order) = inner.ledger.orders.get(order_id) else {
            return error(StatusCode::NOT_FOUND, "Order not found");
        };
        if req["paymentMethod"].as_str() != Some("CTOKEN") {
            return business(created, "PS_0030: Unsupported payment method");
        }
        if order.terminal != Terminal::MerchantInitiated || order.kind != OrderKind::Purchase {
            return business(created, "PS_0025: Payment initiation failed");
        }
        if order.cancelled {
            return business(created, "PS_0040: The order is cancelled");
        }
        let payments: Vec<&Payment> = order
            .payments
            .iter()
            .filter_map(|p| inner.ledger.payments.get(p))
            .collect();
        if payments
            .iter()
            .any(|p| p.status == PaymentStatus::PaymentCompleted)
        {
            return business(created, "PS_0041: The order is already paid");
        }
        if payments.iter().any(|p| !p.status.is_final()) {
            return business(
                created,
                "PS_0042: A payment is already in progress on this order",
            );
        }
        // Both placements of the token are in use: the formal reference's and the guide's.
        let token_id = req["paymentMethodParams"]["tokenId"]
            .as_str()
            .or_else(|| req["tokenId"].as_str())
            .unwrap_or("");
        let Some(token) = inner.ledger.tokens.get(token_id) else {
            return business(created, "PS_0031: Invalid token");
        };
        let card = token.card.clone();
        let amount = order.amount;
        let token_id = token.id.clone();
        let (outcome, delay) = inner.ledger.next_outcome(&token_id);
        let payment = start_payment(
            sb,
            inner,
            NewPayment {
                order_id,
                method: "CTOKEN",
                token_id: Some(token_id),
                card: Some(card),
                amount,
                planned: outcome,
                delay_ms: delay,
            },
        );
        success(created, json!({"paymentId": payment}), "Payment initiated")
    })
    .await
}

pub async fn cancel_payment(
    State(sb): State<Shared>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&sb, &headers, None) {
        return unauthorized();
    }
    faulty(&sb, Endpoint::CancelPayment, false, "PS_0005", |sb, _| {
        let mut guard = sb.lock();
        let inner = &mut *guard;
        if !inner.ledger.payments.contains_key(&payment_id) {
            return error(StatusCode::NOT_FOUND, "Payment not found");
        }
        if cancel_in_flight(sb, inner, &payment_id, None) {
            sb.persist(inner);
        }
        let status = inner.ledger.payments[&payment_id].status.as_str();
        success(
            StatusCode::OK,
            json!({"paymentId": payment_id, "paymentStatus": status}),
            "Payment cancellation processed",
        )
    })
    .await
}

pub async fn void_payment(
    State(sb): State<Shared>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&sb, &headers, None) {
        return unauthorized();
    }
    faulty(&sb, Endpoint::VoidPayment, false, "PS_0006", |sb, _| {
        let mut guard = sb.lock();
        let Some(p) = guard.ledger.payments.get_mut(&payment_id) else {
            return error(StatusCode::NOT_FOUND, "Payment not found");
        };
        // Voiding works the same day on a completed, unsettled payment; the sandbox never settles.
        let status = if p.status == PaymentStatus::PaymentCompleted && !p.voided {
            p.voided = true;
            "VOIDED"
        } else {
            "CANNOT_VOID"
        };
        sb.persist(&guard);
        success(
            StatusCode::OK,
            json!({"paymentId": payment_id, "voidStatus": status}),
            "Void processed",
        )
    })
    .await
}

/// `/orders/:id/...` or `/merchants/:merchant/orders/:id/...`: (merchant, order id).
fn split_path(path: &[String]) -> (Option<&str>, &str) {
    match path {
        [merchant, order] => (Some(merchant.as_str()), order.as_str()),
        [order] => (None, order.as_str()),
        _ => (None, ""),
    }
}
