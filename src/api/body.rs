//! Reading request bodies within limits, strictly (see `input`), and the Idempotency-Key header.

use serde_json::{Map, Value};
use worker::Request;

use crate::http::problem::Problem;
use crate::input;
use crate::validate::{self, MAX_BODY_BYTES};

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

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    let url = req.url().ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
