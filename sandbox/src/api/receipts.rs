//! Receipts of settled transactions: `GET /receipts/:id/link` and `PUT /receipts/:id/email`.
//!
//! The provider's documents do not say which id `:id` is, so an order id, a payment id and a
//! transaction id all work. Until the transaction settled (and for an id nobody knows) both
//! answer the provider's `No Completed transaction found for the given ID`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{authorize, business, malformed, parse_body, split_path, success, with_faults};
use crate::batches::run_due;
use crate::faults::Endpoint;
use crate::model::*;
use crate::state::{Inner, Shared, new_id};

const NO_TRANSACTION: &str = "No Completed transaction found for the given ID";

pub async fn receipt_link(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(&sb, Endpoint::ReceiptLink, StatusCode::OK, |sb, _| {
        let mut guard = sb.lock();
        let Some(payment_id) = settled_transaction(sb, &mut guard, id) else {
            return business(StatusCode::OK, NO_TRANSACTION);
        };
        let url = receipt_url(sb, &mut guard, &payment_id);
        success(
            StatusCode::OK,
            json!({"receiptURL": url}),
            "Receipt link fetched.",
        )
    })
    .await
}

pub async fn receipt_email(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (merchant, id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    let Some(req) = parse_body(&body) else {
        return malformed();
    };
    let email = req["email"].as_str().unwrap_or("").to_owned();
    with_faults(&sb, Endpoint::ReceiptEmail, StatusCode::OK, |sb, _| {
        // A request that can never succeed is refused whatever the transaction's state.
        if !is_email(&email) {
            return business(StatusCode::OK, "RC_0001: Invalid email");
        }
        let mut guard = sb.lock();
        let Some(payment_id) = settled_transaction(sb, &mut guard, id) else {
            return business(StatusCode::OK, NO_TRANSACTION);
        };
        let receipt_url = receipt_url(sb, &mut guard, &payment_id);
        let p = &guard.ledger.payments[&payment_id];
        let sent = ReceiptEmail {
            to: email.clone(),
            receipt_url,
            order_id: p.order_id.clone(),
            payment_id: p.id.clone(),
            transaction_id: p.transaction_id.clone(),
            sent_at: sb.now(),
        };
        guard.ledger.receipt_emails.push(sent);
        sb.persist(&guard);
        success(StatusCode::OK, json!({"email": email}), "Receipt sent.")
    })
    .await
}

/// The payment behind a receipt id, once its transaction settled.
fn settled_transaction(sb: &Shared, inner: &mut Inner, id: &str) -> Option<String> {
    run_due(sb, inner, sb.now());
    inner
        .ledger
        .find_transaction(id)
        .filter(|p| p.settlement.status == SettlementStatus::Settled)
        .map(|p| p.id.clone())
}

/// The receipt page of a payment: the same URL every time, under an id of its own (the page
/// needs no credentials, so its URL names neither the order nor the payment).
fn receipt_url(sb: &Shared, inner: &mut Inner, payment_id: &str) -> String {
    let Some(p) = inner.ledger.payments.get_mut(payment_id) else {
        return String::new();
    };
    let receipt_id = match &p.receipt_id {
        Some(existing) => existing.clone(),
        None => {
            // Two provider-style ids: hard to guess, as the page shows a card's last digits.
            let fresh = format!("{}{}", new_id(), new_id());
            p.receipt_id = Some(fresh.clone());
            sb.persist(inner);
            fresh
        }
    };
    format!("{}/receipts/{receipt_id}", sb.public_url)
}

/// A plausible address: one `@` between a local part and a dotted domain, no spaces.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for ok in ["ada@example.com", "a.b+c@mail.example.se"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@.com",
            "ada@example.",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa\nmple.com",
        ] {
            assert!(!is_email(bad), "{bad:?}");
        }
    }
}
