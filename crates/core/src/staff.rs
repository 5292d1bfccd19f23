//! The merchant's staff in the dashboard: who they are (a Cloudflare Access token, or in
//! development a signed session cookie), what they may do (read, or also act), and which
//! requests a browser may send on their behalf.
//!
//! Pure: the RS256 signature of an Access token is checked by the worker with the platform's
//! WebCrypto against the team's published keys; everything else about the token is decided
//! here, natively tested.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::input::has_control;
use crate::validate;

/// Access tokens and dev sessions are accepted this long past `exp` (and before `nbf`): the
/// clocks of Access and of the worker may differ a little.
pub const LEEWAY_SECONDS: i64 = 60;
/// A development session lasts a working day.
pub const DEV_SESSION_SECONDS: i64 = 12 * 3600;
/// The cookie of a development session.
pub const DEV_COOKIE: &str = "dashboard_session";
/// The header every dashboard call that changes something must carry. A cross-site page cannot
/// send it without a CORS preflight, which the worker never grants on dashboard routes.
pub const WRITE_HEADER: &str = "X-Dashboard-Request";

/// What a member of staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything the dashboard shows.
    Viewer,
    /// Also refunds, subscription changes, redeliveries and the test clock.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub email: String,
    pub role: Role,
    pub via: Via,
}

/// How a member of staff proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A Cloudflare Access token (production): signing out is Access's.
    Access,
    /// The development sign-in's cookie.
    Development,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Access => "access",
            Via::Development => "development",
        }
    }
}

/// `DASHBOARD_ADMINS` lists who may act; everyone else Access lets in reads.
pub fn role_of(email: &str, admins: &[String]) -> Role {
    if admins.iter().any(|a| a.eq_ignore_ascii_case(email)) {
        Role::Admin
    } else {
        Role::Viewer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or not three base64url parts of JSON.
    Malformed,
    /// Not RS256, or no key id.
    Algorithm,
    /// Signed by no key of the team's set, or the signature does not verify.
    Signature,
    Expired,
    NotYetValid,
    /// Issued by another team, or for another application.
    WrongIssuerOrAudience,
    /// No usable email claim.
    NoEmail,
}

impl Refusal {
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::Malformed => "The Access token is missing or malformed.",
            Refusal::Algorithm => "The Access token is not signed with RS256 by a named key.",
            Refusal::Signature => "The Access token's signature does not verify.",
            Refusal::Expired => "The Access token has expired.",
            Refusal::NotYetValid => "The Access token is not valid yet.",
            Refusal::WrongIssuerOrAudience => {
                "The Access token was issued by another team or for another application."
            }
            Refusal::NoEmail => "The Access token names no email.",
        }
    }
}

/// An Access token split and read, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// `header.payload`: what the signature covers.
    pub signed: String,
    pub signature: Vec<u8>,
    pub kid: String,
    pub email: String,
    issuer: String,
    audiences: Vec<String>,
    expires: i64,
    not_before: Option<i64>,
}

fn json_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Splits and reads a token from `Cf-Access-Jwt-Assertion`.
pub fn parse_access_token(token: &str) -> Result<AccessToken, Refusal> {
    if token.len() > 16 * 1024 {
        return Err(Refusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header = json_part(h).ok_or(Refusal::Malformed)?;
    let payload = json_part(p).ok_or(Refusal::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| Refusal::Malformed)?;
    if header["alg"] != "RS256" {
        return Err(Refusal::Algorithm);
    }
    let kid = header["kid"]
        .as_str()
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(Refusal::Algorithm)?;
    let audiences = match &payload["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let email = payload["email"]
        .as_str()
        .filter(|e| validate::is_email(e) && !has_control(e))
        .ok_or(Refusal::NoEmail)?;
    Ok(AccessToken {
        signed: format!("{h}.{p}"),
        signature,
        kid: kid.to_owned(),
        email: email.to_owned(),
        issuer: payload["iss"].as_str().unwrap_or_default().to_owned(),
        audiences,
        expires: payload["exp"].as_i64().ok_or(Refusal::Malformed)?,
        not_before: payload["nbf"].as_i64(),
    })
}

/// The claims of a token whose signature verified: issued by `team` (the Access team domain)
/// for the application `aud`, and valid at `now` (Unix seconds).
pub fn check_access_claims(
    token: &AccessToken,
    team: &str,
    aud: &str,
    now: i64,
) -> Result<(), Refusal> {
    if token.issuer.trim_end_matches('/') != team.trim_end_matches('/')
        || !token.audiences.iter().any(|a| a == aud)
    {
        return Err(Refusal::WrongIssuerOrAudience);
    }
    if now > token.expires + LEEWAY_SECONDS {
        return Err(Refusal::Expired);
    }
    if token
        .not_before
        .is_some_and(|nbf| now + LEEWAY_SECONDS < nbf)
    {
        return Err(Refusal::NotYetValid);
    }
    Ok(())
}

type HmacSha256 = Hmac<Sha256>;

/// The key of development sessions, derived from a worker secret so the cookie proves nothing
/// anywhere else.
fn dev_mac(secret: &str) -> HmacSha256 {
    let mut derive =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    derive.update(b"recurring-edge dashboard development session v1");
    let key = derive.finalize().into_bytes();
    HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length")
}

/// A development session for `email`, valid until `now + DEV_SESSION_SECONDS`.
pub fn mint_dev_session(secret: &str, email: &str, now: i64) -> String {
    let payload = json!({"email": email, "exp": now + DEV_SESSION_SECONDS}).to_string();
    let body = URL_SAFE_NO_PAD.encode(payload);
    let mut mac = dev_mac(secret);
    mac.update(body.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{body}.{tag}")
}

/// The email of a valid development session, checked in constant time.
pub fn verify_dev_session(secret: &str, cookie: &str, now: i64) -> Option<String> {
    let (body, tag) = cookie.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut mac = dev_mac(secret);
    mac.update(body.as_bytes());
    mac.verify_slice(&tag).ok()?;
    let payload = json_part(body)?;
    let email = payload["email"]
        .as_str()
        .filter(|e| validate::is_email(e))?;
    (now <= payload["exp"].as_i64()?).then(|| email.to_owned())
}

/// A development session's cookie: HttpOnly, SameSite=Strict, for the dashboard only, and
/// Secure unless the dashboard is served over plain http (a laptop).
pub fn dev_cookie(value: &str, secure: bool) -> String {
    format!(
        "{DEV_COOKIE}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={DEV_SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The cookie that ends a development session.
pub fn dev_cookie_cleared(secure: bool) -> String {
    format!(
        "{DEV_COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of one cookie of a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Whether a request that changes something came from the dashboard's own pages: it carries
/// [`WRITE_HEADER`], and what the browser says of its origin (`Origin`, `Sec-Fetch-Site`), when
/// it says anything, is this site.
pub fn same_site_write(
    write_header: Option<&str>,
    origin: Option<&str>,
    fetch_site: Option<&str>,
    own_origin: &str,
) -> bool {
    write_header == Some("1")
        && origin.is_none_or(|o| o.trim_end_matches('/') == own_origin.trim_end_matches('/'))
        && fetch_site.is_none_or(|s| s == "same-origin")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: Value, payload: Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }

    const TEAM: &str = "https://shop.cloudflareaccess.com";

    fn valid() -> Value {
        json!({"aud": ["aud-1"], "email": "ada@shop.example", "iss": TEAM, "exp": 2_000,
               "nbf": 1_000, "iat": 1_000})
    }

    #[test]
    fn access_tokens_are_read_and_their_claims_checked() {
        let t = parse_access_token(&token(json!({"alg": "RS256", "kid": "k1"}), valid())).unwrap();
        assert_eq!(
            (t.kid.as_str(), t.email.as_str()),
            ("k1", "ada@shop.example")
        );
        assert_eq!(t.signature, b"sig");
        assert!(
            t.signed
                .ends_with(&URL_SAFE_NO_PAD.encode(valid().to_string()))
        );
        assert_eq!(check_access_claims(&t, TEAM, "aud-1", 1_500), Ok(()));
        assert_eq!(
            check_access_claims(&t, &format!("{TEAM}/"), "aud-1", 1_500),
            Ok(())
        );
        assert_eq!(
            check_access_claims(&t, TEAM, "aud-2", 1_500),
            Err(Refusal::WrongIssuerOrAudience)
        );
        assert_eq!(
            check_access_claims(&t, "https://other.cloudflareaccess.com", "aud-1", 1_500),
            Err(Refusal::WrongIssuerOrAudience)
        );
        assert_eq!(
            check_access_claims(&t, TEAM, "aud-1", 2_000 + LEEWAY_SECONDS + 1),
            Err(Refusal::Expired)
        );
        assert_eq!(
            check_access_claims(&t, TEAM, "aud-1", 2_000 + LEEWAY_SECONDS),
            Ok(())
        );
        assert_eq!(
            check_access_claims(&t, TEAM, "aud-1", 1_000 - LEEWAY_SECONDS - 1),
            Err(Refusal::NotYetValid)
        );
    }

    #[test]
    fn malformed_or_unsigned_tokens_are_refused_before_any_key_is_looked_up() {
        for (header, payload, refusal) in [
            (
                json!({"alg": "none", "kid": "k1"}),
                valid(),
                Refusal::Algorithm,
            ),
            (
                json!({"alg": "HS256", "kid": "k1"}),
                valid(),
                Refusal::Algorithm,
            ),
            (json!({"alg": "RS256"}), valid(), Refusal::Algorithm),
            (
                json!({"alg": "RS256", "kid": "k1"}),
                json!({"aud": "aud-1", "iss": TEAM, "exp": 2_000}),
                Refusal::NoEmail,
            ),
            (
                json!({"alg": "RS256", "kid": "k1"}),
                json!({"aud": "aud-1", "iss": TEAM, "email": "ada@shop.example"}),
                Refusal::Malformed,
            ),
        ] {
            assert_eq!(
                parse_access_token(&token(header.clone(), payload)),
                Err(refusal),
                "{header}"
            );
        }
        for broken in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30"] {
            assert_eq!(
                parse_access_token(broken),
                Err(Refusal::Malformed),
                "{broken}"
            );
        }
    }

    #[test]
    fn development_sessions_are_signed_and_expire() {
        let cookie = mint_dev_session("secret-1", "ada@shop.example", 1_000);
        assert_eq!(
            verify_dev_session("secret-1", &cookie, 1_000 + DEV_SESSION_SECONDS).as_deref(),
            Some("ada@shop.example")
        );
        assert_eq!(
            verify_dev_session("secret-1", &cookie, 1_001 + DEV_SESSION_SECONDS),
            None
        );
        assert_eq!(verify_dev_session("secret-2", &cookie, 1_000), None);
        let (body, tag) = cookie.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD
            .encode(json!({"email": "eve@evil.example", "exp": 9_999_999}).to_string());
        assert_eq!(
            verify_dev_session("secret-1", &format!("{forged}.{tag}"), 1_000),
            None
        );
        assert_eq!(verify_dev_session("secret-1", body, 1_000), None);
        let header = format!("theme=dark; {DEV_COOKIE}={cookie}; other=1");
        assert_eq!(super::cookie(&header, DEV_COOKIE), Some(cookie.as_str()));
        assert!(dev_cookie(&cookie, true).contains("HttpOnly; SameSite=Strict"));
        assert!(dev_cookie(&cookie, true).ends_with("; Secure"));
    }

    #[test]
    fn roles_and_writes() {
        let admins = vec!["Ada@Shop.example".to_owned()];
        assert_eq!(role_of("ada@shop.example", &admins), Role::Admin);
        assert_eq!(role_of("bob@shop.example", &admins), Role::Viewer);
        let own = "https://payments.shop.example";
        assert!(same_site_write(
            Some("1"),
            Some(own),
            Some("same-origin"),
            own
        ));
        assert!(same_site_write(Some("1"), None, None, own));
        assert!(!same_site_write(None, Some(own), Some("same-origin"), own));
        assert!(!same_site_write(
            Some("1"),
            Some("https://evil.example"),
            None,
            own
        ));
        assert!(!same_site_write(Some("1"), None, Some("cross-site"), own));
        assert!(!same_site_write(Some("1"), None, Some("same-site"), own));
    }
}
