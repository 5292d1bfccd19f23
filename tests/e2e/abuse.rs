//! Abuse bounds and strict inputs: the rate limiter on the routes browsers call, the bound on
//! open checkouts per customer, and every route with a body refusing what does not fit its type.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::flows::*;
use crate::http::Reply;
use crate::stack::{ORIGIN, Options, Stack};

fn orders(s: &Stack) -> usize {
    s.ledger()["orders"].as_array().unwrap().len()
}

/// Local rate limiting counts in windows aligned to the minute: start a burst early in one, so
/// that it is counted in a single window.
fn start_of_a_fresh_window() {
    let into_minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into_minute > 40_000 {
        std::thread::sleep(Duration::from_millis(60_500 - into_minute as u64));
    }
}

#[test]
fn the_rate_limiter_answers_429_per_customer_and_per_address() {
    let s = Stack::start_with(Options {
        rate_limit: Some(5),
        ..Options::default()
    });
    // Minting is the merchant's backend: not limited.
    session_for(&s, "limited-a");
    session_for(&s, "limited-b");
    // The limiter counts per minute: a burst that a slow machine stretched over two minutes is
    // measured again in the next one.
    for attempt in 1.. {
        start_of_a_fresh_window();
        let minute = current_minute();
        let burst = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| limited_burst(&s)));
        match burst {
            Ok(()) => break,
            Err(_) if current_minute() != minute && attempt < 3 => continue,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    // The merchant's backend is never limited by it.
    for _ in 0..8 {
        merchant_get(&s, "/v1/subscriptions");
    }
    assert_eq!(orders(&s), 0);
}

fn current_minute() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        / 60_000
}

fn limited_burst(s: &Stack) {
    for _ in 0..5 {
        let r = customer_get(s, "limited-a", "/v1/portal/subscriptions");
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = customer_get(s, "limited-a", "/v1/portal/subscriptions");
    r.problem(429, "too-many-requests");
    assert_eq!(r.header("retry-after"), Some("60"));
    // Another customer has a count of their own.
    assert_eq!(
        customer_get(s, "limited-b", "/v1/portal/subscriptions").status,
        200
    );

    // Without a session, requests count against the client's address.
    for _ in 0..5 {
        assert_eq!(s.worker.get("/v1/plans").status, 200);
    }
    let r = s.worker.get_with("/v1/plans", &[("Origin", ORIGIN)]);
    r.problem(429, "too-many-requests");
    assert_eq!(r.header("retry-after"), Some("60"));
    // A browser may read when to come back.
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("Retry-After")
    );
    // Guessing at sessions spends that address's quota too.
    s.worker
        .get_with(
            "/v1/portal/subscriptions",
            &[("Authorization", "Bearer v1.guess.guess")],
        )
        .problem(429, "too-many-requests");
}

#[test]
fn a_customer_has_a_bounded_number_of_open_checkouts() {
    let s = Stack::start();
    let mut first = Value::Null;
    for i in 0..5 {
        let r = start_checkout(&s, "bound-1", "basic-monthly", json!({}));
        assert_eq!(r.status, 201, "{}", r.text);
        if i == 0 {
            first = r.json();
        }
    }
    let r = start_checkout(&s, "bound-1", "basic-monthly", json!({}));
    let p = r.problem(409, "too-many-open-checkouts");
    assert_eq!(p["maxOpenCheckouts"], 5);
    // A card replacement is a checkout too.
    customer_post(
        &s,
        "bound-1",
        "/v1/portal/payment-method",
        &json!({"returnUrl": format!("{ORIGIN}/account")}),
        &[],
    )
    .problem(409, "too-many-open-checkouts");
    assert_eq!(orders(&s), 5, "the refused ones never reached the provider");
    // Other customers are not affected.
    assert_eq!(
        start_checkout(&s, "bound-2", "basic-monthly", json!({})).status,
        201
    );
    // Paying one frees its place.
    pay(&s, first["orderId"].as_str().unwrap(), APPROVE);
    assert_eq!(
        wait_checkout(&s, first["checkoutId"].as_str().unwrap())["status"],
        "paid"
    );
    assert_eq!(
        start_checkout(&s, "bound-1", "basic-monthly", json!({})).status,
        201
    );
    assert_ledgers_agree(&s, "bound-1");
}

/// How a test calls a route: who it is and what a valid body looks like.
struct RouteCase {
    path: String,
    auth: Vec<(&'static str, String)>,
    valid: Value,
    /// String fields, each of which must refuse control characters and null.
    strings: Vec<&'static str>,
}

impl RouteCase {
    fn send(&self, s: &Stack, body: &str, content_type: &str, key: &str) -> Reply {
        let mut headers: Vec<(&str, &str)> =
            self.auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("Content-Type", content_type));
        headers.push(("Idempotency-Key", key));
        s.worker.post_raw(&self.path, body, &headers)
    }
}

#[test]
fn every_route_with_a_body_refuses_what_does_not_fit_its_type() {
    let s = Stack::start();
    tick(&s, "2027-08-01T00:00:00Z");
    let sub = subscribe(&s, "strict-1", "basic-monthly", APPROVE);
    let metered = subscribe(&s, "strict-1", "api-metered", APPROVE);
    let r = charge(&s, "strict-charge", &charge_body("strict-1", 1000));
    let charge_id = r.json()["id"].as_str().unwrap().to_owned();
    let merchant = vec![("Authorization", BEARER.to_owned())];
    let customer = vec![("Authorization", as_customer(&s, "strict-1"))];
    let cases = vec![
        RouteCase {
            path: "/v1/customer-sessions".into(),
            auth: merchant.clone(),
            valid: json!({"customerRef": "strict-2", "email": "a@example.com", "name": "A"}),
            strings: vec!["customerRef", "email", "name"],
        },
        RouteCase {
            path: "/v1/checkout".into(),
            auth: customer.clone(),
            valid: json!({"planId": "weekly", "returnUrl": format!("{ORIGIN}/done")}),
            strings: vec!["planId", "returnUrl"],
        },
        RouteCase {
            path: "/v1/portal/payment-method".into(),
            auth: customer.clone(),
            valid: json!({"returnUrl": format!("{ORIGIN}/account")}),
            strings: vec!["returnUrl"],
        },
        RouteCase {
            path: "/v1/charges".into(),
            auth: merchant.clone(),
            valid: charge_body("strict-1", 500),
            strings: vec!["customerRef", "currency", "description"],
        },
        RouteCase {
            path: format!("/v1/charges/{charge_id}/refunds"),
            auth: merchant.clone(),
            valid: json!({"amount": 100}),
            strings: vec![],
        },
        RouteCase {
            path: format!("/v1/subscriptions/{}/change-plan", sub.subscription_id),
            auth: merchant.clone(),
            valid: json!({"planId": "pro-yearly"}),
            strings: vec!["planId"],
        },
        RouteCase {
            path: "/v1/usage".into(),
            auth: merchant.clone(),
            valid: json!({"subscriptionId": metered.subscription_id, "quantity": 3, "timestamp": "2027-08-01T00:00:00Z"}),
            strings: vec!["subscriptionId", "timestamp"],
        },
        RouteCase {
            path: "/v1/test-clock/tick".into(),
            auth: merchant.clone(),
            valid: json!({"now": "2027-08-01T00:00:00Z"}),
            strings: vec!["now"],
        },
        RouteCase {
            path: "/v1/demo/session".into(),
            auth: vec![],
            valid: json!({"customerRef": "demo-00000000000000000000000000000000"}),
            strings: vec!["customerRef"],
        },
        RouteCase {
            path: format!("/v1/subscriptions/{}/cancel", sub.subscription_id),
            auth: merchant.clone(),
            valid: json!({"atPeriodEnd": true, "reason": "moving"}),
            strings: vec!["reason"],
        },
    ];
    let json_type = "application/json";
    let orders_before = orders(&s);
    for (n, case) in cases.iter().enumerate() {
        let key = |variant: &str| format!("strict-{n}-{variant}");
        let mut unknown = case.valid.clone();
        unknown["bogus"] = json!(1);
        let p = case
            .send(&s, &unknown.to_string(), json_type, &key("unknown"))
            .problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], "bogus", "{}: {p}", case.path);
        assert_eq!(p["detail"], "bogus: unknown field", "{}", case.path);

        case.send(&s, &case.valid.to_string(), "text/plain", &key("type"))
            .problem(415, "unsupported-media-type");
        let p = case
            .send(&s, "{\"x\": ", json_type, &key("truncated"))
            .problem(400, "invalid-request");
        assert!(!p["detail"].as_str().unwrap().contains("line"), "{p}");
        for not_an_object in ["[]", "[true]", "\"x\"", "null"] {
            let p = case
                .send(&s, not_an_object, json_type, &key("shape"))
                .problem(400, "validation-error");
            assert_eq!(p["detail"], "body: must be a JSON object", "{}", case.path);
        }
        let first_field = case
            .valid
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let duplicated = format!("{{\"{first_field}\": 1, {}", &case.valid.to_string()[1..]);
        let p = case
            .send(&s, &duplicated, json_type, &key("duplicate"))
            .problem(400, "validation-error");
        assert_eq!(p["errors"][0]["message"], "appears more than once", "{p}");
        for field in &case.strings {
            for (bad, rule) in [
                (json!("a\u{0}b"), "must not contain control characters"),
                (json!("a\nb"), "must not contain control characters"),
                (Value::Null, "must not be null"),
                (json!(["x"]), "must be a string"),
            ] {
                let mut body = case.valid.clone();
                body[*field] = bad.clone();
                let p = case
                    .send(&s, &body.to_string(), json_type, &key(field))
                    .problem(400, "validation-error");
                assert_eq!(
                    p["errors"][0],
                    json!({"field": field, "message": rule}),
                    "{} {field}={bad}",
                    case.path
                );
            }
        }
    }
    // Bodyless actions: nothing or {}, nothing else.
    let bodyless = [
        (
            format!("/v1/subscriptions/{}/pause", sub.subscription_id),
            merchant.clone(),
        ),
        (
            format!("/v1/subscriptions/{}/resume", sub.subscription_id),
            merchant.clone(),
        ),
        (
            format!("/v1/portal/subscriptions/{}/cancel", sub.subscription_id),
            customer.clone(),
        ),
        (
            format!(
                "/v1/portal/subscriptions/{}/reactivate",
                sub.subscription_id
            ),
            customer.clone(),
        ),
    ];
    for (path, auth) in &bodyless {
        let case = RouteCase {
            path: path.clone(),
            auth: auth.clone(),
            valid: json!({}),
            strings: vec![],
        };
        for (body, content_type, status) in [
            ("{\"atPeriodEnd\": true}", json_type, 400),
            ("[]", json_type, 400),
            ("[true]", json_type, 400),
            ("{\"", json_type, 400),
            ("{}", "text/plain", 415),
            ("pause", "text/plain", 415),
        ] {
            let r = case.send(&s, body, content_type, "bodyless");
            assert_eq!(r.status, status, "{path} {body}: {}", r.text);
            assert!(r.content_type.starts_with("application/problem+json"));
        }
    }

    // Nothing of it changed anything.
    assert_eq!(orders(&s), orders_before);
    let unchanged = subscription(&s, &sub.subscription_id);
    assert_eq!(unchanged["status"], "active");
    assert_eq!(unchanged["cancelAtPeriodEnd"], false);
    assert!(unchanged.get("pendingPlanId").is_none(), "{unchanged}");
    assert_eq!(charges_of(&s, "strict-1").len(), 3);
    assert!(
        merchant_get(&s, &format!("/v1/charges/{charge_id}/refunds"))["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // And every valid body is accepted (so the refusals above were about what they tested).
    for (n, case) in cases.iter().enumerate() {
        let r = case.send(
            &s,
            &case.valid.to_string(),
            json_type,
            &format!("valid-{n}"),
        );
        assert!(r.status < 300, "{}: {} {}", case.path, r.status, r.text);
    }
    assert_ledgers_agree(&s, "strict-1");
}
