//! `make listen` and `make trigger` (`scripts/listen.py`, `scripts/trigger.py`): every event
//! type the worker writes is produced by a real flow against the stack, and the listener
//! forwards each new event once, signed as the worker signs its own deliveries, with the secret
//! it printed; nothing from before it started. A forward that fails is given up after its
//! retries, and the next event still goes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flows::*;
use crate::receiver::{self, Mode, Receiver};
use crate::stack::{MERCHANT_KEY, Stack, free_port, root};

/// The Python interpreter itself: a launcher in front of it (a version manager's shim) would
/// take a signal meant for the listener and leave the listener running.
fn python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python3 -c failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}

/// The event types the worker writes, as `src/api/events.rs` lists them.
fn worker_types() -> Vec<String> {
    let source = std::fs::read_to_string(root().join("src/api/events.rs")).unwrap();
    let list = source.split_once("pub const TYPES").unwrap().1;
    let list = &list[..list.find("];").unwrap()];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A running `scripts/listen.py`: what it printed so far, line by line. Stopped (killed) when
/// dropped, a failed assertion included.
struct Listener {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    fn start(python: &Path, args: &[&str]) -> Listener {
        let mut child = Command::new(python)
            .arg(script("listen.py"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("scripts/listen.py starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        Listener {
            child: Some(child),
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line printed that `matches`, waited for.
    fn wait_line(&self, secs: u64, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        eventually(secs, what, || {
            found = self.lines().into_iter().find(|l| matches(l));
            found.is_some()
        });
        found.unwrap()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, as a terminal's close or a process manager would send, then its exit status.
    fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the listener runs");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the listener did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything it wrote on stderr (complete once it stopped).
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `scripts/trigger.py` for `kind` against the stack; what it printed, and the ids of
/// the events of that type it says it caused.
fn trigger(python: &Path, s: &Stack, kind: &str) -> (String, Vec<String>) {
    let dev_vars = s.dir().join(".dev.vars");
    let out = Command::new(python)
        .arg(script("trigger.py"))
        .arg(kind)
        .args(["--worker", &s.worker_url, "--sandbox", &s.sandbox_url])
        .arg("--dev-vars")
        .arg(&dev_vars)
        .args(["--timeout", "120"])
        .stdin(Stdio::null())
        .output()
        .expect("scripts/trigger.py runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "trigger.py {kind} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let prefix = format!("Caused {kind} ");
    let ids: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|id| id.trim().to_owned())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| id.starts_with("evt_")),
        "trigger.py {kind} named no event:\n{stdout}"
    );
    (format!("{stdout}{stderr}"), ids)
}

#[test]
fn listen_forwards_each_event_every_trigger_makes_once_signed_with_its_secret() {
    let s = Stack::start();
    let r = Receiver::start();
    let python = python();
    let dev_vars = s.dir().join(".dev.vars");
    let dev_vars = dev_vars.to_str().unwrap();
    let secret_file = s.dir().join("listen-secret");
    let secret_file = secret_file.to_str().unwrap();

    // What happened before the listener started is not forwarded.
    subscribe(&s, "before-listen", "basic-monthly", APPROVE);
    let mut before = BTreeSet::new();
    eventually(20, "the first customer's events in the feed", || {
        before = event_feed(&s, 100)
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        before.len() >= 4
    });

    // A URL it cannot forward to is refused at once; a worker that is not running is waited
    // for, and said so.
    let refused = Command::new(&python)
        .arg(script("listen.py"))
        .args(["--forward-to", "ftp://127.0.0.1/hooks"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--forward-to must be an http"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let mut waiting = Listener::start(
        &python,
        &[
            "--forward-to",
            &r.url,
            "--worker",
            &nobody,
            "--dev-vars",
            dev_vars,
            "--secret-file",
            secret_file,
        ],
    );
    let said = waiting.wait_line(30, "the listener to say the worker is down", |l| {
        l.contains("Cannot reach the worker")
    });
    assert!(
        said.contains(&nobody) && said.contains("make dev"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.running(), "it keeps waiting for the worker");
    drop(waiting);

    let mut listener = Listener::start(
        &python,
        &[
            "--forward-to",
            &r.url,
            "--worker",
            &s.worker_url,
            "--dev-vars",
            dev_vars,
            "--secret-file",
            secret_file,
        ],
    );
    let ready = listener.wait_line(60, "the listener to be ready", |l| l.starts_with("Ready."));
    assert!(ready.contains(&r.url), "{ready}");
    let secret = ready
        .rsplit(' ')
        .next()
        .filter(|s| s.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no secret on the ready line: {ready}"))
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(secret_file).unwrap().trim(),
        secret,
        "the secret is kept in its file"
    );
    let mode = std::fs::metadata(secret_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the secret file");

    // trigger.py knows every type the worker writes, and makes each one.
    let list = Command::new(&python)
        .arg(script("trigger.py"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(list.status.success());
    let listed: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let types: Vec<String> = worker_types();
    assert_eq!(types.len(), 21, "{types:?}");
    assert_eq!(
        listed,
        types.iter().cloned().collect::<BTreeSet<_>>(),
        "trigger.py --list"
    );
    let mut caused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut outputs = Vec::new();
    for kind in &types {
        let (output, ids) = trigger(&python, &s, kind);
        outputs.push(output);
        caused.insert(kind.clone(), ids);
    }

    // Every event of the feed since the listener started reached the receiver.
    let mut made: Vec<Value> = Vec::new();
    eventually(120, "every new event to be forwarded", || {
        made = event_feed(&s, 100)
            .into_iter()
            .filter(|e| !before.contains(e["id"].as_str().unwrap()))
            .collect();
        let accepted = r.accepted_ids();
        made.iter()
            .all(|e| accepted.iter().any(|id| e["id"] == id.as_str()))
    });
    let deliveries = r.deliveries();
    let now = receiver::now_s();
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for d in &deliveries {
        *times.entry(d.id.clone()).or_default() += 1;
        // Signed with the secret it printed, as the worker signs its own deliveries; the body is
        // the feed's event.
        receiver::verify(&secret, d, now)
            .unwrap_or_else(|e| panic!("{} does not verify: {e:?}", d.id));
        let headers = [
            ("webhook-id".to_owned(), d.id.clone()),
            ("webhook-timestamp".to_owned(), d.timestamp.clone()),
            ("webhook-signature".to_owned(), d.signature.clone()),
        ];
        crate::openapi::validate_delivery(&headers, &d.body);
        let in_feed = made
            .iter()
            .find(|e| e["id"] == d.id.as_str())
            .unwrap_or_else(|| panic!("{} was forwarded but is not a new event of the feed", d.id));
        assert_eq!(&d.json(), in_feed, "a forwarded body is the feed's event");
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "forwarded more than once: {twice:?}");
    assert!(
        deliveries.iter().all(|d| !before.contains(&d.id)),
        "an event from before the listener started was forwarded"
    );
    // Each type arrived, with the ids trigger.py printed; one line printed for each event.
    let lines = listener.lines();
    let got: BTreeSet<String> = deliveries
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    for (kind, ids) in &caused {
        assert!(got.contains(kind), "no {kind} forwarded");
        for id in ids {
            let d = deliveries
                .iter()
                .find(|d| &d.id == id)
                .unwrap_or_else(|| panic!("{kind} {id} was not forwarded"));
            assert_eq!(d.json()["type"], kind.as_str());
        }
    }
    for d in &deliveries {
        let line = format!(
            "--> {} {} <-- 200",
            d.json()["type"].as_str().unwrap(),
            d.id
        );
        assert!(lines.contains(&line), "no line `{line}` in {lines:#?}");
    }

    // SIGTERM stops it quietly.
    let status = listener.stop();
    assert!(status.success(), "{status}");
    assert_eq!(listener.stderr(), "", "it said nothing on stderr");

    // A second run keeps the secret; with --events it forwards those types only. A forward the
    // endpoint refuses is tried four times, given up, and the next event goes.
    r.set_mode(Mode::Fail);
    let already = r.deliveries().len();
    let again = Listener::start(
        &python,
        &[
            "--forward-to",
            &r.url,
            "--worker",
            &s.worker_url,
            "--dev-vars",
            dev_vars,
            "--secret-file",
            secret_file,
            "--events",
            "subscription.paused",
        ],
    );
    let ready = again.wait_line(60, "the second listener to be ready", |l| {
        l.starts_with("Ready.")
    });
    assert!(ready.ends_with(&secret), "the same secret: {ready}");
    let (output, refused) = trigger(&python, &s, "subscription.paused");
    outputs.push(output);
    let gave_up = again.wait_line(60, "the listener to give up", |l| {
        l.contains(&refused[0]) && l.contains("gave up after 4 attempts")
    });
    assert!(gave_up.contains("<-- 500"), "{gave_up}");
    let failing: Vec<_> = r.deliveries()[already..].to_vec();
    assert_eq!(failing.len(), 4, "one try and three retries: {failing:#?}");
    assert!(failing.iter().all(|d| d.id == refused[0] && !d.accepted));
    r.set_mode(Mode::Accept);
    let (output, next) = trigger(&python, &s, "subscription.paused");
    outputs.push(output);
    eventually(30, "the next event to be forwarded", || {
        r.accepted_ids().contains(&next[0])
    });
    let later: Vec<_> = r.deliveries()[already..].to_vec();
    assert!(
        later
            .iter()
            .all(|d| d.json()["type"] == "subscription.paused"),
        "--events lets other types by"
    );
    drop(again);

    // Neither script shows the merchant key or a card token.
    for line in lines.iter().chain(outputs.iter()) {
        assert!(!line.contains(MERCHANT_KEY), "the merchant key in {line}");
    }
    assert_no_token_leak(&s, &outputs);
}
