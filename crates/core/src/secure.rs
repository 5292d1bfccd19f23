//! Small security primitives: constant-time comparison, request fingerprints, derived ids.
//! Random ids need the platform's randomness and are minted by the worker (`ids::new_id`).

use sha2::{Digest, Sha256};

/// Compares secrets without leaking, through timing, how much of a guess was right or how long
/// the secret is: both sides are hashed to a fixed length first, then compared in full.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Fingerprint of a request body, to tell a retry (same key, same request) from a reuse of the
/// key for something else. The body is parsed and re-serialised first, so that key order and
/// whitespace do not matter (serde_json's map keeps keys sorted).
pub fn request_fingerprint(scope: &str, body: &serde_json::Value) -> String {
    let canonical = serde_json::to_string(body).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_bytes());
    hex(&hasher.finalize())
}

/// A short stable digest, for ids derived from other ids.
pub fn digest_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize()[..10])
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_only_when_identical() {
        assert!(constant_time_eq(b"dev-merchant-key", b"dev-merchant-key"));
        assert!(!constant_time_eq(b"dev-merchant-key", b"dev-merchant-kez"));
        assert!(!constant_time_eq(b"dev-merchant-key", b"dev-merchant-key "));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values_or_scope() {
        let a = json!({"amount": 100, "currency": "752"});
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "currency":"752",  "amount":100 }"#).unwrap();
        assert_eq!(
            request_fingerprint("charge", &a),
            request_fingerprint("charge", &b)
        );
        assert_ne!(
            request_fingerprint("charge", &a),
            request_fingerprint("charge", &json!({"amount": 101, "currency": "752"}))
        );
        assert_ne!(
            request_fingerprint("charge", &a),
            request_fingerprint("refund", &a)
        );
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(digest_id(&["co_1"]), digest_id(&["co_1"]));
        assert_ne!(digest_id(&["co_1"]), digest_id(&["co_2"]));
    }
}
