//! `POST /v1/test-clock/tick {"now": "<RFC 3339>"}`: sets business time and runs the scheduler
//! tick as of then. Exists only with TEST_CLOCK=on, so tests and demos can walk a subscription
//! through months in seconds; a production deployment answers 404.

use worker::{Request, Response};

use super::{body, respond};
use crate::billing::time::parse_rfc3339;
use crate::context::Ctx;
use crate::http::problem::Problem;
use crate::input::Fields;
use crate::params;
use crate::services::tick;

pub async fn tick(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    if !ctx.config.test_clock {
        return Err(Problem::route_not_found("/v1/test-clock/tick"));
    }
    let mut f = Fields::new(body::object(req).await?);
    let now = f.string("now");
    let now = now.and_then(|n| match parse_rfc3339(&n) {
        Ok(at) => Some(at),
        Err(_) => {
            f.error("now", "must be an RFC 3339 date-time");
            None
        }
    });
    f.finish()?;
    let now = now.unwrap_or_default();
    // Time only moves forward: billed periods must stay billed.
    let changes = ctx
        .db()
        .run(
            "INSERT INTO test_clock (id, now_ms) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET now_ms = excluded.now_ms
             WHERE excluded.now_ms >= test_clock.now_ms",
            params![now],
        )
        .await?;
    if changes == 0 {
        return Err(Problem::conflict(
            "clock-backwards",
            "The test clock cannot go back",
            "Pick a time at or after the clock's current time.",
        ));
    }
    ctx.set_now(now);
    let report = tick::run(ctx, "test-clock").await?;
    respond::json(200, &report)
}
