//! The state file across restarts (in-process and of the real binary, killed hard), flags and
//! environment, the announce line, and what the log never shows.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::*;
use psp_sandbox::Config;
use serde_json::json;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("psp-sandbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_state_file_keeps_everything_across_a_restart() {
    let dir = temp_dir("restart");
    let file = dir.join("state.json");
    let config = || Config {
        processing_ms: 10,
        state_file: Some(file.clone()),
        ..Config::default()
    };
    let (order, token) = {
        let s = start_with(config());
        let order = s.page_order(9900, json!({"referenceId": "kept"}));
        s.pay(&order, APPROVE);
        let token = s.token_of(&order);
        // Two scripted declines: one used before the restart, one after.
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "decline", "failureReason": "DENIED_NO_FUNDS", "times": 2}),
        );
        let mit = s.mit_order(9900);
        s.charge(&mit, &token);
        assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_FAILED");
        (order, token)
    };
    assert!(file.exists());
    assert!(
        !dir.join("state.json.tmp").exists(),
        "written through a renamed temp file"
    );

    // A slow payment still in flight when the sandbox stops, as the file it left shows. A
    // sandbox stopped within the delay cannot have finished it; one stopped later may have,
    // and then this try (one more completed charge of the token) proved nothing.
    let mut completed_before_stop = 0;
    let slow_order = conclusive("a payment in flight at the stop", 600, |delay| {
        let s = start_with(config());
        s.control(
            "PUT",
            &format!("/_sandbox/tokens/{token}/behaviour"),
            &json!({"outcome": "approve", "delay_ms": delay, "times": 1}),
        );
        let slow_order = s.mit_order(9900);
        let before_charge = Instant::now();
        let payment = s.charge(&slow_order, &token).body["data"]["paymentId"]
            .as_str()
            .unwrap()
            .to_owned();
        drop(s);
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let step = step_of(&saved["payments"][&payment]["status"]);
        if !within(before_charge, delay) && step == FINAL {
            completed_before_stop += 1;
            return None;
        }
        assert!(step < FINAL, "{}", saved["payments"][&payment]);
        Some(slow_order)
    });

    let s = start_with(config());
    assert_eq!(s.token_of(&order), token);
    assert_eq!(s.status(&order)["orderStatus"], "PAYMENT_COMPLETED");
    assert_eq!(
        s.wait_final(&slow_order)["orderStatus"],
        "PAYMENT_COMPLETED",
        "a payment in flight resumes after a restart"
    );
    let mit = s.mit_order(9900);
    s.charge(&mit, &token);
    assert_eq!(
        s.wait_final(&mit)["payments"][0]["failureReason"],
        "DENIED_NO_FUNDS",
        "the behaviour and what is left of it survive"
    );
    s.charge(&mit, &token);
    assert_eq!(s.wait_final(&mit)["orderStatus"], "PAYMENT_COMPLETED");
    let ledger = s.ledger();
    assert_eq!(
        ledger["payments_per_token"][&token]["attempted"],
        4 + completed_before_stop
    );

    assert_eq!(s.call("POST", "/_sandbox/reset", None, false).status, 204);
    drop(s);
    let s = start_with(config());
    assert_eq!(s.ledger()["orders"], json!([]), "a reset is persisted too");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_state_file_nothing_is_written_and_reset_empties_memory() {
    let s = start();
    let order = s.page_order(9900, json!({}));
    s.pay(&order, APPROVE);
    assert_eq!(s.call("POST", "/_sandbox/reset", None, false).status, 204);
    let ledger = s.ledger();
    for key in ["orders", "returns", "payments", "tokens"] {
        assert_eq!(ledger[key], json!([]), "{key}");
    }
    assert_eq!(
        s.api("GET", &format!("/orders/{order}/status"), None)
            .status,
        404
    );
    assert_eq!(s.get("/_sandbox/health").body["status"], "ok");
    assert_eq!(s.get("/healthz").status, 200);
}

struct Process {
    child: Child,
    base: String,
    stdout: BufReader<std::process::ChildStdout>,
}

fn spawn(state: &Path, log: &Path, env: &[(&str, &str)]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_psp-sandbox"))
        .args(["--port", "0", "--processing-ms", "5"])
        .arg("--state")
        .arg(state)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("psp-sandbox listening on ")
        .unwrap_or_else(|| panic!("announce line: {line:?}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    Process {
        child,
        base,
        stdout,
    }
}

/// A call with the credentials the binary was given through its environment.
fn authorized(base: &str, method: &str, path: &str, body: Option<&serde_json::Value>) -> Reply {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("API-KEY", "sandbox-api-key")
        .header("API-SECRET", "s3cret-from-env")
        .header("MERCHANT-ID", "0123456789abcdef01")
        .body(body.map_or(String::new(), |b| b.to_string()))
        .unwrap();
    client(base).run(req)
}

#[test]
fn the_binary_announces_its_port_reads_env_and_survives_a_hard_kill() {
    let dir = temp_dir("binary");
    let (state, log) = (dir.join("state.json"), dir.join("sandbox.log"));
    let env = [
        ("PSP_API_SECRET", "s3cret-from-env"),
        ("PSP_MERCHANT_ID", "0123456789abcdef01"),
        ("PSP_SANDBOX_CLOCK", "2026-03-02T09:00:00Z"),
        ("PSP_SANDBOX_SETTLEMENT_CUTOFF", "18:00"),
    ];
    let mut p = spawn(&state, &log, &env);
    let s = client(&p.base);
    let clock = s.get("/_sandbox/clock").body["now"].clone();
    assert!(
        clock.as_str().unwrap().starts_with("2026-03-02T09:0"),
        "the clock from the environment: {clock}"
    );
    let defaults = s.create_order(&json!({}));
    assert_eq!(
        defaults.status, 401,
        "the environment replaced the default secret"
    );
    let r = authorized(
        &p.base,
        "POST",
        "/orders",
        Some(
            &json!({"terminal$id": PAGE, "orderLines": [{"id": "a", "name": "A", "quantity": 1,
            "amount": {"total": 1000, "currency": "752"}}], "controlFunctions": {"enforceTokenization": true}}),
        ),
    );
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
    let order = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    assert!(
        r.body["data"]["paymentPageLink"]
            .as_str()
            .unwrap()
            .starts_with(&p.base)
    );
    assert_eq!(
        s.pay(&order, APPROVE).body["paymentStatus"],
        "PAYMENT_COMPLETED"
    );
    let tokens = authorized(&p.base, "GET", &format!("/orders/{order}/tokens"), None);
    let token = tokens.body["data"][0]["tokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.control(
        "PUT",
        &format!("/_sandbox/tokens/{token}/behaviour"),
        &json!({"outcome": "approve"}),
    );

    // No graceful shutdown: every change was already on disk.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let mut rest = String::new();
    p.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");

    let mut p = spawn(&state, &log, &env);
    let again = authorized(&p.base, "GET", &format!("/orders/{order}/tokens"), None);
    assert_eq!(again.body["data"][0]["tokenId"], token.as_str());
    // The 18:00 cutoff from the environment: Monday's batch, settled on Tuesday.
    let moved = client(&p.base).control(
        "PUT",
        "/_sandbox/clock",
        &json!({"now": "2026-03-02T18:00:00Z"}),
    );
    assert_eq!(moved.body["settlement"]["processed"], 1, "{}", moved.text);
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("POST /orders -> 201"), "{logged}");
    assert!(
        logged.contains("PUT /_sandbox/tokens/***/behaviour -> 200"),
        "{logged}"
    );
    assert!(!logged.contains(&token), "a token id reached the log");
    assert!(
        !logged.contains("s3cret-from-env"),
        "a secret reached the log"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_settings_match_the_worker_development_setup() {
    let c = Config::default();
    assert_eq!(
        (
            c.host.as_str(),
            c.port,
            c.api_key.as_str(),
            c.api_secret.as_str()
        ),
        ("127.0.0.1", 8790, "sandbox-api-key", "sandbox-api-secret")
    );
    assert_eq!(
        (
            c.merchant_id.as_str(),
            c.page_terminal_id.as_str(),
            c.mit_terminal_id.as_str(),
            c.webhook_secret.as_str()
        ),
        (
            "5a1e0f3c2b4d6e8f90",
            "7e1d5c3b9a0f2e4d61",
            "3c9a7e5b1d0f8e6a42",
            "sandbox-webhook-secret"
        )
    );
    assert_eq!(
        (c.processing_ms, c.state_file, c.public_url),
        (50, None, None)
    );
    assert_eq!(
        (
            c.clock,
            c.settlement_cutoff_minutes,
            c.settlement_delay_days,
            c.fee_rate_bp,
            c.fee_fixed
        ),
        (None, 23 * 60, 1, 180, 180),
        "real time; 23:00 UTC, one business day, 1.80 % + 1.80"
    );
}
