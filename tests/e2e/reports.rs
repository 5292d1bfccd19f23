//! The merchant's reports over a simulated year, against an independent computation: the
//! provider's own ledger (payments, voids, returns, fees and payouts) and what the scenario
//! did. The CSV export is read back with a CSV parser and must add up to the summary.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{Options, Stack};

const PRICE: i64 = 9_900;
const FROM: &str = "2027-01-01T00:00:00Z";
const TO: &str = "2028-01-01T00:00:00Z";

fn set_behaviour(s: &Stack, order_id: &str, behaviour: Value) {
    let token = token_of_order(&s.ledger(), order_id);
    let r = s
        .sandbox
        .put(&format!("/_sandbox/tokens/{token}/behaviour"), &behaviour);
    assert!(r.status < 300, "{}", r.text);
}

fn in_year(instant: &Value) -> bool {
    instant
        .as_str()
        .is_some_and(|t| (FROM..TO).contains(&t) && t.starts_with("2027"))
}

/// Both clocks at `now` unless they are already past it (a dunning retry moved them on).
fn forward(s: &Stack, clock: &mut String, now: &str) {
    if now > clock.as_str() {
        at(s, now);
        *clock = now.to_owned();
    }
}

/// Runs each customer's open dunning retries that fall before `until`.
fn run_retries(s: &Stack, clock: &mut String, customers: &[&str], until: &str) {
    loop {
        let next: Option<String> = customers
            .iter()
            .flat_map(|c| charges_of(s, c))
            .filter_map(|c| c["nextRetryAt"].as_str().map(str::to_owned))
            .filter(|t| t.as_str() < until)
            .min();
        match next {
            Some(t) => forward(s, clock, &t),
            None => return,
        }
    }
}

#[test]
fn a_years_reports_add_up_to_the_providers_ledger_and_the_export_to_the_summary() {
    let s = Stack::start();
    let mut clock = "2027-01-04T09:00:00Z".to_owned();
    at(&s, &clock);
    let good = subscribe(&s, "y-good", "basic-monthly", APPROVE);
    let soft = subscribe(&s, "y-soft", "basic-monthly", APPROVE);
    let hard = subscribe(&s, "y-hard", "basic-monthly", APPROVE);
    let customers = ["y-good", "y-soft", "y-hard"];
    let mut voided = 0;
    let mut returned = 0;

    for month in 2..=12 {
        let renewal = format!("2027-{month:02}-04T09:00:00Z");
        match month {
            // March: one renewal declines softly, dunning recovers it.
            3 => set_behaviour(
                &s,
                &soft.order_id,
                json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS", "times": 1}),
            ),
            // June: a card declines for good; the subscription goes unpaid.
            6 => set_behaviour(
                &s,
                &hard.order_id,
                json!({"outcome": "decline", "failureReason": "DENIED_DO_NOT_TRY_AGAIN"}),
            ),
            _ => {}
        }
        forward(&s, &mut clock, &renewal);
        match month {
            // February: an API charge refunded whole the same day (a void).
            2 => {
                let c = charge(&s, "y-void", &charge_body("y-good", 5_000));
                let r = refund(&s, &charge_id(&c), "y-void-r", json!({}));
                assert_eq!(r.json()["method"], "void", "{}", r.text);
                voided += 5_000;
            }
            // April: an API charge refunded in part, returned once it settles.
            4 => {
                let c = charge(&s, "y-part", &charge_body("y-good", 20_000));
                let r = refund(&s, &charge_id(&c), "y-part-r", json!({"amount": 7_000}));
                assert_eq!(r.status, 202, "{}", r.text);
                returned += 7_000;
            }
            _ => {}
        }
        // The next days: dunning retries, the provider settles and pays out, the worker
        // follows.
        forward(&s, &mut clock, &format!("2027-{month:02}-05T01:00:00Z"));
        run_retries(
            &s,
            &mut clock,
            &customers,
            &format!("2027-{month:02}-20T00:00:00Z"),
        );
        forward(&s, &mut clock, &format!("2027-{month:02}-21T01:00:00Z"));
    }
    // Past every settlement of the year (January's renewals are outside the range).
    forward(&s, &mut clock, "2028-01-04T09:00:00Z");
    forward(&s, &mut clock, "2028-01-11T01:00:00Z");
    let good_sub = subscription(&s, &good.subscription_id);
    assert_eq!(good_sub["status"], "active");
    assert_eq!(subscription(&s, &hard.subscription_id)["status"], "unpaid");

    // The provider's side, computed from its ledger alone.
    let ledger = s.ledger();
    let purchases: Vec<&Value> = ledger["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["orderId"].as_str())
        .flat_map(|order| {
            ledger["payments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(move |p| p["orderId"] == order && p["status"] == "PAYMENT_COMPLETED")
        })
        .filter(|p| in_year(&p["completedAt"]))
        .collect();
    let gross: i64 = purchases
        .iter()
        .map(|p| p["amount"].as_i64().unwrap())
        .sum();
    let voided_at_provider: i64 = purchases
        .iter()
        .filter(|p| p["voided"] == true)
        .map(|p| p["amount"].as_i64().unwrap())
        .sum();
    let fees: i64 = purchases
        .iter()
        .filter(|p| p["voided"] != true)
        .map(|p| {
            p["settlement"]["fee"]
                .as_i64()
                .unwrap_or_else(|| panic!("unsettled: {p}"))
        })
        .sum();
    let return_orders: Vec<&str> = ledger["returns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["orderId"].as_str())
        .collect();
    let returned_at_provider: i64 = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["status"] == "PAYMENT_COMPLETED"
                && return_orders.contains(&p["orderId"].as_str().unwrap_or_default())
                && in_year(&p["completedAt"])
        })
        .map(|p| p["amount"].as_i64().unwrap().abs())
        .sum();
    assert_eq!(
        (voided_at_provider, returned_at_provider),
        (voided, returned)
    );
    let payouts = s.sandbox.get("/_sandbox/payouts").json();
    let paid_out: i64 = payouts
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["settlementDate"].as_str().unwrap().starts_with("2027"))
        .map(|p| p["amount"].as_i64().unwrap())
        .sum();

    let summary = merchant_get(
        &s,
        &format!("/v1/reports/summary?from={FROM}&to={TO}&currency=752"),
    );
    // Three checkouts, 11 renewals of two customers, 4 of the one declined in June, two API
    // charges.
    let succeeded = 3 + 11 + 11 + 4 + 2;
    assert_eq!(purchases.len(), succeeded, "the scenario itself");
    assert_eq!(summary["gross"], gross, "{summary}");
    assert_eq!(summary["refunded"], voided + returned, "{summary}");
    assert_eq!(summary["fees"], fees, "{summary}");
    assert_eq!(summary["net"], gross - voided - returned - fees);
    assert_eq!(summary["paidOut"], paid_out, "{summary}");
    assert_eq!(
        summary["charges"],
        json!({"succeeded": succeeded, "failed": 1, "settled": succeeded})
    );
    assert_eq!(
        summary["failuresByReason"],
        json!([{"reason": "DENIED_DO_NOT_TRY_AGAIN", "count": 1, "amount": PRICE}])
    );
    assert_eq!(
        summary["refunds"],
        json!({"count": 2, "voided": 1, "voidedAmount": voided, "returned": 1, "returnedAmount": returned})
    );
    assert_eq!(
        summary["dunning"],
        json!({"recovered": 1, "recoveredAmount": PRICE})
    );
    assert_eq!(summary["subscriptions"], json!({"active": 2, "unpaid": 1}));
    assert_eq!(summary["mrr"], 2 * PRICE);

    // MRR month by month: three subscribers until June's decline, then two.
    let mrr = merchant_get(&s, "/v1/reports/mrr?months=12&currency=752");
    let by_month: BTreeMap<String, i64> = mrr["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["month"].as_str().unwrap().to_owned(),
                p["mrr"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_month.len(), 12, "{mrr}");
    assert_eq!(by_month["2027-05"], 3 * PRICE, "{mrr}");
    assert_eq!(by_month["2027-06"], 2 * PRICE, "{mrr}");
    assert_eq!(by_month["2027-12"], 2 * PRICE, "{mrr}");

    // The export, read back with a CSV parser, adds up to the summary.
    let r = s.worker.get_with(
        &format!("/v1/reports/charges.csv?from={FROM}&to={TO}"),
        &merchant(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (kind, status, amount, fee, net) = (
        column("type"),
        column("status"),
        column("amount"),
        column("fee"),
        column("net"),
    );
    let mut sums: BTreeMap<(String, String), (usize, i64, i64, i64)> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("an RFC 4180 record");
        assert_eq!(record.len(), header.len());
        let number = |i: usize| record[i].parse::<i64>().unwrap_or(0);
        let entry = sums
            .entry((record[kind].to_owned(), record[status].to_owned()))
            .or_default();
        entry.0 += 1;
        entry.1 += number(amount);
        entry.2 += number(fee);
        entry.3 += number(net);
    }
    let charges = sums[&("charge".into(), "succeeded".into())];
    let refunds = sums[&("refund".into(), "succeeded".into())];
    assert_eq!(
        charges.0 as i64,
        summary["charges"]["succeeded"].as_i64().unwrap()
    );
    assert_eq!(charges.1, gross);
    assert_eq!(charges.2, fees);
    assert_eq!(sums[&("charge".into(), "failed".into())].0, 1);
    assert_eq!(refunds.0, 2);
    assert_eq!(refunds.1, voided + returned);
    assert_eq!(
        charges.3 + refunds.3,
        summary["net"].as_i64().unwrap(),
        "{sums:?}"
    );
    assert_ledgers_agree(&s, "y-good");
}

/// 10,000 succeeded charges in one range (seeded straight into the ledger: the API would take
/// too long to make them): the export streams every one, page after page inside D1's limits,
/// and adds up to the summary.
#[test]
fn the_export_streams_ten_thousand_charges_and_adds_up() {
    // One second apart from 2027-01-01T00:00:00Z; amounts 1,001 to 11,000.
    let start = 1_798_761_600_000i64;
    let seed = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO charges (id, charge_key, customer_ref, kind, amount, currency, description,
           status, created_at, updated_at, settled_at, settlement_status, fee, net)
         SELECT printf('ch_seed%05d', i), printf('seed:%d', i), 'seeded', 'api', 1000 + i, '752',
           'Seeded', 'succeeded', {start} + i * 1000, {start} + i * 1000, {start} + i * 1000,
           'settled', 10, 990 + i
         FROM n;"
    );
    let s = Stack::start_with(Options {
        seed_sql: Some(seed),
        ..Options::default()
    });
    let range = "from=2027-01-01T00:00:00Z&to=2027-02-01T00:00:00Z";
    let r = s
        .worker
        .get_with(&format!("/v1/reports/charges.csv?{range}"), &merchant());
    assert_eq!(r.status, 200, "{}", r.text);
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let mut rows = 0;
    let mut amounts = 0i64;
    let mut fees = 0i64;
    let mut last = String::new();
    for record in reader.records() {
        let record = record.expect("an RFC 4180 record");
        rows += 1;
        amounts += record[7].parse::<i64>().unwrap();
        fees += record[13].parse::<i64>().unwrap();
        // In the order they succeeded, across page boundaries.
        assert!(record[1] > *last, "{} after {last}", &record[1]);
        last = record[1].to_owned();
    }
    assert_eq!(rows, 10_000);
    assert_eq!(amounts, 10_000 * 1_000 + 10_000 * 10_001 / 2);
    assert_eq!(fees, 10 * 10_000);
    let summary = merchant_get(&s, &format!("/v1/reports/summary?{range}&currency=752"));
    assert_eq!(summary["gross"], amounts, "{summary}");
    assert_eq!(summary["fees"], fees);
    assert_eq!(summary["charges"]["succeeded"], 10_000);
}
