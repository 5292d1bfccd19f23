//! Subscriptions for the merchant's backend: reads, cancel (now or at period end), pause,
//! resume, and plan changes that take effect with the next period.

use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::params;
use crate::store::db::stmt;
use crate::store::subscriptions::{self, SubscriptionRow, to_model};
use crate::views;
use recurring_core::billing::renewal::bounds;
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::http::router::SubscriptionAction;
use recurring_core::input::Fields;
use recurring_core::validate;

pub async fn load(ctx: &Ctx, id: &str) -> Result<SubscriptionRow, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The subscription"));
    }
    subscriptions::get(ctx.db(), id)
        .await?
        .ok_or_else(|| Problem::not_found("The subscription"))
}

pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let sub = load(ctx, id).await?;
    respond::json(200, &views::subscription(&sub))
}

pub async fn list(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let customer = body::query_param(req, "customerRef");
    if customer
        .as_deref()
        .is_some_and(|c| !validate::is_identifier(c))
    {
        return Err(Problem::invalid_request(
            "customerRef is not a customer reference.",
        ));
    }
    let status = body::query_param(req, "status");
    const STATUSES: [&str; 6] = [
        "active",
        "past_due",
        "unpaid",
        "paused",
        "canceled",
        "completed",
    ];
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(Problem::invalid_request(format!(
            "status must be one of {}.",
            STATUSES.join(", ")
        )));
    }
    // An unknown cursor is a bad request, as on every other list, not a missing resource.
    let after = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let s = load(&ctx.by_id(&id), &id)
                .await
                .map_err(|p| match p.status {
                    404 => Problem::invalid_request("startingAfter is not a subscription id."),
                    _ => p,
                })?;
            Some((s.created_at, s.id))
        }
    };
    let after = after.as_ref().map(|(t, id)| (*t, id.as_str()));
    let (customer, status) = (customer.as_deref(), status.as_deref());
    let rows =
        page::across_shards(
            ctx,
            limit + 1,
            |shard| async move {
                subscriptions::list(shard.db(), customer, status, after, limit + 1).await
            },
            |a: &SubscriptionRow, b: &SubscriptionRow| {
                (b.created_at, &b.id).cmp(&(a.created_at, &a.id))
            },
        )
        .await?;
    respond::json(200, &page::of(&rows, limit, |s| &s.id, views::subscription))
}

pub async fn events(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    load(ctx, id).await?;
    let events = subscriptions::events(ctx.db(), id).await?;
    // Members in the order the API has always listed them.
    #[derive(serde::Serialize)]
    struct StatusChange<'a> {
        at: String,
        from: Option<&'a str>,
        reason: &'a str,
        to: &'a str,
    }
    let data: Vec<_> = events
        .iter()
        .map(|e| StatusChange {
            at: format_rfc3339(e.at),
            from: e.from_status.as_deref(),
            reason: &e.reason,
            to: &e.to_status,
        })
        .collect();
    respond::data(200, &data)
}

/// What each action reads from its body, before anything is looked up or changed.
enum ActionInput {
    Cancel {
        at_period_end: bool,
        reason: Option<String>,
    },
    Bodyless,
    Change(Change),
}

/// A plan or quantity change, as asked.
pub struct Change {
    pub plan_id: Option<String>,
    pub quantity: Option<u32>,
    /// Now (prorated) or with the next period.
    pub now: bool,
}

/// The most seats a subscription may have.
const MAX_QUANTITY: i64 = 100_000;

/// Reads `{"planId"?, "quantity"?, "effective"?: "period_end" | "now"}`.
pub fn read_change(map: serde_json::Map<String, serde_json::Value>) -> Result<Change, Problem> {
    let mut f = Fields::new(map);
    let plan_id = f.optional_string("planId");
    if let Some(p) = &plan_id {
        f.check(validate::is_identifier(p), "planId", "is not a plan id");
    }
    let quantity = f.optional_integer("quantity");
    if let Some(q) = quantity {
        f.check(
            (1..=MAX_QUANTITY).contains(&q),
            "quantity",
            "must be an integer from 1 to 100000",
        );
    }
    let effective = f.optional_string("effective");
    if let Some(e) = &effective {
        f.check(
            e == "now" || e == "period_end",
            "effective",
            "must be \"now\" or \"period_end\"",
        );
    }
    f.check(
        plan_id.is_some() || quantity.is_some(),
        "planId",
        "a plan or a quantity is required",
    );
    f.finish()?;
    Ok(Change {
        plan_id,
        quantity: quantity.map(|q| q as u32),
        now: effective.as_deref() == Some("now"),
    })
}

async fn read_action(
    req: &mut Request,
    action: &SubscriptionAction,
) -> Result<ActionInput, Problem> {
    match action {
        // Optional body: left out, the subscription is canceled now.
        SubscriptionAction::Cancel => {
            let Some(map) = body::optional_object(req).await? else {
                return Ok(ActionInput::Cancel {
                    at_period_end: false,
                    reason: None,
                });
            };
            let mut f = Fields::new(map);
            let at_period_end = f.optional_bool("atPeriodEnd").unwrap_or(false);
            let reason = f.optional_string("reason");
            if let Some(r) = &reason {
                f.check(
                    r.chars().count() <= 200,
                    "reason",
                    "must be at most 200 characters",
                );
            }
            f.finish()?;
            Ok(ActionInput::Cancel {
                at_period_end,
                reason,
            })
        }
        SubscriptionAction::Pause | SubscriptionAction::Resume => {
            body::nothing(req).await?;
            Ok(ActionInput::Bodyless)
        }
        SubscriptionAction::ChangePlan => {
            Ok(ActionInput::Change(read_change(body::object(req).await?)?))
        }
    }
}

pub async fn act(
    req: &mut Request,
    ctx: &Ctx,
    id: &str,
    action: SubscriptionAction,
) -> Result<Response, Problem> {
    let input = read_action(req, &action).await?;
    let sub = load(ctx, id).await?;
    let now = ctx.now().await?;
    let db = ctx.db();
    let changed = match input {
        ActionInput::Cancel {
            at_period_end,
            reason,
        } => {
            let reason = reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            if at_period_end {
                require(
                    &sub,
                    &["active"],
                    "Only an active subscription can end at period end.",
                )?;
                db.run(
                    crate::sql!(
                        "UPDATE subscriptions SET cancel_at_period_end = 1, updated_at = ?
                     WHERE id = ? AND status = 'active'"
                    ),
                    params![now, id],
                )
                .await?
            } else {
                require(
                    &sub,
                    &["active", "past_due", "unpaid", "paused"],
                    "The subscription has already ended.",
                )?;
                let why = reason.unwrap_or_else(|| "canceled by the merchant".into());
                let changes = db
                    .batch(vec![
                        stmt(
                            crate::sql!(
                                "UPDATE subscriptions SET status = 'canceled', status_reason = ?,
                                 canceled_at = ?, updated_at = ?
                             WHERE id = ? AND status IN ('active', 'past_due', 'unpaid', 'paused')"
                            ),
                            params![why, now, now, id],
                        ),
                        // Dunning stops with the subscription.
                        stmt(
                            crate::sql!(
                                "UPDATE charges SET next_retry_at = NULL, updated_at = ?
                             WHERE subscription_id = ? AND status = 'failed'"
                            ),
                            params![now, id],
                        ),
                    ])
                    .await?;
                changes[0]
            }
        }
        ActionInput::Bodyless if action == SubscriptionAction::Pause => {
            require(
                &sub,
                &["active"],
                "Only an active subscription in good standing can be paused.",
            )?;
            db.run(
                crate::sql!("UPDATE subscriptions SET status = 'paused', status_reason = 'paused by the merchant',
                     paused_at = ?, updated_at = ?
                 WHERE id = ? AND status = 'active'"),
                params![now, now, id],
            )
            .await?
        }
        ActionInput::Bodyless => {
            require(
                &sub,
                &["paused"],
                "Only a paused subscription can be resumed.",
            )?;
            resume(ctx, &sub, now).await?
        }
        ActionInput::Change(change) if change.now => {
            return super::plan_changes::change_now(req, ctx, &sub, &change).await;
        }
        ActionInput::Change(change) => change_at_period_end(ctx, &sub, &change, now).await?,
    };
    if changed == 0 {
        return Err(Problem::conflict(
            "subscription-changed",
            "Subscription changed meanwhile",
            "The subscription changed while this request ran; read it and try again.",
        ));
    }
    let sub = load(ctx, id).await?;
    respond::json(200, &views::subscription(&sub))
}

/// Periods that passed while paused are not billed: billing resumes at the next boundary, and
/// the rest of the period in which the subscription resumes is free.
async fn resume(ctx: &Ctx, sub: &SubscriptionRow, now: i64) -> Result<usize, Problem> {
    let model = to_model(sub)?;
    let interval = model.terms.interval;
    let elapsed = recurring_core::billing::period::period_index_at(sub.anchor_at, interval, now)
        .map(|k| k + sub.anchor_period)
        .unwrap_or(sub.current_period);
    let period = elapsed.max(sub.current_period);
    let (start, end) = bounds(sub.anchor_at, sub.anchor_period, interval, period)
        .ok_or_else(|| Problem::internal("The billing period cannot be computed."))?;
    ctx.db()
        .run(
            crate::sql!("UPDATE subscriptions SET status = 'active', status_reason = 'resumed by the merchant',
                 paused_at = NULL, current_period = ?, current_period_start = ?,
                 current_period_end = ?, updated_at = ?
             WHERE id = ? AND status = 'paused' AND current_period = ?"),
            params![period, start, end, now, &sub.id, sub.current_period],
        )
        .await
}

/// A plan the subscription may change to: recurring, in its currency.
pub fn plan_for_change<'c>(
    ctx: &'c Ctx,
    sub: &SubscriptionRow,
    plan_id: &str,
) -> Result<&'c recurring_core::catalog::Plan, Problem> {
    let plan = ctx
        .config
        .catalog
        .get(plan_id)
        .ok_or_else(|| Problem::not_found(&format!("Plan {plan_id:?}")))?;
    if plan.is_installment_plan() || plan.currency != sub.currency {
        return Err(Problem::validation(vec![
            recurring_core::http::problem::FieldError::new(
                "planId",
                "must be a recurring plan in the subscription's currency",
            ),
        ]));
    }
    Ok(plan)
}

/// What every change requires of the subscription: running, recurring.
pub fn changeable(sub: &SubscriptionRow) -> Result<(), Problem> {
    require(
        sub,
        &["active", "past_due"],
        "Only a running subscription can change plan.",
    )?;
    if sub.kind != "recurring" {
        return Err(Problem::conflict(
            "not-recurring",
            "Not a recurring subscription",
            "An installment plan cannot change plan.",
        ));
    }
    Ok(())
}

async fn change_at_period_end(
    ctx: &Ctx,
    sub: &SubscriptionRow,
    change: &Change,
    now: i64,
) -> Result<usize, Problem> {
    changeable(sub)?;
    let plan = match &change.plan_id {
        Some(id) => Some(plan_for_change(ctx, sub, id)?),
        None => None,
    };
    let snapshot = plan.map(|p| serde_json::to_string(p).unwrap_or_default());
    ctx.db()
        .run(
            crate::sql!(
                "UPDATE subscriptions SET pending_plan_id = COALESCE(?1, pending_plan_id),
                   pending_plan = COALESCE(?2, pending_plan),
                   pending_quantity = COALESCE(?3, pending_quantity), updated_at = ?4
                 WHERE id = ?5 AND status IN ('active', 'past_due')"
            ),
            params![
                plan.map(|p| p.id.clone()),
                snapshot,
                change.quantity,
                now,
                &sub.id
            ],
        )
        .await
}

pub fn require(sub: &SubscriptionRow, allowed: &[&str], detail: &str) -> Result<(), Problem> {
    if allowed.contains(&sub.status.as_str()) {
        Ok(())
    } else {
        Err(Problem::conflict(
            "invalid-subscription-state",
            "Not allowed in this state",
            format!("{detail} It is {}.", sub.status),
        )
        .with("subscriptionStatus", sub.status.clone()))
    }
}
