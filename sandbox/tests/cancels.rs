//! Cancelling orders as unkindly as the provider's documents allow: a confirmed cancel that does
//! not stop a payment already in flight, cancels that fail or time out after acting, and a
//! cancelled order that never takes another payment.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// How long a "slow" charge stays in flight at first: far longer than a few local calls take, so
/// a cancel nearly always reaches it before it settles. A try whose calls took longer than that
/// (measured) proves nothing and runs again with twice the time.
const IN_FLIGHT_MS: u64 = 3_000;

/// A fresh token whose charges stay in flight `delay_ms`: each try counts only its own charges.
fn slow_token(s: &Sandbox, delay_ms: u64) -> String {
    let token = s.token_for(APPROVE);
    let r = s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "approve", "delay_ms": delay_ms}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    token
}

fn cancel(s: &Sandbox, order: &str) -> Reply {
    s.api("DELETE", &format!("/orders/{order}"), None)
}

fn register(s: &Sandbox, url: &str) {
    let r = s.control(
        "PUT",
        "/_sandbox/webhooks",
        &json!({"url": url, "retries": false}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn last_payment(status: &Value) -> Value {
    status["payments"]
        .as_array()
        .and_then(|p| p.last().cloned())
        .unwrap_or(Value::Null)
}

fn is_final(payment_status: &Value) -> bool {
    ["PAYMENT_COMPLETED", "PAYMENT_FAILED", "PAYMENT_CANCELLED"]
        .contains(&payment_status.as_str().unwrap_or(""))
}

/// (completed, cancelled) charges of a token.
fn charges_of(s: &Sandbox, token: &str) -> (Option<i64>, Option<i64>) {
    let totals = &s.ledger()["payments_per_token"][token];
    (totals["completed"].as_i64(), totals["cancelled"].as_i64())
}

#[test]
fn a_confirmed_cancel_can_leave_a_payment_in_flight_to_complete() {
    let s = start();
    let hook = s.receiver(0);
    register(&s, &hook.url);

    let (order, token, payment, delay) =
        conclusive("a cancel of a payment in flight", IN_FLIGHT_MS, |delay| {
            let token = slow_token(&s, delay);
            s.set_faults(json!({"rules": [
                {"endpoint": "cancel_order", "fault": "payment_survives", "times": 1}]}));
            let order = s.mit_order_with(9900, "survives");
            let before_charge = Instant::now();
            let payment = s.charge(&order, &token).body["data"]["paymentId"].clone();
            let r = cancel(&s, &order);
            // Meanwhile the order reads cancelled, its payment still in flight.
            let st = s.status(&order);
            let in_flight =
                r.body["status"] == "SUCCESS" && !is_final(&last_payment(&st)["paymentStatus"]);
            if !within(before_charge, delay) && !in_flight {
                return None;
            }
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["status"], "SUCCESS", "the cancel is confirmed");
            assert_eq!(r.body["data"]["orderStatus"], "PAYMENT_CANCELLED");
            assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
            assert_eq!(last_payment(&st)["paymentId"], payment);
            assert!(!is_final(&last_payment(&st)["paymentStatus"]), "{st}");
            Some((order, token, payment, delay))
        });
    assert!(
        s.charge(&order, &token).is_business_error("PS_0040"),
        "a cancelled order takes no new payment"
    );

    // Then the payment completes as it would have: the money moves.
    eventually_after(
        "the surviving payment to complete",
        Duration::from_millis(delay),
        || s.status(&order)["orderStatus"] == "PAYMENT_COMPLETED",
    );
    let st = s.status(&order);
    assert_eq!(last_payment(&st)["paymentStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["transactions"][0]["amount"], "9900");
    assert_eq!(st["paymentIds"], json!([payment]));
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={order}")).body;
    assert_eq!(ledger["orders"][0]["cancelled"], true);
    assert_eq!(ledger["orders"][0]["status"], "PAYMENT_COMPLETED");
    assert_eq!(ledger["payments"][0]["status"], "PAYMENT_COMPLETED");
    assert_eq!(charges_of(&s, &token), (Some(1), Some(0)));

    // The usual signed webhooks announce it; nothing announced the payment as cancelled.
    eventually("order.paymentcompleted", || {
        hook.types_of(&order)
            .contains(&"order.paymentcompleted".to_owned())
    });
    let types = hook.types_of(&order);
    assert!(
        !types.contains(&"order.paymentcancelled".to_owned()),
        "{types:?}"
    );
    let cancelled_at = types.iter().position(|t| t == "order.cancelled");
    let completed_at = types.iter().position(|t| t == "order.paymentcompleted");
    assert!(cancelled_at < completed_at, "{types:?}");
    let completed = hook
        .of_order(&order)
        .into_iter()
        .find(|d| d.event_type() == "order.paymentcompleted")
        .unwrap();
    assert!(verify(WEBHOOK_SECRET, &completed.raw, &completed.signature));
    assert_eq!(completed.body["data"]["paymentId"], payment);
    assert_eq!(completed.body["data"]["amount"], "9900");

    // Now it is a completed order: no second cancel, and it can be refunded like any purchase
    // once it settled.
    assert!(cancel(&s, &order).is_business_error("OR_0040"));
    s.settle_all();
    let refund = s.create_order(&json!({"terminal$id": MIT,
        "orderLines": [{"id": "r", "name": "Refund", "quantity": -1, "purchaseOrderId": order,
                        "amount": {"total": 9900, "currency": "752"}}],
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}));
    assert_eq!(refund.body["status"], "SUCCESS", "{}", refund.text);

    // The rule had `times: 1`: the next cancel fences again.
    conclusive("the next cancel, fenced", delay, |delay| {
        let token = slow_token(&s, delay);
        let fenced = s.mit_order_with(9900, "fenced");
        let before_charge = Instant::now();
        s.charge(&fenced, &token);
        let r = cancel(&s, &fenced);
        if !within(before_charge, delay) && r.body["status"] != "SUCCESS" {
            return None;
        }
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        s.wait_steps_done(&fenced);
        assert_eq!(
            last_payment(&s.status(&fenced))["paymentStatus"],
            "PAYMENT_CANCELLED"
        );
        assert_eq!(charges_of(&s, &token), (Some(0), Some(1)));
        Some(())
    });
}

#[test]
fn surviving_payments_hold_until_cleared_and_a_rate_is_reproducible_for_a_seed() {
    // Which cancels of a batch let their payment complete, under a seeded rate. The cancels must
    // all reach payments in flight: the try proves nothing if one came too late to.
    let pattern = |seed: u64, delay: u64| -> Option<Vec<bool>> {
        let s = start();
        let token = slow_token(&s, delay);
        s.set_faults(json!({"seed": seed, "rules": [
            {"endpoint": "cancel_order", "payment_survives_rate": 0.5}]}));
        let before_charges = Instant::now();
        let orders: Vec<String> = (0..10)
            .map(|i| {
                let order = s.mit_order_with(9900, &format!("batch-{i}"));
                assert_eq!(s.charge(&order, &token).body["status"], "SUCCESS");
                order
            })
            .collect();
        let cancels: Vec<Reply> = orders.iter().map(|order| cancel(&s, order)).collect();
        if !within(before_charges, delay) && cancels.iter().any(|r| r.body["status"] != "SUCCESS") {
            return None;
        }
        for r in &cancels {
            assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        }
        Some(
            orders
                .iter()
                .map(|order| {
                    eventually_after(
                        "the payment to settle",
                        Duration::from_millis(delay),
                        || is_final(&last_payment(&s.status(order))["paymentStatus"]),
                    );
                    s.status(order)["orderStatus"] == "PAYMENT_COMPLETED"
                })
                .collect(),
        )
    };
    let first = conclusive("a batch of cancels", IN_FLIGHT_MS, |delay| {
        pattern(11, delay)
    });
    let again = conclusive("a batch of cancels", IN_FLIGHT_MS, |delay| {
        pattern(11, delay)
    });
    assert_eq!(first, again, "the same seed, the same cancels leak");
    assert!(
        first.contains(&true) && first.contains(&false),
        "some of each: {first:?}"
    );

    // Without `times` the switch stays on for every cancel, until the faults are cleared.
    conclusive(
        "leaking cancels, then a fenced one",
        IN_FLIGHT_MS,
        |delay| {
            let s = start();
            let token = slow_token(&s, delay);
            s.set_faults(
                json!({"rules": [{"endpoint": "cancel_order", "fault": "payment_survives"}]}),
            );
            let before_charges = Instant::now();
            let mut cancels = Vec::new();
            let leaky: Vec<String> = (0..2)
                .map(|i| {
                    let order = s.mit_order_with(9900, &format!("leaky-{i}"));
                    s.charge(&order, &token);
                    cancels.push(cancel(&s, &order));
                    order
                })
                .collect();
            assert_eq!(
                s.call("DELETE", "/_sandbox/faults", None, false).status,
                204
            );
            let fenced = s.mit_order_with(9900, "fenced");
            s.charge(&fenced, &token);
            cancels.push(cancel(&s, &fenced));
            if !within(before_charges, delay)
                && cancels.iter().any(|r| r.body["status"] != "SUCCESS")
            {
                return None;
            }
            for r in &cancels {
                assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
            }
            for order in &leaky {
                eventually_after(
                    "a leaked payment to complete",
                    Duration::from_millis(delay),
                    || s.status(order)["orderStatus"] == "PAYMENT_COMPLETED",
                );
            }
            s.wait_steps_done(&fenced);
            assert_eq!(s.status(&fenced)["orderStatus"], "PAYMENT_CANCELLED");
            assert_eq!(
                charges_of(&s, &token),
                (Some(2), Some(1)),
                "the two leaked payments completed; the fenced one was cancelled"
            );
            Some(())
        },
    );
}

#[test]
fn a_cancel_that_answers_500_or_times_out_after_acting_did_cancel() {
    let s = start();
    let hook = s.receiver(0);
    register(&s, &hook.url);

    // 500 after acting: the order is cancelled and its payment stopped, the answer says nothing.
    conclusive(
        "a cancel that answers 500 after acting",
        IN_FLIGHT_MS,
        |delay| {
            let token = slow_token(&s, delay);
            s.set_faults(
            json!({"rules": [{"endpoint": "cancel_order", "fault": "error_after", "times": 1}]}),
        );
            let order = s.mit_order_with(9900, "error-after");
            let before_charge = Instant::now();
            s.charge(&order, &token);
            let r = cancel(&s, &order);
            let st = s.status(&order);
            if !within(before_charge, delay) && st["orderStatus"] != "PAYMENT_CANCELLED" {
                return None;
            }
            assert_eq!(r.status, 500, "{}", r.text);
            assert_eq!(r.body["status"], "ERROR");
            assert!(r.body.get("data").is_none());
            assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
            assert_eq!(last_payment(&st)["paymentStatus"], "PAYMENT_CANCELLED");
            assert_eq!(last_payment(&st)["failureReason"], "ORDER_CANCELLED");
            assert!(s.charge(&order, &token).is_business_error("PS_0040"));
            eventually("order.cancelled", || {
                hook.types_of(&order)
                    .contains(&"order.cancelled".to_owned())
            });
            let again = cancel(&s, &order);
            assert_eq!(
                again.body["status"], "SUCCESS",
                "a retried cancel is harmless"
            );
            assert_eq!(again.body["message"], "Order already cancelled.");
            s.wait_steps_done(&order);
            assert_eq!(charges_of(&s, &token), (Some(0), Some(1)));
            Some(())
        },
    );

    // A timeout after acting: the answer is withheld, then 504; the cancel happened.
    conclusive(
        "a cancel that times out after acting",
        IN_FLIGHT_MS,
        |delay| {
            let token = slow_token(&s, delay);
            s.set_faults(json!({"rules": [
            {"endpoint": "cancel_order", "fault": "timeout", "timeout_ms": 400, "times": 1}]}));
            let order = s.mit_order_with(9900, "timeout-after");
            let before_charge = Instant::now();
            s.charge(&order, &token);
            let started = Instant::now();
            let r = cancel(&s, &order);
            let took = started.elapsed();
            let st = s.status(&order);
            if !within(before_charge, delay) && st["orderStatus"] != "PAYMENT_CANCELLED" {
                return None;
            }
            assert_eq!(r.status, 504, "{}", r.text);
            assert!(took >= Duration::from_millis(400), "{took:?}");
            assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
            assert_eq!(last_payment(&st)["paymentStatus"], "PAYMENT_CANCELLED");
            s.wait_steps_done(&order);
            assert_eq!(charges_of(&s, &token), (Some(0), Some(1)));
            Some(())
        },
    );

    // For contrast, a 500 before acting changed nothing: the payment completes.
    conclusive(
        "a cancel that answers 500 before acting",
        IN_FLIGHT_MS,
        |delay| {
            let token = slow_token(&s, delay);
            s.set_faults(
                json!({"rules": [{"endpoint": "cancel_order", "fault": "error", "times": 1}]}),
            );
            let order = s.mit_order_with(9900, "error-before");
            let before_charge = Instant::now();
            s.charge(&order, &token);
            let r = cancel(&s, &order);
            let st = s.status(&order);
            assert_eq!(r.status, 500, "{}", r.text);
            if !within(before_charge, delay) && is_final(&last_payment(&st)["paymentStatus"]) {
                return None;
            }
            assert!(!is_final(&last_payment(&st)["paymentStatus"]), "{st}");
            eventually_after(
                "the payment to complete",
                Duration::from_millis(delay),
                || s.status(&order)["orderStatus"] == "PAYMENT_COMPLETED",
            );
            assert_eq!(charges_of(&s, &token), (Some(1), Some(0)));
            Some(())
        },
    );

    // And the worst of both: a 500 after a cancel that let the payment run.
    conclusive("a leaking cancel that answers 500", IN_FLIGHT_MS, |delay| {
        let token = slow_token(&s, delay);
        s.set_faults(json!({"rules": [
            {"endpoint": "cancel_order", "fault": "error_after", "times": 1},
            {"endpoint": "cancel_order", "fault": "payment_survives", "times": 1}]}));
        let order = s.mit_order_with(9900, "error-after-survives");
        let before_charge = Instant::now();
        s.charge(&order, &token);
        let r = cancel(&s, &order);
        let st = s.status(&order);
        if !within(before_charge, delay) && st["orderStatus"] != "PAYMENT_CANCELLED" {
            return None;
        }
        assert_eq!(r.status, 500, "{}", r.text);
        assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
        assert!(s.charge(&order, &token).is_business_error("PS_0040"));
        eventually_after(
            "the surviving payment to complete",
            Duration::from_millis(delay),
            || s.status(&order)["orderStatus"] == "PAYMENT_COMPLETED",
        );
        assert_eq!(charges_of(&s, &token), (Some(1), Some(0)));
        Some(())
    });
}

#[test]
fn a_cancelled_order_never_takes_another_payment() {
    let s = start();
    let token = s.token_for(APPROVE);

    // Cancelled before any payment.
    let fresh = s.mit_order(9900);
    assert_eq!(cancel(&s, &fresh).body["status"], "SUCCESS");
    let r = s.charge(&fresh, &token);
    assert_eq!(r.status, 201);
    assert!(r.is_business_error("PS_0040"), "{}", r.text);
    assert_eq!(s.status(&fresh)["payments"], json!([]));
    let r = s.api(
        "POST",
        &format!("/merchants/{MERCHANT}/payments"),
        Some(&json!({"orderId": fresh, "paymentMethod": "CTOKEN", "tokenId": token})),
    );
    assert!(
        r.is_business_error("PS_0040"),
        "either path form: {}",
        r.text
    );

    // Cancelled after a declined payment, which otherwise leaves the order open for a retry.
    s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS", "times": 1}),
    );
    let declined = s.mit_order(9900);
    s.charge(&declined, &token);
    assert_eq!(s.wait_final(&declined)["orderStatus"], "PAYMENT_FAILED");
    assert_eq!(cancel(&s, &declined).body["status"], "SUCCESS");
    assert!(s.charge(&declined, &token).is_business_error("PS_0040"));
    assert_eq!(s.status(&declined)["orderStatus"], "PAYMENT_CANCELLED");

    // A hosted-page order: the link is spent once the order is cancelled.
    let page = s.page_order(9900, json!({}));
    assert_eq!(cancel(&s, &page).body["status"], "SUCCESS");
    assert_eq!(s.pay(&page, APPROVE).status, 410);
    assert_eq!(s.get(&format!("/pay/{page}")).status, 410);

    let ledger = s.ledger();
    let totals = &ledger["payments_per_token"][&token];
    assert_eq!(
        (totals["attempted"].as_i64(), totals["completed"].as_i64()),
        (Some(1), Some(0)),
        "only the declined payment was ever attempted with the token"
    );
}
