//! The attacks a plain HTTP client (no `Origin`, so CORS never applies) could run against the
//! routes a frontend calls, each refused with no change to the worker's ledger or the
//! provider's: naming another customer, reading their card or checkout, racing one
//! Idempotency-Key, and bodies that a lax parser would have read as something else.

use serde_json::{Value, json};

use crate::flows::*;
use crate::http::Reply;
use crate::stack::{ORIGIN, Options, Stack};

const MASTERCARD: &str = "5555555555554444";

fn orders(s: &Stack) -> usize {
    s.ledger()["orders"].as_array().unwrap().len()
}

fn subscriptions_of(s: &Stack, customer: &str) -> Vec<Value> {
    merchant_get(s, &format!("/v1/subscriptions?customerRef={customer}"))["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_checkout_can_never_name_another_customer() {
    let s = Stack::start();
    let victim = subscribe(&s, "victim-1", "basic-monthly", MASTERCARD);
    let before = orders(&s);

    // No session: 401, whatever the body says.
    let body = json!({
        "customerRef": "victim-1", "planId": "basic-monthly",
        "returnUrl": format!("{ORIGIN}/done"), "email": "mallory@evil.example", "name": "Mallory",
    });
    s.worker
        .post("/v1/checkout", &body)
        .problem(401, "unauthorized");
    // The attacker's own session, naming the victim: the body has no such fields.
    let r = start_checkout(
        &s,
        "attacker-1",
        "basic-monthly",
        json!({"customerRef": "victim-1", "email": "mallory@evil.example", "name": "Mallory"}),
    );
    let p = r.problem(400, "validation-error");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["customerRef", "email", "name"], "{p}");
    assert_eq!(orders(&s), before, "nothing reached the provider");

    // What the attacker can do is pay for themselves, with a card that hard-declines later.
    let own = subscribe(&s, "attacker-1", "basic-monthly", HARD_DECLINE_LATER);
    let card = payment_method(&s, "victim-1").json();
    assert_eq!(
        (card["brand"].as_str(), card["last4"].as_str()),
        (Some("MASTERCARD"), Some("4444")),
        "the victim's card is untouched"
    );
    let r = charge(&s, "victim-1-next", &charge_body("victim-1", 500));
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    let ledger = s.ledger();
    let victim_token = token_of_order(&ledger, &victim.order_id);
    let attacker_token = token_of_order(&ledger, &own.order_id);
    assert_eq!(completed_payments_for_token(&ledger, &victim_token), 1);
    assert_eq!(completed_payments_for_token(&ledger, &attacker_token), 0);
    assert_eq!(subscriptions_of(&s, "victim-1").len(), 1);
    assert_eq!(subscriptions_of(&s, "attacker-1").len(), 1);
    assert_ledgers_agree(&s, "victim-1");
    assert_ledgers_agree(&s, "attacker-1");
}

#[test]
fn an_older_checkout_paid_late_never_renews_on_someone_elses_card() {
    let s = Stack::start();
    tick(&s, "2027-03-01T00:00:00Z");
    // The attacker's checkout exists before the victim's, and is paid after it.
    let early = start_checkout(&s, "attacker-2", "basic-monthly", json!({})).json();
    let victim = subscribe(&s, "victim-2", "basic-monthly", MASTERCARD);
    pay(&s, early["orderId"].as_str().unwrap(), HARD_DECLINE_LATER);
    let attacker = wait_checkout(&s, early["checkoutId"].as_str().unwrap());
    assert_eq!(attacker["status"], "paid");

    let attacker_sub_id = attacker["subscriptionId"].as_str().unwrap().to_owned();
    eventually(30, "both renewals to settle", || {
        tick(&s, "2027-04-02T00:00:00Z");
        subscription(&s, &attacker_sub_id)["status"] == "unpaid"
            && charges_of(&s, "victim-2")
                .iter()
                .any(|c| c["kind"] == "renewal" && c["status"] == "succeeded")
    });
    let victim_sub = subscription(&s, &victim.subscription_id);
    assert_eq!(victim_sub["status"], "active", "{victim_sub}");
    let attacker_sub = subscription(&s, &attacker_sub_id);
    assert_eq!(attacker_sub["customerRef"], "attacker-2");
    let ledger = s.ledger();
    let victim_token = token_of_order(&ledger, &victim.order_id);
    assert_eq!(completed_payments_for_token(&ledger, &victim_token), 1);
    assert_eq!(payment_method(&s, "victim-2").json()["last4"], "4444");
    assert_ledgers_agree(&s, "victim-2");
    assert_ledgers_agree(&s, "attacker-2");
}

/// The parts of an answer a caller could tell apart.
fn shape(r: &Reply) -> (u16, String) {
    (r.status, r.text.clone())
}

#[test]
fn another_customers_card_checkout_and_subscription_look_exactly_like_unknown_ones() {
    let s = Stack::start();
    let victim = subscribe(&s, "victim-3", "basic-monthly", MASTERCARD);
    session_for(&s, "attacker-3");

    let theirs = customer_get(&s, "attacker-3", "/v1/customers/victim-3/payment-method");
    let nobody = customer_get(&s, "attacker-3", "/v1/customers/nobody-3/payment-method");
    let own_without_card =
        customer_get(&s, "attacker-3", "/v1/customers/attacker-3/payment-method");
    theirs.problem(404, "not-found");
    assert_eq!(shape(&theirs), shape(&nobody));
    assert_eq!(shape(&theirs), shape(&own_without_card));
    assert!(!theirs.text.contains("4444") && !theirs.text.contains("MASTERCARD"));
    // Without a session nobody learns anything either.
    s.worker
        .get("/v1/customers/victim-3/payment-method")
        .problem(401, "unauthorized");

    let theirs = customer_get(
        &s,
        "attacker-3",
        &format!("/v1/checkout/{}", victim.checkout_id),
    );
    let unknown = customer_get(&s, "attacker-3", "/v1/checkout/co_00000000000000000000");
    theirs.problem(404, "not-found");
    assert_eq!(shape(&theirs), shape(&unknown));

    let cancel = |id: &str| {
        customer_post(
            &s,
            "attacker-3",
            &format!("/v1/portal/subscriptions/{id}/cancel"),
            &json!({}),
            &[],
        )
    };
    let theirs = cancel(&victim.subscription_id);
    let unknown = cancel("sub_00000000000000000000");
    theirs.problem(404, "not-found");
    assert_eq!(shape(&theirs), shape(&unknown));
    let sub = subscription(&s, &victim.subscription_id);
    assert_eq!(sub["cancelAtPeriodEnd"], false, "{sub}");
    assert_eq!(sub["status"], "active");
    // The victim sees their own.
    assert_eq!(payment_method(&s, "victim-3").status, 200);
    assert_ledgers_agree(&s, "victim-3");
}

#[test]
fn ten_concurrent_checkouts_with_one_key_create_one_provider_order() {
    let s = Stack::start();
    // A slow provider widens the race: every request arrives while the first is creating.
    set_faults(&s, json!([{"endpoint": "create_order", "latency_ms": 700}]));
    session_for(&s, "race-1");
    let headers = [("Idempotency-Key", "race-key-1")];
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    start_checkout_with(&s, "race-1", "basic-monthly", json!({}), &headers)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    clear_faults(&s);
    for r in &replies {
        assert!(
            r.status == 200 || r.status == 201,
            "{} {}",
            r.status,
            r.text
        );
    }
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "one request created the checkout"
    );
    let first = replies[0].json();
    for r in &replies {
        let v = r.json();
        assert_eq!(v["checkoutId"], first["checkoutId"]);
        assert_eq!(v["orderId"], first["orderId"]);
        assert_eq!(v["paymentPageUrl"], first["paymentPageUrl"]);
    }
    let ledger = s.ledger();
    assert_eq!(
        ledger["orders"].as_array().unwrap().len(),
        1,
        "exactly one provider order: {ledger}"
    );
    pay(&s, first["orderId"].as_str().unwrap(), APPROVE);
    assert_eq!(
        wait_checkout(&s, first["checkoutId"].as_str().unwrap())["status"],
        "paid"
    );
    assert_eq!(charges_of(&s, "race-1").len(), 1);
    assert_ledgers_agree(&s, "race-1");
}

#[test]
fn a_checkout_whose_creator_died_is_taken_over_when_its_lease_ends() {
    // A patient client and a slow provider: the crash below lands while the order is being
    // created, well after the checkout was claimed.
    let mut s = Stack::start_with(Options {
        vars: vec![("PSP_TIMEOUT_MS", "5000".into())],
        ..Options::default()
    });
    set_faults(
        &s,
        json!([{"endpoint": "create_order", "latency_ms": 4000, "times": 1}]),
    );
    session_for(&s, "crash-1");
    let headers = [("Idempotency-Key", "crash-key-1")];
    // The first request dies with the worker while the provider is still answering it.
    let client = s.worker.clone();
    let auth = as_customer(&s, "crash-1");
    let doomed = std::thread::spawn(move || {
        let body = json!({"planId": "basic-monthly", "returnUrl": format!("{ORIGIN}/done")});
        client
            .agent_post(
                "/v1/checkout",
                &body,
                &[
                    ("Authorization", auth.as_str()),
                    ("Idempotency-Key", "crash-key-1"),
                ],
            )
            .map(|r| r.status)
    });
    // The crash lands once the order's creation is at the provider, however slow the machine.
    wait_faults_used(&s, 30);
    s.kill_worker();
    assert!(
        doomed.join().unwrap().is_err(),
        "the first request never got an answer"
    );
    clear_faults(&s);
    s.restart_worker();
    // The same request again: the checkout it claimed is found, its lease taken over, and the
    // payment page created once.
    let r = start_checkout_with(&s, "crash-1", "basic-monthly", json!({}), &headers);
    assert_eq!(r.status, 200, "{}", r.text);
    let again = start_checkout_with(&s, "crash-1", "basic-monthly", json!({}), &headers);
    assert_eq!(again.json()["orderId"], r.json()["orderId"]);
    let created = r.json();
    pay(&s, created["orderId"].as_str().unwrap(), APPROVE);
    assert_eq!(
        wait_checkout(&s, created["checkoutId"].as_str().unwrap())["status"],
        "paid"
    );
    assert_eq!(charges_of(&s, "crash-1").len(), 1);
    assert_ledgers_agree(&s, "crash-1");
}

#[test]
fn a_null_refund_amount_is_refused_and_refunds_nothing() {
    let s = Stack::start();
    subscribe(&s, "refund-1", "basic-monthly", APPROVE);
    let r = charge(&s, "refund-1-charge", &charge_body("refund-1", 1000));
    let charge_id = r.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/charges/{charge_id}/refunds");
    let refund = |key: &str, body: &str| {
        s.worker.post_raw(
            &path,
            body,
            &[
                ("Authorization", BEARER),
                ("Idempotency-Key", key),
                ("Content-Type", "application/json"),
            ],
        )
    };
    for (i, (body, field, rule)) in [
        (r#"{"amount": null}"#, "amount", "must not be null"),
        (r#"{"amount": "1000"}"#, "amount", "must be an integer"),
        (r#"{"amount": 10.5}"#, "amount", "must be an integer"),
        (
            r#"{"amount": 0}"#,
            "amount",
            "must be a positive integer in minor units",
        ),
        (
            r#"{"amount": 100, "reason": "x"}"#,
            "reason",
            "unknown field",
        ),
        (
            r#"{"amount": 100, "amount": 1000}"#,
            "amount",
            "appears more than once",
        ),
        ("[]", "body", "must be a JSON object"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = refund(&format!("bad-{i}"), body);
        let p = r.problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
        assert_eq!(p["errors"][0]["message"], rule, "{body}: {p}");
    }
    let listed = merchant_get(&s, &path);
    assert!(listed["data"].as_array().unwrap().is_empty(), "{listed}");
    assert!(s.ledger()["returns"].as_array().unwrap().is_empty());
    assert_eq!(
        merchant_get(&s, &format!("/v1/charges/{charge_id}"))["refundedAmount"],
        0
    );

    // Leaving the amount out still means "the rest".
    let r = refund("all", "{}");
    assert!(r.status == 201 || r.status == 202, "{}", r.text);
    assert_eq!(r.json()["amount"], 1000);
    assert_ledgers_agree(&s, "refund-1");
}

#[test]
fn actions_without_a_body_refuse_anything_but_nothing() {
    let s = Stack::start();
    let sub = subscribe(&s, "bodyless-1", "basic-monthly", APPROVE);
    let act = |action: &str, body: &str, content_type: &str| {
        s.worker.post_raw(
            &format!("/v1/subscriptions/{}/{action}", sub.subscription_id),
            body,
            &[("Authorization", BEARER), ("Content-Type", content_type)],
        )
    };
    let json_type = "application/json";
    for action in ["pause", "resume"] {
        act(action, "{\"", json_type).problem(400, "invalid-request");
        act(action, "[]", json_type).problem(400, "validation-error");
        act(action, "[true]", json_type).problem(400, "validation-error");
        act(action, "null", json_type).problem(400, "validation-error");
        let p = act(action, r#"{"now": true}"#, json_type).problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], "now");
        act(action, action, "text/plain").problem(415, "unsupported-media-type");
    }
    // `cancel` reads `[]` and `[true]` as nothing at all, never as "now" or "at period end".
    for body in [
        "[]",
        "[true]",
        r#"{"atPeriodEnd": "yes"}"#,
        r#"{"atPeriodEnd": null}"#,
    ] {
        act("cancel", body, json_type).problem(400, "validation-error");
    }
    act("cancel", "true", "text/plain").problem(415, "unsupported-media-type");
    let unchanged = subscription(&s, &sub.subscription_id);
    assert_eq!(unchanged["status"], "active", "{unchanged}");
    assert_eq!(unchanged["cancelAtPeriodEnd"], false);

    // What is accepted: nothing, or {}.
    let r = act("pause", "", json_type);
    assert_eq!(r.json()["status"], "paused", "{}", r.text);
    let r = act("resume", "{}", json_type);
    assert_eq!(r.json()["status"], "active", "{}", r.text);
    let r = act("cancel", r#"{"atPeriodEnd": true}"#, json_type);
    assert_eq!(r.json()["cancelAtPeriodEnd"], true, "{}", r.text);
    assert_ledgers_agree(&s, "bodyless-1");
}

#[test]
fn control_characters_never_reach_the_provider_and_errors_never_echo_the_parser() {
    let s = Stack::start();
    subscribe(&s, "strings-1", "basic-monthly", APPROVE);
    let before = orders(&s);
    let r = mint_session(
        &s,
        &json!({"customerRef": "strings-2", "email": "ada\u{0}@example.com"}),
    );
    let p = r.problem(400, "validation-error");
    assert_eq!(p["detail"], "email: must not contain control characters");

    let mut body = charge_body("strings-1", 500);
    body["description"] = json!("Top\u{0}up");
    let p = charge(&s, "nul", &body).problem(400, "validation-error");
    assert_eq!(
        p["detail"],
        "description: must not contain control characters"
    );

    let mut body = charge_body("strings-1", 500);
    body.as_object_mut().unwrap().remove("description");
    let r = charge(&s, "no-description", &body);
    let p = r.problem(400, "validation-error");
    assert_eq!(p["detail"], "description: required");
    assert_eq!(
        p["errors"],
        json!([{"field": "description", "message": "required"}])
    );
    for parser_words in ["missing field", "line ", "column", "`"] {
        assert!(!r.text.contains(parser_words), "{}", r.text);
    }
    assert_eq!(orders(&s), before, "nothing reached the provider");
    assert_eq!(charges_of(&s, "strings-1").len(), 1);
    assert_ledgers_agree(&s, "strings-1");
}
