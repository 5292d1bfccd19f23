//! One local stack per test: a PSP sandbox and `wrangler dev` running the release build of the
//! worker, each on a free loopback port, with a fresh D1/KV state. Everything is stopped when
//! the stack is dropped, including after a failed assertion; the logs are printed then.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::Client;

pub const MERCHANT_KEY: &str = "e2e-merchant-key";
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";
pub const API_KEY: &str = "e2e-api-key";
pub const API_SECRET: &str = "e2e-api-secret";
pub const SESSION_SECRET: &str = "e2e-customer-session-secret-0123456789abcdef";
pub const ORIGIN: &str = "http://shop.test";
/// Requests per minute the rate limiter allows each customer or address, unless a test asks
/// for another limit: high enough that no test meets it by accident.
pub const DEFAULT_RATE_LIMIT: u32 = 100_000;

// The catalog is the repository's own (`PLANS` in wrangler.toml): basic-monthly (9900, month),
// pro-yearly (99000, year), api-metered (4900 + 25 per unit, month), course (99999 in 3, 4 or
// 6 monthly installments), weekly (3000, week), team-trial (19900, month, 14 days free).

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The most databases the worker spreads its ledger over (`MAX_SHARDS` of the core crate).
const MAX_LEDGER_SHARDS: usize = 128;

/// The ledger's D1 databases every stack runs with, unless a test sets `LEDGER_SHARDS` itself:
/// `E2E_LEDGER_SHARDS` (1 to 128), or 1. With more than one, each stack declares `DB_1` ..
/// beside `DB`, each migrated, and sets `LEDGER_SHARDS`, so the whole suite runs against a
/// sharded ledger (`E2E_LEDGER_SHARDS=4 cargo nextest run --test e2e`).
pub fn ledger_shards() -> usize {
    let Some(value) = std::env::var_os("E2E_LEDGER_SHARDS") else {
        return 1;
    };
    let value = value.to_string_lossy();
    if value.trim().is_empty() {
        return 1;
    }
    // A typo must not quietly run the suite on one database.
    shard_count(&value).unwrap_or_else(|| {
        panic!("E2E_LEDGER_SHARDS must be an integer from 1 to {MAX_LEDGER_SHARDS}, not {value:?}")
    })
}

/// The shard count `value` names, if the worker would take it.
fn shard_count(value: &str) -> Option<usize> {
    value
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_LEDGER_SHARDS).contains(n))
}

/// The bindings of a ledger of `shards` databases: `DB` (shard 0), then `DB_1` ..
fn ledger_bindings(shards: usize) -> Vec<String> {
    std::iter::once("DB".to_owned())
        .chain((1..shards).map(|k| format!("DB_{k}")))
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Where stacks keep their state: `E2E_DIR`, or `target/e2e`. The benchmark uses a tmpfs,
/// so it measures the worker rather than this machine's disk flushes.
fn e2e_dir() -> PathBuf {
    std::env::var_os("E2E_DIR").map_or_else(|| target_dir().join("e2e"), PathBuf::from)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Settings a test may change before the stack starts.
#[derive(Default)]
pub struct Options {
    /// Extra worker vars, e.g. ("PSP_TIMEOUT_MS", "800").
    pub vars: Vec<(&'static str, String)>,
    pub sandbox_args: Vec<String>,
    /// Worker secrets in place of (or beside) the defaults, e.g. a session key pair.
    pub secrets: Vec<(&'static str, String)>,
    /// Requests per minute per customer or address (default [`DEFAULT_RATE_LIMIT`]).
    pub rate_limit: Option<u32>,
    /// SQL run against the stack's fresh ledger before the worker starts: rows in numbers no
    /// test could create through the API in its time (in `DB`), or a trigger.
    pub seed_sql: Option<String>,
    /// Runs `seed_sql` in every database of a sharded ledger, not only `DB`: a trigger must be
    /// where the customer it is about lives.
    pub seed_every_shard: bool,
    /// The charges queue consumer's `max_retries` in place of wrangler.toml's (0: a message
    /// that fails once goes to the dead-letter queue).
    pub charges_max_retries: Option<i64>,
}

/// What the test helpers remember about a stack: sessions minted per customer, and whose
/// checkout is whose (the API only shows a checkout to its own customer).
#[derive(Default)]
pub struct Memo {
    pub sessions: HashMap<String, String>,
    pub checkout_owners: HashMap<String, String>,
}

pub struct Stack {
    pub worker: Client,
    pub sandbox: Client,
    pub worker_url: String,
    pub sandbox_url: String,
    dir: PathBuf,
    wrangler: Option<Child>,
    sandbox_process: Option<Child>,
    worker_port: u16,
    /// Once the worker has run, its address stays: the provider's orders call it back there.
    worker_started: bool,
    sandbox_port: u16,
    options_vars: Vec<(&'static str, String)>,
    sandbox_args: Vec<String>,
    secrets: Vec<(&'static str, String)>,
    rate_limit: u32,
    charges_max_retries: Option<i64>,
    /// The ledger's databases (`LEDGER_SHARDS`): each has its binding in the configuration and
    /// its schema in the state.
    shards: usize,
    pub memo: Mutex<Memo>,
}

static STACKS: AtomicU32 = AtomicU32::new(0);

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Stack {
        let n = STACKS.fetch_add(1, Ordering::SeqCst);
        let dir = e2e_dir().join(format!("stack-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("stack dir");
        // A test that sets LEDGER_SHARDS gets that many databases; one that sets a value the
        // worker refuses (to see it refused) gets the run's count.
        let shards = options
            .vars
            .iter()
            .rev()
            .find(|(name, _)| *name == "LEDGER_SHARDS")
            .and_then(|(_, value)| shard_count(value))
            .unwrap_or_else(ledger_shards);
        copy_dir(&migrated_template(shards), &dir.join("state"));
        if let Some(sql) = &options.seed_sql {
            seed(&dir, sql, shards, options.seed_every_shard);
        }

        let mut stack = Stack {
            worker: Client::new(String::new()),
            sandbox: Client::unchecked(String::new()),
            worker_url: String::new(),
            sandbox_url: String::new(),
            dir,
            wrangler: None,
            sandbox_process: None,
            worker_port: free_port(),
            worker_started: false,
            sandbox_port: 0,
            options_vars: options.vars,
            sandbox_args: options.sandbox_args,
            secrets: options.secrets,
            rate_limit: options.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT),
            charges_max_retries: options.charges_max_retries,
            shards,
            memo: Mutex::new(Memo::default()),
        };
        stack.start_watchdog();
        stack.start_sandbox();
        stack.start_worker();
        stack
    }

    /// A test killed outright (a timeout's SIGKILL) runs no `Drop`: a small shell outside the
    /// test's process watches it and then stops the process groups the stack left running.
    fn start_watchdog(&self) {
        self.record_groups();
        let script = r#"while kill -0 "$1" 2>/dev/null && [ -e "$2" ]; do sleep 1; done
[ -e "$2" ] && for g in $(cat "$2"); do env kill -KILL -- "-$g" 2>/dev/null; done
exit 0"#;
        let _ = Command::new("sh")
            .args(["-c", script, "watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.groups_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
    }

    fn groups_file(&self) -> PathBuf {
        self.dir.join("process-groups")
    }

    /// Tells the watchdog which process groups are ours now (each child leads its own).
    fn record_groups(&self) {
        let groups: Vec<String> = [&self.wrangler, &self.sandbox_process]
            .into_iter()
            .flatten()
            .map(|c| c.id().to_string())
            .collect();
        let _ = fs::write(self.groups_file(), groups.join("\n"));
    }

    fn start_sandbox(&mut self) {
        let bin = sandbox_binary();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sandbox.log"))
            .expect("sandbox log");
        let port = if self.sandbox_port == 0 {
            0
        } else {
            self.sandbox_port
        };
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .args(["--api-key", API_KEY, "--api-secret", API_SECRET])
            .args(["--webhook-secret", WEBHOOK_SECRET])
            // No state file: a stack's sandbox lives as long as the stack, and writing its whole
            // ledger after every change would make the provider, not the worker, what a test or
            // the benchmark measures.
            .args(&self.sandbox_args)
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("sandbox stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || Instant::now() > deadline {
                panic!(
                    "the sandbox did not announce its address; see {}",
                    self.dir.display()
                );
            }
            if let Some(rest) = line.trim().strip_prefix("psp-sandbox listening on ") {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stdout so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = reader.read_to_string(&mut sink);
        });
        self.sandbox_port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.sandbox_url = url.clone();
        self.sandbox = Client::unchecked(url);
        self.sandbox_process = Some(child);
        self.record_groups();
    }

    fn start_worker(&mut self) {
        for attempt in 1..=3 {
            let log_before = self.worker_log().len();
            match self.try_start_worker() {
                Ok(()) => {
                    self.worker_started = true;
                    return;
                }
                // Ports are picked free and bound a moment later; on a machine running other
                // stacks, another process may take one in between. Pick again (a restart keeps
                // its address, which the provider's orders call back).
                Err(status)
                    if attempt < 3
                        && self.worker_log()[log_before..].contains("Address already in use") =>
                {
                    eprintln!("wrangler dev exited ({status}) on a port taken meanwhile; retrying");
                    if !self.worker_started {
                        self.worker_port = free_port();
                    }
                }
                Err(status) => panic!("wrangler dev exited ({status}):\n{}", self.worker_log()),
            }
        }
    }

    fn try_start_worker(&mut self) -> Result<(), std::process::ExitStatus> {
        let config = self.dir.join("wrangler.toml");
        write_config(
            &config,
            &self.sandbox_url,
            self.worker_port,
            &self.options_vars,
            self.rate_limit,
            self.charges_max_retries,
            self.shards,
        );
        let mut secrets: Vec<(&str, String)> = vec![
            ("PSP_API_KEY", API_KEY.into()),
            ("PSP_API_SECRET", API_SECRET.into()),
            ("PSP_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("MERCHANT_API_KEY", MERCHANT_KEY.into()),
            ("CUSTOMER_SESSION_SECRET", SESSION_SECRET.into()),
        ];
        for (name, value) in &self.secrets {
            secrets.retain(|(n, _)| n != name);
            secrets.push((name, value.clone()));
        }
        let dev_vars: String = secrets
            .iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect();
        fs::write(self.dir.join(".dev.vars"), dev_vars).expect(".dev.vars");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wrangler.log"))
            .expect("wrangler log");
        let wrangler = root().join("node_modules/.bin/wrangler");
        assert!(
            wrangler.exists(),
            "wrangler is not installed; run `make test` (or scripts/bootstrap.sh) first"
        );
        let child = Command::new(wrangler)
            .current_dir(&self.dir)
            .args(["dev", "--config"])
            .arg(&config)
            .args([
                "--local",
                "--ip",
                "127.0.0.1",
                "--port",
                &self.worker_port.to_string(),
            ])
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--persist-to")
            .arg(self.dir.join("state"))
            .args([
                "--test-scheduled",
                "--show-interactive-dev-session=false",
                "--log-level",
                "log",
            ])
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", self.dir.join("wrangler-debug"))
            // No DevTools session: wrangler then does not attach its inspector proxy, which
            // otherwise receives four protocol messages for every subrequest (D1 included) and
            // one per log line, and hands each to wrangler's process for its debug log. That
            // traffic cost more CPU than the worker itself; the worker's own log lines still
            // reach the log through workerd's structured output.
            .env("VSCODE_INSPECTOR_OPTIONS", "{}")
            .env("NO_COLOR", "1")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("wrangler dev starts");
        self.wrangler = Some(child);
        self.record_groups();
        self.worker_url = format!("http://127.0.0.1:{}", self.worker_port);
        self.worker = Client::new(self.worker_url.clone());
        let deadline = Instant::now() + Duration::from_secs(90);
        // Not checked against openapi.json: until wrangler holds the port, whatever else took
        // it meanwhile (another suite's sandbox, say) may answer, and wrangler then exits.
        let probe = Client::unchecked(self.worker_url.clone());
        loop {
            // Ready once it answers: 200, or 503 when a test starts it misconfigured on purpose.
            if probe
                .try_get("/health")
                .is_ok_and(|r| r.status == 200 || r.status == 503)
            {
                return Ok(());
            }
            if let Some(status) = self
                .wrangler
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.wrangler = None;
                return Err(status);
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not get ready:\n{}",
                self.worker_log()
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Kills the worker as a crash would (SIGKILL, mid-request if one is running).
    pub fn kill_worker(&mut self) {
        if let Some(child) = self.wrangler.take() {
            kill_group(child, "KILL");
        }
        self.record_groups();
    }

    /// Starts the worker again on the same port and state, as after a crash.
    pub fn restart_worker(&mut self) {
        self.kill_worker();
        self.start_worker();
    }

    /// Restarts the worker with other secrets (a key rotation), on the same port and state.
    pub fn restart_with_secrets(&mut self, secrets: Vec<(&'static str, String)>) {
        self.secrets = secrets;
        self.restart_worker();
    }

    pub fn worker_log(&self) -> String {
        fs::read_to_string(self.dir.join("wrangler.log")).unwrap_or_default()
    }

    /// The worker's structured log lines with this message (one JSON object per line), oldest
    /// first.
    pub fn logged(&self, msg: &str) -> Vec<Value> {
        self.worker_log()
            .lines()
            .filter(|line| line.starts_with('{'))
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["msg"] == msg)
            .collect()
    }

    pub fn sandbox_log(&self) -> String {
        fs::read_to_string(self.dir.join("sandbox.log")).unwrap_or_default()
    }

    /// The sandbox's full ledger: orders, payments, tokens, per-token totals.
    pub fn ledger(&self) -> Value {
        let r = self.sandbox.get("/_sandbox/ledger");
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// The stack's directory: the worker's configuration (`wrangler.toml`), its local D1 and KV
    /// state (`state`) and the logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the worker (SIGTERM, as Ctrl-C on `make dev`); the sandbox keeps running.
    pub fn stop_worker(&mut self) {
        if let Some(child) = self.wrangler.take() {
            kill_group(child, "TERM");
        }
        self.record_groups();
    }

    /// Replaces the worker's local D1 and KV state with a fresh one (the migrations applied, no
    /// rows, no keys), as `make clean` then `make dev` would. The worker must be stopped.
    pub fn wipe_state(&mut self) {
        assert!(
            self.wrangler.is_none(),
            "stop the worker before wiping its state"
        );
        let state = self.dir.join("state");
        fs::remove_dir_all(&state).expect("remove the local state");
        copy_dir(&migrated_template(self.shards), &state);
    }

    /// Starts the worker again after [`Stack::stop_worker`], on the same port and state.
    pub fn start_worker_again(&mut self) {
        assert!(self.wrangler.is_none(), "the worker is running");
        self.start_worker();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- wrangler log ({}) ----\n{}",
                self.dir.display(),
                tail(&self.worker_log(), 200)
            );
            eprintln!("---- sandbox log ----\n{}", tail(&self.sandbox_log(), 80));
        }
        // Stopped here: the watchdog stands down, and never signals a group id reused later.
        let _ = fs::remove_file(self.groups_file());
        if let Some(child) = self.wrangler.take() {
            kill_group(child, "TERM");
        }
        if let Some(child) = self.sandbox_process.take() {
            kill_group(child, "TERM");
        }
        // E2E_KEEP=1 keeps every stack's directory (logs, local D1) for a look afterwards.
        if !std::thread::panicking() && std::env::var_os("E2E_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops a process and everything it started (wrangler runs workerd as a child).
fn kill_group(mut child: Child, signal: &str) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &group])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

fn sandbox_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PSP_SANDBOX_BIN") {
        return PathBuf::from(bin);
    }
    // `make test` builds the debug one (its dependencies are the tests' own); `make dev` the
    // release one. The newer is the one that matches the sources.
    let newest = ["release", "debug"]
        .into_iter()
        .map(|profile| target_dir().join(profile).join("psp-sandbox"))
        .filter_map(|bin| Some((fs::metadata(&bin).ok()?.modified().ok()?, bin)))
        .max();
    if let Some((_, bin)) = newest {
        return bin;
    }
    panic!(
        "psp-sandbox is not built; run `make test` (it builds it) or `cargo build -p psp-sandbox`"
    );
}

/// The repository's wrangler.toml, pointed at this stack: absolute paths, no build step (the
/// test run builds the worker once), the sandbox's URL, test settings, and the ledger's
/// `shards` databases.
fn write_config(
    path: &Path,
    sandbox_url: &str,
    worker_port: u16,
    extra: &[(&'static str, String)],
    rate_limit: u32,
    charges_max_retries: Option<i64>,
    shards: usize,
) {
    let root = root();
    assert!(
        root.join("build/worker/shim.mjs").exists(),
        "the worker is not built; run `make test` (it builds it once per run)"
    );
    let text = fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml");
    let mut config: toml::Table = text.parse().expect("wrangler.toml parses");
    config.remove("build");
    config.remove("env");
    config.insert("main".into(), abs(&root.join("build/worker/shim.mjs")));
    if let Some(assets) = config.get_mut("assets").and_then(|a| a.as_table_mut()) {
        assets.insert("directory".into(), abs(&root.join("public")));
    }
    if let Some(dbs) = config
        .get_mut("d1_databases")
        .and_then(|d| d.as_array_mut())
    {
        for db in dbs.iter_mut() {
            if let Some(db) = db.as_table_mut() {
                db.insert("migrations_dir".into(), abs(&root.join("migrations")));
            }
        }
        // Each further shard is DB's entry under its own binding, name and id: locally the id
        // names the database's file in the state, so each shard is a database of its own.
        let main = dbs
            .iter()
            .find(|db| db.get("binding").and_then(|b| b.as_str()) == Some("DB"))
            .and_then(|db| db.as_table())
            .cloned()
            .expect("wrangler.toml declares the DB database");
        for k in 1..shards {
            let mut db = main.clone();
            db.insert("binding".into(), format!("DB_{k}").into());
            db.insert(
                "database_name".into(),
                format!("recurring-edge-shard-{k}").into(),
            );
            db.insert(
                "database_id".into(),
                format!("00000000-0000-0000-0000-{k:012x}").into(),
            );
            dbs.push(toml::Value::Table(db));
        }
    }
    if let (Some(retries), Some(consumers)) = (
        charges_max_retries,
        config
            .get_mut("queues")
            .and_then(|q| q.get_mut("consumers"))
            .and_then(|c| c.as_array_mut()),
    ) {
        for consumer in consumers {
            if consumer.get("queue").and_then(|q| q.as_str()) == Some("recurring-edge-charges")
                && let Some(consumer) = consumer.as_table_mut()
            {
                consumer.insert("max_retries".into(), toml::Value::Integer(retries));
            }
        }
    }
    if let Some(limits) = config.get_mut("ratelimits").and_then(|r| r.as_array_mut()) {
        for limit in limits {
            if let Some(simple) = limit.get_mut("simple").and_then(|s| s.as_table_mut()) {
                simple.insert("limit".into(), toml::Value::Integer(i64::from(rate_limit)));
            }
        }
    }
    let vars = config
        .entry("vars")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[vars] is a table");
    let worker_url = format!("http://127.0.0.1:{worker_port}");
    // The tick drives due charges itself unless a test turns fan-out on: most tests read the
    // outcome right after their tick; the fan-out suite waits for the consumers.
    // Events and webhook records stay for ten years unless a test says otherwise: suites that
    // move business time by months read the whole feed (tests/e2e/retention.rs archives).
    let defaults: [(&str, String); 11] = [
        ("CHARGE_FANOUT", "off".into()),
        ("PSP_BASE_URL", sandbox_url.to_owned()),
        ("PUBLIC_BASE_URL", worker_url.clone()),
        ("ALLOWED_ORIGINS", format!("{ORIGIN},{worker_url}")),
        ("TEST_CLOCK", "on".into()),
        ("PSP_TIMEOUT_MS", "1500".into()),
        ("CHARGE_LEASE_SECONDS", "5".into()),
        ("TICK_MAX_CHARGES", "500".into()),
        ("TICK_MAX_SUBREQUESTS", "10000".into()),
        ("RETENTION_EVENTS_DAYS", "3650".into()),
        ("RETENTION_WEBHOOKS_DAYS", "3650".into()),
    ];
    for (name, value) in defaults {
        vars.insert(name.into(), toml::Value::String(value));
    }
    // One database is the worker's default: such a configuration stays as it always was.
    if shards > 1 {
        vars.insert("LEDGER_SHARDS".into(), shards.to_string().into());
    }
    for (name, value) in extra {
        vars.insert((*name).into(), toml::Value::String(value.clone()));
    }
    fs::write(path, toml::to_string(&config).expect("config serialises")).expect("write config");
}

fn abs(p: &Path) -> toml::Value {
    toml::Value::String(p.to_string_lossy().into_owned())
}

/// A state directory with the D1 migrations applied to each of the ledger's `shards`
/// databases, made once per test run and shard count and copied into each stack (applying
/// migrations takes seconds a database; copying takes milliseconds). Each count has its own:
/// a template of one database would leave the others without a schema.
fn migrated_template(shards: usize) -> PathBuf {
    static TEMPLATES: AtomicU32 = AtomicU32::new(0);
    let template = e2e_dir().join(if shards == 1 {
        "template".to_owned()
    } else {
        format!("template-shards{shards}")
    });
    if template.join(".ready").exists() {
        return template;
    }
    let staging = e2e_dir().join(format!(
        "staging-{}-{}",
        std::process::id(),
        TEMPLATES.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).expect("staging dir");
    let config = staging.join("wrangler.toml");
    write_config(
        &config,
        "http://127.0.0.1:9",
        9,
        &[],
        DEFAULT_RATE_LIMIT,
        None,
        shards,
    );
    migrate(&staging, &config, &staging.join("state"), shards);
    fs::write(staging.join("state/.ready"), "").expect("marker");
    // Another test process may have won the race; either template is as good.
    if fs::rename(staging.join("state"), &template).is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    let _ = fs::remove_dir_all(&staging);
    assert!(template.join(".ready").exists(), "template state missing");
    template
}

/// Applies the D1 migrations to each of the ledger's `shards` databases in `state`, as
/// `make dev` and `make deploy` do: every database starts empty and needs the whole schema.
fn migrate(dir: &Path, config: &Path, state: &Path, shards: usize) {
    for binding in ledger_bindings(shards) {
        local_d1(
            dir,
            config,
            state,
            &["migrations", "apply", &binding],
            &format!("migrations on {binding}"),
        );
    }
}

/// `wrangler d1 <args> --local` against the ledger in `state`, with `config`; panics with
/// wrangler's output, naming `what`, when it fails.
fn local_d1(dir: &Path, config: &Path, state: &Path, args: &[&str], what: &str) {
    let out = Command::new(root().join("node_modules/.bin/wrangler"))
        .current_dir(dir)
        .arg("d1")
        .args(args)
        .args(["--local", "--config"])
        .arg(config)
        .arg("--persist-to")
        .arg(state)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("WRANGLER_LOG_PATH", dir.join("logs"))
        .stdin(Stdio::null())
        .output()
        .expect("wrangler d1");
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `sql` against the local ledger's first database (`DB`) in `dir/state`, or with
/// `every_shard` against each of its databases, as `wrangler d1 execute` would in production.
fn seed(dir: &Path, sql: &str, shards: usize, every_shard: bool) {
    let file = dir.join("seed.sql");
    fs::write(&file, sql).expect("seed file");
    let config = dir.join("seed-wrangler.toml");
    write_config(
        &config,
        "http://127.0.0.1:9",
        9,
        &[],
        DEFAULT_RATE_LIMIT,
        None,
        shards,
    );
    let databases = if every_shard { shards } else { 1 };
    let file = file.to_string_lossy();
    for binding in ledger_bindings(databases) {
        local_d1(
            dir,
            &config,
            &dir.join("state"),
            &["execute", &binding, "--yes", "--file", &file],
            &format!("seeding {binding}"),
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

use std::os::unix::process::CommandExt;
