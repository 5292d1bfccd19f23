//! Rotating every key without refusing a call, and the read-only key: the merchant API key
//! (a previous key accepted during the rotation), the provider's webhook secret (likewise), the
//! merchant webhook secret (deliveries signed with both, each signature verified by the test's
//! own receiver), and `MERCHANT_READ_KEY`, which reads and changes nothing.

use serde_json::json;

use crate::flows::*;
use crate::receiver::{self, Receiver};
use crate::stack::{MERCHANT_KEY, Options, Stack, WEBHOOK_SECRET};

const NEW_KEY: &str = "e2e-merchant-key-rotated-0123456789";
const READ_KEY: &str = "e2e-read-only-key-0123456789abcdef";

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn charge_with(s: &Stack, key: &str, idempotency: &str, customer: &str) -> crate::http::Reply {
    let auth = bearer(key);
    s.worker.post_with(
        "/v1/charges",
        &charge_body(customer, 1_000),
        &[
            ("Authorization", auth.as_str()),
            ("Idempotency-Key", idempotency),
        ],
    )
}

fn get_with_key(s: &Stack, key: &str, path: &str) -> crate::http::Reply {
    let auth = bearer(key);
    s.worker.get_with(path, &[("Authorization", auth.as_str())])
}

#[test]
fn the_merchant_key_rotates_without_a_refused_call() {
    let mut s = Stack::start();
    subscribe(&s, "key-1", "basic-monthly", APPROVE);
    assert_eq!(charge_with(&s, MERCHANT_KEY, "k-1", "key-1").status, 201);

    // During the rotation both keys open everything.
    s.restart_with_secrets(vec![
        ("MERCHANT_API_KEY", NEW_KEY.into()),
        ("MERCHANT_API_KEY_PREVIOUS", MERCHANT_KEY.into()),
    ]);
    assert_eq!(charge_with(&s, MERCHANT_KEY, "k-2", "key-1").status, 201);
    assert_eq!(charge_with(&s, NEW_KEY, "k-3", "key-1").status, 201);
    assert_eq!(
        get_with_key(&s, MERCHANT_KEY, "/v1/subscriptions").status,
        200
    );

    // After it, the old key is refused and changes nothing.
    s.restart_with_secrets(vec![("MERCHANT_API_KEY", NEW_KEY.into())]);
    charge_with(&s, MERCHANT_KEY, "k-4", "key-1").problem(401, "unauthorized");
    assert_eq!(charge_with(&s, NEW_KEY, "k-5", "key-1").status, 201);
    let charges = get_with_key(&s, NEW_KEY, "/v1/customers/key-1/charges?limit=100").json();
    assert_eq!(
        charges["data"].as_array().unwrap().len(),
        5,
        "a checkout and four charges"
    );
    assert!(!s.worker_log().contains(NEW_KEY) && !s.worker_log().contains(MERCHANT_KEY));
}

#[test]
fn the_read_key_reads_everything_and_changes_nothing() {
    let s = Stack::start_with(Options {
        secrets: vec![("MERCHANT_READ_KEY", READ_KEY.into())],
        ..Options::default()
    });
    let sub = subscribe(&s, "key-2", "basic-monthly", APPROVE).subscription_id;
    for path in [
        "/v1/subscriptions".to_owned(),
        format!("/v1/subscriptions/{sub}"),
        "/v1/customers/key-2/charges".to_owned(),
        "/v1/events".to_owned(),
        "/v1/reports/summary?from=2026-01-01T00:00:00Z&to=2027-12-31T00:00:00Z&currency=752"
            .to_owned(),
        "/v1/incidents".to_owned(),
    ] {
        let r = get_with_key(&s, READ_KEY, &path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    }
    charge_with(&s, READ_KEY, "r-1", "key-2").problem(403, "read-only-key");
    let auth = bearer(READ_KEY);
    s.worker
        .post_with(
            &format!("/v1/subscriptions/{sub}/cancel"),
            &json!({}),
            &[("Authorization", auth.as_str())],
        )
        .problem(403, "read-only-key");
    s.worker
        .send(
            "DELETE",
            "/v1/customers/key-2/payment-method",
            "",
            &[("Authorization", auth.as_str())],
        )
        .problem(403, "read-only-key");
    // Nothing changed: one charge (the checkout's), the subscription active, the card on file.
    assert_eq!(charges_of(&s, "key-2").len(), 1);
    assert_eq!(subscription(&s, &sub)["status"], "active");
    assert_eq!(payment_method(&s, "key-2").status, 200);
    // A read key is no customer session either.
    s.worker
        .get_with(
            "/v1/portal/subscriptions",
            &[("Authorization", auth.as_str())],
        )
        .problem(401, "unauthorized");
}

#[test]
fn the_provider_webhook_secret_rotates_without_a_refused_webhook() {
    let new_secret = "e2e-webhook-secret-rotated";
    let s = Stack::start_with(Options {
        secrets: vec![
            ("PSP_WEBHOOK_SECRET", new_secret.into()),
            ("PSP_WEBHOOK_SECRET_PREVIOUS", WEBHOOK_SECRET.into()),
        ],
        ..Options::default()
    });
    let created = start_checkout(&s, "key-3", "basic-monthly", json!({})).json();
    let order_id = created["orderId"].as_str().unwrap();
    for (n, secret) in [WEBHOOK_SECRET, new_secret].iter().enumerate() {
        let body = json!({
            "eventType": "order.updated",
            "metadata": {"eventId": format!("e2e00000000000000{n}"), "created": 1_893_456_000_000_i64},
            "data": {"orderId": order_id, "referenceId": created["checkoutId"]}
        })
        .to_string();
        let sig = recurring_core::psp::signature::sign(secret, body.as_bytes());
        let r = s.worker.post_raw(
            "/v1/webhooks/psp",
            &body,
            &[
                ("Content-Type", "application/json"),
                ("x-webhook-signature", &sig),
            ],
        );
        assert_eq!(r.status, 200, "signed with secret {n}: {}", r.text);
    }
    let body = json!({"eventType": "order.updated", "metadata": {"eventId": "e2e0000000000000ff"}})
        .to_string();
    let sig = recurring_core::psp::signature::sign("another-secret", body.as_bytes());
    s.worker
        .post_raw("/v1/webhooks/psp", &body, &[("x-webhook-signature", &sig)])
        .problem(401, "unauthorized");
    // The sandbox (signing with the previous secret) completes a checkout as before.
    pay(&s, order_id, APPROVE);
    assert_eq!(
        wait_checkout(&s, created["checkoutId"].as_str().unwrap())["status"],
        "paid"
    );
}

#[test]
fn deliveries_are_signed_with_both_merchant_secrets_during_a_rotation() {
    let new_secret = "whsec_cm90YXRlZC1lMmUtd2ViaG9vay1rZXktMDEyMzQ1";
    let receiver = Receiver::start();
    let s = Stack::start_with(Options {
        vars: vec![("MERCHANT_WEBHOOK_URL", receiver.url.clone())],
        secrets: vec![
            ("MERCHANT_WEBHOOK_SECRET", new_secret.into()),
            ("MERCHANT_WEBHOOK_SECRET_PREVIOUS", receiver::SECRET.into()),
        ],
        ..Options::default()
    });
    subscribe(&s, "key-4", "basic-monthly", APPROVE);
    eventually(30, "events to be delivered", || {
        !receiver.accepted_ids().is_empty()
    });
    for d in receiver.deliveries() {
        assert_eq!(d.signature.split(' ').count(), 2, "{}", d.signature);
        // Whichever secret the merchant's endpoint holds, the delivery verifies.
        let now = receiver::now_s();
        assert_eq!(receiver::verify(new_secret, &d, now), Ok(()));
        assert_eq!(receiver::verify(receiver::SECRET, &d, now), Ok(()));
        assert_eq!(
            receiver::verify("whsec_YW5vdGhlci1rZXktb2YtMTYtYnl0ZXMh", &d, now),
            Err(receiver::Refused::BadSignature)
        );
    }
}
