//! `make bench` (storage): the bytes a renewal leaves in the ledger once retention has done its
//! work, measured, and what they mean for one D1 database.
//!
//! One local stack with the production retention (events and provider webhook records 30 days).
//! N customers (default 40) subscribe monthly; both calendars (the worker's test clock and the
//! provider's settlement clock) move through a year, renewal after renewal, with a tick between
//! renewals so the retention sweep runs as the cron would. Then the local D1 file is read table
//! by table (`scripts/table-bytes.py`, SQLite's dbstat): the money rows per renewal, the archive
//! index per renewal, and what the last 30 days keep in the ledger. The figures are the ledger's
//! own bytes, not an estimate.
//!
//! Usage: cargo run --release --example storage -- [customers] (default 40).

#[path = "../tests/e2e/flows.rs"]
#[allow(dead_code)]
mod flows;
#[path = "../tests/e2e/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/e2e/openapi.rs"]
#[allow(dead_code)]
mod openapi;
#[path = "../tests/e2e/receiver.rs"]
#[allow(dead_code)]
mod receiver;
#[path = "../tests/e2e/stack.rs"]
#[allow(dead_code)]
mod stack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use recurring_core::billing::time::{DAY_MS, format_rfc3339, parse_rfc3339};
use serde_json::Value;
use stack::{Options, Stack};

/// Money rows that grow with the renewals and are never deleted.
const MONEY: [&str; 9] = [
    "charges",
    "charge_attempts",
    "provider_orders",
    "refunds",
    "usage_records",
    "idempotency_keys",
    "payouts",
    "balance_transactions",
    "discounts_applied",
];
/// Rows of a customer and its subscription: they grow with the customers, not the renewals.
const PER_CUSTOMER: [&str; 5] = [
    "customers",
    "payment_methods",
    "checkouts",
    "subscriptions",
    "subscription_events",
];
/// Rows kept for their retention (30 days), then archived.
const RETAINED: [&str; 3] = ["events", "event_deliveries", "webhook_events"];
/// What stays of each archived record: where it went.
const INDEX: [&str; 2] = ["archived_events", "archives"];
/// The scheduler's reports: one a minute whatever the load, kept 7 days.
const TICKS: &str = "tick_runs";
const TICKS_KEPT: f64 = 7.0 * 1440.0;

/// One D1 database's size limit.
const D1_LIMIT_BYTES: f64 = 10e9;

fn main() {
    let customers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    // The merchant's endpoint takes every event: each has its delivery attempt, as in
    // production.
    let endpoint = receiver::Receiver::start();
    let s = Stack::start_with(Options {
        vars: vec![
            ("RETENTION_EVENTS_DAYS", "30".into()),
            ("RETENTION_WEBHOOKS_DAYS", "30".into()),
            ("RATE_LIMIT", "off".into()),
            ("MERCHANT_WEBHOOK_URL", endpoint.url.clone()),
        ],
        secrets: vec![("MERCHANT_WEBHOOK_SECRET", receiver::SECRET.into())],
        ..Options::default()
    });
    let start = "2027-01-05T06:00:00Z";
    flows::at(&s, start);
    let subs: Vec<String> = (0..customers)
        .map(|i| {
            flows::subscribe(&s, &format!("storage-{i}"), "basic-monthly", flows::APPROVE)
                .subscription_id
        })
        .collect();
    let months = 12;
    for month in 1..=months {
        let due = flows::subscription(&s, &subs[0])["currentPeriodEnd"]
            .as_str()
            .unwrap()
            .to_owned();
        let report = flows::at(&s, &due);
        assert_eq!(
            report["periodsClosed"].as_u64(),
            Some(customers as u64),
            "month {month}: {report}"
        );
        // Halfway to the next renewal: settlements read, and the retention sweep of a cron.
        let mid = format_rfc3339(parse_rfc3339(&due).unwrap() + 15 * DAY_MS);
        flows::at(&s, &mid);
        eprintln!("month {month}: {customers} renewals at {due}");
    }
    let renewals = (customers * months) as f64;
    let tables = table_bytes(&s.dir().join("state"));
    print_report(&tables, customers, renewals);
}

/// The ledger's tables, read from a copy of its SQLite file (with its write-ahead log).
fn table_bytes(state: &Path) -> BTreeMap<String, (f64, f64, f64)> {
    let dir = state.join("v3/d1/miniflare-D1DatabaseObject");
    let file = std::fs::read_dir(&dir)
        .expect("the local D1 directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.extension().is_some_and(|x| x == "sqlite")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("metadata")
        })
        .expect("the ledger's SQLite file");
    let copy = std::env::temp_dir().join(format!("storage-{}", std::process::id()));
    std::fs::create_dir_all(&copy).unwrap();
    let db = copy.join("ledger.sqlite");
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", file.display()));
        if from.exists() {
            std::fs::copy(&from, format!("{}{suffix}", db.display())).unwrap();
        }
    }
    let out = Command::new("python3")
        .arg(stack::root().join("scripts/table-bytes.py"))
        .arg(&db)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&copy);
    let report: Value = serde_json::from_slice(&out.stdout).expect("table-bytes answers JSON");
    report["tables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            let n = |k: &str| t[k].as_f64().unwrap_or(0.0);
            (name.clone(), (n("rows"), n("payload"), n("pages")))
        })
        .collect()
}

fn print_report(tables: &BTreeMap<String, (f64, f64, f64)>, customers: usize, renewals: f64) {
    println!(
        "\n{customers} monthly subscriptions, a year: {renewals} renewals; the ledger's tables after retention (events and webhook records: 30 days)\n"
    );
    println!(
        "{:<22} {:>14} {:>8} {:>12} {:>12}",
        "table", "kind", "rows", "payload B", "pages B"
    );
    // Pages are what a database's size counts: payload, headers and the free space of B-tree
    // pages. Small tables sit on a few pages whatever their rows; a large ledger's tables are
    // as full as these large ones, so the model scales payload by their fill.
    let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (name, (rows, payload, pages)) in tables {
        if *rows == 0.0 && *payload == 0.0 {
            continue;
        }
        let kind = if MONEY.contains(&name.as_str()) {
            "money"
        } else if PER_CUSTOMER.contains(&name.as_str()) {
            "per customer"
        } else if RETAINED.contains(&name.as_str()) {
            "retained"
        } else if INDEX.contains(&name.as_str()) {
            "archive index"
        } else if name == TICKS {
            "tick reports"
        } else {
            "schema"
        };
        let sum = sums.entry(kind).or_default();
        sum.0 += payload;
        sum.1 += pages;
        println!("{name:<22} {kind:>14} {rows:>8} {payload:>12} {pages:>12}");
    }
    let big = [
        "charges",
        "charge_attempts",
        "provider_orders",
        "archived_events",
    ];
    let (big_payload, big_pages) = big
        .iter()
        .filter_map(|t| tables.get(*t))
        .fold((0.0, 0.0), |(a, b), (_, p, g)| (a + p, b + g));
    let fill = big_payload / big_pages;
    let payload = |kind: &str| sums.get(kind).map_or(0.0, |s| s.0);
    let stored = |kind: &str| payload(kind) / fill;
    let per_renewal = stored("money") / renewals;
    let index_per_renewal = stored("archive index") / renewals;
    let per_customer = stored("per customer") / customers as f64;
    // The window holds the last 30 days: about one renewal of each monthly subscription.
    let window_per_renewal = stored("retained") / customers as f64;
    let tick_row = tables
        .get(TICKS)
        .map_or(0.0, |(rows, p, _)| p / rows.max(1.0))
        / fill;
    let ticks = tick_row * TICKS_KEPT;
    println!(
        "\nstored bytes (payload over the large tables' page fill, {:.0} %):\n\
         \x20 a renewal, for ever: {per_renewal:.0} (money rows) + {index_per_renewal:.0} (the archive's index of its events)\n\
         \x20 a renewal, while in the 30-day window: {window_per_renewal:.0} (its events, their deliveries, the provider's webhooks)\n\
         \x20 a customer with its subscription: {per_customer:.0}\n\
         \x20 the scheduler's reports, 7 days at one a minute: {:.1} MB",
        fill * 100.0,
        ticks / 1e6
    );
    println!("\ncapacity, monthly subscriptions (one D1 database holds 10 GB):");
    println!(
        "{:>12} {:>14} {:>12} {:>14} {:>16} {:>14}",
        "subs", "GB per year", "window GB", "customers GB", "years in one DB", "shards, 5 yrs"
    );
    for subs in [100_000.0_f64, 1_000_000.0, 10_000_000.0] {
        let yearly = subs * 12.0 * (per_renewal + index_per_renewal);
        let steady = subs * (window_per_renewal + per_customer) + ticks;
        let years = (D1_LIMIT_BYTES - steady).max(0.0) / yearly;
        // Five years of money rows and the steady part, each database kept under 80 % full.
        let shards = ((5.0 * yearly + steady) / (0.8 * D1_LIMIT_BYTES)).ceil();
        println!(
            "{:>12} {:>14.2} {:>12.2} {:>14.2} {:>16.1} {:>14}",
            subs,
            yearly / 1e9,
            subs * window_per_renewal / 1e9,
            subs * per_customer / 1e9,
            years,
            shards
        );
    }
}
