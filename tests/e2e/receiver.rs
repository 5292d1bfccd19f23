//! A merchant's webhook endpoint for the tests: it records every delivery and checks its
//! signature with its own implementation of the Standard Webhooks specification (not the
//! worker's), and can be told to fail, to hang past the worker's timeout, or to be down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The secret the tests configure the worker with (`whsec_` + base64 of 32 bytes).
pub const SECRET: &str = "whsec_cmVjdXJyaW5nLWVkZ2UtZTJlLXdlYmhvb2sta2V5IQ==";
/// How old a delivery's timestamp may be before a receiver refuses it (the specification's
/// libraries use five minutes).
pub const TOLERANCE_S: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 to everything.
    Accept,
    /// 500 to everything.
    Fail,
    /// Answers only after this long (past the worker's timeout).
    Hang(Duration),
    /// Closes every connection without a word, as a server that is down.
    Down,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// What the receiver answered.
    pub accepted: bool,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery's body is JSON")
    }
}

#[derive(Default)]
struct State {
    deliveries: Vec<Delivery>,
    /// Connections closed unanswered while `Down`.
    refused: usize,
    mode: Option<Mode>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            mode: Some(Mode::Accept),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Receiver { url, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// The event ids it accepted (a 200 went back), each once.
    pub fn accepted_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .deliveries()
            .into_iter()
            .filter(|d| d.accepted)
            .map(|d| d.id)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let mode = state.lock().unwrap().mode.unwrap_or(Mode::Accept);
    if mode == Mode::Down {
        state.lock().unwrap().refused += 1;
        return;
    }
    let Some((headers, body)) = read_request(&stream) else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let accepted = mode == Mode::Accept;
    state.lock().unwrap().deliveries.push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        accepted,
    });
    let status = match mode {
        Mode::Hang(d) => {
            std::thread::sleep(d);
            "200 OK"
        }
        Mode::Fail => "500 Internal Server Error",
        _ => "200 OK",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    );
}

fn read_request(stream: &TcpStream) -> Option<(Vec<(String, String)>, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (k, v) = trimmed.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, String::from_utf8(body).ok()?))
}

/// Why a delivery is not to be trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    BadSignature,
    Stale,
    Malformed,
}

/// The receiver's own check, as the specification describes it: the secret's bytes key an
/// HMAC-SHA256 of `id.timestamp.body`; any `v1,` entry of the header may match; the timestamp
/// must be within the tolerance of now.
pub fn verify(secret: &str, d: &Delivery, now_s: i64) -> Result<(), Refused> {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| Refused::Malformed)?;
    let timestamp: i64 = d.timestamp.parse().map_err(|_| Refused::Malformed)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|_| Refused::Malformed)?;
    mac.update(format!("{}.{}.{}", d.id, d.timestamp, d.body).as_bytes());
    let expected = mac.finalize().into_bytes();
    let matches = d.signature.split(' ').any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|sig| STANDARD.decode(sig).ok())
            .is_some_and(|sig| sig.as_slice() == expected.as_slice())
    });
    if !matches {
        return Err(Refused::BadSignature);
    }
    if (now_s - timestamp).abs() > TOLERANCE_S {
        return Err(Refused::Stale);
    }
    Ok(())
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
