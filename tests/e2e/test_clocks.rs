//! Named test clocks: each customer of the demo (or of a test) can live on a clock of their
//! own; moving it bills their subscriptions and nobody else's.

use serde_json::json;

use crate::flows::*;
use crate::stack::Stack;

#[test]
fn advancing_one_clock_bills_only_the_subscriptions_on_it() {
    let s = Stack::start();
    tick(&s, "2027-04-01T12:00:00Z");
    put_on_clock(&s, "clock-a", "clock-a");
    put_on_clock(&s, "clock-b", "clock-b");
    let a = subscribe(&s, "clock-a", "weekly", APPROVE);
    let b = subscribe(&s, "clock-b", "weekly", APPROVE);
    let global = subscribe(&s, "clock-none", "weekly", APPROVE);
    // A named clock that never moved reads as the global clock.
    let read = merchant_get(&s, "/v1/test-clock?clock=clock-a");
    assert_eq!(read["now"], "2027-04-01T12:00:00.000Z", "{read}");
    assert_eq!(read["clock"], "clock-a");

    let report = tick_clock(&s, "clock-a", "2027-04-09T12:00:00Z");
    assert_eq!(report["periodsClosed"], 1, "{report}");
    eventually(20, "A's renewal", || {
        subscription(&s, &a.subscription_id)["currentPeriod"] == 1
            && charges_of(&s, "clock-a")
                .iter()
                .any(|c| c["periodIndex"] == 1 && c["status"] == "succeeded")
    });
    assert_eq!(subscription(&s, &b.subscription_id)["currentPeriod"], 0);
    assert_eq!(
        subscription(&s, &global.subscription_id)["currentPeriod"],
        0
    );
    assert_eq!(
        merchant_get(&s, "/v1/test-clock?clock=clock-a")["now"],
        "2027-04-09T12:00:00.000Z"
    );
    assert_eq!(
        merchant_get(&s, "/v1/test-clock")["now"],
        "2027-04-01T12:00:00.000Z",
        "the global clock did not move"
    );
    // The global clock's tick bills only what is on no named clock.
    let report = tick(&s, "2027-04-09T12:00:00Z");
    assert_eq!(report["periodsClosed"], 1, "{report}");
    eventually(20, "the global subscription's renewal", || {
        subscription(&s, &global.subscription_id)["currentPeriod"] == 1
    });
    assert_eq!(subscription(&s, &b.subscription_id)["currentPeriod"], 0);
    // A clock goes forward only.
    let back = s.worker.post_with(
        "/v1/test-clock/tick",
        &json!({"now": "2027-04-02T12:00:00Z", "clock": "clock-a"}),
        &merchant(),
    );
    back.problem(409, "clock-backwards");
    for c in ["clock-a", "clock-b", "clock-none"] {
        assert_ledgers_agree(&s, c);
    }
}

#[test]
fn the_demo_gives_each_visitor_a_clock_of_their_own_and_clock_names_are_checked() {
    let s = Stack::start();
    let visitor = "demo-0123456789abcdef0123456789abcdef";
    let r = s
        .worker
        .post("/v1/demo/session", &json!({"customerRef": visitor}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["testClock"], format!("clock-{visitor}"));
    let bad = mint_session(&s, &json!({"customerRef": "x", "testClock": "a/b"}));
    assert_eq!(
        bad.problem(400, "validation-error")["errors"][0]["field"],
        "testClock"
    );
}

/// The global clock reads as the wall clock until it is first moved; that first move may not
/// go back either (new charges would be stamped in the past). A refused move changes nothing.
#[test]
fn the_global_clock_never_goes_back_not_even_on_its_first_move() {
    let s = Stack::start();
    let before = merchant_get(&s, "/v1/test-clock")["now"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.worker.post_with(
        "/v1/test-clock/tick",
        &json!({"now": "2026-02-28T10:06:00Z"}),
        &merchant(),
    );
    r.problem(409, "clock-backwards");
    let after = merchant_get(&s, "/v1/test-clock")["now"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(after >= before, "{after} before {before}");
    assert!(after.starts_with("20"), "{after}");
    assert!(
        !after.starts_with("2026-02"),
        "the clock went back: {after}"
    );
    tick(&s, "2027-01-01T00:00:00Z");
    s.worker
        .post_with(
            "/v1/test-clock/tick",
            &json!({"now": "2026-12-31T00:00:00Z"}),
            &merchant(),
        )
        .problem(409, "clock-backwards");
}

/// Test clocks as objects: created at a start, a customer put on one by their session, moved
/// forward only (the first move too), and deleted with everything of its customers.
#[test]
fn a_test_clock_object_bills_its_customers_and_takes_them_when_deleted() {
    let s = Stack::start();
    let created = s.worker.post_with(
        "/v1/test-clocks",
        &json!({"name": "renewals", "startsAt": "2027-01-31T10:00:00Z"}),
        &merchant(),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let clock = created.json()["id"].as_str().unwrap().to_owned();
    assert!(clock.starts_with("clk_"), "{clock}");
    let advance = |to: &str| {
        s.worker.post_with(
            &format!("/v1/test-clocks/{clock}/advance"),
            &json!({"to": to}),
            &merchant(),
        )
    };
    // Its first move may not go back from where it started.
    advance("2027-01-30T10:00:00Z").problem(409, "clock-backwards");

    put_on_clock(&s, "on-object", &clock);
    let sub = subscribe(&s, "on-object", "basic-monthly", APPROVE);
    let global = subscribe(&s, "off-object", "basic-monthly", APPROVE);
    let state = subscription(&s, &sub.subscription_id);
    assert_eq!(
        state["currentPeriodStart"], "2027-01-31T10:00:00.000Z",
        "{state}"
    );
    let shown = merchant_get(&s, &format!("/v1/test-clocks/{clock}"));
    assert_eq!(shown["customers"], 1, "{shown}");

    let moved = advance("2027-02-28T10:00:00Z");
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["tick"]["periodsClosed"], 1, "{}", moved.text);
    eventually(20, "the renewal on the clock", || {
        charges_of(&s, "on-object")
            .iter()
            .any(|c| c["kind"] == "renewal" && c["status"] == "succeeded")
    });
    assert_eq!(
        subscription(&s, &global.subscription_id)["currentPeriod"],
        0
    );
    advance("2027-02-01T10:00:00Z").problem(409, "clock-backwards");
    assert_eq!(
        merchant_get(&s, &format!("/v1/test-clocks/{clock}"))["now"],
        "2027-02-28T10:00:00.000Z"
    );
    let listed = merchant_get(&s, "/v1/test-clocks");
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == clock.as_str())
    );

    let gone = s
        .worker
        .delete_with(&format!("/v1/test-clocks/{clock}"), &merchant());
    assert_eq!(gone.status, 204, "{}", gone.text);
    s.worker
        .get_with(&format!("/v1/test-clocks/{clock}"), &merchant())
        .problem(404, "not-found");
    assert!(charges_of(&s, "on-object").is_empty());
    s.worker
        .get_with(
            &format!("/v1/subscriptions/{}", sub.subscription_id),
            &merchant(),
        )
        .problem(404, "not-found");
    // Everyone else is untouched.
    assert_eq!(charges_of(&s, "off-object").len(), 1);
    assert_eq!(
        subscription(&s, &global.subscription_id)["status"],
        "active"
    );
}
