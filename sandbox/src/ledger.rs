//! `GET /_sandbox/ledger`: everything the sandbox did, so a test can prove that nothing was
//! charged twice and that the merchant's books agree with the provider's.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::batches::payout_view;
use crate::model::*;
use crate::status::order_status_name;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub reference_id: Option<String>,
    pub order_id: Option<String>,
}

impl Filter {
    /// An order is shown if it matches, or if it is a return of a purchase that matches.
    fn keeps(&self, ledger: &Ledger, order: &Order) -> bool {
        let matches = |o: &Order| {
            self.reference_id
                .as_deref()
                .is_none_or(|r| o.reference_id.as_deref() == Some(r))
                && self.order_id.as_deref().is_none_or(|id| o.id == id)
        };
        matches(order)
            || order
                .purchase_order_id
                .as_ref()
                .and_then(|p| ledger.orders.get(p))
                .is_some_and(matches)
    }
}

/// `steps_pending`: the payments whose processing task is still alive (see
/// [`crate::state::Inner::steps_pending`]).
pub fn report(l: &Ledger, filter: &Filter, steps_pending: &HashSet<String>) -> Value {
    let orders: Vec<&Order> = l.orders.values().filter(|o| filter.keeps(l, o)).collect();
    let order_view = |o: &Order| {
        json!({
            "orderId": o.id,
            "referenceId": o.reference_id,
            "terminal": o.terminal,
            "kind": o.kind,
            "status": order_status_name(l, o),
            "amount": o.amount,
            "currency": o.currency,
            "purchaseOrderId": o.purchase_order_id,
            "tokenize": o.tokenize,
            "cancelled": o.cancelled,
            "lost": o.lost,
            "linkUsed": o.link_used,
            "callBackUrl": o.callback_url,
            "paymentIds": o.payments,
            "createdAt": crate::rfc3339(o.created_at),
        })
    };
    let payments: Vec<Value> = orders
        .iter()
        .flat_map(|o| l.payments_of(o))
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
                "cardBrand": p.card.as_ref().map(|c| &c.brand),
                "truncatedPan": p.card.as_ref().map(|c| &c.last4),
                "createdAt": crate::rfc3339(p.created_at),
                "completedAt": p.completed().map(crate::rfc3339),
                "stepsPending": steps_pending.contains(&p.id),
                "transactionId": p.transaction_id,
                "settlement": settlement_view(p),
            })
        })
        .collect();
    // The payouts holding a transaction of the orders shown (every payout when unfiltered).
    let shown_payments: HashSet<&str> = orders
        .iter()
        .flat_map(|o| o.payments.iter().map(String::as_str))
        .collect();
    let payouts: Vec<Value> = l
        .payouts
        .iter()
        .filter(|p| {
            p.transactions
                .iter()
                .any(|t| shown_payments.contains(&t.payment_id.as_str()))
        })
        .map(payout_view)
        .collect();
    let shown: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let tokens: Vec<&Token> = l
        .tokens
        .values()
        .filter(|t| {
            (filter.order_id.is_none() && filter.reference_id.is_none())
                || shown.contains(&t.order_id.as_str())
                || l.payments.values().any(|p| {
                    p.token_id.as_ref() == Some(&t.id) && shown.contains(&p.order_id.as_str())
                })
        })
        .collect();
    let per_token: BTreeMap<&str, Value> = tokens
        .iter()
        .map(|t| (t.id.as_str(), token_totals(l, t)))
        .collect();
    json!({
        "orders": orders.iter().filter(|o| o.kind == OrderKind::Purchase).map(|o| order_view(o)).collect::<Vec<_>>(),
        "returns": orders.iter().filter(|o| o.kind == OrderKind::Return).map(|o| order_view(o)).collect::<Vec<_>>(),
        "payments": payments,
        "tokens": tokens.iter().map(|t| json!({
            "tokenId": t.id,
            "orderId": t.order_id,
            "brand": t.card.brand,
            "last4": t.card.last4,
            "expiryMonth": t.card.expiry_month,
            "expiryYear": t.card.expiry_year,
            "cardholderName": t.card.holder,
            "defaultOutcome": t.default_outcome,
            "behaviours": l.token_behaviours.get(&t.id).cloned().unwrap_or_default(),
            "createdAt": crate::rfc3339(t.created_at),
        })).collect::<Vec<_>>(),
        "payments_per_token": per_token,
        "payouts": payouts,
    })
}

/// Where a payment is in settlement: `{"status", "batchAt", "settlementDate", "fee", "payout",
/// "settlementRef", "shortPaid"}` (nulls until known; `shortPaid`: settled under the
/// `short_payout` fault, `payout` then being the short figure reported). Integers, like the rest
/// of the ledger.
fn settlement_view(p: &Payment) -> Value {
    let s = &p.settlement;
    json!({
        "status": s.status.as_str(),
        "batchAt": s.batch_at.map(crate::rfc3339),
        "settlementDate": s.settlement_date,
        "fee": s.fee,
        "payout": s.payout,
        "settlementRef": s.settlement_ref,
        "shortPaid": s.short_paid,
    })
}

/// Charges of one token: how many were tried and how they ended, and the money that moved.
fn token_totals(l: &Ledger, t: &Token) -> Value {
    let charges: Vec<&Payment> = l
        .payments
        .values()
        .filter(|p| p.token_id.as_deref() == Some(&t.id))
        .collect();
    let count = |s: PaymentStatus| charges.iter().filter(|p| p.status == s).count();
    let completed: Vec<&&Payment> = charges
        .iter()
        .filter(|p| p.status == PaymentStatus::PaymentCompleted)
        .collect();
    let charged_orders: Vec<&str> = completed.iter().map(|p| p.order_id.as_str()).collect();
    // Money given back: completed returns against the orders this token paid.
    let refunded_amount: i64 = l
        .orders
        .values()
        .filter(|o| {
            o.purchase_order_id
                .as_deref()
                .is_some_and(|p| charged_orders.contains(&p))
        })
        .flat_map(|o| l.payments_of(o))
        .filter(|p| p.status == PaymentStatus::PaymentCompleted)
        .map(|p| p.amount)
        .sum();
    json!({
        "attempted": charges.len(),
        "completed": completed.len(),
        "failed": count(PaymentStatus::PaymentFailed),
        "cancelled": count(PaymentStatus::PaymentCancelled),
        "in_flight": charges.iter().filter(|p| !p.status.is_final()).count(),
        "voided": completed.iter().filter(|p| p.voided).count(),
        "completed_amount": completed.iter().map(|p| p.amount).sum::<i64>(),
        "voided_amount": completed.iter().filter(|p| p.voided).map(|p| p.amount).sum::<i64>(),
        "refunded_amount": refunded_amount,
    })
}
