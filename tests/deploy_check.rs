//! The pre-deploy check (`scripts/predeploy-check.py`, run by `make deploy`): it refuses the
//! repository's own production example, naming every placeholder, and passes a filled-in one.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let cases: [(&str, Spoil, &str); 10] = [
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
    ];
    for (i, (what, spoil, expected)) in cases.into_iter().enumerate() {
        let mut config = filled_in();
        spoil(&mut config);
        let (passed, report) = check(&config, &scratch(&format!("case-{i}")));
        assert!(!passed, "{what} passed:\n{report}");
        assert!(report.contains(expected), "{what}: {report}");
    }
}
