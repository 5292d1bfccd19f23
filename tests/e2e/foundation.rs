//! The platform around the API: health, routing errors, static assets, the cron entry point.

use crate::flows::eventually;
use crate::stack::Stack;

#[test]
fn health_reports_the_bindings_and_the_schema() {
    let s = Stack::start();
    let r = s.worker.get("/health");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["checks"]["kv"]["ok"], true);
    assert_eq!(v["checks"]["d1"]["ok"], true);
    assert_eq!(v["checks"]["config"]["ok"], true);
    // The newest migration in the repository is the schema the worker reports.
    let newest = std::fs::read_dir(crate::stack::root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .max()
        .unwrap();
    assert!(
        v["checks"]["d1"]["detail"]
            .as_str()
            .unwrap()
            .contains(&newest),
        "{newest}: {v}"
    );
    assert_eq!(v["checks"]["rateLimit"]["ok"], true, "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_worker_serves_its_own_api_description() {
    let s = Stack::start();
    let r = s.worker.get("/openapi.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/json"));
    // Byte for byte the repository's document: the one every answer here is checked against.
    assert!(
        r.text == crate::openapi::TEXT,
        "the worker serves another openapi.json than the repository's ({} bytes, not {})",
        r.text.len(),
        crate::openapi::TEXT.len()
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("max-age=300"))
    );
}

#[test]
fn unknown_routes_and_wrong_methods_answer_problem_json() {
    let s = Stack::start();
    let r = s.worker.get("/v1/nothing-here");
    r.problem(404, "not-found");

    let r = s.worker.post_raw("/health", "", &[]);
    r.problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("GET"));

    let r = s.worker.send("PUT", "/v1/charges", "{}", &[]);
    r.problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn the_demo_storefront_is_served_from_static_assets() {
    let s = Stack::start();
    let r = s.worker.get("/");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    // The visitor is the customer of a session; nobody types a customer reference.
    assert!(!r.text.contains("name=\"customerRef\""), "{}", r.text);
    let script = s.worker.get("/common.js");
    assert!(script.text.contains("/v1/demo/session"), "{}", script.text);
}

#[test]
fn the_cron_trigger_runs_a_tick() {
    let s = Stack::start();
    let r = s.worker.get("/__scheduled?cron=*+*+*+*+*");
    assert_eq!(r.status, 200, "{}", r.text);
    // The tick logs its report as one JSON line.
    eventually(30, "the tick's report in the log", || {
        s.logged("tick")
            .iter()
            .any(|line| line["tickId"].is_string() && line["requestId"].is_string())
    });
}
