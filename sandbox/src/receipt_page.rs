//! The receipt page behind `receiptURL`: what a customer sees of a settled transaction. No
//! credentials (it is meant to be mailed), plain HTML with no external assets, and never a
//! token id.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::hosted_page::{amount_text, escape, page};
use crate::model::*;
use crate::state::Shared;

pub async fn show(State(sb): State<Shared>, Path(receipt_id): Path<String>) -> Response {
    let guard = sb.lock();
    let payment = guard
        .ledger
        .payments
        .values()
        .find(|p| p.receipt_id.as_deref() == Some(receipt_id.as_str()));
    let Some(p) = payment else {
        return (
            StatusCode::NOT_FOUND,
            Html(page(
                "Receipt not found",
                "<h1>Receipt not found</h1><p>There is no receipt at this address.</p>",
            )),
        )
            .into_response();
    };
    let kind = guard.ledger.orders.get(&p.order_id).map(|o| o.kind);
    let html = receipt(&sb.config.merchant_id, p, kind);
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn receipt(merchant_id: &str, p: &Payment, kind: Option<OrderKind>) -> String {
    let (title, kind) = match kind {
        Some(OrderKind::Return) => ("Refund receipt", "Refund"),
        _ => ("Receipt", "Purchase"),
    };
    let card = p.card.as_ref().map_or(String::new(), |c| {
        format!("{} •••• {}", escape(&c.brand), escape(&c.last4))
    });
    let date = p
        .completed()
        .map(|at| crate::rfc3339(at)[..16].replace('T', " ") + " UTC")
        .unwrap_or_default();
    let row = |label: &str, value: &str| {
        format!(
            r#"<tr><th scope="row" style="text-align:left;padding:.2rem 1rem .2rem 0">{label}</th><td>{value}</td></tr>"#
        )
    };
    let rows = [
        row("Merchant", &escape(merchant_id)),
        row("Transaction", &escape(&p.transaction_id)),
        row("Type", kind),
        row("Card", &card),
        row("Date", &date),
        row(
            "Settlement reference",
            &escape(p.settlement.settlement_ref.as_deref().unwrap_or("")),
        ),
    ]
    .concat();
    page(
        title,
        &format!(
            r#"<h1>{title}</h1><p class="amount">{amount}</p>
<table>{rows}</table>
<p class="muted">PSP sandbox: no real money moved.</p>"#,
            amount = amount_text(p.amount, &p.currency),
        ),
    )
}
