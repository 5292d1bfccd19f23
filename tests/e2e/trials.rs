//! Free trials: the card proven at checkout by the smallest payment the provider takes, given
//! back at once; the trial's end announced three days before; the first charge when it ends.
//! Checked against the provider's own ledger.

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::Stack;

// `team-trial` in wrangler.toml: 19900 a month, 14 days free.
const TEAM: i64 = 19_900;
const VERIFICATION: i64 = 300;
const START: &str = "2027-05-03T09:00:00.000Z";
const NOTICE: &str = "2027-05-14T09:00:00.000Z";
const TRIAL_END: &str = "2027-05-17T09:00:00.000Z";

fn events_for(s: &Stack, kind: &str, sub: &str) -> Vec<Value> {
    merchant_get(s, &format!("/v1/events?type={kind}&limit=100"))["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["id"] == sub)
        .cloned()
        .collect()
}

/// The hosted page's payment of a checkout's order, at the provider.
fn page_payment(s: &Stack, order_id: &str) -> Value {
    s.ledger()["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["orderId"] == order_id && p["status"] == "PAYMENT_COMPLETED")
        .cloned()
        .unwrap_or_else(|| panic!("no completed payment on {order_id}"))
}

/// Completed amounts the provider took for a charge (its orders carry its id).
fn taken_for(s: &Stack, charge_id: &str) -> Vec<i64> {
    payments_for_reference(&s.ledger(), charge_id)
        .into_iter()
        .filter(|p| p["status"] == "PAYMENT_COMPLETED")
        .map(|p| p["amount"].as_i64().unwrap())
        .collect()
}

/// A checkout of `plan` paid with a good card; returns (checkout as created, subscription id).
fn trial_checkout(s: &Stack, customer: &str, plan: &str) -> (Value, String) {
    let r = start_checkout(s, customer, plan, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    pay(s, created["orderId"].as_str().unwrap(), APPROVE);
    let state = wait_checkout(s, created["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "paid", "{state}");
    let sub = state["subscriptionId"].as_str().unwrap().to_owned();
    (created, sub)
}

#[test]
fn a_trial_verifies_the_card_gives_it_back_announces_its_end_and_charges_first_when_it_ends() {
    let s = Stack::start();
    at(&s, START);
    let (created, sub) = trial_checkout(&s, "trial-1", "team-trial");
    assert_eq!(created["amount"], VERIFICATION, "{created}");
    assert_eq!(created["trialDays"], 14);
    let order = created["orderId"].as_str().unwrap();

    // The verification payment is given back at once: voided, the same day, so it never
    // settles. Nothing else was taken.
    eventually(30, "the verification payment to be voided", || {
        page_payment(&s, order)["voided"] == true
    });
    assert_eq!(page_payment(&s, order)["amount"], VERIFICATION);
    let charges = charges_of(&s, "trial-1");
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["amount"], VERIFICATION);
    assert_eq!(charges[0]["refundedAmount"], VERIFICATION);
    assert!(charges[0]["subscriptionId"].is_null(), "{}", charges[0]);

    let state = subscription(&s, &sub);
    assert_eq!(state["trialing"], true, "{state}");
    assert_eq!(state["status"], "active");
    assert_eq!(state["trialEnd"], TRIAL_END);
    assert_eq!(state["currentPeriodEnd"], TRIAL_END);
    assert_eq!(state["nextChargeAt"], TRIAL_END);

    // Three days before the end, and not a moment earlier, the merchant is told; once.
    at(&s, "2027-05-14T08:59:59Z");
    assert!(events_for(&s, "subscription.trial_will_end", &sub).is_empty());
    at(&s, NOTICE);
    at(&s, "2027-05-15T09:00:00Z");
    let notices = events_for(&s, "subscription.trial_will_end", &sub);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["data"]["trialEnd"], TRIAL_END);
    assert_eq!(notices[0]["createdAt"], NOTICE);
    assert!(
        charges_of(&s, "trial-1").len() == 1,
        "nothing charged during the trial"
    );

    // The trial's end is the first charge, of the plan's price, taken once; the calendar runs
    // from there.
    at(&s, TRIAL_END);
    let first: Vec<Value> = charges_of(&s, "trial-1")
        .into_iter()
        .filter(|c| c["subscriptionId"] == sub.as_str())
        .collect();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["amount"], TEAM);
    assert_eq!(first[0]["status"], "succeeded", "{}", first[0]);
    assert_eq!(taken_for(&s, first[0]["id"].as_str().unwrap()), vec![TEAM]);
    let state = subscription(&s, &sub);
    assert_eq!(state["trialing"], false);
    assert_eq!(state["currentPeriodStart"], TRIAL_END);
    assert_eq!(state["currentPeriodEnd"], "2027-06-17T09:00:00.000Z");
    at(&s, "2027-06-17T09:00:00.000Z");
    let paid = charges_of(&s, "trial-1")
        .into_iter()
        .filter(|c| c["subscriptionId"] == sub.as_str() && c["status"] == "succeeded")
        .count();
    assert_eq!(paid, 2);
    assert_eq!(
        events_for(&s, "subscription.trial_will_end", &sub).len(),
        1,
        "announced once"
    );
    assert_ledgers_agree(&s, "trial-1");
}

#[test]
fn the_merchant_gives_a_trial_through_the_session_and_the_browser_cannot() {
    let s = Stack::start();
    at(&s, START);
    // A 30-day trial on a plan that has none.
    assert_eq!(
        session_with(&s, "trial-2", json!({"trialDays": 30})).status,
        201
    );
    let (created, sub) = trial_checkout(&s, "trial-2", "basic-monthly");
    assert_eq!(created["amount"], VERIFICATION);
    assert_eq!(
        subscription(&s, &sub)["trialEnd"],
        "2027-06-02T09:00:00.000Z",
        "30 days"
    );
    // No trial on a plan that has one: the session says 0.
    assert_eq!(
        session_with(&s, "trial-3", json!({"trialDays": 0})).status,
        201
    );
    let (created, sub) = trial_checkout(&s, "trial-3", "team-trial");
    assert_eq!(created["amount"], TEAM);
    assert!(created.get("trialDays").is_none(), "{created}");
    let state = subscription(&s, &sub);
    assert_eq!(state["trialing"], false);
    assert!(state.get("trialEnd").is_none(), "{state}");

    // Out of range, and never from the browser.
    mint_session(&s, &json!({"customerRef": "trial-4", "trialDays": 731}))
        .problem(400, "validation-error");
    mint_session(&s, &json!({"customerRef": "trial-4", "trialDays": -1}))
        .problem(400, "validation-error");
    start_checkout(&s, "trial-4", "basic-monthly", json!({"trialDays": 365}))
        .problem(400, "validation-error");
    // An installment plan has no trial, whatever the session says.
    assert_eq!(
        session_with(&s, "trial-5", json!({"trialDays": 30})).status,
        201
    );
    let r = start_checkout(&s, "trial-5", "course", json!({"installments": 3}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"], 33_333);
}

#[test]
fn a_trial_canceled_or_changed_before_its_end_costs_only_what_comes_after() {
    let s = Stack::start();
    at(&s, START);
    let (_, canceled) = trial_checkout(&s, "trial-6", "team-trial");
    let (_, changed) = trial_checkout(&s, "trial-7", "team-trial");

    let r = s.worker.post_with(
        &format!("/v1/subscriptions/{canceled}/cancel"),
        &json!({"atPeriodEnd": true}),
        &merchant(),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // A change during the trial is free: no proration, the new price from the first charge.
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", "trial-seats"));
    let r = s.worker.post_with(
        &format!("/v1/subscriptions/{changed}/change-plan"),
        &json!({"quantity": 2, "effective": "now"}),
        &headers,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    assert!(made.get("charge").is_none(), "{made}");
    assert_eq!(made["proration"]["net"], 0);
    assert_eq!(made["subscription"]["quantity"], 2);

    at(&s, TRIAL_END);
    assert_eq!(subscription(&s, &canceled)["status"], "canceled");
    assert!(
        events_for(&s, "subscription.trial_will_end", &canceled).is_empty(),
        "a trial that ends in a cancellation is not announced as ending"
    );
    let charged: Vec<i64> = charges_of(&s, "trial-6")
        .iter()
        .filter(|c| c["subscriptionId"] == canceled.as_str())
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert!(charged.is_empty(), "{charged:?}");
    let first: Vec<Value> = charges_of(&s, "trial-7")
        .into_iter()
        .filter(|c| c["subscriptionId"] == changed.as_str())
        .collect();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["amount"], 2 * TEAM);
    assert_eq!(
        taken_for(&s, first[0]["id"].as_str().unwrap()),
        vec![2 * TEAM]
    );
    assert_ledgers_agree(&s, "trial-6");
    assert_ledgers_agree(&s, "trial-7");
}
