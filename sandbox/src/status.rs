//! The body of `GET /orders/:orderId/status`, and its history so reads can lag on purpose
//! (the provider's demo environment is known to report outcomes late).

use serde_json::{Value, json};

use crate::model::{Ledger, Order, Payment, PaymentStatus, SettlementStatus};

/// How many past states an order keeps; plenty for any lag a test asks for.
const HISTORY: usize = 64;

pub fn order_status_name(ledger: &Ledger, order: &Order) -> &'static str {
    let mut payments = ledger.payments_of(order);
    if payments
        .clone()
        .any(|p| p.status == PaymentStatus::PaymentCompleted)
    {
        return "PAYMENT_COMPLETED";
    }
    if order.cancelled {
        return "PAYMENT_CANCELLED";
    }
    match payments.next_back().map(|p| p.status) {
        None => "PENDING",
        Some(PaymentStatus::PaymentInitiated | PaymentStatus::PaymentProcessing) => {
            "PAYMENT_INITIATED"
        }
        Some(s) => s.as_str(),
    }
}

/// The status body of an order as it is now.
pub fn status_of(ledger: &Ledger, order: &Order) -> Value {
    let payments: Vec<Value> = ledger
        .payments_of(order)
        .map(|p| {
            json!({
                "paymentId": p.id,
                "paymentStatus": p.status.as_str(),
                "paymentMethod": p.method,
                "amount": p.amount,
                "failureReason": p.failure_reason,
            })
        })
        .collect();
    let mut body = json!({
        "orderStatus": order_status_name(ledger, order),
        "payments": payments,
    });
    // paymentIds and transactions appear once (part of) the order completed; transaction
    // amounts are strings, as the provider sends them.
    let done: Vec<_> = ledger
        .payments_of(order)
        .filter(|p| p.status == PaymentStatus::PaymentCompleted)
        .collect();
    if !done.is_empty() {
        body["paymentIds"] = json!(done.iter().map(|p| &p.id).collect::<Vec<_>>());
        body["transactions"] = done.iter().map(|p| transaction(order, p)).collect();
    }
    body
}

/// One completed payment as the provider lists it in `transactions`. Amounts are strings, as
/// the provider sends them; fee, payout and the settlement's reference and date exist once the
/// transaction settled.
fn transaction(order: &Order, p: &Payment) -> Value {
    let settlement = &p.settlement;
    let mut tx = json!({
        "transactionId": p.transaction_id,
        "paymentId": p.id,
        "amount": p.amount.to_string(),
        "currency": p.currency,
        "type": order.kind.as_str(),
        "voided": p.voided,
        "settlementStatus": settlement.status.as_str(),
        "truncatedPan": p.card.as_ref().map(|c| &c.last4),
        "cardBrand": p.card.as_ref().map(|c| &c.brand),
        "customerResponseCode": "00",
    });
    if settlement.status == SettlementStatus::Settled {
        tx["fee"] = json!(settlement.fee.unwrap_or(0).to_string());
        tx["payout"] = json!(settlement.payout.unwrap_or(0).to_string());
        tx["settlementRef"] = json!(settlement.settlement_ref);
        tx["settlementDate"] = json!(settlement.settlement_date);
    }
    tx
}

/// Records the order's status after a change, for lagging reads.
pub fn record(ledger: &mut Ledger, order_id: &str, now: i64) {
    let Some(order) = ledger.orders.get(order_id) else {
        return;
    };
    let body = status_of(ledger, order);
    if let Some(order) = ledger.orders.get_mut(order_id) {
        if order.history.last().map(|(_, b)| b) != Some(&body) {
            order.history.push((now, body));
        }
        if order.history.len() > HISTORY {
            order.history.drain(..order.history.len() - HISTORY);
        }
    }
}

/// The status as it was `lag_ms` ago (the first known state if the order is younger).
pub fn lagging(ledger: &Ledger, order: &Order, now: i64, lag_ms: u64) -> Value {
    if lag_ms == 0 {
        return status_of(ledger, order);
    }
    let cutoff = now.saturating_sub(lag_ms as i64);
    order
        .history
        .iter()
        .rev()
        .find(|(t, _)| *t <= cutoff)
        .or_else(|| order.history.first())
        .map_or_else(|| status_of(ledger, order), |(_, b)| b.clone())
}
