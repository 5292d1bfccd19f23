//! The sandbox clock, the daily settlement batches and their payouts, voids by the rules, the
//! refunds the provider accepts, and the settlement faults (a failed batch step, a short
//! payout), over real HTTP.
//!
//! The clock runs at real speed from wherever a test puts it, so every check that depends on
//! an instant moves the clock to it with `PUT /_sandbox/clock`, whose own run of the due steps
//! happens at exactly that instant; status reads come after, when nothing more can be due.

mod common;

use common::*;
use psp_sandbox::Config;
use serde_json::{Value, json};

fn start_at(clock: &str) -> Sandbox {
    start_configured(clock, Config::default())
}

fn start_configured(clock: &str, config: Config) -> Sandbox {
    start_with(Config {
        processing_ms: 20,
        clock: Some(at(clock)),
        ..config
    })
}

/// A hosted-page purchase paid with the approving card: (order, payment).
fn purchase(s: &Sandbox, amount: i64) -> (String, String) {
    purchase_in(s, amount, "752")
}

fn purchase_in(s: &Sandbox, amount: i64, currency: &str) -> (String, String) {
    let order = s.page_order(
        amount,
        json!({
            "orderLines": [{"id": "SUB-001", "name": "Monthly Subscription", "quantity": 1,
                            "amount": {"total": amount, "currency": currency}}],
            "totalOrderAmount": {"total": amount, "currency": currency},
        }),
    );
    let paid = s.pay(&order, APPROVE);
    assert_eq!(
        paid.body["paymentStatus"], "PAYMENT_COMPLETED",
        "{}",
        paid.text
    );
    (order, paid.body["paymentId"].as_str().unwrap().to_owned())
}

fn refund(s: &Sandbox, purchase: &str, amount: i64) -> Reply {
    s.create_order(
        &json!({"terminal$id": MIT, "referenceId": format!("refund-{amount}"),
        "orderLines": [{"id": "r", "name": "Refund", "quantity": -1, "purchaseOrderId": purchase,
                        "amount": {"total": amount, "currency": "752"}}],
        "totalOrderAmount": {"total": -amount, "currency": "752"},
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}),
    )
}

/// A refund that was accepted, completed: its order id.
fn refunded(s: &Sandbox, purchase: &str, amount: i64) -> String {
    let r = refund(s, purchase, amount);
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
    let order = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_final(&order)["orderStatus"], "PAYMENT_COMPLETED");
    order
}

fn void(s: &Sandbox, payment: &str) -> String {
    let r = s.api("PUT", &format!("/payments/{payment}/void"), None);
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
    r.body["data"]["voidStatus"].as_str().unwrap().to_owned()
}

/// The ledger's settlement record of a payment (integers, nulls until known).
fn settlement_of(s: &Sandbox, payment: &str) -> Value {
    let ledger = s.ledger();
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["paymentId"] == payment)
        .unwrap_or_else(|| panic!("payment {payment} in the ledger"))["settlement"]
        .clone()
}

/// Moves the clock and answers what the settlement run at that instant did.
fn move_to(s: &Sandbox, instant: &str) -> Value {
    let answer = s.set_clock(at(instant));
    assert_eq!(answer["now"], psp_sandbox::rfc3339(at(instant)));
    answer["settlement"].clone()
}

fn counts(run: &Value) -> (u64, u64, u64) {
    (
        run["processed"].as_u64().unwrap(),
        run["settled"].as_u64().unwrap(),
        run["errors"].as_u64().unwrap(),
    )
}

fn payouts(s: &Sandbox) -> Vec<Value> {
    let r = s.get("/_sandbox/payouts");
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

fn is_provider_id(id: &Value) -> bool {
    id.as_str().is_some_and(|id| {
        id.len() == 18 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[test]
fn the_clock_starts_where_told_moves_forward_only_and_keeps_running() {
    let s = start();
    let now = s.get("/_sandbox/clock").body["now"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        now.starts_with("2026-03-02T09:0") && now.len() == 24 && now.ends_with('Z'),
        "{now}"
    );
    let order = s.page_order(1000, json!({}));
    let ledger = s.ledger();
    assert!(
        ledger["orders"][0]["createdAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-02T09:0"),
        "recorded instants come from the sandbox clock: {ledger}"
    );

    // Backwards: 409, nothing changes.
    let back = s.control(
        "PUT",
        "/_sandbox/clock",
        &json!({"now": "2026-03-01T00:00:00Z"}),
    );
    assert_eq!(back.status, 409, "{}", back.text);
    assert!(back.body["error"].is_string());
    assert!(s.now() >= at(MONDAY_MORNING));
    for bad in [
        json!({}),
        json!({"now": "tomorrow"}),
        json!({"now": 5}),
        json!({"now": "2026-03-05T10:00:00Z", "extra": true}),
    ] {
        let r = s.control("PUT", "/_sandbox/clock", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        s.call_raw("PUT", "/_sandbox/clock", "not json".into(), false)
            .status,
        400
    );

    // Forward, in any offset; nothing was due.
    let r = s.control(
        "PUT",
        "/_sandbox/clock",
        &json!({"now": "2026-03-05T12:00:00+02:00"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"now": "2026-03-05T10:00:00.000Z",
               "settlement": {"processed": 0, "settled": 0, "errors": 0, "payouts": []}})
    );
    let moved = at("2026-03-05T10:00:00Z");
    eventually("the clock to run on from where it was set", || {
        s.now() > moved
    });
    let later = s.page_order(1000, json!({}));
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={later}")).body;
    assert!(
        ledger["orders"][0]["createdAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-05T10:0"),
        "{ledger}"
    );

    // A reset puts the clock back where --clock started it.
    assert_eq!(s.call("POST", "/_sandbox/reset", None, false).status, 204);
    let reset = s.now();
    assert!(
        (at(MONDAY_MORNING)..at(MONDAY_MORNING) + HOUR_MS).contains(&reset),
        "{}",
        psp_sandbox::rfc3339(reset)
    );
    assert_eq!(
        s.api("GET", &format!("/orders/{order}/status"), None)
            .status,
        404
    );

    // Without --clock, the sandbox clock is real time.
    let real = start_with(Config::default());
    let wall = psp_sandbox::clock::wall_ms();
    assert!((real.now() - wall).abs() < 60_000);
}

#[test]
fn a_transaction_joins_the_first_cutoff_strictly_after_its_completion() {
    // Monday, two minutes before the 23:00 cutoff.
    let s = start_at("2026-03-02T22:58:00Z");
    let (a, a_payment) = purchase(&s, 29_900);
    let tx = s.transaction(&a);
    assert_eq!(tx["settlementStatus"], "NOT_SETTLED");
    for absent in ["fee", "payout", "settlementRef", "settlementDate"] {
        assert!(tx.get(absent).is_none(), "{absent} before settlement: {tx}");
    }

    // Just before the cutoff nothing is due; at the cutoff the batch takes it.
    assert_eq!(counts(&move_to(&s, "2026-03-02T22:59:00Z")), (0, 0, 0));
    assert_eq!(counts(&move_to(&s, "2026-03-02T23:00:00Z")), (1, 0, 0));
    let tx = s.transaction(&a);
    assert_eq!(tx["settlementStatus"], "PROCESSED");
    assert!(tx.get("fee").is_none() && tx.get("settlementRef").is_none());
    let settlement = settlement_of(&s, &a_payment);
    assert_eq!(settlement["batchAt"], "2026-03-02T23:00:00.000Z");
    assert_eq!(settlement["settlementDate"], "2026-03-03");
    assert_eq!(void(&s, &a_payment), "CANNOT_VOID", "after the cutoff");

    // Completed after the cutoff: tomorrow's batch.
    let (b, b_payment) = purchase(&s, 2_500);
    assert_eq!(
        counts(&move_to(&s, "2026-03-03T00:00:00Z")),
        (0, 1, 0),
        "A settles on Tuesday, B waits"
    );
    let tx = s.transaction(&a);
    assert_eq!(tx["settlementStatus"], "SETTLED");
    assert_eq!(tx["settlementDate"], "2026-03-03");
    assert_eq!(
        (tx["fee"].as_str(), tx["payout"].as_str()),
        (Some("718"), Some("29182"))
    );
    assert!(is_provider_id(&tx["settlementRef"]), "{tx}");
    assert_eq!(s.transaction(&b)["settlementStatus"], "NOT_SETTLED");
    assert_eq!(counts(&move_to(&s, "2026-03-03T22:59:00Z")), (0, 0, 0));
    assert_eq!(counts(&move_to(&s, "2026-03-03T23:00:00Z")), (1, 0, 0));
    assert_eq!(
        settlement_of(&s, &b_payment)["settlementDate"],
        "2026-03-04"
    );
    let run = move_to(&s, "2026-03-04T00:00:00Z");
    assert_eq!(counts(&run), (0, 1, 0));
    let b_tx = s.transaction(&b);
    assert_eq!(b_tx["settlementStatus"], "SETTLED");
    assert_ne!(
        b_tx["settlementRef"], tx["settlementRef"],
        "another date, another payout"
    );
    assert_eq!(run["payouts"][0]["settlementRef"], b_tx["settlementRef"]);
    assert_eq!(
        s.run_settlements(),
        json!({"processed": 0, "settled": 0, "errors": 0, "payouts": []}),
        "nothing left to do"
    );
}

#[test]
fn friday_saturday_and_sunday_batches_settle_on_monday_in_one_payout() {
    let s = start_at("2026-03-06T22:00:00Z");
    let (friday, _) = purchase(&s, 10_000);
    assert_eq!(counts(&move_to(&s, "2026-03-07T10:00:00Z")), (1, 0, 0));
    let (saturday, _) = purchase(&s, 20_000);
    assert_eq!(counts(&move_to(&s, "2026-03-08T10:00:00Z")), (1, 0, 0));
    let (sunday, _) = purchase(&s, 30_000);
    assert_eq!(counts(&move_to(&s, "2026-03-08T23:59:00Z")), (1, 0, 0));
    for order in [&friday, &saturday, &sunday] {
        assert_eq!(s.transaction(order)["settlementStatus"], "PROCESSED");
    }
    let run = move_to(&s, "2026-03-09T00:00:00Z");
    assert_eq!(counts(&run), (0, 3, 0));
    assert_eq!(run["payouts"].as_array().unwrap().len(), 1, "{run}");
    let payout = &run["payouts"][0];
    assert_eq!(payout["settlementDate"], "2026-03-09");
    assert_eq!(payout["transactions"].as_array().unwrap().len(), 3);
    for order in [&friday, &saturday, &sunday] {
        let tx = s.transaction(order);
        assert_eq!(tx["settlementDate"], "2026-03-09", "{tx}");
        assert_eq!(tx["settlementRef"], payout["settlementRef"]);
    }
    assert_eq!(payouts(&s), std::slice::from_ref(payout));
}

#[test]
fn fees_round_halves_away_from_zero_and_never_exceed_the_amount() {
    let s = start();
    // amount → fee with 1.80 % + 1.80: 538.2 → 538; 45 exactly; 13.5 → 14; 13.482 → 13.
    let cases = [
        (29_900, 538 + 180),
        (2_500, 45 + 180),
        (750, 14 + 180),
        (749, 13 + 180),
    ];
    let orders: Vec<(String, i64, i64)> = cases
        .iter()
        .map(|&(amount, fee)| (purchase(&s, amount).0, amount, fee))
        .collect();
    s.settle_all();
    for (order, amount, fee) in &orders {
        let tx = s.transaction(order);
        assert_eq!(tx["settlementStatus"], "SETTLED");
        assert_eq!(tx["fee"], fee.to_string(), "{amount}: {tx}");
        assert_eq!(tx["payout"], (amount - fee).to_string(), "{amount}: {tx}");
    }

    // A fixed fee above the amount: all of it, and a payout of nothing, never less.
    let s = start_configured(
        MONDAY_MORNING,
        Config {
            fee_rate_bp: 250,
            fee_fixed: 1_000,
            ..Config::default()
        },
    );
    let (small, _) = purchase(&s, 300);
    let (large, _) = purchase(&s, 29_900);
    s.settle_all();
    let tx = s.transaction(&small);
    assert_eq!(
        (tx["fee"].as_str(), tx["payout"].as_str()),
        (Some("300"), Some("0"))
    );
    // 2.50 % of 299.00 = 747.5 → 748, plus 10.00.
    let tx = s.transaction(&large);
    assert_eq!(
        (tx["fee"].as_str(), tx["payout"].as_str()),
        (Some("1748"), Some("28152"))
    );
}

#[test]
fn payouts_share_a_reference_per_date_and_currency_and_add_up() {
    let s = start();
    let (p1, _) = purchase(&s, 29_900);
    let (p2, _) = purchase(&s, 2_500);
    let (eur, _) = purchase_in(&s, 1_000, "978");
    // Monday's batch, settled on Tuesday; the clock is then Friday morning.
    s.settle_all();
    let (t1, t2, t3) = (s.transaction(&p1), s.transaction(&p2), s.transaction(&eur));
    assert_eq!(t1["settlementRef"], t2["settlementRef"], "one SEK payout");
    assert_ne!(t1["settlementRef"], t3["settlementRef"], "EUR on its own");
    assert_eq!(t3["settlementDate"], "2026-03-03");

    // Friday: a refund of P1 and a new purchase, both in Friday's batch, settled on Monday.
    let r = refunded(&s, &p1, 2_500);
    let (p4, _) = purchase(&s, 9_900);
    let run = s.settle_all()["settlement"].clone();
    assert_eq!(counts(&run), (2, 2, 0), "{run}");
    let refund_tx = s.transaction(&r);
    assert_eq!(refund_tx["type"], "RETURN");
    assert_eq!(
        (refund_tx["fee"].as_str(), refund_tx["payout"].as_str()),
        (Some("0"), Some("-2500")),
        "a refund is taken from the payout"
    );
    assert_eq!(
        refund_tx["settlementRef"],
        s.transaction(&p4)["settlementRef"]
    );

    let all = payouts(&s);
    assert_eq!(all.len(), 3, "{all:?}");
    let monday = all
        .iter()
        .find(|p| p["settlementDate"] == "2026-03-09")
        .unwrap();
    // 9,900 − (178 + 180) − 2,500.
    assert_eq!(
        (
            monday["gross"].as_i64(),
            monday["fees"].as_i64(),
            monday["refunds"].as_i64(),
            monday["amount"].as_i64()
        ),
        (Some(9_900), Some(358), Some(2_500), Some(7_042))
    );
    assert_eq!(monday["currency"], "752");
    for payout in &all {
        let lines = payout["transactions"].as_array().unwrap();
        let sum = |key: &str| lines.iter().map(|l| l[key].as_i64().unwrap()).sum::<i64>();
        let of_type = |kind: &str| {
            lines
                .iter()
                .filter(|l| l["type"] == kind)
                .map(|l| l["amount"].as_i64().unwrap())
                .sum::<i64>()
        };
        let amount = payout["amount"].as_i64().unwrap();
        assert_eq!(
            amount,
            payout["gross"].as_i64().unwrap()
                - payout["fees"].as_i64().unwrap()
                - payout["refunds"].as_i64().unwrap(),
            "{payout}"
        );
        assert_eq!(amount, sum("payout"), "{payout}");
        assert_eq!(payout["fees"].as_i64().unwrap(), sum("fee"));
        assert_eq!(payout["gross"].as_i64().unwrap(), of_type("PURCHASE"));
        assert_eq!(payout["refunds"].as_i64().unwrap(), of_type("RETURN"));
        for line in lines {
            let tx = s.transaction(line["orderId"].as_str().unwrap());
            assert_eq!(tx["settlementRef"], payout["settlementRef"]);
            assert_eq!(tx["transactionId"], line["transactionId"]);
            assert_eq!(tx["paymentId"], line["paymentId"]);
        }
    }
    // The ledger shows each payment's settlement and the payouts.
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={p1}")).body;
    assert_eq!(
        ledger["payouts"].as_array().unwrap().len(),
        2,
        "P1's and its refund's"
    );
    let p1_payment = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["orderId"] == p1.as_str())
        .unwrap();
    assert_eq!(p1_payment["settlement"]["status"], "SETTLED");
    assert_eq!(p1_payment["settlement"]["fee"], 718);
    assert_eq!(
        p1_payment["settlement"]["settlementRef"],
        t1["settlementRef"]
    );
}

#[test]
fn voids_work_until_the_cutoff_and_a_voided_payment_never_settles() {
    let s = start();
    let (voided, payment) = purchase(&s, 9_900);
    assert_eq!(void(&s, &payment), "VOIDED");
    assert_eq!(void(&s, &payment), "VOIDED", "a second void is harmless");
    let tx = s.transaction(&voided);
    assert_eq!(
        (tx["voided"].as_bool(), tx["settlementStatus"].as_str()),
        (Some(true), Some("NOT_SETTLED"))
    );
    assert!(
        refund(&s, &voided, 1_000).is_business_error("OR_0035"),
        "a voided purchase cannot be refunded"
    );

    // Not completed: a declined charge cannot be voided.
    let token = s.token_of(&voided);
    s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS", "times": 1}),
    );
    let mit = s.mit_order(9_900);
    let failed = s.charge(&mit, &token).body["data"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_FAILED");
    assert_eq!(void(&s, &failed), "CANNOT_VOID");

    let (settled, settled_payment) = purchase(&s, 9_900);
    let run = s.settle_all()["settlement"].clone();
    assert_eq!(
        counts(&run),
        (1, 1, 0),
        "only the purchase that was not voided: {run}"
    );
    let tx = s.transaction(&voided);
    assert_eq!(
        tx["settlementStatus"], "NOT_SETTLED",
        "voided: never settles"
    );
    assert!(tx.get("settlementRef").is_none());
    assert!(
        payouts(&s)
            .iter()
            .flat_map(|p| p["transactions"].as_array().unwrap().clone())
            .all(|l| l["paymentId"] != payment.as_str())
    );
    assert!(refund(&s, &voided, 1_000).is_business_error("OR_0035"));

    // Settled: too late to void; a refund instead, and then still no void.
    assert_eq!(void(&s, &settled_payment), "CANNOT_VOID");
    refunded(&s, &settled, 1_000);
    assert_eq!(void(&s, &settled_payment), "CANNOT_VOID");
    assert_eq!(
        s.api("PUT", "/payments/ffffffffffffffffff/void", None)
            .status,
        404
    );
}

#[test]
fn refunds_wait_for_settlement_and_end_after_ninety_days() {
    let s = start();
    let (order, payment) = purchase(&s, 10_000);
    let early = refund(&s, &order, 1_000);
    assert!(early.is_business_error("OR_0035"), "{}", early.text);
    assert!(early.status == 200 || early.status == 201);
    // Processed but not settled yet: still refused.
    move_to(&s, "2026-03-02T23:30:00Z");
    assert_eq!(s.transaction(&order)["settlementStatus"], "PROCESSED");
    assert!(refund(&s, &order, 1_000).is_business_error("OR_0035"));
    move_to(&s, "2026-03-03T00:00:00Z");
    let first = refunded(&s, &order, 4_000);

    // The refund's own transaction settles like any other: no fee, a negative payout.
    let completed = at(s.ledger()["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["paymentId"] == payment.as_str())
        .unwrap()["completedAt"]
        .as_str()
        .unwrap());
    s.set_clock(completed + 90 * DAY_MS - 60_000);
    let tx = s.transaction(&first);
    assert_eq!(tx["settlementStatus"], "SETTLED");
    assert_eq!(
        (tx["fee"].as_str(), tx["payout"].as_str()),
        (Some("0"), Some("-4000"))
    );

    // Up to 90 days after the purchase, then no more.
    refunded(&s, &order, 1_000);
    s.set_clock(completed + 90 * DAY_MS + 60_000);
    let late = refund(&s, &order, 1_000);
    assert!(late.is_business_error("OR_0039"), "{}", late.text);
    assert_eq!(late.body["message"], "OR_0039: Refund period has expired");
    // The rest of the refund rules hold as before.
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={order}")).body;
    assert_eq!(ledger["returns"].as_array().unwrap().len(), 2);
}

#[test]
fn refunds_above_the_purchase_are_still_refused_after_settlement() {
    let s = start();
    let (order, _) = purchase(&s, 5_000);
    s.settle_all();
    refunded(&s, &order, 3_000);
    assert!(refund(&s, &order, 2_001).is_business_error("OR_0036"));
    refunded(&s, &order, 2_000);
}

#[test]
fn a_failed_batch_step_is_retried_at_the_next_cutoff() {
    let s = start();
    s.set_faults(json!({"rules": [{"endpoint": "settlement", "fault": "error", "times": 1}]}));
    let (failing, failing_payment) = purchase(&s, 9_900);
    let (fine, _) = purchase(&s, 9_900);
    assert_eq!(counts(&move_to(&s, "2026-03-02T23:00:00Z")), (1, 0, 1));
    let tx = s.transaction(&failing);
    assert_eq!(tx["settlementStatus"], "ERROR");
    assert!(tx.get("settlementDate").is_none() && tx.get("fee").is_none());
    assert_eq!(
        settlement_of(&s, &failing_payment)["settlementDate"],
        Value::Null
    );
    assert_eq!(s.transaction(&fine)["settlementStatus"], "PROCESSED");
    assert_eq!(void(&s, &failing_payment), "CANNOT_VOID");
    assert!(refund(&s, &failing, 1_000).is_business_error("OR_0035"));

    assert_eq!(counts(&move_to(&s, "2026-03-03T00:00:00Z")), (0, 1, 0));
    assert_eq!(counts(&move_to(&s, "2026-03-03T22:59:00Z")), (0, 0, 0));
    assert_eq!(s.transaction(&failing)["settlementStatus"], "ERROR");
    // Retried at Tuesday's cutoff: processed, settled on Wednesday.
    assert_eq!(counts(&move_to(&s, "2026-03-03T23:00:00Z")), (1, 0, 0));
    assert_eq!(
        settlement_of(&s, &failing_payment)["settlementDate"],
        "2026-03-04"
    );
    assert_eq!(counts(&move_to(&s, "2026-03-04T00:00:00Z")), (0, 1, 0));
    let tx = s.transaction(&failing);
    assert_eq!(tx["settlementStatus"], "SETTLED");
    assert_ne!(tx["settlementRef"], s.transaction(&fine)["settlementRef"]);
    assert_eq!(s.get("/_sandbox/faults").body["rules"][0]["times"], 0);

    // A step that answers nobody can only fail.
    let r = s.control(
        "PUT",
        "/_sandbox/faults",
        &json!({"rules": [{"endpoint": "settlement", "timeout_rate": 0.5}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
}

#[test]
fn a_settlement_error_rate_is_reproducible_for_a_seed() {
    let outcomes = || {
        let s = start();
        s.set_faults(json!({"seed": 11, "rules": [{"endpoint": "settlement", "error_rate": 0.5}]}));
        let orders: Vec<String> = (0..12).map(|_| purchase(&s, 1_000).0).collect();
        let (processed, _, errors) = counts(&move_to(&s, "2026-03-02T23:00:00Z"));
        assert_eq!(processed + errors, 12);
        orders
            .iter()
            .map(|o| {
                s.transaction(o)["settlementStatus"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let first = outcomes();
    assert_eq!(first, outcomes(), "the same seed, the same batches");
    let errors = first.iter().filter(|s| *s == "ERROR").count();
    assert!((1..12).contains(&errors), "about half fail: {first:?}");
}

/// The payout of a settlement date, as `GET /_sandbox/payouts` shows it.
fn payout_of(s: &Sandbox, settlement_ref: &Value) -> Value {
    payouts(s)
        .into_iter()
        .find(|p| &p["settlementRef"] == settlement_ref)
        .unwrap_or_else(|| panic!("a payout {settlement_ref}"))
}

/// A payout's amount is the sum of its lines' payouts, and every line carries the payout its
/// transaction reports; `short` lines were short-paid, so gross − fees − refunds is that much
/// more than the amount.
fn assert_adds_up(s: &Sandbox, payout: &Value, short: i64) {
    let lines = payout["transactions"].as_array().unwrap();
    let sum = lines
        .iter()
        .map(|l| l["payout"].as_i64().unwrap())
        .sum::<i64>();
    let amount = payout["amount"].as_i64().unwrap();
    assert_eq!(amount, sum, "{payout}");
    assert_eq!(
        payout["gross"].as_i64().unwrap()
            - payout["fees"].as_i64().unwrap()
            - payout["refunds"].as_i64().unwrap(),
        amount + short,
        "{payout}"
    );
    for line in lines {
        let tx = s.transaction(line["orderId"].as_str().unwrap());
        assert_eq!(tx["payout"], line["payout"].as_i64().unwrap().to_string());
        assert_eq!(tx["fee"], line["fee"].as_i64().unwrap().to_string());
        assert_eq!(tx["settlementRef"], payout["settlementRef"]);
    }
}

#[test]
fn a_short_payout_reports_one_minor_unit_less_and_its_payout_adds_up_to_it() {
    let s = start();
    s.set_faults(
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout", "times": 1}]}),
    );
    let (short, short_payment) = purchase(&s, 29_900);
    let (fine, fine_payment) = purchase(&s, 2_500);
    // The batch step spends none of the rule's times: only settling does.
    assert_eq!(counts(&move_to(&s, "2026-03-02T23:00:00Z")), (2, 0, 0));
    assert_eq!(s.get("/_sandbox/faults").body["rules"][0]["times"], 1);
    assert_eq!(settlement_of(&s, &short_payment)["shortPaid"], false);
    assert_eq!(s.transaction(&short)["settlementStatus"], "PROCESSED");

    // Same settlement instant: the first completed settles first and meets the fault.
    let run = move_to(&s, "2026-03-03T00:00:00Z");
    assert_eq!(counts(&run), (0, 2, 0));
    let tx = s.transaction(&short);
    assert_eq!(tx["settlementStatus"], "SETTLED");
    assert_eq!(
        (tx["fee"].as_str(), tx["payout"].as_str()),
        (Some("718"), Some("29181")),
        "29,900 − 718 − 1: the fee stays right, the payout is one short"
    );
    let fine_tx = s.transaction(&fine);
    assert_eq!(
        (fine_tx["fee"].as_str(), fine_tx["payout"].as_str()),
        (Some("225"), Some("2275"))
    );
    let ledger = settlement_of(&s, &short_payment);
    assert_eq!(
        (&ledger["fee"], &ledger["payout"], &ledger["shortPaid"]),
        (&json!(718), &json!(29_181), &json!(true))
    );
    let ledger = settlement_of(&s, &fine_payment);
    assert_eq!(
        (&ledger["payout"], &ledger["shortPaid"]),
        (&json!(2_275), &json!(false))
    );
    assert_eq!(s.get("/_sandbox/faults").body["rules"][0]["times"], 0);

    // The provider's payout total is what its transactions report, not what they should.
    let payout = payout_of(&s, &tx["settlementRef"]);
    assert_eq!(run["payouts"][0], payout);
    assert_eq!(
        (
            payout["gross"].as_i64(),
            payout["fees"].as_i64(),
            payout["amount"].as_i64()
        ),
        (Some(32_400), Some(943), Some(29_181 + 2_275))
    );
    assert_adds_up(&s, &payout, 1);
    let line = payout["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["paymentId"] == short_payment.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (line["fee"].as_i64(), line["payout"].as_i64()),
        (Some(718), Some(29_181))
    );

    // A short-paid refund takes one more than its amount.
    s.set_faults(
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout", "times": 1}]}),
    );
    let refund = refunded(&s, &fine, 1_000);
    let (later, later_payment) = purchase(&s, 9_900);
    s.settle_all();
    let refund_tx = s.transaction(&refund);
    assert_eq!(refund_tx["type"], "RETURN");
    assert_eq!(
        (refund_tx["fee"].as_str(), refund_tx["payout"].as_str()),
        (Some("0"), Some("-1001")),
        "−1,000 − 1"
    );
    let later_tx = s.transaction(&later);
    assert_eq!(later_tx["payout"], "9542", "9,900 − 358: times was used up");
    assert_eq!(settlement_of(&s, &later_payment)["shortPaid"], false);
    let payout = payout_of(&s, &refund_tx["settlementRef"]);
    assert_eq!(payout["settlementRef"], later_tx["settlementRef"]);
    assert_eq!(
        (payout["refunds"].as_i64(), payout["amount"].as_i64()),
        (Some(1_000), Some(9_542 - 1_001))
    );
    assert_adds_up(&s, &payout, 1);
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={fine}")).body;
    let refund_payment = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["orderId"] == refund.as_str())
        .unwrap()
        .clone();
    assert_eq!(refund_payment["settlement"]["payout"], -1_001);
    assert_eq!(refund_payment["settlement"]["shortPaid"], true);
}

#[test]
fn times_limits_the_short_payouts_and_later_settlements_pay_in_full() {
    let s = start();
    s.set_faults(json!({"rules": [
        {"endpoint": "settlement", "fault": "short_payout", "times": 2},
        {"endpoint": "settlement", "fault": "error", "times": 1}]}));
    let payments: Vec<String> = (0..5).map(|_| purchase(&s, 1_000).1).collect();
    let run = s.settle_all()["settlement"].clone();
    // One batch step failed and was retried the next day: two payouts.
    assert_eq!(counts(&run), (5, 5, 1), "{run}");
    let short: Vec<bool> = payments
        .iter()
        .map(|p| {
            let settlement = settlement_of(&s, p);
            assert_eq!(settlement["status"], "SETTLED");
            assert_eq!(settlement["fee"], 198, "1.80 % of 1,000 + 180");
            let short = settlement["shortPaid"].as_bool().unwrap();
            assert_eq!(
                settlement["payout"].as_i64(),
                Some(if short { 801 } else { 802 }),
                "{settlement}"
            );
            short
        })
        .collect();
    assert_eq!(short.iter().filter(|s| **s).count(), 2, "{short:?}");
    let rules = s.get("/_sandbox/faults").body["rules"].clone();
    assert_eq!(
        (&rules[0]["times"], &rules[1]["times"]),
        (&json!(0), &json!(0))
    );
    let all = payouts(&s);
    assert_eq!(all.len(), 2, "{all:?}");
    let total: i64 = all.iter().map(|p| p["amount"].as_i64().unwrap()).sum();
    assert_eq!(total, 3 * 802 + 2 * 801);
    for payout in &all {
        let shorts = payout["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["payout"] == 801)
            .count();
        assert_adds_up(&s, payout, shorts as i64);
    }

    // Used up: the next settlement pays in full.
    let (next, next_payment) = purchase(&s, 1_000);
    s.settle_all();
    assert_eq!(s.transaction(&next)["payout"], "802");
    assert_eq!(settlement_of(&s, &next_payment)["shortPaid"], false);
}

#[test]
fn a_short_payout_rate_is_reproducible_for_a_seed() {
    let outcomes = || {
        let s = start();
        s.set_faults(
            json!({"seed": 11, "rules": [{"endpoint": "settlement", "short_payout_rate": 0.5}]}),
        );
        let orders: Vec<(String, String)> = (0..12).map(|_| purchase(&s, 1_000)).collect();
        assert_eq!(counts(&s.settle_all()["settlement"]), (12, 12, 0));
        let seen: Vec<(bool, String)> = orders
            .iter()
            .map(|(order, payment)| {
                let short = settlement_of(&s, payment)["shortPaid"].as_bool().unwrap();
                let payout = s.transaction(order)["payout"].as_str().unwrap().to_owned();
                assert_eq!(payout, if short { "801" } else { "802" });
                (short, payout)
            })
            .collect();
        let all = payouts(&s);
        assert_eq!(all.len(), 1);
        let shorts = seen.iter().filter(|(short, _)| *short).count() as i64;
        assert_eq!(all[0]["amount"].as_i64(), Some(12 * 802 - shorts));
        assert_adds_up(&s, &all[0], shorts);
        seen
    };
    let first = outcomes();
    assert_eq!(first, outcomes(), "the same seed, the same settlements");
    let short = first.iter().filter(|(short, _)| *short).count();
    assert!((1..12).contains(&short), "about half: {first:?}");
}

#[test]
fn short_payout_is_accepted_for_settlement_only() {
    let s = start();
    for bad in [
        json!({"rules": [{"endpoint": "create_order", "fault": "short_payout"}]}),
        json!({"rules": [{"endpoint": "refund", "short_payout_rate": 0.5}]}),
        json!({"rules": [{"endpoint": "webhook", "fault": "short_payout"}]}),
        json!({"rules": [{"fault": "short_payout", "times": 1}]}),
        json!({"rules": [{"short_payout_rate": 0.5}]}),
        json!({"rules": [{"endpoint": "settlement", "short_payout_rate": 2}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout", "error_rate": 0.5}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "business_error"}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "timeout", "times": 1}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout", "latency_ms": 5}]}),
    ] {
        let r = s.control("PUT", "/_sandbox/faults", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.body["error"].is_string(), "{}", r.text);
    }
    for fine in [
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout"}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "short_payout", "times": 3}]}),
        json!({"seed": 4, "rules": [{"endpoint": "settlement", "short_payout_rate": 0.25}]}),
        json!({"rules": [{"endpoint": "settlement", "fault": "error", "times": 1},
                         {"endpoint": "settlement", "short_payout_rate": 0.25}]}),
    ] {
        s.set_faults(fine);
    }
    let current = s.get("/_sandbox/faults").body;
    assert_eq!(current["rules"][1]["short_payout_rate"], 0.25, "{current}");
}

#[test]
fn the_background_task_runs_due_batches_by_itself() {
    // Seen through the state file, which only a run that changed something writes: nothing
    // here asks for a run.
    let dir = std::env::temp_dir().join(format!("psp-sandbox-batches-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let s = start_configured(
        "2026-03-02T22:00:00Z",
        Config {
            state_file: Some(file.clone()),
            ..Config::default()
        },
    );
    let (_, payment) = purchase(&s, 9_900);
    // Two seconds before the cutoff: nothing is due yet, so this run does nothing.
    assert_eq!(counts(&move_to(&s, "2026-03-02T22:59:58Z")), (0, 0, 0));
    eventually("the batch task to process the payment", || {
        let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        saved["payments"][&payment]["settlement"]["status"] == "PROCESSED"
    });
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_clock_payouts_and_receipts_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("psp-sandbox-clock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let config = || Config {
        state_file: Some(file.clone()),
        ..Config::default()
    };
    let (order, reference, receipt, moved) = {
        let s = start_configured(MONDAY_MORNING, config());
        let (order, _) = purchase(&s, 9_900);
        s.settle_all();
        let reference = s.transaction(&order)["settlementRef"].clone();
        let sent = s.api(
            "PUT",
            &format!("/receipts/{order}/email"),
            Some(&json!({"email": "ada@example.com"})),
        );
        assert_eq!(sent.body["status"], "SUCCESS", "{}", sent.text);
        let receipt =
            s.api("GET", &format!("/receipts/{order}/link"), None).body["data"]["receiptURL"]
                .clone();
        (order, reference, receipt, s.now())
    };
    // The same --clock again: the file's clock wins, it never goes back.
    let s = start_configured(MONDAY_MORNING, config());
    assert!(s.now() >= moved, "{}", psp_sandbox::rfc3339(s.now()));
    let tx = s.transaction(&order);
    assert_eq!(tx["settlementStatus"], "SETTLED");
    assert_eq!(tx["settlementRef"], reference);
    assert_eq!(payouts(&s).len(), 1);
    assert_eq!(payouts(&s)[0]["settlementRef"], reference);
    let emails = s.get("/_sandbox/receipts/emails").body;
    assert_eq!(emails.as_array().unwrap().len(), 1, "{emails}");
    assert_eq!(emails[0]["receiptURL"], receipt);
    // The same receipt (the port, and so the public URL, changed with the restart).
    let receipt_id = |url: &Value| url.as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let again = s.api("GET", &format!("/receipts/{order}/link"), None);
    assert_eq!(
        receipt_id(&again.body["data"]["receiptURL"]),
        receipt_id(&receipt)
    );
    drop(s);
    // A later --clock moves it forward.
    let s = start_configured("2026-06-01T12:00:00Z", config());
    assert!(s.now() >= at("2026-06-01T12:00:00Z"));
    assert_eq!(s.call("POST", "/_sandbox/reset", None, false).status, 204);
    assert!(payouts(&s).is_empty(), "a reset empties the payouts");
    assert_eq!(s.get("/_sandbox/receipts/emails").body, json!([]));
    assert!(
        s.now() < at("2026-06-01T12:00:00Z") + HOUR_MS,
        "and puts the clock back at --clock"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
