//! Steps many tests share: checkouts, payments on the sandbox, charges, ticks, ledger reads.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{Headers, Reply};
use crate::stack::{MERCHANT_KEY, ORIGIN, Stack};

pub const APPROVE: &str = "4111111111111111";
pub const SOFT_DECLINE_LATER: &str = "4000000000009995";
pub const HARD_DECLINE_LATER: &str = "4000000000000119";
pub const DECLINE_NOW: &str = "4000000000000002";

pub const BEARER: &str = "Bearer e2e-merchant-key";

pub fn merchant() -> [(&'static str, &'static str); 1] {
    let _ = MERCHANT_KEY;
    [("Authorization", BEARER)]
}

/// `POST /v1/customer-sessions` as the merchant's backend, with any body.
pub fn mint_session(s: &Stack, body: &Value) -> Reply {
    s.worker
        .post_with("/v1/customer-sessions", body, &merchant())
}

/// A customer session for `customer` (minted once per stack, as the merchant's backend would,
/// with the customer's email and name), to send as `Authorization: Bearer <it>`.
pub fn session_for(s: &Stack, customer: &str) -> String {
    if let Some(token) = s.memo.lock().unwrap().sessions.get(customer) {
        return token.clone();
    }
    let r = mint_session(
        s,
        &json!({"customerRef": customer, "email": "ada@example.com", "name": "Ada Lovelace"}),
    );
    assert_eq!(r.status, 201, "session for {customer}: {}", r.text);
    let token = r.json()["clientSecret"].as_str().unwrap().to_owned();
    s.memo
        .lock()
        .unwrap()
        .sessions
        .insert(customer.to_owned(), token.clone());
    token
}

/// `Authorization: Bearer <session>` for a customer.
pub fn as_customer(s: &Stack, customer: &str) -> String {
    format!("Bearer {}", session_for(s, customer))
}

/// A GET as the customer (with their session).
pub fn customer_get(s: &Stack, customer: &str, path: &str) -> Reply {
    let auth = as_customer(s, customer);
    s.worker.get_with(path, &[("Authorization", auth.as_str())])
}

/// A POST as the customer (with their session).
pub fn customer_post(
    s: &Stack,
    customer: &str,
    path: &str,
    body: &Value,
    headers: Headers<'_>,
) -> Reply {
    let auth = as_customer(s, customer);
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    s.worker.post_with(path, body, &all)
}

/// `POST /v1/checkout` for a customer (their session) and plan, returning the reply.
pub fn start_checkout(s: &Stack, customer: &str, plan: &str, extra: Value) -> Reply {
    start_checkout_with(s, customer, plan, extra, &[])
}

pub fn start_checkout_with(
    s: &Stack,
    customer: &str,
    plan: &str,
    extra: Value,
    headers: Headers<'_>,
) -> Reply {
    let mut body = json!({
        "planId": plan,
        "returnUrl": format!("{ORIGIN}/done"),
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = customer_post(s, customer, "/v1/checkout", &body, headers);
    remember_checkout(s, customer, &r);
    r
}

/// Remembers whose checkout a reply created, so that `wait_checkout` can ask as that customer.
pub fn remember_checkout(s: &Stack, customer: &str, r: &Reply) {
    if r.status < 300
        && let Some(id) = serde_json::from_str::<Value>(&r.text)
            .ok()
            .and_then(|v| v["checkoutId"].as_str().map(str::to_owned))
    {
        s.memo
            .lock()
            .unwrap()
            .checkout_owners
            .insert(id, customer.to_owned());
    }
}

/// `GET /v1/checkout/:id` as the customer who started it.
pub fn get_checkout(s: &Stack, checkout_id: &str) -> Reply {
    let owner = s
        .memo
        .lock()
        .unwrap()
        .checkout_owners
        .get(checkout_id)
        .cloned()
        .unwrap_or_else(|| panic!("checkout {checkout_id} was not started through the helpers"));
    customer_get(s, &owner, &format!("/v1/checkout/{checkout_id}"))
}

/// The customer pays on the hosted page (through the sandbox's control API).
pub fn pay(s: &Stack, order_id: &str, card: &str) -> Value {
    let r = s.sandbox.post(
        &format!("/_sandbox/orders/{order_id}/pay"),
        &json!({"cardNumber": card, "expiryMonth": 12, "expiryYear": 2031, "cardholderName": "Ada Lovelace"}),
    );
    assert!(r.status < 300, "pay failed: {} {}", r.status, r.text);
    r.json()
}

/// Polls `GET /v1/checkout/:id` until it is not pending.
pub fn wait_checkout(s: &Stack, checkout_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get_checkout(s, checkout_id);
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        if v["status"] != "pending" || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

pub struct Subscribed {
    pub checkout_id: String,
    pub order_id: String,
    pub subscription_id: String,
}

/// A customer subscribes: checkout, pays with `card`, and the checkout is confirmed paid.
pub fn subscribe(s: &Stack, customer: &str, plan: &str, card: &str) -> Subscribed {
    subscribe_with(s, customer, plan, card, json!({}))
}

pub fn subscribe_with(
    s: &Stack,
    customer: &str,
    plan: &str,
    card: &str,
    extra: Value,
) -> Subscribed {
    let r = start_checkout(s, customer, plan, extra);
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let checkout_id = created["checkoutId"].as_str().unwrap().to_owned();
    let order_id = created["orderId"].as_str().unwrap().to_owned();
    pay(s, &order_id, card);
    let state = wait_checkout(s, &checkout_id);
    assert_eq!(state["status"], "paid", "{state}");
    Subscribed {
        checkout_id,
        order_id,
        subscription_id: state["subscriptionId"].as_str().unwrap().to_owned(),
    }
}

/// `GET /v1/customers/:ref/payment-method` as that customer.
pub fn payment_method(s: &Stack, customer: &str) -> Reply {
    customer_get(
        s,
        customer,
        &format!("/v1/customers/{customer}/payment-method"),
    )
}

pub fn charge(s: &Stack, key: &str, body: &Value) -> Reply {
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", key));
    s.worker.post_with("/v1/charges", body, &headers)
}

pub fn charge_body(customer: &str, amount: i64) -> Value {
    json!({"customerRef": customer, "amount": amount, "currency": "752", "description": "Top-up"})
}

/// Runs the scheduler as of `now` (RFC 3339) through the test clock.
pub fn tick(s: &Stack, now: &str) -> Value {
    let r = s
        .worker
        .post_with("/v1/test-clock/tick", &json!({"now": now}), &merchant());
    assert_eq!(r.status, 200, "tick at {now}: {}", r.text);
    r.json()
}

/// Runs the scheduler as of `now`, and again at the same moment until nothing it drove is left
/// in flight or held by another driver. On a slow machine a payment can still be settling when
/// a tick answers; its outcome (a decline, say) must be on record as of this moment before a
/// test moves the clock on, or dunning would count from a later one. Returns the first report.
pub fn tick_settled(s: &Stack, now: &str) -> Value {
    let first = tick(s, now);
    let mut last = first.clone();
    eventually(60, "the tick's charges to settle", || {
        if last["waiting"] == 0 && last["busy"] == 0 {
            return true;
        }
        last = tick(s, now);
        false
    });
    first
}

pub fn merchant_get(s: &Stack, path: &str) -> Value {
    let r = s.worker.get_with(path, &merchant());
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.json()
}

/// Every event of the feed, oldest first, read `page` at a time through its cursors.
pub fn event_feed(s: &Stack, page: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/events?limit={page}"),
            Some(c) => format!("/v1/events?limit={page}&startingAfter={c}"),
        };
        let reply = merchant_get(s, &path);
        all.extend(reply["data"].as_array().unwrap().iter().cloned());
        match reply["nextCursor"].as_str() {
            Some(c) if reply["hasMore"] == true => cursor = Some(c.to_owned()),
            _ => return all,
        }
    }
}

pub fn subscription(s: &Stack, id: &str) -> Value {
    merchant_get(s, &format!("/v1/subscriptions/{id}"))
}

pub fn charges_of(s: &Stack, customer: &str) -> Vec<Value> {
    merchant_get(s, &format!("/v1/customers/{customer}/charges?limit=100"))["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The sandbox's completed card payments on the orders of one customer's token(s).
pub fn completed_payments_for_token(ledger: &Value, token_id: &str) -> i64 {
    ledger["payments_per_token"][token_id]["completed"]
        .as_i64()
        .unwrap_or(0)
}

/// Every token id the sandbox issued.
pub fn token_ids(ledger: &Value) -> Vec<String> {
    ledger["tokens"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["tokenId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The token issued for a tokenizing order.
pub fn token_of_order(ledger: &Value, order_id: &str) -> String {
    ledger["tokens"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["orderId"] == order_id))
        .and_then(|t| t["tokenId"].as_str())
        .unwrap_or_else(|| panic!("no token for order {order_id}: {ledger}"))
        .to_owned()
}

/// Payments of any status in the sandbox on orders whose referenceId is `reference`.
pub fn payments_for_reference<'a>(ledger: &'a Value, reference: &str) -> Vec<&'a Value> {
    let orders: Vec<&str> = ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["referenceId"] == reference)
        .filter_map(|o| o["orderId"].as_str())
        .collect();
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| orders.contains(&p["orderId"].as_str().unwrap_or("")))
        .collect()
}

/// Completed payments in the sandbox on orders whose referenceId is `reference`.
pub fn completed_for_reference(ledger: &Value, reference: &str) -> usize {
    payments_for_reference(ledger, reference)
        .into_iter()
        .filter(|p| p["status"] == "PAYMENT_COMPLETED")
        .count()
}

pub fn set_faults(s: &Stack, rules: Value) {
    let r = s
        .sandbox
        .put("/_sandbox/faults", &json!({"seed": 7, "rules": rules}));
    assert!(r.status < 300, "{}", r.text);
}

/// Waits until every rule limited by `times` has met its calls: the calls are at the provider
/// (inside their latency, say), whatever the machine's speed.
pub fn wait_faults_used(s: &Stack, secs: u64) {
    eventually(secs, "the faulted calls to reach the provider", || {
        let rules = s.sandbox.get("/_sandbox/faults").json()["rules"].clone();
        rules
            .as_array()
            .is_some_and(|rules| rules.iter().all(|r| r["times"].as_u64().unwrap_or(0) == 0))
    });
}

pub fn clear_faults(s: &Stack) {
    let r = s.sandbox.send("DELETE", "/_sandbox/faults", "", &[]);
    assert!(r.status < 300, "{}", r.text);
}

/// Asserts that no issued token id appears in any of `texts` nor in the worker's log.
pub fn assert_no_token_leak(s: &Stack, texts: &[String]) {
    let ledger = s.ledger();
    let tokens = token_ids(&ledger);
    assert!(!tokens.is_empty(), "the run issued no token to look for");
    let log = s.worker_log();
    for token in &tokens {
        assert!(
            !log.contains(token.as_str()),
            "token {token} in the worker log"
        );
        for text in texts {
            assert!(
                !text.contains(token.as_str()),
                "token {token} in a response: {text}"
            );
        }
    }
}

/// Waits until `check` holds, re-evaluating it; fails with `what` after `secs`.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The worker's ledger (through its API) and the provider's agree for a customer: every
/// succeeded charge has exactly one completed payment of its amount at the provider on the order
/// it names, any other completed payment over the orders it ever used was voided or returned in
/// full (a second payment refunded automatically), and no other charge kept money.
pub fn assert_ledgers_agree(s: &Stack, customer: &str) {
    let ledger = s.ledger();
    let orders = ledger["orders"].as_array().cloned().unwrap_or_default();
    let returns = ledger["returns"].as_array().cloned().unwrap_or_default();
    let payments = ledger["payments"].as_array().cloned().unwrap_or_default();
    let amount_of = |p: &Value| {
        p["amount"]
            .as_i64()
            .or_else(|| p["amount"].as_str()?.parse().ok())
            .unwrap_or(0)
    };
    let completed_on = |order: &str| -> Vec<Value> {
        payments
            .iter()
            .filter(|p| p["status"] == "PAYMENT_COMPLETED" && p["orderId"] == order)
            .cloned()
            .collect()
    };
    // Money returned against an order: its completed return orders' payments.
    let returned = |order: &str| -> i64 {
        returns
            .iter()
            .filter(|r| r["purchaseOrderId"] == order)
            .filter_map(|r| r["orderId"].as_str())
            .flat_map(&completed_on)
            .map(|p| amount_of(&p).abs())
            .sum()
    };
    for charge in &charges_of(s, customer) {
        // The charge's own orders: referenceId is the charge id (or, for the hosted-page
        // payment, the provider order recorded on the charge).
        let mut ids: Vec<String> = orders
            .iter()
            .filter(|o| o["referenceId"] == charge["id"])
            .filter_map(|o| o["orderId"].as_str().map(str::to_owned))
            .collect();
        let named = charge["providerOrderId"].as_str().map(str::to_owned);
        if let Some(order) = &named
            && !ids.contains(order)
        {
            ids.push(order.clone());
        }
        let succeeded = charge["status"] == "succeeded";
        for id in &ids {
            let done = completed_on(id);
            if succeeded && named.as_deref() == Some(id.as_str()) {
                assert_eq!(
                    done.len(),
                    1,
                    "charge {} should have one payment on {id}: {done:?}",
                    charge["id"]
                );
                assert_eq!(
                    Some(amount_of(&done[0])),
                    charge["amount"].as_i64(),
                    "amount of {}",
                    charge["id"]
                );
            } else {
                // A voided payment moved no money: it went back whole the same day.
                let paid: i64 = done
                    .iter()
                    .filter(|p| p["voided"] != true)
                    .map(amount_of)
                    .sum();
                assert_eq!(
                    paid,
                    returned(id),
                    "charge {} ({}) kept money on order {id}: {done:?}",
                    charge["id"],
                    charge["status"]
                );
            }
        }
        if succeeded {
            assert!(
                named.is_some(),
                "succeeded charge {} names no order",
                charge["id"]
            );
        }
    }
}

/// RFC 3339 for `minutes` from now (wall time): a business time for ticks that must not reach
/// the end of a freshly started billing period.
pub fn minutes_from_now(minutes: i64) -> String {
    recurring_core::billing::time::format_rfc3339(wall_ms() + minutes * 60_000)
}

/// Wall time, ms since 1970.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// The code block that follows `marker` in the documentation (`docs/`), without the
/// indentation it has there (a block inside a list item is indented).
pub fn readme_block(marker: &str) -> String {
    let pages = [
        "integrate/sessions.md",
        "integrate/events.md",
        "integrate/checkout.md",
    ];
    let readme = pages
        .iter()
        .map(|page| std::fs::read_to_string(crate::stack::root().join("docs").join(page)).unwrap())
        .find(|text| text.contains(marker))
        .unwrap_or_else(|| panic!("{marker} is not in the documentation"));
    let after = readme.split_once(marker).unwrap().1;
    let fence_start = after.find("```").unwrap();
    let indent = after[..fence_start]
        .rsplit('\n')
        .next()
        .map_or(0, |line| line.len());
    let body_start = fence_start + after[fence_start..].find('\n').unwrap() + 1;
    let body_end = body_start + after[body_start..].find("```").unwrap();
    after[body_start..body_end]
        .lines()
        .map(|line| line.get(indent.min(line.len())..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs an interpreter and returns what it printed; fails the test with its errors otherwise.
pub fn run(mut command: std::process::Command) -> String {
    let out = command.output().expect("the interpreter runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// From now on `customer` acts with a session minted with `extra` members (a test clock, a
/// trial, a coupon) beside their email; the mint's reply is returned, whatever it was.
pub fn session_with(s: &Stack, customer: &str, extra: Value) -> Reply {
    let mut body = json!({"customerRef": customer, "email": "ada@example.com"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = mint_session(s, &body);
    if r.status == 201 {
        let token = r.json()["clientSecret"].as_str().unwrap().to_owned();
        s.memo
            .lock()
            .unwrap()
            .sessions
            .insert(customer.to_owned(), token);
    }
    r
}

/// From now on `customer` acts with a session on the named test clock `clock`: their
/// checkouts, subscriptions and charges run on it.
pub fn put_on_clock(s: &Stack, customer: &str, clock: &str) {
    let r = session_with(s, customer, json!({"testClock": clock}));
    assert_eq!(r.status, 201, "session on {clock}: {}", r.text);
    assert_eq!(r.json()["testClock"], clock);
}

/// Runs the scheduler on a named test clock as of `now`: only that clock's subscriptions.
pub fn tick_clock(s: &Stack, clock: &str, now: &str) -> Value {
    let r = s.worker.post_with(
        "/v1/test-clock/tick",
        &json!({"now": now, "clock": clock}),
        &merchant(),
    );
    assert_eq!(r.status, 200, "tick of {clock} at {now}: {}", r.text);
    r.json()
}

/// Moves the provider's clock (its settlement calendar) forward to `now`; the sandbox runs
/// every batch and settlement that came due. A move backwards is refused by the sandbox and
/// ignored here: the provider's calendar only ever goes forward.
pub fn provider_clock(s: &Stack, now: &str) -> Value {
    let r = s.sandbox.put("/_sandbox/clock", &json!({"now": now}));
    assert!(
        r.status == 200 || r.status == 409,
        "provider clock to {now}: {} {}",
        r.status,
        r.text
    );
    r.json()
}

/// Both calendars at `now`: the provider settles what is due, then the worker's scheduler
/// runs (and reads what the provider settled) until nothing it drove is in flight.
pub fn at(s: &Stack, now: &str) -> Value {
    provider_clock(s, now);
    tick_settled(s, now)
}

/// `POST /v1/charges/:id/refunds` with an Idempotency-Key.
pub fn refund(s: &Stack, charge_id: &str, key: &str, body: Value) -> Reply {
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", key));
    s.worker
        .post_with(&format!("/v1/charges/{charge_id}/refunds"), &body, &headers)
}

/// The provider's own payout with settlement reference `payout_id`.
pub fn provider_payout(s: &Stack, payout_id: &str) -> Value {
    s.sandbox
        .get("/_sandbox/payouts")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["settlementRef"] == payout_id)
        .cloned()
        .expect("the provider's payout")
}

/// The return orders the provider holds against a purchase order.
pub fn returns_of(ledger: &Value, purchase_order_id: &str) -> Vec<Value> {
    ledger["returns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["purchaseOrderId"] == purchase_order_id)
        .cloned()
        .collect()
}

/// The id of the charge a reply carries.
pub fn charge_id(r: &crate::http::Reply) -> String {
    r.json()["id"].as_str().unwrap().to_owned()
}
