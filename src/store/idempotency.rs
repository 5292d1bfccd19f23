//! Idempotency keys: the first request with a key claims it; the same request again finds the
//! resource it created; another request with the same key is refused.

use super::db::{Db, P, Stmt, stmt};
use crate::params;
use recurring_core::http::problem::Problem;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request claimed the key; the statements given with it ran in the same transaction.
    Won,
    /// The key was claimed before, for this same request: here is what it created.
    Replay { resource_id: String },
}

crate::row! {
    struct Row {
        request_hash: String,
        resource_id: String,
    }
}

/// SQL suffix that makes a statement of the batch run only if this claim won: append to an
/// `INSERT ... SELECT ...` and bind scope, key and resource id after the statement's own values.
pub const IF_WON: &str =
    "WHERE EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ? AND resource_id = ?)";

pub fn if_won_params(scope: &str, key: &str, resource_id: &str) -> Vec<P> {
    params![scope, key, resource_id]
}

/// Claims `key` for `resource_id`, running `then` (conditioned with [`IF_WON`]) atomically with it.
pub async fn claim(
    db: Db<'_>,
    scope: &str,
    key: &str,
    request_hash: &str,
    resource_id: &str,
    now: i64,
    then: Vec<Stmt>,
) -> Result<Claim, Problem> {
    let mut batch = vec![stmt(
        crate::sql!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING"
        ),
        params![scope, key, request_hash, resource_id, now],
    )];
    batch.extend(then);
    let changes = db.batch(batch).await?;
    if changes.first().is_some_and(|&n| n > 0) {
        return Ok(Claim::Won);
    }
    existing(db, scope, key, request_hash).await?.map_or_else(
        || {
            Err(Problem::internal(
                "The idempotency key vanished while being read.",
            ))
        },
        |resource_id| Ok(Claim::Replay { resource_id }),
    )
}

/// The resource an earlier identical request created, if the key was used; a different request
/// under the same key is a 422.
pub async fn existing(
    db: Db<'_>,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> Result<Option<String>, Problem> {
    let row: Option<Row> = db
        .first(
            crate::sql!(
                "SELECT request_hash, resource_id FROM idempotency_keys WHERE scope = ? AND key = ?"
            ),
            params![scope, key],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(row) if row.request_hash == request_hash => Ok(Some(row.resource_id)),
        Some(_) => Err(Problem::idempotency_key_reused()),
    }
}
