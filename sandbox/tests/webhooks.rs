//! Webhooks: shapes, signatures, callBackUrl (once) versus console registration (retried), and
//! webhook faults.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn register(s: &Sandbox, url: &str, delays: Value) {
    let r = s.control(
        "PUT",
        "/_sandbox/webhooks",
        &json!({"url": url, "retries": true, "retry_delays_ms": delays}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn with_callback(url: &str) -> Value {
    json!({"controlFunctions": {"callBackUrl": url, "online": {"enforceTokenization": true}}})
}

#[test]
fn every_transition_is_announced_signed_with_the_documented_shape() {
    let s = start();
    let hook = s.receiver(0);
    let order = s.page_order(9900, json!({"referenceId": "ref-1", "controlFunctions": {"callBackUrl": hook.url, "online": {"enforceTokenization": true}}}));
    s.pay(&order, APPROVE);
    eventually("3 events", || hook.of_order(&order).len() == 3);
    assert_eq!(
        hook.types_of(&order),
        [
            "order.paymentinitiated",
            "order.paymentprocessed",
            "order.paymentcompleted"
        ],
        "in order, with no fault asked for"
    );
    let mut ids = HashSet::new();
    for d in hook.of_order(&order) {
        assert!(
            verify(WEBHOOK_SECRET, &d.raw, &d.signature),
            "signature of {}",
            d.raw
        );
        assert!(!verify("another-secret", &d.raw, &d.signature));
        let m = &d.body["metadata"];
        assert!(ids.insert(d.event_id().to_owned()), "unique eventIds");
        assert_eq!(d.event_id().len(), 18);
        assert_eq!(m["webhookEventId"].as_str().unwrap().len(), 18);
        assert_eq!(m["retryAttempt"], 0);
        assert!(
            m["created"].as_i64().unwrap() > 1_700_000_000_000,
            "epoch ms"
        );
        assert_eq!(m["created"], m["originalCreated"]);
        let data = &d.body["data"];
        assert_eq!(data["orderId"], order.as_str());
        assert_eq!(data["referenceId"], "ref-1");
        assert_eq!(data["merchantId"], MERCHANT);
        assert_eq!(data["paymentMethod"], "CARD");
        assert_eq!(data["truncatedPan"], "1111");
        assert_eq!(data["type"], "PURCHASE");
        assert!(data["paymentId"].is_string());
        assert!(data["transactionDetails"].is_array());
    }
    let completed = &hook.of_order(&order)[2].body["data"];
    assert_eq!(completed["paymentStatus"], "PAYMENT_COMPLETED");
    assert_eq!(completed["amount"], "9900", "a string in this event");
    assert_eq!(
        hook.of_order(&order)[0].body["data"]["amount"],
        9900,
        "a number in that one"
    );

    // A decline carries failedTransactionDetails.
    let declined = s.page_order(9900, with_callback(&hook.url));
    s.pay(&declined, "4000000000000002");
    eventually("the failure", || hook.of_order(&declined).len() == 3);
    let failed = &hook.of_order(&declined)[2].body;
    assert_eq!(failed["eventType"], "order.paymentfailed");
    assert_eq!(failed["data"]["paymentStatus"], "PAYMENT_FAILED");
    assert_eq!(failed["data"]["failureReason"], "DENIED");
    assert_eq!(
        failed["data"]["failedTransactionDetails"][0]["failureReason"],
        "DENIED"
    );

    // Cancelling an order in flight: the payment's cancellation, then the order's.
    let token = s.token_of(&order);
    let mit = conclusive("a cancel of an order in flight", 1500, |delay| {
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "slow", "delay_ms": delay}),
        );
        let r = s.create_order(&json!({"terminal$id": MIT, "orderLines": [{"id": "a", "name": "A", "quantity": 1,
            "amount": {"total": 700, "currency": "752"}}], "controlFunctions": {"callBackUrl": hook.url}}));
        let mit = r.body["data"]["orderId"].as_str().unwrap().to_owned();
        let before_charge = Instant::now();
        s.charge(&mit, &token);
        let cancel = s.api("DELETE", &format!("/orders/{mit}"), None);
        if !within(before_charge, delay) && cancel.body["status"] != "SUCCESS" {
            return None;
        }
        assert_eq!(cancel.body["status"], "SUCCESS", "{}", cancel.text);
        Some(mit)
    });
    eventually("the cancellation", || hook.of_order(&mit).len() >= 3);
    assert_eq!(
        hook.types_of(&mit),
        [
            "order.paymentinitiated",
            "order.paymentcancelled",
            "order.cancelled"
        ]
    );
    // Its processing ends at its next step, which finds it cancelled. Anything it sent before
    // ending would be queued for the callback URL ahead of the refund's events below (one queue
    // per URL, first attempts in order), so once those arrived, nothing more can come.
    s.wait_steps_done(&mit);

    // A refund (of the settled purchase) completes with an order.paymentcompleted of type RETURN.
    s.settle_all();
    let r = s.create_order(&json!({"terminal$id": PAGE, "orderLines": [{"id": "r", "name": "Refund", "quantity": -1,
        "amount": {"total": 2500, "currency": "752"}, "purchaseOrderId": order}],
        "totalOrderAmount": {"total": -2500, "currency": "752"},
        "controlFunctions": {"callBackUrl": hook.url, "initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}));
    let refund = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    eventually("the refund", || hook.of_order(&refund).len() == 3);
    let done = &hook.of_order(&refund)[2].body;
    assert_eq!(done["eventType"], "order.paymentcompleted");
    assert_eq!(done["data"]["type"], "RETURN");
    assert_eq!(done["data"]["paymentMethod"], "CARD_NP");
    assert_eq!(done["data"]["amount"], "2500");
    assert_eq!(
        hook.of_order(&mit).len(),
        3,
        "nothing after the cancellation"
    );
}

#[test]
fn callbacks_are_sent_once_and_console_webhooks_retried_with_backoff() {
    let s = start();
    let callback = s.receiver(usize::MAX);
    // Each event fails 3 times at the console, then succeeds on the last retry.
    let console = s.receiver(3);
    register(&s, &console.url, json!([100, 200, 400]));
    let order = s.page_order(9900, with_callback(&callback.url));
    // (That webhooks never hold up the API is tested with a receiver that never answers.)
    s.pay(&order, APPROVE);
    eventually("3 events × 4 attempts", || {
        console.of_order(&order).len() == 12
    });

    // The callback answered 500 every time and was never retried. Retries run on their own,
    // after no later event, so nothing proves that one will not come: a short look only, which
    // can miss a wrong retry on a slow machine but never fails a right sandbox.
    std::thread::sleep(Duration::from_millis(200));
    let calls = callback.of_order(&order);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|d| d.retry_attempt() == 0));

    let console_calls = console.of_order(&order);
    let mut by_event: Vec<Vec<&Delivery>> = Vec::new();
    for d in &console_calls {
        match by_event
            .iter_mut()
            .find(|e| e[0].event_id() == d.event_id())
        {
            Some(e) => e.push(d),
            None => by_event.push(vec![d]),
        }
    }
    assert_eq!(by_event.len(), 3);
    for attempts in &by_event {
        let numbers: Vec<i64> = attempts.iter().map(|d| d.retry_attempt()).collect();
        assert_eq!(numbers, [0, 1, 2, 3]);
        for (i, min_gap) in [100, 200, 400].into_iter().enumerate() {
            let gap = attempts[i + 1].at - attempts[i].at;
            assert!(
                gap >= Duration::from_millis(min_gap - 5),
                "gap {i}: {gap:?}"
            );
        }
        // A retry is the same event, re-signed, with its original creation time kept.
        let first = &attempts[0].body["metadata"];
        let last = &attempts[3].body["metadata"];
        assert_eq!(first["originalCreated"], last["originalCreated"]);
        assert!(last["created"].as_i64() > first["created"].as_i64());
        assert!(
            attempts
                .iter()
                .all(|d| verify(WEBHOOK_SECRET, &d.raw, &d.signature))
        );
    }
}

#[test]
fn console_retries_are_bounded_and_can_be_turned_off() {
    let s = start();
    let never = s.receiver(usize::MAX);
    register(&s, &never.url, json!([20, 20, 20]));
    let order = s.page_order(9900, json!({}));
    s.pay(&order, "4000000000000002");
    eventually("all attempts", || never.of_order(&order).len() == 12);
    // A fifth attempt would come 20 ms after the fourth. Retries run on their own, so no later
    // event proves it will not: a short look (see above).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        never.of_order(&order).len(),
        12,
        "1 + 3 attempts per event, no more"
    );

    let r = s.control(
        "PUT",
        "/_sandbox/webhooks",
        &json!({"url": never.url, "retries": false}),
    );
    assert_eq!(r.body["retry_delays_ms"], json!([]));
    let order = s.page_order(9900, json!({}));
    s.pay(&order, APPROVE);
    eventually("3 events", || never.of_order(&order).len() == 3);
    // No retry: a short look, as above.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(never.of_order(&order).len(), 3);

    // Defaults: about 5 s, then 1, 5 and 10 minutes.
    let r = s.control("PUT", "/_sandbox/webhooks", &json!({"url": never.url}));
    assert_eq!(
        r.body["retry_delays_ms"],
        json!([5000, 60000, 300000, 600000])
    );
    assert_eq!(
        s.call("DELETE", "/_sandbox/webhooks", None, false).status,
        204
    );
    // Unregistered: the order's own callback, to the same URL, is all that arrives. Callback and
    // console copies of an event share that URL's queue, callback first, so a console copy of
    // the first event would have arrived before the callback of the last one.
    let order = s.page_order(9900, with_callback(&never.url));
    s.pay(&order, APPROVE);
    eventually("the last callback", || {
        never
            .types_of(&order)
            .contains(&"order.paymentcompleted".to_owned())
    });
    assert_eq!(
        never.types_of(&order),
        [
            "order.paymentinitiated",
            "order.paymentprocessed",
            "order.paymentcompleted"
        ],
        "unregistered: callbacks only"
    );
}

#[test]
fn a_receiver_that_never_answers_does_not_slow_the_api() {
    let s = start();
    // Accepts connections (the kernel's backlog) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    register(&s, &url, json!([10]));
    // The first delivery holds the URL's queue until the attempt gives up; a payment that waited
    // for any of its webhooks would take at least that long. That bound, not a guess at how
    // fast the machine is, is what each payment is held to.
    for _ in 0..3 {
        let order = s.page_order(9900, with_callback(&url));
        let started = Instant::now();
        assert_eq!(
            s.pay(&order, APPROVE).body["paymentStatus"],
            "PAYMENT_COMPLETED"
        );
        assert!(
            started.elapsed() < psp_sandbox::webhooks::ATTEMPT_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
    }
    // Behind the first attempt, the rest wait their turn on the queue; a harness sees them.
    let queued = s.get("/_sandbox/webhooks").body["queued"].as_u64().unwrap();
    assert!(queued >= 5, "{queued} first attempts waiting");
}

#[test]
fn webhook_faults_drop_duplicate_and_reorder() {
    let s = start();
    let hook = s.receiver(0);

    s.set_faults(json!({"rules": [{"endpoint": "webhook", "drop_rate": 1.0}]}));
    let dropped = s.page_order(9900, with_callback(&hook.url));
    s.pay(&dropped, APPROVE);

    s.set_faults(json!({"rules": [{"endpoint": "webhook", "duplicate_rate": 1.0}]}));
    let doubled = s.page_order(9900, with_callback(&hook.url));
    s.pay(&doubled, APPROVE);
    eventually("duplicates", || hook.of_order(&doubled).len() == 6);
    let ids: Vec<String> = hook
        .of_order(&doubled)
        .iter()
        .map(|d| d.event_id().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "each event twice, same eventId"
    );
    assert!(
        hook.of_order(&dropped).is_empty(),
        "dropped events are never sent"
    );

    // Reorder: the first event is held back until the next one of the order went out, or for
    // at most a second. Only a machine so slow that the next event took longer can see them in
    // order, and then the held one arrives a second or more after the payment started.
    conclusive("a reordered pair", 1000, |_| {
        s.set_faults(json!({"rules": [{"endpoint": "webhook", "reorder": true, "times": 1}]}));
        let reordered = s.page_order(9900, with_callback(&hook.url));
        let before_pay = Instant::now();
        s.pay(&reordered, APPROVE);
        eventually("3 events", || hook.of_order(&reordered).len() == 3);
        let deliveries = hook.of_order(&reordered);
        let released_by_time = deliveries[0].at - before_pay >= psp_sandbox::webhooks::REORDER_HOLD;
        if deliveries[0].event_type() == "order.paymentinitiated" && released_by_time {
            return None;
        }
        assert_eq!(
            hook.types_of(&reordered),
            [
                "order.paymentprocessed",
                "order.paymentinitiated",
                "order.paymentcompleted"
            ]
        );
        Some(())
    });

    // Latency holds each delivery back, one after the other on the URL's queue.
    let latency = Duration::from_millis(300);
    s.set_faults(json!({"rules": [{"endpoint": "webhook", "latency_ms": 300}]}));
    let late = s.page_order(9900, with_callback(&hook.url));
    let before_pay = Instant::now();
    s.pay(&late, APPROVE);
    eventually("late events", || hook.of_order(&late).len() == 3);
    let mut earliest = before_pay;
    for d in hook.of_order(&late) {
        assert!(
            d.at - earliest >= latency,
            "{} came {:?} after the one before it",
            d.event_type(),
            d.at - earliest
        );
        earliest = d.at;
    }
}

/// `answer_latency_ms`: the payment is made at once and its answer comes late, so the completion
/// webhook reaches the merchant before the answer to `POST /payments` does.
#[test]
fn a_late_answer_is_overtaken_by_the_webhooks_of_its_work() {
    let s = start();
    let hook = s.receiver(0);
    let order = s.page_order(9900, with_callback(&hook.url));
    s.pay(&order, APPROVE);
    let token = s.token_of(&order);
    s.set_faults(json!({"rules": [{"endpoint": "initiate_payment", "answer_latency_ms": 1500}]}));
    let r = s.create_order(&json!({"terminal$id": MIT, "orderLines": [{"id": "a", "name": "A", "quantity": 1,
        "amount": {"total": 700, "currency": "752"}}], "controlFunctions": {"callBackUrl": hook.url}}));
    let mit = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    let before = Instant::now();
    let answer = s.charge(&mit, &token);
    assert_eq!(answer.body["status"], "SUCCESS", "{}", answer.text);
    assert!(before.elapsed() >= Duration::from_millis(1500));
    assert!(
        hook.types_of(&mit)
            .iter()
            .any(|t| t == "order.paymentcompleted"),
        "the completion came before the answer: {:?}",
        hook.types_of(&mit)
    );
    for bad in [
        json!({"rules": [{"endpoint": "webhook", "answer_latency_ms": 10}]}),
        json!({"rules": [{"endpoint": "initiate_payment", "answer_latency_ms": 0}]}),
    ] {
        assert_eq!(
            s.control("PUT", "/_sandbox/faults", &bad).status,
            400,
            "{bad}"
        );
    }
}
