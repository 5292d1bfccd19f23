//! The test clock (TEST_CLOCK=on only; a production deployment answers 404), so tests and demos
//! can walk subscriptions through months in seconds.
//!
//! `POST /v1/test-clock/tick {"now": "<RFC 3339>", "clock"?: "<name>"}` moves business time
//! forward and runs the scheduler tick as of then. Without `clock` it moves the global clock and
//! bills everything not on a named clock; with it, only the subscriptions of customers whose
//! session named that clock. `GET /v1/test-clock?clock=<name>` reads a clock.

use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::params;
use crate::services::tick;
use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::validate;

fn require_test_clock(ctx: &Ctx, path: &str) -> Result<(), Problem> {
    if ctx.config.test_clock {
        Ok(())
    } else {
        Err(Problem::route_not_found(path))
    }
}

fn clock_name(f: &mut Fields) -> Option<String> {
    let clock = f.optional_string("clock");
    if let Some(c) = &clock {
        f.check(
            validate::is_identifier(c),
            "clock",
            "must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        );
    }
    clock
}

pub async fn tick(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clock/tick")?;
    let mut f = Fields::new(body::object(req).await?);
    let now = f.string("now");
    let now = now.and_then(|n| match parse_rfc3339(&n) {
        Ok(at) => Some(at),
        Err(_) => {
            f.error("now", "must be an RFC 3339 date-time");
            None
        }
    });
    let clock = clock_name(&mut f);
    f.finish()?;
    let now = now.unwrap_or_default();
    // Time only moves forward: billed periods must stay billed. Until it is first moved, the
    // global clock reads as the wall clock, so its first move may not go back from there either;
    // a named clock starts where the global clock stands.
    let changes = match &clock {
        None => {
            ctx.db()
                .run(
                    crate::sql!(
                        "INSERT INTO test_clock (id, now_ms) SELECT 1, ?1 WHERE ?1 >= ?2
                     ON CONFLICT (id) DO UPDATE SET now_ms = excluded.now_ms
                     WHERE excluded.now_ms >= test_clock.now_ms"
                    ),
                    params![now, ctx.wall_ms()],
                )
                .await?
        }
        Some(name) => {
            let global = ctx.now().await?;
            ctx.db()
                .run(
                    crate::sql!(
                        "INSERT INTO test_clocks (name, now_ms) SELECT ?1, ?2 WHERE ?2 >= ?3
                     ON CONFLICT (name) DO UPDATE SET now_ms = excluded.now_ms
                     WHERE excluded.now_ms >= test_clocks.now_ms"
                    ),
                    params![name.as_str(), now, global],
                )
                .await?
        }
    };
    if changes == 0 {
        return Err(Problem::conflict(
            "clock-backwards",
            "The test clock cannot go back",
            "Pick a time at or after the clock's current time.",
        ));
    }
    ctx.set_now(now);
    let report = tick::run(ctx, "test-clock", clock.as_deref()).await?;
    respond::json(200, &report)
}

/// `GET /v1/test-clock?clock=`: business time on a clock (the global one without `clock`).
pub async fn read(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clock")?;
    let clock = body::query_param(req, "clock");
    if clock
        .as_deref()
        .is_some_and(|c| !validate::is_identifier(c))
    {
        return Err(Problem::invalid_request("clock is not a clock name."));
    }
    crate::row! {
        struct Row {
            now_ms: i64,
        }
    }
    let now = match &clock {
        None => ctx.now().await?,
        Some(name) => {
            let row: Option<Row> = ctx
                .db()
                .first(
                    crate::sql!("SELECT now_ms FROM test_clocks WHERE name = ?"),
                    params![name.as_str()],
                )
                .await?;
            match row {
                Some(r) => r.now_ms,
                None => ctx.now().await?,
            }
        }
    };
    // Members in the order the API has always listed them.
    #[derive(serde::Serialize)]
    struct Clock {
        #[serde(skip_serializing_if = "Option::is_none")]
        clock: Option<String>,
        now: String,
    }
    respond::json(
        200,
        &Clock {
            clock,
            now: format_rfc3339(now),
        },
    )
}
