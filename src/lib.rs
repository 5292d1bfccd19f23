//! Recurring card payments on Cloudflare Workers.
//!
//! The pure core (`billing`, `http`, `psp::{types, envelope, signature}`, `catalog`, `config`,
//! `validate`, `input`, `session`) has no runtime dependency and is tested natively. The
//! adapters (`api`, `services`, `store`, `psp::client`) connect it to Workers: fetch, D1, KV and
//! cron.

pub mod api;
pub mod billing;
pub mod catalog;
pub mod concurrently;
pub mod config;
pub mod context;
pub mod http;
pub mod input;
pub mod json_read;
pub mod log;
pub mod merchant_webhook;
pub mod meter;
pub mod outbound;
pub mod psp;
pub mod secure;
pub mod services;
pub mod session;
pub mod slots;
pub mod store;
pub mod validate;
pub mod views;

use worker::{
    Context, Env, MessageBatch, Request, Response, ScheduleContext, ScheduledEvent, event,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    api::handle(req, env, ctx).await
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    services::tick::on_cron(event, env).await;
}

#[event(queue)]
async fn queue(
    batch: MessageBatch<serde_json::Value>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    // Both queues come here; a batch is all of one queue, so its first message tells which.
    let events = batch
        .raw_iter()
        .next()
        .is_some_and(|m| services::events::is_event_job(&m));
    if events {
        services::events::consume(batch, env).await
    } else {
        services::fanout::consume(batch, env).await
    }
}
