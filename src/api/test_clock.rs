//! `POST /v1/test-clock/tick {"now": "<RFC 3339>"}`: sets business time and runs the scheduler
//! tick as of then. Exists only with TEST_CLOCK=on, so tests and demos can walk a subscription
//! through months in seconds; a production deployment answers 404.

use serde::Deserialize;
use worker::{Request, Response};

use super::{body, respond};
use crate::billing::time::parse_rfc3339;
use crate::context::Ctx;
use crate::http::problem::{FieldError, Problem};
use crate::params;
use crate::services::tick;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TickRequest {
    now: String,
}

pub async fn tick(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    if !ctx.config.test_clock {
        return Err(Problem::route_not_found("/v1/test-clock/tick"));
    }
    let (input, _): (TickRequest, _) = body::json(req).await?;
    let now = parse_rfc3339(&input.now).map_err(|_| {
        Problem::validation(vec![FieldError::new(
            "now",
            "must be an RFC 3339 date-time",
        )])
    })?;
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
