//! The cron's retention sweep: records past their retention (`recurring_core::archive`) go to
//! the `ARCHIVE` bucket as gzip-compressed JSON lines, one object per batch, and only then
//! leave the ledger, in one transaction that records where they went. The object is written
//! first: a crash in between leaves the rows in place, and the next sweep writes the same
//! object again under the same name before deleting them.
//!
//! And the way back: an archived event is read by id from its object.

use serde::Serialize;

use crate::context::Ctx;
use crate::store::archives::{self, Written};
use crate::store::events::{DeliveryRow, EventRow};
use recurring_core::archive::{self, Kind};
use recurring_core::http::problem::Problem;

/// Objects one kind may write in one tick: the rest waits for the next minute.
const OBJECTS_PER_KIND: u32 = 4;

/// What one sweep moved to the archive.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub events: u32,
    pub webhooks: u32,
    pub ticks: u32,
    pub objects: u32,
    pub bytes: u64,
}

impl SweepReport {
    /// Both reports together (the tick adds up its shards').
    pub fn plus(&self, other: &SweepReport) -> SweepReport {
        SweepReport {
            events: self.events + other.events,
            webhooks: self.webhooks + other.webhooks,
            ticks: self.ticks + other.ticks,
            objects: self.objects + other.objects,
            bytes: self.bytes + other.bytes,
        }
    }
}

/// An archived event's line: the row as it was, with its delivery attempts.
#[derive(Serialize, serde::Deserialize)]
struct EventLine {
    event: EventRow,
    deliveries: Vec<DeliveryRow>,
}

/// Moves what is past its retention, while `budget` allows (each object costs a read, a
/// write to the bucket and a batch). Without an `ARCHIVE` bucket nothing moves.
pub async fn sweep(ctx: &Ctx, now: i64, budget: &dyn Fn() -> bool) -> Result<SweepReport, Problem> {
    let mut report = SweepReport::default();
    if ctx.archive().is_none() {
        return Ok(report);
    }
    let retention = ctx.config.retention;
    for kind in Kind::ALL {
        // Events and webhook records are dated in business time; tick reports by the wall
        // clock they ran on.
        let at = if kind == Kind::Ticks {
            ctx.wall_ms()
        } else {
            now
        };
        let cutoff = retention.cutoff(kind, at);
        for _ in 0..OBJECTS_PER_KIND {
            if !budget() {
                return Ok(report);
            }
            let moved = move_batch(ctx, kind, cutoff, retention.batch, &mut report).await?;
            if moved < retention.batch {
                break;
            }
        }
    }
    Ok(report)
}

/// A batch read from the ledger, ready for its object.
struct Batch {
    lines: Vec<String>,
    ids: Vec<String>,
    /// The first and last rows' keys and times: the object's name and its record.
    keys: (String, String),
    times: (i64, i64),
}

impl Batch {
    /// `rows` as lines, each with its id, key and time.
    fn of<T: Serialize>(
        rows: &[T],
        id: impl Fn(&T) -> String,
        key: impl Fn(&T) -> String,
        time: impl Fn(&T) -> i64,
    ) -> Result<Option<Batch>, Problem> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(None);
        };
        let lines = rows
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| Problem::internal(format!("archive line: {e}")))?;
        Ok(Some(Batch {
            lines,
            ids: rows.iter().map(id).collect(),
            keys: (key(first), key(last)),
            times: (time(first), time(last)),
        }))
    }
}

/// One batch of `kind`: how many rows it moved.
async fn move_batch(
    ctx: &Ctx,
    kind: Kind,
    cutoff: i64,
    limit: u32,
    report: &mut SweepReport,
) -> Result<u32, Problem> {
    let db = ctx.db();
    let batch = match kind {
        Kind::Events => {
            let rows: Vec<EventLine> = archives::old_events(db, cutoff, limit)
                .await?
                .into_iter()
                .map(|(event, deliveries)| EventLine { event, deliveries })
                .collect();
            Batch::of(
                &rows,
                |l| l.event.id.clone(),
                |l| l.event.seq.to_string(),
                |l| l.event.created_at,
            )?
        }
        Kind::Webhooks => Batch::of(
            &archives::old_webhooks(db, cutoff, limit).await?,
            |r| r.event_id.clone(),
            |r| r.event_id.clone(),
            |r| r.received_at,
        )?,
        Kind::Ticks => Batch::of(
            &archives::old_ticks(db, cutoff, limit).await?,
            |r| r.id.clone(),
            |r| r.id.clone(),
            |r| r.started_at,
        )?,
    };
    let Some(Batch {
        lines,
        ids,
        keys,
        times,
    }) = batch
    else {
        return Ok(0);
    };
    let packed = archive::pack(&lines);
    // Sequence numbers are per database: another shard's objects are told apart by its number.
    let keys = match ctx.shard() {
        0 => keys,
        k => (format!("s{k}-{}", keys.0), format!("s{k}-{}", keys.1)),
    };
    let object_key = archive::object_key(kind, times.0, &keys.0, &keys.1);
    let bucket = ctx
        .archive()
        .ok_or_else(|| Problem::misconfigured("The R2 binding ARCHIVE is missing."))?;
    ctx.meter.r2_op();
    bucket
        .put(object_key.as_str(), packed.clone())
        .execute()
        .await
        .map_err(|e| archive_failure(ctx, "write", &object_key, &e.to_string()))?;
    let rows = lines.len() as u32;
    let written = Written {
        kind,
        object_key: &object_key,
        rows,
        bytes: packed.len() as u32,
        first_at: times.0,
        last_at: times.1,
        archived_at: ctx.wall_ms(),
    };
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    db.batch(archives::remove_archived(&written, &id_refs))
        .await?;
    match kind {
        Kind::Events => report.events += rows,
        Kind::Webhooks => report.webhooks += rows,
        Kind::Ticks => report.ticks += rows,
    }
    report.objects += 1;
    report.bytes += packed.len() as u64;
    Ok(rows)
}

/// An event that left the ledger, as it was there, with its delivery attempts; `None` when
/// the ledger knows of no such archived event.
pub async fn archived_event(
    ctx: &Ctx,
    id: &str,
) -> Result<Option<(EventRow, Vec<DeliveryRow>)>, Problem> {
    let Some(found) = archives::archived_event(ctx.db(), id).await? else {
        return Ok(None);
    };
    let bucket = ctx
        .archive()
        .ok_or_else(|| Problem::misconfigured("The R2 binding ARCHIVE is missing."))?;
    ctx.meter.r2_op();
    let object = bucket
        .get(found.object_key.as_str())
        .execute()
        .await
        .map_err(|e| archive_failure(ctx, "read", &found.object_key, &e.to_string()))?;
    let missing = || archive_failure(ctx, "read", &found.object_key, "the object is missing");
    let object = object.ok_or_else(missing)?;
    let body = object.body().ok_or_else(missing)?;
    let bytes = body
        .bytes()
        .await
        .map_err(|e| archive_failure(ctx, "read", &found.object_key, &e.to_string()))?;
    let lines = archive::unpack(&bytes)
        .map_err(|_| archive_failure(ctx, "read", &found.object_key, "not gzip"))?;
    let line = archive::find_line(&lines, "/event/id", id).ok_or_else(missing)?;
    let line: EventLine = serde_json::from_value(line)
        .map_err(|e| archive_failure(ctx, "read", &found.object_key, &e.to_string()))?;
    Ok(Some((line.event, line.deliveries)))
}

/// The sequence number of an archived event: a feed cursor naming one keeps its place.
pub async fn archived_seq(ctx: &Ctx, id: &str) -> Result<Option<i64>, Problem> {
    Ok(archives::archived_event(ctx.db(), id)
        .await?
        .map(|found| found.seq))
}

fn archive_failure(ctx: &Ctx, action: &str, key: &str, error: &str) -> Problem {
    ctx.log.error(
        "archive error",
        crate::fields! {"action": action, "object": key, "error": error},
    );
    Problem::internal("The archive could not be read or written; try again shortly.")
}
