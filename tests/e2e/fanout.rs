//! Due charges fanned out over the CHARGES queue: the tick enqueues them, consumer invocations
//! drive them. Messages delivered twice, ticks that overlap, a consumer killed halfway and
//! messages lost with it: every renewal is still charged exactly once.

use serde_json::Value;

use crate::flows::*;
use crate::stack::{Options, Stack};

fn fanout_stack(hold_seconds: u32) -> Stack {
    fanout_stack_checking(hold_seconds, 300)
}

/// Fanned out, with the consumers' looks at outcomes that have not come after `check_seconds`.
fn fanout_stack_checking(hold_seconds: u32, check_seconds: u32) -> Stack {
    Stack::start_with(Options {
        vars: vec![
            ("CHARGE_FANOUT", "on".into()),
            ("CHARGE_QUEUE_HOLD_SECONDS", hold_seconds.to_string()),
            ("CHARGE_OUTCOME_CHECK_SECONDS", check_seconds.to_string()),
        ],
        ..Options::default()
    })
}

/// How many times the provider was asked for this order's status (its request log).
fn status_reads(s: &Stack, order_id: &str) -> usize {
    let request = format!("GET /orders/{order_id}/status ");
    s.sandbox_log()
        .lines()
        .filter(|l| l.contains(&request))
        .count()
}

/// Checks the consumers made, over every invocation so far.
fn checks_made(s: &Stack) -> u64 {
    s.logged("charges consumed")
        .iter()
        .map(|l| l["checks"].as_u64().unwrap_or(0))
        .sum()
}

fn renewal(s: &Stack, customer: &str) -> Option<Value> {
    charges_of(s, customer)
        .into_iter()
        .find(|c| c["kind"] == "renewal" && c["periodIndex"] == 1)
}

/// `n` customers named `{prefix}-{i}` subscribe to the weekly plan at business time `at`.
fn weekly_subscribers(s: &Stack, prefix: &str, n: usize, at: &str) -> Vec<String> {
    tick(s, at);
    let customers: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for c in &customers {
        subscribe(s, c, "weekly", APPROVE);
    }
    customers
}

fn all_renewed(s: &Stack, customers: &[String]) -> bool {
    customers
        .iter()
        .all(|c| renewal(s, c).is_some_and(|r| r["status"] == "succeeded"))
}

/// Every tick enqueues whatever is still due (no hold), and three ticks run back to back: the
/// consumers get each charge several times, and drive each one once.
#[test]
fn renewals_fanned_out_twice_over_are_charged_once() {
    let s = fanout_stack(0);
    let customers = weekly_subscribers(&s, "fan", 8, "2027-05-01T08:00:00Z");
    let due = "2027-05-08T08:00:00Z";
    let first = tick(&s, due);
    assert_eq!(first["periodsClosed"], 8, "{first}");
    assert_eq!(first["chargesEnqueued"], 8, "{first}");
    assert_eq!(first["chargesDriven"], 0, "the tick only enqueues: {first}");
    tick(&s, due);
    tick(&s, due);
    eventually(60, "the consumers to renew every subscription", || {
        all_renewed(&s, &customers)
    });
    eventually(20, "a consumer to report", || {
        !s.logged("charges consumed").is_empty()
    });
    for c in &customers {
        assert_ledgers_agree(&s, c);
    }
    let ledger = s.ledger();
    let renewals = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["method"] == "CTOKEN" && p["status"] == "PAYMENT_COMPLETED")
        .count();
    assert_eq!(renewals, 8, "one token payment per renewal");
}

/// The worker dies with the charges' messages (local queues live in its process): after the
/// hold, a later tick enqueues what is still due, and each renewal is charged once.
#[test]
fn charges_whose_messages_were_lost_are_enqueued_again() {
    let mut s = fanout_stack(2);
    let customers = weekly_subscribers(&s, "lost", 4, "2027-05-01T08:00:00Z");
    let due = "2027-05-08T08:00:00Z";
    let first = tick(&s, due);
    assert_eq!(first["chargesEnqueued"], 4, "{first}");
    s.kill_worker();
    s.restart_worker();
    // A consumer may have died with a payment request in doubt: its charge waits out the settle
    // window (15 minutes of business time), so the ticks that finish the work come after it.
    let after_window = "2027-05-08T08:16:00Z";
    eventually(90, "every renewal to be charged after the restart", || {
        tick(&s, after_window);
        all_renewed(&s, &customers)
    });
    for c in &customers {
        assert_ledgers_agree(&s, c);
    }
}

/// More renewals due than one round closes: the tick goes on, round after round, and one run
/// closes and enqueues them all instead of leaving the rest to the next minute.
#[test]
fn one_tick_closes_and_enqueues_round_after_round() {
    let s = Stack::start_with(Options {
        vars: vec![
            ("CHARGE_FANOUT", "on".into()),
            ("TICK_MAX_CHARGES", "3".into()),
        ],
        ..Options::default()
    });
    let customers = weekly_subscribers(&s, "round", 8, "2027-06-01T08:00:00Z");
    let report = tick(&s, "2027-06-08T08:00:00Z");
    assert_eq!(report["periodsClosed"], 8, "{report}");
    assert_eq!(report["chargesEnqueued"], 8, "{report}");
    // Three a round: in one database 3 + 3 + 2, two rounds after the first; a sharded ledger
    // closes each shard's in rounds of its own (a shard with k due has k / 3 rounds more).
    let mut per_shard = std::collections::BTreeMap::<String, u64>::new();
    for sub in merchant_get(&s, "/v1/subscriptions?limit=100")["data"]
        .as_array()
        .unwrap()
    {
        let id = sub["id"].as_str().unwrap();
        let parts: Vec<&str> = id.split('_').collect();
        let shard = if parts.len() == 3 { parts[1] } else { "0" };
        *per_shard.entry(shard.to_owned()).or_default() += 1;
    }
    let rounds: u64 = per_shard.values().map(|due| due / 3).sum();
    assert_eq!(
        report["rounds"], rounds,
        "rounds of three ({per_shard:?}): {report}"
    );
    assert_eq!(report["workLeft"], false, "{report}");
    eventually(60, "the consumers to renew every subscription", || {
        all_renewed(&s, &customers)
    });
    for c in &customers {
        assert_ledgers_agree(&s, c);
    }
}

fn renewal_id(s: &Stack, customer: &str) -> String {
    renewal(s, customer).expect("a renewal")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The provider's completion webhook overtakes its answer to `POST /payments`: it arrives
/// while the consumer that started the payment still holds the charge. The webhook waits for
/// the consumer to let go and records the outcome; no tick is needed.
#[test]
fn a_completion_webhook_that_overtakes_the_answer_settles_the_renewal() {
    let s = fanout_stack(300);
    let customers = weekly_subscribers(&s, "overtaken", 3, "2027-07-01T08:00:00Z");
    set_faults(
        &s,
        serde_json::json!([{"endpoint": "initiate_payment", "answer_latency_ms": 1500}]),
    );
    let report = tick(&s, "2027-07-08T08:00:00Z");
    assert_eq!(report["chargesEnqueued"], 3, "{report}");
    eventually(60, "the webhooks to record every renewal", || {
        all_renewed(&s, &customers)
    });
    let ledger = s.ledger();
    let mut orders = Vec::new();
    for c in &customers {
        let charge = renewal_id(&s, c);
        let payments = payments_for_reference(&ledger, &charge);
        assert_eq!(payments.len(), 1, "{c}");
        assert_eq!(payments[0]["status"], "PAYMENT_COMPLETED", "{c}");
        orders.push(payments[0]["orderId"].clone());
        assert_ledgers_agree(&s, c);
    }
    // Each completion was recorded by its own webhook, at its first confirmation (logged once
    // the outcome is written).
    let completions = || -> Vec<Value> {
        s.logged("webhook confirmed")
            .into_iter()
            .filter(|l| l["type"] == "order.paymentcompleted" && orders.contains(&l["orderId"]))
            .collect()
    };
    eventually(20, "the completions' confirmation lines", || {
        completions().len() >= 3
    });
    let completions = completions();
    assert_eq!(completions.len(), 3, "{completions:?}");
    assert!(
        completions.iter().all(|l| l["outcome"] == "Settled"),
        "{completions:?}"
    );
}

/// Every webhook is lost (a `callBackUrl` is never retried): the payments complete at the
/// provider and the renewals stay pending until the next tick enqueues them again; that drive
/// reads the status and records each outcome, with no second payment.
#[test]
fn renewals_whose_webhooks_are_lost_are_recorded_by_the_next_tick() {
    let s = fanout_stack(300);
    let customers = weekly_subscribers(&s, "unheard", 3, "2027-08-01T08:00:00Z");
    set_faults(
        &s,
        serde_json::json!([{"endpoint": "webhook", "drop_rate": 1.0}]),
    );
    let due = "2027-08-08T08:00:00Z";
    let report = tick(&s, due);
    assert_eq!(report["chargesEnqueued"], 3, "{report}");
    let charges: Vec<String> = customers.iter().map(|c| renewal_id(&s, c)).collect();
    eventually(60, "the provider to complete every renewal payment", || {
        let ledger = s.ledger();
        charges
            .iter()
            .all(|c| completed_for_reference(&ledger, c) == 1)
    });
    eventually(20, "the consumers to let go of the charges", || {
        s.logged("charges consumed")
            .iter()
            .map(|l| l["chargesDriven"].as_u64().unwrap_or(0))
            .sum::<u64>()
            >= 3
    });
    for c in &customers {
        assert_eq!(renewal(&s, c).unwrap()["status"], "pending", "{c}");
    }
    let again = tick(&s, due);
    assert_eq!(again["chargesEnqueued"], 3, "{again}");
    eventually(60, "the next tick's drives to record every renewal", || {
        all_renewed(&s, &customers)
    });
    let ledger = s.ledger();
    for (c, charge) in customers.iter().zip(&charges) {
        assert_eq!(payments_for_reference(&ledger, charge).len(), 1, "{c}");
        assert_ledgers_agree(&s, c);
    }
}

/// The provider's status lags its webhooks (its documents allow seconds to minutes): the
/// completion webhook's status read still shows the payment in flight, so it records nothing
/// and the renewal stays pending. The ticks that follow read the status again until it shows
/// the outcome, and each renewal is recorded once, with one payment.
#[test]
fn a_status_that_lags_the_webhook_is_read_again_until_it_shows_the_outcome() {
    let s = fanout_stack(300);
    let customers = weekly_subscribers(&s, "lagging", 3, "2027-09-01T08:00:00Z");
    set_faults(
        &s,
        serde_json::json!([{"endpoint": "order_status", "status_lag_ms": 20000}]),
    );
    let due = "2027-09-08T08:00:00Z";
    let report = tick(&s, due);
    assert_eq!(report["chargesEnqueued"], 3, "{report}");
    let charges: Vec<String> = customers.iter().map(|c| renewal_id(&s, c)).collect();
    let orders: Vec<Value> = {
        let mut orders = Vec::new();
        eventually(60, "the provider to complete every renewal payment", || {
            let ledger = s.ledger();
            orders = charges
                .iter()
                .flat_map(|c| payments_for_reference(&ledger, c))
                .filter(|p| p["status"] == "PAYMENT_COMPLETED")
                .map(|p| p["orderId"].clone())
                .collect();
            orders.len() == 3
        });
        orders
    };
    eventually(
        30,
        "each completion webhook to find the status behind it",
        || {
            s.logged("webhook confirmed")
                .iter()
                .filter(|l| l["type"] == "order.paymentcompleted" && orders.contains(&l["orderId"]))
                .filter(|l| l["outcome"] == "Unconfirmed")
                .count()
                == 3
        },
    );
    for c in &customers {
        assert_eq!(renewal(&s, c).unwrap()["status"], "pending", "{c}");
    }
    eventually(120, "the ticks' drives to record every renewal", || {
        tick(&s, due);
        all_renewed(&s, &customers)
    });
    let ledger = s.ledger();
    for (c, charge) in customers.iter().zip(&charges) {
        assert_eq!(payments_for_reference(&ledger, charge).len(), 1, "{c}");
        assert_ledgers_agree(&s, c);
    }
}

/// Every webhook is lost: no tick after the one that enqueued the renewals, and each is still
/// recorded within seconds, by the consumers' own look at the outcome that did not come; one
/// payment each.
#[test]
fn renewals_whose_webhooks_are_lost_are_recorded_by_a_look_within_seconds() {
    let s = fanout_stack_checking(300, 2);
    let customers = weekly_subscribers(&s, "looked", 4, "2027-10-01T08:00:00Z");
    set_faults(
        &s,
        serde_json::json!([{"endpoint": "webhook", "drop_rate": 1.0}]),
    );
    let report = tick(&s, "2027-10-08T08:00:00Z");
    assert_eq!(report["chargesEnqueued"], 4, "{report}");
    // The queue's hold is five minutes and no tick runs: only the looks can record them.
    eventually(60, "the consumers' looks to record every renewal", || {
        all_renewed(&s, &customers)
    });
    assert!(checks_made(&s) >= 4, "{:?}", s.logged("charges consumed"));
    let ledger = s.ledger();
    for c in &customers {
        let charge = renewal_id(&s, c);
        let payments = payments_for_reference(&ledger, &charge);
        assert_eq!(payments.len(), 1, "{c}: {payments:?}");
        assert_eq!(
            status_reads(&s, payments[0]["orderId"].as_str().unwrap()),
            1,
            "{c}"
        );
        assert_ledgers_agree(&s, c);
    }
}

/// The webhooks come in time: the consumers' looks, two seconds later, find every renewal
/// recorded and ask the provider nothing. One status read per order: its webhook's.
#[test]
fn a_look_at_a_renewal_whose_webhook_came_costs_no_provider_call() {
    let s = fanout_stack_checking(300, 2);
    let customers = weekly_subscribers(&s, "heard", 4, "2027-11-01T08:00:00Z");
    let report = tick(&s, "2027-11-08T08:00:00Z");
    assert_eq!(report["chargesEnqueued"], 4, "{report}");
    eventually(60, "the webhooks to record every renewal", || {
        all_renewed(&s, &customers)
    });
    // A look is scheduled for each payment its consumer started, whatever came since.
    eventually(60, "the looks to run", || checks_made(&s) >= 4);
    let ledger = s.ledger();
    for c in &customers {
        let charge = renewal_id(&s, c);
        let payments = payments_for_reference(&ledger, &charge);
        assert_eq!(payments.len(), 1, "{c}");
        let order = payments[0]["orderId"].as_str().unwrap();
        assert_eq!(
            status_reads(&s, order),
            1,
            "{c}: only the webhook's confirmation"
        );
    }
}
