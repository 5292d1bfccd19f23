//! Retention: events and provider webhook records older than their retention leave the ledger
//! for the archive bucket (the local R2 of `wrangler dev`), in bounded batches of the cron, and
//! an archived event still reads the same by id; money rows never leave.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::flows::*;
use crate::stack::{Options, Stack};

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Ticks at `now` until a tick archives nothing more; the archived counts summed.
fn sweep(s: &Stack, now: &str) -> (u64, u64, u64) {
    let (mut events, mut webhooks, mut objects) = (0, 0, 0);
    for _ in 0..20 {
        let report = tick_settled(s, now);
        let archived = &report["archived"];
        let moved = archived["events"].as_u64().unwrap() + archived["webhooks"].as_u64().unwrap();
        events += archived["events"].as_u64().unwrap();
        webhooks += archived["webhooks"].as_u64().unwrap();
        objects += archived["objects"].as_u64().unwrap();
        if moved == 0 {
            return (events, webhooks, objects);
        }
    }
    panic!("the sweep never finished");
}

#[test]
fn old_events_leave_for_the_archive_and_still_read_the_same_by_id() {
    // Batches of ten: the month's events take several objects, and a tick more than one.
    let s = Stack::start_with(Options {
        vars: vec![
            ("RETENTION_EVENTS_DAYS", "30".into()),
            ("RETENTION_WEBHOOKS_DAYS", "30".into()),
            ("RETENTION_BATCH", "10".into()),
        ],
        ..Options::default()
    });
    tick(&s, "2027-01-10T10:00:00Z");
    let customers: Vec<String> = (0..5).map(|i| format!("ret-{i}")).collect();
    let subs: Vec<Subscribed> = customers
        .iter()
        .map(|c| subscribe(&s, c, "basic-monthly", APPROVE))
        .collect();
    // Every event of January is written and done (no webhook URL: the feed only).
    tick_settled(&s, "2027-01-10T10:05:00Z");
    let january = event_feed(&s, 50);
    assert!(january.len() >= 15, "{january:#?}");
    let before: BTreeMap<String, Value> = ids(&january)
        .into_iter()
        .map(|id| {
            let event = merchant_get(&s, &format!("/v1/events/{id}"));
            (id, event)
        })
        .collect();
    let january_report =
        "/v1/reports/summary?from=2027-01-01T00:00:00Z&to=2027-02-01T00:00:00Z&currency=752";
    let summary_before = merchant_get(&s, january_report);
    assert_eq!(summary_before["gross"], 5 * 9_900, "{summary_before}");

    // Nine days later nothing is old enough.
    assert_eq!(sweep(&s, "2027-01-19T10:00:00Z"), (0, 0, 0));
    assert_eq!(event_feed(&s, 50).len(), january.len());

    // Forty-one days later January's events are past their thirty days; the renewals due in
    // February are charged at this tick, and their events are new.
    let (archived, webhooks, objects) = sweep(&s, "2027-02-20T10:00:00Z");
    assert_eq!(archived as usize, january.len(), "every January event left");
    assert!(
        webhooks >= 5,
        "the provider's January webhooks left too ({webhooks})"
    );
    assert!(
        objects >= 3,
        "batches of ten make several objects ({objects})"
    );

    let after = event_feed(&s, 50);
    let after_ids = ids(&after);
    for id in before.keys() {
        assert!(!after_ids.contains(id), "{id} is still in the feed");
    }
    assert!(
        after.iter().any(|e| e["type"] == "subscription.renewed"),
        "February's events stay: {after:#?}"
    );

    // By id, each reads exactly as it did in the ledger, delivery included.
    for (id, was) in &before {
        let now = merchant_get(&s, &format!("/v1/events/{id}"));
        assert_eq!(&now, was, "{id}");
    }
    // A feed cursor naming an archived event keeps its place: the feed goes on after it.
    let last_archived = ids(&january).pop().unwrap();
    let page = merchant_get(
        &s,
        &format!("/v1/events?limit=100&startingAfter={last_archived}"),
    );
    assert_eq!(ids(page["data"].as_array().unwrap()), after_ids);
    // An id nobody wrote is still not found.
    let r = s
        .worker
        .get_with("/v1/events/evt_00000000000000000000", &merchant());
    assert_eq!(r.status, 404, "{}", r.text);

    // Money rows stay: every customer's checkout payment and renewal, every subscription, and
    // the reports made of them.
    for (customer, sub) in customers.iter().zip(&subs) {
        let charges = charges_of(&s, customer);
        let kinds: Vec<&str> = charges
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(charges.len(), 2, "{customer}: {kinds:?}");
        assert!(
            charges.iter().all(|c| c["status"] == "succeeded"),
            "{charges:#?}"
        );
        assert_eq!(subscription(&s, &sub.subscription_id)["status"], "active");
    }
    // January's money reads the same once its events are archived.
    let summary_after = merchant_get(&s, january_report);
    for money in ["gross", "refunded", "fees", "net"] {
        assert_eq!(summary_after[money], summary_before[money], "{money}");
    }

    // Nothing more to move: the same tick again archives nothing.
    assert_eq!(sweep(&s, "2027-02-20T10:00:00Z"), (0, 0, 0));
}
