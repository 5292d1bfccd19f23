//! After the charge: the provider settles in a daily batch, refuses a return of an unsettled
//! payment, voids the same day, issues receipts once settled and pays out. Every test moves the
//! provider's calendar and the worker's clock together (`at`) and checks the worker's API
//! against the provider's own ledger.

use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};
use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{Options, Stack};

/// The sandbox's default fee: 1.80 % (rounded half up) plus 1.80 SEK.
fn fee(amount: i64) -> i64 {
    (amount * 180 + 5_000) / 10_000 + 180
}

/// The completed purchase payment of a charge at the provider.
fn purchase_payment(ledger: &Value, order_id: &str) -> Value {
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["orderId"] == order_id && p["status"] == "PAYMENT_COMPLETED")
        .cloned()
        .unwrap_or_else(|| panic!("no completed payment on {order_id}"))
}

fn events_of(s: &Stack, kind: &str) -> Vec<Value> {
    merchant_get(s, &format!("/v1/events?type={kind}&limit=100"))["data"]
        .as_array()
        .unwrap()
        .clone()
}

// 2027-03-01 is a Monday.
const MONDAY_MORNING: &str = "2027-03-01T09:00:00Z";
const TUESDAY_EARLY: &str = "2027-03-02T01:00:00Z";
const WEDNESDAY_EARLY: &str = "2027-03-03T01:00:00Z";

#[test]
fn a_full_refund_the_same_day_is_a_void_and_nothing_settles() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-void", "basic-monthly", APPROVE);
    let c = charge(&s, "void-1", &charge_body("c-void", 10_000));
    assert_eq!(c.status, 201, "{}", c.text);
    let id = charge_id(&c);
    let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();

    let r = refund(&s, &id, "rv-1", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let refunded = r.json();
    assert_eq!(refunded["status"], "succeeded");
    assert_eq!(refunded["method"], "void");
    assert_eq!(refunded["amount"], 10_000);

    // At the provider: the payment voided, no return order.
    let ledger = s.ledger();
    assert_eq!(purchase_payment(&ledger, &order)["voided"], true);
    assert!(returns_of(&ledger, &order).is_empty());

    // The next business day the batch settles without it: no fee, no payout, no receipt.
    at(&s, TUESDAY_EARLY);
    let after = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(after["refundedAmount"], 10_000);
    assert_eq!(after["settlement"]["status"], "voided", "{after}");
    assert_eq!(after["settlement"]["fee"], 0);
    assert!(after["settlement"].get("payoutId").is_none(), "{after}");
    s.worker
        .get_with(&format!("/v1/charges/{id}/receipt"), &merchant())
        .problem(409, "receipt-unavailable");
    assert!(
        events_of(&s, "charge.settled")
            .iter()
            .all(|e| e["data"]["id"] != id.as_str())
    );
    assert_eq!(
        events_of(&s, "refund.succeeded")
            .iter()
            .filter(|e| e["data"]["chargeId"] == id.as_str())
            .count(),
        1
    );
    assert_ledgers_agree(&s, "c-void");
}

#[test]
fn a_partial_refund_waits_for_settlement_then_is_returned_once() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-part", "basic-monthly", APPROVE);
    let c = charge(&s, "part-1", &charge_body("c-part", 10_000));
    let id = charge_id(&c);
    let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();

    let r = refund(&s, &id, "rp-1", json!({"amount": 4_000}));
    assert_eq!(r.status, 202, "{}", r.text);
    let pending = r.json();
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["method"], "return");
    let refund_id = pending["id"].as_str().unwrap().to_owned();
    // The provider would refuse a return now: none is asked for, and none is refused.
    at(&s, "2027-03-01T15:00:00Z");
    assert!(returns_of(&s.ledger(), &order).is_empty());
    let waiting = merchant_get(&s, &format!("/v1/refunds/{refund_id}"));
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert!(waiting.get("failureReason").is_none(), "{waiting}");
    // No receipt before settlement either.
    let early = s
        .worker
        .get_with(&format!("/v1/charges/{id}/receipt"), &merchant());
    early.problem(409, "receipt-not-ready");
    assert!(early.header("retry-after").is_some());

    // Settled overnight: the return goes out once, the charge records fee, net and payout.
    at(&s, TUESDAY_EARLY);
    eventually(60, "the refund to be returned", || {
        tick_settled(&s, TUESDAY_EARLY);
        merchant_get(&s, &format!("/v1/refunds/{refund_id}"))["status"] == "succeeded"
    });
    let ledger = s.ledger();
    let returns = returns_of(&ledger, &order);
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert_eq!(returns[0]["amount"].as_i64().map(i64::abs), Some(4_000));

    let settled = merchant_get(&s, &format!("/v1/charges/{id}"));
    let settlement = &settled["settlement"];
    assert_eq!(settlement["status"], "settled", "{settled}");
    assert_eq!(settlement["fee"], fee(10_000));
    assert_eq!(settlement["net"], 10_000 - fee(10_000));
    assert_eq!(settlement["settlementDate"], "2027-03-02");
    let payout_id = settlement["payoutId"].as_str().unwrap().to_owned();
    assert_eq!(
        purchase_payment(&ledger, &order)["settlement"]["settlementRef"],
        payout_id.as_str()
    );
    assert!(
        events_of(&s, "charge.settled").iter().any(
            |e| e["data"]["id"] == id.as_str() && e["data"]["settlement"]["fee"] == fee(10_000)
        )
    );

    // The payout holds the day's charges (the checkout's payment too) and agrees with the
    // provider's.
    let payout = merchant_get(&s, &format!("/v1/payouts/{payout_id}"));
    assert_eq!(payout["reconciled"], true, "{payout}");
    let theirs = provider_payout(&s, &payout_id);
    assert_eq!(payout["amount"], theirs["amount"], "{payout} {theirs}");
    assert_eq!(payout["fees"], theirs["fees"]);
    assert_eq!(payout["chargeCount"], 2);
    let listed = merchant_get(&s, "/v1/payouts");
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == payout_id.as_str())
    );

    // The receipt exists now, the customer can see it, and the provider emails it.
    let receipt = merchant_get(&s, &format!("/v1/charges/{id}/receipt"));
    let url = receipt["receiptUrl"].as_str().unwrap().to_owned();
    let page = ureq::get(&url).call().expect("the receipt page");
    assert_eq!(page.status(), 200);
    let portal = customer_get(&s, "c-part", "/v1/portal/charges").json();
    assert!(
        portal["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str() && c["receiptUrl"] == url.as_str()),
        "{portal}"
    );
    let sent = s.worker.post_with(
        &format!("/v1/charges/{id}/receipt/email"),
        &json!({}),
        &merchant(),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.json()["email"], "ada@example.com");
    let emails = s.sandbox.get("/_sandbox/receipts/emails").json();
    let emails = emails.as_array().unwrap();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["to"], "ada@example.com");
    assert_eq!(emails[0]["orderId"], order.as_str());

    // The return settles the next night, taken from that day's payout.
    at(&s, WEDNESDAY_EARLY);
    let returned = merchant_get(&s, &format!("/v1/refunds/{refund_id}"));
    assert_eq!(returned["settlement"]["status"], "settled", "{returned}");
    assert_eq!(returned["settlement"]["net"], -4_000);
    let their_payout = returned["settlement"]["payoutId"].as_str().unwrap();
    let ours = merchant_get(&s, &format!("/v1/payouts/{their_payout}"));
    assert_eq!(ours["refunds"], 4_000, "{ours}");
    assert_eq!(ours["reconciled"], true, "{ours}");
    assert_ledgers_agree(&s, "c-part");
}

#[test]
fn a_refund_past_the_providers_ninety_days_is_refused_up_front() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-old", "basic-monthly", APPROVE);
    let c = charge(&s, "old-1", &charge_body("c-old", 5_000));
    let id = charge_id(&c);
    tick(&s, "2027-05-31T09:00:00Z");
    let p = refund(&s, &id, "ro-1", json!({})).problem(422, "refund-window-expired");
    assert_eq!(p["paidAt"], "2027-03-01T09:00:00.000Z", "{p}");
    let listed = merchant_get(&s, &format!("/v1/charges/{id}/refunds"));
    assert!(listed["data"].as_array().unwrap().is_empty());
}

#[test]
fn a_void_whose_answer_is_lost_is_confirmed_from_the_status_and_never_returned_as_well() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-lost-void", "basic-monthly", APPROVE);
    let c = charge(&s, "lost-void-1", &charge_body("c-lost-void", 7_000));
    let id = charge_id(&c);
    let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();
    // The provider voids, then answers 500.
    set_faults(
        &s,
        json!([{"endpoint": "void_payment", "fault": "error_after", "times": 1}]),
    );
    let r = refund(&s, &id, "rlv-1", json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
    let refund_id = r.json()["id"].as_str().unwrap().to_owned();
    clear_faults(&s);
    at(&s, "2027-03-01T09:05:00Z");
    let done = merchant_get(&s, &format!("/v1/refunds/{refund_id}"));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["method"], "void");
    // Days later: still one money movement, the void; never a return on top of it.
    at(&s, WEDNESDAY_EARLY);
    let ledger = s.ledger();
    assert_eq!(purchase_payment(&ledger, &order)["voided"], true);
    assert!(returns_of(&ledger, &order).is_empty());
    assert_eq!(
        merchant_get(&s, &format!("/v1/charges/{id}"))["settlement"]["status"],
        "voided"
    );
}

#[test]
fn a_void_the_provider_never_received_is_sent_again() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-void-again", "basic-monthly", APPROVE);
    let c = charge(&s, "void-again-1", &charge_body("c-void-again", 7_000));
    let id = charge_id(&c);
    let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();
    set_faults(
        &s,
        json!([{"endpoint": "void_payment", "fault": "error", "times": 1}]),
    );
    let r = refund(&s, &id, "rva-1", json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
    let refund_id = r.json()["id"].as_str().unwrap().to_owned();
    clear_faults(&s);
    at(&s, "2027-03-01T09:05:00Z");
    let done = merchant_get(&s, &format!("/v1/refunds/{refund_id}"));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["method"], "void");
    assert_eq!(purchase_payment(&s.ledger(), &order)["voided"], true);
}

#[test]
fn a_full_refund_after_the_cutoff_waits_for_settlement_and_is_a_return() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-late", "basic-monthly", APPROVE);
    let c = charge(&s, "late-1", &charge_body("c-late", 8_000));
    let id = charge_id(&c);
    let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();
    at(&s, "2027-03-01T23:30:00Z");
    let r = refund(&s, &id, "rl-1", json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["method"], "return");
    let refund_id = r.json()["id"].as_str().unwrap().to_owned();
    at(&s, TUESDAY_EARLY);
    eventually(60, "the refund to be returned", || {
        tick_settled(&s, TUESDAY_EARLY);
        merchant_get(&s, &format!("/v1/refunds/{refund_id}"))["status"] == "succeeded"
    });
    let ledger = s.ledger();
    assert_eq!(purchase_payment(&ledger, &order)["voided"], false);
    assert_eq!(returns_of(&ledger, &order).len(), 1);
}

#[test]
fn with_receipts_by_email_every_settled_renewal_is_emailed_once() {
    let s = Stack::start_with(Options {
        vars: vec![("RECEIPTS", "email".into())],
        ..Options::default()
    });
    at(&s, MONDAY_MORNING);
    let sub = subscribe(&s, "c-receipts", "basic-monthly", APPROVE);
    // The first renewal, a month later; settled the next day.
    at(&s, "2027-04-01T09:00:00Z");
    at(&s, "2027-04-02T01:00:00Z");
    at(&s, "2027-04-02T02:00:00Z");
    let charges = charges_of(&s, "c-receipts");
    let renewal = charges
        .iter()
        .find(|c| c["kind"] == "renewal")
        .unwrap_or_else(|| panic!("no renewal for {}: {charges:?}", sub.subscription_id));
    assert_eq!(renewal["settlement"]["status"], "settled", "{renewal}");
    let emails = s.sandbox.get("/_sandbox/receipts/emails").json();
    let emails = emails.as_array().unwrap();
    // The renewal's, not the checkout's (the customer was on the page for that one).
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["orderId"], renewal["providerOrderId"]);
    assert_eq!(emails[0]["to"], "ada@example.com");
}

#[test]
fn a_settlement_the_provider_failed_is_an_incident_and_is_followed_until_it_settles() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-err", "basic-monthly", APPROVE);
    let c = charge(&s, "err-1", &charge_body("c-err", 6_000));
    let id = charge_id(&c);
    set_faults(
        &s,
        json!([{"endpoint": "settlement", "fault": "error", "times": 2}]),
    );
    at(&s, TUESDAY_EARLY);
    let failed = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(failed["settlement"]["status"], "error", "{failed}");
    let incidents = merchant_get(&s, &format!("/v1/incidents?chargeId={id}"));
    assert_eq!(
        incidents["data"][0]["type"], "settlementError",
        "{incidents}"
    );
    clear_faults(&s);
    // Retried at Tuesday's batch, settled on Wednesday.
    at(&s, WEDNESDAY_EARLY);
    let settled = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(settled["settlement"]["status"], "settled", "{settled}");
    assert_eq!(settled["settlement"]["settlementDate"], "2027-03-03");
}

/// Refunds under a provider that fails before and after acting, on every call they make:
/// voids, status reads and return orders. However the answers are lost, each refund moves its
/// money back once (a void or return orders, never both), and the worker's refunded amounts
/// end equal to what the provider gave back.
#[test]
fn refunds_under_provider_faults_move_money_back_once() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-faulty", "basic-monthly", APPROVE);
    let charges: Vec<(String, String, i64)> = (1..=6)
        .map(|n| {
            let amount = 3_000 + n * 1_000;
            let c = charge(&s, &format!("faulty-{n}"), &charge_body("c-faulty", amount));
            assert_eq!(c.status, 201, "{}", c.text);
            let order = c.json()["providerOrderId"].as_str().unwrap().to_owned();
            (charge_id(&c), order, amount)
        })
        .collect();
    set_faults(
        &s,
        json!([
            {"endpoint": "void_payment", "error_rate": 0.3, "error_after_rate": 0.3},
            {"endpoint": "refund", "fault": "error_after", "times": 1},
            {"endpoint": "refund", "fault": "error", "times": 1},
            {"endpoint": "order_status", "error_rate": 0.2}
        ]),
    );
    // Half are refunded whole (voids), half in part (returns once settled).
    for (n, (id, _, amount)) in charges.iter().enumerate() {
        let body = if n % 2 == 0 {
            json!({})
        } else {
            json!({"amount": amount / 2})
        };
        let r = refund(&s, id, &format!("faulty-r{n}"), body);
        assert!(r.status == 201 || r.status == 202, "{}", r.text);
    }
    for minute in [5, 10, 15] {
        at(&s, &format!("2027-03-01T09:{minute:02}:00Z"));
    }
    at(&s, TUESDAY_EARLY);
    at(&s, "2027-03-02T01:10:00Z");
    clear_faults(&s);
    let mut later = parse_rfc3339("2027-03-02T01:20:00Z").unwrap();
    eventually(90, "every refund to be final", || {
        later += 60_000;
        at(&s, &format_rfc3339(later));
        charges.iter().all(|(id, _, _)| {
            merchant_get(&s, &format!("/v1/charges/{id}/refunds"))["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] != "pending")
        })
    });
    // The faults met the calls they were meant for.
    let log = s.sandbox_log();
    assert!(log.contains("/void -> 500"), "no void failed:\n{log}");
    assert!(
        log.lines().any(|l| l.starts_with("POST /orders -> 500")),
        "no return order failed:\n{log}"
    );
    let ledger = s.ledger();
    for (n, (id, order, amount)) in charges.iter().enumerate() {
        let shown = merchant_get(&s, &format!("/v1/charges/{id}"));
        let refunds = merchant_get(&s, &format!("/v1/charges/{id}/refunds"));
        let refunds = refunds["data"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!(refunds[0]["status"], "succeeded", "{refunds:?}");
        let voided = purchase_payment(&ledger, order)["voided"] == true;
        let returned: i64 = returns_of(&ledger, order)
            .iter()
            .filter(|r| r["status"] == "PAYMENT_COMPLETED")
            .map(|r| r["amount"].as_i64().unwrap().abs())
            .sum();
        let given_back = if voided { *amount } else { 0 } + returned;
        assert!(!(voided && returned > 0), "charge {n}: a void and a return");
        assert_eq!(shown["refundedAmount"], given_back, "charge {n}: {shown}");
        let expected = if n % 2 == 0 { *amount } else { amount / 2 };
        assert_eq!(given_back, expected, "charge {n}");
    }
    assert_ledgers_agree(&s, "c-faulty");
}

/// The provider pays out one öre less than a transaction's amount and fee give: the payout does
/// not reconcile, and an incident names the payout and the transaction.
#[test]
fn a_payout_that_does_not_add_up_is_an_incident_naming_the_transaction() {
    let s = Stack::start();
    at(&s, MONDAY_MORNING);
    subscribe(&s, "c-short", "basic-monthly", APPROVE);
    let c = charge(&s, "short-1", &charge_body("c-short", 10_000));
    let id = charge_id(&c);
    // The first transaction to settle (the checkout's, it completed first) is short-paid.
    set_faults(
        &s,
        json!([{"endpoint": "settlement", "fault": "short_payout", "times": 1}]),
    );
    at(&s, TUESDAY_EARLY);
    let checkout = charges_of(&s, "c-short")
        .into_iter()
        .find(|c| c["kind"] == "checkout")
        .unwrap();
    let checkout_id = checkout["id"].as_str().unwrap();
    let incidents = merchant_get(&s, "/v1/incidents?type=settlementMismatch");
    let incidents = incidents["data"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident["chargeId"], checkout_id);
    let settlement = &checkout["settlement"];
    let payout_id = settlement["payoutId"].as_str().unwrap();
    let transaction = settlement["transactionId"].as_str().unwrap();
    let detail = incident["detail"].as_str().unwrap();
    assert!(
        detail.contains(payout_id) && detail.contains(transaction),
        "{detail}"
    );
    // The ledger keeps its own figure (amount − fee) beside what the provider paid.
    assert_eq!(settlement["net"], 9_900 - fee(9_900));
    let payout = merchant_get(&s, &format!("/v1/payouts/{payout_id}"));
    assert_eq!(payout["reconciled"], false, "{payout}");
    assert_eq!(
        payout["amount"].as_i64().unwrap(),
        payout["expected"].as_i64().unwrap() - 1
    );
    let lines = payout["transactions"].as_array().unwrap();
    let short = lines.iter().find(|l| l["id"] == checkout_id).unwrap();
    assert_eq!(
        short["reported"].as_i64(),
        short["net"].as_i64().map(|n| n - 1)
    );
    // The API charge beside it settled in full.
    let fine = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(fine["settlement"]["net"], 10_000 - fee(10_000));
    assert!(
        fine["incidents"].as_array().is_none_or(|i| i.is_empty()),
        "{fine}"
    );
}
