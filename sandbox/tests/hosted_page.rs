//! The hosted payment page and its control-API twin, `POST /_sandbox/orders/:orderId/pay`.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

fn shop_urls() -> serde_json::Value {
    json!({"controlFunctions": {"online": {"enforceTokenization": true,
        "redirectUrl": "http://shop.test/done", "failureRedirectUrl": "http://shop.test/failed"}}})
}

#[test]
fn the_page_is_a_real_one_shot_form() {
    let s = start();
    let order = s.page_order(9900, shop_urls());
    let page = s.get(&format!("/pay/{order}"));
    assert_eq!(page.status, 200);
    for part in [
        "<form",
        "method=\"post\"",
        "name=\"cardNumber\"",
        "name=\"expiry\"",
        "name=\"cvc\"",
        "name=\"name\"",
        "99.00 SEK",
    ] {
        assert!(page.text.contains(part), "{part} in {}", page.text);
    }
    assert!(!page.text.contains("src=\"http"), "no external assets");
    // Browsers ask a page without an icon for /favicon.ico, which the page's host does not serve.
    assert!(page.text.contains(r#"<link rel="icon" href="data:,">"#));
    // Sent once: the button turns busy and refuses a second submit (a double click).
    assert!(page.text.contains("button.disabled=true") && page.text.contains("aria-busy"));

    // A typo is shown on the page and does not spend the link.
    let typo = s.form(
        &format!("/pay/{order}"),
        "cardNumber=4111111111111112&expiry=12%2F31&cvc=123&name=Ada",
    );
    assert_eq!(typo.status, 422);
    assert!(typo.text.contains("not valid") && typo.text.contains("<form"));
    assert_eq!(s.get(&format!("/pay/{order}")).status, 200, "still usable");
    assert_eq!(s.status(&order)["orderStatus"], "PENDING");

    let paid = s.form(
        &format!("/pay/{order}"),
        "cardNumber=4111+1111+1111+1111&expiry=07%2F30&cvc=123&name=Ada+Lovelace",
    );
    assert_eq!(paid.status, 303);
    assert_eq!(paid.location.as_deref(), Some("http://shop.test/done"));
    // The browser arrives at the shop once the payment is final and the token exists.
    assert_eq!(s.status(&order)["orderStatus"], "PAYMENT_COMPLETED");
    let token = &s.tokens(&order)[0];
    assert_eq!(
        (token["expiryMonth"].as_i64(), token["expiryYear"].as_i64()),
        (Some(7), Some(2030))
    );
    assert_eq!(token["cardholderName"], "Ada Lovelace");
    assert_eq!(token["truncatedPan"], "1111");

    for again in [
        s.get(&format!("/pay/{order}")),
        s.form(&format!("/pay/{order}"), "cardNumber=4111111111111111"),
    ] {
        assert_eq!(again.status, 410);
        assert!(again.text.contains("Invalid or Expired Link"));
    }
    let ledger = s.ledger();
    assert_eq!(
        ledger["payments"].as_array().unwrap().len(),
        1,
        "one attempt only"
    );
}

#[test]
fn a_declined_card_goes_to_the_failure_url_or_a_result_page() {
    let s = start();
    let declined = s.page_order(9900, shop_urls());
    let r = s.form(&format!("/pay/{declined}"), "cardNumber=4000000000000002");
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("http://shop.test/failed"));
    assert_eq!(s.status(&declined)["orderStatus"], "PAYMENT_FAILED");
    assert_eq!(
        s.get(&format!("/pay/{declined}")).status,
        410,
        "a failed attempt spends it too"
    );

    let bare = s.page_order(9900, json!({}));
    let r = s.form(&format!("/pay/{bare}"), "cardNumber=4000000000000002");
    assert_eq!(r.status, 200);
    assert!(r.location.is_none());
    assert!(r.text.contains("Payment declined"), "{}", r.text);
    let bare = s.page_order(9900, json!({}));
    let r = s.form(&format!("/pay/{bare}"), "cardNumber=4111111111111111");
    assert!(r.text.contains("Payment approved"), "{}", r.text);
}

#[test]
fn the_control_api_pays_like_a_person_and_answers_when_final() {
    let s = start();
    let order = s.page_order(9900, shop_urls());
    let r = s.control(
        "POST",
        &format!("/_sandbox/orders/{order}/pay"),
        &json!({"cardNumber": "4000 0000 0000 9995", "expiryMonth": 3, "expiryYear": 2029, "cardholderName": "Grace H"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["orderId"], order.as_str());
    assert_eq!(r.body["paymentStatus"], "PAYMENT_COMPLETED");
    assert_eq!(r.body["tokenized"], true);
    assert!(r.location.is_none(), "redirects are skipped");
    // Final already when it answered: no polling needed.
    let st = s.status(&order);
    assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["payments"][0]["paymentId"], r.body["paymentId"]);
    let token = &s.tokens(&order)[0];
    assert_eq!(
        (
            token["expiryMonth"].as_i64(),
            token["expiryYear"].as_i64(),
            token["cardholderName"].as_str()
        ),
        (Some(3), Some(2029), Some("Grace H"))
    );
    let ledger = s.ledger();
    let t = &ledger["tokens"][0];
    assert_eq!(
        t["defaultOutcome"],
        json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS"})
    );
    assert!(
        !ledger.to_string().contains("4000000000009995"),
        "the number is never kept"
    );

    assert_eq!(s.pay(&order, APPROVE).status, 410, "one-shot");
    assert_eq!(s.pay("ffffffffffffffffff", APPROVE).status, 404);
    assert_eq!(
        s.pay(&s.mit_order(9900), APPROVE).status,
        409,
        "nothing to pay on a MIT order"
    );
    let fresh = s.page_order(9900, json!({}));
    assert_eq!(s.pay(&fresh, "1234").status, 400);
    assert_eq!(
        s.pay(&fresh, APPROVE).status,
        200,
        "a bad number does not spend the link"
    );
}

#[test]
fn a_cancelled_order_has_no_page_and_a_page_payment_can_be_fenced() {
    let s = start();
    let cancelled = s.page_order(9900, json!({}));
    s.api("DELETE", &format!("/orders/{cancelled}"), None);
    assert_eq!(s.get(&format!("/pay/{cancelled}")).status, 410);
    assert_eq!(s.pay(&cancelled, APPROVE).status, 410);

    // A person pays; the shop cancels the order while the payment processes. The payment began
    // after the last status read that showed none, and takes the processing time from then; a
    // cancel that ended within that time reached it in flight.
    conclusive(
        "a cancel of a page payment in flight",
        3000,
        |processing_ms| {
            let s = start_with(psp_sandbox::Config {
                processing_ms,
                ..psp_sandbox::Config::default()
            });
            let order = s.page_order(9900, shop_urls());
            let mut started_after = Instant::now();
            let page = std::thread::spawn({
                let base = s.base.clone();
                let order = order.clone();
                move || {
                    let agent = agent();
                    let r = agent
                        .post(format!("{base}/pay/{order}"))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .send("cardNumber=4111111111111111")
                        .unwrap();
                    r.headers()
                        .get("location")
                        .map(|v| v.to_str().unwrap().to_owned())
                }
            });
            eventually("the attempt to start", || {
                let read = Instant::now();
                let started = s.status(&order)["payments"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty());
                if !started {
                    started_after = read;
                }
                started
            });
            let cancel = s.api("DELETE", &format!("/orders/{order}"), None);
            let redirect = page.join().unwrap();
            if !within(started_after, processing_ms) && cancel.body["status"] != "SUCCESS" {
                return None;
            }
            assert_eq!(cancel.body["status"], "SUCCESS", "{}", cancel.text);
            assert_eq!(redirect.as_deref(), Some("http://shop.test/failed"));
            s.wait_steps_done(&order);
            let st = s.status(&order);
            assert_eq!(st["orderStatus"], "PAYMENT_CANCELLED");
            assert_eq!(
                s.tokens(&order),
                json!([]),
                "no token from a cancelled payment"
            );
            Some(())
        },
    );
}
