//! Payments: CTOKEN charges on MerchantInitiated orders, cancel, void.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::orders::charge_token;
use super::{
    authorize, business, error, malformed, not_found, parse_body, split_path, success, with_faults,
};
use crate::batches::run_due;
use crate::clock::wall_ms;
use crate::faults::Endpoint;
use crate::model::*;
use crate::processing::cancel_in_flight;
use crate::state::Shared;
use crate::{status, webhooks};

pub async fn initiate_payment(
    State(sb): State<Shared>,
    merchant: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = authorize(&sb, &headers, merchant.as_deref().map(String::as_str)) {
        return denied;
    }
    let Some(req) = parse_body(&body) else {
        return malformed();
    };
    let Some(order_id) = req["orderId"].as_str().map(str::to_owned) else {
        return error(StatusCode::BAD_REQUEST, "orderId is required");
    };
    // Both placements of the token are in use: the formal reference's and the guide's.
    let token_id = req["paymentMethodParams"]["tokenId"]
        .as_str()
        .or_else(|| req["tokenId"].as_str())
        .unwrap_or("")
        .to_owned();
    let method = req["paymentMethod"].as_str().unwrap_or("").to_owned();
    with_faults(
        &sb,
        Endpoint::InitiatePayment,
        StatusCode::CREATED,
        |sb, _| {
            let created = StatusCode::CREATED;
            let mut guard = sb.lock();
            let inner = &mut *guard;
            let Some(order) = inner.ledger.orders.get(&order_id) else {
                return business(created, "PS_0021: Order not found");
            };
            // An order the provider created and then lost: its API answers 404 for it.
            if order.lost {
                return not_found("Order");
            }
            if order.terminal != Terminal::MerchantInitiated || order.kind != OrderKind::Purchase {
                return business(created, "PS_0025: Payment initiation failed");
            }
            if method != "CTOKEN" {
                return business(created, "PS_0030: Unsupported payment method");
            }
            if order.cancelled {
                return business(created, "PS_0040: The order is cancelled");
            }
            let ledger = &inner.ledger;
            if ledger
                .payments_of(order)
                .any(|p| p.status == PaymentStatus::PaymentCompleted)
            {
                return business(created, "PS_0041: The order is already paid");
            }
            if ledger.payments_of(order).any(|p| !p.status.is_final()) {
                return business(
                    created,
                    "PS_0042: A payment is already in progress on this order",
                );
            }
            if !inner.ledger.tokens.contains_key(&token_id) {
                return business(created, "PS_0031: Invalid token");
            }
            let amount = order.amount;
            let payment_id = charge_token(sb, inner, &order_id, token_id, amount);
            success(
                created,
                json!({"paymentId": payment_id}),
                "Payment initiated.",
            )
        },
    )
    .await
}

/// Cancels a payment in flight; `data.paymentStatus` says how it ended (`PAYMENT_COMPLETED`:
/// too late, void it instead).
pub async fn cancel_payment(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, payment_id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(&sb, Endpoint::CancelPayment, StatusCode::OK, |sb, _| {
        let mut guard = sb.lock();
        let inner = &mut *guard;
        if !inner.ledger.payments.contains_key(payment_id) {
            return not_found("Payment");
        }
        if cancel_in_flight(sb, inner, payment_id, None) {
            sb.persist(inner);
        }
        let status = inner.ledger.payments[payment_id].status.as_str();
        success(
            StatusCode::OK,
            json!({"paymentId": payment_id, "paymentStatus": status}),
            "Payment cancellation processed.",
        )
    })
    .await
}

/// Voids a completed payment the same day: until its batch cutoff took it (`NOT_SETTLED`),
/// unless it was refunded. Voiding a voided payment again is harmless. A voided payment never
/// settles, so it can no longer be refunded either.
pub async fn void_payment(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, payment_id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(&sb, Endpoint::VoidPayment, StatusCode::OK, |sb, _| {
        let mut guard = sb.lock();
        let inner = &mut *guard;
        // A cutoff that passed a moment ago must be felt even if its batch has not run yet.
        run_due(sb, inner, sb.now());
        let Some(p) = inner.ledger.payments.get(payment_id) else {
            return not_found("Payment");
        };
        let order_id = p.order_id.clone();
        let refunded = inner.ledger.returns_of(&order_id).next().is_some();
        let voidable = p.status == PaymentStatus::PaymentCompleted
            && p.settlement.status == SettlementStatus::NotSettled
            && !refunded;
        let void_status = if p.voided {
            "VOIDED"
        } else if voidable {
            if let Some(p) = inner.ledger.payments.get_mut(payment_id) {
                p.voided = true;
                p.updated_at = sb.now();
            }
            status::record(&mut inner.ledger, &order_id, wall_ms());
            webhooks::emit(sb, inner, &order_id, Some(payment_id), "order.updated");
            sb.persist(inner);
            "VOIDED"
        } else {
            "CANNOT_VOID"
        };
        success(
            StatusCode::OK,
            json!({"paymentId": payment_id, "voidStatus": void_status}),
            "Void processed.",
        )
    })
    .await
}
