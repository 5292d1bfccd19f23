//! `GET /v1/monitoring`: what an operator alerts on. A charge whose message the consumer cannot
//! process reaches the dead-letter queue, where the worker's own consumer records it; deliveries
//! failing at the merchant's endpoint are counted; a quiet deployment says "ok".

use serde_json::Value;

use crate::flows::*;
use crate::receiver::{self, Mode, Receiver};
use crate::stack::{Options, Stack};

fn monitoring(s: &Stack) -> Value {
    merchant_get(s, "/v1/monitoring")
}

fn alerts(m: &Value) -> Vec<String> {
    m["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn dead_letters_and_failing_deliveries_raise_alerts_and_a_quiet_deployment_none() {
    let receiver = Receiver::start();
    let s = Stack::start_with(Options {
        vars: vec![
            ("CHARGE_FANOUT", "on".into()),
            ("MERCHANT_WEBHOOK_URL", receiver.url.clone()),
            ("EVENT_RETRY_SCHEDULE_SECONDS", "1,1,1,1,1,1,1,1".into()),
        ],
        secrets: vec![("MERCHANT_WEBHOOK_SECRET", receiver::SECRET.into())],
        // The ledger refuses to lease this customer's charges: the consumer cannot drive its
        // renewal, and with no retries its message goes straight to the dead-letter queue.
        seed_sql: Some(
            "CREATE TRIGGER refuse_lease BEFORE UPDATE OF lease_until ON charges
             WHEN NEW.customer_ref = 'dlq-1' AND NEW.lease_until IS NOT NULL
             BEGIN SELECT RAISE(ABORT, 'this charge cannot be leased'); END;"
                .into(),
        ),
        seed_every_shard: true,
        charges_max_retries: Some(0),
        ..Options::default()
    });
    at(&s, "2027-05-03T09:00:00Z");
    subscribe(&s, "dlq-1", "weekly", APPROVE);
    eventually(30, "the checkout's events to be delivered", || {
        !receiver.accepted_ids().is_empty()
    });
    let quiet = monitoring(&s);
    assert_eq!(quiet["status"], "ok", "{quiet}");
    assert!(alerts(&quiet).is_empty());
    assert_eq!(
        quiet["scheduler"]["late"], false,
        "test clock: the API drives the ticks"
    );

    // The renewal's message fails once and lands in the dead-letter queue, recorded there.
    tick(&s, "2027-05-10T09:00:00Z");
    eventually(60, "the dead letter to be recorded", || {
        monitoring(&s)["deadLetters"]["charges"] == 1
    });
    let m = monitoring(&s);
    assert_eq!(m["status"], "alert");
    assert!(alerts(&m).contains(&"deadLetters".to_owned()), "{m}");
    assert_eq!(m["deadLetters"]["events"], 0);
    assert!(
        s.worker_log()
            .lines()
            .any(|l| l.contains(r#""level":"error","msg":"dead letter""#)
                && l.contains("recurring-edge-charges-dlq")),
        "the worker logs it as an error line"
    );

    // The merchant's endpoint fails: the deliveries being retried raise their alert.
    receiver.set_mode(Mode::Fail);
    subscribe(&s, "dlq-2", "basic-monthly", APPROVE);
    eventually(60, "a delivery to fail and be retried", || {
        monitoring(&s)["deliveries"]["retrying"].as_u64() > Some(0)
            || monitoring(&s)["deliveries"]["failed"].as_u64() > Some(0)
    });
    assert!(alerts(&monitoring(&s)).contains(&"deliveriesFailing".to_owned()));
}
