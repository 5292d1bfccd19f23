//! The charge path against a provider as unkind as its documents allow: a cancel that answers
//! 500 after it worked, a decline hidden by a lagging status, a payment on an order nobody
//! expects. Only the card declines, a declined card is not charged again by a fence, and money
//! nobody expected is refunded and recorded.

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::Stack;

fn set_behaviour(s: &Stack, order_id: &str, behaviour: Value) {
    let token = token_of_order(&s.ledger(), order_id);
    let r = s
        .sandbox
        .put(&format!("/_sandbox/tokens/{token}/behaviour"), &behaviour);
    assert!(r.status < 300, "{}", r.text);
}

/// The subscription's renewal charge for its first renewal period.
fn first_renewal(s: &Stack, customer: &str) -> Value {
    charges_of(s, customer)
        .into_iter()
        .find(|c| c["kind"] == "renewal" && c["periodIndex"] == 1)
        .unwrap_or_else(|| panic!("no renewal for {customer}"))
}

/// The provider's payments on every order whose reference is `reference`.
fn payments_for(s: &Stack, reference: &str) -> Vec<Value> {
    let ledger = s.ledger();
    let orders: Vec<String> = ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["referenceId"] == reference)
        .filter_map(|o| o["orderId"].as_str().map(str::to_owned))
        .collect();
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| orders.iter().any(|o| p["orderId"] == o.as_str()))
        .cloned()
        .collect()
}

fn statuses(payments: &[Value]) -> Vec<&str> {
    payments
        .iter()
        .map(|p| p["status"].as_str().unwrap_or("?"))
        .collect()
}

/// The charge's payments, oldest first, never reached the card after a decline: at most one
/// declined and nothing after it. Before it there may be payments the fence cancelled while
/// they were still in flight (on a slow machine the cancel can land before the card answers);
/// those moved no money, and trying again after them is right.
fn declined_at_most_once(payments: &[Value]) {
    let mut payments = payments.to_vec();
    payments.sort_by(|a, b| a["createdAt"].as_str().cmp(&b["createdAt"].as_str()));
    let seen = statuses(&payments);
    let declined = seen.iter().filter(|s| **s == "PAYMENT_FAILED").count();
    assert!(declined <= 1, "the card was declined twice: {seen:?}");
    let live = seen.iter().filter(|s| **s != "PAYMENT_CANCELLED").count();
    assert!(
        live <= 1,
        "more than one payment reached the card: {seen:?}"
    );
    if let Some(at) = seen.iter().position(|s| *s != "PAYMENT_CANCELLED") {
        assert_eq!(at, seen.len() - 1, "a payment after the decline: {seen:?}");
    }
}

/// The subscription never left `active`: no decline was booked against it.
fn never_past_due(s: &Stack, subscription_id: &str) {
    let events = merchant_get(s, &format!("/v1/subscriptions/{subscription_id}/events"));
    let text = events.to_string();
    assert!(
        !text.contains("past_due") && !text.contains("unpaid"),
        "{text}"
    );
}

/// A good card, a renewal whose `POST /payments` answered 500 after it worked, a status that
/// lags, and a cancel (the fence) that answers 500 after it worked. The provider then shows
/// the payment cancelled: that is not the card's answer. The charge moves to a new order (the
/// cancelled one is never reused) and succeeds; the subscription never goes past due.
#[test]
fn a_cancel_that_fails_after_working_is_not_a_decline() {
    let s = Stack::start();
    tick(&s, "2027-03-01T09:00:00Z");
    let sub = subscribe(&s, "safe-1", "weekly", APPROVE);
    // The renewal's payment takes long enough for the fence to meet it in flight.
    set_behaviour(
        &s,
        &sub.order_id,
        json!({"outcome": "approve", "delay_ms": 2500, "times": 1}),
    );
    set_faults(
        &s,
        json!([
            {"endpoint": "initiate_payment", "fault": "error_after", "times": 1},
            {"endpoint": "cancel_order", "fault": "error_after", "times": 1},
            {"endpoint": "order_status", "status_lag_ms": 1500}
        ]),
    );
    let due = "2027-03-08T09:00:00Z";
    tick(&s, due);
    let charge = first_renewal(&s, "safe-1");
    let id = charge["id"].as_str().unwrap().to_owned();
    // The fence really cancelled the payment, though the provider answered 500.
    eventually(20, "the first payment to be cancelled", || {
        statuses(&payments_for(&s, &id)) == ["PAYMENT_CANCELLED"]
    });
    // Ticks at the same instant: the status catches up, shows the cancelled payment, and the
    // charge goes on with a new order.
    eventually(60, "the renewal to succeed", || {
        tick(&s, due);
        merchant_get(&s, &format!("/v1/charges/{id}"))["status"] == "succeeded"
    });
    clear_faults(&s);
    let payments = payments_for(&s, &id);
    let mut seen = statuses(&payments);
    seen.sort();
    assert_eq!(
        seen,
        ["PAYMENT_CANCELLED", "PAYMENT_COMPLETED"],
        "{payments:?}"
    );
    assert_ne!(
        payments[0]["orderId"], payments[1]["orderId"],
        "a cancelled order is never used again"
    );
    let charge = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert!(charge.get("failureReason").is_none(), "{charge}");
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
    never_past_due(&s, &sub.subscription_id);
    assert_ledgers_agree(&s, "safe-1");
}

/// A card that hard-declines, a renewal whose `POST /payments` answered 500 after it worked,
/// and a status that does not show the decline yet. The fence (a cancel) succeeds on the
/// still-open order, yet no new payment starts: the outcome is awaited, shows up as a hard
/// decline, and the card is charged exactly once.
#[test]
fn a_decline_hidden_by_a_lagging_status_is_not_charged_again() {
    let s = Stack::start();
    tick(&s, "2027-03-01T09:00:00Z");
    let sub = subscribe(&s, "safe-2", "weekly", HARD_DECLINE_LATER);
    // `POST /payments` works but answers only after the worker gave up on it, by which time
    // the card has declined: the fence (a cancel) meets an order that is still open.
    set_faults(
        &s,
        json!([
            {"endpoint": "initiate_payment", "fault": "timeout", "timeout_ms": 4000, "times": 1},
            {"endpoint": "order_status", "status_lag_ms": 6000}
        ]),
    );
    let due = "2027-03-08T09:00:00Z";
    tick(&s, due);
    let id = first_renewal(&s, "safe-2")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // However often the scheduler runs meanwhile, nothing new is attempted on the card.
    for _ in 0..3 {
        tick(&s, due);
        declined_at_most_once(&payments_for(&s, &id));
    }
    eventually(60, "the hard decline to be learned", || {
        tick(&s, due);
        subscription(&s, &sub.subscription_id)["status"] == "unpaid"
    });
    clear_faults(&s);
    // A day later, and a week later: a hard-declined card is never charged again.
    tick(&s, "2027-03-09T09:00:00Z");
    tick(&s, "2027-03-16T09:00:00Z");
    let payments = payments_for(&s, &id);
    declined_at_most_once(&payments);
    assert_eq!(statuses(&payments).last(), Some(&"PAYMENT_FAILED"));
    let charge = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(charge["status"], "failed", "{charge}");
    assert_eq!(charge["failureReason"], "DENIED_DO_NOT_TRY_AGAIN");
    assert_eq!(charge["declineCategory"], "hard");
    assert_eq!(charge["retryable"], false);
    let token = token_of_order(&s.ledger(), &sub.order_id);
    assert_eq!(
        s.ledger()["payments_per_token"][&token]["failed"],
        1,
        "one decline of the card, none added by a fence"
    );
    assert_ledgers_agree(&s, "safe-2");
}

/// Whether one of `payments` went back to the customer: voided the same day, or returned by a
/// completed return order against its purchase.
fn given_back(s: &Stack, payments: &[Value]) -> bool {
    let ledger = s.ledger();
    payments.iter().any(|p| {
        p["status"] == "PAYMENT_COMPLETED"
            && (p["voided"] == true
                || returns_of(&ledger, p["orderId"].as_str().unwrap_or_default())
                    .iter()
                    .any(|r| r["status"] == "PAYMENT_COMPLETED"))
    })
}

/// The provider created a checkout's order but the answer was lost (500 after acting), so the
/// ledger never learned the order. Someone pays it anyway (here by hand): the signed webhook
/// names an order nobody expects; the worker confirms it by status, refunds the payment (a
/// void, the same day) and records an incident. No money stays that the ledger does not know.
#[test]
fn a_payment_on_an_order_nobody_expects_is_refunded_and_recorded() {
    let s = Stack::start();
    set_faults(
        &s,
        json!([{"endpoint": "create_order", "fault": "error_after", "times": 1}]),
    );
    let r = start_checkout(&s, "orphan-1", "basic-monthly", json!({}));
    assert!(r.status >= 500, "{} {}", r.status, r.text);
    clear_faults(&s);
    let ledger = s.ledger();
    let orphan = ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["referenceId"]
                .as_str()
                .is_some_and(|r| r.starts_with("co_"))
        })
        .unwrap_or_else(|| panic!("the provider kept the order: {ledger}"))
        .clone();
    let order_id = orphan["orderId"].as_str().unwrap();
    pay(&s, order_id, APPROVE);

    eventually(30, "the unexpected payment's refund", || {
        let incidents = merchant_get(&s, "/v1/incidents?type=unexpectedPaymentRefunded");
        incidents["data"].as_array().is_some_and(|d| d.len() == 1) && {
            let ledger = s.ledger();
            let paid: Vec<Value> = ledger["payments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["orderId"] == order_id)
                .cloned()
                .collect();
            given_back(&s, &paid)
        }
    });
    let incident = &merchant_get(&s, "/v1/incidents")["data"][0];
    assert_eq!(incident["type"], "unexpectedPaymentRefunded", "{incident}");
    assert_eq!(incident["providerOrderId"], order_id);
    assert_eq!(incident["customerRef"], "orphan-1");
    let id = incident["id"].as_str().unwrap();
    assert_eq!(&merchant_get(&s, &format!("/v1/incidents/{id}")), incident);
    // The money that moved is on the customer's record, with its refund.
    let charges = charges_of(&s, "orphan-1");
    assert_eq!(charges.len(), 1, "{charges:?}");
    let charge_id = charges[0]["id"].as_str().unwrap();
    assert_eq!(incident["chargeId"], charge_id);
    eventually(30, "the refund to complete", || {
        merchant_get(&s, &format!("/v1/charges/{charge_id}"))["refundedAmount"] == 9900
    });
    // The customer has no card on file and no subscription: nothing was activated.
    assert!(
        merchant_get(&s, "/v1/subscriptions?customerRef=orphan-1")["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_ledgers_agree(&s, "orphan-1");
}

/// Mastercard and Visa count declines per card, over every charge of it: once the card
/// declined five times in a day, a sixth charge is refused before it reaches the provider.
/// After a hard decline the card is never attempted again, whatever charge asks.
#[test]
fn card_network_limits_hold_across_charges() {
    let s = Stack::start();
    let soft = subscribe(&s, "limits-soft", "basic-monthly", SOFT_DECLINE_LATER);
    for n in 0..5 {
        let r = charge(&s, &format!("soft-{n}"), &charge_body("limits-soft", 500));
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json()["declineCategory"], "soft", "{}", r.text);
    }
    let token = token_of_order(&s.ledger(), &soft.order_id);
    let attempted = |s: &Stack| s.ledger()["payments_per_token"][&token]["attempted"].clone();
    let before = attempted(&s);
    let r = charge(&s, "soft-5", &charge_body("limits-soft", 500));
    assert_eq!(r.status, 201, "{}", r.text);
    let c = r.json();
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(c["failureReason"], "card_retry_limit", "{c}");
    assert_eq!(
        attempted(&s),
        before,
        "the sixth charge never reached the card"
    );
    assert_ledgers_agree(&s, "limits-soft");

    let hard = subscribe(&s, "limits-hard", "basic-monthly", HARD_DECLINE_LATER);
    let r = charge(&s, "hard-0", &charge_body("limits-hard", 500));
    assert_eq!(r.json()["declineCategory"], "hard", "{}", r.text);
    let token = token_of_order(&s.ledger(), &hard.order_id);
    let r = charge(&s, "hard-1", &charge_body("limits-hard", 700));
    let c = r.json();
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(c["failureReason"], "card_hard_declined", "{c}");
    assert_eq!(
        s.ledger()["payments_per_token"][&token]["attempted"],
        1,
        "a hard-declined card is not attempted again"
    );
    assert_ledgers_agree(&s, "limits-hard");
}

/// The provider confirms a cancel but lets the payment in flight complete anyway, and its
/// status lags past the settle window: the charge moved on to a new order and was paid there
/// too. The second payment is caught on the order the charge gave up (by its webhook or the
/// cron's watch) and refunded (voided, the same day), with a `duplicateRefunded` incident: the
/// customer pays once.
#[test]
fn a_payment_completing_after_a_confirmed_cancel_is_refunded() {
    let s = Stack::start();
    tick(&s, "2027-03-01T09:00:00Z");
    let sub = subscribe(&s, "safe-3", "weekly", APPROVE);
    set_behaviour(
        &s,
        &sub.order_id,
        json!({"outcome": "approve", "delay_ms": 3000, "times": 1}),
    );
    // Webhooks are held back, and every status read lags until the faults are cleared: how
    // many reads a tick makes depends on the machine's speed, and a read that saw the first
    // payment would (rightly) settle the charge on it before the window gives the order up.
    set_faults(
        &s,
        json!([
            {"endpoint": "initiate_payment", "fault": "error_after", "times": 1},
            {"endpoint": "order_status", "status_lag_ms": 600000},
            {"endpoint": "cancel_order", "fault": "payment_survives", "times": 1},
            {"endpoint": "webhook", "drop_rate": 1.0}
        ]),
    );
    tick(&s, "2027-03-08T09:00:00Z");
    let id = first_renewal(&s, "safe-3")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(payments_for(&s, &id).len(), 1);
    // Past the settle window the charge gives the first order up and pays on a new one.
    tick(&s, "2027-03-08T09:16:00Z");
    eventually(
        20,
        "the first payment to complete despite the cancel",
        || {
            let payments = payments_for(&s, &id);
            payments.len() == 2
                && statuses(&payments)
                    .iter()
                    .all(|s| *s == "PAYMENT_COMPLETED")
        },
    );
    clear_faults(&s);
    // Ticks (with the watch over given-up orders) until one of the two payments is returned.
    let mut minute = 17;
    eventually(60, "the second payment to be refunded", || {
        minute += 2;
        tick(&s, &format!("2027-03-08T09:{minute:02}:00Z"));
        let charge = merchant_get(&s, &format!("/v1/charges/{id}"));
        charge["status"] == "succeeded"
            && charge["incidents"]
                .as_array()
                .is_some_and(|i| i.iter().any(|k| k == "duplicateRefunded"))
            && given_back(&s, &payments_for(&s, &id))
    });
    let incidents = merchant_get(&s, &format!("/v1/incidents?chargeId={id}"));
    let duplicate = incidents["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "duplicateRefunded")
        .cloned()
        .unwrap();
    assert_eq!(duplicate["amount"], 3000, "{duplicate}");
    assert!(duplicate["refundId"].is_string(), "{duplicate}");
    // The refund of the second payment leaves the charge's own payment untouched.
    let charge = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(charge["refundedAmount"], 0, "{charge}");
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
    assert_ledgers_agree(&s, "safe-3");
}

/// The provider forgets the order of a payment in flight: the charge is not polled forever in
/// silence. It needs attention (an `orderLost` incident tells an operator), keeps being looked
/// at less often, and the customer's subscription is not blamed.
#[test]
fn an_order_the_provider_lost_needs_attention() {
    let s = Stack::start();
    tick(&s, "2027-03-01T09:00:00Z");
    let sub = subscribe(&s, "safe-4", "weekly", APPROVE);
    set_behaviour(
        &s,
        &sub.order_id,
        json!({"outcome": "approve", "delay_ms": 60000, "times": 1}),
    );
    let due = "2027-03-08T09:00:00Z";
    tick(&s, due);
    let charge = first_renewal(&s, "safe-4");
    let id = charge["id"].as_str().unwrap().to_owned();
    let order_id = charge["providerOrderId"].as_str().unwrap().to_owned();
    let r = s
        .sandbox
        .send("DELETE", &format!("/_sandbox/orders/{order_id}"), "", &[]);
    assert!(r.status < 300, "{}", r.text);
    let report = tick(&s, due);
    assert_eq!(report["needsAttention"], 1, "{report}");
    let charge = merchant_get(&s, &format!("/v1/charges/{id}"));
    assert_eq!(charge["status"], "needs_attention", "{charge}");
    assert_eq!(charge["attention"], "orderLost");
    assert_eq!(charge["incidents"], json!(["orderLost"]));
    let incidents = merchant_get(&s, "/v1/incidents?type=orderLost");
    assert_eq!(incidents["data"][0]["chargeId"], id.as_str());
    assert_eq!(incidents["data"][0]["providerOrderId"], order_id.as_str());
    // Not polled every minute any more, and never a second payment meanwhile.
    let report = tick(&s, "2027-03-08T09:10:00Z");
    assert_eq!(report["chargesDriven"], 0, "{report}");
    assert_eq!(payments_for(&s, &id).len(), 1);
    // Looked at again an hour later; still one incident, whatever the number of looks.
    let report = tick(&s, "2027-03-08T10:05:00Z");
    assert_eq!(report["needsAttention"], 1, "{report}");
    let incidents = merchant_get(&s, "/v1/incidents?type=orderLost");
    assert_eq!(incidents["data"].as_array().unwrap().len(), 1);
    assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
}
