//! Plan and quantity changes, now (prorated) and at period end: what the merchant is told
//! (preview, answer, events) against what the provider took, and the customer's balance used
//! by the next charges.

use recurring_core::billing::time::parse_rfc3339;
use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::Stack;

const PRICE: i64 = 9_900;
const START: &str = "2027-03-01T09:00:00Z";
const PERIOD_END: &str = "2027-04-01T09:00:00Z";

/// The share of `price` for the seconds from `at` to the period's end, rounded half up: the
/// README's rule, computed here on its own.
fn share(price: i64, at: &str) -> i64 {
    let (start, end, at) = (
        parse_rfc3339(START).unwrap() / 1000,
        parse_rfc3339(PERIOD_END).unwrap() / 1000,
        parse_rfc3339(at).unwrap() / 1000,
    );
    let (num, den) = (
        i128::from(price) * i128::from(end - at),
        i128::from(end - start),
    );
    ((2 * num + den) / (2 * den)) as i64
}

fn change(s: &Stack, sub: &str, key: Option<&str>, body: Value) -> crate::http::Reply {
    let mut headers = merchant().to_vec();
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    s.worker.post_with(
        &format!("/v1/subscriptions/{sub}/change-plan"),
        &body,
        &headers,
    )
}

fn preview(s: &Stack, sub: &str, body: Value) -> Value {
    let r = s.worker.post_with(
        &format!("/v1/subscriptions/{sub}/change-plan/preview"),
        &body,
        &merchant(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// Completed payments at the provider for a charge (its orders carry its id).
fn paid_for(s: &Stack, charge_id: &str) -> Vec<i64> {
    payments_for_reference(&s.ledger(), charge_id)
        .into_iter()
        .filter(|p| p["status"] == "PAYMENT_COMPLETED")
        .map(|p| p["amount"].as_i64().unwrap())
        .collect()
}

fn updated_events(s: &Stack, sub: &str) -> Vec<Value> {
    merchant_get(s, "/v1/events?type=subscription.updated&limit=100")["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["id"] == sub)
        .cloned()
        .collect()
}

#[test]
fn more_seats_now_are_charged_for_the_rest_of_the_period_exactly_as_previewed() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "seats-up", "basic-monthly", APPROVE).subscription_id;
    let when = "2027-03-17T09:00:00Z";
    at(&s, when);
    let body = json!({"quantity": 3, "effective": "now"});
    let expected_credit = share(PRICE, when);
    let expected_charge = share(3 * PRICE, when);
    let p = preview(&s, &sub, body.clone());
    assert_eq!(p["proration"]["credit"], expected_credit, "{p}");
    assert_eq!(p["proration"]["charge"], expected_charge, "{p}");
    assert_eq!(p["amountDueNow"], expected_charge - expected_credit);
    assert_eq!(p["nextChargeAmount"], 3 * PRICE);
    // The preview changed nothing.
    assert_eq!(subscription(&s, &sub)["quantity"], 1);

    change(&s, &sub, None, body.clone()).problem(400, "idempotency-key-required");
    let r = change(&s, &sub, Some("seats-1"), body.clone());
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    assert_eq!(made["proration"], p["proration"], "the preview was exact");
    assert_eq!(made["subscription"]["quantity"], 3);
    let charge = &made["charge"];
    assert_eq!(charge["kind"], "proration");
    assert_eq!(charge["status"], "succeeded", "{charge}");
    assert_eq!(charge["amount"], expected_charge - expected_credit);
    let charge_id = charge["id"].as_str().unwrap();
    assert_eq!(
        paid_for(&s, charge_id),
        vec![expected_charge - expected_credit]
    );

    // The same request again is the same change: no second charge.
    let again = change(&s, &sub, Some("seats-1"), body);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["charge"]["id"], charge_id);
    change(
        &s,
        &sub,
        Some("seats-1"),
        json!({"quantity": 4, "effective": "now"}),
    )
    .problem(422, "idempotency-key-reused");
    assert_eq!(paid_for(&s, charge_id).len(), 1);

    // The next period is billed for three seats.
    at(&s, PERIOD_END);
    let renewal = charges_of(&s, "seats-up")
        .into_iter()
        .find(|c| c["kind"] == "renewal")
        .unwrap();
    assert_eq!(renewal["amount"], 3 * PRICE, "{renewal}");
    assert_eq!(
        paid_for(&s, renewal["id"].as_str().unwrap()),
        vec![3 * PRICE]
    );

    let events = updated_events(&s, &sub);
    assert!(
        events.iter().any(
            |e| e["previousAttributes"] == json!({"quantity": 1}) && e["data"]["quantity"] == 3
        ),
        "{events:?}"
    );
    assert_ledgers_agree(&s, "seats-up");
}

#[test]
fn fewer_seats_now_credit_the_balance_and_the_next_renewals_use_it() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "seats-down", "basic-monthly", APPROVE).subscription_id;
    // Three seats from the start (at period end: the checkout paid one), so the second period
    // bills three.
    let r = change(&s, &sub, None, json!({"quantity": 3}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["pendingQuantity"], 3);
    at(&s, PERIOD_END);
    // Back to one seat, a week before the second period ends.
    let when = "2027-04-24T09:00:00Z";
    at(&s, when);
    let period = subscription(&s, &sub);
    let (start, end) = (
        parse_rfc3339(period["currentPeriodStart"].as_str().unwrap()).unwrap() / 1000,
        parse_rfc3339(period["currentPeriodEnd"].as_str().unwrap()).unwrap() / 1000,
    );
    let remaining = end - parse_rfc3339(when).unwrap() / 1000;
    let half_up = |price: i64| {
        let (num, den) = (
            i128::from(price) * i128::from(remaining),
            i128::from(end - start),
        );
        ((2 * num + den) / (2 * den)) as i64
    };
    let credited = half_up(3 * PRICE) - half_up(PRICE);
    let made = change(
        &s,
        &sub,
        Some("down-1"),
        json!({"quantity": 1, "effective": "now"}),
    );
    assert_eq!(made.status, 200, "{}", made.text);
    let made = made.json();
    assert_eq!(made["credited"], credited, "{made}");
    assert!(
        made.get("charge").is_none(),
        "a downgrade charges nothing: {made}"
    );
    assert_eq!(made["balance"], credited);
    let balance = merchant_get(&s, "/v1/customers/seats-down/balance");
    assert_eq!(balance["balances"][0]["amount"], credited, "{balance}");
    assert_eq!(balance["transactions"][0]["reason"], "proration");

    // The third period's renewal uses the balance first; the card pays the rest.
    let third = subscription(&s, &sub)["currentPeriodEnd"]
        .as_str()
        .unwrap()
        .to_owned();
    at(&s, &third);
    let renewal = charges_of(&s, "seats-down")
        .into_iter()
        .find(|c| c["kind"] == "renewal" && c["periodIndex"] == 2)
        .unwrap_or_else(|| panic!("{:?}", charges_of(&s, "seats-down")));
    assert_eq!(renewal["amount"], PRICE - credited, "{renewal}");
    assert_eq!(renewal["balanceApplied"], credited);
    assert_eq!(
        paid_for(&s, renewal["id"].as_str().unwrap()),
        vec![PRICE - credited]
    );
    let balance = merchant_get(&s, "/v1/customers/seats-down/balance");
    assert_eq!(balance["balances"][0]["amount"], 0, "{balance}");
    assert_eq!(balance["transactions"][0]["amount"], -credited);
    assert_ledgers_agree(&s, "seats-down");
}

#[test]
fn a_balance_that_covers_a_period_pays_it_without_a_charge() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "covered", "basic-monthly", APPROVE).subscription_id;
    // Ten seats now, then one seat a day later: almost all of the ten-seat charge comes back.
    at(&s, "2027-03-02T09:00:00Z");
    let up = change(
        &s,
        &sub,
        Some("up"),
        json!({"quantity": 10, "effective": "now"}),
    );
    assert_eq!(up.status, 200, "{}", up.text);
    at(&s, "2027-03-03T09:00:00Z");
    let down = change(
        &s,
        &sub,
        Some("down"),
        json!({"quantity": 1, "effective": "now"}),
    );
    let credited = down.json()["credited"].as_i64().unwrap();
    assert!(credited > PRICE, "{credited}");
    at(&s, PERIOD_END);
    // The second period is paid from the balance: no charge, no payment at the provider.
    let renewals: Vec<Value> = charges_of(&s, "covered")
        .into_iter()
        .filter(|c| c["kind"] == "renewal")
        .collect();
    assert!(renewals.is_empty(), "{renewals:?}");
    let state = subscription(&s, &sub);
    assert_eq!(state["currentPeriod"], 1, "{state}");
    assert_eq!(state["status"], "active");
    let balance = merchant_get(&s, "/v1/customers/covered/balance");
    assert_eq!(
        balance["balances"][0]["amount"],
        credited - PRICE,
        "{balance}"
    );
    assert_eq!(balance["transactions"][0]["amount"], -PRICE);
    assert_ledgers_agree(&s, "covered");
}

#[test]
fn every_change_is_announced_with_what_it_was_before() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "announced", "basic-monthly", APPROVE).subscription_id;
    let act = |path: &str, body: Value| {
        let r = s.worker.post_with(
            &format!("/v1/subscriptions/{sub}/{path}"),
            &body,
            &merchant(),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    };
    act("cancel", json!({"atPeriodEnd": true}));
    let portal = customer_post(
        &s,
        "announced",
        &format!("/v1/portal/subscriptions/{sub}/reactivate"),
        &json!({}),
        &[],
    );
    assert_eq!(portal.status, 200, "{}", portal.text);
    act("change-plan", json!({"planId": "pro-yearly"}));
    act("pause", json!({}));
    act("resume", json!({}));
    let previous: Vec<Value> = updated_events(&s, &sub)
        .iter()
        .map(|e| e["previousAttributes"].clone())
        .collect();
    assert_eq!(
        previous,
        vec![
            json!({"cancelAtPeriodEnd": false}),
            json!({"cancelAtPeriodEnd": true}),
            json!({"pendingPlanId": null}),
            json!({"status": "active"}),
            json!({"status": "paused"}),
        ]
    );
}

#[test]
fn another_interval_changes_at_period_end_only() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "interval", "basic-monthly", APPROVE).subscription_id;
    at(&s, "2027-03-10T09:00:00Z");
    change(
        &s,
        &sub,
        Some("to-yearly"),
        json!({"planId": "pro-yearly", "effective": "now"}),
    )
    .problem(409, "interval-change-at-period-end");
    assert_eq!(subscription(&s, &sub)["planId"], "basic-monthly");
}
