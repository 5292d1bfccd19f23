//! Signing events for the merchant as the Standard Webhooks specification says: headers
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64>`, the
//! base64 of HMAC-SHA256 over `"{id}.{timestamp}.{body}"` keyed with the secret's bytes (the
//! secret is written `whsec_<base64>`). Any of the specification's libraries verifies it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The bytes of a `whsec_<base64>` secret (the prefix is optional), or `None` when it is not
/// base64 or too short to be a key (under 16 bytes).
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.trim();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    let key = STANDARD.decode(encoded).ok()?;
    (key.len() >= 16).then_some(key)
}

/// The `webhook-signature` header value for one delivery.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_must_be_base64_keys_of_a_useful_length() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
        assert!(decode_secret("whsec_not base64!").is_none());
        assert!(
            decode_secret("whsec_c2hvcnQ=").is_none(),
            "5 bytes is no key"
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let base = sign(&key, "evt_1", 100, "{}");
        assert_ne!(base, sign(&key, "evt_2", 100, "{}"));
        assert_ne!(base, sign(&key, "evt_1", 101, "{}"));
        assert_ne!(base, sign(&key, "evt_1", 100, "{ }"));
    }
}
