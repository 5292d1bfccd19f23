//! Customer sessions: the proof a customer's browser carries that the merchant's backend vouched
//! for it. A session names one customer and expires; it is verified without storage.
//!
//! Format (version 1), all ASCII:
//!
//! ```text
//! v1.<base64url(payload)>.<base64url(HMAC-SHA256(key, "v1." + base64url(payload)))>
//! ```
//!
//! base64url without padding; `payload` is a JSON object with `c` (the customer reference),
//! `exp` (expiry, Unix seconds), `kid` (the first 8 hex digits of SHA-256 of the key) and
//! optionally `email`, `name`, `clk` (a test clock), `trl` (trial days, 0 to 730) and `cpn` (a
//! coupon id). The key is `CUSTOMER_SESSION_SECRET` as UTF-8 bytes; a second
//! key (`CUSTOMER_SESSION_SECRET_PREVIOUS`) is accepted during a rotation. New optional claims
//! may be added to version 1 (a session without them stays valid); a claim this code does not
//! know is refused rather than ignored, and a change of meaning is a new version.
//!
//! Pure: no runtime imports, tested natively.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::input::has_control;
use crate::secure::hex;
use crate::validate;

type HmacSha256 = Hmac<Sha256>;

pub const VERSION: &str = "v1";
/// Longer secrets are refused before any work: a valid one is a few hundred bytes.
pub const MAX_SECRET_BYTES: usize = 2048;
/// A merchant's clock may run this far ahead of ours when it computes `exp`.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Shortest and default lifetimes of a session minted by the worker.
pub const MIN_LIFETIME_SECONDS: i64 = 5;
pub const DEFAULT_LIFETIME_SECONDS: i64 = 30 * 60;
pub const MAX_NAME_CHARS: usize = 100;

/// A session key: the secret and its public id.
#[derive(Clone)]
pub struct SessionKey {
    id: String,
    secret: Vec<u8>,
}

impl SessionKey {
    pub fn new(secret: &str) -> Self {
        SessionKey {
            id: key_id(secret),
            secret: secret.as_bytes().to_vec(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }
}

// The secret never appears in a `{:?}`.
impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The key id: the first 8 hex digits of SHA-256 of the secret, so that a merchant minting in
/// its own backend can compute it, and an operator can tell which key signed a session.
pub fn key_id(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes())[..4])
}

/// The keys sessions are verified with: the current one signs, the previous one is accepted
/// while a rotation is under way.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    pub current: SessionKey,
    pub previous: Option<SessionKey>,
}

impl SessionKeys {
    fn all(&self) -> impl Iterator<Item = &SessionKey> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }
}

/// What a session says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    #[serde(rename = "c")]
    pub customer_ref: String,
    /// Unix seconds.
    pub exp: i64,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The named test clock the customer's checkouts and subscriptions run on (test mode only:
    /// the worker refuses to mint one with the test clock off).
    #[serde(rename = "clk", skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// Days of free trial the merchant gives this customer's checkout, before the plan's own
    /// (`0`: none).
    #[serde(rename = "trl", skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<u32>,
    /// A coupon the merchant applies to this customer's checkout (never one the browser names).
    #[serde(rename = "cpn", skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Not three base64url parts, too long, or a payload that is not a claims object.
    Malformed,
    UnknownVersion,
    /// No configured key produced this signature, or the payload names another key.
    BadSignature,
    Expired,
    /// `exp` lies further ahead than the longest lifetime allowed.
    TooLong,
}

impl SessionError {
    /// What the caller is told: an expired session is worth renewing, anything else is not
    /// worth explaining further.
    pub fn detail(self) -> &'static str {
        match self {
            SessionError::Expired => {
                "The customer session has expired; the merchant's backend can mint a new one."
            }
            _ => "The customer session is not valid.",
        }
    }
}

/// What is wrong with the claims a session would carry, field by field (the API's field names);
/// the same rules apply to minting and verifying.
pub fn claim_errors(
    customer_ref: Option<&str>,
    email: Option<&str>,
    name: Option<&str>,
) -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    if customer_ref.is_some_and(|c| !validate::is_identifier(c)) {
        errors.push((
            "customerRef",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    if email.is_some_and(|e| has_control(e) || !validate::is_email(e)) {
        errors.push(("email", "must be an email address"));
    }
    if name.is_some_and(|n| {
        has_control(n) || n.trim().is_empty() || n.chars().count() > MAX_NAME_CHARS
    }) {
        errors.push((
            "name",
            "must be 1-100 characters without control characters",
        ));
    }
    errors
}

/// Mints a session for `claims` (whose `kid` is replaced by the key's).
pub fn mint(key: &SessionKey, claims: &Claims) -> String {
    let claims = Claims {
        kid: key.id.clone(),
        ..claims.clone()
    };
    let json = serde_json::to_vec(&claims).expect("claims serialise");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = key.mac();
    mac.update(format!("{VERSION}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{VERSION}.{payload}.{signature}")
}

/// Verifies a session at `now` (Unix seconds). The signature is checked before the payload is
/// parsed, against every configured key, in constant time.
pub fn verify(
    keys: &SessionKeys,
    secret: &str,
    now: i64,
    max_lifetime_seconds: i64,
) -> Result<Claims, SessionError> {
    if secret.len() > MAX_SECRET_BYTES || !secret.is_ascii() {
        return Err(SessionError::Malformed);
    }
    let mut parts = secret.split('.');
    let (Some(version), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    if version != VERSION {
        return Err(SessionError::UnknownVersion);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SessionError::Malformed)?;
    let signed = format!("{VERSION}.{payload}");
    let key = keys
        .all()
        .find(|key| {
            let mut mac = key.mac();
            mac.update(signed.as_bytes());
            mac.verify_slice(&signature).is_ok()
        })
        .ok_or(SessionError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SessionError::Malformed)?;
    let claims = parse_claims(&json).ok_or(SessionError::Malformed)?;
    if claims.kid != key.id {
        return Err(SessionError::BadSignature);
    }
    if claims.exp <= now {
        return Err(SessionError::Expired);
    }
    if claims.exp > now + max_lifetime_seconds + CLOCK_SKEW_SECONDS {
        return Err(SessionError::TooLong);
    }
    Ok(claims)
}

fn parse_claims(json: &[u8]) -> Option<Claims> {
    let map = crate::input::object(json).ok()?;
    let mut customer_ref = None;
    let mut exp = None;
    let mut kid = None;
    let mut email = None;
    let mut name = None;
    let mut test_clock = None;
    let mut trial_days = None;
    let mut coupon = None;
    for (key, value) in map {
        match (key.as_str(), value) {
            ("c", Value::String(s)) => customer_ref = Some(s),
            ("exp", Value::Number(n)) if n.is_i64() || n.is_u64() => exp = n.as_i64(),
            ("kid", Value::String(s)) => kid = Some(s),
            ("email", Value::String(s)) => email = Some(s),
            ("name", Value::String(s)) => name = Some(s),
            ("clk", Value::String(s)) if validate::is_identifier(&s) => test_clock = Some(s),
            ("trl", Value::Number(n)) => {
                trial_days = n
                    .as_u64()
                    .filter(|d| *d <= u64::from(crate::catalog::MAX_TRIAL_DAYS))
                    .map(|d| d as u32);
                trial_days?;
            }
            ("cpn", Value::String(s)) if validate::is_identifier(&s) => coupon = Some(s),
            _ => return None,
        }
    }
    let claims = Claims {
        customer_ref: customer_ref?,
        exp: exp?,
        kid: kid?,
        email,
        name,
        test_clock,
        trial_days,
        coupon,
    };
    claim_errors(
        Some(&claims.customer_ref),
        claims.email.as_deref(),
        claims.name.as_deref(),
    )
    .is_empty()
    .then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000;
    const MAX: i64 = 4 * 3600;

    fn keys(current: &str, previous: Option<&str>) -> SessionKeys {
        SessionKeys {
            current: SessionKey::new(current),
            previous: previous.map(SessionKey::new),
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            customer_ref: "cust-42".into(),
            exp,
            kid: String::new(),
            email: Some("ada@example.com".into()),
            name: Some("Ada Lovelace".into()),
            test_clock: None,
            trial_days: None,
            coupon: None,
        }
    }

    #[test]
    fn trial_and_coupon_claims_round_trip_and_are_bounded() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let offered = Claims {
            trial_days: Some(30),
            coupon: Some("WELCOME-10".into()),
            ..claims(NOW + 60)
        };
        let got = verify(&k, &mint(&k.current, &offered), NOW, MAX).unwrap();
        assert_eq!(
            (got.trial_days, got.coupon.as_deref()),
            (Some(30), Some("WELCOME-10"))
        );
        let zero = Claims {
            trial_days: Some(0),
            ..claims(NOW + 60)
        };
        let got = verify(&k, &mint(&k.current, &zero), NOW, MAX).unwrap();
        assert_eq!(got.trial_days, Some(0));
        assert!(parse_claims(br#"{"c":"a","exp":1,"kid":"k","trl":731}"#).is_none());
        assert!(parse_claims(br#"{"c":"a","exp":1,"kid":"k","trl":-1}"#).is_none());
        assert!(parse_claims(br#"{"c":"a","exp":1,"kid":"k","trl":1.5}"#).is_none());
        assert!(parse_claims(br#"{"c":"a","exp":1,"kid":"k","cpn":"a b"}"#).is_none());
    }

    #[test]
    fn a_test_clock_claim_round_trips_and_must_be_an_identifier() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let on_clock = Claims {
            test_clock: Some("visitor-7".into()),
            ..claims(NOW + 60)
        };
        let secret = mint(&k.current, &on_clock);
        assert_eq!(
            verify(&k, &secret, NOW, MAX).unwrap().test_clock.as_deref(),
            Some("visitor-7")
        );
        assert!(parse_claims(br#"{"c":"a","exp":1,"kid":"k","clk":"a/b"}"#).is_none());
    }

    #[test]
    fn a_minted_session_verifies_and_says_who_and_until_when() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let token = mint(&k.current, &claims(NOW + 1800));
        assert!(token.starts_with("v1.") && token.split('.').count() == 3);
        let got = verify(&k, &token, NOW, MAX).unwrap();
        assert_eq!(got.customer_ref, "cust-42");
        assert_eq!(got.exp, NOW + 1800);
        assert_eq!(got.kid, k.current.id());
        assert_eq!(got.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn the_key_id_is_the_first_eight_hex_digits_of_sha256() {
        // sha256("abc") = ba7816bf 8f01cfea ...
        assert_eq!(key_id("abc"), "ba7816bf");
    }

    #[test]
    fn tampering_with_any_byte_is_refused() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let token = mint(&k.current, &claims(NOW + 1800));
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'_', b'.', b'0', b'z'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                assert!(
                    verify(&k, &changed, NOW, MAX).is_err(),
                    "byte {i} -> {} accepted",
                    replacement as char
                );
            }
        }
        // Truncated or extended.
        assert!(verify(&k, &token[..token.len() - 1], NOW, MAX).is_err());
        assert!(verify(&k, &format!("{token}A"), NOW, MAX).is_err());
        assert!(verify(&k, &format!("{token}.x"), NOW, MAX).is_err());
    }

    #[test]
    fn a_session_signed_with_another_key_is_refused() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let other = SessionKey::new("some-other-secret-0123456789abcdef");
        let token = mint(&other, &claims(NOW + 60));
        assert_eq!(
            verify(&k, &token, NOW, MAX).unwrap_err(),
            SessionError::BadSignature
        );
    }

    #[test]
    fn rotation_accepts_the_previous_key_until_it_is_removed() {
        let old = "old-secret-0123456789abcdef0123456789";
        let new = "new-secret-0123456789abcdef0123456789";
        let before = keys(old, None);
        let during = keys(new, Some(old));
        let after = keys(new, None);
        let old_token = mint(&before.current, &claims(NOW + 600));
        let new_token = mint(&during.current, &claims(NOW + 600));
        assert!(verify(&during, &old_token, NOW, MAX).is_ok());
        assert!(verify(&during, &new_token, NOW, MAX).is_ok());
        assert!(verify(&after, &new_token, NOW, MAX).is_ok());
        assert_eq!(
            verify(&after, &old_token, NOW, MAX).unwrap_err(),
            SessionError::BadSignature
        );
        assert!(verify(&before, &new_token, NOW, MAX).is_err());
    }

    #[test]
    fn a_payload_naming_another_key_than_the_one_that_signed_is_refused() {
        let old = "old-secret-0123456789abcdef0123456789";
        let new = "new-secret-0123456789abcdef0123456789";
        let k = keys(new, Some(old));
        let payload = serde_json::json!({"c": "cust-42", "exp": NOW + 60, "kid": k.current.id()});
        let token = sign_raw(old, &payload.to_string());
        assert_eq!(
            verify(&k, &token, NOW, MAX).unwrap_err(),
            SessionError::BadSignature
        );
    }

    #[test]
    fn expiry_boundaries() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let at = |exp: i64| verify(&k, &mint(&k.current, &claims(exp)), NOW, MAX);
        assert_eq!(at(NOW).unwrap_err(), SessionError::Expired);
        assert_eq!(at(NOW - 1).unwrap_err(), SessionError::Expired);
        assert!(at(NOW + 1).is_ok());
        assert!(at(NOW + MAX + CLOCK_SKEW_SECONDS).is_ok());
        assert_eq!(
            at(NOW + MAX + CLOCK_SKEW_SECONDS + 1).unwrap_err(),
            SessionError::TooLong
        );
    }

    /// Signs an arbitrary payload the way the format says, to test what the verifier does
    /// with payloads `mint` would never produce.
    fn sign_raw(secret: &str, payload_json: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload_json);
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v1.{payload}").as_bytes());
        format!(
            "v1.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn signed_but_ill_formed_payloads_are_refused() {
        let secret = "current-secret-0123456789abcdef0123";
        let k = keys(secret, None);
        let kid = k.current.id().to_owned();
        let good = format!(r#"{{"c":"cust-42","exp":{},"kid":"{kid}"}}"#, NOW + 60);
        assert!(verify(&k, &sign_raw(secret, &good), NOW, MAX).is_ok());
        for payload in [
            format!(r#"{{"c":"cust 42","exp":{},"kid":"{kid}"}}"#, NOW + 60),
            format!(r#"{{"c":"cust-42","exp":"{}","kid":"{kid}"}}"#, NOW + 60),
            format!(r#"{{"c":"cust-42","exp":{}.5,"kid":"{kid}"}}"#, NOW + 60),
            format!(r#"{{"c":"cust-42","kid":"{kid}"}}"#),
            format!(
                r#"{{"c":"cust-42","exp":{},"kid":"{kid}","admin":true}}"#,
                NOW + 60
            ),
            format!(
                r#"{{"c":"cust-42","exp":{},"kid":"{kid}","email":null}}"#,
                NOW + 60
            ),
            format!(
                r#"{{"c":"cust-42","exp":{},"kid":"{kid}","email":"a\u0000@x.io"}}"#,
                NOW + 60
            ),
            format!(
                r#"{{"c":"cust-42","c":"victim","exp":{},"kid":"{kid}"}}"#,
                NOW + 60
            ),
            format!(r#"[{{"c":"cust-42","exp":{},"kid":"{kid}"}}]"#, NOW + 60),
            "not json".to_owned(),
        ] {
            assert_eq!(
                verify(&k, &sign_raw(secret, &payload), NOW, MAX).unwrap_err(),
                SessionError::Malformed,
                "{payload}"
            );
        }
    }

    #[test]
    fn malformed_and_unknown_versions_are_refused() {
        let k = keys("current-secret-0123456789abcdef0123", None);
        let token = mint(&k.current, &claims(NOW + 60));
        let v2 = token.replacen("v1.", "v2.", 1);
        assert_eq!(
            verify(&k, &v2, NOW, MAX).unwrap_err(),
            SessionError::UnknownVersion
        );
        for bad in ["", "v1", "v1..", "v1.a.b", "Bearer x", "v1.é.x"] {
            assert!(verify(&k, bad, NOW, MAX).is_err(), "{bad}");
        }
        let huge = format!("v1.{}.x", "A".repeat(MAX_SECRET_BYTES));
        assert_eq!(
            verify(&k, &huge, NOW, MAX).unwrap_err(),
            SessionError::Malformed
        );
        // Padding is not part of the format.
        let padded = format!("{token}=");
        assert!(verify(&k, &padded, NOW, MAX).is_err());
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let k = keys("very-secret-value-0123456789abcdef", None);
        assert!(!format!("{k:?}").contains("very-secret-value"));
    }
}
