//! Stage 2: merchant-initiated charges of the stored card, exactly once under provider faults;
//! refunds within what was captured.

use serde_json::{Value, json};

use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};

use crate::flows::*;
use crate::http::Reply;
use crate::stack::{Options, Stack};

#[test]
fn a_charge_of_the_stored_card_succeeds_once() {
    let s = Stack::start();
    let sub = subscribe(&s, "c-ok", "basic-monthly", APPROVE);
    let r = charge(
        &s,
        "c-ok-1",
        &json!({
            "customerRef": "c-ok", "amount": 12_500, "currency": "752",
            "description": "Extra seats", "metadata": {"invoice": "INV-7"}
        }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let c = r.json();
    assert_eq!(c["status"], "succeeded");
    assert_eq!(c["amount"], 12_500);
    assert_eq!(c["kind"], "api");
    assert_eq!(c["metadata"]["invoice"], "INV-7");
    assert_eq!(c["retryable"], false);
    let ledger = s.ledger();
    assert_eq!(
        completed_payments_for_token(&ledger, &token_of_order(&ledger, &sub.order_id)),
        1
    );
    assert_eq!(
        completed_for_reference(&ledger, c["id"].as_str().unwrap()),
        1
    );

    let got = merchant_get(&s, &format!("/v1/charges/{}", c["id"].as_str().unwrap()));
    assert_eq!(got["status"], "succeeded");
    assert_ledgers_agree(&s, "c-ok");
}

#[test]
fn declines_say_whether_a_retry_can_help() {
    let s = Stack::start();
    subscribe(&s, "c-soft", "basic-monthly", SOFT_DECLINE_LATER);
    subscribe(&s, "c-hard", "basic-monthly", HARD_DECLINE_LATER);

    let soft = charge(&s, "soft-1", &charge_body("c-soft", 1000));
    assert_eq!(soft.status, 201, "{}", soft.text);
    let soft = soft.json();
    assert_eq!(soft["status"], "failed");
    assert_eq!(soft["failureReason"], "DENIED_NO_FUNDS");
    assert_eq!(soft["declineCategory"], "soft");
    assert_eq!(soft["retryable"], true);

    let hard = charge(&s, "hard-1", &charge_body("c-hard", 1000)).json();
    assert_eq!(hard["status"], "failed");
    assert_eq!(hard["failureReason"], "DENIED_DO_NOT_TRY_AGAIN");
    assert_eq!(hard["declineCategory"], "hard");
    assert_eq!(hard["retryable"], false);
    assert_ledgers_agree(&s, "c-soft");
    assert_ledgers_agree(&s, "c-hard");
}

#[test]
fn replaying_a_key_returns_the_stored_result_without_calling_the_provider() {
    let s = Stack::start();
    subscribe(&s, "c-replay", "basic-monthly", APPROVE);
    let body = charge_body("c-replay", 2500);
    let first = charge(&s, "replay-key", &body);
    assert_eq!(first.status, 201);
    let orders_before = s.ledger()["orders"].as_array().unwrap().len();
    let provider_calls_before = s.sandbox_log().lines().count();
    // Key order and whitespace do not make it another request.
    let reordered =
        r#"{ "description":"Top-up", "currency":"752", "amount":2500, "customerRef":"c-replay" }"#;
    let mut headers = merchant().to_vec();
    headers.extend([
        ("Idempotency-Key", "replay-key"),
        ("Content-Type", "application/json"),
    ]);
    let again = s.worker.post_raw("/v1/charges", reordered, &headers);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(charge_id(&again), charge_id(&first));
    assert_eq!(again.json()["status"], "succeeded");
    assert_eq!(
        s.ledger()["orders"].as_array().unwrap().len(),
        orders_before
    );
    let provider_calls: Vec<String> = s
        .sandbox_log()
        .lines()
        .skip(provider_calls_before)
        .map(str::to_owned)
        .collect();
    assert!(
        !provider_calls
            .iter()
            .any(|l| l.contains("/orders") || l.contains("/payments")),
        "the replay reached the provider: {provider_calls:?}"
    );
    assert_eq!(completed_for_reference(&s.ledger(), &charge_id(&first)), 1);

    let mut other = body.clone();
    other["amount"] = json!(2501);
    charge(&s, "replay-key", &other).problem(422, "idempotency-key-reused");
    assert_ledgers_agree(&s, "c-replay");
}

#[test]
fn bad_charge_requests_and_bad_keys_change_nothing() {
    let s = Stack::start();
    subscribe(&s, "c-bad", "basic-monthly", APPROVE);
    let orders_before = s.ledger()["orders"].as_array().unwrap().len();

    // Authentication first: no key, a wrong key.
    s.worker
        .post("/v1/charges", &charge_body("c-bad", 500))
        .problem(401, "unauthorized");
    s.worker
        .post_with(
            "/v1/charges",
            &charge_body("c-bad", 500),
            &[("Authorization", "Bearer nope"), ("Idempotency-Key", "k")],
        )
        .problem(401, "unauthorized");
    // Then the request.
    s.worker
        .post_with("/v1/charges", &charge_body("c-bad", 500), &merchant())
        .problem(400, "idempotency-key-required");
    for (i, amount) in [
        json!(0),
        json!(-5),
        json!(12.5),
        json!("500"),
        json!(50_000_000_000_i64),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = charge_body("c-bad", 0);
        body["amount"] = amount;
        let p = charge(&s, &format!("bad-amount-{i}"), &body).problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], "amount", "{p}");
    }
    let mut body = charge_body("c-bad", 500);
    body["currency"] = json!("840");
    assert_eq!(
        charge(&s, "bad-currency", &body).problem(400, "validation-error")["errors"][0]["field"],
        "currency"
    );
    charge(&s, "no-card", &charge_body("nobody", 500)).problem(409, "no-payment-method");
    // A refused request did not use up its key.
    let r = charge(&s, "bad-amount-0", &charge_body("c-bad", 500));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        s.ledger()["orders"].as_array().unwrap().len(),
        orders_before + 1
    );
    assert_ledgers_agree(&s, "c-bad");
}

/// Each of the three provider calls fails in each of three ways; a retry with the same key
/// then finishes the charge, with exactly one payment at the provider.
#[test]
fn provider_faults_on_every_call_never_double_charge() {
    let s = Stack::start_with(Options {
        vars: vec![("PSP_TIMEOUT_MS", "800".into())],
        ..Options::default()
    });
    subscribe(&s, "c-faults", "basic-monthly", APPROVE);
    let faults = [
        ("error_rate", json!(1.0)),
        ("business_error_rate", json!(1.0)),
        ("timeout_rate", json!(1.0)),
    ];
    for endpoint in ["create_order", "initiate_payment", "order_status"] {
        for (fault, rate) in &faults {
            let key = format!("fault-{endpoint}-{fault}");
            let mut rule = json!({"endpoint": endpoint, "times": 1, "timeout_ms": 3000});
            rule[*fault] = rate.clone();
            set_faults(&s, json!([rule]));
            let first = charge(&s, &key, &charge_body("c-faults", 1500));
            assert!(
                [201, 202].contains(&first.status),
                "{endpoint}/{fault}: {} {}",
                first.status,
                first.text
            );
            clear_faults(&s);
            let ask = || charge(&s, &key, &charge_body("c-faults", 1500));
            let last = ask();
            let id = charge_id(&first);
            if last.json()["status"] == "pending"
                && payments_for_reference(&s.ledger(), &id).is_empty()
            {
                // The provider never showed the first attempt: nothing new may start on the
                // card until its settle window (15 minutes) passed, however often it is asked.
                for _ in 0..3 {
                    let again = ask().json();
                    assert_eq!(again["status"], "pending", "{endpoint}/{fault}: {again}");
                    assert_eq!(again["attempts"], 1, "{endpoint}/{fault}: {again}");
                }
                after_settle_window(&s, &last.json());
            }
            let last = retry_while_pending(ask);
            let c = last.json();
            assert_eq!(c["status"], "succeeded", "{endpoint}/{fault}: {c}");
            assert_eq!(charge_id(&first), charge_id(&last));
            let ledger = s.ledger();
            assert_eq!(
                completed_for_reference(&ledger, c["id"].as_str().unwrap()),
                1,
                "{endpoint}/{fault}: payments {}",
                ledger["payments"]
            );
        }
    }
    assert_ledgers_agree(&s, "c-faults");
}

/// Asks again (the same Idempotency-Key) until the charge is final, for up to a minute: how
/// long a slow machine takes is not the charge's business.
fn retry_while_pending(ask: impl Fn() -> Reply) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let last = ask();
        if last.json()["status"] != "pending" || std::time::Instant::now() > deadline {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// Moves business time past the settle window of a charge's latest attempt.
fn after_settle_window(s: &Stack, charge: &Value) {
    let created = parse_rfc3339(charge["createdAt"].as_str().unwrap()).unwrap();
    tick(s, &format_rfc3339(created + 16 * 60_000));
}

#[test]
fn garbage_from_the_provider_loses_nothing() {
    let s = Stack::start();
    subscribe(&s, "c-garbage", "basic-monthly", APPROVE);
    set_faults(
        &s,
        json!([{"endpoint": "initiate_payment", "error_after_rate": 1.0, "times": 1}]),
    );
    let first = charge(&s, "garbage-1", &charge_body("c-garbage", 800));
    clear_faults(&s);
    let c = match first.json()["status"].as_str() {
        Some("pending") => {
            retry_while_pending(|| charge(&s, "garbage-1", &charge_body("c-garbage", 800))).json()
        }
        _ => first.json(),
    };
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(
        completed_for_reference(&s.ledger(), c["id"].as_str().unwrap()),
        1
    );
}

#[test]
fn a_slow_payment_is_settled_by_its_webhook() {
    let s = Stack::start_with(Options {
        sandbox_args: vec!["--processing-ms".into(), "3500".into()],
        ..Options::default()
    });
    subscribe(&s, "c-slow", "basic-monthly", APPROVE);
    let r = charge(&s, "slow-1", &charge_body("c-slow", 4200));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["status"], "pending");
    let id = charge_id(&r);
    eventually(15, "the webhook to settle the charge", || {
        merchant_get(&s, &format!("/v1/charges/{id}"))["status"] == "succeeded"
    });
    assert_ledgers_agree(&s, "c-slow");
}

#[test]
fn charges_are_listed_newest_first_in_pages() {
    let s = Stack::start();
    subscribe(&s, "c-list", "basic-monthly", APPROVE);
    for i in 0..4 {
        assert_eq!(
            charge(&s, &format!("list-{i}"), &charge_body("c-list", 300 + i)).status,
            201
        );
    }
    let page1 = merchant_get(&s, "/v1/customers/c-list/charges?limit=2");
    assert_eq!(page1["hasMore"], true);
    let ids1: Vec<i64> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(ids1, [303, 302]);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let page2 = merchant_get(
        &s,
        &format!("/v1/customers/c-list/charges?limit=2&startingAfter={cursor}"),
    );
    let ids2: Vec<i64> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(ids2, [301, 300]);
    let page3 = merchant_get(
        &s,
        &format!(
            "/v1/customers/c-list/charges?limit=2&startingAfter={}",
            page2["nextCursor"].as_str().unwrap()
        ),
    );
    assert_eq!(
        page3["data"].as_array().unwrap().len(),
        1,
        "the checkout payment"
    );
    assert_eq!(page3["hasMore"], false);
    s.worker
        .get_with("/v1/customers/c-list/charges?limit=500", &merchant())
        .problem(400, "invalid-request");
    s.worker
        .get_with("/v1/charges/ch_nope", &merchant())
        .problem(404, "not-found");
}

#[test]
fn refunds_never_exceed_what_was_captured() {
    let s = Stack::start();
    at(&s, "2027-03-01T09:00:00Z");
    subscribe(&s, "c-refund", "basic-monthly", APPROVE);
    let c = charge(&s, "to-refund", &charge_body("c-refund", 10_000));
    let id = charge_id(&c);
    let refund = |key: &str, body: serde_json::Value| refund(&s, &id, key, body);
    // Partial refunds wait for the payment to settle (the provider refuses a return before).
    let r = refund("r1", json!({"amount": 4000}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["status"], "pending");
    let p = refund("r2", json!({"amount": 7000})).problem(422, "refund-exceeds-remaining");
    assert_eq!(p["refundable"], 6000);
    // Replaying a refund key refunds nothing more.
    assert_eq!(refund("r1", json!({"amount": 4000})).status, 200);
    let rest = refund("r3", json!({}));
    assert_eq!(rest.status, 202, "{}", rest.text);
    assert_eq!(rest.json()["amount"], 6000);
    refund("r4", json!({"amount": 1})).problem(422, "refund-exceeds-remaining");
    refund("r5", json!({"amount": 0})).problem(400, "validation-error");
    // The next morning the payment has settled and both go back as return orders.
    at(&s, "2027-03-02T01:00:00Z");
    eventually(60, "both refunds to be returned", || {
        tick_settled(&s, "2027-03-02T01:00:00Z");
        merchant_get(&s, &format!("/v1/charges/{id}"))["refundedAmount"] == 10_000
    });
    let after = merchant_get(&s, &format!("/v1/charges/{id}"));
    let list = merchant_get(&s, &format!("/v1/charges/{id}/refunds"));
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    // Each refund reads back as the list shows it.
    let last = list["data"][1].clone();
    assert_eq!(last["status"], "succeeded");
    let read = merchant_get(&s, &format!("/v1/refunds/{}", last["id"].as_str().unwrap()));
    assert_eq!(read, last);

    // At the provider: return orders against the purchase, summing to exactly the charge.
    let ledger = s.ledger();
    let purchase = after["providerOrderId"].as_str().unwrap();
    let returns: Vec<&serde_json::Value> = ledger["returns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["purchaseOrderId"] == purchase)
        .collect();
    assert_eq!(returns.len(), 2);
    let returned: i64 = returns
        .iter()
        .map(|o| o["amount"].as_i64().unwrap_or(0).abs())
        .sum();
    assert_eq!(returned, 10_000, "{}", ledger["returns"]);

    // A failed charge cannot be refunded.
    subscribe(&s, "c-refund-soft", "basic-monthly", SOFT_DECLINE_LATER);
    let failed = charge(&s, "failed-charge", &charge_body("c-refund-soft", 500));
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", "r-failed"));
    s.worker
        .post_with(
            &format!("/v1/charges/{}/refunds", charge_id(&failed)),
            &json!({}),
            &headers,
        )
        .problem(409, "charge-not-refundable");
}

#[test]
fn an_api_charge_the_provider_never_takes_fails_after_a_day_without_moving_money() {
    let s = Stack::start();
    tick(&s, "2027-03-01T00:00:00Z");
    subscribe(&s, "c-down", "basic-monthly", APPROVE);
    set_faults(&s, json!([{"endpoint": "create_order", "error_rate": 1.0}]));
    let r = charge(&s, "down-1", &charge_body("c-down", 900));
    assert_eq!(r.status, 202, "{}", r.text);
    let id = charge_id(&r);
    // The cron keeps trying while the provider is down...
    tick(&s, "2027-03-01T12:00:00Z");
    assert_eq!(
        merchant_get(&s, &format!("/v1/charges/{id}"))["status"],
        "pending"
    );
    // ...and gives up a day after the request, rather than charge the card days later.
    tick(&s, "2027-03-02T00:30:00Z");
    clear_faults(&s);
    let c = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(c["failureReason"], "provider_unavailable");
    tick(&s, "2027-03-03T00:00:00Z");
    assert_eq!(completed_for_reference(&s.ledger(), &id), 0);
    assert_eq!(
        merchant_get(&s, &format!("/v1/charges/{id}"))["status"],
        "failed"
    );
}
