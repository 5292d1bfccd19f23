//! Reading request bodies within limits, and the Idempotency-Key header.

use worker::Request;

use crate::http::problem::Problem;
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

/// A JSON API body: content type checked, size bounded, parsed twice: as a generic value (its
/// canonical form is the idempotency fingerprint) and as the route's typed request.
pub async fn json<T: serde::de::DeserializeOwned>(
    req: &mut Request,
) -> Result<(T, serde_json::Value), Problem> {
    let content_type = req
        .headers()
        .get("Content-Type")
        .ok()
        .flatten()
        .unwrap_or_default();
    let bytes = raw(req, MAX_BODY_BYTES).await?;
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Err(Problem::unsupported_media_type());
    }
    let value: serde_json::Value = validate::json_body(&bytes)?;
    if !value.is_object() {
        return Err(Problem::invalid_request("The body must be a JSON object."));
    }
    let typed = validate::json_body::<T>(&bytes)?;
    Ok((typed, value))
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
