//! The customer portal, with the customer's own session: subscriptions and their next charge,
//! charges in pages, cancelling at period end and undoing it, and replacing the card (a
//! refunded verification payment, or the payment of what is outstanding).

use serde_json::{Value, json};

use crate::flows::*;
use crate::http::Reply;
use crate::stack::{ORIGIN, Stack};

const MASTERCARD: &str = "5555555555554444";

fn portal_post(s: &Stack, customer: &str, path: &str, body: &Value) -> Reply {
    customer_post(s, customer, path, body, &[])
}

fn replace_card(s: &Stack, customer: &str) -> Value {
    let r = portal_post(
        s,
        customer,
        "/v1/portal/payment-method",
        &json!({"returnUrl": format!("{ORIGIN}/account")}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    remember_checkout(s, customer, &r);
    r.json()
}

#[test]
fn the_portal_shows_the_customers_own_account_and_cancels_at_period_end() {
    let s = Stack::start();
    tick(&s, "2027-01-10T00:00:00Z");
    let sub = subscribe(&s, "portal-1", "basic-monthly", APPROVE);
    let inst = subscribe_with(
        &s,
        "portal-1",
        "course",
        APPROVE,
        json!({"installments": 3}),
    );
    let other = subscribe(&s, "portal-other", "weekly", APPROVE);
    for (i, amount) in [300, 400, 500].into_iter().enumerate() {
        let mut body = charge_body("portal-1", amount);
        body["metadata"] = json!({"internal": "merchant-only note"});
        let r = charge(&s, &format!("portal-1-{i}"), &body);
        assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    }

    let subs = customer_get(&s, "portal-1", "/v1/portal/subscriptions").json();
    let subs = subs["data"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{subs:?}");
    for s in subs {
        assert_eq!(s["customerRef"], "portal-1");
        assert_eq!(s["status"], "active");
        assert!(s["nextChargeAt"].is_string(), "{s}");
    }

    // Charges, newest first, two at a time; no provider ids, no merchant metadata.
    let mut seen = Vec::new();
    let mut path = "/v1/portal/charges?limit=2".to_owned();
    loop {
        let page = customer_get(&s, "portal-1", &path).json();
        for c in page["data"].as_array().unwrap() {
            assert!(
                c.get("providerOrderId").is_none() && c.get("metadata").is_none(),
                "{c}"
            );
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        if page["hasMore"] != true {
            break;
        }
        path = format!(
            "/v1/portal/charges?limit=2&startingAfter={}",
            page["nextCursor"].as_str().unwrap()
        );
    }
    assert_eq!(seen.len(), 5, "two checkouts and three charges: {seen:?}");
    let all: Vec<String> = charges_of(&s, "portal-1")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        seen, all,
        "the same charges, in the same order, as the merchant's list"
    );
    let others = charges_of(&s, "portal-other");
    customer_get(
        &s,
        "portal-1",
        &format!(
            "/v1/portal/charges?startingAfter={}",
            others[0]["id"].as_str().unwrap()
        ),
    )
    .problem(400, "invalid-request");

    // Cancel at period end, undo it, cancel again.
    let cancel = format!("/v1/portal/subscriptions/{}/cancel", sub.subscription_id);
    let reactivate = format!(
        "/v1/portal/subscriptions/{}/reactivate",
        sub.subscription_id
    );
    let r = portal_post(&s, "portal-1", &cancel, &json!({}));
    let v = r.json();
    assert_eq!(v["cancelAtPeriodEnd"], true, "{}", r.text);
    assert!(v.get("nextChargeAt").is_none(), "{v}");
    let r = portal_post(&s, "portal-1", &reactivate, &json!({}));
    assert_eq!(r.json()["cancelAtPeriodEnd"], false, "{}", r.text);
    portal_post(&s, "portal-1", &reactivate, &json!({})).problem(409, "not-canceled");
    // An installment plan is a purchase: the customer cannot walk away from it.
    portal_post(
        &s,
        "portal-1",
        &format!("/v1/portal/subscriptions/{}/cancel", inst.subscription_id),
        &json!({}),
    )
    .problem(409, "not-cancellable");
    // Bodyless: anything but nothing or {} is refused, and changes nothing.
    let auth = as_customer(&s, "portal-1");
    s.worker
        .post_raw(
            &cancel,
            "[true]",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
        )
        .problem(400, "validation-error");
    assert_eq!(
        subscription(&s, &sub.subscription_id)["cancelAtPeriodEnd"],
        false
    );
    let r = s
        .worker
        .post_raw(&cancel, "", &[("Authorization", auth.as_str())]);
    assert_eq!(r.json()["cancelAtPeriodEnd"], true, "{}", r.text);

    // At the end of the period it ends, without a renewal; the other customer is untouched.
    eventually(30, "the subscription to end", || {
        tick(&s, "2027-02-11T00:00:00Z");
        subscription(&s, &sub.subscription_id)["status"] == "canceled"
    });
    assert!(
        !charges_of(&s, "portal-1")
            .iter()
            .any(|c| c["kind"] == "renewal" && c["subscriptionId"] == sub.subscription_id.as_str()),
        "no renewal of a subscription that ended"
    );
    let other_sub = subscription(&s, &other.subscription_id);
    assert_eq!(other_sub["cancelAtPeriodEnd"], false);
    assert_ledgers_agree(&s, "portal-1");
    assert_ledgers_agree(&s, "portal-other");
}

#[test]
fn replacing_the_card_takes_a_verification_payment_and_refunds_it_at_once() {
    let s = Stack::start();
    let first = subscribe(&s, "card-1", "basic-monthly", APPROVE);
    let started = replace_card(&s, "card-1");
    assert_eq!(started["purpose"], "card");
    assert_eq!(started["amount"], 300, "the provider's smallest amount");
    assert_eq!(started["currency"], "752");
    assert!(started.get("settlesChargeId").is_none(), "{started}");
    let order_id = started["orderId"].as_str().unwrap().to_owned();
    // No webhook: several polls of the return page complete the payment at the same time.
    set_faults(&s, json!([{"endpoint": "webhook", "drop_rate": 1.0}]));
    pay(&s, &order_id, MASTERCARD);
    let checkout_id = started["checkoutId"].as_str().unwrap();
    let polls: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| get_checkout(&s, checkout_id)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &polls {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    clear_faults(&s);
    let state = wait_checkout(&s, checkout_id);
    assert_eq!(state["status"], "paid", "{state}");
    assert_eq!(state["outcome"], "verified");
    assert_eq!(state["card"]["last4"], "4444");
    assert_eq!(payment_method(&s, "card-1").json()["last4"], "4444");

    let mut verification = Value::Null;
    eventually(30, "the verification payment to be refunded", || {
        let charges = customer_get(&s, "card-1", "/v1/portal/charges").json();
        verification = charges["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["description"] == "Card verification (refunded)")
            .cloned()
            .unwrap_or(Value::Null);
        verification["refundedAmount"] == 300
    });
    assert_eq!(verification["amount"], 300);
    assert_eq!(verification["status"], "succeeded");
    // Refunded the same day, so voided: the payment is cancelled whole and no return exists.
    let ledger = s.ledger();
    let payment = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["orderId"] == order_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the verification payment: {ledger}"));
    assert_eq!(payment["voided"], true, "{payment}");
    assert_eq!(payment["amount"], 300);
    assert!(returns_of(&ledger, &order_id).is_empty(), "{ledger}");

    // The merchant's next charge uses the new card.
    let r = charge(&s, "card-1-after", &charge_body("card-1", 700));
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    let ledger = s.ledger();
    assert_eq!(
        completed_payments_for_token(&ledger, &token_of_order(&ledger, &order_id)),
        1
    );
    assert_eq!(
        completed_payments_for_token(&ledger, &token_of_order(&ledger, &first.order_id)),
        0
    );
    assert_ledgers_agree(&s, "card-1");
}

#[test]
fn replacing_the_card_of_a_past_due_subscription_pays_what_is_outstanding() {
    let s = Stack::start();
    tick(&s, "2027-05-01T00:00:00Z");
    let sub = subscribe(&s, "card-2", "basic-monthly", SOFT_DECLINE_LATER);
    let mut renewal = Value::Null;
    eventually(30, "the renewal to be declined", || {
        tick(&s, "2027-06-01T01:00:00Z");
        renewal = charges_of(&s, "card-2")
            .into_iter()
            .find(|c| c["kind"] == "renewal")
            .unwrap_or(Value::Null);
        renewal["status"] == "failed"
    });
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "past_due");
    let retry_at = renewal["nextRetryAt"].as_str().unwrap().to_owned();
    assert!(
        retry_at.as_str() < "2027-06-02T06:00:00Z",
        "the retry is due by the tick below: {retry_at}"
    );
    let renewal_id = renewal["id"].as_str().unwrap().to_owned();
    let attempts = renewal["attempts"].as_i64().unwrap();

    // The customer comes to replace the card the evening after the decline...
    tick(&s, "2027-06-01T20:00:00Z");
    let first = replace_card(&s, "card-2");
    assert_eq!(first["amount"], 9900, "what is outstanding");
    assert_eq!(first["settlesChargeId"], renewal_id.as_str());
    // ...and dunning's retry, due the next morning, does not charge the old card meanwhile.
    tick(&s, "2027-06-02T06:00:00Z");
    let parked = merchant_get(&s, &format!("/v1/charges/{renewal_id}"));
    assert_eq!(parked["attempts"].as_i64().unwrap(), attempts, "{parked}");
    assert_eq!(parked["status"], "failed");

    // A second replacement supersedes the first, whose page can no longer be paid.
    let second = replace_card(&s, "card-2");
    assert_ne!(second["checkoutId"], first["checkoutId"]);
    assert_eq!(second["settlesChargeId"], renewal_id.as_str());
    let r = s.sandbox.post(
        &format!(
            "/_sandbox/orders/{}/pay",
            first["orderId"].as_str().unwrap()
        ),
        &json!({"cardNumber": APPROVE}),
    );
    assert_eq!(r.status, 410, "{}", r.text);
    let superseded = get_checkout(&s, first["checkoutId"].as_str().unwrap()).json();
    assert_eq!(superseded["status"], "failed");
    assert_eq!(superseded["failureReason"], "superseded");

    let order_id = second["orderId"].as_str().unwrap().to_owned();
    pay(&s, &order_id, APPROVE);
    let state = wait_checkout(&s, second["checkoutId"].as_str().unwrap());
    assert_eq!(state["status"], "paid", "{state}");
    assert_eq!(state["outcome"], "settled");
    let settled = merchant_get(&s, &format!("/v1/charges/{renewal_id}"));
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(settled["providerOrderId"], order_id.as_str());
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
    assert_eq!(payment_method(&s, "card-2").json()["last4"], "1111");
    assert!(
        !charges_of(&s, "card-2")
            .iter()
            .any(|c| c["description"] == "Card verification (refunded)"),
        "nothing to verify: the payment was the outstanding charge"
    );
    assert!(s.ledger()["returns"].as_array().unwrap().is_empty());
    assert_ledgers_agree(&s, "card-2");

    // The next renewal is charged to the new card.
    eventually(30, "the next renewal", || {
        tick(&s, "2027-07-01T01:00:00Z");
        charges_of(&s, "card-2")
            .iter()
            .filter(|c| c["kind"] == "renewal" && c["status"] == "succeeded")
            .count()
            == 2
    });
    let ledger = s.ledger();
    assert_eq!(
        completed_payments_for_token(&ledger, &token_of_order(&ledger, &order_id)),
        1
    );
    assert_ledgers_agree(&s, "card-2");
}
