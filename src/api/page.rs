//! Keyset pagination of list routes: `?limit=` (1-100, default 20) and `?startingAfter=<id>`.

use serde::Serialize;
use worker::Request;

use super::body;
use recurring_core::http::problem::Problem;

pub fn limit(req: &Request) -> Result<u32, Problem> {
    match body::query_param(req, "limit") {
        None => Ok(20),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| Problem::invalid_request("limit must be an integer from 1 to 100.")),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T: Serialize> {
    data: Vec<T>,
    has_more: bool,
    /// The id to pass as `startingAfter` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A page from `rows`, read with `limit + 1` so that one extra row tells whether more follow.
pub fn of<'r, R, T: Serialize>(
    rows: &'r [R],
    limit: u32,
    id: impl Fn(&R) -> &str,
    view: impl Fn(&'r R) -> T,
) -> Page<T> {
    let has_more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    Page {
        next_cursor: has_more
            .then(|| rows.last().map(|r| id(r).to_owned()))
            .flatten(),
        data: rows.iter().map(view).collect(),
        has_more,
    }
}
