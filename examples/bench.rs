//! `make bench`: renewals fanned out over the charges queue, against plain loops on the same
//! PSP sandbox, at 0, 50 and 150 ms of latency added to every provider call.
//!
//! One local stack (wrangler dev with its local D1, KV and queues, and one sandbox). For each
//! latency, N customers (default 1,000) subscribe to the weekly plan on their own day; the
//! test clock is moved to their renewal and one tick closes the periods and enqueues the
//! charges; the run ends when the sandbox has settled every renewal payment. Beside it, on the
//! same sandbox: a sequential create → pay → poll loop, and the same loop on six threads, with
//! no ledger at all. Costs per charge (provider calls, D1 round trips and statements, KV
//! operations) come from the worker's own meters: the tick's report and one log line per
//! consumer invocation, not from timers here.
//!
//! The figure that matters is the merchant's: from the tick until the worker's event feed (the
//! merchant's API) shows every renewal's `charge.succeeded`, polled as a merchant's backend
//! would; the provider's own last payment is shown beside it.
//!
//! Usage: cargo run --release --example bench -- [renewals] (default 1000). `BENCH_LATENCIES_MS`
//! (say `50`, or `0,150`) measures only those latencies, for a long run at one of them.
//! `BENCH_WEBHOOK_CONCURRENCY` (default 1: one at a time, as the provider's sandbox does by
//! default) sends the provider's webhooks several at once; `BENCH_WEBHOOK_DROP` (say `0.1`) loses
//! that share of the renewals' webhooks; `BENCH_OUTCOME_CHECK_SECONDS` sets the worker's
//! `CHARGE_OUTCOME_CHECK_SECONDS`; `BENCH_LEDGER_SHARDS` (default 1) spreads the ledger over that
//! many D1 databases (`LEDGER_SHARDS`), and the run shows each one's share of the statements.

#[path = "../tests/e2e/flows.rs"]
#[allow(dead_code)]
mod flows;
#[path = "../tests/e2e/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/e2e/openapi.rs"]
#[allow(dead_code)]
mod openapi;
#[path = "../tests/e2e/stack.rs"]
#[allow(dead_code)]
mod stack;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack::{API_KEY, API_SECRET, Options, Stack};

const LATENCIES_MS: [u64; 3] = [0, 50, 150];

fn latencies() -> Vec<u64> {
    match std::env::var("BENCH_LATENCIES_MS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|ms| {
                ms.trim()
                    .parse()
                    .expect("BENCH_LATENCIES_MS: milliseconds, comma-separated")
            })
            .collect(),
        _ => LATENCIES_MS.to_vec(),
    }
}
/// How the sandbox sends its webhooks during the renewals: how many at once, and the share lost.
fn webhook_setting() -> (usize, f64) {
    let concurrency = std::env::var("BENCH_WEBHOOK_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    let drop = std::env::var("BENCH_WEBHOOK_DROP")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    (concurrency, drop)
}

/// The ledger's D1 databases for the run (`LEDGER_SHARDS`).
fn ledger_shards() -> usize {
    std::env::var("BENCH_LEDGER_SHARDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// Adds a report's statements per shard (`d1QueriesByShard`) to `into`.
fn add_by_shard(into: &mut Vec<f64>, report: &Value) {
    let Some(counts) = report["d1QueriesByShard"].as_array() else {
        return;
    };
    if into.len() < counts.len() {
        into.resize(counts.len(), 0.0);
    }
    for (total, n) in into.iter_mut().zip(counts) {
        *total += n.as_f64().unwrap_or(0.0);
    }
}

/// Charges each plain loop makes per latency.
const LOOP_CHARGES: usize = 120;
const MERCHANT_ID: &str = "5a1e0f3c2b4d6e8f90";
const MIT_TERMINAL: &str = "3c9a7e5b1d0f8e6a42";

#[derive(Default, Clone, Copy)]
struct Costs {
    charges: f64,
    subrequests: f64,
    d1_calls: f64,
    d1_queries: f64,
    kv: f64,
    wall_ms: f64,
    invocations: f64,
    /// Looks at started payments (`CHARGE_OUTCOME_CHECK_SECONDS` after their batch): one whose
    /// webhook came reads nothing.
    checks: f64,
}

impl Costs {
    fn add_usage(&mut self, usage: &Value) {
        let n = |k: &str| usage[k].as_f64().unwrap_or(0.0);
        self.subrequests += n("subrequests");
        self.d1_calls += n("d1Calls");
        self.d1_queries += n("d1Queries");
        self.kv += n("kvReads") + n("kvWrites");
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let (webhook_concurrency, webhook_drop) = webhook_setting();
    let shards = ledger_shards();
    let s = Stack::start_with(Options {
        vars: vec![
            ("LEDGER_SHARDS", shards.to_string()),
            ("CHARGE_FANOUT", "on".into()),
            // The production default: the tick closes and enqueues 200 at a time, round after
            // round, so the consumers start on the first 200 while it closes the rest.
            ("TICK_MAX_CHARGES", "200".into()),
            ("RATE_LIMIT", "off".into()),
            // The production default: the tests' short timeout would turn the sandbox's
            // pauses (its ledger read below takes a second or more at 5,000 renewals) into
            // payments in doubt, which then rightly wait out their settle window.
            ("PSP_TIMEOUT_MS", "10000".into()),
        ]
        .into_iter()
        .chain(
            std::env::var("BENCH_OUTCOME_CHECK_SECONDS")
                .ok()
                .map(|v| ("CHARGE_OUTCOME_CHECK_SECONDS", v)),
        )
        .collect(),
        sandbox_args: vec![
            "--processing-ms".into(),
            "20".into(),
            "--webhook-concurrency".into(),
            webhook_concurrency.to_string(),
        ],
        ..Options::default()
    });
    println!(
        "machine: {} cores; {n} due monthly renewals per latency; plain loops: {LOOP_CHARGES} charges; \
         the provider's webhooks {} at a time, {:.0} % of the renewals' lost; the ledger in {shards} D1 database(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        webhook_concurrency,
        webhook_drop * 100.0
    );
    println!(
        "\n{:>8} {:>11} {:>8} {:>11} {:>9} {:>10} {:>11} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "latency",
        "merchant/s",
        "paid/s",
        "seq loop/s",
        "6-thr/s",
        "merch/seq",
        "merch/6thr",
        "paid/seq",
        "fetch/ch",
        "d1rt/ch",
        "d1st/ch",
        "kv/ch"
    );
    let mut feed_cursor: Option<String> = None;
    let mut log_seen = 0;
    // Each group subscribes (monthly) on its own day, three days after the previous one, so
    // that its renewals fall due together and alone a month later.
    let day = |group: usize| 1 + 3 * group;
    let latencies = latencies();
    let groups: Vec<Vec<String>> = (0..latencies.len())
        .map(|group| {
            flows::tick(&s, &format!("2027-01-{:02}T06:00:00Z", day(group)));
            subscribe_all(&s, group, n)
        })
        .collect();
    for ((group, latency), tokens) in latencies.iter().copied().enumerate().zip(groups) {
        let due = format!("2027-02-{:02}T06:00:00Z", day(group));
        // The subscriptions' webhooks are still on their way (the provider sends a URL's
        // webhooks one at a time): the renewals' own must not queue behind them.
        wait_webhooks_delivered(&s);
        feed_cursor = feed_end(&s, feed_cursor);
        set_conditions(&s, latency, webhook_drop);
        let window_start = s.worker_log().lines().count();
        let started = Instant::now();
        let started_unix_ms = flows::wall_ms();
        let report = flows::tick(&s, &due);
        assert_eq!(report["periodsClosed"].as_u64(), Some(n as u64), "{report}");
        // The merchant's view, polled from the tick on, beside the provider's.
        let (ledger, (seen, cursor)) = std::thread::scope(|scope| {
            let merchant = scope.spawn(|| wait_for_merchant(&s, feed_cursor.clone(), n, started));
            // Money moved: from the tick to the moment the provider made the last renewal
            // payment (its own timestamp; the sandbox completes a payment 20 ms after that).
            let ledger = wait_for_renewals(&s, &tokens, started);
            (ledger, merchant.join().expect("the merchant's poll"))
        });
        feed_cursor = cursor;
        let paid = Duration::from_millis(
            (last_payment_ms(&ledger, &tokens) - started_unix_ms).max(1) as u64,
        );
        let paid_rate = n as f64 / paid.as_secs_f64();
        // A renewal counts once the merchant can see it succeeded: its event in the feed.
        let merchant_rate = n as f64 / seen.as_secs_f64();
        set_conditions(&s, latency, 0.0);
        // Costs: the tick that closed and enqueued, and every consumer invocation since.
        // Each invocation logs its line once its batch is done: wait for all of them.
        let mut by_shard: Vec<f64> = Vec::new();
        let costs = loop {
            let mut costs = Costs::default();
            by_shard.clear();
            let log = s.worker_log();
            let lines: Vec<&str> = log.lines().collect();
            for line in &lines[log_seen.min(lines.len())..] {
                if let Ok(v) = serde_json::from_str::<Value>(line)
                    && v["msg"] == "charges consumed"
                {
                    costs.charges += v["chargesDriven"].as_f64().unwrap_or(0.0)
                        - v["dropped"].as_f64().unwrap_or(0.0);
                    costs.checks += v["checks"].as_f64().unwrap_or(0.0);
                    costs.add_usage(&v["usage"]);
                    add_by_shard(&mut by_shard, &v);
                    costs.wall_ms += v["wallMs"].as_f64().unwrap_or(0.0);
                    costs.invocations += 1.0;
                }
            }
            if costs.charges as usize >= n {
                log_seen = lines.len();
                break costs;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let webhooks = webhook_costs(&s, window_start, &renewal_orders(&ledger, &tokens), 3 * n);
        let sequential = plain_loop(&s, &tokens, 1);
        let threaded = plain_loop(&s, &tokens, 6);
        let per = |x: f64| x / costs.charges.max(1.0);
        println!(
            "{:>6}ms {:>11.1} {:>8.1} {:>11.1} {:>9.1} {:>9.2}x {:>10.2}x {:>7.2}x {:>9.2} {:>9.2} {:>9.2} {:>7.2}",
            latency,
            merchant_rate,
            paid_rate,
            sequential,
            threaded,
            merchant_rate / sequential,
            merchant_rate / threaded,
            paid_rate / sequential,
            per(costs.subrequests),
            per(costs.d1_calls),
            per(costs.d1_queries),
            per(costs.kv),
        );
        println!(
            "{:>8} {:.1} s from the tick until the merchant's feed showed every renewal succeeded; the provider's last payment at {:.1} s",
            "",
            seen.as_secs_f64(),
            paid.as_secs_f64(),
        );
        // A start costs two provider calls (the order, the payment): the calls beyond that are
        // the looks' status reads, or a start's own reconciliation after a provider fault.
        let beyond_starts = (costs.subrequests - 2.0 * costs.charges).max(0.0);
        println!(
            "{:>8} {} consumer invocations started {} payments and made {} looks; {} provider calls beyond the starts' two each (the looks' status reads)",
            "", costs.invocations, costs.charges, costs.checks, beyond_starts,
        );
        println!(
            "{:>8} the provider's webhooks: {:.2} a charge, recorded and confirmed in {:.2} D1 round trips ({:.2} statements) and {:.2} provider calls a charge",
            "",
            webhooks.invocations / n as f64,
            webhooks.d1_calls / n as f64,
            webhooks.d1_queries / n as f64,
            webhooks.subrequests / n as f64,
        );
        println!(
            "{:>8} a whole renewal (consumer and webhooks): {:.2} provider calls, {:.2} D1 round trips ({:.2} statements)",
            "",
            (costs.subrequests + webhooks.subrequests) / n as f64,
            (costs.d1_calls + webhooks.d1_calls) / n as f64,
            (costs.d1_queries + webhooks.d1_queries) / n as f64,
        );
        // The columns above are the consumers' own costs per charge; the tick that closed the
        // periods and enqueued the charges adds its share once per round.
        let mut tick_costs = Costs::default();
        tick_costs.add_usage(&report["usage"]);
        println!(
            "{:>8} the tick: {} rounds, {} charges enqueued, {} D1 round trips ({} statements): {:.3} D1 round trips per charge more",
            "",
            report["rounds"],
            report["chargesEnqueued"],
            tick_costs.d1_calls,
            tick_costs.d1_queries,
            per(tick_costs.d1_calls),
        );
        if shards > 1 {
            add_by_shard(&mut by_shard, &report);
            let total: f64 = by_shard.iter().sum();
            let shares: Vec<String> = by_shard
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    format!(
                        "DB{}: {n:.0} ({:.0} %)",
                        if k == 0 {
                            String::new()
                        } else {
                            format!("_{k}")
                        },
                        100.0 * n / total.max(1.0)
                    )
                })
                .collect();
            println!(
                "{:>8} D1 statements of the tick and the consumers by shard: {}",
                "",
                shares.join(", ")
            );
        }
    }
    // Cross-check with the provider: one completed renewal payment per subscription.
    let ledger = s.ledger();
    let renewals = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["method"] == "CTOKEN" && p["status"] == "PAYMENT_COMPLETED")
        .filter(|p| p["amount"] == 9900)
        .count();
    println!(
        "\nprovider ledger: {renewals} completed renewal payments for {} renewals (plus the loops' own)",
        n * latencies.len()
    );
}

fn wait_webhooks_delivered(s: &Stack) {
    let started = Instant::now();
    while s.sandbox.get("/_sandbox/webhooks").json()["queued"].as_u64() != Some(0) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "webhooks never drained"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The token payments the provider holds for these tokens: the renewals'.
fn renewal_payments<'a>(ledger: &'a Value, tokens: &[String]) -> Vec<&'a Value> {
    let tokens: std::collections::HashSet<&str> = tokens.iter().map(String::as_str).collect();
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["method"] == "CTOKEN")
        .filter(|p| p["tokenId"].as_str().is_some_and(|t| tokens.contains(t)))
        .collect()
}

/// When the provider made the last of the completed renewal payments (ms).
fn last_payment_ms(ledger: &Value, tokens: &[String]) -> i64 {
    renewal_payments(ledger, tokens)
        .into_iter()
        .filter(|p| p["status"] == "PAYMENT_COMPLETED")
        .filter_map(|p| p["createdAt"].as_str().and_then(parse_unix_ms))
        .max()
        .expect("completed renewal payments")
}

fn renewal_orders(ledger: &Value, tokens: &[String]) -> std::collections::HashSet<String> {
    renewal_payments(ledger, tokens)
        .into_iter()
        .filter_map(|p| p["orderId"].as_str().map(str::to_owned))
        .collect()
}

/// The worker's costs of the provider's webhooks for these orders logged since line `from`
/// (one `webhook confirmed` line each, with what recording and confirming it cost): waits for
/// `expected` of them, or 60 s, since they trail the payments they announce.
fn webhook_costs(
    s: &Stack,
    from: usize,
    orders: &std::collections::HashSet<String>,
    expected: usize,
) -> Costs {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut costs = Costs::default();
        for line in s.worker_log().lines().skip(from) {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v["msg"] == "webhook confirmed"
                && v["orderId"].as_str().is_some_and(|o| orders.contains(o))
            {
                costs.invocations += 1.0;
                costs.add_usage(&v);
            }
        }
        if costs.invocations as usize >= expected || Instant::now() > deadline {
            return costs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Where the feed ends (its last event id, or a sharded feed's cursor), paging on from `cursor`.
fn feed_end(s: &Stack, mut cursor: Option<String>) -> Option<String> {
    loop {
        let path = match &cursor {
            None => "/v1/events?limit=100".to_owned(),
            Some(c) => format!("/v1/events?limit=100&startingAfter={c}"),
        };
        let page = flows::merchant_get(s, &path);
        if let Some(last) = page["data"].as_array().and_then(|d| d.last()) {
            cursor = last["id"].as_str().map(str::to_owned);
        }
        // A sharded ledger's feed gives every page its place in each shard: read on from it.
        if let Some(next) = page["nextCursor"].as_str() {
            cursor = Some(next.to_owned());
        }
        if page["hasMore"] != true {
            return cursor;
        }
    }
}

/// Polls the event feed after `cursor`, as a merchant's backend catching up would, until it
/// shows `n` renewals' `charge.succeeded`; returns the time from `started` and the cursor then.
fn wait_for_merchant(
    s: &Stack,
    mut cursor: Option<String>,
    n: usize,
    started: Instant,
) -> (Duration, Option<String>) {
    let mut seen = 0;
    loop {
        let path = match &cursor {
            None => "/v1/events?type=charge.succeeded&limit=100".to_owned(),
            Some(c) => format!("/v1/events?type=charge.succeeded&limit=100&startingAfter={c}"),
        };
        // A merchant's poll that times out (the machine is flooded at 0 ms) is simply made
        // again.
        let page = match s.worker.try_get_with(&path, &flows::merchant()) {
            Ok(r) if r.status == 200 => r.json(),
            _ => {
                assert_worker_answers(s);
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        for event in page["data"].as_array().into_iter().flatten() {
            if event["data"]["kind"] == "renewal" {
                seen += 1;
            }
            cursor = event["id"].as_str().map(str::to_owned);
        }
        if let Some(next) = page["nextCursor"].as_str() {
            cursor = Some(next.to_owned());
        }
        if seen >= n {
            return (started.elapsed(), cursor);
        }
        if page["hasMore"] == true {
            continue;
        }
        assert_worker_answers(s);
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the merchant saw {seen} of {n} renewals"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A worker that died (locally: out of file descriptors, say) ends the run at once instead of
/// leaving it to wait out its deadlines. Looks at most every two seconds.
fn assert_worker_answers(s: &Stack) {
    use std::cell::Cell;
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    if LAST
        .get()
        .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
    {
        return;
    }
    LAST.set(Some(Instant::now()));
    let failure = match s.worker.try_get("/health") {
        // 503 is a health check that found something slow, not a dead worker.
        Ok(r) if r.status != 500 => return,
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => e.to_string(),
    };
    let log = s.worker_log();
    let lines: Vec<&str> = log.lines().collect();
    panic!(
        "the worker stopped answering ({failure}); the end of its log:\n{}",
        lines[lines.len().saturating_sub(20)..].join("\n")
    );
}

/// `2026-11-30T11:37:05.439Z` as ms since 1970 (the worker's log timestamps).
fn parse_unix_ms(t: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

/// Subscribes `n` customers of a group through the API (session, checkout, hosted payment);
/// returns their card tokens, as the sandbox knows them.
fn subscribe_all(s: &Stack, group: usize, n: usize) -> Vec<String> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let orders = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let customer = format!("bench-{group}-{i}");
                    let sub = flows::subscribe(s, &customer, "basic-monthly", flows::APPROVE);
                    orders.lock().unwrap().push(sub.order_id);
                }
            });
        }
    });
    eprintln!(
        "group {group}: {n} customers subscribed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ledger = s.ledger();
    let orders = orders.into_inner().unwrap();
    orders
        .iter()
        .map(|o| flows::token_of_order(&ledger, o))
        .collect()
}

/// The provider's latency on every API call, and the share of its webhooks lost.
fn set_conditions(s: &Stack, latency: u64, webhook_drop: f64) {
    if latency == 0 && webhook_drop == 0.0 {
        flows::clear_faults(s);
        return;
    }
    let mut rules: Vec<Value> = Vec::new();
    if latency > 0 {
        rules.extend(
            ["create_order", "initiate_payment", "order_status", "tokens"]
                .into_iter()
                .map(|e| json!({"endpoint": e, "latency_ms": latency})),
        );
    }
    if webhook_drop > 0.0 {
        rules.push(json!({"endpoint": "webhook", "drop_rate": webhook_drop}));
    }
    flows::set_faults(s, Value::Array(rules));
}

/// Waits until the sandbox settled a renewal payment on every token of the group, and returns
/// its ledger then. The ledger is read rarely: reading it costs the machine the worker runs on.
fn wait_for_renewals(s: &Stack, tokens: &[String], started: Instant) -> Value {
    loop {
        // The sandbox holds its lock while it writes the whole ledger: read it seldom enough
        // that the provider the worker sees is not the one this bench keeps busy.
        let read = Instant::now();
        let ledger = s.ledger();
        let read_took = read.elapsed();
        let done = tokens
            .iter()
            .filter(|t| ledger["payments_per_token"][t.as_str()]["completed"].as_u64() >= Some(1))
            .count();
        if done == tokens.len() {
            return ledger;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "{done} of {} renewals settled",
            tokens.len()
        );
        assert_worker_answers(s);
        // Sleep in proportion to what is left, so the last reading is close to the end.
        let left = (tokens.len() - done) as u64;
        let pause = Duration::from_millis((left * 5).clamp(50, 1000)).max(read_took * 9);
        std::thread::sleep(pause);
    }
}

/// Charges per second of a create → pay → poll loop on `threads` threads, straight against
/// the sandbox (no ledger).
fn plain_loop(s: &Stack, tokens: &[String], threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= LOOP_CHARGES {
                        break;
                    }
                    charge_once(s, &tokens[i % tokens.len()], i);
                }
            });
        }
    });
    LOOP_CHARGES as f64 / started.elapsed().as_secs_f64()
}

fn provider_headers() -> [(&'static str, &'static str); 3] {
    [
        ("API-KEY", API_KEY),
        ("API-SECRET", API_SECRET),
        ("MERCHANT-ID", MERCHANT_ID),
    ]
}

fn charge_once(s: &Stack, token: &str, i: usize) {
    let amount = json!({"regular": 3000, "total": 3000, "currency": "752"});
    let order = json!({
        "terminal$id": MIT_TERMINAL,
        "referenceId": format!("loop-{i}"),
        "orderLines": [{"id": "loop", "name": "Loop", "quantity": 1, "amount": amount}],
        "totalOrderAmount": amount,
    });
    let r = s.sandbox.post_with("/orders", &order, &provider_headers());
    assert!(r.status < 300, "{}", r.text);
    let order_id = r.json()["data"]["orderId"].as_str().unwrap().to_owned();
    let pay = json!({"orderId": order_id, "paymentMethod": "CTOKEN",
                     "paymentMethodParams": {"tokenId": token}});
    let r = s.sandbox.post_with("/payments", &pay, &provider_headers());
    assert!(r.status < 300, "{}", r.text);
    loop {
        let r = s
            .sandbox
            .get_with(&format!("/orders/{order_id}/status"), &provider_headers());
        let status = r.json()["data"]["orderStatus"].clone();
        if status == "PAYMENT_COMPLETED" || status == "PAYMENT_FAILED" {
            return;
        }
    }
}
