//! Charges fanned out over the `CHARGES` queue. The tick only closes due periods and enqueues
//! the due charge ids; queue consumer invocations drive them, many at once, each inside its own
//! budget, so a merchant with many renewals due at the same hour does not wait tick after tick.
//!
//! A consumer starts payments and leaves their outcomes to the provider's webhooks: the
//! completion webhook, confirmed by one status read in its own invocation, records the outcome
//! (the provider's guide: the webhook usually arrives before the status shows the outcome). So
//! a charge costs its consumer 2 of its 3 provider calls, and the consumer's six connections
//! carry half as many calls again. A webhook that never comes (a `callBackUrl` is not retried)
//! costs time, not money: the charge stays due, and the next tick enqueues it for a drive that
//! reads the status.
//!
//! Exactly-once does not rest on the queue: a message is only a request to drive a charge. The
//! drive takes the charge's lease, claims each attempt, and stops at once for a charge that is
//! final or driven elsewhere, so a duplicated, redelivered or late message changes nothing.

use std::cell::RefCell;

use crate::concurrently::{self, Job};
use serde::Serialize;
use worker::{
    BatchMessageBuilder, Env, MessageBatch, MessageExt, Queue, QueueRetryOptionsBuilder, RawMessage,
};

use crate::context::Ctx;
use crate::meter::Usage;
use crate::params;
use crate::services::charging::{self, Looked, Mode, Patience};
use recurring_core::billing::charge_driver::DriveEnd;
use recurring_core::config::Config;
use recurring_core::http::problem::Problem;

/// Messages per `sendBatch` call (the platform's limit).
const SEND_BATCH: usize = 100;

crate::row! {
    /// A queue message: which work to do. Read like a row (the body is a JavaScript object).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct ChargeJob {
        pub charge: String,
        /// A look at a payment started earlier whose outcome had not come: the how-manieth.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub check: Option<u32>,
    }
}

/// Looks at a started payment whose outcome has not come, before the cron's own: after
/// `CHARGE_OUTCOME_CHECK_SECONDS`, then twice and four times as long. A charge whose webhook
/// came meanwhile is final, and its look costs no provider call.
const OUTCOME_CHECKS: u32 = 3;

/// Marks up to `limit` due charges as enqueued and returns their ids, in one statement: an
/// overlapping tick sees the mark and does not enqueue them again while it holds.
pub async fn claim_due(
    ctx: &Ctx,
    now: i64,
    clock: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, Problem> {
    crate::row! {
        struct Due {
            id: String,
        }
    }
    let wall = ctx.wall_ms();
    let hold_until = wall + ctx.config.charge_queue_hold_ms;
    let due: Vec<Due> = ctx
        .db()
        .all(
            crate::sql!(
                "UPDATE charges SET queued_until = ?3
             WHERE id IN (SELECT id FROM charges
               WHERE kind != 'checkout'
                 AND ((status IN ('processing', 'pending')
                       AND (next_retry_at IS NULL OR next_retry_at <= ?1))
                      OR (status = 'failed' AND next_retry_at <= ?1))
                 AND (lease_until IS NULL OR lease_until < ?2)
                 AND (queued_until IS NULL OR queued_until < ?2) AND test_clock IS ?5
               ORDER BY COALESCE(next_retry_at, created_at), id
               LIMIT ?4)
             RETURNING id"
            ),
            params![now, wall, hold_until, limit, clock],
        )
        .await?;
    Ok(due.into_iter().map(|d| d.id).collect())
}

/// Sends the ids in batches; returns the ones that could not be sent (the caller drives them
/// itself, so a queue outage never stops billing).
pub async fn send(ctx: &Ctx, queue: &Queue, ids: Vec<String>) -> Vec<String> {
    let mut unsent = Vec::new();
    for chunk in ids.chunks(SEND_BATCH) {
        let jobs: Vec<ChargeJob> = chunk
            .iter()
            .map(|id| ChargeJob {
                charge: id.clone(),
                check: None,
            })
            .collect();
        if let Err(e) = queue.send_batch(jobs).await {
            ctx.log.error(
                "charges not queued",
                crate::fields! {"count": chunk.len(), "error": e.to_string()},
            );
            unsent.extend_from_slice(chunk);
        }
    }
    unsent
}

fn parse_job(raw: &RawMessage) -> Option<ChargeJob> {
    crate::store::row::one(raw.body()).ok()
}

/// What one consumer invocation did, logged as one line.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerReport {
    pub messages: u32,
    pub charges_driven: u32,
    pub succeeded: u32,
    pub declined: u32,
    pub failed: u32,
    pub waiting: u32,
    pub needs_attention: u32,
    /// Final or driven elsewhere: acknowledged and dropped.
    pub dropped: u32,
    pub retried: u32,
    /// Messages that were a look at an outcome that had not come (see [`OUTCOME_CHECKS`]).
    pub checks: u32,
    /// Charges still waiting for their outcome, to be looked at again later.
    pub checks_scheduled: u32,
    pub usage: Usage,
    /// `usage.d1Queries` per database of a sharded ledger, shard 0 first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub d1_queries_by_shard: Vec<u32>,
    pub wall_ms: i64,
}

/// The `queue` handler for the charges queue: drives every charge of the batch, many at once.
pub async fn consume(
    batch: MessageBatch<serde_json::Value>,
    env: &Env,
    config: Config,
) -> worker::Result<()> {
    let ctx = match Ctx::from_env(env, config) {
        Ok(ctx) => ctx,
        Err(_) => {
            batch.retry_all();
            return Ok(());
        }
    };
    let started = ctx.wall_ms();
    // Business time is read once for the whole batch, before its drives start at once.
    if let Err(p) = ctx.now().await {
        ctx.log.error(
            "charges batch not started",
            crate::fields! {"detail": p.detail},
        );
        batch.retry_all();
        return Ok(());
    }
    let mut report = ConsumerReport::default();
    // Each charge once, with the messages naming it; a look at an outcome only when every
    // message naming the charge is one (the latest look's number).
    let mut jobs: Vec<(String, Option<u32>, Vec<RawMessage>)> = Vec::new();
    for raw in batch.raw_iter() {
        report.messages += 1;
        match parse_job(&raw) {
            Some(job) => match jobs.iter_mut().find(|(id, _, _)| *id == job.charge) {
                Some((_, check, messages)) => {
                    *check = check.zip(job.check).map(|(a, b)| a.max(b));
                    messages.push(raw);
                }
                None => jobs.push((job.charge, job.check, vec![raw])),
            },
            None => {
                ctx.log.error(
                    "a charges queue message that is not a charge job",
                    crate::fields! {},
                );
                raw.ack();
            }
        }
    }
    let concurrency = ctx.config.consumer_concurrency as usize;
    let results = RefCell::new(Vec::new());
    let (done, ctx_ref) = (&results, &ctx);
    let mut drives = jobs.into_iter().map(|(id, check, messages)| -> Job<'_> {
        Box::pin(async move {
            // The charge's id says its shard: the drive runs there.
            let ctx_ref = &ctx_ref.by_id(&id);
            let end = match check {
                // A look: the outcome, read and recorded if the webhook has not brought it;
                // never a new payment.
                Some(_) => {
                    charging::settle_charge(ctx_ref, &id, Vec::new())
                        .await
                        .map(|(looked, _)| match looked {
                            Looked::Final => Ended::Looked,
                            Looked::Open | Looked::Held => Ended::StillOpen,
                        })
                }
                None => {
                    charging::drive_charge_end(ctx_ref, &id, Mode::Initiate, Patience::StartOnly)
                        .await
                        .map(Ended::Drove)
                }
            };
            done.borrow_mut().push((id, check, messages, end));
        })
    });
    concurrently::run(concurrency, &mut drives).await;
    // Charges to look at again, by the number of the next look.
    let mut to_check: Vec<(u32, String)> = Vec::new();
    let results = results.into_inner();
    // The shards the batch touched: their events leave with it.
    let mut shards: Vec<usize> = results.iter().map(|r| ctx.by_id(&r.0).shard()).collect();
    shards.sort_unstable();
    shards.dedup();
    for (id, check, messages, end) in results {
        match end {
            Ok(end) => {
                match end {
                    Ended::Drove(end) => {
                        report.charges_driven += 1;
                        match end {
                            DriveEnd::Succeeded => report.succeeded += 1,
                            DriveEnd::Declined => report.declined += 1,
                            DriveEnd::Failed => report.failed += 1,
                            DriveEnd::Waiting => {
                                report.waiting += 1;
                                to_check.push((1, id));
                            }
                            DriveEnd::NeedsAttention => report.needs_attention += 1,
                            DriveEnd::Busy => report.dropped += 1,
                        }
                    }
                    Ended::Looked => report.checks += 1,
                    Ended::StillOpen => {
                        report.checks += 1;
                        let next = check.unwrap_or(0) + 1;
                        if next <= OUTCOME_CHECKS {
                            to_check.push((next, id));
                        }
                    }
                }
                // Whatever is still open is looked at again, or the next tick's: the message
                // has done its part.
                messages.iter().for_each(MessageExt::ack);
            }
            Err(p) => {
                // The ledger could not be read or written: try the message again later.
                ctx.log.error(
                    "charge not driven",
                    crate::fields! {"chargeId": id, "detail": p.detail},
                );
                report.retried += 1;
                let retry = QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(30)
                    .build();
                messages.iter().for_each(|m| m.retry_with_options(&retry));
            }
        }
    }
    report.checks_scheduled = schedule_checks(&ctx, to_check).await;
    // The charges' events leave with this invocation (the cron catches any it could not send).
    for shard in shards {
        if let Err(p) = crate::services::events::dispatch(&ctx.on_shard(shard)).await {
            ctx.log
                .error("events not dispatched", crate::fields! {"detail": p.detail});
        }
    }
    report.usage = ctx.meter.usage();
    report.d1_queries_by_shard = ctx.meter.queries_by_shard(ctx.shard_count());
    report.wall_ms = ctx.wall_ms() - started;
    ctx.log.report("charges consumed", &report);
    Ok(())
}

/// How a message's charge ended.
enum Ended {
    /// A first drive (its payment started, or the charge moved on otherwise).
    Drove(DriveEnd),
    /// A look found the charge final (its webhook came, or the status read settled it).
    Looked,
    /// A look found the outcome still open.
    StillOpen,
}

/// Puts a look at each charge on the queue, delayed: the first after
/// `CHARGE_OUTCOME_CHECK_SECONDS`, each next one after twice as long. Returns how many were
/// scheduled; one that could not be is the cron's (the charge stays due).
async fn schedule_checks(ctx: &Ctx, mut to_check: Vec<(u32, String)>) -> u32 {
    let Some(queue) = ctx.charges_queue() else {
        return 0;
    };
    to_check.sort();
    let mut scheduled = 0;
    for group in to_check.chunk_by(|a, b| a.0 == b.0) {
        let check = group[0].0;
        let delay = ctx.config.charge_outcome_check_s << (check - 1).min(4);
        for chunk in group.chunks(SEND_BATCH) {
            let jobs = chunk.iter().map(|(_, id)| ChargeJob {
                charge: id.clone(),
                check: Some(check),
            });
            let batch = BatchMessageBuilder::new()
                .messages(jobs)
                .delay_seconds(delay)
                .build();
            match queue.send_batch(batch).await {
                Ok(()) => scheduled += chunk.len() as u32,
                Err(e) => ctx.log.warn(
                    "outcome checks not queued",
                    crate::fields! {"count": chunk.len(), "error": e.to_string()},
                ),
            }
        }
    }
    scheduled
}
