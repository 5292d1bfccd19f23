//! Checks on what callers send, shared by the API modules. Pure functions, no I/O.

/// Largest request body the API reads; anything above is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Provider webhooks carry transaction details; give them more room.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// Customer references, plan ids and our own resource ids: safe in a URL path and a KV key.
pub fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Idempotency keys: 1-255 visible ASCII characters (UUIDs, ULIDs, "order-123:retry-2", ...).
pub fn is_idempotency_key(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !s.contains(char::is_control)
        && !domain.contains('@')
}

/// The origin (`scheme://host[:port]`) of an http(s) URL, lowercased.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// A redirect target is allowed only on one of the configured origins, so a checkout can never
/// be used to bounce a customer to someone else's site.
pub fn is_allowed_redirect(url: &str, allowed_origins: &[String]) -> bool {
    url.len() <= 2048
        && origin_of(url).is_some_and(|o| {
            allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&o))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_url_and_key_safe() {
        assert!(is_identifier("cust_42"));
        assert!(is_identifier("acme:user.7-x"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("a/b"));
        assert!(!is_identifier("a%2Fb"));
        assert!(!is_identifier("ünicode"));
        assert!(!is_identifier(&"x".repeat(65)));
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(is_idempotency_key("7b0e2f4c-1a2b-4c3d-9e8f-0a1b2c3d4e5f"));
        assert!(!is_idempotency_key(""));
        assert!(!is_idempotency_key("has space"));
        assert!(!is_idempotency_key(&"k".repeat(256)));
    }

    #[test]
    fn redirects_only_to_allowed_origins() {
        let allowed = vec![
            "https://shop.example".to_owned(),
            "http://127.0.0.1:8787".to_owned(),
        ];
        assert!(is_allowed_redirect(
            "https://shop.example/done?x=1",
            &allowed
        ));
        assert!(is_allowed_redirect("HTTPS://SHOP.example/done", &allowed));
        assert!(is_allowed_redirect("http://127.0.0.1:8787/", &allowed));
        assert!(!is_allowed_redirect(
            "https://shop.example.evil.example/done",
            &allowed
        ));
        assert!(!is_allowed_redirect(
            "https://evil.example/?https://shop.example",
            &allowed
        ));
        assert!(!is_allowed_redirect(
            "https://shop.example@evil.example/",
            &allowed
        ));
        assert!(!is_allowed_redirect("http://shop.example/done", &allowed));
        assert!(!is_allowed_redirect("javascript:alert(1)", &allowed));
        assert!(!is_allowed_redirect("//shop.example/done", &allowed));
    }

    #[test]
    fn emails_need_a_domain() {
        assert!(is_email("ada@example.com"));
        assert!(!is_email("ada@localhost"));
        assert!(!is_email("ada example.com"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("ada\0@example.com"));
        assert!(!is_email("ada@exam\u{85}ple.com"));
    }
}
