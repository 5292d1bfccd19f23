//! CORS for the routes a merchant's frontend calls from the browser.
//!
//! A browser only hides the response from a disallowed origin; it still sends a simple POST. So a
//! request that carries an `Origin` outside the allow-list is refused before it does anything,
//! not merely answered without CORS headers. Requests without `Origin` (servers, curl) pass:
//! CORS only protects browsers. The proof of who the customer is, is the customer session; CORS
//! is a second layer.

use super::problem::Problem;

pub const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
pub const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key";
/// So that a page can read when to try again after a 429.
pub const EXPOSED_HEADERS: &str = "Retry-After";
const MAX_AGE_SECONDS: &str = "600";

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// No Origin header: not a cross-origin browser request.
    NotCors,
    /// Add these response headers.
    Allow(Vec<(&'static str, String)>),
    Deny(Problem),
}

pub fn decide(origin: Option<&str>, allowed_origins: &[String]) -> Decision {
    let Some(origin) = origin else {
        return Decision::NotCors;
    };
    let origin = origin.trim_end_matches('/');
    if allowed_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(origin))
    {
        Decision::Allow(vec![
            ("Access-Control-Allow-Origin", origin.to_owned()),
            ("Access-Control-Expose-Headers", EXPOSED_HEADERS.to_owned()),
            ("Vary", "Origin".to_owned()),
        ])
    } else {
        Decision::Deny(
            Problem::new(403, "origin-not-allowed", "Origin not allowed")
                .detail("This origin is not in the merchant's ALLOWED_ORIGINS."),
        )
    }
}

/// Headers of the answer to a preflight `OPTIONS` from an allowed origin.
pub fn preflight_headers(mut allow: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    allow.push(("Access-Control-Allow-Methods", ALLOWED_METHODS.to_owned()));
    allow.push(("Access-Control-Allow-Headers", ALLOWED_HEADERS.to_owned()));
    allow.push(("Access-Control-Max-Age", MAX_AGE_SECONDS.to_owned()));
    allow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https://shop.example".into()]
    }

    #[test]
    fn allowed_origin_is_echoed_with_vary() {
        let Decision::Allow(h) = decide(Some("https://shop.example"), &allowed()) else {
            panic!("should allow")
        };
        assert!(h.contains(&("Access-Control-Allow-Origin", "https://shop.example".into())));
        assert!(h.contains(&("Vary", "Origin".into())));
    }

    #[test]
    fn other_origins_are_refused_and_servers_pass() {
        assert!(matches!(
            decide(Some("https://evil.example"), &allowed()),
            Decision::Deny(p) if p.status == 403
        ));
        assert!(matches!(
            decide(Some("null"), &allowed()),
            Decision::Deny(_)
        ));
        assert_eq!(decide(None, &allowed()), Decision::NotCors);
    }
}
