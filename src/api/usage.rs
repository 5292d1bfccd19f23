//! `POST /v1/usage`: metered usage, billed at the close of the period it happened in. Idempotent
//! by key, so a usage reporter can retry freely without billing a unit twice.

use serde::Serialize;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::params;
use crate::store::db::stmt;
use crate::store::idempotency::{self, Claim};
use crate::store::subscriptions::{self, to_model};
use recurring_core::billing::time::{format_rfc3339, parse_rfc3339};
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::secure::request_fingerprint;
use recurring_core::validate;

/// How far in the future a usage timestamp may be: reporters' clocks drift.
const CLOCK_SKEW_MS: i64 = 5 * 60_000;
const MAX_QUANTITY: i64 = 1_000_000_000;

crate::row! {
    #[derive(Serialize)]
    struct UsageRow {
        id: String,
        subscription_id: String,
        period_index: u32,
        quantity: i64,
        occurred_at: i64,
    }
}

pub async fn record(req: &mut Request, ctx: &Ctx) -> Result<Response, Problem> {
    let key = body::required_idempotency_key(req)?;
    let map = body::object(req).await?;
    let hash = request_fingerprint("usage", &serde_json::Value::Object(map.clone()));
    let now = ctx.now().await?;
    let mut f = Fields::new(map);
    let subscription_id = f.string("subscriptionId");
    if let Some(id) = &subscription_id {
        f.check(
            validate::is_identifier(id),
            "subscriptionId",
            "is not a subscription id",
        );
    }
    let quantity = f.integer("quantity");
    if let Some(q) = quantity {
        f.check(
            (0..=MAX_QUANTITY).contains(&q),
            "quantity",
            "must be an integer from 0 to 1000000000",
        );
    }
    let occurred_at = match f.string("timestamp") {
        Some(t) => match parse_rfc3339(&t) {
            Ok(at) => Some(at),
            Err(_) => {
                f.error("timestamp", "must be an RFC 3339 date-time");
                None
            }
        },
        None => None,
    };
    if let Some(t) = occurred_at {
        f.check(
            t <= now + CLOCK_SKEW_MS,
            "timestamp",
            "must not be in the future",
        );
    }
    f.finish()?;
    let (subscription_id, quantity, occurred_at) = (
        subscription_id.unwrap_or_default(),
        quantity.unwrap_or_default(),
        occurred_at.unwrap_or_default(),
    );

    // The subscription's shard holds its usage and this key's claim.
    let ctx = &ctx.by_id(&subscription_id);
    let db = ctx.db();
    if let Some(id) = idempotency::existing(db, "usage", &key, &hash).await? {
        return replay(ctx, &id).await;
    }
    let sub = subscriptions::get(db, &subscription_id)
        .await?
        .ok_or_else(|| Problem::not_found("The subscription"))?;
    if sub.unit_amount.is_none() {
        return Err(Problem::conflict(
            "not-metered",
            "Not a metered subscription",
            "This subscription's plan has no unit price.",
        ));
    }
    if !matches!(sub.status.as_str(), "active" | "past_due") {
        // The same title and extension as every other `invalid-subscription-state`.
        return Err(Problem::conflict(
            "invalid-subscription-state",
            "Not allowed in this state",
            format!("Usage cannot be recorded on a {} subscription.", sub.status),
        )
        .with("subscriptionStatus", sub.status.clone()));
    }
    let interval = to_model(&sub)?.terms.interval;
    let period =
        recurring_core::billing::period::period_index_at(sub.anchor_at, interval, occurred_at)
            .map(|k| k + sub.anchor_period)
            .filter(|k| *k >= sub.current_period)
            .ok_or_else(period_closed)?;

    let usage_id = ctx.new_id("us");
    let mut insert_params = params![&usage_id, &sub.id, period, quantity, occurred_at, now];
    insert_params.extend(params![&sub.id, period]);
    insert_params.extend(idempotency::if_won_params("usage", &key, &usage_id));
    // Inserted only while its period is still open: once a period's charge is claimed its
    // usage is frozen, and a late record would never be billed.
    let insert = stmt(
        crate::sql!("INSERT INTO usage_records (id, subscription_id, period_index, quantity, occurred_at, created_at)
         SELECT ?, ?, ?, ?, ?, ?
         WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ? AND current_period <= ?
                         AND status IN ('active', 'past_due'))
           AND EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ? AND resource_id = ?)"),
        insert_params,
    );
    match idempotency::claim(db, "usage", &key, &hash, &usage_id, now, vec![insert]).await? {
        Claim::Replay { resource_id } => replay(ctx, &resource_id).await,
        Claim::Won => match get(ctx, &usage_id).await? {
            Some(row) => respond::json(201, &view(&row)),
            None => {
                // The period closed between our read and the insert: release the key so that
                // nothing of this request remains.
                db.run(
                    crate::sql!("DELETE FROM idempotency_keys WHERE scope = 'usage' AND key = ? AND resource_id = ?"),
                    params![&key, &usage_id],
                )
                .await?;
                Err(period_closed())
            }
        },
    }
}

fn period_closed() -> Problem {
    Problem::conflict(
        "period-closed",
        "Billing period closed",
        "The timestamp falls in a period that is already billed (or before the subscription).",
    )
}

async fn get(ctx: &Ctx, id: &str) -> Result<Option<UsageRow>, Problem> {
    ctx.db()
        .first(
            crate::sql!("SELECT id, subscription_id, period_index, quantity, occurred_at FROM usage_records WHERE id = ?"),
            params![id],
        )
        .await
}

async fn replay(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let row = get(ctx, id)
        .await?
        .ok_or_else(|| Problem::internal("An idempotency key points to missing usage."))?;
    respond::json(200, &view(&row))
}

/// Members in the order the API has always listed them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageView<'a> {
    id: &'a str,
    period_index: u32,
    quantity: i64,
    subscription_id: &'a str,
    timestamp: String,
}

fn view(row: &UsageRow) -> UsageView<'_> {
    UsageView {
        id: &row.id,
        period_index: row.period_index,
        quantity: row.quantity,
        subscription_id: &row.subscription_id,
        timestamp: format_rfc3339(row.occurred_at),
    }
}
