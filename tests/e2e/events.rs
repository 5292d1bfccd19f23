//! Events for the merchant: written with the change they describe, in the feed oldest first,
//! delivered signed (Standard Webhooks) at least once however the merchant's endpoint behaves.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::*;
use crate::receiver::{self, Mode, Receiver, Refused};
use crate::stack::{Options, Stack};

fn events_stack(receiver: &Receiver, extra: Vec<(&'static str, String)>) -> Stack {
    let mut vars = vec![
        ("MERCHANT_WEBHOOK_URL", receiver.url.clone()),
        ("EVENT_RETRY_SCHEDULE_SECONDS", "1,1,2,2,3,3,5,5".into()),
        ("MERCHANT_WEBHOOK_TIMEOUT_MS", "1000".into()),
    ];
    vars.extend(extra);
    Stack::start_with(Options {
        vars,
        secrets: vec![("MERCHANT_WEBHOOK_SECRET", receiver::SECRET.into())],
        ..Options::default()
    })
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut by_type = BTreeMap::new();
    for e in events {
        *by_type
            .entry(e["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    by_type
}

/// Waits until the receiver accepted every event of the feed, and returns the feed.
fn all_delivered(s: &Stack, r: &Receiver, secs: u64) -> Vec<Value> {
    let mut events = Vec::new();
    eventually(secs, "every event of the feed to be delivered", || {
        events = event_feed(s, 50);
        let ids: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        let accepted = r.accepted_ids();
        !ids.is_empty() && ids.iter().all(|id| accepted.contains(id))
    });
    // Every delivery, as sent, is what openapi.json's webhooks section says.
    for d in r.deliveries() {
        let headers = [
            ("webhook-id".to_owned(), d.id.clone()),
            ("webhook-timestamp".to_owned(), d.timestamp.clone()),
            ("webhook-signature".to_owned(), d.signature.clone()),
        ];
        crate::openapi::validate_delivery(&headers, &d.body);
    }
    events
}

#[test]
fn events_are_written_with_their_change_signed_and_delivered() {
    let r = Receiver::start();
    let s = events_stack(&r, vec![]);
    let sub = subscribe(&s, "ev-1", "basic-monthly", APPROVE);
    let events = all_delivered(&s, &r, 30);
    let by_type = counts(&events);
    assert_eq!(by_type.get("checkout.completed"), Some(&1), "{by_type:?}");
    assert_eq!(
        by_type.get("payment_method.updated"),
        Some(&1),
        "{by_type:?}"
    );
    assert_eq!(by_type.get("subscription.created"), Some(&1), "{by_type:?}");
    assert_eq!(by_type.get("charge.succeeded"), Some(&1), "{by_type:?}");
    // The feed's events are the ones delivered, signed by the receiver's own check, with the
    // event id as webhook-id; the data is the resource as the API returns it.
    for d in r.deliveries() {
        receiver::verify(receiver::SECRET, &d, receiver::now_s()).unwrap();
        let body = d.json();
        assert_eq!(body["id"], d.id.as_str());
        let in_feed = events.iter().find(|e| e["id"] == d.id.as_str()).unwrap();
        assert_eq!(&body, in_feed, "a delivery is the feed's event");
    }
    let created = events
        .iter()
        .find(|e| e["type"] == "subscription.created")
        .unwrap();
    assert_eq!(created["data"]["id"], sub.subscription_id.as_str());
    assert_eq!(created["data"]["status"], "active");
    let paid = events
        .iter()
        .find(|e| e["type"] == "charge.succeeded")
        .unwrap();
    let charge = merchant_get(
        &s,
        &format!("/v1/charges/{}", paid["data"]["id"].as_str().unwrap()),
    );
    assert_eq!(
        paid["data"], charge,
        "the charge as GET /v1/charges/:id shows it"
    );
    // An event alone, with its delivery record.
    let one = merchant_get(&s, &format!("/v1/events/{}", paid["id"].as_str().unwrap()));
    assert_eq!(one["delivery"]["status"], "delivered", "{one}");
    assert_eq!(one["delivery"]["attempts"][0]["statusCode"], 200, "{one}");
    let bodies: Vec<String> = r.deliveries().into_iter().map(|d| d.body).collect();
    assert_no_token_leak(&s, &bodies);
    assert_ledgers_agree(&s, "ev-1");
}

/// Twelve monthly renewals, one of them declined twice before a retry pays it: the events
/// say so, each in the number the changes happened.
#[test]
fn a_year_of_renewals_with_dunning_delivers_the_right_events() {
    let r = Receiver::start();
    let s = events_stack(&r, vec![]);
    tick(&s, "2027-01-15T10:00:00Z");
    let sub = subscribe(&s, "ev-year", "basic-monthly", APPROVE);
    let token = token_of_order(&s.ledger(), &sub.order_id);
    for month in 2..=13 {
        let (year, m) = if month > 12 {
            (2028, month - 12)
        } else {
            (2027, month)
        };
        let mut due = format!("{year}-{m:02}-15T10:00:00Z");
        if month == 7 {
            // The July renewal is declined twice (softly), then paid by the second retry.
            let behaviour =
                json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS", "times": 2});
            let put = s
                .sandbox
                .put(&format!("/_sandbox/tokens/{token}/behaviour"), &behaviour);
            assert!(put.status < 300, "{}", put.text);
            // Each attempt's outcome is on record before the clock moves to the next one.
            tick_settled(&s, &due);
            tick_settled(&s, &format!("{year}-{m:02}-16T10:00:00Z"));
            due = format!("{year}-{m:02}-18T10:00:00Z");
        }
        tick_settled(&s, &due);
        eventually(60, "the period's charge to settle", || {
            subscription(&s, &sub.subscription_id)["status"] == "active"
                && charges_of(&s, "ev-year")
                    .iter()
                    .any(|c| c["periodIndex"] == month - 1 && c["status"] == "succeeded")
        });
    }
    let events = all_delivered(&s, &r, 60);
    let expected: BTreeMap<String, usize> = [
        ("checkout.completed", 1),
        ("payment_method.updated", 1),
        ("subscription.created", 1),
        ("subscription.renewed", 12),
        ("charge.succeeded", 13),
        ("charge.failed", 2),
        ("subscription.past_due", 1),
        ("subscription.recovered", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts(&events), expected);
    // Oldest first, and each carries the resource's state at its change.
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["createdAt"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let past_due = events
        .iter()
        .find(|e| e["type"] == "subscription.past_due")
        .unwrap();
    assert_eq!(past_due["data"]["status"], "past_due");
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "charge.failed")
        .collect();
    assert!(
        failed
            .iter()
            .all(|e| e["data"]["failureReason"] == "DENIED_NO_FUNDS"
                && e["data"]["declineCategory"] == "soft")
    );
    // The feed pages by type too.
    let renewed = merchant_get(&s, "/v1/events?type=subscription.renewed&limit=100");
    assert_eq!(renewed["data"].as_array().unwrap().len(), 12);
    assert_ledgers_agree(&s, "ev-year");
}

/// The endpoint answers 500, then hangs past the worker's timeout, then is down, then comes
/// back: every event still arrives at least once, and every attempt is on record.
#[test]
fn every_event_arrives_however_the_endpoint_misbehaves() {
    let r = Receiver::start();
    r.set_mode(Mode::Fail);
    let s = events_stack(&r, vec![]);
    subscribe(&s, "ev-flaky-1", "basic-monthly", APPROVE);
    eventually(20, "a failed delivery", || {
        r.deliveries().iter().any(|d| !d.accepted)
    });
    r.set_mode(Mode::Hang(Duration::from_secs(3)));
    subscribe(&s, "ev-flaky-2", "basic-monthly", APPROVE);
    eventually(20, "a delivery that timed out", || {
        r.deliveries().len() >= 6
    });
    r.set_mode(Mode::Down);
    eventually(30, "a delivery to find the endpoint down", || {
        r.refused() > 0
    });
    r.set_mode(Mode::Accept);
    let events = all_delivered(&s, &r, 90);
    assert_eq!(counts(&events).get("checkout.completed"), Some(&2));
    // Every attempt is recorded: the failures before the success.
    let retried = events
        .iter()
        .map(|e| merchant_get(&s, &format!("/v1/events/{}", e["id"].as_str().unwrap())))
        .find(|e| e["delivery"]["attempts"].as_array().unwrap().len() > 1)
        .expect("an event that needed more than one attempt");
    let attempts = retried["delivery"]["attempts"].as_array().unwrap();
    assert_eq!(retried["delivery"]["status"], "delivered", "{retried}");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a["error"].is_string()),
        "{retried}"
    );
    assert_eq!(attempts.last().unwrap()["statusCode"], 200);
}

/// A redelivery asked for through the API keeps the event's webhook-id, so a receiver that
/// deduplicates on it sees the event once.
#[test]
fn a_redelivered_event_keeps_its_webhook_id() {
    let r = Receiver::start();
    let s = events_stack(&r, vec![]);
    subscribe(&s, "ev-again", "basic-monthly", APPROVE);
    let events = all_delivered(&s, &r, 30);
    let id = events[0]["id"].as_str().unwrap().to_owned();
    let before = r.deliveries().iter().filter(|d| d.id == id).count();
    let reply = s.worker.post_raw(
        &format!("/v1/events/{id}/redeliver"),
        "",
        &[("Authorization", BEARER)],
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    eventually(20, "the redelivery", || {
        r.deliveries().iter().filter(|d| d.id == id).count() > before
    });
    let copies: Vec<_> = r.deliveries().into_iter().filter(|d| d.id == id).collect();
    assert!(copies.iter().all(|d| d.json() == copies[0].json()));
    for d in &copies {
        receiver::verify(receiver::SECRET, d, receiver::now_s()).unwrap();
    }
}

/// The signature covers the id, the timestamp and the body: a receiver detects a tampered
/// body, a replayed delivery under another id, and a stale one.
#[test]
fn a_tampered_or_stale_delivery_is_detected_by_the_receiver() {
    let r = Receiver::start();
    let s = events_stack(&r, vec![]);
    subscribe(&s, "ev-tamper", "basic-monthly", APPROVE);
    all_delivered(&s, &r, 30);
    let d = r.deliveries()[0].clone();
    let now = receiver::now_s();
    receiver::verify(receiver::SECRET, &d, now).unwrap();
    let mut tampered = d.clone();
    tampered.body = tampered.body.replacen("\"type\"", "\"type\" ", 1);
    assert_eq!(
        receiver::verify(receiver::SECRET, &tampered, now),
        Err(Refused::BadSignature)
    );
    let mut other_id = d.clone();
    other_id.id = "evt_00000000000000000000".into();
    assert_eq!(
        receiver::verify(receiver::SECRET, &other_id, now),
        Err(Refused::BadSignature)
    );
    assert_eq!(
        receiver::verify(receiver::SECRET, &d, now + receiver::TOLERANCE_S + 60),
        Err(Refused::Stale),
        "an old delivery, replayed, is refused"
    );
    assert_eq!(
        receiver::verify(
            "whsec_b3RoZXItc2VjcmV0LW9mLWFub3RoZXItbWVyY2hhbnQ=",
            &d,
            now
        ),
        Err(Refused::BadSignature)
    );
}

/// Without a webhook URL, events are kept for the feed only.
#[test]
fn without_a_webhook_url_the_feed_still_has_every_event() {
    let s = Stack::start();
    subscribe(&s, "ev-feed", "basic-monthly", APPROVE);
    eventually(20, "the events in the feed", || {
        counts(&event_feed(&s, 50)).get("charge.succeeded") == Some(&1)
    });
    let event = &event_feed(&s, 50)[0];
    let one = merchant_get(&s, &format!("/v1/events/{}", event["id"].as_str().unwrap()));
    assert_eq!(one["delivery"]["status"], "none", "{one}");
    let reply = s.worker.post_raw(
        &format!("/v1/events/{}/redeliver", event["id"].as_str().unwrap()),
        "",
        &[("Authorization", BEARER)],
    );
    reply.problem(409, "no-webhook-url");
}

/// The README's verification recipes (JavaScript and Python, standard library only) accept a
/// real delivery and refuse it tampered.
#[test]
fn the_readmes_recipes_verify_deliveries() {
    let r = Receiver::start();
    let s = events_stack(&r, vec![]);
    subscribe(&s, "ev-recipe", "basic-monthly", APPROVE);
    all_delivered(&s, &r, 30);
    let d = r.deliveries()[0].clone();
    let headers = json!({
        "webhook-id": d.id,
        "webhook-timestamp": d.timestamp,
        "webhook-signature": d.signature,
    });
    let js = readme_block("<!-- verify-event: javascript -->");
    let python = readme_block("<!-- verify-event: python -->");
    for (body, expected) in [
        (d.body.clone(), "true"),
        (d.body.replacen('}', " }", 1), "false"),
    ] {
        let mut node = std::process::Command::new("node");
        node.args(["--input-type=module", "-e"])
            .arg(format!(
                "{js}\nconst [secret, headers, body] = JSON.parse(process.argv[1]);\
             \nconsole.log(verify(secret, headers, body));"
            ))
            .arg(json!([receiver::SECRET, headers, body]).to_string());
        assert_eq!(run(node), expected, "JavaScript recipe");
        let mut py = std::process::Command::new("python3");
        py.arg("-c")
            .arg(format!(
                "{python}\nimport json, sys\nsecret, headers, body = json.loads(sys.argv[1])\
             \nprint(str(verify(secret, headers, body.encode())).lower())"
            ))
            .arg(json!([receiver::SECRET, headers, body]).to_string());
        assert_eq!(run(py), expected, "Python recipe");
    }
}
