//! Coupons: a percentage or an amount off, for one charge, N periods or for ever, with an
//! expiry and a redemption limit; applied by the merchant to a subscription or a customer, or
//! at checkout through the session. What each charge shows is checked against what the
//! provider took; the reports count discounts apart from refunds. And a customer's balance
//! given back to the card on request, once.

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::Stack;

const PRICE: i64 = 9_900;
const START: &str = "2027-03-01T09:00:00Z";

fn month(n: u32) -> String {
    let (y, m) = (2027 + (2 + n) / 12, (2 + n) % 12 + 1);
    format!("{y}-{m:02}-01T09:00:00Z")
}

fn create_coupon(s: &Stack, body: Value) -> Value {
    let r = s.worker.post_with("/v1/coupons", &body, &merchant());
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

fn coupon(s: &Stack, id: &str) -> Value {
    merchant_get(s, &format!("/v1/coupons/{id}"))
}

/// The customer's charges of one subscription, oldest first.
fn charges_of_sub(s: &Stack, customer: &str, sub: &str) -> Vec<Value> {
    let mut found: Vec<Value> = charges_of(s, customer)
        .into_iter()
        .filter(|c| c["subscriptionId"] == sub)
        .collect();
    found.reverse();
    found
}

/// What the provider took for a charge.
fn taken_for(s: &Stack, charge: &Value) -> i64 {
    let ledger = s.ledger();
    let order = charge["providerOrderId"].as_str().unwrap_or_default();
    let by_order: i64 = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["orderId"] == order && p["status"] == "PAYMENT_COMPLETED")
        .map(|p| p["amount"].as_i64().unwrap())
        .sum();
    by_order
}

fn updated_events(s: &Stack, sub: &str) -> Vec<Value> {
    let mut found: Vec<Value> =
        merchant_get(s, "/v1/events?type=subscription.updated&limit=100")["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["id"] == sub)
            .cloned()
            .collect();
    found.reverse();
    found
}

#[test]
fn a_session_coupon_reduces_the_first_payment_and_its_periods_then_ends() {
    let s = Stack::start();
    at(&s, START);
    let c = create_coupon(
        &s,
        json!({"id": "HALF3", "name": "Half off, three months", "percentOff": 50,
               "duration": "repeating", "durationInPeriods": 3, "maxRedemptions": 10}),
    );
    assert_eq!(c["valid"], true);
    assert_eq!(c["timesRedeemed"], 0);

    let r = session_with(&s, "cp-1", json!({"coupon": "HALF3"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["coupon"], "HALF3");
    let r = start_checkout(&s, "cp-1", "basic-monthly", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["amount"], PRICE / 2, "{created}");
    assert_eq!(created["discountAmount"], PRICE / 2);
    assert_eq!(created["coupon"], "HALF3");
    assert_eq!(coupon(&s, "HALF3")["timesRedeemed"], 1);
    pay(&s, created["orderId"].as_str().unwrap(), APPROVE);
    let paid = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    assert_eq!(paid["status"], "paid", "{paid}");
    let sub = paid["subscriptionId"].as_str().unwrap().to_owned();
    assert_eq!(
        subscription(&s, &sub)["discount"],
        json!({"coupon": "HALF3", "periodsLeft": 2})
    );

    for n in 1..=3 {
        at(&s, &month(n));
    }
    let charges = charges_of_sub(&s, "cp-1", &sub);
    let amounts: Vec<i64> = charges
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![4_950, 4_950, 4_950, PRICE], "{charges:?}");
    for (charge, expected) in charges.iter().zip([true, true, true, false]) {
        assert_eq!(charge["status"], "succeeded", "{charge}");
        assert_eq!(taken_for(&s, charge), charge["amount"].as_i64().unwrap());
        if expected {
            assert_eq!(
                charge["discount"],
                json!({"coupon": "HALF3", "amount": 4_950})
            );
        } else {
            assert!(charge.get("discount").is_none(), "{charge}");
        }
    }
    // The discount's end is a change of the subscription, announced.
    let state = subscription(&s, &sub);
    assert!(state.get("discount").is_none(), "{state}");
    let ended: Vec<Value> = updated_events(&s, &sub)
        .into_iter()
        .filter(|e| e["previousAttributes"].get("coupon").is_some())
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["previousAttributes"]["coupon"], "HALF3");
    assert_eq!(coupon(&s, "HALF3")["timesRedeemed"], 1, "one redemption");

    // The reports count discounts apart: gross is what was charged, nothing was refunded.
    let summary = merchant_get(
        &s,
        &format!(
            "/v1/reports/summary?from={START}&to={}&currency=752",
            month(4)
        ),
    );
    assert_eq!(
        summary["discounts"],
        json!({"count": 3, "amount": 3 * 4_950})
    );
    assert_eq!(summary["gross"], 3 * 4_950 + PRICE);
    assert_eq!(summary["refunded"], 0);
    assert_ledgers_agree(&s, "cp-1");
}

#[test]
fn a_coupon_stops_at_its_limit_and_expiry_and_the_browser_cannot_name_one() {
    let s = Stack::start();
    at(&s, START);
    create_coupon(
        &s,
        json!({"id": "ONCE10", "amountOff": 1_000, "currency": "752", "duration": "once",
               "maxRedemptions": 1, "redeemBy": "2027-03-05T00:00:00Z"}),
    );
    // Both sessions are minted while the coupon is unused; the first checkout redeems it.
    assert_eq!(
        session_with(&s, "cp-2", json!({"coupon": "ONCE10"})).status,
        201
    );
    assert_eq!(
        session_with(&s, "cp-3", json!({"coupon": "ONCE10"})).status,
        201
    );
    let first = start_checkout(&s, "cp-2", "basic-monthly", json!({}));
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json()["amount"], PRICE - 1_000);
    start_checkout(&s, "cp-3", "basic-monthly", json!({})).problem(409, "coupon-not-redeemable");
    assert_eq!(coupon(&s, "ONCE10")["timesRedeemed"], 1);
    assert_eq!(coupon(&s, "ONCE10")["valid"], false);
    session_with(&s, "cp-4", json!({"coupon": "ONCE10"})).problem(409, "coupon-not-redeemable");
    session_with(&s, "cp-4", json!({"coupon": "NOPE"})).problem(404, "not-found");

    // The browser names no coupon: the body's member is refused.
    start_checkout(&s, "cp-5", "basic-monthly", json!({"coupon": "ONCE10"}))
        .problem(400, "validation-error");

    // Paid: a one-off discount, then the full price.
    let created = first.json();
    pay(&s, created["orderId"].as_str().unwrap(), APPROVE);
    let paid = wait_checkout(&s, created["checkoutId"].as_str().unwrap());
    let sub = paid["subscriptionId"].as_str().unwrap().to_owned();
    assert!(subscription(&s, &sub).get("discount").is_none());
    at(&s, &month(1));
    let amounts: Vec<i64> = charges_of_sub(&s, "cp-2", &sub)
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![PRICE - 1_000, PRICE]);

    // Past its redeemBy a coupon is refused, even with redemptions left.
    create_coupon(
        &s,
        json!({"id": "SPRING", "percentOff": 10, "duration": "forever",
               "redeemBy": "2027-04-15T00:00:00Z"}),
    );
    at(&s, "2027-04-16T00:00:00Z");
    session_with(&s, "cp-6", json!({"coupon": "SPRING"})).problem(409, "coupon-not-redeemable");
    assert_eq!(coupon(&s, "SPRING")["valid"], false);

    // Bad coupons are refused, field by field.
    for bad in [
        json!({"id": "X1", "duration": "once"}),
        json!({"id": "X2", "percentOff": 0, "duration": "once"}),
        json!({"id": "X3", "percentOff": 101, "duration": "once"}),
        json!({"id": "X4", "amountOff": 100, "duration": "once"}),
        json!({"id": "X5", "percentOff": 5, "amountOff": 100, "currency": "752", "duration": "once"}),
        json!({"id": "X6", "percentOff": 5, "duration": "repeating"}),
        json!({"id": "X7", "percentOff": 5, "duration": "once", "durationInPeriods": 2}),
        json!({"id": "X8", "percentOff": 5, "duration": "weekly"}),
        json!({"id": "X9", "percentOff": 5, "duration": "once", "redeemBy": "2020-01-01T00:00:00Z"}),
    ] {
        s.worker
            .post_with("/v1/coupons", &bad, &merchant())
            .problem(400, "validation-error");
    }
    s.worker
        .post_with(
            "/v1/coupons",
            &json!({"id": "SPRING", "percentOff": 5, "duration": "once"}),
            &merchant(),
        )
        .problem(409, "coupon-exists");
}

#[test]
fn the_merchant_discounts_a_subscription_or_a_customer_and_each_change_is_announced() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "cp-7", "basic-monthly", APPROVE).subscription_id;
    create_coupon(
        &s,
        json!({"id": "LOYAL20", "percentOff": 20, "duration": "forever"}),
    );
    let path = format!("/v1/subscriptions/{sub}/discount");
    let r = s
        .worker
        .post_with(&path, &json!({"coupon": "LOYAL20"}), &merchant());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["discount"], json!({"coupon": "LOYAL20"}));
    // The same coupon again is no second redemption.
    s.worker
        .post_with(&path, &json!({"coupon": "LOYAL20"}), &merchant());
    assert_eq!(coupon(&s, "LOYAL20")["timesRedeemed"], 1);
    at(&s, &month(1));
    let r = s.worker.send("DELETE", &path, "", &merchant());
    assert_eq!(r.status, 200, "{}", r.text);
    at(&s, &month(2));
    let amounts: Vec<i64> = charges_of_sub(&s, "cp-7", &sub)
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![PRICE, PRICE - 1_980, PRICE]);
    let changes: Vec<Value> = updated_events(&s, &sub)
        .into_iter()
        .map(|e| e["previousAttributes"].clone())
        .collect();
    assert!(changes.contains(&json!({"coupon": null})), "{changes:?}");
    assert!(
        changes.contains(&json!({"coupon": "LOYAL20"})),
        "{changes:?}"
    );

    // A customer's one-off discount reduces one charge of theirs, whichever renews first:
    // two subscriptions closing in the same tick do not both take it.
    let a = subscribe(&s, "cp-8", "basic-monthly", APPROVE).subscription_id;
    let b = subscribe(&s, "cp-8", "weekly", APPROVE).subscription_id;
    create_coupon(
        &s,
        json!({"id": "SORRY5", "amountOff": 500, "currency": "752", "duration": "once"}),
    );
    let r = s.worker.post_with(
        "/v1/customers/cp-8/discount",
        &json!({"coupon": "SORRY5"}),
        &merchant(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["discount"],
        json!({"coupon": "SORRY5", "periodsLeft": 1})
    );
    at(&s, &month(3));
    let discounted: Vec<Value> = charges_of(&s, "cp-8")
        .into_iter()
        .filter(|c| c.get("discount").is_some())
        .collect();
    assert_eq!(discounted.len(), 1, "{discounted:?}");
    assert_eq!(discounted[0]["discount"]["amount"], 500);
    assert_eq!(
        taken_for(&s, &discounted[0]),
        discounted[0]["amount"].as_i64().unwrap()
    );
    let r = s
        .worker
        .get_with("/v1/customers/cp-8/discount", &merchant());
    assert_eq!(
        r.status, 405,
        "the discount is read on the customer's subscriptions"
    );
    assert!(subscription(&s, &a).get("discount").is_none());
    assert!(subscription(&s, &b).get("discount").is_none());
    let again = s.worker.post_with(
        "/v1/customers/cp-8/discount",
        &json!({"coupon": "SORRY5"}),
        &merchant(),
    );
    assert_eq!(
        again.status, 200,
        "a used-up discount may be given again: {}",
        again.text
    );
    s.worker
        .send("DELETE", "/v1/customers/cp-8/discount", "", &merchant())
        .json();

    // A deleted coupon is redeemed no more; the discounts it gave run on.
    let r = s
        .worker
        .send("DELETE", "/v1/coupons/LOYAL20", "", &merchant());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["valid"], false);
    s.worker
        .post_with(&path, &json!({"coupon": "LOYAL20"}), &merchant())
        .problem(409, "coupon-not-redeemable");
    assert_ledgers_agree(&s, "cp-7");
    assert_ledgers_agree(&s, "cp-8");
}

#[test]
fn a_balance_goes_back_to_the_card_on_request_once() {
    let s = Stack::start();
    at(&s, START);
    let sub = subscribe(&s, "cp-9", "basic-monthly", APPROVE).subscription_id;
    let change = |key: &str, quantity: u32| {
        let mut headers = merchant().to_vec();
        headers.push(("Idempotency-Key", key));
        let r = s.worker.post_with(
            &format!("/v1/subscriptions/{sub}/change-plan"),
            &json!({"quantity": quantity, "effective": "now"}),
            &headers,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    };
    at(&s, "2027-03-10T09:00:00Z");
    change("up", 3);
    at(&s, "2027-03-12T09:00:00Z");
    let down = change("down", 1);
    let balance = down["balance"].as_i64().unwrap();
    assert!(balance > 0, "{down}");

    let path = "/v1/customers/cp-9/balance/refund";
    s.worker
        .post_with(path, &json!({"currency": "752"}), &merchant())
        .problem(400, "idempotency-key-required");
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", "give-back-1"));
    let r = s
        .worker
        .post_with(path, &json!({"currency": "752"}), &headers);
    assert_eq!(r.status, 201, "{}", r.text);
    let made = r.json();
    assert_eq!(made["amount"], balance);
    assert_eq!(made["balance"], 0);
    let refunds: Vec<String> = made["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    // Asked again: the same refunds, nothing more.
    let again = s
        .worker
        .post_with(path, &json!({"currency": "752"}), &headers);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["refunds"], made["refunds"]);
    let mut other = merchant().to_vec();
    other.push(("Idempotency-Key", "give-back-2"));
    s.worker
        .post_with(path, &json!({"currency": "752"}), &other)
        .problem(409, "insufficient-balance");

    // The provider gives it back once settled; the balance shows where it went.
    for day in [
        "2027-03-13T09:00:00Z",
        "2027-03-15T09:00:00Z",
        "2027-03-17T09:00:00Z",
    ] {
        at(&s, day);
    }
    let mut back = 0;
    for id in &refunds {
        let r = merchant_get(&s, &format!("/v1/refunds/{id}"));
        assert_eq!(r["status"], "succeeded", "{r}");
        back += r["amount"].as_i64().unwrap();
    }
    assert_eq!(back, balance);
    // At the provider: returns of the charges refunded (or voids), adding up to the balance.
    let ledger = s.ledger();
    let mut given_back = 0;
    for r in made["refunds"].as_array().unwrap() {
        let charge = merchant_get(
            &s,
            &format!("/v1/charges/{}", r["chargeId"].as_str().unwrap()),
        );
        let order = charge["providerOrderId"].as_str().unwrap();
        let returns: i64 = returns_of(&ledger, order)
            .iter()
            .map(|o| o["amount"].as_i64().unwrap().abs())
            .sum();
        given_back += if r["method"] == "void" {
            r["amount"].as_i64().unwrap()
        } else {
            returns
        };
    }
    assert_eq!(
        given_back, balance,
        "the provider gave back the balance, once"
    );
    let view = merchant_get(&s, "/v1/customers/cp-9/balance");
    assert!(
        view["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["reason"] == "refunded" && t["amount"] == -balance),
        "{view}"
    );
    assert_ledgers_agree(&s, "cp-9");
}
