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
