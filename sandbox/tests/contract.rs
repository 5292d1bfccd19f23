//! The sandbox against the provider contract (reference/psp-api.md), over real HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use psp_sandbox::Config;
use serde_json::{Value, json};
use sha2::Sha512;

const PAGE: &str = "7e1d5c3b9a0f2e4d61";
const MIT: &str = "3c9a7e5b1d0f8e6a42";
const MERCHANT: &str = "5a1e0f3c2b4d6e8f90";

struct Sandbox {
    base: String,
    agent: ureq::Agent,
    _runtime: tokio::runtime::Runtime,
}

fn start_with(config: Config) -> Sandbox {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(psp_sandbox::run(listener, config, false));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    Sandbox {
        base,
        agent,
        _runtime: runtime,
    }
}

fn start() -> Sandbox {
    start_with(Config {
        processing_ms: 20,
        ..Config::default()
    })
}

struct Reply {
    status: u16,
    body: Value,
    location: Option<String>,
    text: String,
}

impl Sandbox {
    fn call(&self, method: &str, path: &str, body: Option<&Value>, auth: bool) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if auth {
            req = req
                .header("API-KEY", "sandbox-api-key")
                .header("API-SECRET", "sandbox-api-secret")
                .header("MERCHANT-ID", MERCHANT);
        }
        let req = req
            .body(body.map_or(String::new(), Value::to_string))
            .unwrap();
        self.run(req)
    }

    fn run(&self, req: ureq::http::Request<String>) -> Reply {
        let mut r = self.agent.run(req).unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: r.status().as_u16(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            location,
            text,
        }
    }

    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call(method, path, body, true)
    }

    fn control(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.call(method, path, Some(body), false)
    }

    fn form(&self, path: &str, form: &str) -> Reply {
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .unwrap();
        self.run(req)
    }

    fn page_order(&self, amount: i64, extra: Value) -> String {
        let mut body = json!({
            "terminal$id": PAGE, "referenceId": "co_test",
            "orderLines": [{"id": "SUB-001", "name": "Monthly Subscription", "quantity": 1,
                            "amount": {"regular": amount, "total": amount, "currency": "752"}}],
            "totalOrderAmount": {"regular": amount, "total": amount, "currency": "752"},
            "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD", "amount": amount},
                                 "online": {"enforceTokenization": true}}
        });
        merge(&mut body, extra);
        let r = self.api("POST", "/orders", Some(&body));
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        r.body["data"]["orderId"].as_str().unwrap().to_owned()
    }

    fn mit_order(&self, amount: i64) -> String {
        let r = self.api(
            "POST",
            "/orders",
            Some(
                &json!({"terminal$id": MIT, "orderLines": [{"id": "SUB-002", "name": "February",
                "quantity": 1, "amount": {"total": amount, "currency": "752"}}]}),
            ),
        );
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        assert!(r.body["data"].get("paymentPageLink").is_none());
        r.body["data"]["orderId"].as_str().unwrap().to_owned()
    }

    fn pay(&self, order: &str, card: &str) -> Reply {
        self.control(
            "POST",
            &format!("/_sandbox/orders/{order}/pay"),
            &json!({"cardNumber": card}),
        )
    }

    fn token_of(&self, order: &str) -> String {
        let r = self.api("GET", &format!("/orders/{order}/tokens"), None);
        r.body["data"][0]["tokenId"].as_str().unwrap().to_owned()
    }

    fn charge(&self, order: &str, token: &str) -> Reply {
        self.api(
            "POST",
            "/payments",
            Some(&json!({"orderId": order, "paymentMethod": "CTOKEN", "paymentMethodParams": {"tokenId": token}})),
        )
    }

    fn wait_final(&self, order: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self
                .api("GET", &format!("/orders/{order}/status"), None)
                .body["data"]
                .clone();
            let last = s["payments"].as_array().and_then(|p| p.last().cloned());
            let settled = last.is_some_and(|p| {
                ["PAYMENT_COMPLETED", "PAYMENT_FAILED", "PAYMENT_CANCELLED"]
                    .contains(&p["paymentStatus"].as_str().unwrap_or(""))
            });
            if settled || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), extra) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
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
    let order = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    assert_eq!(order.len(), 18);
    assert!(
        order
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(
        r.body["data"]["paymentPageLink"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/pay/{order}"))
    );
    assert!(
        r.body["data"].get("paymentId").is_none(),
        "no paymentId on a PaymentPage order"
    );

    let empty = s.api(
        "GET",
        &format!("/merchants/{MERCHANT}/orders/{order}/tokens"),
        None,
    );
    assert_eq!(empty.body["data"], json!([]), "no token before the payment");
    assert_eq!(
        s.pay(&order, "4111111111111111").body["paymentStatus"],
        "PAYMENT_COMPLETED"
    );

    let tokens = s.api(
        "GET",
        &format!("/merchants/{MERCHANT}/orders/{order}/tokens"),
        None,
    );
    assert_eq!(tokens.body["message"], "Fetched the card information.");
    let t = &tokens.body["data"][0];
    for field in [
        "cardBrand",
        "cardholderName",
        "tokenId",
        "createdAt",
        "cardArt",
    ] {
        assert!(t[field].is_string(), "{field}: {t}");
    }
    assert_eq!(t["truncatedPan"], "1111");
    assert!(t["expiryMonth"].is_number() && t["expiryYear"].is_number());

    let status = s.api("GET", &format!("/orders/{order}/status"), None).body["data"].clone();
    assert_eq!(status["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(status["paymentIds"].as_array().unwrap().len(), 1);
    assert_eq!(
        status["transactions"][0]["amount"], "29900",
        "transaction amounts are strings"
    );
    assert_eq!(status["transactions"][0]["type"], "PURCHASE");

    // Stage 2: a MIT order and CTOKEN payments with the token at either placement.
    let token = t["tokenId"].as_str().unwrap();
    for body in [
        json!({"paymentMethod": "CTOKEN", "tokenId": token}),
        json!({"paymentMethod": "CTOKEN", "paymentMethodParams": {"tokenId": token}}),
    ] {
        let mit = s.mit_order(29900);
        let mut body = body;
        body["orderId"] = json!(mit);
        let r = s.api(
            "POST",
            &format!("/merchants/{MERCHANT}/payments"),
            Some(&body),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(r.body["data"]["paymentId"].is_string());
        let st = s.wait_final(&mit);
        assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED", "{st}");
        assert_eq!(st["payments"][0]["paymentMethod"], "CTOKEN");
    }
}

#[test]
fn credentials_are_checked_on_every_call() {
    let s = start();
    let r = s.call("POST", "/orders", Some(&json!({})), false);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"status": "ERROR", "message": "Unauthorized access. Please provide valid credentials to access this endpoint."})
    );
    let r = s.api("GET", "/merchants/000000000000000000/orders/x/status", None);
    assert_eq!(r.status, 401, "another merchant's path");
    assert_eq!(
        s.api("GET", "/orders/ffffffffffffffffff/status", None)
            .status,
        404
    );
    assert_eq!(s.api("POST", "/orders", None).status, 400, "no body");
}

#[test]
fn amounts_must_reconcile_with_the_documented_codes() {
    let s = start();
    let order = |lines: Value, total: Option<Value>| {
        let mut body = json!({"terminal$id": MIT, "orderLines": lines});
        if let Some(t) = total {
            body["totalOrderAmount"] = t;
        }
        let r = s.api("POST", "/orders", Some(&body));
        assert_eq!(
            r.status, 201,
            "business errors are HTTP 201 on creates: {}",
            r.text
        );
        r.body
    };
    let line = |regular: i64, total: i64, currency: &str| json!([{"id": "a", "name": "A", "quantity": 2, "amount": {"regular": regular, "total": total, "currency": currency}}]);
    let code = |b: &Value| {
        b["message"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    let b = order(line(1000, 1000, "840"), None);
    assert_eq!(
        (b["status"].as_str(), code(&b).as_str()),
        (Some("ERROR"), "OR_0004")
    );
    assert!(b.get("data").is_none());
    assert_eq!(code(&order(line(1000, 900, "752"), None)), "OR_0023");
    assert_eq!(
        code(&order(
            line(1000, 1000, "752"),
            Some(json!({"total": 1000, "currency": "752"}))
        )),
        "OR_0037"
    );
    assert_eq!(
        order(
            line(1000, 1000, "752"),
            Some(json!({"total": 2000, "currency": "752"}))
        )["status"],
        "SUCCESS"
    );
    assert_eq!(
        code(&order(line(100, 100, "752"), None)),
        "OR_0038",
        "below 3 SEK"
    );
    // Shipping and campaign reconcile.
    let ok = json!([{"id": "a", "name": "A", "quantity": 1,
        "amount": {"regular": 1000, "shipping": 200, "campaign": 100, "total": 1100, "currency": "978"}}]);
    assert_eq!(order(ok, None)["status"], "SUCCESS");
}

#[test]
fn test_cards_decide_checkout_and_later_charges() {
    let s = start();
    let declined = s.page_order(9900, json!({}));
    let r = s.pay(&declined, "4000000000000002");
    assert_eq!(r.body["paymentStatus"], "PAYMENT_FAILED");
    assert_eq!(r.body["failureReason"], "DENIED");
    assert_eq!(r.body["tokenized"], false);
    assert_eq!(
        s.api("GET", &format!("/orders/{declined}/status"), None)
            .body["data"]["orderStatus"],
        "PAYMENT_FAILED"
    );

    for (card, reason) in [
        ("4000000000009995", "DENIED_NO_FUNDS"),
        ("4000000000000119", "DENIED_DO_NOT_TRY_AGAIN"),
    ] {
        let page = s.page_order(9900, json!({}));
        assert_eq!(
            s.pay(&page, card).body["paymentStatus"],
            "PAYMENT_COMPLETED",
            "{card} approves at checkout"
        );
        let token = s.token_of(&page);
        let mit = s.mit_order(9900);
        assert_eq!(s.charge(&mit, &token).status, 201);
        let st = s.wait_final(&mit);
        assert_eq!(st["payments"][0]["failureReason"], reason, "{card}: {st}");
        // The MIT order stays open for another attempt on the same order.
        assert_eq!(s.charge(&mit, &token).body["status"], "SUCCESS");
    }

    let page = s.page_order(9900, json!({}));
    s.pay(&page, "4111111111111111");
    let token = s.token_of(&page);
    let mit = s.mit_order(9900);
    s.charge(&mit, &token);
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
    let again = s.charge(&mit, &token);
    assert_eq!(
        again.body["status"], "ERROR",
        "a completed order takes no more payments"
    );
    let on_page = s.charge(&page, &token);
    assert!(
        on_page.body["message"]
            .as_str()
            .unwrap()
            .starts_with("PS_0025"),
        "{}",
        on_page.text
    );
    let bad_token = s.charge(&s.mit_order(9900), "ffffffffffffffffff");
    assert!(
        bad_token.body["message"]
            .as_str()
            .unwrap()
            .starts_with("PS_")
    );
}

#[test]
fn token_behaviour_applies_to_the_next_charges_then_falls_back() {
    let s = start();
    let page = s.page_order(9900, json!({}));
    s.pay(&page, "4111111111111111");
    let token = s.token_of(&page);
    let r = s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "decline", "failureReason": "ERROR_ISSUER_UNAVAILABLE", "times": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mit = s.mit_order(9900);
    let mut reasons = Vec::new();
    for _ in 0..3 {
        s.charge(&mit, &token);
        let st = s.wait_final(&mit);
        reasons.push(st["payments"].as_array().unwrap().last().unwrap()["failureReason"].clone());
    }
    assert_eq!(
        reasons,
        [
            json!("ERROR_ISSUER_UNAVAILABLE"),
            json!("ERROR_ISSUER_UNAVAILABLE"),
            Value::Null
        ]
    );
    let ledger = s.call("GET", "/_sandbox/ledger", None, false).body;
    let totals = &ledger["payments_per_token"][&token];
    assert_eq!(
        (
            totals["attempted"].as_i64(),
            totals["completed"].as_i64(),
            totals["failed"].as_i64()
        ),
        (Some(3), Some(1), Some(2))
    );
}

#[test]
fn refunds_are_return_orders_bounded_by_the_purchase() {
    let s = start();
    let page = s.page_order(10_000, json!({}));
    let refund = |amount: i64| {
        s.api(
            "POST",
            "/orders",
            Some(&json!({"terminal$id": PAGE, "orderLines": [{"id": "r", "name": "Refund", "quantity": -1,
                "amount": {"total": amount, "currency": "752"}, "purchaseOrderId": page}],
                "totalOrderAmount": {"total": -amount, "currency": "752"},
                "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}})),
        )
        .body
    };
    assert!(
        refund(1000)["message"]
            .as_str()
            .unwrap()
            .starts_with("OR_0035"),
        "not completed yet"
    );
    s.pay(&page, "4111111111111111");
    let first = refund(4000);
    assert_eq!(first["status"], "SUCCESS", "{first}");
    assert_eq!(refund(6000)["status"], "SUCCESS");
    assert_eq!(refund(1)["status"], "ERROR", "nothing left to refund");
    let return_order = first["data"]["orderId"].as_str().unwrap();
    let st = s.wait_final(return_order);
    assert_eq!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(st["transactions"][0]["type"], "RETURN");
    let ledger = s.call("GET", "/_sandbox/ledger", None, false).body;
    let returned: i64 = ledger["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["amount"].as_i64().unwrap().abs())
        .sum();
    assert_eq!(returned, 10_000);
}

#[test]
fn cancelling_an_order_fences_a_payment_still_in_flight() {
    let s = start();
    let page = s.page_order(9900, json!({}));
    s.pay(&page, "4111111111111111");
    let token = s.token_of(&page);
    s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "approve", "delay_ms": 300}),
    );
    let mit = s.mit_order(9900);
    assert_eq!(s.charge(&mit, &token).status, 201);
    let cancel = s.api("DELETE", &format!("/orders/{mit}"), None);
    assert_eq!(cancel.body["status"], "SUCCESS", "{}", cancel.text);
    std::thread::sleep(Duration::from_millis(500));
    let st = s.api("GET", &format!("/orders/{mit}/status"), None).body["data"].clone();
    assert_eq!(
        st["payments"][0]["paymentStatus"], "PAYMENT_CANCELLED",
        "{st}"
    );
    assert_ne!(st["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(
        s.charge(&mit, &token).body["status"],
        "ERROR",
        "no payment on a cancelled order"
    );
    // A completed order cannot be cancelled.
    let done = s.mit_order(9900);
    s.charge(&done, &token);
    s.wait_final(&done);
    assert_eq!(
        s.api("DELETE", &format!("/orders/{done}"), None).body["status"],
        "ERROR"
    );
}

#[test]
fn the_hosted_page_is_a_real_one_shot_form() {
    let s = start();
    let order = s.page_order(
        9900,
        json!({"controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD", "amount": 9900},
            "online": {"enforceTokenization": true, "redirectUrl": "http://shop.test/done", "failureRedirectUrl": "http://shop.test/failed"}}}),
    );
    let page = s.call("GET", &format!("/pay/{order}"), None, false);
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("<form")
            && page.text.contains("cardNumber")
            && page.text.contains("99.00 SEK")
    );
    let typo = s.form(
        &format!("/pay/{order}"),
        "cardNumber=4111111111111112&expiry=12%2F31&cvc=123&name=Ada",
    );
    assert_eq!(typo.status, 422);
    assert!(
        typo.text.contains("not valid"),
        "a typo does not spend the link"
    );
    let paid = s.form(
        &format!("/pay/{order}"),
        "cardNumber=4111+1111+1111+1111&expiry=07%2F30&cvc=123&name=Ada+Lovelace",
    );
    assert_eq!(paid.status, 303);
    assert_eq!(paid.location.as_deref(), Some("http://shop.test/done"));
    let again = s.call("GET", &format!("/pay/{order}"), None, false);
    assert_eq!(again.status, 410);
    assert!(again.text.contains("Invalid or Expired Link"));
    std::thread::sleep(Duration::from_millis(100));
    let token = &s.api("GET", &format!("/orders/{order}/tokens"), None).body["data"][0];
    assert_eq!(
        (token["expiryMonth"].as_i64(), token["expiryYear"].as_i64()),
        (Some(7), Some(2030))
    );
    assert_eq!(token["cardholderName"], "Ada Lovelace");

    let declined = s.page_order(
        9900,
        json!({"controlFunctions": {"online": {"enforceTokenization": true, "redirectUrl": "http://shop.test/done",
            "failureRedirectUrl": "http://shop.test/failed"}}}),
    );
    let r = s.form(&format!("/pay/{declined}"), "cardNumber=4000000000000002");
    assert_eq!(r.location.as_deref(), Some("http://shop.test/failed"));
}

/// Deliveries a receiver saw: (raw body, x-webhook-signature).
type Deliveries = Arc<Mutex<Vec<(String, String)>>>;

/// A tiny webhook receiver: records every delivery; answers 500 to the first `fail_first`.
fn receiver(runtime: &tokio::runtime::Runtime, fail_first: usize) -> (String, Deliveries) {
    use axum::routing::post;
    let seen: Deliveries = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let sig = headers
                    .get("x-webhook-signature")
                    .map_or("", |v| v.to_str().unwrap())
                    .to_owned();
                let mut all = store.lock().unwrap();
                all.push((body, sig));
                if all.len() <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn verify(secret: &str, body: &str, signature: &str) -> bool {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    expected == signature
}

#[test]
fn webhooks_are_signed_and_callbacks_are_not_retried_but_console_ones_are() {
    let s = start();
    let (callback, calls) = receiver(&s._runtime, usize::MAX);
    let (console, console_calls) = receiver(&s._runtime, 2);
    let r = s.control(
        "PUT",
        "/_sandbox/webhooks",
        &json!({"url": console, "retries": true, "retry_delays_ms": [50, 100, 200]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let order = s.page_order(9900, json!({"controlFunctions": {"callBackUrl": callback, "online": {"enforceTokenization": true}}}));
    s.pay(&order, "4111111111111111");
    std::thread::sleep(Duration::from_millis(800));

    let calls = calls.lock().unwrap().clone();
    let types: Vec<String> = calls
        .iter()
        .map(|(b, _)| {
            serde_json::from_str::<Value>(b).unwrap()["eventType"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            "order.paymentinitiated",
            "order.paymentprocessed",
            "order.paymentcompleted"
        ]
    );
    let mut ids = std::collections::HashSet::new();
    for (body, sig) in &calls {
        assert!(
            verify("sandbox-webhook-secret", body, sig),
            "signature of {body}"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(
            ids.insert(v["metadata"]["eventId"].as_str().unwrap().to_owned()),
            "unique eventIds"
        );
        assert_eq!(v["data"]["orderId"], order);
        assert_eq!(v["data"]["merchantId"], MERCHANT);
        assert!(v["metadata"]["created"].is_i64());
    }
    // The callback answered 500 every time and was never retried; the console got retries.
    assert_eq!(calls.len(), 3);
    let console_calls = console_calls.lock().unwrap().clone();
    assert_eq!(
        console_calls.len(),
        5,
        "3 events + 2 retries of the first failures"
    );
    let retried: Vec<i64> = console_calls
        .iter()
        .map(|(b, _)| {
            serde_json::from_str::<Value>(b).unwrap()["metadata"]["retryAttempt"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // The two failed deliveries (of two different events) were each retried once.
    assert_eq!(
        retried.iter().filter(|&&r| r == 1).count(),
        2,
        "{retried:?}"
    );
}

#[test]
fn fault_injection_is_reproducible_for_a_seed() {
    let s = start();
    let run = || {
        s.control(
            "PUT",
            "/_sandbox/faults",
            &json!({"seed": 7, "rules": [
            {"endpoint": "create_order", "error_rate": 0.3, "business_error_rate": 0.3}]}),
        );
        (0..30)
            .map(|_| {
                let r = s.api("POST", "/orders", Some(&json!({"terminal$id": MIT,
                    "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 500, "currency": "752"}}]})));
                (r.status, r.body["status"].as_str().unwrap_or("").to_owned())
            })
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(
        first.iter().any(|(s, _)| *s == 500)
            && first.iter().any(|(_, b)| b == "ERROR")
            && first.iter().any(|(_, b)| b == "SUCCESS")
    );
    assert_eq!(
        s.call("DELETE", "/_sandbox/faults", None, false).status,
        204
    );
}

#[test]
fn status_reads_can_lag_behind_the_real_outcome() {
    let s = start();
    let page = s.page_order(9900, json!({}));
    s.control(
        "PUT",
        "/_sandbox/faults",
        &json!({"rules": [{"endpoint": "order_status", "status_lag_ms": 400}]}),
    );
    s.pay(&page, "4111111111111111");
    let early =
        s.api("GET", &format!("/orders/{page}/status"), None).body["data"]["orderStatus"].clone();
    assert_ne!(early, "PAYMENT_COMPLETED");
    std::thread::sleep(Duration::from_millis(500));
    let late =
        s.api("GET", &format!("/orders/{page}/status"), None).body["data"]["orderStatus"].clone();
    assert_eq!(late, "PAYMENT_COMPLETED");
}

#[test]
fn the_state_file_keeps_everything_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("psp-sandbox-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let _ = std::fs::remove_file(&file);
    let config = || Config {
        processing_ms: 10,
        state_file: Some(file.clone()),
        ..Config::default()
    };
    let (order, token) = {
        let s = start_with(config());
        let order = s.page_order(9900, json!({}));
        s.pay(&order, "4111111111111111");
        let token = s.token_of(&order);
        (order, token)
    };
    let s = start_with(config());
    assert_eq!(s.token_of(&order), token);
    let mit = s.mit_order(9900);
    assert_eq!(
        s.charge(&mit, &token).status,
        201,
        "the token still charges after a restart"
    );
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
    let _ = std::fs::remove_dir_all(&dir);
}
