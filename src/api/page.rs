//! Keyset pagination of list routes: `?limit=` (1-100, default 20) and `?startingAfter=<id>`.

use std::cmp::Ordering;
use std::future::Future;

use futures_util::future::try_join_all;
use serde::Serialize;
use worker::Request;

use super::body;
use crate::context::Ctx;
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

/// The first `want` rows of a list over every shard of the ledger, in the list's order: each
/// shard answers its own first `want` (with the same cursor), so the merged first `want` are
/// among them. With one shard this is that shard's answer as it is.
pub async fn across_shards<T, Fut>(
    ctx: &Ctx,
    want: u32,
    list: impl Fn(Ctx) -> Fut,
    order: impl Fn(&T, &T) -> Ordering,
) -> Result<Vec<T>, Problem>
where
    Fut: Future<Output = Result<Vec<T>, Problem>>,
{
    let pages = try_join_all(ctx.every_shard().into_iter().map(list)).await?;
    if pages.len() == 1 {
        return Ok(pages.into_iter().flatten().collect());
    }
    let mut rows: Vec<T> = pages.into_iter().flatten().collect();
    rows.sort_by(order);
    rows.truncate(want as usize);
    Ok(rows)
}

/// The row an id names, with the shard it is in: first the shard the id says, then the
/// others (records the id's form cannot place, such as events, which the database names).
pub async fn find_in_shards<T, Fut>(
    ctx: &Ctx,
    id: &str,
    get: impl Fn(Ctx) -> Fut,
) -> Result<Option<(Ctx, T)>, Problem>
where
    Fut: Future<Output = Result<Option<T>, Problem>>,
{
    let first = ctx.by_id(id).shard();
    let order = std::iter::once(first).chain((0..ctx.shard_count()).filter(|k| *k != first));
    for k in order {
        if let Some(row) = get(ctx.on_shard(k)).await? {
            return Ok(Some((ctx.on_shard(k), row)));
        }
    }
    Ok(None)
}
