//! RFC 9457 problem details: the one shape every error of this API has.

use serde::Serialize;
use serde_json::{Map, Value};

pub const CONTENT_TYPE: &str = "application/problem+json";

const RESERVED: [&str; 5] = ["type", "title", "status", "detail", "instance"];

/// An error answer. `kind` is a stable slug merchants can match on (`type` is `/problems/<kind>`);
/// `detail` is for humans and never carries a token, a secret or a provider response body.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub extensions: Map<String, Value>,
    /// Extra response headers, e.g. `Allow` on 405 or `Retry-After` on 503.
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl Problem {
    pub fn new(status: u16, kind: &'static str, title: &'static str) -> Self {
        Problem {
            status,
            kind,
            title,
            detail: None,
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extension member. The members RFC 9457 defines cannot be overridden this way.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        assert!(
            !RESERVED.contains(&name),
            "problem extension {name:?} would shadow a standard member"
        );
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(&self) -> String {
        let body = Body {
            kind: format!("/problems/{}", self.kind),
            title: self.title,
            status: self.status,
            detail: self.detail.as_deref(),
            extensions: &self.extensions,
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"/problems/{}","status":{}}}"#,
                self.kind, self.status
            )
        })
    }

    // The catalogue below is the complete list of problem kinds the API answers with.

    pub fn not_found(what: &str) -> Self {
        Problem::new(404, "not-found", "Not found").detail(format!("{what} does not exist."))
    }

    pub fn route_not_found(path: &str) -> Self {
        Problem::new(404, "not-found", "Not found").detail(format!("No route for {path}."))
    }

    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        Problem::new(405, "method-not-allowed", "Method not allowed")
            .detail(format!("Allowed methods: {allow}."))
            .header("Allow", allow)
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Problem::new(400, "invalid-request", "Invalid request").detail(detail)
    }

    /// A request that parsed but names invalid values; `errors` lists them field by field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid.", errors.len()),
        };
        let list: Vec<Value> = errors
            .into_iter()
            .map(|e| serde_json::json!({"field": e.field, "message": e.message}))
            .collect();
        Problem::new(400, "validation-error", "Invalid request")
            .detail(detail)
            .with("errors", list)
    }

    pub fn unsupported_media_type() -> Self {
        Problem::new(415, "unsupported-media-type", "Unsupported media type")
            .detail("Send the body as application/json.")
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Problem::new(413, "payload-too-large", "Payload too large")
            .detail(format!("The body is limited to {limit} bytes."))
            .with("limit", limit)
    }

    pub fn unauthorized(detail: &str) -> Self {
        Problem::new(401, "unauthorized", "Unauthorized")
            .detail(detail.to_owned())
            .header("WWW-Authenticate", "Bearer")
    }

    /// A customer session that is missing, expired, tampered with, signed with an unknown key or
    /// malformed. Says no more than `detail`: which check failed is not the caller's business.
    pub fn session_required(detail: &str) -> Self {
        Problem::new(401, "unauthorized", "Unauthorized")
            .detail(detail.to_owned())
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
    }

    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Problem::new(429, "too-many-requests", "Too many requests")
            .detail(format!(
                "Too many requests from this customer or address; try again in {retry_after_seconds} seconds."
            ))
            .header("Retry-After", retry_after_seconds.to_string())
    }

    pub fn idempotency_key_required() -> Self {
        Problem::new(400, "idempotency-key-required", "Idempotency-Key required").detail(
            "Send an Idempotency-Key header (1 to 255 visible ASCII characters) so a retry \
             cannot move money twice.",
        )
    }

    pub fn idempotency_key_reused() -> Self {
        Problem::new(422, "idempotency-key-reused", "Idempotency-Key reused").detail(
            "This Idempotency-Key was already used with a different request; use a new key \
             for a new request.",
        )
    }

    pub fn conflict(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(409, kind, title).detail(detail)
    }

    /// The provider failed in a way that leaves the outcome unknown or undone; the request can be
    /// repeated with the same Idempotency-Key and continues where it stopped.
    pub fn provider_unavailable(detail: impl Into<String>) -> Self {
        Problem::new(503, "provider-unavailable", "Payment provider unavailable")
            .detail(detail)
            .header("Retry-After", "2")
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(500, "internal-error", "Internal error").detail(detail)
    }

    pub fn misconfigured(detail: impl Into<String>) -> Self {
        Problem::new(500, "misconfigured", "Server misconfigured").detail(detail)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_rfc9457_with_extensions() {
        let p = Problem::payload_too_large(16384);
        let v: Value = serde_json::from_str(&p.body()).unwrap();
        assert_eq!(v["type"], "/problems/payload-too-large");
        assert_eq!(v["status"], 413);
        assert_eq!(v["title"], "Payload too large");
        assert_eq!(v["limit"], 16384);
    }

    #[test]
    fn validation_lists_every_field() {
        let p = Problem::validation(vec![
            FieldError::new("amount", "must be positive"),
            FieldError::new("currency", "unknown"),
        ]);
        let v: Value = serde_json::from_str(&p.body()).unwrap();
        assert_eq!(v["errors"].as_array().unwrap().len(), 2);
        assert_eq!(v["errors"][1]["field"], "currency");
        assert_eq!(p.status, 400);
    }

    #[test]
    #[should_panic(expected = "shadow a standard member")]
    fn extensions_cannot_shadow_standard_members() {
        let _ = Problem::not_found("x").with("status", "canceled");
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let p = Problem::too_many_requests(60);
        assert_eq!(p.status, 429);
        assert_eq!(p.kind, "too-many-requests");
        assert!(p.headers.contains(&("Retry-After", "60".to_owned())));
    }

    #[test]
    fn method_not_allowed_carries_allow_header() {
        let p = Problem::method_not_allowed(&["GET", "DELETE"]);
        assert_eq!(p.status, 405);
        assert!(p.headers.contains(&("Allow", "GET, DELETE".to_owned())));
    }
}
