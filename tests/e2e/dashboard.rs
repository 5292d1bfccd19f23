//! The merchant dashboard in a real browser: `tests/browser/dashboard.mjs` drives Debian's
//! Chromium through every page at a desktop and a phone size, refunds through the page, and
//! checks who is refused (no session, forged, expired or foreign Access tokens, a read-only
//! member of staff, a cross-site write). This file prepares the ledger it looks at and plays
//! the Access team's published key set: the suite writes the keys it signs with, this server
//! serves them.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use crate::flows::*;
use crate::stack::{Options, Stack, root};

const CHROMIUM: &str = "/usr/bin/chromium";
const AUDIENCE: &str = "e2e-dashboard-audience";
pub const ADMIN: &str = "admin@shop.test";

/// Serves the file at `path` (the team's key set, once the suite wrote it) to every request.
fn serve_key_set(path: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let (status, body) = match fs::read_to_string(&path) {
                Ok(body) => ("200 OK", body),
                Err(_) => ("404 Not Found", "{}".to_owned()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn work_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target
        .join("e2e")
        .join(format!("dashboard-{}", std::process::id()))
}

fn require(path: &Path, how: &str) {
    assert!(path.exists(), "{} is missing: {how}", path.display());
}

#[test]
fn the_dashboard_works_in_a_real_browser_and_refuses_whoever_it_must() {
    require(
        Path::new(CHROMIUM),
        "`make test` installs Debian's chromium package (scripts/test.sh)",
    );
    require(
        &root().join("node_modules/axe-core/axe.min.js"),
        "`make test` installs the pinned axe-core (scripts/bootstrap.sh)",
    );
    let dir = work_dir();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let key_set = dir.join("jwks.json");
    let team = format!("http://127.0.0.1:{}", serve_key_set(key_set.clone()));
    let s = Stack::start_with(Options {
        vars: vec![
            ("DASHBOARD_DEV_LOGIN", "on".into()),
            ("DASHBOARD_ADMINS", ADMIN.into()),
            ("ACCESS_TEAM_DOMAIN", team.clone()),
            ("ACCESS_AUD", AUDIENCE.into()),
        ],
        ..Options::default()
    });

    // A ledger with something on every page: two subscribers, a settled charge with a return,
    // and a charge of today for the page to refund.
    at(&s, "2027-03-01T09:00:00Z");
    subscribe(&s, "dash-ada", "basic-monthly", APPROVE);
    subscribe(&s, "dash-bob", "basic-monthly", SOFT_DECLINE_LATER);
    let settled = charge(&s, "dash-settled", &charge_body("dash-ada", 10_000));
    let settled = charge_id(&settled);
    let partial = refund(&s, &settled, "dash-partial", json!({"amount": 4_000}));
    assert_eq!(partial.status, 202, "{}", partial.text);
    at(&s, "2027-03-02T01:00:00Z");
    at(&s, "2027-03-02T09:00:00Z");
    let today = charge(&s, "dash-today", &charge_body("dash-ada", 5_000));
    let today_order = today.json()["providerOrderId"].as_str().unwrap().to_owned();
    let today = charge_id(&today);
    let subscription = merchant_get(&s, "/v1/subscriptions?customerRef=dash-bob")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let shots = match std::env::var_os("DASHBOARD_SCREENSHOTS") {
        Some(d) => PathBuf::from(d),
        None => dir.join("screenshots"),
    };
    let fixture = json!({
        "workerUrl": s.worker_url,
        "sandboxUrl": s.sandbox_url,
        "team": team,
        "audience": AUDIENCE,
        "admin": ADMIN,
        "keySet": key_set,
        "screenshots": shots,
        "customer": "dash-ada",
        "settledCharge": settled,
        "refundCharge": today,
        "refundOrder": today_order,
        "refundAmount": 5_000,
        "subscription": subscription,
    });
    let fixture_file = dir.join("fixture.json");
    fs::write(&fixture_file, fixture.to_string()).unwrap();
    let started = Instant::now();
    let out = Command::new("node")
        .current_dir(root())
        .arg("tests/browser/dashboard.mjs")
        .arg(&fixture_file)
        .output()
        .expect("node runs the dashboard suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the dashboard suite failed ({}) after {:.1} s; screenshots in {}\n{stdout}\n{stderr}",
        out.status,
        started.elapsed().as_secs_f64(),
        shots.display(),
    );
    eprintln!("{stdout}");

    // The refund the page made moved money once: the payment voided, nothing returned.
    let ledger = s.ledger();
    let voided: Vec<_> = ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["orderId"] == today_order.as_str() && p["voided"] == true)
        .collect();
    assert_eq!(voided.len(), 1, "{ledger}");
    assert!(returns_of(&ledger, &today_order).is_empty());
    let refunds = merchant_get(&s, &format!("/v1/charges/{today}/refunds"));
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "{refunds}");
    let _ = fs::remove_dir_all(&dir);
}
