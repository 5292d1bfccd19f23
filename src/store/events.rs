//! Events for the merchant (the outbox the database's triggers write) and their deliveries.

use super::db::{BatchResult, Db, Stmt, stmt};
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    /// Also an archived event's form in the archive bucket (serde).
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct EventRow {
        pub seq: i64,
        pub id: String,
        /// The `type` column.
        pub kind: String,
        pub resource: String,
        pub resource_id: String,
        /// The resource's row at the change, as JSON.
        pub snapshot: String,
        pub created_at: i64,
        pub delivery: String,
        pub attempts: u32,
        pub round_base: u32,
        pub last_error: Option<String>,
        pub delivered_at: Option<i64>,
    }
}

const COLUMNS: &str = "seq, id, type AS kind, resource, resource_id, snapshot, created_at, delivery, \
    attempts, round_base, last_error, delivered_at";

/// Oldest first, after `after_seq`, optionally of one type.
pub async fn list(
    db: Db<'_>,
    after_seq: Option<i64>,
    kind: Option<&str>,
    limit: u32,
) -> Result<Vec<EventRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM events WHERE seq > ?1 AND (?2 IS NULL OR type = ?2)
         ORDER BY seq LIMIT ?3"
    );
    db.all(sql, params![after_seq.unwrap_or(0), kind, limit])
        .await
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<EventRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM events WHERE id = ?");
    db.first(sql, params![id]).await
}

/// Marks up to `limit` events for delivery (their ids come back, read with [`claimed_ids`]):
/// pending ones, and queued ones whose message has not been heard of since `lost_before` (wall
/// time): a message lost with a crashed invocation is sent again, never an event forgotten. A
/// statement, so that it can ride in the batch that writes the events.
pub fn claim_for_delivery_sql(wall_now: i64, lost_before: i64, limit: u32) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE events SET delivery = 'queued', queued_at = ?1
         WHERE seq IN (SELECT seq FROM events
           WHERE delivery = 'pending' OR (delivery = 'queued' AND queued_at < ?2)
           ORDER BY seq LIMIT ?3)
         RETURNING id"
        ),
        params![wall_now, lost_before, limit],
    )
}

pub fn claimed_ids(result: &BatchResult) -> Result<Vec<String>, Problem> {
    crate::row! {
        struct Id {
            id: String,
        }
    }
    Ok(result.rows::<Id>()?.into_iter().map(|i| i.id).collect())
}

/// With no webhook URL configured, pending events are only for the feed.
pub fn mark_feed_only_sql() -> Stmt {
    stmt(
        crate::sql!("UPDATE events SET delivery = 'none' WHERE delivery = 'pending'"),
        params![],
    )
}

/// How one delivery attempt ended.
pub enum Attempted<'a> {
    Delivered,
    /// Another attempt follows; the message comes back after its delay.
    Retry {
        error: &'a str,
    },
    /// The last retry failed: the event stays in the feed, marked failed.
    GaveUp {
        error: &'a str,
    },
}

/// Records attempt `attempt` (counting from 1) and where the event's delivery stands now.
pub fn record_attempt(
    event_id: &str,
    attempt: u32,
    status_code: Option<u16>,
    latency_ms: i64,
    outcome: &Attempted<'_>,
    wall_now: i64,
) -> Vec<Stmt> {
    let (delivery, error) = match outcome {
        Attempted::Delivered => ("delivered", None),
        Attempted::Retry { error } => ("queued", Some(*error)),
        Attempted::GaveUp { error } => ("failed", Some(*error)),
    };
    vec![
        stmt(
            crate::sql!("INSERT INTO event_deliveries (event_id, attempt, status_code, latency_ms, error, at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, attempt) DO NOTHING"),
            params![
                event_id,
                attempt,
                status_code.map(u32::from),
                latency_ms,
                error,
                wall_now
            ],
        ),
        stmt(
            crate::sql!("UPDATE events SET attempts = MAX(attempts, ?), delivery = ?, last_error = ?,
                 queued_at = ?, delivered_at = CASE WHEN ? = 'delivered' THEN ? END
             WHERE id = ? AND delivery IN ('queued', 'pending')"),
            params![
                attempt, delivery, error, wall_now, delivery, wall_now, event_id
            ],
        ),
    ]
}

/// Asks for a new round of deliveries of an event, whatever became of the earlier ones.
pub async fn redeliver(db: Db<'_>, id: &str) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE events SET delivery = 'pending', queued_at = NULL, round_base = attempts
             WHERE id = ?"
            ),
            params![id],
        )
        .await?;
    Ok(changes > 0)
}

crate::row! {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct DeliveryRow {
        pub attempt: u32,
        pub status_code: Option<u16>,
        pub latency_ms: i64,
        pub error: Option<String>,
        pub at: i64,
    }
}

pub async fn deliveries(db: Db<'_>, event_id: &str) -> Result<Vec<DeliveryRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT attempt, status_code, latency_ms, error, at FROM event_deliveries
         WHERE event_id = ? ORDER BY attempt"
        ),
        params![event_id],
    )
    .await
}
