//! The sandbox in-process on 127.0.0.1:0, driven over real HTTP, and a tiny webhook receiver.
#![allow(dead_code)] // Each test binary uses its own part of the harness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use psp_sandbox::Config;
use serde_json::{Value, json};
use sha2::Sha512;

pub const PAGE: &str = "7e1d5c3b9a0f2e4d61";
pub const MIT: &str = "3c9a7e5b1d0f8e6a42";
pub const MERCHANT: &str = "5a1e0f3c2b4d6e8f90";
pub const WEBHOOK_SECRET: &str = "sandbox-webhook-secret";
pub const APPROVE: &str = "4111111111111111";
/// Where the tests' sandbox clock starts: a Monday morning, far from the 23:00 cutoff, so that
/// no test meets a batch it did not ask for (the clock runs at real speed from there).
pub const MONDAY_MORNING: &str = "2026-03-02T09:00:00Z";

pub struct Sandbox {
    pub base: String,
    agent: ureq::Agent,
    pub runtime: tokio::runtime::Runtime,
}

pub fn start_with(config: Config) -> Sandbox {
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
    Sandbox {
        base,
        agent: agent(),
        runtime,
    }
}

/// A client of a sandbox that runs elsewhere (the binary, in its own process).
pub fn client(base: &str) -> Sandbox {
    Sandbox {
        base: base.to_owned(),
        agent: agent(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

pub fn start() -> Sandbox {
    start_with(Config {
        processing_ms: 20,
        clock: Some(at(MONDAY_MORNING)),
        ..Config::default()
    })
}

/// Epoch milliseconds of an RFC 3339 instant.
pub fn at(text: &str) -> i64 {
    psp_sandbox::clock::parse_rfc3339(text).unwrap_or_else(|| panic!("an instant: {text}"))
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
    pub text: String,
}

impl Reply {
    /// The business error code: the prefix of `message` before the colon.
    pub fn code(&self) -> String {
        let message = self.body["message"].as_str().unwrap_or("");
        message.split(':').next().unwrap_or("").to_owned()
    }

    pub fn is_business_error(&self, code: &str) -> bool {
        self.body["status"] == "ERROR" && self.body.get("data").is_none() && self.code() == code
    }
}

impl Sandbox {
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>, auth: bool) -> Reply {
        let raw = body.map_or(String::new(), Value::to_string);
        self.call_raw(method, path, raw, auth)
    }

    pub fn call_raw(&self, method: &str, path: &str, raw: String, auth: bool) -> Reply {
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
        self.run(req.body(raw).unwrap())
    }

    pub fn run(&self, req: ureq::http::Request<String>) -> Reply {
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

    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call(method, path, body, true)
    }

    pub fn control(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.call(method, path, Some(body), false)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, false)
    }

    pub fn form(&self, path: &str, form: &str) -> Reply {
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .unwrap();
        self.run(req)
    }

    pub fn create_order(&self, body: &Value) -> Reply {
        self.api("POST", "/orders", Some(body))
    }

    /// A tokenizing hosted-page order as the worker creates it; `extra` replaces top-level keys.
    pub fn page_order(&self, amount: i64, extra: Value) -> String {
        let mut body = json!({
            "terminal$id": PAGE, "referenceId": "co_test",
            "orderLines": [{"id": "SUB-001", "name": "Monthly Subscription", "quantity": 1,
                            "amount": {"regular": amount, "total": amount, "currency": "752"}}],
            "totalOrderAmount": {"regular": amount, "total": amount, "currency": "752"},
            "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD", "amount": amount},
                                 "online": {"enforceTokenization": true}}
        });
        merge(&mut body, extra);
        let r = self.create_order(&body);
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        r.body["data"]["orderId"].as_str().unwrap().to_owned()
    }

    pub fn mit_order_with(&self, amount: i64, reference: &str) -> String {
        let r = self.create_order(&json!({"terminal$id": MIT, "referenceId": reference,
            "orderLines": [{"id": "SUB-002", "name": "February", "quantity": 1,
                            "amount": {"total": amount, "currency": "752"}}]}));
        assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
        assert!(r.body["data"].get("paymentPageLink").is_none());
        assert!(r.body["data"].get("paymentId").is_none());
        r.body["data"]["orderId"].as_str().unwrap().to_owned()
    }

    pub fn mit_order(&self, amount: i64) -> String {
        self.mit_order_with(amount, "mit_test")
    }

    pub fn pay(&self, order: &str, card: &str) -> Reply {
        self.control(
            "POST",
            &format!("/_sandbox/orders/{order}/pay"),
            &json!({"cardNumber": card}),
        )
    }

    pub fn tokens(&self, order: &str) -> Value {
        self.api("GET", &format!("/orders/{order}/tokens"), None)
            .body["data"]
            .clone()
    }

    pub fn token_of(&self, order: &str) -> String {
        self.tokens(order)[0]["tokenId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A token from a hosted payment with `card`.
    pub fn token_for(&self, card: &str) -> String {
        let order = self.page_order(9900, json!({}));
        assert_eq!(
            self.pay(&order, card).body["paymentStatus"],
            "PAYMENT_COMPLETED"
        );
        self.token_of(&order)
    }

    pub fn charge(&self, order: &str, token: &str) -> Reply {
        self.api(
            "POST",
            "/payments",
            Some(&json!({"orderId": order, "paymentMethod": "CTOKEN", "paymentMethodParams": {"tokenId": token}})),
        )
    }

    pub fn status(&self, order: &str) -> Value {
        self.api("GET", &format!("/orders/{order}/status"), None)
            .body["data"]
            .clone()
    }

    pub fn ledger(&self) -> Value {
        let r = self.get("/_sandbox/ledger");
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub fn set_faults(&self, faults: Value) -> Reply {
        let r = self.control("PUT", "/_sandbox/faults", &faults);
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// The order's status once its last payment is final.
    pub fn wait_final(&self, order: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = self.status(order);
            let last = s["payments"].as_array().and_then(|p| p.last().cloned());
            if last.is_some_and(|p| step_of(&p["paymentStatus"]) == FINAL) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no final payment on {order} within {PATIENCE:?}: {s}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until no payment of `order` has a step left to run (the ledger's `stepsPending`):
    /// from then on nothing moves them any more, so what they show is what they keep. This is
    /// how a test knows that something did *not* happen, instead of sleeping and hoping.
    pub fn wait_steps_done(&self, order: &str) {
        eventually("the payments' processing to end", || {
            let ledger = self.get(&format!("/_sandbox/ledger?orderId={order}")).body;
            let payments = ledger["payments"].as_array().cloned().unwrap_or_default();
            !payments.is_empty() && payments.iter().all(|p| p["stepsPending"] == false)
        });
    }

    /// Reads the order's status until its first payment is at `step` or beyond. Answers the step
    /// seen, and an instant the payment reached it after: just before the last read that still
    /// showed an earlier step (or `since`, taken before the payment was started, if the first
    /// read already showed it).
    pub fn reach(&self, order: &str, step: usize, since: Instant) -> (usize, Instant) {
        let mut after = since;
        let mut seen = 0;
        eventually_since("the payment's step", since, || {
            let read = Instant::now();
            seen = step_of(&self.status(order)["payments"][0]["paymentStatus"]);
            if seen < step {
                after = read;
            }
            seen >= step
        });
        (seen, after)
    }

    /// The sandbox clock, in epoch milliseconds.
    pub fn now(&self) -> i64 {
        let r = self.get("/_sandbox/clock");
        assert_eq!(r.status, 200, "{}", r.text);
        at(r.body["now"].as_str().unwrap())
    }

    /// Moves the sandbox clock to `ms`; the answer (`{"now", "settlement"}`).
    pub fn set_clock(&self, ms: i64) -> Value {
        let now = psp_sandbox::rfc3339(ms);
        let r = self.control("PUT", "/_sandbox/clock", &json!({"now": now}));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Moves the sandbox clock forward by `ms`.
    pub fn advance(&self, ms: i64) -> Value {
        self.set_clock(self.now() + ms)
    }

    /// Moves the clock far enough that everything completed so far has settled: with the
    /// default schedule, at most 3 days and an hour (Thursday 23:00, into Friday's batch,
    /// settled on Monday).
    pub fn settle_all(&self) -> Value {
        self.advance(4 * DAY_MS)
    }

    /// `POST /_sandbox/settlements/run`: applies the due steps now; what it did.
    pub fn run_settlements(&self) -> Value {
        let r = self.call("POST", "/_sandbox/settlements/run", None, false);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// The transaction of an order's status (its first).
    pub fn transaction(&self, order: &str) -> Value {
        self.status(order)["transactions"][0].clone()
    }

    pub fn receiver(&self, fail_per_event: usize) -> Receiver {
        receiver(&self.runtime, fail_per_event)
    }
}

pub fn merge(into: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), extra) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

/// How long a test waits for something that takes milliseconds on an idle machine: long enough
/// that only a sandbox that is wrong (or stuck) runs out of it on a slow, busy one.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_since(what, Instant::now(), check);
}

/// As [`eventually`], for something meant to take `extra` first (a slow payment): the patience
/// starts once `extra` has passed.
pub fn eventually_after(what: &str, extra: Duration, check: impl FnMut() -> bool) {
    eventually_since(what, Instant::now() + extra, check);
}

fn eventually_since(what: &str, since: Instant, mut check: impl FnMut() -> bool) {
    let deadline = since + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({PATIENCE:?})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The steps of a payment, in the order the sandbox moves it (a third of its processing time
/// each); any final status counts as the last.
pub const STEPS: [&str; 3] = [
    "PAYMENT_INITIATED",
    "PAYMENT_PROCESSING",
    "PAYMENT_PROCESSED",
];
pub const FINAL: usize = STEPS.len();

/// The index of a `paymentStatus` in [`STEPS`], [`FINAL`] for a final one.
pub fn step_of(status: &Value) -> usize {
    let status = status
        .as_str()
        .unwrap_or_else(|| panic!("a paymentStatus: {status}"));
    match STEPS.iter().position(|s| *s == status) {
        Some(i) => i,
        None if ["PAYMENT_COMPLETED", "PAYMENT_FAILED", "PAYMENT_CANCELLED"].contains(&status) => {
            FINAL
        }
        None => panic!("unknown paymentStatus {status}"),
    }
}

/// How many tries [`conclusive`] makes, doubling the allowance each time.
const TRIES: u32 = 5;

/// For a check whose premise is about time ("the cancel reached the payment before its delay
/// could have passed"): runs `attempt` with an allowance in milliseconds (a delay, a lag) that
/// doubles on each try, until an attempt is conclusive (`Some`). An attempt answers `None` only
/// when it measured that the machine was too slow for its premise to hold (the calls took longer
/// than the allowance); everything it could decide, it asserts. A sandbox that is wrong fails
/// inside an attempt; a slow machine costs a try.
pub fn conclusive<T>(what: &str, first_ms: u64, mut attempt: impl FnMut(u64) -> Option<T>) -> T {
    let mut allowance = first_ms;
    for _ in 0..TRIES {
        if let Some(done) = attempt(allowance) {
            return done;
        }
        eprintln!("{what}: the machine was too slow for this try to prove anything; again");
        allowance *= 2;
    }
    panic!(
        "{what}: no conclusive try in {TRIES}, up to {} ms",
        allowance / 2
    );
}

/// Whether less than `ms` milliseconds passed since `since`.
pub fn within(since: Instant, ms: u64) -> bool {
    since.elapsed() < Duration::from_millis(ms)
}

/// One delivery a receiver saw.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub raw: String,
    pub signature: String,
    pub body: Value,
}

impl Delivery {
    pub fn event_type(&self) -> &str {
        self.body["eventType"].as_str().unwrap_or("")
    }
    pub fn event_id(&self) -> &str {
        self.body["metadata"]["eventId"].as_str().unwrap_or("")
    }
    pub fn retry_attempt(&self) -> i64 {
        self.body["metadata"]["retryAttempt"].as_i64().unwrap()
    }
}

pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    pub fn of_order(&self, order: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.body["data"]["orderId"] == order)
            .collect()
    }

    pub fn types_of(&self, order: &str) -> Vec<String> {
        self.of_order(order)
            .iter()
            .map(|d| d.event_type().to_owned())
            .collect()
    }
}

/// A tiny webhook receiver: records every delivery, and answers 500 to the first
/// `fail_per_event` deliveries of each eventId (then 200).
pub fn receiver(runtime: &tokio::runtime::Runtime, fail_per_event: usize) -> Receiver {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, raw: String| {
            let (store, attempts) = (store.clone(), attempts.clone());
            async move {
                let signature = headers
                    .get("x-webhook-signature")
                    .map_or("", |v| v.to_str().unwrap())
                    .to_owned();
                let body: Value = serde_json::from_str(&raw).unwrap();
                let id = body["metadata"]["eventId"].as_str().unwrap().to_owned();
                store.lock().unwrap().push(Delivery {
                    at: Instant::now(),
                    raw,
                    signature,
                    body,
                });
                let mut attempts = attempts.lock().unwrap();
                let n = attempts.entry(id).or_default();
                *n += 1;
                if *n <= fail_per_event {
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
    Receiver { url, seen }
}

/// The documented algorithm, independently of the sandbox's code: standard base64 (padded) of
/// HMAC-SHA512(secret, raw body), compared in constant time.
pub fn verify(secret: &str, raw: &str, signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(raw.as_bytes());
    mac.verify_slice(&given).is_ok()
}
