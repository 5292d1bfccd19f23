//! `make bench`: one scheduler tick over N due subscriptions against the PSP sandbox.
//!
//! Subscribes N customers through the real API (checkout, hosted payment, activation), moves
//! the test clock to their renewal, and runs ticks until every renewal settled. Prints, per
//! tick: charges settled, charges per second, platform calls (provider fetches, D1 round trips
//! and statements, KV operations) per charge, and wall time, against the per-invocation budget.
//! Figures come from the tick's own meter (`tick_runs.stats`), not from a timer in this program.
//!
//! Usage: cargo run --release --example tick_bench -- [subscriptions] (default 1000)

#[path = "../tests/e2e/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/e2e/stack.rs"]
#[allow(dead_code)]
mod stack;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use stack::{MERCHANT_KEY, ORIGIN, Options, Stack};

const BUDGET_SUBREQUESTS: u32 = 10_000;
const BUDGET_WALL_MS: u32 = 50_000;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let s = Stack::start_with(Options {
        vars: vec![
            ("TICK_MAX_CHARGES", (n + 100).to_string()),
            ("TICK_MAX_SUBREQUESTS", BUDGET_SUBREQUESTS.to_string()),
            ("TICK_MAX_WALL_MS", BUDGET_WALL_MS.to_string()),
        ],
        sandbox_args: vec!["--processing-ms".into(), "20".into()],
        ..Options::default()
    });
    let bearer = format!("Bearer {MERCHANT_KEY}");
    let auth = [("Authorization", bearer.as_str())];
    let tick = |now: &str| -> Value {
        let r = s
            .worker
            .post_with("/v1/test-clock/tick", &json!({ "now": now }), &auth);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    };
    tick("2027-01-01T00:00:00Z");

    eprintln!("subscribing {n} customers through checkout + hosted payment…");
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    // The merchant's backend mints the customer's session; the browser starts
                    // the checkout with it.
                    let session = s.worker.post_with(
                        "/v1/customer-sessions",
                        &json!({"customerRef": format!("bench-{i}")}),
                        &auth,
                    );
                    assert_eq!(session.status, 201, "{}", session.text);
                    let customer = format!(
                        "Bearer {}",
                        session.json()["clientSecret"].as_str().unwrap()
                    );
                    let customer = [("Authorization", customer.as_str())];
                    let body = json!({"planId": "weekly", "returnUrl": format!("{ORIGIN}/done")});
                    let r = s.worker.post_with("/v1/checkout", &body, &customer);
                    assert_eq!(r.status, 201, "{}", r.text);
                    let c = r.json();
                    let order = c["orderId"].as_str().unwrap();
                    let pay = s.sandbox.post(
                        &format!("/_sandbox/orders/{order}/pay"),
                        &json!({"cardNumber": "4111111111111111"}),
                    );
                    assert!(pay.status < 300, "{}", pay.text);
                    for _ in 0..100 {
                        let state = s
                            .worker
                            .get_with(
                                &format!("/v1/checkout/{}", c["checkoutId"].as_str().unwrap()),
                                &customer,
                            )
                            .json();
                        if state["status"] == "paid" {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            });
        }
    });
    eprintln!("subscribed in {:.1} s", started.elapsed().as_secs_f64());

    // Every subscription renews a week after 2027-01-01.
    let due = "2027-01-08T00:00:00Z";
    let mut settled_total = 0u64;
    println!(
        "\ntick over {n} due subscriptions (budget per invocation: {BUDGET_SUBREQUESTS} subrequests, {BUDGET_WALL_MS} ms wall, 6 connections)"
    );
    println!(
        "{:>4} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8}",
        "tick",
        "closed",
        "settled",
        "charge/s",
        "fetch/ch",
        "d1rt/ch",
        "d1st/ch",
        "kv/ch",
        "wall ms",
        "left"
    );
    for round in 1..=10 {
        let r = tick(due);
        let settled = r["succeeded"].as_u64().unwrap_or(0) + r["declined"].as_u64().unwrap_or(0);
        settled_total += settled;
        let u = &r["usage"];
        let per = |k: &str| u[k].as_f64().unwrap_or(0.0) / (settled.max(1) as f64);
        let wall = r["wallMs"].as_f64().unwrap_or(0.0);
        println!(
            "{round:>4} {:>8} {settled:>8} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>8.2} {wall:>9.0} {:>8}",
            r["periodsClosed"],
            settled as f64 / (wall / 1000.0).max(0.001),
            per("subrequests"),
            per("d1Calls"),
            per("d1Queries"),
            per("kvReads") + per("kvWrites"),
            r["workLeft"],
        );
        if settled_total as usize >= n && r["workLeft"] == false {
            break;
        }
    }
    // Cross-check with the provider: one completed renewal payment per subscription.
    let ledger = s.ledger();
    let ctoken_completed = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["method"] == "CTOKEN" && p["status"] == "PAYMENT_COMPLETED")
        .count();
    println!("\nprovider ledger: {ctoken_completed} completed token payments for {n} renewals");
    assert_eq!(ctoken_completed, n, "every renewal charged exactly once");
}
