//! `make backup` / `make restore` (scripts/backup.mjs) against a stack: the backup holds no
//! card token in clear, a wrong key or a modified file restores nothing, and a restore into a
//! wiped stack gives back the same subscriptions, charges, events and cards, which the next
//! renewal charges once each; with the ledger in one database, and in four.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::flows::*;
use crate::stack::{Options, Stack, root};

const CUSTOMERS: [&str; 3] = ["bk-ada", "bk-grace", "bk-edsger"];

/// Runs `node scripts/backup.mjs ARGS` against the stack's worker configuration and local
/// state, with the stack's own key directory, temporary directory and wrangler log directory
/// (the operator's settings left out).
fn script(s: &Stack, args: &[&str], key_file: Option<&Path>) -> Output {
    let dir = s.dir();
    for sub in ["tmp", "backup-logs"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let mut command = Command::new("node");
    command
        .current_dir(root())
        .arg(root().join("scripts/backup.mjs"))
        .args(args);
    if !args.contains(&"--config") {
        command.arg("--config").arg(dir.join("wrangler.toml"));
    }
    if !args.contains(&"--persist-to") {
        command.arg("--persist-to").arg(dir.join("state"));
    }
    for name in [
        "BACKUP_KEY_FILE",
        "BACKUP_DIR",
        "BACKUP_TARGET",
        "BACKUP_CONFIG",
        "BACKUP_PERSIST_TO",
        "DEV_DIR",
    ] {
        command.env_remove(name);
    }
    if let Some(key) = key_file {
        command.env("BACKUP_KEY_FILE", key);
    }
    command
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("TMPDIR", dir.join("tmp"))
        .env("WRANGLER_LOG_PATH", dir.join("backup-logs"))
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .output()
        .expect("node scripts/backup.mjs runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The card token the sandbox issued for a tokenizing order (never printed).
fn token_of(ledger: &Value, order_id: &str) -> String {
    ledger["tokens"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["orderId"] == order_id))
        .and_then(|t| t["tokenId"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the sandbox issued no token for order {order_id}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The vault's keys in a local state, read with wrangler as an operator would.
fn vault_keys(s: &Stack, state: &Path) -> Vec<Value> {
    let out = Command::new(root().join("node_modules/.bin/wrangler"))
        .current_dir(s.dir())
        .args([
            "kv",
            "key",
            "list",
            "--binding",
            "TOKENS",
            "--local",
            "--config",
        ])
        .arg(s.dir().join("wrangler.toml"))
        .arg("--persist-to")
        .arg(state)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_LOG_PATH", s.dir().join("backup-logs"))
        .stdin(Stdio::null())
        .output()
        .expect("wrangler kv key list");
    assert!(out.status.success(), "{}", stderr(&out));
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(keys)) => keys,
        _ => panic!("wrangler kv key list did not answer a JSON list"),
    }
}

/// What the API shows of the ledger: subscriptions, their events, each customer's charges and
/// card, every event, and the clock.
fn snapshot(s: &Stack, subs: &[Subscribed]) -> Value {
    let mut view = serde_json::Map::new();
    view.insert(
        "subscriptions".into(),
        merchant_get(s, "/v1/subscriptions?limit=100"),
    );
    view.insert("events".into(), merchant_get(s, "/v1/events?limit=100"));
    view.insert("clock".into(), merchant_get(s, "/v1/test-clock"));
    for sub in subs {
        let id = &sub.subscription_id;
        view.insert(format!("subscription {id}"), subscription(s, id));
        view.insert(
            format!("subscription events {id}"),
            merchant_get(s, &format!("/v1/subscriptions/{id}/events?limit=100")),
        );
    }
    for customer in CUSTOMERS {
        view.insert(
            format!("charges {customer}"),
            merchant_get(s, &format!("/v1/customers/{customer}/charges?limit=100")),
        );
        let card = payment_method(s, customer);
        assert_eq!(card.status, 200, "{customer}: {}", card.text);
        view.insert(format!("card {customer}"), card.json());
    }
    Value::Object(view)
}

/// The worker, on a wiped state, knows none of the customers, subscriptions, charges or events.
fn assert_knows_nobody(s: &Stack, subs: &[Subscribed]) {
    assert_eq!(
        merchant_get(s, "/v1/subscriptions?limit=100")["data"],
        json!([])
    );
    assert_eq!(merchant_get(s, "/v1/events?limit=100")["data"], json!([]));
    for sub in subs {
        s.worker
            .get_with(
                &format!("/v1/subscriptions/{}", sub.subscription_id),
                &merchant(),
            )
            .problem(404, "not-found");
    }
    for customer in CUSTOMERS {
        let charges = s.worker.get_with(
            &format!("/v1/customers/{customer}/charges?limit=100"),
            &merchant(),
        );
        assert!(
            charges.status == 404 || charges.json()["data"] == json!([]),
            "{customer}: {}",
            charges.text
        );
        assert_eq!(
            payment_method(s, customer).status,
            404,
            "{customer} still has a card"
        );
    }
    assert!(
        vault_keys(s, &s.dir().join("state")).is_empty(),
        "the vault is not empty"
    );
}

#[test]
fn a_backup_restores_into_a_wiped_stack_and_the_next_renewal_charges_each_card_once() {
    // One database whatever E2E_LEDGER_SHARDS says: the next test has four.
    backup_and_restore(1);
}

#[test]
fn a_ledger_in_four_databases_is_backed_up_and_restored_whole() {
    backup_and_restore(4);
}

fn backup_and_restore(shards: usize) {
    let mut s = Stack::start_with(Options {
        vars: vec![("LEDGER_SHARDS", shards.to_string())],
        ..Options::default()
    });
    if shards > 1 {
        let used: std::collections::BTreeSet<usize> = CUSTOMERS
            .iter()
            .map(|c| recurring_core::shards::shard_for_customer(c, shards))
            .collect();
        assert!(used.len() > 1, "the customers share one shard: {used:?}");
    }
    tick(&s, "2027-05-10T09:00:00Z");
    let subs: Vec<Subscribed> = CUSTOMERS
        .iter()
        .map(|c| subscribe(&s, c, "basic-monthly", APPROVE))
        .collect();
    let ledger = s.ledger();
    let tokens: Vec<String> = subs
        .iter()
        .map(|sub| token_of(&ledger, &sub.order_id))
        .collect();
    let paid_before: Vec<i64> = tokens
        .iter()
        .map(|t| completed_payments_for_token(&ledger, t))
        .collect();
    // Nothing left in flight: what the backup reads is what the API shows.
    let mut before = snapshot(&s, &subs);
    eventually(60, "the ledger to stand still", || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let again = snapshot(&s, &subs);
        let still = again == before;
        before = again;
        still
    });

    // The backup, with the key created on first use.
    let backups = s.dir().join("backups");
    let out = script(&s, &["backup", "--dir", backups.to_str().unwrap()], None);
    assert!(out.status.success(), "backup failed:\n{}", stderr(&out));
    let said = stderr(&out);
    let key = s.dir().join("config/recurring-edge/backup.key");
    assert!(said.contains("KEEP A COPY OF IT SAFE"), "{said}");
    assert_eq!(
        fs::metadata(&key).expect("the key").permissions().mode() & 0o777,
        0o600
    );
    let written: Vec<PathBuf> = files_under(&backups);
    assert_eq!(written.len(), 1, "{written:?}");
    let file = written[0].clone();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("recurring-edge-") && name.ends_with(".backup"),
        "{name}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        file.to_string_lossy()
    );
    let bytes = fs::read(&file).expect("the backup");
    for token in &tokens {
        assert!(
            !contains(&bytes, token.as_bytes()),
            "a card token is in the backup in clear"
        );
    }
    assert!(!contains(&bytes, b"tokenId"), "the backup names tokenId");
    // Nor anywhere else the script or wrangler could have written: the temporary and log
    // directories it was given hold nothing with a token.
    for written in files_under(&s.dir().join("tmp"))
        .into_iter()
        .chain(files_under(&s.dir().join("backup-logs")))
    {
        let text = fs::read(&written).unwrap_or_default();
        for token in &tokens {
            assert!(
                !contains(&text, token.as_bytes()),
                "a card token in {}",
                written.display()
            );
        }
    }
    let newline = bytes.iter().position(|b| *b == b'\n').expect("a header");
    let header: Value = serde_json::from_slice(&bytes[..newline]).expect("the header is JSON");
    let mut migrations: Vec<String> = fs::read_dir(root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    migrations.sort();
    assert_eq!(header["format"], "recurring-edge-backup", "{header}");
    if shards == 1 {
        assert_eq!(header["version"], 1, "{header}");
        assert!(header.get("shards").is_none(), "{header}");
    } else {
        assert_eq!(header["version"], 2, "{header}");
        assert_eq!(header["shards"], shards, "{header}");
    }
    assert_eq!(header["target"], "local", "{header}");
    assert_eq!(header["migration"], migrations.last().unwrap().as_str());
    assert_eq!(header["vault"]["keys"], 3, "{header}");
    assert!(header["ledger"]["rows"].as_u64().unwrap() > 12, "{header}");

    // The stack loses its ledger and vault.
    s.stop_worker();
    s.wipe_state();
    s.start_worker_again();
    assert_knows_nobody(&s, &subs);

    // A wrong key, a modified payload, a modified header: refused, nothing restored.
    let wrong = s.dir().join("wrong.key");
    fs::write(&wrong, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    fs::set_permissions(&wrong, fs::Permissions::from_mode(0o600)).unwrap();
    let out = script(&s, &["restore", file.to_str().unwrap()], Some(&wrong));
    assert!(!out.status.success(), "restored with a wrong key");
    assert!(stderr(&out).contains("another key"), "{}", stderr(&out));

    let mut flipped = bytes.clone();
    let middle = newline + (bytes.len() - newline) / 2;
    flipped[middle] ^= 0x01;
    let damaged = s.dir().join("damaged.backup");
    fs::write(&damaged, &flipped).unwrap();
    let out = script(&s, &["restore", damaged.to_str().unwrap()], None);
    assert!(!out.status.success(), "restored a modified file");
    assert!(
        stderr(&out).contains("does not authenticate"),
        "{}",
        stderr(&out)
    );

    let header_text = String::from_utf8_lossy(&bytes[..newline]).into_owned();
    let forged = header_text.replace("\"keys\":3", "\"keys\":4");
    assert_ne!(forged, header_text);
    let mut forged_file = forged.into_bytes();
    forged_file.extend_from_slice(&bytes[newline..]);
    let tampered = s.dir().join("tampered.backup");
    fs::write(&tampered, &forged_file).unwrap();
    let out = script(&s, &["restore", tampered.to_str().unwrap()], None);
    assert!(
        !out.status.success(),
        "restored a file whose header changed"
    );
    assert!(
        stderr(&out).contains("does not authenticate"),
        "{}",
        stderr(&out)
    );
    assert_knows_nobody(&s, &subs);

    // The restore, with the worker stopped as the guide says.
    s.stop_worker();
    let out = script(&s, &["restore", file.to_str().unwrap()], None);
    assert!(out.status.success(), "restore failed:\n{}", stderr(&out));
    s.start_worker_again();
    let after = snapshot(&s, &subs);
    assert!(
        after == before,
        "the restored ledger reads differently:\nbefore: {before:#}\nafter: {after:#}"
    );
    assert_eq!(vault_keys(&s, &s.dir().join("state")).len(), 3);

    // A second restore meets a ledger that is not empty: refused, nothing changed.
    let out = script(&s, &["restore", file.to_str().unwrap()], None);
    assert!(!out.status.success(), "restored over a ledger in use");
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert!(
        snapshot(&s, &subs) == before,
        "a refused restore changed the ledger"
    );

    // Into a ledger of another number of databases: refused, nothing written.
    if shards > 1 {
        let config = fs::read_to_string(s.dir().join("wrangler.toml")).expect("the configuration");
        let single = config.replace(
            &format!("LEDGER_SHARDS = \"{shards}\""),
            "LEDGER_SHARDS = \"1\"",
        );
        assert_ne!(single, config, "the configuration names LEDGER_SHARDS");
        let single_config = s.dir().join("one-database.toml");
        fs::write(&single_config, single).expect("a one-database configuration");
        let elsewhere = s.dir().join("state-one-database");
        let out = script(
            &s,
            &[
                "restore",
                file.to_str().unwrap(),
                "--config",
                single_config.to_str().unwrap(),
                "--persist-to",
                elsewhere.to_str().unwrap(),
            ],
            None,
        );
        assert!(!out.status.success(), "restored {shards} databases into 1");
        assert!(
            stderr(&out).contains("LEDGER_SHARDS is 1"),
            "{}",
            stderr(&out)
        );
        assert!(vault_keys(&s, &elsewhere).is_empty());
    }

    // Into a database with no schema at all (a new production database): restored whole.
    let fresh = s.dir().join("state-fresh");
    let out = script(
        &s,
        &[
            "restore",
            file.to_str().unwrap(),
            "--persist-to",
            fresh.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "restore into an empty state failed:\n{}",
        stderr(&out)
    );
    assert_eq!(vault_keys(&s, &fresh).len(), 3);

    // The next renewal: the clock moves to the end of the period (running the scheduler), and
    // the cron trigger runs until each renewal has settled.
    let due = subscription(&s, &subs[0].subscription_id)["currentPeriodEnd"]
        .as_str()
        .unwrap()
        .to_owned();
    for sub in &subs[1..] {
        assert_eq!(
            subscription(&s, &sub.subscription_id)["currentPeriodEnd"],
            due
        );
    }
    tick(&s, &due);
    let renewals = |customer: &str| -> Vec<Value> {
        charges_of(&s, customer)
            .into_iter()
            .filter(|c| c["kind"] != "checkout")
            .collect()
    };
    eventually(120, "every renewal to succeed", || {
        let r = s.worker.get("/__scheduled?cron=*+*+*+*+*");
        assert_eq!(r.status, 200, "{}", r.text);
        CUSTOMERS.iter().all(|c| {
            renewals(c)
                .iter()
                .any(|charge| charge["status"] == "succeeded")
        })
    });
    // One more cron run charges nobody again.
    let r = s.worker.get("/__scheduled?cron=*+*+*+*+*");
    assert_eq!(r.status, 200, "{}", r.text);
    let ledger = s.ledger();
    for (i, customer) in CUSTOMERS.iter().enumerate() {
        let charged = renewals(customer);
        assert_eq!(charged.len(), 1, "{customer}: {charged:?}");
        let renewal = &charged[0];
        assert_eq!(renewal["status"], "succeeded", "{renewal}");
        assert_eq!(renewal["amount"], 9900, "{renewal}");
        assert_eq!(renewal["periodIndex"], 1, "{renewal}");
        let order = renewal["providerOrderId"].as_str().expect("an order");
        let paid: Vec<&Value> = ledger["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["orderId"] == order && p["status"] == "PAYMENT_COMPLETED")
            .collect();
        assert_eq!(paid.len(), 1, "{customer}: one payment on {order}");
        assert!(
            paid[0]["tokenId"] == tokens[i].as_str(),
            "{customer}'s renewal was paid with another card than the one backed up"
        );
        assert_eq!(
            completed_payments_for_token(&ledger, &tokens[i]),
            paid_before[i] + 1,
            "{customer}'s card was not charged exactly once more"
        );
        assert_ledgers_agree(&s, customer);
        assert_eq!(
            subscription(&s, &subs[i].subscription_id)["currentPeriod"],
            1
        );
    }
}
