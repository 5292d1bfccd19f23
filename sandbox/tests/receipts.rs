//! Receipts of settled transactions: the link, the email, the page behind the link, what the
//! control API records, and faults on the new routes.

mod common;

use common::*;
use serde_json::{Value, json};

const NO_TRANSACTION: &str = "No Completed transaction found for the given ID";

/// A paid hosted-page purchase: (order, payment, transaction, token).
fn purchase(s: &Sandbox, amount: i64) -> (String, String, String, String) {
    let order = s.page_order(amount, json!({}));
    let paid = s.pay(&order, APPROVE);
    assert_eq!(paid.body["paymentStatus"], "PAYMENT_COMPLETED");
    let payment = paid.body["paymentId"].as_str().unwrap().to_owned();
    let transaction = s.transaction(&order)["transactionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = s.token_of(&order);
    (order, payment, transaction, token)
}

fn link(s: &Sandbox, id: &str) -> Reply {
    s.api("GET", &format!("/receipts/{id}/link"), None)
}

fn email(s: &Sandbox, id: &str, body: Value) -> Reply {
    s.api("PUT", &format!("/receipts/{id}/email"), Some(&body))
}

fn no_transaction(r: &Reply) -> bool {
    r.status == 200 && r.body == json!({"status": "ERROR", "message": NO_TRANSACTION})
}

fn emails(s: &Sandbox) -> Vec<Value> {
    let r = s.get("/_sandbox/receipts/emails");
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

#[test]
fn receipts_exist_once_the_transaction_settled_for_any_of_its_ids() {
    let s = start();
    let (order, payment, transaction, _) = purchase(&s, 29_900);
    let ids = [&order, &payment, &transaction];
    for id in ids {
        assert!(no_transaction(&link(&s, id)), "{id} before settlement");
        assert!(no_transaction(&email(
            &s,
            id,
            json!({"email": "ada@example.com"})
        )));
    }
    assert!(no_transaction(&link(&s, "ffffffffffffffffff")));
    assert!(emails(&s).is_empty(), "nothing was sent");

    s.settle_all();
    assert!(
        no_transaction(&link(&s, "ffffffffffffffffff")),
        "still unknown"
    );
    let first = link(&s, &order);
    assert_eq!(first.status, 200);
    assert_eq!(first.body["status"], "SUCCESS", "{}", first.text);
    assert_eq!(first.body["message"], "Receipt link fetched.");
    let url = first.body["data"]["receiptURL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&format!("{}/receipts/", s.base)), "{url}");
    for id in ids {
        assert_eq!(
            link(&s, id).body["data"]["receiptURL"],
            url.as_str(),
            "{id}"
        );
    }
    // The guide's path form, and credentials like every provider call.
    let alias = s.api(
        "GET",
        &format!("/merchants/{MERCHANT}/receipts/{payment}/link"),
        None,
    );
    assert_eq!(alias.body["data"]["receiptURL"], url.as_str());
    for (method, path) in [
        ("GET", format!("/receipts/{order}/link")),
        ("PUT", format!("/receipts/{order}/email")),
    ] {
        assert_eq!(s.call(method, &path, None, false).status, 401, "{path}");
    }
    let other_merchant = s.api(
        "GET",
        &format!("/merchants/ffffffffffffffffff/receipts/{order}/link"),
        None,
    );
    assert_eq!(other_merchant.status, 401);
}

#[test]
fn the_receipt_page_shows_the_transaction_and_never_the_token() {
    let s = start();
    let (order, _, transaction, token) = purchase(&s, 29_900);
    s.settle_all();
    let url = link(&s, &order).body["data"]["receiptURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.strip_prefix(&s.base).unwrap();
    // No credentials: it is meant to be mailed.
    let page = s.call("GET", path, None, false);
    assert_eq!(page.status, 200);
    let html = &page.text;
    let reference = s.transaction(&order)["settlementRef"]
        .as_str()
        .unwrap()
        .to_owned();
    for shown in [
        MERCHANT,
        transaction.as_str(),
        "Purchase",
        "299.00 SEK",
        "VISA",
        "1111",
        "2026-03-02",
        reference.as_str(),
    ] {
        assert!(html.contains(shown), "{shown} on the receipt: {html}");
    }
    assert!(!html.contains(&token), "a token id on the receipt");
    assert!(!html.contains(&order), "the order id is not needed");
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(external), "no external assets: {external}");
    }
    assert_eq!(
        s.get("/receipts/ffffffffffffffffffffffffffffffffffff")
            .status,
        404
    );

    // A refund has a receipt of its own once it settled too.
    let r = s.create_order(&json!({"terminal$id": MIT,
        "orderLines": [{"id": "r", "name": "Refund", "quantity": -1, "purchaseOrderId": order,
                        "amount": {"total": 2_500, "currency": "752"}}],
        "totalOrderAmount": {"total": -2_500, "currency": "752"},
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}));
    let refund = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    s.wait_final(&refund);
    assert!(no_transaction(&link(&s, &refund)), "not settled yet");
    s.settle_all();
    let refund_url = link(&s, &refund).body["data"]["receiptURL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(refund_url, url);
    let html = s.get(refund_url.strip_prefix(&s.base).unwrap()).text;
    assert!(
        html.contains("Refund") && html.contains("25.00 SEK"),
        "{html}"
    );
}

#[test]
fn emails_are_checked_recorded_and_listed() {
    let s = start();
    let (order, payment, transaction, _) = purchase(&s, 9_900);
    s.settle_all();
    for bad in [
        json!({}),
        json!({"email": ""}),
        json!({"email": "nope"}),
        json!({"email": "ada@localhost"}),
        json!({"email": 7}),
    ] {
        let r = email(&s, &order, bad.clone());
        assert_eq!(r.status, 200);
        assert!(r.is_business_error("RC_0001"), "{bad}: {}", r.text);
        assert_eq!(r.body["message"], "RC_0001: Invalid email");
    }
    let malformed = s.call_raw(
        "PUT",
        &format!("/receipts/{order}/email"),
        "not json".into(),
        true,
    );
    assert_eq!(malformed.status, 400);

    let sent = email(&s, &transaction, json!({"email": "ada@example.com"}));
    assert_eq!(
        sent.body,
        json!({"status": "SUCCESS", "message": "Receipt sent.", "data": {"email": "ada@example.com"}})
    );
    let alias = s.api(
        "PUT",
        &format!("/merchants/{MERCHANT}/receipts/{payment}/email"),
        Some(&json!({"email": "bo@example.se"})),
    );
    assert_eq!(alias.body["status"], "SUCCESS", "{}", alias.text);
    let url = link(&s, &order).body["data"]["receiptURL"].clone();
    let recorded = emails(&s);
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let first = &recorded[0];
    assert_eq!(first["to"], "ada@example.com");
    assert_eq!(first["receiptURL"], url);
    assert_eq!(
        (
            first["orderId"].as_str(),
            first["paymentId"].as_str(),
            first["transactionId"].as_str()
        ),
        (
            Some(order.as_str()),
            Some(payment.as_str()),
            Some(transaction.as_str())
        )
    );
    let sent_at = first["sentAt"].as_str().unwrap();
    assert!(
        sent_at.starts_with("2026-03-06T09:"),
        "sandbox clock: {sent_at}"
    );
    assert_eq!(recorded[1]["to"], "bo@example.se");

    // A voided payment never settles: no receipt, ever.
    let (voided, voided_payment, _, _) = purchase(&s, 9_900);
    let void = s.api("PUT", &format!("/payments/{voided_payment}/void"), None);
    assert_eq!(void.body["data"]["voidStatus"], "VOIDED");
    s.settle_all();
    assert!(no_transaction(&link(&s, &voided)));

    assert_eq!(s.call("POST", "/_sandbox/reset", None, false).status, 204);
    assert!(emails(&s).is_empty(), "a reset forgets the emails");
}

#[test]
fn faults_apply_to_the_receipt_routes() {
    let s = start();
    let (order, _, _, _) = purchase(&s, 9_900);
    s.settle_all();
    let address = json!({"email": "ada@example.com"});

    s.set_faults(json!({"rules": [{"endpoint": "receipt_link", "fault": "error", "times": 1}]}));
    assert_eq!(link(&s, &order).status, 500);
    assert_eq!(link(&s, &order).body["status"], "SUCCESS", "times: 1");

    s.set_faults(json!({"rules": [{"endpoint": "receipt_link", "business_error_rate": 1.0}]}));
    let r = link(&s, &order);
    assert!(r.is_business_error("RC_0002"), "{}", r.text);

    // The email is recorded, then the answer fails: the caller cannot know it was sent.
    s.set_faults(
        json!({"rules": [{"endpoint": "receipt_email", "fault": "error_after", "times": 1}]}),
    );
    assert_eq!(email(&s, &order, address.clone()).status, 500);
    assert_eq!(emails(&s).len(), 1);
    s.set_faults(json!({"rules": [{"endpoint": "receipt_email", "fault": "error", "times": 1}]}));
    assert_eq!(email(&s, &order, address.clone()).status, 500);
    assert_eq!(emails(&s).len(), 1, "nothing sent");
    s.set_faults(json!({"rules": [{"endpoint": "receipt_email", "fault": "timeout_before", "timeout_ms": 200, "times": 1}]}));
    assert_eq!(email(&s, &order, address.clone()).status, 504);
    assert_eq!(emails(&s).len(), 1);

    // The link's rules leave the email alone, and the reverse.
    s.set_faults(json!({"rules": [{"endpoint": "receipt_link", "fault": "error"}]}));
    assert_eq!(email(&s, &order, address).body["status"], "SUCCESS");
    assert_eq!(emails(&s).len(), 2);
    let r = s.control(
        "PUT",
        "/_sandbox/faults",
        &json!({"rules": [{"endpoint": "receipt_link", "drop_rate": 0.5}]}),
    );
    assert_eq!(r.status, 400, "webhook faults do not apply: {}", r.text);
}
