//! Test clocks as objects (`TEST_CLOCK=on` only; elsewhere 404): a clock has a name and a start,
//! moves only forward, bills the customers put on it (a customer session names the clock), and
//! takes those customers and all their data with it when deleted, as Stripe's do.

use serde::Serialize;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::ids::new_id;
use crate::params;
use crate::services::tick;
use crate::store::db::{Stmt, stmt};
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

crate::row! {
    #[derive(Debug, Clone)]
    struct ClockRow {
        name: String,
        now_ms: i64,
        label: Option<String>,
        created_at: Option<i64>,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClockView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// Business time on the clock.
    now: String,
    /// Customers put on it (their checkouts named it).
    customers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

async fn customers_on(ctx: &Ctx, id: &str) -> Result<u32, Problem> {
    crate::row! {
        struct Count {
            n: u32,
        }
    }
    // A customer is in one shard: the shards' counts add up.
    let mut n = 0;
    for shard in ctx.every_shard() {
        let row: Option<Count> = shard
            .db()
            .first(
                crate::sql!(
                    "SELECT COUNT(DISTINCT customer_ref) AS n FROM checkouts WHERE test_clock = ?"
                ),
                params![id],
            )
            .await?;
        n += row.map_or(0, |r| r.n);
    }
    Ok(n)
}

async fn view(ctx: &Ctx, c: &ClockRow) -> Result<serde_json::Value, Problem> {
    let customers = customers_on(ctx, &c.name).await?;
    Ok(serde_json::to_value(ClockView {
        id: &c.name,
        name: c.label.as_deref(),
        now: format_rfc3339(c.now_ms),
        customers,
        created_at: c.created_at.map(format_rfc3339),
    })
    .unwrap_or_default())
}

async fn load(ctx: &Ctx, id: &str) -> Result<ClockRow, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The test clock"));
    }
    ctx.db()
        .first(
            crate::sql!("SELECT name, now_ms, label, created_at FROM test_clocks WHERE name = ?"),
            params![id],
        )
        .await?
        .ok_or_else(|| Problem::not_found("The test clock"))
}

fn instant(f: &mut Fields, name: &str) -> Option<i64> {
    let text = f.string(name);
    text.and_then(|t| match parse_rfc3339(&t) {
        Ok(at) => Some(at),
        Err(_) => {
            f.error(name, "must be an RFC 3339 date-time");
            None
        }
    })
}

/// `POST /v1/test-clocks {"name"?, "startsAt"}`.
pub async fn create(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clocks")?;
    let mut f = Fields::new(body::object(req).await?);
    let label = f.optional_string("name");
    if let Some(l) = &label {
        f.check(
            !l.trim().is_empty()
                && l.chars().count() <= 100
                && !recurring_core::input::has_control(l),
            "name",
            "must be 1-100 characters",
        );
    }
    let starts_at = instant(&mut f, "startsAt");
    f.finish()?;
    let id = new_id("clk");
    let now = ctx.wall_ms();
    ctx.db()
        .run(
            crate::sql!(
                "INSERT INTO test_clocks (name, now_ms, label, created_at) VALUES (?, ?, ?, ?)"
            ),
            params![&id, starts_at.unwrap_or_default(), label, now],
        )
        .await?;
    let clock = load(ctx, &id).await?;
    respond::json(201, &view(ctx, &clock).await?)
}

/// `GET /v1/test-clocks`: every clock, newest first.
pub async fn list(ctx: &Ctx) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clocks")?;
    let rows: Vec<ClockRow> = ctx
        .db()
        .all(
            crate::sql!(
                "SELECT name, now_ms, label, created_at FROM test_clocks
                 ORDER BY created_at DESC, name LIMIT 100"
            ),
            params![],
        )
        .await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        data.push(view(ctx, row).await?);
    }
    respond::data(200, &data)
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clocks/{testClockId}")?;
    let clock = load(ctx, id).await?;
    respond::json(200, &view(ctx, &clock).await?)
}

/// `POST /v1/test-clocks/:id/advance {"to"}`: forward only (the first move from the start
/// too); runs the scheduler for the clock's customers as of then.
pub async fn advance(req: &mut Request, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clocks/{testClockId}/advance")?;
    let mut f = Fields::new(body::object(req).await?);
    let to = instant(&mut f, "to");
    f.finish()?;
    let clock = load(ctx, id).await?;
    let to = to.unwrap_or_default();
    let changes = ctx
        .db()
        .run(
            crate::sql!("UPDATE test_clocks SET now_ms = ? WHERE name = ? AND now_ms <= ?"),
            params![to, &clock.name, to],
        )
        .await?;
    if changes == 0 {
        return Err(Problem::conflict(
            "clock-backwards",
            "The test clock cannot go back",
            "Pick a time at or after the clock's current time.",
        ));
    }
    ctx.set_now(to);
    let report = tick::run(ctx, "test-clock", Some(&clock.name)).await?;
    let clock = load(ctx, id).await?;
    respond::json(
        200,
        &serde_json::json!({"testClock": view(ctx, &clock).await?, "tick": report}),
    )
}

/// `DELETE /v1/test-clocks/:id`: the clock, its customers, and everything of theirs: cards
/// (their tokens in the vault too), checkouts, subscriptions, charges, refunds, usage,
/// balances, incidents and events.
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    require_test_clock(ctx, "/v1/test-clocks/{testClockId}")?;
    let clock = load(ctx, id).await?;
    crate::row! {
        struct Customer {
            customer_ref: String,
        }
    }
    // Each shard forgets its own customers; `DB` (shard 0), which holds the clock, goes last.
    let shards = ctx.every_shard();
    for shard in shards.iter().rev() {
        let customers: Vec<Customer> = shard
            .db()
            .all(
                crate::sql!("SELECT DISTINCT customer_ref FROM checkouts WHERE test_clock = ?"),
                params![&clock.name],
            )
            .await?;
        let refs: Vec<&str> = customers.iter().map(|c| c.customer_ref.as_str()).collect();
        for customer in &refs {
            ctx.vault().delete(customer).await?;
        }
        let list = crate::store::db::json_list(refs.iter().copied());
        shard.db().batch(forget(&list, &clock.name)).await?;
    }
    respond::empty(204, Vec::new())
}

/// The statements that delete the customers in `list` (a JSON array) with all their rows,
/// children first, and then the clock.
fn forget(list: &str, clock: &str) -> Vec<Stmt> {
    const STATEMENTS: [&str; 16] = [
        crate::sql!(
            "DELETE FROM event_deliveries WHERE event_id IN (SELECT id FROM events WHERE
               resource_id IN (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM subscriptions WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM checkouts WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM payment_methods WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT r.id FROM refunds r JOIN charges c ON c.id = r.charge_id
                                  WHERE c.customer_ref IN (SELECT value FROM json_each(?1))))"
        ),
        crate::sql!(
            "DELETE FROM events WHERE
               resource_id IN (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM subscriptions WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM checkouts WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT id FROM payment_methods WHERE customer_ref IN (SELECT value FROM json_each(?1)))
               OR resource_id IN (SELECT r.id FROM refunds r JOIN charges c ON c.id = r.charge_id
                                  WHERE c.customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM charge_attempts WHERE charge_id IN
               (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM provider_orders WHERE owner_id IN
               (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1))
                UNION SELECT id FROM checkouts WHERE customer_ref IN (SELECT value FROM json_each(?1))
                UNION SELECT r.id FROM refunds r JOIN charges c ON c.id = r.charge_id
                      WHERE c.customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM refunds WHERE charge_id IN
               (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM usage_records WHERE subscription_id IN
               (SELECT id FROM subscriptions WHERE customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM subscription_events WHERE subscription_id IN
               (SELECT id FROM subscriptions WHERE customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM incidents WHERE customer_ref IN (SELECT value FROM json_each(?1))
               OR charge_id IN (SELECT id FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1)))"
        ),
        crate::sql!(
            "DELETE FROM balance_transactions WHERE customer_ref IN (SELECT value FROM json_each(?1))"
        ),
        crate::sql!(
            "DELETE FROM customer_balances WHERE customer_ref IN (SELECT value FROM json_each(?1))"
        ),
        crate::sql!(
            "DELETE FROM discounts_applied WHERE customer_ref IN (SELECT value FROM json_each(?1))"
        ),
        crate::sql!("DELETE FROM charges WHERE customer_ref IN (SELECT value FROM json_each(?1))"),
        crate::sql!(
            "DELETE FROM subscriptions WHERE customer_ref IN (SELECT value FROM json_each(?1))"
        ),
        crate::sql!("DELETE FROM checkouts WHERE customer_ref IN (SELECT value FROM json_each(?1))"),
        crate::sql!(
            "DELETE FROM payment_methods WHERE customer_ref IN (SELECT value FROM json_each(?1))"
        ),
        crate::sql!("DELETE FROM customers WHERE customer_ref IN (SELECT value FROM json_each(?1))"),
    ];
    let mut statements: Vec<Stmt> = STATEMENTS
        .iter()
        .map(|sql| stmt(sql, params![list]))
        .collect();
    statements.push(stmt(
        crate::sql!("DELETE FROM test_clocks WHERE name = ?"),
        params![clock],
    ));
    statements
}
