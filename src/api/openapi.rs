//! `GET /openapi.json`: the API's OpenAPI 3.1 document, built into the worker so that every
//! deployment describes exactly its own version. The document is `openapi.json` at the
//! repository root; `tests/openapi.rs` keeps it and the router in step, and the end-to-end
//! harness validates every answer the tests receive against it.

use worker::Response;

use super::respond;
use crate::http::problem::Problem;

pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn get() -> Result<Response, Problem> {
    respond::static_json(DOCUMENT)
}
