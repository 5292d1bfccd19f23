//! The provider API against its published contract, over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn is_provider_id(id: &str) -> bool {
    id.len() == 18 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn the_guide_flow_round_trips_in_both_path_forms() {
    let s = start();
    // Stage 1, as the guide writes it: /merchants/:merchantId and controlFunctions.enforceTokenization.
    let r = s.api(
        "POST",
        &format!("/merchants/{MERCHANT}/orders"),
        Some(&json!({"terminal$id": PAGE,
            "orderLines": [{"id": "SUB-001", "name": "Monthly Subscription", "quantity": 1,
                            "amount": {"total": 29900, "currency": "752"}}],
            "controlFunctions": {"enforceTokenization": true,
                                 "initiatePaymentsOptions": {"paymentMethod": "CARD", "amount": 29900}}})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "SUCCESS");
    let order = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    assert!(is_provider_id(&order), "{order}");
    let link = r.body["data"]["paymentPageLink"].as_str().unwrap();
    assert_eq!(link, format!("{}/pay/{order}", s.base));
    assert!(
        r.body["data"].get("paymentId").is_none(),
        "no paymentId on a PaymentPage order"
    );
    assert_eq!(s.status(&order)["orderStatus"], "PENDING");

    let tokens_path = format!("/merchants/{MERCHANT}/orders/{order}/tokens");
    let empty = s.api("GET", &tokens_path, None);
    assert_eq!(empty.body["data"], json!([]), "no token before the payment");
    let paid = s.pay(&order, APPROVE).body;
    assert_eq!(paid["paymentStatus"], "PAYMENT_COMPLETED");
    assert_eq!(paid["tokenized"], true);

    let tokens = s.api("GET", &tokens_path, None);
    assert_eq!(tokens.body["status"], "SUCCESS");
    assert_eq!(tokens.body["message"], "Fetched the card information.");
    let t = &tokens.body["data"][0];
    let mut fields: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "cardArt",
            "cardBrand",
            "cardholderName",
            "createdAt",
            "expiryMonth",
            "expiryYear",
            "tokenId",
            "truncatedPan"
        ]
    );
    assert_eq!(t["cardBrand"], "VISA");
    assert_eq!(t["truncatedPan"], "1111");
    assert!(t["expiryMonth"].is_u64() && t["expiryYear"].is_u64());
    assert!(is_provider_id(t["tokenId"].as_str().unwrap()));
    let created = t["createdAt"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");

    let status = s.api(
        "GET",
        &format!("/merchants/{MERCHANT}/orders/{order}/status"),
        None,
    );
    let st = &status.body["data"];
    assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["payments"][0]["paymentMethod"], "CARD");
    assert_eq!(st["payments"][0]["amount"], 29900, "a number in payments");
    assert_eq!(st["paymentIds"], json!([paid["paymentId"]]));
    let tx = &st["transactions"][0];
    assert_eq!(tx["amount"], "29900", "a string in transactions");
    assert_eq!(
        (
            tx["type"].as_str(),
            tx["currency"].as_str(),
            tx["voided"].as_bool()
        ),
        (Some("PURCHASE"), Some("752"), Some(false))
    );
    assert_eq!(tx["settlementStatus"], "NOT_SETTLED");
    assert_eq!(tx["customerResponseCode"], "00");
    assert!(is_provider_id(tx["transactionId"].as_str().unwrap()));

    // Stage 2: a MIT order and CTOKEN payments with the token at either placement, on either
    // path form.
    let token = t["tokenId"].as_str().unwrap();
    for (path, body) in [
        (
            format!("/merchants/{MERCHANT}/payments"),
            json!({"paymentMethod": "CTOKEN", "tokenId": token}),
        ),
        (
            "/payments".to_owned(),
            json!({"paymentMethod": "CTOKEN", "paymentMethodParams": {"tokenId": token}}),
        ),
    ] {
        let mit = s.mit_order(29900);
        let mut body = body;
        body["orderId"] = json!(mit);
        let r = s.api("POST", &path, Some(&body));
        assert_eq!(r.status, 201, "{}", r.text);
        let payment = r.body["data"]["paymentId"].as_str().unwrap().to_owned();
        assert!(is_provider_id(&payment));
        let st = s.wait_final(&mit);
        assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED", "{st}");
        assert_eq!(st["payments"][0]["paymentId"], payment.as_str());
        assert_eq!(st["payments"][0]["paymentMethod"], "CTOKEN");
    }
}

#[test]
fn credentials_routes_and_bodies_are_checked() {
    let s = start();
    let unauthorized = json!({"status": "ERROR", "message": "Unauthorized access. Please provide valid credentials to access this endpoint."});
    for (method, path) in [
        ("POST", "/orders"),
        ("POST", "/payments"),
        ("GET", "/orders/ffffffffffffffffff/status"),
        ("GET", "/orders/ffffffffffffffffff/tokens"),
        ("DELETE", "/orders/ffffffffffffffffff"),
        ("DELETE", "/payments/ffffffffffffffffff"),
        ("PUT", "/payments/ffffffffffffffffff/void"),
    ] {
        let r = s.call(method, path, None, false);
        assert_eq!((r.status, &r.body), (401, &unauthorized), "{method} {path}");
    }
    let wrong_secret = s.run(
        ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}/orders/x/status", s.base))
            .header("API-KEY", "sandbox-api-key")
            .header("API-SECRET", "nope")
            .header("MERCHANT-ID", MERCHANT)
            .body(String::new())
            .unwrap(),
    );
    assert_eq!(wrong_secret.status, 401);
    assert!(!wrong_secret.text.contains("nope"), "never echo a secret");
    let r = s.api("GET", "/merchants/000000000000000000/orders/x/status", None);
    assert_eq!(r.status, 401, "another merchant's path");

    let unknown = s.api("GET", "/orders/ffffffffffffffffff/status", None);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["status"], "ERROR");
    assert_eq!(
        s.api("GET", "/orders/ffffffffffffffffff/tokens", None)
            .status,
        404
    );
    let route = s.api("GET", "/no/such/route", None);
    assert_eq!(
        (route.status, &route.body["status"]),
        (404, &json!("ERROR"))
    );
    let method = s.api("PATCH", "/orders", None);
    assert_eq!(
        (method.status, &method.body["status"]),
        (405, &json!("ERROR"))
    );

    for raw in ["", "{not json", "[1,2]"] {
        let r = s.call_raw("POST", "/orders", raw.into(), true);
        assert_eq!(r.status, 400, "{raw:?}");
        assert_eq!(r.body["status"], "ERROR");
        let r = s.call_raw("POST", "/payments", raw.into(), true);
        assert_eq!(r.status, 400, "{raw:?}");
    }
}

#[test]
fn amounts_must_reconcile_with_the_documented_codes() {
    let s = start();
    let order = |lines: Value, total: Option<Value>| {
        let mut body = json!({"terminal$id": MIT, "orderLines": lines});
        if let Some(t) = total {
            body["totalOrderAmount"] = t;
        }
        let r = s.create_order(&body);
        assert_eq!(r.status, 201, "business errors are HTTP 201 on creates");
        r
    };
    let line = |regular: i64, total: i64, currency: Value| {
        json!([{"id": "a", "name": "A", "quantity": 2,
                "amount": {"regular": regular, "total": total, "currency": currency}}])
    };
    for currency in [json!("840"), json!("SEK"), json!(752), Value::Null] {
        let r = order(line(1000, 1000, currency.clone()), None);
        assert!(r.is_business_error("OR_0004"), "{currency}: {}", r.text);
    }
    for currency in ["752", "978", "208"] {
        assert_eq!(
            order(line(1000, 1000, json!(currency)), None).body["status"],
            "SUCCESS"
        );
    }
    let mixed = json!([
        {"id": "a", "name": "A", "quantity": 1, "amount": {"total": 1000, "currency": "752"}},
        {"id": "b", "name": "B", "quantity": 1, "amount": {"total": 1000, "currency": "978"}}]);
    assert!(order(mixed, None).is_business_error("OR_0004"));

    let r = order(line(1000, 900, json!("752")), None);
    assert!(r.is_business_error("OR_0023"), "{}", r.text);
    assert_eq!(
        r.body["message"],
        "OR_0023: Line total does not equal regular + shipping - campaign"
    );
    let r = order(
        line(1000, 1000, json!("752")),
        Some(json!({"total": 1000, "currency": "752"})),
    );
    assert!(r.is_business_error("OR_0037"));
    assert_eq!(r.body["message"], "OR_0037: Invalid total order price");
    let ok = order(
        line(1000, 1000, json!("752")),
        Some(json!({"total": 2000, "currency": "752"})),
    );
    assert_eq!(ok.body["status"], "SUCCESS", "per unit × quantity");
    // Shipping and campaign reconcile.
    let shipped = json!([{"id": "a", "name": "A", "quantity": 1,
        "amount": {"regular": 1000, "shipping": 200, "campaign": 100, "total": 1100, "currency": "978"}}]);
    assert_eq!(order(shipped, None).body["status"], "SUCCESS");

    // Per-transaction limits: 3 to 499,999 SEK, inclusive.
    let one = |total: i64| json!([{"id": "a", "name": "A", "quantity": 1, "amount": {"total": total, "currency": "752"}}]);
    assert!(order(one(299), None).is_business_error("OR_0038"));
    assert_eq!(order(one(300), None).body["status"], "SUCCESS");
    assert_eq!(order(one(49_999_900), None).body["status"], "SUCCESS");
    assert!(order(one(49_999_901), None).is_business_error("OR_0038"));

    let r = s.create_order(&json!({"terminal$id": "000000000000000000", "orderLines": one(500)}));
    assert_eq!(r.body["status"], "ERROR", "unknown terminal");
    assert!(r.body.get("data").is_none());
    let bad_url = s.create_order(&json!({"terminal$id": MIT, "orderLines": one(500),
        "controlFunctions": {"callBackUrl": "ftp://x"}}));
    assert_eq!(bad_url.body["status"], "ERROR");
    // Nothing of the refused orders was kept.
    assert_eq!(s.ledger()["orders"].as_array().unwrap().len(), 7);
}

#[test]
fn both_tokenization_placements_and_order_settings_are_kept() {
    let s = start();
    for control in [
        json!({"online": {"enforceTokenization": true}}),
        json!({"enforceTokenization": true}),
        json!({}),
    ] {
        let tokenize = control != json!({});
        let order = s.page_order(
            5000,
            json!({"referenceId": "same-ref", "controlFunctions": control}),
        );
        let paid = s.pay(&order, APPROVE).body;
        assert_eq!(paid["tokenized"], tokenize, "{control}");
        assert_eq!(
            s.tokens(&order).as_array().unwrap().len(),
            usize::from(tokenize)
        );
    }
    let ledger = s.get("/_sandbox/ledger?referenceId=same-ref").body;
    assert_eq!(
        ledger["orders"].as_array().unwrap().len(),
        3,
        "referenceId is not unique"
    );
    let order = &ledger["orders"][0];
    assert_eq!(order["terminal"], "PaymentPage");
    assert_eq!(order["amount"], 5000);
}

#[test]
fn test_cards_decide_checkout_and_later_charges() {
    let s = start();
    let declined = s.page_order(9900, json!({}));
    let r = s.pay(&declined, "4000000000000002").body;
    assert_eq!(
        (&r["paymentStatus"], &r["failureReason"], &r["tokenized"]),
        (&json!("PAYMENT_FAILED"), &json!("DENIED"), &json!(false))
    );
    let st = s.status(&declined);
    assert_eq!(st["orderStatus"], "PAYMENT_FAILED");
    assert_eq!(st["payments"][0]["failureReason"], "DENIED");
    assert!(st.get("transactions").is_none() && st.get("paymentIds").is_none());
    assert_eq!(
        s.tokens(&declined),
        json!([]),
        "a declined card leaves no token"
    );

    for (card, reason) in [
        ("4000000000009995", "DENIED_NO_FUNDS"),
        ("4000000000000119", "DENIED_DO_NOT_TRY_AGAIN"),
    ] {
        let token = s.token_for(card);
        let mit = s.mit_order(9900);
        assert_eq!(s.charge(&mit, &token).status, 201);
        let st = s.wait_final(&mit);
        assert_eq!(st["orderStatus"], "PAYMENT_FAILED", "{card}: {st}");
        assert_eq!(st["payments"][0]["failureReason"], reason, "{card}: {st}");
        // A failed payment leaves the MIT order open for another attempt on the same order.
        let again = s.charge(&mit, &token);
        assert_eq!(again.body["status"], "SUCCESS", "{}", again.text);
        assert_eq!(s.wait_final(&mit)["payments"].as_array().unwrap().len(), 2);
    }

    // Any other Luhn-valid number approves, Mastercard included.
    let token = s.token_for("5555555555554444");
    let mit = s.mit_order(9900);
    s.charge(&mit, &token);
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");

    let token = s.token_for(APPROVE);
    let mit = s.mit_order(9900);
    s.charge(&mit, &token);
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
    let again = s.charge(&mit, &token);
    assert!(
        again.is_business_error("PS_0041"),
        "a completed order takes no more payments: {}",
        again.text
    );
}

#[test]
fn payments_refuse_what_the_provider_refuses() {
    let s = start();
    let page = s.page_order(9900, json!({}));
    s.pay(&page, APPROVE);
    let token = s.token_of(&page);

    let on_page = s.charge(&page, &token);
    assert_eq!(on_page.status, 201);
    assert!(on_page.is_business_error("PS_0025"), "{}", on_page.text);
    assert_eq!(
        on_page.body["message"],
        "PS_0025: Payment initiation failed"
    );

    let unknown_token = s.charge(&s.mit_order(9900), "ffffffffffffffffff");
    assert!(
        unknown_token.is_business_error("PS_0031"),
        "{}",
        unknown_token.text
    );
    let unknown_order = s.charge("ffffffffffffffffff", &token);
    assert_eq!(unknown_order.body["status"], "ERROR");
    assert!(
        unknown_order.code().starts_with("PS_"),
        "{}",
        unknown_order.text
    );
    let no_token = s.api(
        "POST",
        "/payments",
        Some(&json!({"orderId": s.mit_order(9900), "paymentMethod": "CTOKEN"})),
    );
    assert!(no_token.code().starts_with("PS_"), "{}", no_token.text);

    // One payment at a time on an order: a second one while the first is in flight is refused.
    conclusive(
        "a second payment while the first is in flight",
        1500,
        |delay| {
            s.control(
                "PUT",
                &format!("/_sandbox/tokens/{token}/behaviour"),
                &json!({"outcome": "slow", "delay_ms": delay, "times": 1}),
            );
            let mit = s.mit_order(9900);
            let before_first = Instant::now();
            assert_eq!(s.charge(&mit, &token).body["status"], "SUCCESS");
            let second = s.charge(&mit, &token);
            let in_flight = within(before_first, delay);
            assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
            if !in_flight && !second.is_business_error("PS_0042") {
                return None;
            }
            assert!(second.is_business_error("PS_0042"), "{}", second.text);
            let ledger = s.get(&format!("/_sandbox/ledger?orderId={mit}")).body;
            assert_eq!(
                ledger["payments"].as_array().unwrap().len(),
                1,
                "the refused payment left nothing"
            );
            Some(())
        },
    );
}

#[test]
fn a_mit_order_with_initiate_payments_options_charges_at_once() {
    let s = start();
    let token = s.token_for(APPROVE);
    for options in [
        json!({"paymentMethod": "CTOKEN", "paymentMethodParams": {"tokenId": token}}),
        json!({"paymentMethod": "CTOKEN", "tokenId": token}),
    ] {
        let r = s.create_order(&json!({"terminal$id": MIT, "referenceId": "now",
            "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 1200, "currency": "208"}}],
            "controlFunctions": {"initiatePaymentsOptions": options}}));
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        let order = r.body["data"]["orderId"].as_str().unwrap();
        let payment = r.body["data"]["paymentId"].as_str().unwrap();
        let st = s.wait_final(order);
        assert_eq!(st["payments"][0]["paymentId"], payment);
        assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
        assert_eq!(st["transactions"][0]["currency"], "208");
    }
    let bad = s.create_order(&json!({"terminal$id": MIT,
        "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 1200, "currency": "752"}}],
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CTOKEN", "tokenId": "ffffffffffffffffff"}}}));
    assert!(bad.is_business_error("PS_0031"), "{}", bad.text);
}

#[test]
fn token_behaviour_applies_to_the_next_charges_then_falls_back() {
    let s = start();
    let token = s.token_for("4000000000009995");
    let behaviour = |b: Value| {
        let r = s.control("PUT", &format!("/_sandbox/tokens/{token}/behaviour"), &b);
        assert_eq!(r.status, 200, "{}", r.text);
    };
    behaviour(json!({"outcome": "approve"}));
    behaviour(
        json!({"outcome": "decline", "failureReason": "ERROR_ISSUER_UNAVAILABLE", "times": 2}),
    );
    let mit = s.mit_order(9900);
    let mut reasons = Vec::new();
    for _ in 0..3 {
        s.charge(&mit, &token);
        let st = s.wait_final(&mit);
        reasons.push(st["payments"].as_array().unwrap().last().unwrap()["failureReason"].clone());
    }
    // Two scripted declines, then the behaviour set before them (approve), not the card's.
    assert_eq!(
        reasons,
        [
            json!("ERROR_ISSUER_UNAVAILABLE"),
            json!("ERROR_ISSUER_UNAVAILABLE"),
            Value::Null
        ]
    );
    let ledger = s.ledger();
    let totals = &ledger["payments_per_token"][&token];
    assert_eq!(
        (
            totals["attempted"].as_i64(),
            totals["completed"].as_i64(),
            totals["failed"].as_i64(),
            totals["completed_amount"].as_i64()
        ),
        (Some(3), Some(1), Some(2), Some(9900))
    );
    // Cleared, the card decides again: DENIED_NO_FUNDS.
    let r = s.call(
        "DELETE",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        None,
        false,
    );
    assert_eq!(r.status, 204);
    let mit = s.mit_order(9900);
    s.charge(&mit, &token);
    assert_eq!(
        s.wait_final(&mit)["payments"][0]["failureReason"],
        "DENIED_NO_FUNDS"
    );

    let unknown = s.control(
        "PUT",
        "/_sandbox/tokens/ffffffffffffffffff/behaviour",
        &json!({"outcome": "approve"}),
    );
    assert_eq!(unknown.status, 404);
    let bad = s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "maybe"}),
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn a_slow_token_stays_in_flight_for_its_delay() {
    // Steps at a third, two thirds and all of the delay. A busy machine can make the sandbox
    // late, never early, and each step lasts at least its third, timed from the step before.
    // With the instants around each call measured, two things are certain whatever the load:
    // a read shows no step later than the time since the charge started allows, and two reads
    // less than a third of the delay apart (start of one to end of the other) show the same step
    // or the next. Every step must be seen; a run whose reads came too far apart to be sure of
    // that proves nothing and runs again with a longer delay.
    let s = start();
    let token = s.token_for(APPROVE);
    conclusive("seeing every step of a slow payment", 900, |delay| {
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "slow", "delay_ms": delay}),
        );
        // As the sandbox computes them: the instants of the steps, and the shortest step.
        let at = [delay / 3, delay * 2 / 3, delay];
        let shortest = Duration::from_millis(at[0].min(at[1] - at[0]).min(at[2] - at[1]));
        let mit = s.mit_order(9900);
        let before_charge = Instant::now();
        s.charge(&mit, &token);
        let mut seen: Vec<(usize, Instant)> = Vec::new();
        loop {
            let read_start = Instant::now();
            let st = s.status(&mit);
            let read_end = Instant::now();
            let step = step_of(&st["payments"][0]["paymentStatus"]);
            let order_status = match step {
                0 | 1 => "PAYMENT_INITIATED",
                2 => "PAYMENT_PROCESSED",
                _ => "PAYMENT_COMPLETED",
            };
            assert_eq!(st["orderStatus"], order_status, "{st}");
            let since_charge = (read_end - before_charge).as_millis() as u64;
            let latest = at.iter().filter(|a| **a <= since_charge).count();
            assert!(
                step <= latest,
                "step {step} at most {since_charge} ms after the charge (delay {delay} ms): {st}"
            );
            if let Some(&(previous, previous_start)) = seen.last() {
                assert!(step >= previous, "a step went back: {st}");
                if read_end - previous_start < shortest {
                    assert!(
                        step <= previous + 1,
                        "a step shorter than a third of the delay: {previous} then {step}"
                    );
                }
            }
            seen.push((step, read_start));
            if step == FINAL {
                break;
            }
            assert!(
                before_charge.elapsed() < Duration::from_millis(delay) + PATIENCE,
                "the payment never completed: {st}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let steps: std::collections::BTreeSet<usize> = seen.iter().map(|(step, _)| *step).collect();
        (steps.len() == FINAL + 1).then_some(())
    });
}

fn refund_body(purchase: &str, amount: i64, terminal: &str) -> Value {
    json!({"terminal$id": terminal, "referenceId": format!("refund-{amount}"),
        "orderLines": [{"id": "r", "name": "Refund", "quantity": -1,
            "amount": {"regular": amount, "total": amount, "currency": "752"}, "purchaseOrderId": purchase}],
        "totalOrderAmount": {"total": -amount, "currency": "752"},
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}})
}

#[test]
fn refunds_are_return_orders_bounded_by_the_purchase() {
    let s = start();
    let page = s.page_order(10_000, json!({}));
    let r = s.create_order(&refund_body(&page, 1000, PAGE));
    assert!(
        r.is_business_error("OR_0035"),
        "not completed yet: {}",
        r.text
    );
    s.pay(&page, APPROVE);
    let r = s.create_order(&refund_body(&page, 1000, PAGE));
    assert!(
        r.is_business_error("OR_0035"),
        "completed but not settled yet: {}",
        r.text
    );
    s.settle_all();

    let first = s.create_order(&refund_body(&page, 4000, PAGE));
    assert_eq!(first.body["status"], "SUCCESS", "{}", first.text);
    assert!(
        first.body["data"].get("paymentId").is_none(),
        "no paymentId on a PaymentPage terminal"
    );
    assert!(first.body["data"].get("paymentPageLink").is_none());
    // The other sign convention (negative per-unit total, positive quantity) on the MIT terminal.
    let second = s.create_order(&json!({"terminal$id": MIT,
        "orderLines": [{"id": "r", "name": "Refund", "quantity": 1,
            "amount": {"total": -6000, "currency": "752"}, "purchaseOrderId": page}],
        "totalOrderAmount": {"total": -6000, "currency": "752"},
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}));
    assert_eq!(second.body["status"], "SUCCESS", "{}", second.text);
    assert!(second.body["data"]["paymentId"].is_string());
    let over = s.create_order(&refund_body(&page, 1, PAGE));
    assert!(
        over.is_business_error("OR_0036"),
        "nothing left: {}",
        over.text
    );

    let return_order = first.body["data"]["orderId"].as_str().unwrap();
    let st = s.wait_final(return_order);
    assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["payments"][0]["paymentMethod"], "CARD_NP");
    assert_eq!(st["transactions"][0]["type"], "RETURN");
    assert_eq!(st["transactions"][0]["amount"], "4000");
    assert_eq!(
        st["transactions"][0]["truncatedPan"], "1111",
        "back to the same card"
    );
    s.wait_final(second.body["data"]["orderId"].as_str().unwrap());

    let ledger = s.ledger();
    let returns = ledger["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    assert!(
        returns
            .iter()
            .all(|o| o["purchaseOrderId"] == page.as_str())
    );
    let returned: i64 = returns.iter().map(|o| o["amount"].as_i64().unwrap()).sum();
    assert_eq!(returned, -10_000);
    // The purchase itself is untouched.
    assert_eq!(s.status(&page)["orderStatus"], "PAYMENT_COMPLETED");
}

#[test]
fn return_orders_are_checked_like_the_provider_does() {
    let s = start();
    let token = s.token_for(APPROVE);
    let mit = s.mit_order(5000);
    s.charge(&mit, &token);
    s.wait_final(&mit);
    s.settle_all();

    let mut no_card_np = refund_body(&mit, 1000, MIT);
    no_card_np["controlFunctions"] = json!({});
    assert_eq!(s.create_order(&no_card_np).body["status"], "ERROR");
    let mut positive = refund_body(&mit, 1000, MIT);
    positive["orderLines"][0]["quantity"] = json!(1);
    assert_eq!(s.create_order(&positive).body["status"], "ERROR");
    let mut wrong_total = refund_body(&mit, 1000, MIT);
    wrong_total["totalOrderAmount"]["total"] = json!(-999);
    assert!(s.create_order(&wrong_total).is_business_error("OR_0037"));
    let unknown = refund_body("ffffffffffffffffff", 1000, MIT);
    assert!(s.create_order(&unknown).is_business_error("OR_0035"));
    // A refund of a refund is not a thing.
    let refund = s.create_order(&refund_body(&mit, 1000, MIT));
    let refund_id = refund.body["data"]["orderId"].as_str().unwrap().to_owned();
    s.wait_final(&refund_id);
    assert!(
        s.create_order(&refund_body(&refund_id, 500, MIT))
            .is_business_error("OR_0035")
    );

    let ledger = s.ledger();
    let totals = &ledger["payments_per_token"][&token];
    assert_eq!(
        (
            totals["completed_amount"].as_i64(),
            totals["refunded_amount"].as_i64()
        ),
        (Some(5000), Some(1000))
    );
}

#[test]
fn cancelling_an_order_fences_a_payment_still_in_flight() {
    let s = start();
    // Cancelled late in processing: once the payment shows PAYMENT_PROCESSED. That step lasts a
    // third of the delay from when it began, which was after the last read that showed an
    // earlier step; a cancel that ended within that third reached the payment in flight.
    let (mit, token, payment) =
        conclusive("a cancel while the payment is processed", 600, |delay| {
            let token = s.token_for(APPROVE);
            s.control(
                "PUT",
                &format!("/_sandbox/tokens/{token}/behaviour"),
                &json!({"outcome": "approve", "delay_ms": delay}),
            );
            let mit = s.mit_order(9900);
            let before_charge = Instant::now();
            let payment = s.charge(&mit, &token).body["data"]["paymentId"].clone();
            let (step, processed_after) = s.reach(&mit, 2, before_charge);
            let cancel = s.api("DELETE", &format!("/orders/{mit}"), None);
            if step != 2
                || (!within(processed_after, delay - delay * 2 / 3)
                    && cancel.body["status"] != "SUCCESS")
            {
                // The reads missed the step, or the cancel may have come after the payment completed.
                s.wait_final(&mit);
                return None;
            }
            assert_eq!(cancel.status, 200);
            assert_eq!(cancel.body["status"], "SUCCESS", "{}", cancel.text);
            Some((mit, token, payment))
        });
    // Once its processing has ended, nothing can move the payment any more: it stayed cancelled.
    s.wait_steps_done(&mit);
    let st = s.status(&mit);
    assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
    assert_eq!(st["payments"][0]["paymentStatus"], "PAYMENT_CANCELLED");
    assert!(st.get("transactions").is_none());
    assert!(
        s.charge(&mit, &token).is_business_error("PS_0040"),
        "no payment on a cancelled order"
    );
    let again = s.api("DELETE", &format!("/orders/{mit}"), None);
    assert_eq!(
        again.body["status"], "SUCCESS",
        "cancelling twice is harmless"
    );
    let ledger = s.get(&format!("/_sandbox/ledger?orderId={mit}")).body;
    assert_eq!(ledger["payments_per_token"][&token]["completed"], 0);
    assert_eq!(ledger["payments"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["payments"][0]["paymentId"], payment);
    assert_eq!(ledger["payments"][0]["failureReason"], "ORDER_CANCELLED");

    // A completed order cannot be cancelled.
    let done = s.mit_order(9900);
    s.charge(&done, &token);
    s.wait_final(&done);
    let r = s.api("DELETE", &format!("/orders/{done}"), None);
    assert!(r.is_business_error("OR_0040"), "{}", r.text);
    assert_eq!(s.status(&done)["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(
        s.api("DELETE", "/orders/ffffffffffffffffff", None).status,
        404
    );
}

#[test]
fn the_fence_holds_under_concurrent_cancels_and_settlements() {
    // Cancel at every moment of processing; whatever the timing, an order is either cancelled
    // with no completed payment, or completed and not cancellable: never both.
    let s = start_with(psp_sandbox::Config {
        processing_ms: 6,
        ..psp_sandbox::Config::default()
    });
    let token = s.token_for(APPROVE);
    for i in 0..40 {
        let mit = s.mit_order(9900);
        s.charge(&mit, &token);
        std::thread::sleep(Duration::from_micros(i * 200));
        let cancel = s.api("DELETE", &format!("/orders/{mit}"), None);
        let cancelled = cancel.body["status"] == "SUCCESS";
        assert!(
            cancelled || cancel.is_business_error("OR_0040"),
            "{}",
            cancel.text
        );
        // Look once nothing can move the payment any more.
        s.wait_steps_done(&mit);
        let st = s.status(&mit);
        if cancelled {
            assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED", "{st}");
            assert!(st.get("transactions").is_none(), "{st}");
        } else {
            assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED", "{st}");
        }
    }
}

#[test]
fn payments_can_be_cancelled_in_flight_and_voided_once_completed() {
    let s = start();
    let token = s.token_for(APPROVE);
    let (mit, slow) = conclusive("a cancel of a payment in flight", 300, |delay| {
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "approve", "delay_ms": delay, "times": 1}),
        );
        let mit = s.mit_order(9900);
        let before_charge = Instant::now();
        let slow = s.charge(&mit, &token).body["data"]["paymentId"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = s.api("DELETE", &format!("/payments/{slow}"), None);
        if !within(before_charge, delay) && r.body["data"]["paymentStatus"] != "PAYMENT_CANCELLED" {
            return None;
        }
        assert_eq!(
            r.body["data"]["paymentStatus"], "PAYMENT_CANCELLED",
            "{}",
            r.text
        );
        Some((mit, slow))
    });
    // Once its processing has ended, nothing can move the payment any more: it stayed cancelled.
    s.wait_steps_done(&mit);
    assert_eq!(
        s.status(&mit)["payments"][0]["paymentStatus"],
        "PAYMENT_CANCELLED"
    );
    // The order stays open: another payment on it completes.
    let done = s.charge(&mit, &token).body["data"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.wait_final(&mit);
    let late = s.api(
        "DELETE",
        &format!("/merchants/{MERCHANT}/payments/{done}"),
        None,
    );
    assert_eq!(
        late.body["data"]["paymentStatus"], "PAYMENT_COMPLETED",
        "too late"
    );

    let void = s.api("PUT", &format!("/payments/{done}/void"), None);
    assert_eq!(void.body["data"]["voidStatus"], "VOIDED", "{}", void.text);
    let st = s.status(&mit);
    assert_eq!(st["transactions"][0]["voided"], true);
    let cannot = s.api(
        "PUT",
        &format!("/merchants/{MERCHANT}/payments/{slow}/void"),
        None,
    );
    assert_eq!(cannot.body["data"]["voidStatus"], "CANNOT_VOID");
    // A voided purchase cannot be refunded.
    let refund = s.create_order(&refund_body(&mit, 1000, MIT));
    assert!(refund.is_business_error("OR_0035"));
    assert_eq!(
        s.api("DELETE", "/payments/ffffffffffffffffff", None).status,
        404
    );
    let ledger = s.ledger();
    assert_eq!(ledger["payments_per_token"][&token]["voided_amount"], 9900);
}

#[test]
fn the_library_router_serves_with_a_public_url_for_page_links() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = runtime.block_on(async {
        psp_sandbox::app(psp_sandbox::Config {
            public_url: Some("https://pay.shop.test/psp".into()),
            ..psp_sandbox::Config::default()
        })
    });
    runtime.spawn(async move { axum::serve(listener, router).await });
    let s = client(&base);
    let r = s.create_order(&json!({"terminal$id": PAGE,
        "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 1000, "currency": "752"}}]}));
    let order = r.body["data"]["orderId"].as_str().unwrap();
    assert_eq!(
        r.body["data"]["paymentPageLink"],
        format!("https://pay.shop.test/psp/pay/{order}")
    );
    assert_eq!(s.get(&format!("/pay/{order}")).status, 200);
}

#[test]
fn a_processing_time_of_zero_still_settles_every_payment() {
    let s = start_with(psp_sandbox::Config {
        processing_ms: 0,
        ..psp_sandbox::Config::default()
    });
    let token = s.token_for(APPROVE);
    for _ in 0..20 {
        let mit = s.mit_order(500);
        assert_eq!(s.charge(&mit, &token).status, 201);
        assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
    }
    assert_eq!(s.ledger()["payments_per_token"][&token]["completed"], 20);
}
