//! The records that leave the ledger for the archive bucket (see `recurring_core::archive`):
//! reading a batch of those past their retention, and, once the batch's object is written,
//! deleting exactly those rows in one transaction that also records where they went.
//!
//! A batch is named by its rows' ids, passed as one JSON array parameter (`json_each`): a row
//! that changed since it was read (an event whose redelivery was asked for) is neither indexed
//! nor deleted, and a row that became old enough meanwhile waits for the next batch, so what
//! is deleted is always in the object.

use serde::Serialize;

use super::db::{Db, Stmt, json_list, stmt};
use super::events::{DeliveryRow, EventRow};
use crate::params;
use recurring_core::archive::Kind;
use recurring_core::http::problem::Problem;

/// An event may leave once its delivery is over (delivered, failed for good, or feed only).
const EVENT_DONE: &str = "delivery IN ('delivered', 'failed', 'none')";

crate::row! {
    #[derive(Debug, Clone, Serialize)]
    pub struct WebhookRecord {
        pub event_id: String,
        pub event_type: String,
        pub order_id: Option<String>,
        pub reference_id: Option<String>,
        pub outcome: String,
        pub checks: i64,
        pub received_at: i64,
        pub next_check_at: Option<i64>,
        pub settled_at: Option<i64>,
    }
}

crate::row! {
    #[derive(Debug, Clone, Serialize)]
    pub struct TickRecord {
        pub id: String,
        pub trigger: String,
        pub as_of: i64,
        pub started_at: i64,
        pub finished_at: Option<i64>,
        pub stats: Option<String>,
    }
}

crate::row! {
    struct DeliveryOf {
        event_id: String,
        attempt: u32,
        status_code: Option<u16>,
        latency_ms: i64,
        error: Option<String>,
        at: i64,
    }
}

/// Events created before `cutoff` whose delivery is over, oldest first, each with its
/// delivery attempts.
pub async fn old_events(
    db: Db<'_>,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<(EventRow, Vec<DeliveryRow>)>, Problem> {
    let events: Vec<EventRow> = db
        .all(
            crate::sql!(
                "SELECT seq, id, type AS kind, resource, resource_id, snapshot, created_at,
                    delivery, attempts, round_base, last_error, delivered_at
             FROM events WHERE created_at < ?1 AND ",
                EVENT_DONE,
                " ORDER BY seq LIMIT ?2"
            ),
            params![cutoff, limit],
        )
        .await?;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(events.iter().map(|e| e.id.as_str()));
    let mut deliveries: Vec<DeliveryOf> = db
        .all(
            crate::sql!(
                "SELECT event_id, attempt, status_code, latency_ms, error, at
             FROM event_deliveries WHERE event_id IN (SELECT value FROM json_each(?1))
             ORDER BY event_id, attempt"
            ),
            params![ids],
        )
        .await?;
    Ok(events
        .into_iter()
        .map(|event| {
            let (mine, rest): (Vec<DeliveryOf>, Vec<DeliveryOf>) = std::mem::take(&mut deliveries)
                .into_iter()
                .partition(|d| d.event_id == event.id);
            deliveries = rest;
            let attempts = mine
                .into_iter()
                .map(|d| DeliveryRow {
                    attempt: d.attempt,
                    status_code: d.status_code,
                    latency_ms: d.latency_ms,
                    error: d.error,
                    at: d.at,
                })
                .collect();
            (event, attempts)
        })
        .collect())
}

/// Provider webhook records received before `cutoff` and settled (none still waits for its
/// confirmation), oldest first.
pub async fn old_webhooks(
    db: Db<'_>,
    cutoff: i64,
    limit: u32,
) -> Result<Vec<WebhookRecord>, Problem> {
    db.all(
        crate::sql!(
            "SELECT event_id, event_type, order_id, reference_id, outcome, checks, received_at,
                next_check_at, settled_at
         FROM webhook_events WHERE received_at < ?1 AND outcome <> 'received'
         ORDER BY received_at, event_id LIMIT ?2"
        ),
        params![cutoff, limit],
    )
    .await
}

/// Tick reports of ticks started before `cutoff` (wall time), oldest first.
pub async fn old_ticks(db: Db<'_>, cutoff: i64, limit: u32) -> Result<Vec<TickRecord>, Problem> {
    db.all(
        crate::sql!(
            "SELECT id, trigger, as_of, started_at, finished_at, stats
         FROM tick_runs WHERE started_at < ?1 ORDER BY started_at, id LIMIT ?2"
        ),
        params![cutoff, limit],
    )
    .await
}

/// What the sweep wrote to the bucket, for the ledger's record of it.
pub struct Written<'a> {
    pub kind: Kind,
    pub object_key: &'a str,
    pub rows: u32,
    pub bytes: u32,
    pub first_at: i64,
    pub last_at: i64,
    pub archived_at: i64,
}

/// One transaction: the object's record, then (events) where each event went, then the rows
/// themselves deleted. Written again for the same object (a retry after a lost answer), the
/// record is kept and rows already gone are simply not found.
pub fn remove_archived(written: &Written<'_>, ids: &[&str]) -> Vec<Stmt> {
    let ids = json_list(ids.iter().copied());
    let mut batch = vec![stmt(
        crate::sql!(
            "INSERT INTO archives (kind, object_key, rows, bytes, first_at, last_at, archived_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (object_key) DO NOTHING"
        ),
        params![
            written.kind.as_str(),
            written.object_key,
            written.rows,
            written.bytes,
            written.first_at,
            written.last_at,
            written.archived_at
        ],
    )];
    match written.kind {
        Kind::Events => {
            batch.push(stmt(
                crate::sql!(
                    "INSERT OR REPLACE INTO archived_events (id, seq, archive)
                 SELECT id, seq, (SELECT id FROM archives WHERE object_key = ?1) FROM events
                 WHERE id IN (SELECT value FROM json_each(?2)) AND ",
                    EVENT_DONE
                ),
                params![written.object_key, &ids],
            ));
            batch.push(stmt(
                crate::sql!(
                    "DELETE FROM event_deliveries WHERE event_id IN
                   (SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND ",
                    EVENT_DONE,
                    ")"
                ),
                params![&ids],
            ));
            batch.push(stmt(
                crate::sql!(
                    "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND ",
                    EVENT_DONE
                ),
                params![&ids],
            ));
        }
        Kind::Webhooks => batch.push(stmt(
            crate::sql!(
                "DELETE FROM webhook_events
             WHERE event_id IN (SELECT value FROM json_each(?1)) AND outcome <> 'received'"
            ),
            params![&ids],
        )),
        Kind::Ticks => batch.push(stmt(
            crate::sql!("DELETE FROM tick_runs WHERE id IN (SELECT value FROM json_each(?1))"),
            params![&ids],
        )),
    }
    batch
}

crate::row! {
    pub struct ArchivedEvent {
        pub seq: i64,
        pub object_key: String,
    }
}

/// Where an event that left the ledger went.
pub async fn archived_event(db: Db<'_>, id: &str) -> Result<Option<ArchivedEvent>, Problem> {
    db.first(
        crate::sql!(
            "SELECT e.seq AS seq, a.object_key AS object_key
         FROM archived_events e JOIN archives a ON a.id = e.archive WHERE e.id = ?"
        ),
        params![id],
    )
    .await
}

crate::row! {
    pub struct ArchiveTotals {
        pub kind: String,
        pub objects: i64,
        pub rows: i64,
        pub bytes: i64,
    }
}

/// What has been archived, by kind.
pub async fn totals(db: Db<'_>) -> Result<Vec<ArchiveTotals>, Problem> {
    db.all(
        crate::sql!(
            "SELECT kind, COUNT(*) AS objects, COALESCE(SUM(rows), 0) AS rows,
                COALESCE(SUM(bytes), 0) AS bytes
         FROM archives GROUP BY kind ORDER BY kind"
        ),
        params![],
    )
    .await
}
