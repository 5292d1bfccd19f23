//! Recurring card payments on Cloudflare Workers: the adapters around the pure core
//! (`recurring_core`).
//!
//! Layers, each importing only from those below it (tests/layers.rs checks):
//!
//! 1. runtime helpers: `log`, `meter`, `ids`, `outbound`, `slots`, `concurrently`,
//!    `access_keys`;
//! 2. `store` (the D1 ledger and the KV vault) and `psp` (the provider's fetch client);
//! 3. `context`: one invocation's configuration, clock, ledger, vault and provider;
//! 4. `views`: resources as the API and the events show them;
//! 5. `services`: flows that combine the provider, the vault and the ledger;
//! 6. `api`: one module per resource, routing and authentication;
//! 7. the `#[event]` entry points below, where configuration is read and passed down.

pub mod access_keys;
pub mod api;
pub mod concurrently;
pub mod context;
pub mod ids;
pub mod log;
pub mod meter;
pub mod outbound;
pub mod psp;
pub mod services;
pub mod slots;
pub mod store;
pub mod views;

use worker::{
    Context, Env, MessageBatch, QueueRetryOptionsBuilder, Request, Response, ScheduleContext,
    ScheduledEvent, event,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    api::handle(req, env, ctx).await
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // Misconfigured: nothing can run; the error is logged and the next tick tries again.
    let Ok(config) = context::load_config(&env) else {
        return;
    };
    services::tick::on_cron(event, &env, config).await;
}

#[event(queue)]
async fn queue(
    batch: MessageBatch<serde_json::Value>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    // Misconfigured: nothing can be driven or delivered; the messages come back after a delay.
    let Ok(config) = context::load_config(&env) else {
        batch.retry_all_with_options(
            &QueueRetryOptionsBuilder::new()
                .with_delay_seconds(60)
                .build(),
        );
        return Ok(());
    };
    if services::dead_letters::is_dead_letter_queue(&batch.queue()) {
        return services::dead_letters::consume(batch, &env, config).await;
    }
    // Both queues come here; a batch is all of one queue, so its first message tells which.
    let events = batch
        .raw_iter()
        .next()
        .is_some_and(|m| services::events::is_event_job(&m));
    if events {
        services::events::consume(batch, &env, config).await
    } else {
        services::fanout::consume(batch, &env, config).await
    }
}
