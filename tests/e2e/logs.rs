//! The worker's log: one JSON object per line, each naming its request, what it touched, and
//! never a token or a secret.

use serde_json::Value;

use crate::flows::*;
use crate::stack::{API_SECRET, MERCHANT_KEY, SESSION_SECRET, Stack, WEBHOOK_SECRET};

#[test]
fn every_line_of_a_charge_names_its_request_and_its_charge() {
    let s = Stack::start();
    subscribe(&s, "cust-log", "basic-monthly", APPROVE);
    let mut headers = merchant().to_vec();
    headers.push(("Idempotency-Key", "log-charge-1"));
    headers.push(("cf-ray", "8e1f0c2a3b4d5e6f-ARN"));
    let r = s
        .worker
        .post_with("/v1/charges", &charge_body("cust-log", 1900), &headers);
    assert_eq!(r.status, 201, "{}", r.text);
    let charge_id = r.json()["id"].as_str().unwrap().to_owned();

    let mine = |lines: Vec<Value>| -> Vec<Value> {
        lines
            .into_iter()
            .filter(|l| l["requestId"] == "8e1f0c2a3b4d5e6f-ARN")
            .collect()
    };
    eventually(20, "the charge request's line", || {
        !mine(s.logged("request")).is_empty()
    });
    let request = &mine(s.logged("request"))[0];
    assert_eq!(request["level"], "info", "{request}");
    assert_eq!(request["method"], "POST", "{request}");
    assert_eq!(request["route"], "/v1/charges", "{request}");
    assert_eq!(request["status"], 201, "{request}");
    assert_eq!(request["chargeId"], charge_id.as_str(), "{request}");
    assert_eq!(request["customerRef"], "cust-log", "{request}");
    assert!(request["durationMs"].is_u64(), "{request}");
    assert!(
        request["time"].as_str().unwrap().ends_with('Z'),
        "{request}"
    );

    // The provider calls the request made carry the same id, so one search finds them all.
    let calls = mine(s.logged("psp call"));
    let operations: Vec<&str> = calls
        .iter()
        .map(|c| c["operation"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        operations.contains(&"create_order") && operations.contains(&"initiate_payment"),
        "{operations:?}"
    );
    assert!(calls.iter().all(|c| c["chargeId"] == charge_id.as_str()));
    let driven = mine(s.logged("charge driven"));
    assert_eq!(driven.len(), 1, "{driven:?}");
    assert_eq!(driven[0]["end"], "Succeeded");
    assert_eq!(driven[0]["customerRef"], "cust-log");
    assert_eq!(driven[0]["kind"], "api");

    // Every line is JSON, and nothing secret is in any of them.
    let log = s.worker_log();
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["msg"].is_string() && v["level"].is_string(), "{line}");
    }
    for secret in [MERCHANT_KEY, API_SECRET, WEBHOOK_SECRET, SESSION_SECRET] {
        assert!(!log.contains(secret), "a secret in the log");
    }
    assert_no_token_leak(&s, &[]);
}
