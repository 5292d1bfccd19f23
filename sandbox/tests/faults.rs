//! Fault injection: reproducible for a seed, and explicit about whether the call's work was done.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn small_order(reference: &str) -> Value {
    json!({"terminal$id": MIT, "referenceId": reference,
        "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 500, "currency": "752"}}]})
}

fn orders_with_reference(s: &Sandbox, reference: &str) -> usize {
    s.get(&format!("/_sandbox/ledger?referenceId={reference}"))
        .body["orders"]
        .as_array()
        .unwrap()
        .len()
}

/// What 40 create-order calls meet under a seeded rule.
fn outcomes(s: &Sandbox, seed: u64) -> Vec<(u16, String)> {
    s.set_faults(json!({"seed": seed, "rules": [
        {"endpoint": "create_order", "error_rate": 0.25, "business_error_rate": 0.25}]}));
    (0..40)
        .map(|_| {
            let r = s.create_order(&small_order("seeded"));
            (r.status, r.body["status"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_faults_in_the_same_order() {
    let s = start();
    let first = outcomes(&s, 7);
    assert_eq!(
        first,
        outcomes(&s, 7),
        "reconfiguring restarts the sequence"
    );
    let other = start();
    assert_eq!(
        first,
        outcomes(&other, 7),
        "another sandbox, the same sequence"
    );
    let successes = first.iter().filter(|o| o.1 == "SUCCESS").count();
    assert_eq!(
        orders_with_reference(&other, "seeded"),
        successes,
        "500 and business errors created nothing"
    );
    assert_ne!(first, outcomes(&s, 8), "another seed, another sequence");
    let count = |f: &dyn Fn(&(u16, String)) -> bool| first.iter().filter(|o| f(o)).count();
    assert!(count(&|o| o.0 == 500) >= 3, "{first:?}");
    assert!(count(&|o| o.0 == 201 && o.1 == "ERROR") >= 3, "{first:?}");
    assert!(count(&|o| o.1 == "SUCCESS") >= 10, "{first:?}");
    assert_eq!(
        s.call("DELETE", "/_sandbox/faults", None, false).status,
        204
    );
    assert_eq!(
        s.create_order(&small_order("after")).body["status"],
        "SUCCESS"
    );
}

#[test]
fn errors_say_whether_the_work_was_done() {
    let s = start();
    let one = |fault: &str| {
        s.set_faults(json!({"rules": [{"endpoint": "create_order", "fault": fault, "times": 1, "timeout_ms": 300}]}));
        let started = Instant::now();
        let r = s.create_order(&small_order(fault));
        (r, started.elapsed(), orders_with_reference(&s, fault))
    };

    let (r, _, kept) = one("error");
    assert_eq!(
        (r.status, &r.body["status"], kept),
        (500, &json!("ERROR"), 0)
    );
    let (r, _, kept) = one("error_after");
    assert_eq!((r.status, kept), (500, 1), "done, then 500");
    let (r, _, kept) = one("business_error");
    assert_eq!(r.status, 201);
    assert!(r.is_business_error("OR_0001"), "{}", r.text);
    assert_eq!(kept, 0);
    let (r, took, kept) = one("timeout");
    assert_eq!((r.status, kept), (504, 1), "done, then withheld");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let (r, took, kept) = one("timeout_before");
    assert_eq!((r.status, kept), (504, 0), "withheld, nothing done");
    assert!(took >= Duration::from_millis(300));
    // Each rule had times 1: the next call is clean.
    assert_eq!(
        s.create_order(&small_order("clean")).body["status"],
        "SUCCESS"
    );
}

#[test]
fn a_payment_whose_answer_was_lost_still_happened() {
    let s = start();
    let token = s.token_for(APPROVE);
    let mit = s.mit_order(9900);
    s.set_faults(
        json!({"rules": [{"endpoint": "initiate_payment", "error_after_rate": 1.0, "times": 1}]}),
    );
    let lost = s.charge(&mit, &token);
    assert_eq!(lost.status, 500);
    assert!(lost.body.get("data").is_none(), "the paymentId is lost");
    // Reconciling by status finds the payment; a blind retry is refused while it runs or after.
    let st = s.wait_final(&mit);
    assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["payments"].as_array().unwrap().len(), 1);
    assert_eq!(s.charge(&mit, &token).body["status"], "ERROR");

    s.set_faults(json!({"rules": [{"endpoint": "initiate_payment", "business_error_rate": 1.0}]}));
    let mit = s.mit_order(9900);
    let r = s.charge(&mit, &token);
    assert_eq!(r.body["message"], "PS_0001: Payment initiation failed");
    assert_eq!(r.status, 201);
    assert_eq!(s.status(&mit)["payments"], json!([]), "nothing was done");
}

#[test]
fn rules_match_their_endpoint_count_down_and_add_latency() {
    let s = start();
    let page = s.page_order(9900, json!({}));
    s.set_faults(json!({"rules": [
        {"endpoint": "tokens", "fault": "error", "times": 2},
        {"endpoint": "order_status", "latency_ms": 250}]}));
    assert_eq!(
        s.api("GET", &format!("/orders/{page}/tokens"), None).status,
        500
    );
    assert_eq!(
        s.create_order(&small_order("other endpoint")).body["status"],
        "SUCCESS"
    );
    let current = s.get("/_sandbox/faults").body;
    assert_eq!(current["rules"][0]["times"], 1, "{current}");
    assert_eq!(
        s.api("GET", &format!("/orders/{page}/tokens"), None).status,
        500
    );
    assert_eq!(
        s.api("GET", &format!("/orders/{page}/tokens"), None).status,
        200
    );
    let started = Instant::now();
    assert_eq!(
        s.api("GET", &format!("/orders/{page}/status"), None).status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    for bad in [
        json!({"rules": [{"endpoint": "create_order", "times": 1}]}),
        json!({"rules": [{"endpoint": "nowhere", "error_rate": 1}]}),
        json!({"rules": [{"error_rate": 2}]}),
        json!({"rules": [{"eror_rate": 1}]}),
    ] {
        assert_eq!(
            s.control("PUT", "/_sandbox/faults", &bad).status,
            400,
            "{bad}"
        );
    }
}

#[test]
fn status_reads_can_lag_behind_the_real_outcome() {
    let s = start();
    conclusive("a status read within the lag", 400, |lag| {
        let page = s.page_order(9900, json!({}));
        s.set_faults(json!({"rules": [{"endpoint": "order_status", "status_lag_ms": lag}]}));
        let paid = Instant::now();
        s.pay(&page, APPROVE);
        let early = s.status(&page);
        // Nothing happened to the order before `paid`, so a read that ended less than the lag
        // after it looks back to before the payment. (The sandbox's clock counts whole
        // milliseconds: a millisecond of margin.)
        if !within(paid, lag - 1) && early["orderStatus"] != "PENDING" {
            return None;
        }
        assert_eq!(early["orderStatus"], "PENDING", "{early}");
        assert!(early.get("transactions").is_none());
        eventually("the lagging status to catch up", || {
            s.status(&page)["orderStatus"] == "PAYMENT_COMPLETED"
        });
        assert!(paid.elapsed() >= Duration::from_millis(lag));
        // Tokens are not subject to the status lag.
        assert_eq!(s.tokens(&page).as_array().unwrap().len(), 1);
        Some(())
    });
}

#[test]
fn status_lag_hides_a_decline_the_card_already_gave() {
    let s = start();
    let hook = s.receiver(0);
    s.control(
        "PUT",
        "/_sandbox/webhooks",
        &json!({"url": hook.url, "retries": false}),
    );
    let token = s.token_for("4000000000009995");
    let ledger_status = |order: &str| {
        s.get(&format!("/_sandbox/ledger?orderId={order}")).body["payments"][0]["status"].clone()
    };

    // A lag longer than the order's life: the status shows no payment at all, as long as the
    // reads end less than the lag after the charge started (with a millisecond of margin for the
    // sandbox's whole-millisecond clock).
    conclusive("status reads within the lag", 2000, |lag| {
        s.set_faults(json!({"rules": [{"endpoint": "order_status", "status_lag_ms": lag}]}));
        let absent = s.mit_order_with(9900, "lag-absent");
        let before_charge = Instant::now();
        s.charge(&absent, &token);
        eventually("the card to decline", || {
            ledger_status(&absent) == "PAYMENT_FAILED"
        });
        let st = s.status(&absent);
        // The webhook tells the truth first.
        eventually("order.paymentfailed", || {
            hook.types_of(&absent)
                .contains(&"order.paymentfailed".to_owned())
        });
        let later = s.status(&absent);
        let hidden = |st: &Value| st["orderStatus"] == "PENDING" && st["payments"] == json!([]);
        let both_hidden = hidden(&st) && hidden(&later);
        if !within(before_charge, lag - 1) && !both_hidden {
            return None;
        }
        assert!(hidden(&st), "{st}");
        assert!(hidden(&later), "{later}");
        eventually("the lagging status to show the decline", || {
            s.status(&absent)["orderStatus"] == "PAYMENT_FAILED"
        });
        let st = s.status(&absent);
        assert_eq!(st["payments"][0]["failureReason"], "DENIED_NO_FUNDS");
        Some(())
    });

    // A lag shorter than the processing: read soon after the decline, the status looks back to
    // a moment when the payment was in flight. The decline came after the last ledger read that
    // did not show it; a status read that ended less than the lag after that read looks back to
    // before the decline, and (the processing being longer than the lag) after the payment began.
    conclusive("a status read soon after the decline", 2500, |lag| {
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS",
                    "delay_ms": lag * 6 / 5, "times": 1}),
        );
        s.set_faults(json!({"rules": [{"endpoint": "order_status", "status_lag_ms": lag}]}));
        let in_flight = s.mit_order_with(9900, "lag-in-flight");
        s.charge(&in_flight, &token);
        let mut declined_after = Instant::now();
        eventually_after(
            "the slow card to decline",
            Duration::from_millis(lag * 6 / 5),
            || {
                let read = Instant::now();
                let declined = ledger_status(&in_flight) == "PAYMENT_FAILED";
                if !declined {
                    declined_after = read;
                }
                declined
            },
        );
        let st = s.status(&in_flight);
        let shown = step_of(&st["payments"][0]["paymentStatus"]);
        let looks_in_flight = st["orderStatus"] == "PAYMENT_INITIATED" && shown < FINAL;
        if !within(declined_after, lag - 1) && !looks_in_flight {
            return None;
        }
        assert_eq!(st["orderStatus"], "PAYMENT_INITIATED", "{st}");
        assert!(shown < FINAL, "{st}");
        assert!(st["payments"][0]["failureReason"].is_null());
        eventually("the lagging status to show the decline", || {
            s.status(&in_flight)["orderStatus"] == "PAYMENT_FAILED"
        });
        Some(())
    });
}
