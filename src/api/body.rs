//! Reading request bodies within limits, strictly (see `input`), and the Idempotency-Key header.

use serde_json::{Map, Value};
use worker::Request;

use recurring_core::http::problem::Problem;
use recurring_core::input;
use recurring_core::validate::{self, MAX_BODY_BYTES};

/// The raw body, refused with 413 above `limit` (checked on the declared length first, so an
/// oversized upload is not read at all).
pub async fn raw(req: &mut Request, limit: usize) -> Result<Vec<u8>, Problem> {
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Problem::payload_too_large(limit));
    }
    let bytes = req
        .bytes()
        .await
        .map_err(|_| Problem::invalid_request("The request body could not be read."))?;
    if bytes.len() > limit {
        return Err(Problem::payload_too_large(limit));
    }
    Ok(bytes)
}

fn is_json(req: &Request) -> bool {
    let content_type = req
        .headers()
        .get("Content-Type")
        .ok()
        .flatten()
        .unwrap_or_default();
    input::is_json_media_type(&content_type)
}

/// A JSON object body: `application/json` (else 415), bounded in size (else 413), and parsed
/// strictly. The route reads it with [`input::Fields`].
pub async fn object(req: &mut Request) -> Result<Map<String, Value>, Problem> {
    if !is_json(req) {
        return Err(Problem::unsupported_media_type());
    }
    let bytes = raw(req, MAX_BODY_BYTES).await?;
    input::object(&bytes)
}

/// The body of an action that takes none: empty, or `{}` sent as JSON.
pub async fn nothing(req: &mut Request) -> Result<(), Problem> {
    let bytes = raw(req, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    if !is_json(req) {
        return Err(Problem::unsupported_media_type());
    }
    input::nothing(&bytes)
}

/// A body that may be left out entirely (the defaults apply), else a JSON object.
pub async fn optional_object(req: &mut Request) -> Result<Option<Map<String, Value>>, Problem> {
    let bytes = raw(req, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(req) {
        return Err(Problem::unsupported_media_type());
    }
    input::object(&bytes).map(Some)
}

/// The Idempotency-Key header: `Ok(None)` when absent, 400 when malformed.
pub fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    match req.headers().get("Idempotency-Key").ok().flatten() {
        None => Ok(None),
        Some(key) if validate::is_idempotency_key(&key) => Ok(Some(key)),
        Some(_) => Err(Problem::invalid_request(
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        )),
    }
}

pub fn required_idempotency_key(req: &Request) -> Result<String, Problem> {
    idempotency_key(req)?.ok_or_else(Problem::idempotency_key_required)
}

/// The first `name=` of the query string, decoded like a form (`+` is a space).
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    query_value(&req.inner().url(), name)
}

/// Reads the query of the URL the platform already parsed and serialised, instead of parsing
/// the URL again: the `url` crate's parser (with its IDNA host handling) is a sizeable part of
/// the wasm, and nothing else in the worker needs it.
fn query_value(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::query_value;

    #[test]
    fn reads_the_first_value_of_a_name_decoded() {
        let url = "https://api.example.com/v1/charges?limit=5&customerRef=cus%201+a&limit=9";
        assert_eq!(query_value(url, "limit").as_deref(), Some("5"));
        assert_eq!(query_value(url, "customerRef").as_deref(), Some("cus 1 a"));
        assert_eq!(query_value(url, "startingAfter"), None);
    }

    #[test]
    fn ignores_the_path_and_fragment_and_tolerates_odd_queries() {
        assert_eq!(query_value("https://x.test/limit=5", "limit"), None);
        assert_eq!(query_value("https://x.test/a?", "limit"), None);
        assert_eq!(
            query_value("https://x.test/a?limit=5#limit=6", "limit").as_deref(),
            Some("5")
        );
        assert_eq!(
            query_value("https://x.test/a?limit&type=", "limit").as_deref(),
            Some("")
        );
        assert_eq!(
            query_value("https://x.test/a?status=%E2%9C%93%ZZ", "status").as_deref(),
            Some("\u{2713}%ZZ")
        );
    }
}
