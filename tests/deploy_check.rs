//! The pre-deploy check (`scripts/predeploy-check.py`, run by `make deploy`): it refuses the
//! repository's own production example, naming every placeholder, and passes a filled-in one.
//! Then `make deploy` and `make rollback` themselves, run on a copy of the scripts with a fake
//! wrangler and curl first on PATH (tests/fixtures/deploy/): no network, every call recorded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repository_config() -> toml::Table {
    std::fs::read_to_string(root().join("wrangler.toml"))
        .expect("wrangler.toml")
        .parse()
        .expect("wrangler.toml parses")
}

fn production(config: &mut toml::Table) -> &mut toml::Table {
    config["env"]["production"]
        .as_table_mut()
        .expect("[env.production]")
}

fn set_var(config: &mut toml::Table, name: &str, value: &str) {
    production(config)["vars"]
        .as_table_mut()
        .expect("[env.production.vars]")
        .insert(name.into(), value.into());
}

fn set_namespace_id(config: &mut toml::Table, id: Option<&str>) {
    let limiter = production(config)["ratelimits"][0].as_table_mut().unwrap();
    match id {
        Some(id) => limiter.insert("namespace_id".into(), id.into()),
        None => limiter.remove("namespace_id"),
    };
}

/// The example with every placeholder replaced by what a merchant would put there.
fn filled_in() -> toml::Table {
    let mut config = repository_config();
    let env = production(&mut config);
    env["kv_namespaces"][0]
        .as_table_mut()
        .unwrap()
        .insert("id".into(), "8b1a9953c4611296a827abf8c47804d7".into());
    env["d1_databases"][0].as_table_mut().unwrap().insert(
        "database_id".into(),
        "5d2f8c1e-3b7a-4e9d-8f60-1a2b3c4d5e6f".into(),
    );
    env["ratelimits"][0]
        .as_table_mut()
        .unwrap()
        .insert("namespace_id".into(), "4711".into());
    env.insert(
        "routes".into(),
        toml::Value::Array(vec![toml::Value::Table(
            [
                ("pattern".to_owned(), "payments.myshop.se".into()),
                ("custom_domain".to_owned(), true.into()),
            ]
            .into_iter()
            .collect(),
        )]),
    );
    for (name, value) in [
        ("PSP_BASE_URL", "https://api.psp-live.se"),
        ("PSP_MERCHANT_ID", "8f14e45fceea167a5a"),
        ("PSP_PAGE_TERMINAL_ID", "c9f0f895fb98ab9159"),
        ("PSP_MIT_TERMINAL_ID", "45c48cce2e2d7fbdea"),
        ("PUBLIC_BASE_URL", "https://payments.myshop.se"),
        ("ALLOWED_ORIGINS", "https://myshop.se,https://www.myshop.se"),
        ("ACCESS_TEAM_DOMAIN", "https://myshop.cloudflareaccess.com"),
        (
            "ACCESS_AUD",
            "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2",
        ),
        ("DASHBOARD_ADMINS", "ada@myshop.se"),
    ] {
        set_var(&mut config, name, value);
    }
    config
}

/// `filled_in()` with its ledger over `shards` databases (LEDGER_SHARDS), declaring the shard
/// bindings `declared` (1 for DB_1 ...) beside DB, each with an id of its own.
fn sharded(shards: usize, declared: &[usize]) -> toml::Table {
    let mut config = filled_in();
    set_var(&mut config, "LEDGER_SHARDS", &shards.to_string());
    let dbs = production(&mut config)["d1_databases"]
        .as_array_mut()
        .expect("d1_databases");
    let main = dbs[0].as_table().expect("DB").clone();
    for &k in declared {
        let mut db = main.clone();
        db.insert("binding".into(), format!("DB_{k}").into());
        db.insert(
            "database_name".into(),
            format!("recurring-edge-shard-{k}").into(),
        );
        db.insert(
            "database_id".into(),
            format!("5d2f8c1e-3b7a-4e9d-8f60-1a2b3c4d5e{k:02x}").into(),
        );
        dbs.push(toml::Value::Table(db));
    }
    config
}

/// Runs the check on a configuration: (passed, report).
fn check(config: &toml::Table, dir: &Path) -> (bool, String) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(root().join("scripts/predeploy-check.py"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("python3 runs the check");
    let _ = std::fs::remove_dir_all(dir);
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the check itself failed: {report}"
    );
    (out.status.success(), report)
}

fn scratch(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("deploy-check")
        .join(format!("{name}-{}", std::process::id()))
}

#[test]
fn the_repository_example_is_refused_with_every_placeholder_named() {
    let (passed, report) = check(&repository_config(), &scratch("example"));
    assert!(!passed, "{report}");
    for named in [
        "kv_namespaces TOKENS id",
        "d1_databases DB database_id",
        "PSP_BASE_URL: 'https://provider.invalid'",
        "PUBLIC_BASE_URL: 'https://payments.shop.example'",
        "ALLOWED_ORIGINS: 'https://shop.example'",
        "PSP_MERCHANT_ID",
        "PSP_PAGE_TERMINAL_ID",
        "PSP_MIT_TERMINAL_ID",
        "routes: 'payments.shop.example'",
        "ratelimits PUBLIC_RATE_LIMITER namespace_id: '1001' is the example's",
        "ACCESS_TEAM_DOMAIN",
        "ACCESS_AUD",
        "DASHBOARD_ADMINS",
    ] {
        assert!(report.contains(named), "{named} not named in:\n{report}");
    }
    assert!(
        !report.contains("assets"),
        "the example already keeps the demo out: {report}"
    );
}

#[test]
fn a_filled_in_production_environment_passes() {
    let (passed, report) = check(&filled_in(), &scratch("filled"));
    assert!(passed, "{report}");
}

#[test]
fn each_unsafe_setting_is_refused_on_its_own() {
    type Spoil = fn(&mut toml::Table);
    let cases: [(&str, Spoil, &str); 17] = [
        (
            "the sandbox's merchant id",
            |c| set_var(c, "PSP_MERCHANT_ID", "5a1e0f3c2b4d6e8f90"),
            "the local sandbox's id",
        ),
        (
            "a plain http provider",
            |c| set_var(c, "PSP_BASE_URL", "http://api.psp-live.se"),
            "not an https URL",
        ),
        (
            "the local sandbox as provider",
            |c| set_var(c, "PSP_BASE_URL", "https://127.0.0.1:8790"),
            "points at this machine",
        ),
        (
            "the test clock",
            |c| set_var(c, "TEST_CLOCK", "on"),
            "TEST_CLOCK: must be \"off\"",
        ),
        (
            "the demo routes",
            |c| set_var(c, "DEMO", "on"),
            "DEMO: must be \"off\"",
        ),
        (
            "the dashboard's development sign-in",
            |c| set_var(c, "DASHBOARD_DEV_LOGIN", "on"),
            "DASHBOARD_DEV_LOGIN: must be \"off\"",
        ),
        (
            "the example's Access team",
            |c| {
                set_var(
                    c,
                    "ACCESS_TEAM_DOMAIN",
                    "https://your-team.cloudflareaccess.com",
                )
            },
            "ACCESS_TEAM_DOMAIN",
        ),
        (
            "the demo storefront, inherited",
            |c| {
                production(c).remove("assets");
            },
            "inherits the demo storefront",
        ),
        (
            "a public URL no route serves",
            |c| set_var(c, "PUBLIC_BASE_URL", "https://pay.othershop.se"),
            "not one of the environment's routes",
        ),
        (
            "a made-up D1 id",
            |c| {
                production(c)["d1_databases"][0]
                    .as_table_mut()
                    .unwrap()
                    .insert("database_id".into(), "recurring-edge".into());
            },
            "is not a D1 database id",
        ),
        (
            "the example's rate limiter namespace",
            |c| set_namespace_id(c, Some("1001")),
            "namespace_id: '1001' is the example's",
        ),
        (
            "a rate limiter namespace that is not a number",
            |c| set_namespace_id(c, Some("public-rate-limiter")),
            "is not a rate limiter namespace id",
        ),
        (
            "a rate limiter without a namespace",
            |c| set_namespace_id(c, None),
            "namespace_id: not set",
        ),
        (
            "no rate limiter while RATE_LIMIT is on",
            |c| {
                production(c).remove("ratelimits");
            },
            "ratelimits: no PUBLIC_RATE_LIMITER",
        ),
        (
            "a shard count the worker refuses",
            |c| set_var(c, "LEDGER_SHARDS", "129"),
            "LEDGER_SHARDS: '129' is not a shard count",
        ),
        (
            "a shard not declared",
            |c| set_var(c, "LEDGER_SHARDS", "2"),
            "npx wrangler d1 create recurring-edge-shard-1",
        ),
        (
            "two shards in one database",
            |c| {
                *c = sharded(2, &[1]);
                let id = production(c)["d1_databases"][0]["database_id"].clone();
                production(c)["d1_databases"][1]
                    .as_table_mut()
                    .unwrap()
                    .insert("database_id".into(), id);
            },
            "d1_databases DB, DB_1: the same database",
        ),
    ];
    for (i, (what, spoil, expected)) in cases.into_iter().enumerate() {
        let mut config = filled_in();
        spoil(&mut config);
        let (passed, report) = check(&config, &scratch(&format!("case-{i}")));
        assert!(!passed, "{what} passed:\n{report}");
        assert!(report.contains(expected), "{what}: {report}");
    }
}

/// What a refusing Cloudflare makes wrangler print (its own words, as with a bogus
/// CLOUDFLARE_API_TOKEN), which `make deploy` must show as it is.
const AUTH_ERROR: &str = "\u{2718} [ERROR] A request to the Cloudflare API \
(/accounts/0123456789abcdef0123456789abcdef/d1/database) failed.\n\n  Invalid request headers \
[code: 6003]\n  \n  - Invalid format for Authorization header [code: 6111]\n\n";

/// The calls that change the account or the worker; none may come before every check passed.
const CHANGES: [&str; 5] = [
    "wrangler queues create",
    "wrangler r2 bucket create",
    "wrangler d1 migrations apply",
    "wrangler deploy --env",
    "wrangler rollback",
];

/// A copy of the project's scripts around a configuration, with the fake wrangler and curl first
/// on PATH and an account that has the configuration's D1 database, KV namespace and secrets
/// but no queue yet.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str, config: &toml::Table) -> Self {
        let dir = scratch(name);
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["scripts", "bin", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for entry in std::fs::read_dir(root().join("scripts")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                executable(&dir.join("scripts").join(path.file_name().unwrap()), &path);
            }
        }
        // The pinned tools are not what these tests are about, nor is installing them.
        std::fs::write(dir.join("scripts/bootstrap.sh"), "#!/usr/bin/env bash\n").unwrap();
        for fake in ["wrangler", "curl"] {
            executable(
                &dir.join("bin").join(fake),
                &root().join("tests/fixtures/deploy").join(fake),
            );
        }
        std::fs::write(dir.join("wrangler.toml"), toml::to_string(config).unwrap()).unwrap();
        std::fs::copy(
            root().join(".dev.vars.example"),
            dir.join(".dev.vars.example"),
        )
        .unwrap();

        let env = &config["env"]["production"];
        let d1: Vec<_> = env["d1_databases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::json!({"uuid": d["database_id"].as_str(), "name": d["database_name"].as_str()}))
            .collect();
        let kv: Vec<_> = env["kv_namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| serde_json::json!({"id": n["id"].as_str(), "title": n["binding"].as_str()}))
            .collect();
        let project = Project { dir };
        project.answer("d1.json", &d1);
        project.answer("kv.json", &kv);
        project.set_secrets(&[
            "PSP_API_KEY",
            "PSP_API_SECRET",
            "PSP_WEBHOOK_SECRET",
            "MERCHANT_API_KEY",
            "CUSTOMER_SESSION_SECRET",
        ]);
        project
    }

    fn answer(&self, file: &str, list: &[serde_json::Value]) {
        let text = serde_json::to_string_pretty(list).unwrap();
        std::fs::write(self.dir.join("state").join(file), text).unwrap();
    }

    fn set_secrets(&self, names: &[&str]) {
        let list: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "type": "secret_text"}))
            .collect();
        self.answer("secrets.json", &list);
    }

    fn set_queues(&self, names: &[&str]) {
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(self.dir.join("state/queues"), text).unwrap();
    }

    /// The wrangler calls whose arguments start with `on` ("" for all) fail with `stderr`.
    fn fail(&self, on: &str, stderr: &str) {
        let rule = serde_json::json!({"on": on, "stderr": stderr});
        std::fs::write(self.dir.join("state/fail.json"), rule.to_string()).unwrap();
    }

    /// `make TARGET ARGS...` in the copy; (succeeded, what it printed on stderr).
    fn make(&self, target: &str, args: &[&str]) -> (bool, String) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.dir.join("bin")];
        paths.extend(std::env::split_paths(&path));
        let out: Output = Command::new("make")
            .arg("-s")
            .arg("-f")
            .arg(root().join("Makefile"))
            .arg(target)
            .args(args)
            .current_dir(&self.dir)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("FAKE_WRANGLER_STATE", self.dir.join("state"))
            .env_remove("DEPLOY_ENV")
            .env_remove("VERSION")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .output()
            .expect("make runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stderr)
    }

    /// Every wrangler and curl call so far, in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("state/calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn changes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| CHANGES.iter().any(|change| c.starts_with(change)))
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies a script, executable whatever mode the checkout gave it.
fn executable(to: &Path, from: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn deploy_checks_and_creates_every_resource_before_it_changes_anything() {
    let project = Project::new("deploy", &filled_in());
    project.set_queues(&["recurring-edge-charges"]);
    let (passed, report) = project.make("deploy", &[]);
    assert!(passed, "{report}");
    assert_eq!(
        project.calls(),
        [
            "wrangler d1 list --json --env production",
            "wrangler kv namespace list --env production",
            "wrangler queues list --env production",
            "wrangler r2 bucket list",
            "wrangler secret list --env production --format json",
            "wrangler deploy --dry-run --env production",
            "wrangler queues create recurring-edge-charges-dlq --env production",
            "wrangler queues create recurring-edge-events --env production",
            "wrangler queues create recurring-edge-events-dlq --env production",
            "wrangler r2 bucket create recurring-edge-archive",
            "wrangler d1 migrations apply DB --remote --env production",
            "wrangler deploy --env production",
            "curl https://payments.myshop.se/health",
        ],
        "{report}"
    );
    assert!(
        report.contains(
            "created the queues: recurring-edge-charges-dlq, recurring-edge-events, recurring-edge-events-dlq"
        ),
        "{report}"
    );
    assert!(
        report.contains("deployed and healthy: https://payments.myshop.se"),
        "{report}"
    );

    assert!(
        report.contains("created the buckets: recurring-edge-archive"),
        "{report}"
    );

    // The second time every queue and bucket is there: nothing is created.
    std::fs::remove_file(project.dir.join("state/calls")).unwrap();
    let (passed, report) = project.make("deploy", &[]);
    assert!(passed, "{report}");
    assert!(report.contains("every queue is there"), "{report}");
    assert!(report.contains("every bucket is there"), "{report}");
    assert!(
        !project
            .calls()
            .iter()
            .any(|c| c.starts_with("wrangler queues create")
                || c.starts_with("wrangler r2 bucket create")),
        "{:?}",
        project.calls()
    );
}

#[test]
fn a_sharded_ledger_has_each_of_its_databases_checked_and_migrated_before_the_code() {
    let config = sharded(3, &[1, 2]);
    let (passed, report) = check(&config, &scratch("sharded-check"));
    assert!(passed, "{report}");

    let project = Project::new("sharded", &config);
    let (passed, report) = project.make("deploy", &[]);
    assert!(passed, "{report}");
    let calls = project.calls();
    let migrations: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("wrangler d1 migrations apply"))
        .collect();
    assert_eq!(
        migrations,
        [
            "wrangler d1 migrations apply DB --remote --env production",
            "wrangler d1 migrations apply DB_1 --remote --env production",
            "wrangler d1 migrations apply DB_2 --remote --env production",
        ],
        "{report}"
    );
    let deployed = calls
        .iter()
        .position(|c| c == "wrangler deploy --env production")
        .expect("deployed");
    let last_migration = calls
        .iter()
        .rposition(|c| c.starts_with("wrangler d1 migrations apply"))
        .unwrap();
    assert!(last_migration < deployed, "{calls:?}");

    // A shard's database missing from the account is named like DB's would be.
    let project = Project::new("sharded-not-in-account", &config);
    let d1: Vec<_> = config["env"]["production"]["d1_databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["binding"].as_str() != Some("DB_2"))
        .map(|d| serde_json::json!({"uuid": d["database_id"].as_str(), "name": d["database_name"].as_str()}))
        .collect();
    project.answer("d1.json", &d1);
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    for named in [
        "d1_databases DB_2",
        "npx wrangler d1 create recurring-edge-shard-2",
        "nothing was changed",
    ] {
        assert!(report.contains(named), "{named} not named in:\n{report}");
    }
    assert!(project.changes().is_empty(), "{:?}", project.calls());
}

#[test]
fn a_shard_not_declared_is_refused_with_the_command_that_creates_it_and_nothing_changes() {
    let project = Project::new("shard-missing", &sharded(3, &[1]));
    let before = std::fs::read_to_string(project.dir.join("wrangler.toml")).unwrap();
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    for named in [
        "LEDGER_SHARDS = '3' needs the bindings DB_2, not declared",
        "npx wrangler d1 create recurring-edge-shard-2",
    ] {
        assert!(report.contains(named), "{named} not named in:\n{report}");
    }
    assert!(
        !report.contains("recurring-edge-shard-1`"),
        "DB_1 is declared: {report}"
    );
    // Refused offline: wrangler was asked nothing, so nothing changed.
    assert!(project.calls().is_empty(), "{:?}", project.calls());
    assert_eq!(
        std::fs::read_to_string(project.dir.join("wrangler.toml")).unwrap(),
        before,
        "wrangler.toml is the user's to edit"
    );
}

#[test]
fn a_refused_login_stops_the_deployment_with_wranglers_own_error() {
    let project = Project::new("refused", &filled_in());
    project.fail("", AUTH_ERROR);
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    assert!(
        report.contains(AUTH_ERROR),
        "wrangler's error is not shown as it is:\n{report}"
    );
    assert!(
        !report.contains("secrets not set"),
        "a guess hides wrangler's error:\n{report}"
    );
    assert_eq!(
        project.calls(),
        ["wrangler d1 list --json --env production"],
        "{report}"
    );
}

#[test]
fn each_failing_wrangler_call_stops_the_deployment_before_what_follows() {
    for (i, step) in [
        "kv namespace list",
        "queues list",
        "r2 bucket list",
        "secret list",
        "deploy --dry-run",
        "queues create",
        "r2 bucket create",
        "d1 migrations apply",
        "deploy --env",
    ]
    .into_iter()
    .enumerate()
    {
        let project = Project::new(&format!("failing-{i}"), &filled_in());
        let error = format!("\u{2718} [ERROR] wrangler's own words about `{step}`\n");
        project.fail(step, &error);
        let (passed, report) = project.make("deploy", &[]);
        assert!(!passed, "{step}: {report}");
        assert!(report.contains(&error), "{step}: {report}");
        assert!(
            report.contains(&format!("`wrangler {step}")) && report.contains("failed"),
            "{step}: {report}"
        );
        let calls = project.calls();
        let last = calls.last().expect("wrangler was called");
        assert!(
            last.starts_with(&format!("wrangler {step}")),
            "{step}: something ran after the failing call: {calls:?}"
        );
        let applied = calls
            .iter()
            .any(|c| c.starts_with("wrangler d1 migrations"));
        let deployed = calls.iter().any(|c| c.starts_with("wrangler deploy --env"));
        assert_eq!(
            applied,
            matches!(step, "d1 migrations apply" | "deploy --env"),
            "{step}: {calls:?}"
        );
        assert_eq!(deployed, step == "deploy --env", "{step}: {calls:?}");
    }
}

#[test]
fn a_resource_missing_from_the_account_is_named_with_the_command_that_creates_it() {
    let project = Project::new("missing-resources", &filled_in());
    project.answer("d1.json", &[]);
    project.answer(
        "kv.json",
        &[serde_json::json!({"id": "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", "title": "OTHER"})],
    );
    let before = std::fs::read_to_string(project.dir.join("wrangler.toml")).unwrap();
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    for named in [
        "the D1 database '5d2f8c1e-3b7a-4e9d-8f60-1a2b3c4d5e6f'",
        "npx wrangler d1 create recurring-edge",
        "the KV namespace '8b1a9953c4611296a827abf8c47804d7'",
        "npx wrangler kv namespace create TOKENS",
        "nothing was changed",
    ] {
        assert!(report.contains(named), "{named} not named in:\n{report}");
    }
    assert!(project.changes().is_empty(), "{:?}", project.calls());
    assert_eq!(
        std::fs::read_to_string(project.dir.join("wrangler.toml")).unwrap(),
        before,
        "wrangler.toml is the user's to edit"
    );
}

#[test]
fn a_secret_not_set_is_named_and_nothing_changes() {
    let mut config = filled_in();
    set_var(
        &mut config,
        "MERCHANT_WEBHOOK_URL",
        "https://myshop.se/webhooks",
    );
    let project = Project::new("missing-secret", &config);
    project.set_secrets(&["PSP_API_KEY", "PSP_API_SECRET", "PSP_WEBHOOK_SECRET"]);
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    for named in [
        "secrets not set",
        "MERCHANT_API_KEY",
        "CUSTOMER_SESSION_SECRET",
        // Needed once events are delivered to the merchant.
        "MERCHANT_WEBHOOK_SECRET",
    ] {
        assert!(report.contains(named), "{named} not named in:\n{report}");
    }
    assert!(!report.contains("  PSP_API_KEY"), "{report}");
    assert!(project.changes().is_empty(), "{:?}", project.calls());
}

#[test]
fn the_example_configuration_is_refused_before_wrangler_is_asked_anything() {
    let project = Project::new("example", &repository_config());
    let (passed, report) = project.make("deploy", &[]);
    assert!(!passed, "{report}");
    assert!(
        report.contains("namespace_id: '1001' is the example's"),
        "{report}"
    );
    assert!(project.calls().is_empty(), "{:?}", project.calls());
}

#[test]
fn rollback_goes_back_checks_health_and_says_what_it_cannot_undo() {
    let project = Project::new("rollback", &filled_in());
    let (passed, report) = project.make("rollback", &[]);
    assert!(passed, "{report}");
    assert_eq!(
        project.calls(),
        [
            "wrangler rollback --env production -m make rollback",
            "curl https://payments.myshop.se/health",
        ]
    );
    for said in [
        "cannot undo",
        "D1 migrations",
        "KV vault",
        "a secret changed since that version",
        "npx wrangler secret put NAME --env production",
    ] {
        assert!(report.contains(said), "{said} not said in:\n{report}");
    }

    let project = Project::new("rollback-version", &filled_in());
    let version = "6f1c2e3d-4b5a-4978-8a6b-5c4d3e2f1a0b";
    let (passed, report) = project.make("rollback", &[&format!("VERSION={version}")]);
    assert!(passed, "{report}");
    assert_eq!(
        project.calls()[0],
        format!("wrangler rollback {version} --env production -m make rollback to {version}")
    );
}

#[test]
fn a_failed_rollback_shows_wranglers_error_and_checks_nothing_after() {
    let project = Project::new("rollback-refused", &filled_in());
    project.fail("rollback", AUTH_ERROR);
    let (passed, report) = project.make("rollback", &[]);
    assert!(!passed, "{report}");
    assert!(report.contains(AUTH_ERROR), "{report}");
    assert_eq!(
        project.calls(),
        ["wrangler rollback --env production -m make rollback"]
    );
}
