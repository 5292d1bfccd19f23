//! Customer sessions: minted by the merchant's backend (or by its own code, following the
//! README), required by every customer route, refused when expired, tampered with, signed with
//! another key or malformed, and rotated without downtime.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use recurring_core::session::{self, Claims, SessionKey, SessionKeys};

use crate::flows::*;
use crate::http::Reply;
use crate::stack::{ORIGIN, Options, SESSION_SECRET, Stack};

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A session signed with `secret` as the README describes, for any payload.
fn sign(secret: &str, payload: &Value) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v1.{payload}").as_bytes());
    format!(
        "v1.{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn with_session(s: &Stack, token: &str, path: &str) -> Reply {
    let auth = format!("Bearer {token}");
    s.worker.get_with(path, &[("Authorization", auth.as_str())])
}

fn checkout_with(s: &Stack, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    s.worker.post_with(
        "/v1/checkout",
        &json!({"planId": "basic-monthly", "returnUrl": format!("{ORIGIN}/done")}),
        &[("Authorization", auth.as_str())],
    )
}

fn orders(s: &Stack) -> usize {
    s.ledger()["orders"].as_array().unwrap().len()
}

#[test]
fn the_merchant_mints_sessions_and_every_customer_route_requires_one() {
    let s = Stack::start();
    // Only the merchant's backend mints.
    s.worker
        .post("/v1/customer-sessions", &json!({"customerRef": "cust-1"}))
        .problem(401, "unauthorized");
    let r = mint_session(
        &s,
        &json!({"customerRef": "cust-1", "email": "ada@example.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let minted = r.json();
    assert_eq!(minted["customerRef"], "cust-1");
    let token = minted["clientSecret"].as_str().unwrap();
    let claims = session::verify(
        &SessionKeys {
            current: SessionKey::new(SESSION_SECRET),
            previous: None,
        },
        token,
        now_s(),
        4 * 3600,
    )
    .expect("the worker's session verifies with the documented algorithm");
    assert_eq!(claims.customer_ref, "cust-1");
    assert_eq!(claims.kid, session::key_id(SESSION_SECRET));
    // Thirty minutes by default.
    assert!((claims.exp - now_s() - 1800).abs() < 60, "{claims:?}");
    assert!(minted["expiresAt"].as_str().unwrap().ends_with('Z'));

    // Without a session, with the merchant key, or with a bare customer reference: 401.
    let merchant_key = BEARER;
    for auth in [
        None,
        Some(merchant_key),
        Some("Bearer cust-1"),
        Some("cust-1"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        for (method, path) in [
            ("POST", "/v1/checkout"),
            ("GET", "/v1/checkout/co_00000000000000000000"),
            ("GET", "/v1/customers/cust-1/payment-method"),
            ("GET", "/v1/portal/subscriptions"),
            ("GET", "/v1/portal/charges"),
            ("POST", "/v1/portal/subscriptions/sub_1/cancel"),
            ("POST", "/v1/portal/subscriptions/sub_1/reactivate"),
            ("POST", "/v1/portal/payment-method"),
        ] {
            let mut all = headers.clone();
            all.push(("Content-Type", "application/json"));
            let body = json!({"planId": "basic-monthly", "returnUrl": format!("{ORIGIN}/done"), "customerRef": "cust-1"});
            let r = s.worker.send(method, path, &body.to_string(), &all);
            let p = r.problem(401, "unauthorized");
            assert!(
                r.header("www-authenticate").unwrap().starts_with("Bearer"),
                "{method} {path}"
            );
            assert!(p["detail"].is_string());
        }
    }
    // With the session, the same routes answer for cust-1.
    let r = checkout_with(&s, token);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        with_session(&s, token, "/v1/portal/subscriptions").status,
        200
    );
    assert_eq!(
        orders(&s),
        1,
        "only the authenticated checkout reached the provider"
    );
    assert_ledgers_agree(&s, "cust-1");
}

#[test]
fn session_requests_are_strict_and_bounded() {
    let s = Stack::start();
    for (body, field, rule) in [
        (json!({}), "customerRef", "required"),
        (
            json!({"customerRef": null}),
            "customerRef",
            "must not be null",
        ),
        (
            json!({"customerRef": "cust 1"}),
            "customerRef",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        ),
        (
            json!({"customerRef": 42}),
            "customerRef",
            "must be a string",
        ),
        (
            json!({"customerRef": "c", "email": "a\u{0}@example.com"}),
            "email",
            "must not contain control characters",
        ),
        (
            json!({"customerRef": "c", "email": "nope"}),
            "email",
            "must be an email address",
        ),
        (
            json!({"customerRef": "c", "email": null}),
            "email",
            "must not be null",
        ),
        (
            json!({"customerRef": "c", "name": "Ada\nLovelace"}),
            "name",
            "must not contain control characters",
        ),
        (
            json!({"customerRef": "c", "expiresInSeconds": 1}),
            "expiresInSeconds",
            "must be from 5 to 14400",
        ),
        (
            json!({"customerRef": "c", "expiresInSeconds": 100000}),
            "expiresInSeconds",
            "must be from 5 to 14400",
        ),
        (
            json!({"customerRef": "c", "expiresInSeconds": 60.5}),
            "expiresInSeconds",
            "must be an integer",
        ),
        (
            json!({"customerRef": "c", "admin": true}),
            "admin",
            "unknown field",
        ),
    ] {
        let r = mint_session(&s, &body);
        let p = r.problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
        assert_eq!(p["errors"][0]["message"], rule, "{body}: {p}");
    }
    let r = s.worker.post_raw(
        "/v1/customer-sessions",
        "customerRef=c",
        &[("Authorization", BEARER), ("Content-Type", "text/plain")],
    );
    r.problem(415, "unsupported-media-type");
}

#[test]
fn expired_tampered_foreign_and_malformed_sessions_answer_401_and_change_nothing() {
    let s = Stack::start();
    let kid = session::key_id(SESSION_SECRET);
    let valid = sign(
        SESSION_SECRET,
        &json!({"c": "cust-2", "exp": now_s() + 600, "kid": kid}),
    );
    assert_eq!(
        checkout_with(&s, &valid).status,
        201,
        "a hand-signed session works"
    );
    let before = orders(&s);

    let expired = sign(
        SESSION_SECRET,
        &json!({"c": "cust-2", "exp": now_s() - 1, "kid": kid}),
    );
    let r = checkout_with(&s, &expired);
    let p = r.problem(401, "unauthorized");
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");

    let too_long = sign(
        SESSION_SECRET,
        &json!({"c": "cust-2", "exp": now_s() + 5 * 3600, "kid": kid}),
    );
    let other_key = sign(
        "another-secret-that-is-long-enough-0123456789",
        &json!({"c": "cust-2", "exp": now_s() + 600, "kid": kid}),
    );
    // The payload of one customer under the signature of another's session.
    let victim = sign(
        SESSION_SECRET,
        &json!({"c": "victim", "exp": now_s() + 600, "kid": kid}),
    );
    let spliced = format!(
        "v1.{}.{}",
        victim.split('.').nth(1).unwrap(),
        valid.split('.').nth(2).unwrap()
    );
    let mut flipped = valid.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let unknown_claim = sign(
        SESSION_SECRET,
        &json!({"c": "cust-2", "exp": now_s() + 600, "kid": kid, "role": "admin"}),
    );
    for bad in [
        too_long,
        other_key,
        spliced,
        flipped,
        unknown_claim,
        valid.replacen("v1.", "v2.", 1),
        format!("{valid}="),
        "v1.e30.AAAA".to_owned(),
        "garbage".to_owned(),
        "x".repeat(5000),
    ] {
        let r = checkout_with(&s, &bad);
        let p = r.problem(401, "unauthorized");
        assert_eq!(p["detail"], "The customer session is not valid.", "{bad}");
        let r = with_session(&s, &bad, "/v1/portal/subscriptions");
        r.problem(401, "unauthorized");
    }
    assert_eq!(
        orders(&s),
        before,
        "no refused session reached the provider"
    );

    // A short session from the API works, then expires in real time.
    let r = mint_session(&s, &json!({"customerRef": "cust-2", "expiresInSeconds": 5}));
    let short = r.json()["clientSecret"].as_str().unwrap().to_owned();
    assert_eq!(
        with_session(&s, &short, "/v1/portal/subscriptions").status,
        200
    );
    eventually(30, "the 5-second session to expire", || {
        with_session(&s, &short, "/v1/portal/subscriptions").status == 401
    });
    assert_ledgers_agree(&s, "cust-2");
}

#[test]
fn rotating_the_key_keeps_sessions_valid_until_the_old_key_is_removed() {
    let old = SESSION_SECRET.to_owned();
    let new = "e2e-rotated-session-secret-fedcba9876543210".to_owned();
    let mut s = Stack::start();
    let old_session = session_for(&s, "cust-3");
    let r = checkout_with(&s, &old_session);
    assert_eq!(r.status, 201, "{}", r.text);
    let checkout_id = r.json()["checkoutId"].as_str().unwrap().to_owned();
    let read =
        |s: &Stack, token: &str| with_session(s, token, &format!("/v1/checkout/{checkout_id}"));

    // During the rotation: both keys are accepted, new sessions are signed with the new one.
    s.restart_with_secrets(vec![
        ("CUSTOMER_SESSION_SECRET", new.clone()),
        ("CUSTOMER_SESSION_SECRET_PREVIOUS", old.clone()),
    ]);
    assert_eq!(read(&s, &old_session).status, 200);
    let r = mint_session(&s, &json!({"customerRef": "cust-3"}));
    let new_session = r.json()["clientSecret"].as_str().unwrap().to_owned();
    let keys = SessionKeys {
        current: SessionKey::new(&new),
        previous: None,
    };
    let claims = session::verify(&keys, &new_session, now_s(), 4 * 3600).unwrap();
    assert_eq!(claims.kid, session::key_id(&new));
    assert_eq!(read(&s, &new_session).status, 200);

    // After it: the old key's sessions are refused, the new ones still work.
    s.restart_with_secrets(vec![("CUSTOMER_SESSION_SECRET", new.clone())]);
    read(&s, &old_session).problem(401, "unauthorized");
    assert_eq!(read(&s, &new_session).status, 200);
    // The worker never names the key, only that something is wrong.
    let health = s.worker.get("/health").json();
    assert_eq!(health["status"], "ok", "{health}");
    assert!(!s.worker_log().contains(&new) && !s.worker_log().contains(&old));
    assert_ledgers_agree(&s, "cust-3");
}

#[test]
fn a_missing_session_secret_is_named_by_health_never_shown() {
    let s = Stack::start_with(Options {
        secrets: vec![("CUSTOMER_SESSION_SECRET", "too-short".into())],
        ..Options::default()
    });
    let r = s.worker.get("/health");
    assert_eq!(r.status, 503, "{}", r.text);
    let detail = r.json()["checks"]["config"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("CUSTOMER_SESSION_SECRET"), "{detail}");
    assert!(!r.text.contains("too-short"), "{}", r.text);
    // Nothing is served with a broken configuration.
    mint_session(&s, &json!({"customerRef": "c"})).problem(500, "misconfigured");
}

#[test]
fn the_readmes_recipes_mint_sessions_the_worker_accepts() {
    let s = Stack::start();
    let python = format!(
        "{}\nimport os\nprint(mint_customer_session(os.environ['SECRET'], 'cust-py', email='py@example.com', name='Åsa Öberg'))\n",
        readme_block("<!-- mint-session: python -->")
    );
    let mut command = Command::new("python3");
    command.args(["-c", &python]).env("SECRET", SESSION_SECRET);
    let from_python = run(command);

    let javascript = format!(
        "{}\nconsole.log(mintCustomerSession(process.env.SECRET, 'cust-js', {{ ttlSeconds: 600, name: 'Åsa Öberg' }}));\n",
        readme_block("<!-- mint-session: javascript -->")
    );
    let mut command = Command::new("node");
    command
        .args(["--input-type=module", "-e", &javascript])
        .env("SECRET", SESSION_SECRET);
    let from_javascript = run(command);

    for (token, customer) in [(&from_python, "cust-py"), (&from_javascript, "cust-js")] {
        let r = with_session(&s, token, "/v1/portal/subscriptions");
        assert_eq!(r.status, 200, "{customer}: {}", r.text);
        let r = checkout_with(&s, token);
        assert_eq!(r.status, 201, "{customer}: {}", r.text);
        let sub = r.json();
        pay(&s, sub["orderId"].as_str().unwrap(), APPROVE);
        let auth = format!("Bearer {token}");
        let mut paid = Value::Null;
        eventually(20, "the checkout to be paid", || {
            paid = s
                .worker
                .get_with(
                    &format!("/v1/checkout/{}", sub["checkoutId"].as_str().unwrap()),
                    &[("Authorization", auth.as_str())],
                )
                .json();
            paid["status"] == "paid"
        });
        let card = with_session(
            &s,
            token,
            &format!("/v1/customers/{customer}/payment-method"),
        );
        assert_eq!(card.status, 200, "{}", card.text);
        assert_ledgers_agree(&s, customer);
    }
    let claims: Claims = session::verify(
        &SessionKeys {
            current: SessionKey::new(SESSION_SECRET),
            previous: None,
        },
        &from_python,
        now_s(),
        4 * 3600,
    )
    .unwrap();
    assert_eq!(claims.email.as_deref(), Some("py@example.com"));
}

#[test]
fn the_demo_route_mints_only_demo_references_and_only_when_on() {
    let s = Stack::start();
    let demo = "demo-0123456789abcdef0123456789abcdef";
    let r = s.worker.post(
        "/v1/demo/session",
        &json!({"customerRef": demo, "name": "Ada"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json()["clientSecret"].as_str().unwrap().to_owned();
    assert_eq!(
        with_session(&s, &token, "/v1/portal/subscriptions").status,
        200
    );
    // Never a real customer's reference.
    for customer in ["cust-1", "demo-1", "1"] {
        let r = s
            .worker
            .post("/v1/demo/session", &json!({"customerRef": customer}));
        let p = r.problem(400, "validation-error");
        assert_eq!(p["errors"][0]["field"], "customerRef");
    }

    let off = Stack::start_with(Options {
        vars: vec![("DEMO", "off".into())],
        ..Options::default()
    });
    off.worker
        .post("/v1/demo/session", &json!({"customerRef": demo}))
        .problem(404, "not-found");
}

/// Where there are no test clocks (`TEST_CLOCK=off`, as in production), a session that names
/// one is refused, even signed with the real key: the customer could never be put on a clock
/// the production cron does not bill.
#[test]
fn a_session_naming_a_test_clock_is_refused_where_there_are_none() {
    let s = Stack::start_with(Options {
        vars: vec![("TEST_CLOCK", "off".into())],
        ..Options::default()
    });
    let exp = now_s() + 600;
    let kid = recurring_core::session::key_id(SESSION_SECRET);
    let on_clock = sign(
        SESSION_SECRET,
        &json!({"c": "clk-1", "exp": exp, "kid": kid, "clk": "x"}),
    );
    let plain = sign(
        SESSION_SECRET,
        &json!({"c": "clk-1", "exp": exp, "kid": kid}),
    );
    let before = orders(&s);
    checkout_with(&s, &on_clock).problem(401, "unauthorized");
    with_session(&s, &on_clock, "/v1/portal/subscriptions").problem(401, "unauthorized");
    assert_eq!(orders(&s), before, "a refused session made an order");
    // The same session without the clock is a customer's like any other.
    assert_eq!(
        with_session(&s, &plain, "/v1/portal/subscriptions").status,
        200
    );
}
