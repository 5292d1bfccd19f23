//! A ledger in four shards (`LEDGER_SHARDS=4`): customers spread over the databases, each
//! customer's records in one, and the merchant sees one ledger: checkouts, renewals under
//! provider faults paid exactly once, refunds, the events feed, lists, payouts and reports.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{Options, Stack, WEBHOOK_SECRET};

const SHARDS: usize = 4;
const MONDAY_MORNING: &str = "2027-03-01T09:00:00Z";
const TUESDAY_EARLY: &str = "2027-03-02T01:00:00Z";
const PRICE: i64 = 9_900;

fn four_shards() -> Stack {
    Stack::start_with(Options {
        vars: vec![("LEDGER_SHARDS", SHARDS.to_string())],
        ..Options::default()
    })
}

/// The shard an id says it is in: `<type>_<k>_<hex>` in shard k, `<type>_<hex>` in shard 0.
fn shard_of(id: &str) -> usize {
    let parts: Vec<&str> = id.split('_').collect();
    match parts.as_slice() {
        [_, k, _] => k.parse().expect("a shard number"),
        [_, _] => 0,
        _ => panic!("not an id: {id}"),
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

/// Every page of a merchant list, `limit` at a time.
fn list_all(s: &Stack, path: &str, limit: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => merchant_get(s, &format!("{path}?limit={limit}")),
            Some(c) => merchant_get(s, &format!("{path}?limit={limit}&startingAfter={c}")),
        };
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["hasMore"] != true {
            return all;
        }
        cursor = Some(str_of(&page["nextCursor"]));
    }
}

/// The whole feed, and the cursor its last page ends with (every page of a sharded feed has
/// one).
fn feed_and_end(s: &Stack) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => merchant_get(s, "/v1/events?limit=50"),
            Some(c) => merchant_get(s, &format!("/v1/events?limit=50&startingAfter={c}")),
        };
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        let next = str_of(&page["nextCursor"]);
        assert!(next.starts_with("fc1."), "{page}");
        if page["hasMore"] != true {
            return (all, next);
        }
        cursor = Some(next);
    }
}

#[test]
fn four_shards_bill_renew_refund_and_list_as_one_ledger() {
    let s = four_shards();
    let health = s.worker.get("/health").json();
    assert_eq!(
        health["checks"]["d1"]["detail"], "schema 0014_shards.sql on 4 shards",
        "{health}"
    );
    at(&s, MONDAY_MORNING);

    // Twelve customers, spread over every shard; each customer's records in its own.
    let customers: Vec<String> = (0..12).map(|i| format!("spread-c-{i}")).collect();
    let subs: Vec<Subscribed> = customers
        .iter()
        .map(|c| subscribe(&s, c, "basic-monthly", APPROVE))
        .collect();
    let shard_of_customer: BTreeMap<&str, usize> = customers
        .iter()
        .zip(&subs)
        .map(|(c, sub)| (c.as_str(), shard_of(&sub.subscription_id)))
        .collect();
    let used: BTreeSet<usize> = shard_of_customer.values().copied().collect();
    assert_eq!(
        used.len(),
        SHARDS,
        "customers in every shard: {shard_of_customer:?}"
    );
    for (c, sub) in customers.iter().zip(&subs) {
        let shard = shard_of_customer[c.as_str()];
        assert_eq!(shard_of(&sub.checkout_id), shard, "{c}");
        let charges = charges_of(&s, c);
        assert_eq!(charges.len(), 1, "{c}: {charges:?}");
        assert_eq!(shard_of(charges[0]["id"].as_str().unwrap()), shard, "{c}");
        assert_eq!(payment_method(&s, c).status, 200, "{c}");
    }

    // Settled overnight: one payout holds every shard's payments, and agrees with the
    // provider's.
    at(&s, TUESDAY_EARLY);
    let settled = |c: &str| charges_of(&s, c)[0]["settlement"]["status"] == "settled";
    eventually(60, "every checkout payment to settle", || {
        tick_settled(&s, TUESDAY_EARLY);
        customers.iter().all(|c| settled(c))
    });
    let payout_id = str_of(&charges_of(&s, &customers[0])[0]["settlement"]["payoutId"]);
    let payout = merchant_get(&s, &format!("/v1/payouts/{payout_id}"));
    assert_eq!(payout["chargeCount"], 12, "{payout}");
    assert_eq!(payout["gross"], 12 * PRICE, "{payout}");
    assert_eq!(payout["reconciled"], true, "{payout}");
    assert_eq!(payout["transactions"].as_array().unwrap().len(), 12);
    let theirs = provider_payout(&s, &payout_id);
    assert_eq!(payout["amount"], theirs["amount"], "{payout} {theirs}");
    let listed = list_all(&s, "/v1/payouts", 1);
    assert_eq!(listed.len(), 1, "one payout, listed once: {listed:?}");

    // The renewals, under provider faults: errors and a timeout on starting payments, status
    // reads that lag. Every subscription is renewed, every card charged exactly once more.
    set_faults(
        &s,
        json!([
            {"endpoint": "initiate_payment", "fault": "error_after", "times": 2},
            {"endpoint": "initiate_payment", "fault": "timeout", "timeout_ms": 4000, "times": 1},
            {"endpoint": "order_status", "status_lag_ms": 1500}
        ]),
    );
    let due = "2027-04-01T10:00:00Z";
    provider_clock(&s, due);
    let report = tick(&s, due);
    let by_shard = report["d1QueriesByShard"]
        .as_array()
        .unwrap_or_else(|| panic!("statements per shard: {report}"))
        .clone();
    assert_eq!(by_shard.len(), SHARDS, "{report}");
    assert!(
        by_shard.iter().all(|n| n.as_u64().unwrap() > 0),
        "the tick worked in every shard: {by_shard:?}"
    );
    wait_faults_used(&s, 60);
    clear_faults(&s);
    eventually(120, "every subscription to be renewed", || {
        tick_settled(&s, due);
        subs.iter()
            .all(|sub| subscription(&s, &sub.subscription_id)["status"] == "active")
            && customers.iter().all(|c| charges_of(&s, c).len() == 2)
            && customers.iter().all(|c| {
                charges_of(&s, c)
                    .iter()
                    .all(|ch| ch["status"] == "succeeded")
            })
    });
    let ledger = s.ledger();
    for (c, sub) in customers.iter().zip(&subs) {
        let token = token_of_order(&ledger, &sub.order_id);
        assert_eq!(
            completed_payments_for_token(&ledger, &token),
            1,
            "{c}: one renewal with the stored card"
        );
        for ch in charges_of(&s, c) {
            assert_eq!(
                shard_of(ch["id"].as_str().unwrap()),
                shard_of_customer[c.as_str()]
            );
        }
        assert_ledgers_agree(&s, c);
    }

    // A refund of a renewal in a shard other than `DB`.
    let (refunded_customer, _) = shard_of_customer
        .iter()
        .find(|(_, shard)| **shard != 0)
        .unwrap();
    let renewal = charges_of(&s, refunded_customer)
        .into_iter()
        .find(|ch| ch["kind"] == "renewal" || ch["periodIndex"] == 2)
        .unwrap_or_else(|| charges_of(&s, refunded_customer)[0].clone());
    let renewal_id = str_of(&renewal["id"]);
    // Where the feed ends now: its last page says, for a backend polling for what comes next.
    let (before_refund, end) = feed_and_end(&s);
    let r = refund(&s, &renewal_id, "shard-refund-1", json!({"amount": PRICE}));
    assert!((200..=202).contains(&r.status), "{}", r.text);
    let refund_id = str_of(&r.json()["id"]);
    assert_eq!(shard_of(&refund_id), shard_of(&renewal_id));
    eventually(60, "the refund to succeed", || {
        tick_settled(&s, due);
        merchant_get(&s, &format!("/v1/refunds/{refund_id}"))["status"] == "succeeded"
    });
    let since = merchant_get(&s, &format!("/v1/events?limit=100&startingAfter={end}"));
    let new: Vec<&Value> = since["data"].as_array().unwrap().iter().collect();
    assert!(
        new.iter()
            .any(|e| e["type"] == "refund.succeeded" && e["data"]["id"] == refund_id.as_str()),
        "{since}"
    );
    let earlier: BTreeSet<String> = before_refund.iter().map(|e| str_of(&e["id"])).collect();
    assert!(
        new.iter().all(|e| !earlier.contains(&str_of(&e["id"]))),
        "nothing read before: {since}"
    );
    let refunds = merchant_get(&s, &format!("/v1/charges/{renewal_id}/refunds"));
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "{refunds}");
    // The same request again is its first answer, not a second refund.
    let again = refund(&s, &renewal_id, "shard-refund-1", json!({"amount": PRICE}));
    assert_eq!(str_of(&again.json()["id"]), refund_id, "{}", again.text);

    // The subscriptions, paged across shards: each once, newest first.
    let listed = list_all(&s, "/v1/subscriptions", 5);
    let ids: Vec<String> = listed.iter().map(|v| str_of(&v["id"])).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 12, "{ids:?}");
    assert_eq!(ids.len(), 12, "{ids:?}");
    let created: Vec<String> = listed.iter().map(|v| str_of(&v["createdAt"])).collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );

    // The events feed, paged seven at a time: every event once, each readable by id.
    let feed = event_feed(&s, 7);
    let whole = event_feed(&s, 100);
    let feed_ids: Vec<String> = feed.iter().map(|e| str_of(&e["id"])).collect();
    let distinct: BTreeSet<&String> = feed_ids.iter().collect();
    assert_eq!(distinct.len(), feed_ids.len(), "no event twice");
    let whole_ids: BTreeSet<String> = whole.iter().map(|e| str_of(&e["id"])).collect();
    assert_eq!(
        distinct.into_iter().cloned().collect::<BTreeSet<String>>(),
        whole_ids,
        "the same events whatever the page size"
    );
    for sub in &subs {
        for kind in ["subscription.created", "subscription.renewed"] {
            assert_eq!(
                feed.iter()
                    .filter(|e| e["type"] == kind && e["data"]["id"] == sub.subscription_id.as_str())
                    .count(),
                1,
                "{kind} of {}",
                sub.subscription_id
            );
        }
    }
    let succeeded = feed
        .iter()
        .filter(|e| e["type"] == "charge.succeeded")
        .count();
    assert_eq!(succeeded, 24, "twelve checkouts and twelve renewals");
    for e in feed.iter().step_by(5) {
        let id = str_of(&e["id"]);
        let read = merchant_get(&s, &format!("/v1/events/{id}"));
        assert_eq!(read["data"], e["data"], "{id}");
    }
    // An event id is still a cursor: exactly what the feed showed after it follows it, events of
    // the same instant in other shards included (a tick writes many).
    let middle = feed.len() / 2;
    let mark = &feed[middle];
    let after = {
        let mut all = Vec::new();
        let mut cursor = str_of(&mark["id"]);
        loop {
            let page = merchant_get(&s, &format!("/v1/events?limit=9&startingAfter={cursor}"));
            all.extend(page["data"].as_array().unwrap().iter().cloned());
            if page["hasMore"] != true {
                break all;
            }
            cursor = str_of(&page["nextCursor"]);
        }
    };
    let after_ids: Vec<String> = after.iter().map(|e| str_of(&e["id"])).collect();
    let expected: Vec<String> = feed[middle + 1..]
        .iter()
        .map(|e| str_of(&e["id"]))
        .collect();
    assert_eq!(after_ids, expected, "the feed after {}", mark["id"]);

    // The reports add the shards up.
    let summary = merchant_get(
        &s,
        "/v1/reports/summary?from=2027-03-01T00:00:00Z&to=2027-05-01T00:00:00Z&currency=752",
    );
    assert_eq!(summary["gross"], 24 * PRICE, "{summary}");
    assert_eq!(summary["charges"]["succeeded"], 24, "{summary}");
    assert_eq!(summary["refunded"], PRICE, "{summary}");
    assert_eq!(summary["subscriptions"]["active"], 12, "{summary}");
    let csv = s
        .worker
        .get_with(
            "/v1/reports/charges.csv?from=2027-03-01T00:00:00Z&to=2027-05-01T00:00:00Z",
            &merchant(),
        )
        .text;
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let charge_rows: BTreeSet<&str> = rows
        .iter()
        .filter(|l| l.starts_with("charge,"))
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    assert_eq!(charge_rows.len(), 24, "{csv}");
    assert_eq!(
        rows.iter().filter(|l| l.starts_with("charge,")).count(),
        24,
        "each charge once: {csv}"
    );
    let monitoring = merchant_get(&s, "/v1/monitoring");
    assert_eq!(monitoring["chargesNeedingAttention"], 0, "{monitoring}");
}

#[test]
fn a_coupons_limit_holds_across_shards() {
    let s = four_shards();
    at(&s, MONDAY_MORNING);
    let r = s.worker.post_with(
        "/v1/coupons",
        &json!({"id": "FIRST3", "percentOff": 50, "duration": "once", "maxRedemptions": 3}),
        &merchant(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // Eight customers, in several shards, each try to redeem it.
    let mut redeemed = Vec::new();
    let mut refused = 0;
    let mut shards = BTreeSet::new();
    for i in 0..8 {
        let customer = format!("coupon-{i}");
        let session = session_with(&s, &customer, json!({"coupon": "FIRST3"}));
        if session.status == 409 {
            session.problem(409, "coupon-not-redeemable");
            refused += 1;
            continue;
        }
        assert_eq!(session.status, 201, "{}", session.text);
        let r = start_checkout(&s, &customer, "basic-monthly", json!({}));
        match r.status {
            201 => {
                let checkout = str_of(&r.json()["checkoutId"]);
                shards.insert(shard_of(&checkout));
                redeemed.push(checkout);
            }
            409 => {
                r.problem(409, "coupon-not-redeemable");
                refused += 1;
            }
            other => panic!("{other}: {}", r.text),
        }
    }
    assert_eq!(redeemed.len(), 3, "{redeemed:?}");
    assert_eq!(refused, 5);
    assert!(shards.len() >= 2, "redeemed in several shards: {shards:?}");
    let coupon = merchant_get(&s, "/v1/coupons/FIRST3");
    assert_eq!(coupon["timesRedeemed"], 3, "{coupon}");
}

#[test]
fn a_tick_out_of_budget_leaves_the_shards_it_did_not_reach_to_the_next_one() {
    // A budget that one shard's visit uses up: each tick reaches its first shard only, and the
    // first shard moves on with the minute.
    let s = Stack::start_with(Options {
        vars: vec![
            ("LEDGER_SHARDS", SHARDS.to_string()),
            ("TICK_MAX_SUBREQUESTS", "10".into()),
        ],
        ..Options::default()
    });
    let mut reached = BTreeSet::new();
    for minute in 0..SHARDS {
        let report = tick(&s, &format!("2027-03-01T09:0{minute}:00Z"));
        assert_eq!(report["workLeft"], true, "{report}");
        let by_shard: Vec<u64> = report["d1QueriesByShard"]
            .as_array()
            .unwrap_or_else(|| panic!("{report}"))
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(by_shard.len(), SHARDS, "{report}");
        // `DB` always has the tick's own report; of the others, one at most was visited.
        let others: Vec<usize> = (1..SHARDS).filter(|k| by_shard[*k] > 0).collect();
        assert!(others.len() <= 1, "one shard a tick: {by_shard:?}");
        reached.insert(others.first().copied().unwrap_or(0));
    }
    assert_eq!(
        reached,
        (0..SHARDS).collect::<BTreeSet<usize>>(),
        "four ticks in four minutes reach every shard"
    );
}

/// A provider event that does not name what it pays for (no `referenceId`) finds its order by
/// looking in every shard: the checkout of a customer outside shard 0 is settled by that event
/// alone, with the provider's own webhooks lost. An order no shard has stays unknown.
#[test]
fn a_webhook_without_a_reference_finds_its_orders_shard() {
    let s = four_shards();
    set_faults(&s, json!([{"endpoint": "webhook", "drop_rate": 1.0}]));
    // A customer outside `DB`: the checkout's id says where its records are.
    let (customer, checkout) = (0..20)
        .find_map(|i| {
            let customer = format!("unnamed-{i}");
            let r = start_checkout(&s, &customer, "basic-monthly", json!({}));
            assert_eq!(r.status, 201, "{}", r.text);
            let created = r.json();
            (shard_of(&str_of(&created["checkoutId"])) != 0).then_some((customer, created))
        })
        .expect("one of twenty customers outside shard 0");
    let checkout_id = str_of(&checkout["checkoutId"]);
    let order_id = str_of(&checkout["orderId"]);
    pay(&s, &order_id, APPROVE);
    let post = |event_id: &str, order_id: &str| {
        let body = json!({
            "eventType": "order.paymentcompleted",
            "metadata": {"eventId": event_id, "created": wall_ms()},
            "data": {"orderId": order_id, "paymentStatus": "PAYMENT_COMPLETED"}
        })
        .to_string();
        let sig = recurring_core::psp::signature::sign(WEBHOOK_SECRET, body.as_bytes());
        let r = s.worker.post_raw(
            "/v1/webhooks/psp",
            &body,
            &[
                ("Content-Type", "application/json"),
                ("x-webhook-signature", sig.as_str()),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let outcome_of = |event_id: &str| {
        s.logged("webhook confirmed")
            .into_iter()
            .find(|line| line["eventId"] == event_id)
            .map(|line| str_of(&line["outcome"]))
    };
    post("e2e00000000000b001", &order_id);
    eventually(20, "the event's confirmation", || {
        outcome_of("e2e00000000000b001").is_some()
    });
    assert_eq!(outcome_of("e2e00000000000b001").as_deref(), Some("Settled"));
    assert_eq!(wait_checkout(&s, &checkout_id)["status"], "paid");
    let subscriptions = list_all(&s, "/v1/subscriptions", 10);
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert_eq!(subscriptions[0]["customerRef"], customer.as_str());
    assert_eq!(
        shard_of(&str_of(&subscriptions[0]["id"])),
        shard_of(&checkout_id)
    );
    // An order that no shard has is not ours, wherever it is looked for.
    post("e2e00000000000b002", "0123456789abcdef01");
    eventually(20, "the unknown order's confirmation", || {
        outcome_of("e2e00000000000b002").is_some()
    });
    assert_eq!(outcome_of("e2e00000000000b002").as_deref(), Some("Ignored"));
    assert_ledgers_agree(&s, &customer);
}
