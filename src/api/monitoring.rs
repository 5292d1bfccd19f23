//! `GET /v1/monitoring` (merchant key or read key): the counts an operator alerts on, and the
//! alerts they raise (`status: "alert"` when any). Cheap enough to poll every minute: a handful
//! of indexed counts, no provider call (`/health` is the reachability check).

use futures_util::future::try_join_all;
use serde::Serialize;

use super::respond;
use crate::context::Ctx;
use crate::params;
use recurring_core::billing::time::{DAY_MS, format_rfc3339};
use recurring_core::http::problem::Problem;
use recurring_core::monitoring::{self, Counts};
use worker::Response;

crate::row! {
    struct Figures {
        dead_charges: u32,
        dead_events: u32,
        dead_total: u32,
        incidents_recent: u32,
        attention: u32,
        retrying: u32,
        failed: u32,
        last_tick_at: Option<i64>,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetters {
    /// Messages of each queue that reached its dead-letter queue in the last 24 hours.
    charges: u32,
    events: u32,
    /// Ever recorded.
    total: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deliveries {
    retrying: u32,
    failed: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Scheduler {
    #[serde(skip_serializing_if = "Option::is_none")]
    last_tick_at: Option<String>,
    late: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MonitoringView {
    status: &'static str,
    checked_at: String,
    alerts: Vec<&'static str>,
    dead_letters: DeadLetters,
    /// Incidents written in the last 24 hours.
    incidents: u32,
    charges_needing_attention: u32,
    deliveries: Deliveries,
    scheduler: Scheduler,
}

pub async fn get(ctx: &Ctx) -> Result<Response, Problem> {
    let wall = ctx.wall_ms();
    let since = wall - DAY_MS;
    let business_day_ago = ctx.now().await? - DAY_MS;
    // The same figures from every shard, added up (dead letters and tick reports are in `DB`
    // only: the other shards count none).
    let shards = try_join_all(ctx.every_shard().into_iter().map(|shard| async move {
        shard
            .db()
            .first::<Figures>(
                crate::sql!(
                    "SELECT
                   (SELECT COUNT(*) FROM dead_letters
                     WHERE received_at >= ?1 AND queue LIKE '%-charges-dlq') AS dead_charges,
                   (SELECT COUNT(*) FROM dead_letters
                     WHERE received_at >= ?1 AND queue LIKE '%-events-dlq') AS dead_events,
                   (SELECT COUNT(*) FROM dead_letters) AS dead_total,
                   (SELECT COUNT(*) FROM incidents WHERE created_at >= ?2) AS incidents_recent,
                   (SELECT COUNT(*) FROM charges WHERE attention IS NOT NULL
                      AND status IN ('processing', 'pending')) AS attention,
                   (SELECT COUNT(*) FROM events WHERE delivery IN ('pending', 'queued')
                      AND attempts > 0) AS retrying,
                   (SELECT COUNT(*) FROM events WHERE delivery = 'failed') AS failed,
                   (SELECT MAX(started_at) FROM tick_runs) AS last_tick_at"
                ),
                params![since, business_day_ago],
            )
            .await?
            .ok_or_else(|| Problem::internal("The ledger gave no figures."))
    }))
    .await?;
    let f = shards
        .into_iter()
        .reduce(|a, b| Figures {
            dead_charges: a.dead_charges + b.dead_charges,
            dead_events: a.dead_events + b.dead_events,
            dead_total: a.dead_total + b.dead_total,
            incidents_recent: a.incidents_recent + b.incidents_recent,
            attention: a.attention + b.attention,
            retrying: a.retrying + b.retrying,
            failed: a.failed + b.failed,
            last_tick_at: a.last_tick_at.max(b.last_tick_at),
        })
        .ok_or_else(|| Problem::internal("The ledger gave no figures."))?;
    let counts = Counts {
        dead_letters_recent: f.dead_charges + f.dead_events,
        incidents_recent: f.incidents_recent,
        charges_needing_attention: f.attention,
        deliveries_retrying: f.retrying,
        deliveries_failed: f.failed,
        last_tick_at: f.last_tick_at,
    };
    let alerts: Vec<&'static str> = monitoring::alerts(&counts, wall, ctx.config.test_clock)
        .into_iter()
        .map(|a| a.name())
        .collect();
    respond::json(
        200,
        &MonitoringView {
            status: if alerts.is_empty() { "ok" } else { "alert" },
            checked_at: format_rfc3339(wall),
            alerts,
            dead_letters: DeadLetters {
                charges: f.dead_charges,
                events: f.dead_events,
                total: f.dead_total,
            },
            incidents: f.incidents_recent,
            charges_needing_attention: f.attention,
            deliveries: Deliveries {
                retrying: f.retrying,
                failed: f.failed,
            },
            scheduler: Scheduler {
                last_tick_at: f.last_tick_at.map(format_rfc3339),
                late: monitoring::scheduler_late(f.last_tick_at, wall, ctx.config.test_clock),
            },
        },
    )
}
