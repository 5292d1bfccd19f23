//! `make dev` as a developer meets it (`scripts/dev.sh`, on free ports and its own state
//! directory, with what `make test` built): it refuses a taken port at once and names it, it
//! prints its URLs only once `/health` answers, that answer includes the sandbox, whatever
//! stops it (SIGTERM to its process group or to it alone, Ctrl-C, a closed terminal, the sandbox
//! dying), once ready or while starting, leaves no process behind and its ports free, ten times
//! in a row, and extra allowed origins reach the worker.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

/// How long stopping may take: dev.sh gives its groups 5 s before SIGKILL, and wrangler and
/// workerd take their time on a busy 2-core machine.
const STOP_WITHIN: Duration = Duration::from_secs(60);

/// One run of dev.sh: its own ports, state directory and output file, in its own process group
/// (as a shell starts a foreground job).
struct Dev {
    dir: PathBuf,
    worker_port: u16,
    sandbox_port: u16,
    /// Explicit, so that two runs side by side never both fall back on 9229.
    inspector_port: u16,
    /// Settings beside the ports (ALLOWED_ORIGINS, ...).
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
}

impl Dev {
    fn new(name: &str) -> Dev {
        let base = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root().join("target"), PathBuf::from);
        let dir = base
            .join("dev-loop")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dev dir");
        Dev {
            dir,
            worker_port: free_port(),
            sandbox_port: free_port(),
            inspector_port: free_port(),
            env: Vec::new(),
            child: None,
        }
    }

    fn start(&mut self) {
        let output = fs::File::create(self.dir.join("output")).expect("output file");
        let child = Command::new("bash")
            .arg(root().join("scripts/dev.sh"))
            .current_dir(root())
            .env("WORKER_PORT", self.worker_port.to_string())
            .env("SANDBOX_PORT", self.sandbox_port.to_string())
            .env("INSPECTOR_PORT", self.inspector_port.to_string())
            .env("DEV_DIR", &self.dir)
            .env("DEV_SKIP_BUILD", "1")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("bash scripts/dev.sh starts");
        self.child = Some(child);
    }

    fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.join("output")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("started");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dev.sh did not exit within {within:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the banner, failing early if dev.sh exits first.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.output().contains("Storefront (demo)") {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "dev.sh exited ({status}) before it was ready:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dev.sh was not ready within 120 s:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Processes that still belong to this run: its process group, anything naming its state
    /// directory (sandbox, wrangler), anything on its ports.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let group = Command::new("pgrep")
            .args(["-g", &self.pid().to_string(), "-a"])
            .output()
            .expect("pgrep");
        found.extend(
            String::from_utf8_lossy(&group.stdout)
                .lines()
                .map(str::to_owned),
        );
        for pattern in [
            self.dir.to_string_lossy().into_owned(),
            format!("127.0.0.1:{}", self.worker_port),
        ] {
            let out = Command::new("pgrep")
                .args(["-a", "-f", "--", &pattern])
                .output()
                .expect("pgrep");
            found.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
        for port in [self.worker_port, self.sandbox_port, self.inspector_port] {
            if listening(port) {
                found.push(format!("something still listens on {port}"));
            }
        }
        found
    }

    fn assert_nothing_left(&self) {
        // Stopping is synchronous in dev.sh; the grace period covers only the kernel reaping,
        // which a busy machine can make slow.
        let deadline = Instant::now() + STOP_WITHIN;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes left behind: {left:#?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal_group(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.pid())])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn signal_script(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One plain HTTP/1.1 request (`head`: the request line and any headers, without Host and
/// Connection): the status, the response's head and its body.
fn request(port: u16, head: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{head}\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map_or((response.clone(), String::new()), |(h, b)| {
            (h.to_owned(), b.to_owned())
        });
    (status, head, body)
}

/// A plain GET: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let (status, _, body) = request(port, &format!("GET {path} HTTP/1.1"));
    (status, body)
}

#[test]
fn a_taken_port_stops_make_dev_at_once_and_names_it() {
    for taken in ["WORKER_PORT", "SANDBOX_PORT"] {
        let mut dev = Dev::new(&format!("taken-{}", taken.to_lowercase()));
        let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = holder.local_addr().expect("addr").port();
        if taken == "WORKER_PORT" {
            dev.worker_port = port;
        } else {
            dev.sandbox_port = port;
        }
        dev.start();
        let status = dev.wait_exit(STOP_WITHIN);
        let output = dev.output();
        assert_eq!(status.code(), Some(1), "{output}");
        // Refused before starting anything: nothing was written to its state directory (the
        // generated configuration, the local ledger, the sandbox's log and state come first).
        let written: Vec<String> = fs::read_dir(&dev.dir)
            .expect("dev dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name != "output")
            .collect();
        assert!(written.is_empty(), "{written:?}\n{output}");
        for started in [
            "building the worker",
            "applying D1 migrations",
            "starting the worker",
        ] {
            assert!(!output.contains(started), "{output}");
        }
        assert!(output.contains(&format!("port {port}")), "{output}");
        assert!(
            output.contains(&format!("{taken}=<port> make dev")),
            "{output}"
        );
        assert!(!output.contains("Storefront"), "no banner: {output}");
        drop(holder);
        dev.assert_nothing_left();
    }
}

/// How a stop reaches `make dev`.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    CtrlC,
    /// `kill -TERM -- -<pgid>`, as a process manager or a test harness stops a job.
    TermGroup,
    /// `kill <pid>` of the script alone.
    TermScript,
    /// SIGINT to the script alone.
    IntScript,
    /// The terminal closed.
    HupGroup,
}

#[test]
fn ten_stops_in_a_row_each_stop_everything_and_free_the_ports() {
    // The same ports and state each time, as a developer restarts `make dev`: a start fails at
    // once if the previous stop left anything on a port. Half the stops come once it is ready,
    // half in the middle of starting (migrations, the sandbox, wrangler coming up), where a
    // child between fork and its own process group could miss a signal.
    let plan = [
        (Stop::TermGroup, None),
        (Stop::CtrlC, None),
        (Stop::TermScript, Some(300)),
        (Stop::CtrlC, Some(1500)),
        (Stop::IntScript, None),
        (Stop::TermGroup, Some(800)),
        (Stop::HupGroup, None),
        (Stop::TermScript, Some(3000)),
        (Stop::CtrlC, Some(50)),
        (Stop::TermScript, None),
    ];
    let mut dev = Dev::new("ten-stops");
    for (round, (stop, during_start_ms)) in plan.into_iter().enumerate() {
        dev.start();
        match during_start_ms {
            None => {
                dev.wait_ready();
                if round == 0 {
                    let (status, body) = get(dev.worker_port, "/health");
                    assert_eq!(status, 200, "healthy when the banner is shown: {body}");
                    let health: serde_json::Value =
                        serde_json::from_str(&body).expect("health is JSON");
                    assert_eq!(health["status"], "ok", "{health}");
                    assert_eq!(health["checks"]["provider"]["ok"], true, "{health}");
                    assert_eq!(get(dev.sandbox_port, "/_sandbox/health").0, 200);
                }
            }
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
        }
        let name = match stop {
            Stop::CtrlC => {
                dev.signal_group("INT");
                "SIGINT"
            }
            Stop::TermGroup => {
                dev.signal_group("TERM");
                "SIGTERM"
            }
            Stop::TermScript => {
                dev.signal_script("TERM");
                "SIGTERM"
            }
            Stop::IntScript => {
                dev.signal_script("INT");
                "SIGINT"
            }
            Stop::HupGroup => {
                dev.signal_group("HUP");
                "SIGHUP"
            }
        };
        let status = dev.wait_exit(STOP_WITHIN);
        let output = dev.output();
        assert!(
            !status.success(),
            "round {round} ({stop:?}): exited {status}\n{output}"
        );
        // A signal that comes before the script set its traps (the first milliseconds) ends
        // it before it started anything, with nothing to say.
        let started = output.contains("dev: ");
        assert!(
            !started || output.contains(&format!("stopping ({name})")),
            "round {round} ({stop:?}) does not say it stopped:\n{output}"
        );
        assert!(
            !output.contains("did not stop") && !output.contains("still in use"),
            "round {round} ({stop:?}):\n{output}"
        );
        dev.assert_nothing_left();
    }
}

#[test]
fn extra_allowed_origins_reach_the_worker_and_a_bad_one_is_refused_at_once() {
    let mut dev = Dev::new("origins-bad");
    dev.env.push(("ALLOWED_ORIGINS", "localhost:5173".into()));
    dev.start();
    let status = dev.wait_exit(STOP_WITHIN);
    let output = dev.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("'localhost:5173' is not an origin"),
        "{output}"
    );
    assert!(!output.contains("starting the worker"), "{output}");
    dev.assert_nothing_left();

    let mut dev = Dev::new("origins");
    let frontend = "http://localhost:5173";
    dev.env.push((
        "ALLOWED_ORIGINS",
        format!("{frontend}, https://shop.example.test/"),
    ));
    dev.start();
    dev.wait_ready();
    for (origin, allowed) in [
        (frontend, true),
        ("https://shop.example.test", true),
        ("http://localhost:5174", false),
    ] {
        let headers = preflight(dev.worker_port, "/v1/checkout", origin);
        let echoed = headers
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("access-control-allow-origin: {origin}")));
        assert_eq!(echoed, allowed, "{origin}: {headers}");
    }
    dev.signal_group("TERM");
    dev.wait_exit(STOP_WITHIN);
    dev.assert_nothing_left();
}

/// A CORS preflight for a POST with JSON from `origin`: the response's head.
fn preflight(port: u16, path: &str, origin: &str) -> String {
    let (_, head, _) = request(
        port,
        &format!(
            "OPTIONS {path} HTTP/1.1\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type, authorization"
        ),
    );
    head
}

#[test]
fn a_sandbox_that_dies_stops_the_whole_stack_with_an_error() {
    let mut dev = Dev::new("sandbox-dies");
    dev.start();
    dev.wait_ready();
    let out = Command::new("pgrep")
        .args([
            "-f",
            "--",
            &format!("psp-sandbox --port {}", dev.sandbox_port),
        ])
        .output()
        .expect("pgrep");
    let pid = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .expect("the sandbox runs")
        .trim()
        .to_owned();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = dev.wait_exit(STOP_WITHIN);
    assert_eq!(status.code(), Some(1), "{}", dev.output());
    assert!(
        dev.output().contains("the PSP sandbox stopped"),
        "{}",
        dev.output()
    );
    dev.assert_nothing_left();
}
