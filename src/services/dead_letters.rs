//! The dead-letter queues' consumer: every message that exhausted its retries on the charges or
//! the events queue is recorded in the ledger (`dead_letters`) and acknowledged, so that
//! `GET /v1/monitoring` counts them and an operator can read what they were. Nothing is lost by
//! a dead letter: the cron enqueues a due charge again and dispatches an undelivered event
//! again; the record says that a queue is failing.

use worker::{Env, MessageBatch, MessageExt};

use crate::context::Ctx;
use crate::params;
use recurring_core::config::Config;

/// Whether a batch comes from a dead-letter queue (named `<queue>-dlq`).
pub fn is_dead_letter_queue(name: &str) -> bool {
    name.ends_with("-dlq")
}

pub async fn consume(
    batch: MessageBatch<serde_json::Value>,
    env: &Env,
    config: Config,
) -> worker::Result<()> {
    let queue = batch.queue();
    let Ok(ctx) = Ctx::from_env(env, config) else {
        batch.retry_all();
        return Ok(());
    };
    let now = ctx.wall_ms();
    for raw in batch.raw_iter() {
        let body = js_sys::JSON::stringify(&raw.body())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        let recorded = ctx
            .db()
            .run(
                crate::sql!(
                    "INSERT INTO dead_letters (id, queue, body, received_at)
                     VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
                ),
                params![raw.id(), &queue, &body, now],
            )
            .await;
        match recorded {
            Ok(_) => {
                ctx.log.error(
                    "dead letter",
                    crate::fields! {"queue": queue.as_str(), "messageId": raw.id()},
                );
                raw.ack();
            }
            Err(p) => {
                ctx.log.error(
                    "dead letter not recorded",
                    crate::fields! {"queue": queue.as_str(), "detail": p.detail},
                );
                raw.retry();
            }
        }
    }
    Ok(())
}
