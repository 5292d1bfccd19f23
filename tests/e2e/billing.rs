//! The billing engine, walked through months with the test clock: renewals, dunning,
//! installments, metered usage, cancellation, and ticks that overlap or die halfway.

use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};
use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{Options, Stack};

/// Starts business time at `at`, before the customer subscribes.
fn clock_at(s: &Stack, at: &str) {
    tick(s, at);
}

fn period_end(s: &Stack, sub: &str) -> String {
    subscription(s, sub)["currentPeriodEnd"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn renewal_charges(s: &Stack, customer: &str) -> Vec<Value> {
    let mut v: Vec<Value> = charges_of(s, customer)
        .into_iter()
        .filter(|c| c["kind"] != "checkout")
        .collect();
    v.sort_by_key(|c| c["periodIndex"].as_i64());
    v
}

fn token_payments(s: &Stack, order_id: &str) -> (i64, i64) {
    let ledger = s.ledger();
    let token = token_of_order(&ledger, order_id);
    let t = &ledger["payments_per_token"][&token];
    (
        t["completed"].as_i64().unwrap_or(0),
        t["failed"].as_i64().unwrap_or(0),
    )
}

fn set_behaviour(s: &Stack, order_id: &str, behaviour: Value) {
    let token = token_of_order(&s.ledger(), order_id);
    let r = s
        .sandbox
        .put(&format!("/_sandbox/tokens/{token}/behaviour"), &behaviour);
    assert!(r.status < 300, "{}", r.text);
}

#[test]
fn a_monthly_subscription_renews_thirteen_times_from_a_january_31_anchor() {
    let s = Stack::start();
    clock_at(&s, "2027-01-31T10:00:00Z");
    let sub = subscribe(&s, "m-13", "basic-monthly", APPROVE);
    let expected_starts = [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
        "2027-07-31",
        "2027-08-31",
        "2027-09-30",
        "2027-10-31",
        "2027-11-30",
        "2027-12-31",
        "2028-01-31",
        "2028-02-29",
    ];
    for (i, start) in expected_starts.iter().enumerate() {
        let due = period_end(&s, &sub.subscription_id);
        assert!(
            due.starts_with(start),
            "renewal {}: due {due}, expected {start}",
            i + 1
        );
        let report = tick(&s, &due);
        assert_eq!(report["periodsClosed"], 1, "{report}");
        // A second tick at the same instant closes nothing; on a busy machine it may be the one
        // that reads the payment's outcome.
        let again = tick(&s, &due);
        assert_eq!(again["periodsClosed"], 0, "{again}");
        eventually(30, "the renewal to settle", || {
            let settled = report["succeeded"].as_u64().unwrap_or(0) == 1
                || renewal_charges(&s, "m-13")
                    .iter()
                    .filter(|c| c["status"] == "succeeded")
                    .count()
                    == i + 1;
            if !settled {
                tick(&s, &due);
            }
            settled
        });
    }
    let renewals = renewal_charges(&s, "m-13");
    assert_eq!(renewals.len(), 13);
    assert!(
        renewals
            .iter()
            .all(|c| c["status"] == "succeeded" && c["amount"] == 9900)
    );
    let periods: Vec<i64> = renewals
        .iter()
        .map(|c| c["periodIndex"].as_i64().unwrap())
        .collect();
    assert_eq!(periods, (1..=13).collect::<Vec<_>>());
    assert_eq!(token_payments(&s, &sub.order_id), (13, 0));
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "active");
    assert!(
        state["currentPeriodEnd"]
            .as_str()
            .unwrap()
            .starts_with("2028-03-31T10:00:00")
    );
    assert_ledgers_agree(&s, "m-13");
}

#[test]
fn a_soft_declining_card_goes_through_dunning_and_recovers() {
    let s = Stack::start();
    clock_at(&s, "2027-03-01T08:00:00Z");
    let sub = subscribe(&s, "m-dun", "basic-monthly", SOFT_DECLINE_LATER);
    let due = period_end(&s, &sub.subscription_id);
    tick_settled(&s, &due);
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "past_due", "{state}");
    let failed = &renewal_charges(&s, "m-dun")[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failureReason"], "DENIED_NO_FUNDS");
    let retry1 = failed["nextRetryAt"].as_str().unwrap().to_owned();
    assert!(
        retry1.starts_with("2027-04-02"),
        "first retry a day later: {retry1}"
    );

    // Nothing happens before the retry is due.
    let early = tick_settled(&s, "2027-04-01T20:00:00Z");
    assert_eq!(early["chargesDriven"], 0, "{early}");
    tick_settled(&s, &retry1);
    let retry2 = renewal_charges(&s, "m-dun")[0]["nextRetryAt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        retry2.starts_with("2027-04-04"),
        "second retry on day 3: {retry2}"
    );

    // The customer's bank lets the next one through.
    set_behaviour(&s, &sub.order_id, json!({"outcome": "approve"}));
    tick_settled(&s, &retry2);
    let charge = &renewal_charges(&s, "m-dun")[0];
    assert_eq!(charge["status"], "succeeded", "{charge}");
    assert_eq!(charge["attempts"], 3);
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "active");
    assert_eq!(token_payments(&s, &sub.order_id), (1, 2));
    // All three attempts went to the same MIT order.
    let ledger = s.ledger();
    let orders: Vec<&Value> = ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["referenceId"] == charge["id"])
        .collect();
    assert_eq!(orders.len(), 1);
    let events = merchant_get(
        &s,
        &format!("/v1/subscriptions/{}/events", sub.subscription_id),
    );
    let path: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["active", "past_due", "active"]);
    assert_ledgers_agree(&s, "m-dun");
}

#[test]
fn dunning_gives_up_after_the_schedule_and_leaves_the_subscription_unpaid() {
    let s = Stack::start();
    clock_at(&s, "2027-05-10T12:00:00Z");
    let sub = subscribe(&s, "m-unpaid", "basic-monthly", SOFT_DECLINE_LATER);
    tick_settled(&s, &period_end(&s, &sub.subscription_id));
    for _ in 0..4 {
        let at = renewal_charges(&s, "m-unpaid")[0]["nextRetryAt"]
            .as_str()
            .unwrap()
            .to_owned();
        tick_settled(&s, &at);
    }
    let charge = &renewal_charges(&s, "m-unpaid")[0];
    assert_eq!(charge["status"], "failed");
    assert!(charge["nextRetryAt"].is_null(), "{charge}");
    assert_eq!(charge["attempts"], 5, "the first try and four retries");
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "unpaid");
    // Months later: no more attempts, no renewals.
    tick_settled(&s, "2027-09-01T00:00:00Z");
    assert_eq!(token_payments(&s, &sub.order_id), (0, 5));
    assert_eq!(renewal_charges(&s, "m-unpaid").len(), 1);
    assert_ledgers_agree(&s, "m-unpaid");
}

#[test]
fn a_hard_decline_is_never_retried() {
    let s = Stack::start();
    clock_at(&s, "2027-06-01T00:00:00Z");
    let sub = subscribe(&s, "m-hard", "basic-monthly", HARD_DECLINE_LATER);
    tick_settled(&s, &period_end(&s, &sub.subscription_id));
    let charge = &renewal_charges(&s, "m-hard")[0];
    assert_eq!(charge["declineCategory"], "hard");
    assert!(charge["nextRetryAt"].is_null());
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "unpaid");
    assert!(
        state["statusReason"].as_str().unwrap().contains("new card"),
        "{state}"
    );
    tick_settled(&s, "2027-07-15T00:00:00Z");
    tick_settled(&s, "2027-08-15T00:00:00Z");
    assert_eq!(token_payments(&s, &sub.order_id), (0, 1));

    // A new card on file brings it back: the outstanding charge is retried with it.
    subscribe(&s, "m-hard", "weekly", APPROVE);
    tick_settled(&s, "2027-08-15T00:00:01Z");
    let charge = &renewal_charges(&s, "m-hard")[0];
    assert_eq!(charge["status"], "succeeded", "{charge}");
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
    assert_ledgers_agree(&s, "m-hard");
}

#[test]
fn four_installments_add_up_to_the_price_and_then_stop() {
    let s = Stack::start();
    clock_at(&s, "2027-01-15T09:00:00Z");
    let sub = subscribe_with(&s, "m-inst", "course", APPROVE, json!({"installments": 4}));
    for _ in 0..3 {
        tick_settled(&s, &period_end(&s, &sub.subscription_id));
    }
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "completed", "{state}");
    assert!(state["nextChargeAt"].is_null());
    let all = charges_of(&s, "m-inst");
    let amounts: Vec<i64> = {
        let mut v: Vec<(i64, i64)> = all
            .iter()
            .map(|c| {
                (
                    c["periodIndex"].as_i64().unwrap(),
                    c["amount"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, a)| a).collect()
    };
    // 999.99 kr in four: equal shares, the remainder on the last, not a öre lost.
    assert_eq!(amounts, [24_999, 24_999, 24_999, 25_002]);
    assert!(all.iter().all(|c| c["status"] == "succeeded"));
    tick_settled(&s, "2028-01-01T00:00:00Z");
    assert_eq!(
        charges_of(&s, "m-inst").len(),
        4,
        "nothing after the last installment"
    );
    assert_eq!(token_payments(&s, &sub.order_id), (3, 0));
    assert_ledgers_agree(&s, "m-inst");
}

fn usage(s: &Stack, key: &str, body: &Value) -> crate::http::Reply {
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", key));
    s.worker.post_with("/v1/usage", body, &headers)
}

#[test]
fn metered_usage_is_billed_once_with_the_next_base_fee() {
    let s = Stack::start();
    clock_at(&s, "2027-02-01T00:00:00Z");
    let sub = subscribe(&s, "m-meter", "api-metered", APPROVE);
    tick_settled(&s, "2027-02-10T00:00:00Z");
    let ten = json!({"subscriptionId": sub.subscription_id, "quantity": 10, "timestamp": "2027-02-05T12:00:00Z"});
    assert_eq!(usage(&s, "u-1", &ten).status, 201);
    // The reporter retried: same key, same usage, counted once.
    let dup = usage(&s, "u-1", &ten);
    assert_eq!(dup.status, 200, "{}", dup.text);
    let five = json!({"subscriptionId": sub.subscription_id, "quantity": 5, "timestamp": "2027-02-09T00:00:00Z"});
    assert_eq!(usage(&s, "u-2", &five).status, 201);
    usage(&s, "u-1", &five).problem(422, "idempotency-key-reused");
    usage(&s, "u-3", &json!({"subscriptionId": sub.subscription_id, "quantity": -1, "timestamp": "2027-02-09T00:00:00Z"}))
        .problem(400, "validation-error");

    tick_settled(&s, &period_end(&s, &sub.subscription_id));
    let renewal = &renewal_charges(&s, "m-meter")[0];
    assert_eq!(renewal["amount"], 4900 + 25 * 15, "{renewal}");
    assert_eq!(renewal["status"], "succeeded");
    // The closed period takes no more usage; the new one does.
    usage(&s, "u-4", &json!({"subscriptionId": sub.subscription_id, "quantity": 1, "timestamp": "2027-02-20T00:00:00Z"}))
        .problem(409, "period-closed");
    // Not a metered plan: refused.
    let basic = subscribe(&s, "m-meter-basic", "basic-monthly", APPROVE);
    usage(&s, "u-5", &json!({"subscriptionId": basic.subscription_id, "quantity": 1, "timestamp": "2027-02-20T00:00:00Z"}))
        .problem(409, "not-metered");
    assert_ledgers_agree(&s, "m-meter");
}

#[test]
fn cancel_at_period_end_stops_the_next_renewal() {
    let s = Stack::start();
    clock_at(&s, "2027-04-01T00:00:00Z");
    let sub = subscribe(&s, "m-cancel", "basic-monthly", APPROVE);
    tick_settled(&s, &period_end(&s, &sub.subscription_id));
    let r = s.worker.post_with(
        &format!("/v1/subscriptions/{}/cancel", sub.subscription_id),
        &json!({"atPeriodEnd": true}),
        &merchant(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["cancelAtPeriodEnd"], true);
    assert!(r.json()["nextChargeAt"].is_null());
    tick_settled(&s, &period_end(&s, &sub.subscription_id));
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["status"], "canceled");
    tick_settled(&s, "2027-12-01T00:00:00Z");
    assert_eq!(
        renewal_charges(&s, "m-cancel").len(),
        1,
        "only the renewal before the cancel"
    );
    // Nothing more can happen to it.
    s.worker
        .post_with(
            &format!("/v1/subscriptions/{}/pause", sub.subscription_id),
            &json!({}),
            &merchant(),
        )
        .problem(409, "invalid-subscription-state");
    assert_ledgers_agree(&s, "m-cancel");
}

#[test]
fn pause_skips_periods_and_a_plan_change_applies_from_the_next_period() {
    let s = Stack::start();
    clock_at(&s, "2027-01-10T00:00:00Z");
    let sub = subscribe(&s, "m-pause", "basic-monthly", APPROVE);
    let path = format!("/v1/subscriptions/{}", sub.subscription_id);
    assert_eq!(
        s.worker
            .post_with(&format!("{path}/pause"), &json!({}), &merchant())
            .status,
        200
    );
    tick_settled(&s, "2027-04-20T00:00:00Z");
    assert!(
        renewal_charges(&s, "m-pause").is_empty(),
        "no charge while paused"
    );
    let resumed = s
        .worker
        .post_with(&format!("{path}/resume"), &json!({}), &merchant())
        .json();
    assert_eq!(resumed["status"], "active");
    assert!(
        resumed["currentPeriodEnd"]
            .as_str()
            .unwrap()
            .starts_with("2027-05-10"),
        "{resumed}"
    );

    let changed = s.worker.post_with(
        &format!("{path}/change-plan"),
        &json!({"planId": "pro-yearly"}),
        &merchant(),
    );
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json()["pendingPlanId"], "pro-yearly");
    tick_settled(&s, "2027-05-10T00:00:00Z");
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(state["planId"], "pro-yearly");
    assert!(
        state["currentPeriodEnd"]
            .as_str()
            .unwrap()
            .starts_with("2028-05-10"),
        "{state}"
    );
    let renewals = renewal_charges(&s, "m-pause");
    assert_eq!(renewals.len(), 1);
    assert_eq!(renewals[0]["amount"], 99_000);
    assert_ledgers_agree(&s, "m-pause");
}

#[test]
fn overlapping_ticks_charge_each_period_once() {
    let s = Stack::start();
    clock_at(&s, "2027-03-03T00:00:00Z");
    let subs: Vec<Subscribed> = (0..6)
        .map(|i| subscribe(&s, &format!("m-overlap-{i}"), "weekly", APPROVE))
        .collect();
    let due = period_end(&s, &subs[0].subscription_id);
    // Two test-clock ticks and the real cron trigger, all at once.
    std::thread::scope(|scope| {
        let a = scope.spawn(|| tick(&s, &due));
        let b = scope.spawn(|| tick(&s, &due));
        let c = scope.spawn(|| s.worker.get("/__scheduled?cron=*+*+*+*+*"));
        a.join().unwrap();
        b.join().unwrap();
        c.join().unwrap();
    });
    // Whatever one tick left in flight, the next settles.
    tick(&s, &due);
    for (i, sub) in subs.iter().enumerate() {
        let customer = format!("m-overlap-{i}");
        let renewals = renewal_charges(&s, &customer);
        assert_eq!(renewals.len(), 1, "{customer}: {renewals:?}");
        assert_eq!(renewals[0]["status"], "succeeded");
        assert_eq!(token_payments(&s, &sub.order_id), (1, 0), "{customer}");
        assert_ledgers_agree(&s, &customer);
    }
}

#[test]
fn a_tick_killed_halfway_is_finished_by_the_next_one() {
    let mut s = Stack::start_with(Options {
        sandbox_args: vec!["--processing-ms".into(), "1500".into()],
        ..Options::default()
    });
    clock_at(&s, "2027-03-03T00:00:00Z");
    let subs: Vec<Subscribed> = (0..8)
        .map(|i| subscribe(&s, &format!("m-kill-{i}"), "weekly", APPROVE))
        .collect();
    let due = period_end(&s, &subs[0].subscription_id);
    let payments = |s: &Stack| s.ledger()["payments"].as_array().map_or(0, Vec::len);
    let before = payments(&s);
    let worker = s.worker.clone();
    let body = json!({"now": due});
    let killed =
        std::thread::spawn(move || worker.post_with("/v1/test-clock/tick", &body, &merchant()));
    // Mid-tick: periods claimed, a renewal's payment in flight at the provider (each takes
    // 1.5 s there), however long the machine took to get this far.
    eventually(60, "a renewal payment to start", || payments(&s) > before);
    s.kill_worker();
    let _ = killed.join();
    s.restart_worker();
    // Leases of the dead tick expire (CHARGE_LEASE_SECONDS=5 in tests), then later ticks finish
    // it. The kill may land between an order and its payment: such an attempt is fenced and its
    // charge waits out the settle window (15 minutes of business time) before a new order, so
    // the ticks that finish the work come from after that window, as cron's would.
    let due_ms = parse_rfc3339(&due).unwrap();
    let after_window = format_rfc3339(due_ms + 16 * 60_000);
    eventually(90, "every renewal to settle", || {
        tick(&s, &after_window);
        (0..8).all(|i| {
            renewal_charges(&s, &format!("m-kill-{i}"))
                .first()
                .is_some_and(|c| c["status"] == "succeeded")
        })
    });
    for (i, sub) in subs.iter().enumerate() {
        let customer = format!("m-kill-{i}");
        assert_eq!(renewal_charges(&s, &customer).len(), 1, "{customer}");
        assert_eq!(token_payments(&s, &sub.order_id), (1, 0), "{customer}");
        assert_ledgers_agree(&s, &customer);
    }
}

#[test]
fn a_tick_killed_between_orders_and_payments_is_finished_after_the_settle_window() {
    let mut s = Stack::start();
    clock_at(&s, "2027-03-03T00:00:00Z");
    let subs: Vec<Subscribed> = (0..4)
        .map(|i| subscribe(&s, &format!("m-gap-{i}"), "weekly", APPROVE))
        .collect();
    let due = period_end(&s, &subs[0].subscription_id);
    let orders = |s: &Stack| s.ledger()["orders"].as_array().map_or(0, Vec::len);
    let before = orders(&s);
    // The provider holds every payment request and does nothing with it: the tick dies with
    // its renewals' orders created and their payment requests sent, none of them started.
    set_faults(
        &s,
        json!([{"endpoint": "initiate_payment", "fault": "timeout_before", "timeout_ms": 60000, "times": 4}]),
    );
    let worker = s.worker.clone();
    let body = json!({"now": due});
    let killed =
        std::thread::spawn(move || worker.post_with("/v1/test-clock/tick", &body, &merchant()));
    // All four payment requests are at the provider. (A renewal whose request was never sent
    // leaves no doubt at all: its order is cancelled and a new one may go at once.)
    wait_faults_used(&s, 60);
    assert_eq!(orders(&s), before + 4);
    s.kill_worker();
    let _ = killed.join();
    clear_faults(&s);
    s.restart_worker();
    // Within the settle window a payment request without a payment is in doubt (the payment
    // may still show up at the provider): however often the tick runs, nothing is charged anew.
    for _ in 0..3 {
        tick(&s, &due);
    }
    let renewal_orders = s.ledger()["orders"].as_array().unwrap().len() - before;
    assert_eq!(renewal_orders, 4, "no new order within the window");
    for (i, sub) in subs.iter().enumerate() {
        assert_eq!(token_payments(&s, &sub.order_id), (0, 0), "m-gap-{i}");
        let charge = &renewal_charges(&s, &format!("m-gap-{i}"))[0];
        assert_eq!(charge["status"], "pending", "m-gap-{i}: {charge}");
    }
    let due_ms = parse_rfc3339(&due).unwrap();
    let after_window = format_rfc3339(due_ms + 16 * 60_000);
    eventually(90, "every renewal to settle after the window", || {
        tick(&s, &after_window);
        (0..4).all(|i| {
            renewal_charges(&s, &format!("m-gap-{i}"))
                .first()
                .is_some_and(|c| c["status"] == "succeeded")
        })
    });
    for (i, sub) in subs.iter().enumerate() {
        let customer = format!("m-gap-{i}");
        assert_eq!(renewal_charges(&s, &customer).len(), 1, "{customer}");
        assert_eq!(token_payments(&s, &sub.order_id), (1, 0), "{customer}");
        assert_ledgers_agree(&s, &customer);
    }
}
