//! Stage 1: the customer's first payment on the hosted page tokenizes the card; the worker keeps
//! the token in KV and never shows it.

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{ORIGIN, Stack, WEBHOOK_SECRET};

#[test]
fn happy_path_the_webhook_activates_the_subscription() {
    let s = Stack::start();
    let r = start_checkout(&s, "cust-1", "basic-monthly", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["amount"], 9900);
    let page = created["paymentPageUrl"].as_str().unwrap();
    assert!(page.starts_with(&s.sandbox_url), "{page}");
    let order_id = created["orderId"].as_str().unwrap();
    pay(&s, order_id, APPROVE);

    // Only the webhook can have stored the card: nobody polled the checkout yet.
    eventually(10, "the webhook to store the card", || {
        payment_method(&s, "cust-1").status == 200
    });
    let card = payment_method(&s, "cust-1").json();
    assert_eq!(card["last4"], "1111");
    assert_eq!(card["brand"], "VISA");

    let state = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "paid");
    assert_eq!(state["card"]["last4"], "1111");
    let sub = subscription(&s, state["subscriptionId"].as_str().unwrap());
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["planId"], "basic-monthly");
    assert!(sub["nextChargeAt"].is_string());

    let charges = charges_of(&s, "cust-1");
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["kind"], "checkout");
    assert_eq!(charges[0]["status"], "succeeded");
    assert_eq!(charges[0]["amount"], 9900);

    // The stored token works for a merchant-initiated charge.
    let r = charge(&s, "after-checkout", &charge_body("cust-1", 500));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["status"], "succeeded");
    assert_ledgers_agree(&s, "cust-1");
    assert_no_token_leak(
        &s,
        &[
            r.text,
            state.to_string(),
            card.to_string(),
            created.to_string(),
        ],
    );
}

#[test]
fn a_lost_webhook_is_made_good_by_the_return_page_poll() {
    let s = Stack::start();
    set_faults(&s, json!([{"endpoint": "webhook", "drop_rate": 1.0}]));
    let r = start_checkout(&s, "cust-2", "basic-monthly", json!({}));
    let created = r.json();
    let order_id = created["orderId"].as_str().unwrap();
    pay(&s, order_id, APPROVE);
    // The provider has completed the payment (and dropped its webhook): only a poll tells.
    eventually(30, "the payment to complete at the provider", || {
        s.ledger()["payments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["orderId"] == order_id && p["status"] == "PAYMENT_COMPLETED")
    });
    assert_eq!(
        payment_method(&s, "cust-2").status,
        404,
        "no webhook arrived, nothing stored yet"
    );

    let state = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "paid", "{state}");
    assert_eq!(payment_method(&s, "cust-2").status, 200);
    assert_eq!(charges_of(&s, "cust-2").len(), 1);
    assert_ledgers_agree(&s, "cust-2");
}

#[test]
fn a_lost_webhook_is_made_good_by_the_cron_too() {
    let s = Stack::start();
    set_faults(&s, json!([{"endpoint": "webhook", "drop_rate": 1.0}]));
    let created = start_checkout(&s, "cust-cron", "basic-monthly", json!({})).json();
    pay(&s, created["orderId"].as_str().unwrap(), APPROVE);
    // Nobody polls: the scheduler asks about checkouts pending for more than five minutes.
    let clock = tick(&s, "2030-01-01T00:00:00Z");
    assert_eq!(clock["checkoutsSettled"], 1, "{clock}");
    assert_eq!(payment_method(&s, "cust-cron").status, 200);
    assert_ledgers_agree(&s, "cust-cron");
}

#[test]
fn a_status_lagging_behind_the_webhook_is_not_trusted_until_it_confirms() {
    let s = Stack::start();
    set_faults(
        &s,
        json!([{"endpoint": "order_status", "status_lag_ms": 2500}]),
    );
    let created = start_checkout(&s, "cust-3", "basic-monthly", json!({})).json();
    let order_id = created["orderId"].as_str().unwrap();
    pay(&s, order_id, APPROVE);
    // The webhook said "completed" before the status did: it is answered and kept, but nothing
    // moves until the status confirms it (a poll, or the cron, does later).
    eventually(20, "the completed event to be held", || {
        s.logged("webhook confirmed").iter().any(|line| {
            line["type"] == "order.paymentcompleted"
                && line["orderId"] == order_id
                && line["outcome"] == "Unconfirmed"
        })
    });
    assert_eq!(payment_method(&s, "cust-3").status, 404);
    let state = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "paid", "{state}");
    assert_eq!(charges_of(&s, "cust-3").len(), 1);
    assert_ledgers_agree(&s, "cust-3");
}

#[test]
fn duplicated_and_reordered_webhooks_activate_exactly_once() {
    let s = Stack::start();
    set_faults(
        &s,
        json!([{"endpoint": "webhook", "duplicate_rate": 1.0, "reorder": true}]),
    );
    let created = start_checkout(&s, "cust-4", "basic-monthly", json!({})).json();
    pay(&s, created["orderId"].as_str().unwrap(), APPROVE);
    eventually(10, "the card to be stored", || {
        payment_method(&s, "cust-4").status == 200
    });
    eventually(10, "duplicates to be delivered", || {
        s.logged("webhook confirmed").len() >= 2
    });
    let subs = merchant_get(&s, "/v1/subscriptions?customerRef=cust-4");
    assert_eq!(subs["data"].as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(charges_of(&s, "cust-4").len(), 1);
    assert_eq!(
        wait_checkout(&s, created["checkoutId"].as_str().unwrap())["status"],
        "paid"
    );
    assert_ledgers_agree(&s, "cust-4");
}

fn signed(body: &str) -> String {
    recurring_core::psp::signature::sign(WEBHOOK_SECRET, body.as_bytes())
}

#[test]
fn forged_webhooks_are_refused_and_replayed_ones_are_processed_once() {
    let s = Stack::start();
    let created = start_checkout(&s, "cust-5", "basic-monthly", json!({})).json();
    let order_id = created["orderId"].as_str().unwrap();
    let body = json!({
        "eventType": "order.paymentcompleted",
        "metadata": {"eventId": "e2e0000000000000a1", "created": 1_893_456_000_000_i64},
        "data": {"orderId": order_id, "referenceId": created["checkoutId"], "paymentStatus": "PAYMENT_COMPLETED"}
    })
    .to_string();

    for signature in [
        None,
        Some("AAAA"),
        Some(&*recurring_core::psp::signature::sign(
            "wrong",
            body.as_bytes(),
        )),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(sig) = signature {
            headers.push(("x-webhook-signature", sig));
        }
        s.worker
            .post_raw("/v1/webhooks/psp", &body, &headers)
            .problem(401, "unauthorized");
    }
    // A forged "completed" changed nothing: the customer never paid.
    assert_eq!(
        wait_checkout_once(&s, created["checkoutId"].as_str().unwrap()),
        "pending"
    );
    assert_eq!(payment_method(&s, "cust-5").status, 404);

    // A genuine (signed) event is recorded and answered at once (per-order callbacks are not
    // retried), but moves nothing until the order status confirms it.
    let sig = signed(&body);
    let headers = [
        ("Content-Type", "application/json"),
        ("x-webhook-signature", sig.as_str()),
    ];
    let r = s.worker.post_raw("/v1/webhooks/psp", &body, &headers);
    assert_eq!(r.status, 200, "{}", r.text);
    eventually(20, "the event's confirmation to run", || {
        s.logged("webhook confirmed")
            .iter()
            .any(|line| line["eventId"] == "e2e0000000000000a1")
    });
    assert_eq!(
        wait_checkout_once(&s, created["checkoutId"].as_str().unwrap()),
        "pending"
    );
    assert_eq!(payment_method(&s, "cust-5").status, 404);
    // Once the order really completed, the recorded event is confirmed (here by the cron);
    // a replay of the same event is then a no-op.
    pay(&s, order_id, APPROVE);
    eventually(20, "activation", || {
        payment_method(&s, "cust-5").status == 200
    });
    let report = tick(&s, &minutes_from_now(10));
    assert_eq!(report["webhooksConfirmed"], 1, "{report}");
    let replay = s.worker.post_raw("/v1/webhooks/psp", &body, &headers);
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json()["duplicate"], true);
    assert_eq!(charges_of(&s, "cust-5").len(), 1);

    // Signed but unreadable: refused, nothing stored.
    let junk = "{\"eventType\": 1}";
    let sig = signed(junk);
    s.worker
        .post_raw(
            "/v1/webhooks/psp",
            junk,
            &[("x-webhook-signature", sig.as_str())],
        )
        .problem(400, "invalid-request");
    assert_ledgers_agree(&s, "cust-5");
}

/// An event that announces no outcome, for an order in use, changes nothing: it is answered at
/// once, then settled in the batch that records it, with no status read. One for an order we do
/// not know still goes to its confirmation, which decides whether it is ours.
#[test]
fn an_event_without_an_outcome_is_settled_as_it_is_recorded() {
    let s = Stack::start();
    let created = start_checkout(&s, "cust-5b", "basic-monthly", json!({})).json();
    let order_id = created["orderId"].as_str().unwrap();
    let event = |id: &str, data: Value| {
        json!({
            "eventType": "order.paymentinitiated",
            "metadata": {"eventId": id, "created": 1_893_456_000_000_i64},
            "data": data
        })
        .to_string()
    };
    let post = |body: &str| {
        let sig = signed(body);
        s.worker.post_raw(
            "/v1/webhooks/psp",
            body,
            &[
                ("Content-Type", "application/json"),
                ("x-webhook-signature", sig.as_str()),
            ],
        )
    };
    let status_reads = |s: &Stack| {
        s.logged("psp call")
            .iter()
            .filter(|l| l["operation"] == "order_status")
            .count()
    };
    let reads_before = status_reads(&s);
    let ours = event(
        "e2e0000000000000b1",
        json!({"orderId": order_id, "referenceId": created["checkoutId"]}),
    );
    let r = post(&ours);
    assert_eq!(r.status, 200, "{}", r.text);
    // The log reaches its file a moment after the answer.
    let mut noted = Value::Null;
    eventually(20, "the event's line in the log", || {
        noted = s
            .logged("webhook confirmed")
            .into_iter()
            .find(|l| l["eventId"] == "e2e0000000000000b1")
            .unwrap_or(Value::Null);
        !noted.is_null()
    });
    assert_eq!(noted["outcome"], "Noted", "{noted}");
    assert_eq!(noted["subrequests"], 0, "no status read: {noted}");
    // Settled in the batch that recorded it: no round trip beyond that batch and the test
    // clock's reading (a confirmation would add its owner lookup and its own write).
    assert!(noted["d1Calls"].as_u64().unwrap() <= 2, "{noted}");
    assert_eq!(status_reads(&s), reads_before);
    // A replay is answered at once too, and recognised when it is recorded: nothing more.
    let replay = post(&ours);
    assert_eq!(replay.status, 200, "{}", replay.text);

    let stranger = event(
        "e2e0000000000000b2",
        json!({"orderId": "0000000000000000ff"}),
    );
    assert_eq!(post(&stranger).status, 200);
    eventually(20, "the unknown order's event to be confirmed", || {
        s.logged("webhook confirmed")
            .iter()
            .any(|l| l["eventId"] == "e2e0000000000000b2" && l["outcome"] == "Ignored")
    });
    assert_eq!(
        wait_checkout_once(&s, created["checkoutId"].as_str().unwrap()),
        "pending"
    );
    // The replay was recorded as the duplicate it is: one line for the event.
    let lines = s
        .logged("webhook confirmed")
        .into_iter()
        .filter(|l| l["eventId"] == "e2e0000000000000b1")
        .count();
    assert_eq!(lines, 1);
    assert_ledgers_agree(&s, "cust-5b");
}

fn wait_checkout_once(s: &Stack, id: &str) -> String {
    get_checkout(s, id).json()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_declined_card_fails_the_checkout_and_stores_nothing() {
    let s = Stack::start();
    let created = start_checkout(&s, "cust-6", "basic-monthly", json!({})).json();
    pay(&s, created["orderId"].as_str().unwrap(), DECLINE_NOW);
    let state = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(state["failureReason"], "DENIED");
    assert!(state.get("card").is_none() && state.get("subscriptionId").is_none());
    assert_eq!(payment_method(&s, "cust-6").status, 404);
    assert!(
        merchant_get(&s, "/v1/subscriptions?customerRef=cust-6")["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(charges_of(&s, "cust-6").is_empty());
    let ledger = s.ledger();
    assert_eq!(
        completed_for_reference(&ledger, created["checkoutId"].as_str().unwrap()),
        0
    );
}

#[test]
fn bad_checkout_requests_are_refused_with_problems_and_change_nothing() {
    let s = Stack::start();
    let r = start_checkout(&s, "cust-7", "no-such-plan", json!({}));
    r.problem(404, "not-found");

    let r = start_checkout(
        &s,
        "cust-7",
        "basic-monthly",
        json!({"returnUrl": "https://evil.example/phish"}),
    );
    let p = r.problem(400, "validation-error");
    assert_eq!(p["errors"][0]["field"], "returnUrl");

    // The customer, their email and their name come from the session, never from the body.
    let r = start_checkout(
        &s,
        "cust-7",
        "basic-monthly",
        json!({"customerRef": "cust-8", "email": "x@example.com"}),
    );
    let p = r.problem(400, "validation-error");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["customerRef", "email"], "{p}");
    assert_eq!(p["errors"][0]["message"], "unknown field");

    let r = start_checkout(&s, "cust-7", "course", json!({"installments": 5}));
    assert_eq!(
        r.problem(400, "validation-error")["errors"][0]["field"],
        "installments"
    );

    let auth = as_customer(&s, "cust-7");
    let r = s.worker.post_raw(
        "/v1/checkout",
        "{\"planId\": ",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ],
    );
    let p = r.problem(400, "invalid-request");
    assert!(!p["detail"].as_str().unwrap().contains("line"), "{p}");

    let r = s.worker.post_raw(
        "/v1/checkout",
        "planId=x",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", auth.as_str()),
        ],
    );
    r.problem(415, "unsupported-media-type");

    let huge = json!({"planId": "basic-monthly", "returnUrl": format!("{ORIGIN}/done"), "cancelUrl": format!("{ORIGIN}/{}", "x".repeat(20_000))});
    s.worker
        .post_with("/v1/checkout", &huge, &[("Authorization", auth.as_str())])
        .problem(413, "payload-too-large");

    let r = s.worker.post_raw(
        "/v1/checkout",
        &json!({"planId": "basic-monthly", "returnUrl": format!("{ORIGIN}/done")}).to_string(),
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
            ("Authorization", auth.as_str()),
        ],
    );
    r.problem(403, "origin-not-allowed");

    // None of it reached the provider.
    let ledger = s.ledger();
    assert!(ledger["orders"].as_array().unwrap().is_empty(), "{ledger}");
}

#[test]
fn cors_allows_the_configured_origin_only() {
    let s = Stack::start();
    let r = s.worker.send(
        "OPTIONS",
        "/v1/checkout",
        "",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let allowed = r.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("Idempotency-Key"), "{allowed}");
    assert!(allowed.contains("Authorization"), "{allowed}");
    let r = s.worker.get_with("/v1/plans", &[("Origin", ORIGIN)]);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    // Merchant routes do not speak CORS at all.
    let r = s
        .worker
        .send("OPTIONS", "/v1/charges", "", &[("Origin", ORIGIN)]);
    assert_eq!(r.status, 405);
}

#[test]
fn the_same_idempotency_key_returns_the_same_checkout_without_a_second_order() {
    let s = Stack::start();
    let headers = [("Idempotency-Key", "checkout-cust-8-1")];
    let a = start_checkout_with(&s, "cust-8", "basic-monthly", json!({}), &headers);
    let b = start_checkout_with(&s, "cust-8", "basic-monthly", json!({}), &headers);
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(a.json()["checkoutId"], b.json()["checkoutId"]);
    assert_eq!(a.json()["orderId"], b.json()["orderId"]);
    let orders = s.ledger()["orders"].as_array().unwrap().len();
    assert_eq!(orders, 1);
    start_checkout_with(&s, "cust-8", "pro-yearly", json!({}), &headers)
        .problem(422, "idempotency-key-reused");
    // The same key from another customer is that customer's own key: a checkout of their own.
    let c = start_checkout_with(&s, "cust-8b", "basic-monthly", json!({}), &headers);
    assert_eq!(c.status, 201, "{}", c.text);
    assert_ne!(c.json()["checkoutId"], a.json()["checkoutId"]);
}

#[test]
fn a_new_card_replaces_the_old_one_and_charges_use_it() {
    let s = Stack::start();
    let first = subscribe(&s, "cust-9", "basic-monthly", APPROVE);
    let second = subscribe(&s, "cust-9", "weekly", "5555555555554444");
    let card = payment_method(&s, "cust-9").json();
    assert_eq!(card["last4"], "4444");
    let r = charge(&s, "cust-9-topup", &charge_body("cust-9", 700));
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    let ledger = s.ledger();
    let new_token = token_of_order(&ledger, &second.order_id);
    let old_token = token_of_order(&ledger, &first.order_id);
    assert_eq!(completed_payments_for_token(&ledger, &new_token), 1);
    assert_eq!(completed_payments_for_token(&ledger, &old_token), 0);
    assert_ledgers_agree(&s, "cust-9");
}

#[test]
fn forgetting_the_card_stops_merchant_charges() {
    let s = Stack::start();
    subscribe(&s, "cust-10", "basic-monthly", APPROVE);
    let r = s
        .worker
        .delete_with("/v1/customers/cust-10/payment-method", &merchant());
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(payment_method(&s, "cust-10").status, 404);
    // Forgetting is the merchant's call, never an anonymous browser's nor the customer's.
    s.worker
        .delete_with("/v1/customers/cust-10/payment-method", &[])
        .problem(401, "unauthorized");
    let auth = as_customer(&s, "cust-10");
    s.worker
        .delete_with(
            "/v1/customers/cust-10/payment-method",
            &[("Authorization", auth.as_str())],
        )
        .problem(401, "unauthorized");
    charge(&s, "cust-10-after", &charge_body("cust-10", 500)).problem(409, "no-payment-method");
}

#[test]
fn the_frontend_never_sees_a_token() {
    let s = Stack::start();
    let mut seen: Vec<String> = Vec::new();
    let sub = subscribe(&s, "cust-11", "basic-monthly", APPROVE);
    seen.push(get_checkout(&s, &sub.checkout_id).text);
    seen.push(payment_method(&s, "cust-11").text);
    seen.push(
        s.worker
            .get_with(
                &format!("/v1/subscriptions/{}", sub.subscription_id),
                &merchant(),
            )
            .text,
    );
    seen.push(charge(&s, "leak-1", &charge_body("cust-11", 300)).text);
    seen.push(
        s.worker
            .get_with("/v1/customers/cust-11/charges", &merchant())
            .text,
    );
    seen.push(tick(&s, "2031-01-01T00:00:00Z").to_string());
    let events: Value = merchant_get(
        &s,
        &format!("/v1/subscriptions/{}/events", sub.subscription_id),
    );
    seen.push(events.to_string());
    assert_no_token_leak(&s, &seen);
}

#[test]
fn an_unpaid_checkout_is_abandoned_after_a_day_and_its_page_closed() {
    let s = Stack::start();
    tick(&s, "2027-02-01T00:00:00Z");
    let created = start_checkout(&s, "cust-12", "basic-monthly", json!({})).json();
    let order_id = created["orderId"].as_str().unwrap();
    // An hour later it is only asked about; a day later it is given up.
    tick(&s, "2027-02-01T01:00:00Z");
    assert_eq!(
        wait_checkout_once(&s, created["checkoutId"].as_str().unwrap()),
        "pending"
    );
    tick(&s, "2027-02-02T01:00:00Z");
    let state = get_checkout(&s, created["checkoutId"].as_str().unwrap()).json();
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(state["failureReason"], "abandoned");
    // The provider order was cancelled first: the customer can no longer pay it.
    let r = s.sandbox.post(
        &format!("/_sandbox/orders/{order_id}/pay"),
        &json!({"cardNumber": APPROVE}),
    );
    assert_eq!(r.status, 410, "{}", r.text);
    assert_eq!(
        completed_for_reference(&s.ledger(), created["checkoutId"].as_str().unwrap()),
        0
    );
}
