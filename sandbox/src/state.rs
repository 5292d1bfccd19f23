//! The sandbox's shared state behind one lock (held briefly, never across an await), ids, the
//! clock, and the state file.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::faults::{Decision, Endpoint, Faults};
use crate::model::Ledger;
use crate::webhooks::{Delivery, Event};

pub struct Inner {
    pub ledger: Ledger,
    pub faults: Faults,
    /// Webhook events held back to be delivered out of order, by order id.
    pub held: HashMap<String, Event>,
    /// One delivery queue per webhook URL, so first attempts arrive in the order they happened.
    pub queues: HashMap<String, mpsc::UnboundedSender<Delivery>>,
    /// Payments whose processing task is still alive: it has a step left to run, or will find
    /// at its next step that the payment was cancelled. The ledger shows it (`stepsPending`), so
    /// a test can wait until nothing more can happen to a payment instead of sleeping.
    pub steps_pending: HashSet<String>,
    /// No settlement step is due before this instant (sandbox clock); `None`: not known, look.
    /// Lets every read bring settlement up to date without scanning every payment each time.
    pub settlement_due: Option<i64>,
}

pub struct Sandbox {
    pub config: Config,
    /// Base of the hosted payment page links.
    pub public_url: String,
    /// The business clock; its offset is also kept in the ledger, for the state file.
    pub clock: Clock,
    inner: Mutex<Inner>,
    /// Bumped whenever a payment changes, so callers can wait for one to become final.
    changes: watch::Sender<u64>,
    /// Webhook deliveries queued and not yet attempted once (retries not counted).
    pub webhooks_queued: std::sync::atomic::AtomicUsize,
}

pub type Shared = Arc<Sandbox>;

/// Provider ids are 18 lowercase hex characters. Taken from the OS, so nobody can guess a token
/// or an order (fault injection has its own seeded generators).
pub fn new_id() -> String {
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sandbox {
    /// Loads the state file when one is configured. A file that exists but cannot be read is an
    /// error: starting empty would overwrite it at the first change.
    ///
    /// A state file keeps its clock; `--clock` only moves it forward (a restart with the flag
    /// that started it must not send the clock back over what it recorded since).
    pub fn new(config: Config, public_url: String) -> Result<Shared, String> {
        let mut ledger = match &config.state_file {
            Some(path) => load(path)?,
            None => Ledger::default(),
        };
        let offset = match (ledger.clock_offset_ms, config.clock) {
            (Some(saved), Some(start)) => saved.max(Clock::offset_for(start)),
            (Some(saved), None) => saved,
            (None, start) => start.map_or(0, Clock::offset_for),
        };
        ledger.clock_offset_ms = Some(offset);
        Ok(Arc::new(Sandbox {
            config,
            public_url,
            clock: Clock::with_offset(offset),
            inner: Mutex::new(Inner {
                ledger,
                faults: Faults::default(),
                held: HashMap::new(),
                queues: HashMap::new(),
                steps_pending: HashSet::new(),
                settlement_due: None,
            }),
            changes: watch::Sender::new(0),
            webhooks_queued: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now, by the sandbox clock: what every recorded instant is read from.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The clock offset of a fresh start: `--clock` now, else real time.
    pub fn start_offset(&self) -> i64 {
        self.config.clock.map_or(0, Clock::offset_for)
    }

    pub fn decide(&self, endpoint: Endpoint) -> Decision {
        self.lock().faults.decide(endpoint)
    }

    pub fn notify_change(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Writes the state file (when one is configured) after a change: to a temporary file,
    /// flushed to disk, then renamed over the old one, so a crash never leaves half a file.
    pub fn persist(&self, inner: &Inner) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        if let Err(e) = save(path, &inner.ledger) {
            eprintln!("psp-sandbox: cannot write the state file: {e}");
        }
    }
}

fn load(path: &Path) -> Result<Ledger, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the state file {} is not a sandbox state ({e}); move it away to start empty",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn save(path: &Path, ledger: &Ledger) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(ledger)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_18_lowercase_hex_and_differ() {
        let a = new_id();
        assert_eq!(a.len(), 18);
        assert!(a.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, new_id());
    }

    #[test]
    fn a_state_file_that_is_not_ours_is_refused_and_kept() {
        let dir = std::env::temp_dir().join(format!("psp-sandbox-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        std::fs::write(&path, b"not json").unwrap();
        let config = Config {
            state_file: Some(path.clone()),
            ..Config::default()
        };
        assert!(Sandbox::new(config, String::new()).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not json");
        std::fs::remove_file(&path).unwrap();
        let config = Config {
            state_file: Some(path.clone()),
            ..Config::default()
        };
        assert!(
            Sandbox::new(config, String::new()).is_ok(),
            "a missing file starts empty"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
