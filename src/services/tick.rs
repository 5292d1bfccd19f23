//! The scheduler tick (Cron Triggers, or the test clock): close ended periods, then drive due
//! charges (new ones, dunning retries, unsettled ones) with bounded concurrency, inside the
//! invocation's budget. Work left over waits for the next tick, oldest first.
//!
//! Safety does not depend on ticks being alone: a period is closed by a conditional UPDATE
//! together with the conditional INSERT of its charge (same transaction), and a charge is
//! driven only under its lease. Two overlapping ticks, a retried tick, or one that died halfway
//! can neither charge a period twice nor skip one.

use std::cell::RefCell;

use recurring_core::config::Config;
use serde::Serialize;
use worker::{Env, ScheduledEvent};

use crate::log::{self, Level};

use crate::concurrently::{self, Job};
use crate::context::Ctx;
use crate::ids::new_id;
use crate::meter::Usage;
use crate::params;
use crate::services::charging::Patience;
use crate::services::discounting::{self, Discounts};
use crate::services::{
    activation, charging, events, fanout, order_watching, refunding, retention, settling,
    webhook_events,
};
use crate::store::balances as balance_store;
use crate::store::charges::{self, NewCharge};
use crate::store::db::{Stmt, stmt};
use crate::store::subscriptions::{self, SubscriptionRow};
use recurring_core::billing::charge_driver::DriveEnd;
use recurring_core::billing::renewal::{self, Close};
use recurring_core::http::problem::Problem;

/// Pause before the second pass re-reads charges still in flight, when the first pass was too
/// short to give the provider time (a tick with only a few charges).
const SECOND_PASS_MIN_GAP_MS: i64 = 300;
/// A conservative bound on the platform calls one charge costs (provider calls, D1, KV).
const CALLS_PER_CHARGE: u32 = 16;
/// The D1 round trips a shard's visit costs with nothing due (the queries that find nothing).
const SHARD_CALLS: u32 = 12;
/// Pending checkouts and refunds are asked about after this long without news.
const RECONCILE_AFTER_MS: i64 = 5 * 60_000;

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    pub tick_id: String,
    pub as_of: String,
    /// Trials announced as ending within three days.
    pub trials_ending: u32,
    pub periods_closed: u32,
    pub subscriptions_canceled: u32,
    /// Due charges sent to the charges queue for its consumers to drive.
    pub charges_enqueued: u32,
    pub charges_driven: u32,
    pub succeeded: u32,
    pub declined: u32,
    pub failed: u32,
    pub waiting: u32,
    pub needs_attention: u32,
    pub busy: u32,
    pub checkouts_settled: u32,
    pub refunds_settled: u32,
    /// Orders we stopped using that were looked at for a late payment.
    pub orders_watched: u32,
    /// Refunds whose purchase was read again (voids to confirm, settlements to wait for).
    pub refunds_advanced: u32,
    /// Settlement follow-up of charges and refunds.
    pub settlement: crate::services::settling::FollowReport,
    /// Provider webhooks whose confirmation was due.
    pub webhooks_confirmed: u32,
    /// Events put on their way to the merchant.
    pub events_dispatched: u32,
    /// Records past their retention moved to the archive bucket.
    pub archived: crate::services::retention::SweepReport,
    /// True when the budget ran out with due work left; the next tick continues.
    pub work_left: bool,
    /// Close-and-enqueue rounds after the first (fanned out only).
    pub rounds: u32,
    pub usage: Usage,
    /// `usage.d1Queries` per database of a sharded ledger, shard 0 first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub d1_queries_by_shard: Vec<u32>,
    pub wall_ms: i64,
}

pub async fn on_cron(event: ScheduledEvent, env: &Env, config: Config) {
    let ctx = match Ctx::from_env(env, config) {
        Ok(ctx) => ctx,
        Err(p) => {
            log::emit_plain(
                Level::Error,
                "tick not run",
                crate::fields! {"detail": p.detail},
            );
            return;
        }
    };
    match run(&ctx, &event.cron(), None).await {
        // The report is the line: what the tick did and what it spent.
        Ok(report) => ctx.log.report("tick", &report),
        Err(p) => ctx
            .log
            .error("tick failed", crate::fields! {"detail": p.detail}),
    }
}

/// One tick as of the current business time. `clock`: a named test clock, whose subscriptions
/// and charges alone it bills (`None`: everything not on a named clock, as in production).
pub async fn run(ctx: &Ctx, trigger: &str, clock: Option<&str>) -> Result<TickReport, Problem> {
    let started = ctx.wall_ms();
    let now = ctx.now().await?;
    let mut report = TickReport {
        tick_id: new_id("tick"),
        as_of: recurring_core::billing::time::format_rfc3339(now),
        ..TickReport::default()
    };
    ctx.main_db()
        .run(
            crate::sql!(
                "INSERT INTO tick_runs (id, trigger, as_of, started_at) VALUES (?, ?, ?, ?)"
            ),
            params![&report.tick_id, trigger, now, started],
        )
        .await?;

    // Shard by shard, from one that changes every minute: when the budget runs out, the shards
    // not reached wait for the next tick, which does not start with the same shard.
    let shards = ctx.shard_count();
    let first = usize::try_from(now.div_euclid(60_000)).unwrap_or(0) % shards;
    for (visited, k) in (0..shards).map(|i| (first + i) % shards).enumerate() {
        if visited > 0 && !within_budget(ctx, started, SHARD_CALLS) {
            report.work_left = true;
            break;
        }
        run_shard(&ctx.on_shard(k), now, clock, started, &mut report).await?;
    }

    report.usage = ctx.meter.usage();
    report.d1_queries_by_shard = ctx.meter.queries_by_shard(ctx.shard_count());
    report.wall_ms = ctx.wall_ms() - started;
    let stats = serde_json::to_string(&report).unwrap_or_default();
    ctx.main_db()
        .run(
            crate::sql!("UPDATE tick_runs SET finished_at = ?, stats = ? WHERE id = ?"),
            params![ctx.wall_ms(), stats, &report.tick_id],
        )
        .await?;
    Ok(report)
}

/// The tick's work in one shard of the ledger, with what is left of the invocation's budget.
async fn run_shard(
    ctx: &Ctx,
    now: i64,
    clock: Option<&str>,
    started: i64,
    report: &mut TickReport,
) -> Result<(), Problem> {
    // Fanned out, the tick's own share of a charge is a part of a D1 batch and of a queue send:
    // it closes and enqueues round after round (TICK_MAX_CHARGES each) while due work is left
    // and the budget allows, so a day's renewals do not wait for a minute per round.
    report.trials_ending += announce_trial_ends(ctx, now, clock).await?;
    let work_left_before = report.work_left;
    loop {
        report.work_left = false;
        close_due_periods(ctx, now, clock, report).await?;
        let all_queued = drive_due_charges(ctx, now, clock, started, report).await?;
        if !(all_queued && report.work_left && another_round_fits(ctx, started)) {
            break;
        }
        report.rounds += 1;
    }
    report.work_left |= work_left_before;
    // Reconciliation is the provider's business, not a clock's: the global tick does it.
    let global = clock.is_none();
    if global && within_budget(ctx, started, 4 * CALLS_PER_CHARGE) {
        let older = now - RECONCILE_AFTER_MS;
        report.checkouts_settled += activation::reconcile_stale(ctx, older, 10).await?;
        report.refunds_settled += settle_refunds(ctx, older).await?;
    }
    if global && within_budget(ctx, started, 4 * CALLS_PER_CHARGE) {
        report.refunds_advanced += advance_due_refunds(ctx, now).await?;
    }
    if global && within_budget(ctx, started, 4 * CALLS_PER_CHARGE) {
        let budget = || within_budget(ctx, started, 4 * CALLS_PER_CHARGE);
        let followed = settling::follow_due(ctx, now, SETTLEMENT_READS_PER_TICK, &budget).await?;
        report.settlement = report.settlement.plus(&followed);
    }
    if global && within_budget(ctx, started, 4 * CALLS_PER_CHARGE) {
        report.webhooks_confirmed += webhook_events::confirm_due(ctx, 20).await?;
    }
    if global && within_budget(ctx, started, 4 * CALLS_PER_CHARGE) {
        report.orders_watched += order_watching::look_at_due(ctx, 20).await?;
    }
    // Events written by this tick, and any a crash kept from leaving.
    report.events_dispatched += events::dispatch(ctx).await?;
    // Last: what is past its retention leaves the ledger with what budget is left (the tick
    // reports, in `DB`, with shard 0's turn).
    if global {
        let budget = || within_budget(ctx, started, 4 * CALLS_PER_CHARGE);
        let archived = retention::sweep(ctx, now, &budget).await?;
        report.archived = report.archived.plus(&archived);
    }
    Ok(())
}

/// Announces the trials ending within three days (`subscription.trial_will_end`, written once
/// by the trigger on `trial_notified_at`) of subscriptions still in their trial.
async fn announce_trial_ends(ctx: &Ctx, now: i64, clock: Option<&str>) -> Result<u32, Problem> {
    let changed = ctx
        .db()
        .run(
            crate::sql!(
                "UPDATE subscriptions SET trial_notified_at = ?1, updated_at = ?1
             WHERE id IN (SELECT id FROM subscriptions
                          WHERE trial_notice_at <= ?1 AND trial_notified_at IS NULL
                            AND trial_notice_at IS NOT NULL AND test_clock IS ?2
                          LIMIT 100)
               AND trial_notified_at IS NULL AND current_period = 0
               AND status IN ('active', 'paused') AND cancel_at_period_end = 0"
            ),
            params![now, clock],
        )
        .await?;
    Ok(changed as u32)
}

/// Calls one more close-and-enqueue round costs at most: the due subscriptions read, their
/// balances and discounts, the close batches, the claim and the sends (metered plans add one
/// read each, counted as they go).
const ROUND_CALLS: u32 = 18;

/// Another round leaves the reconciliation steps their share: their calls, and a fifth of the
/// wall-time budget.
fn another_round_fits(ctx: &Ctx, started: i64) -> bool {
    let wall_left = i64::from(ctx.config.tick.max_wall_ms) * 4 / 5;
    within_budget(ctx, started, ROUND_CALLS + 3 * 4 * CALLS_PER_CHARGE)
        && ctx.wall_ms() - started < wall_left
}

fn within_budget(ctx: &Ctx, started: i64, next_cost: u32) -> bool {
    let budget = ctx.config.tick;
    ctx.meter.platform_calls() + next_cost <= budget.max_subrequests
        && ctx.wall_ms() - started < i64::from(budget.max_wall_ms)
}

/// Claims the next period of every subscription whose period ended, oldest first. Each claim is
/// cheap (D1 only); the provider work happens in the drive phase.
async fn close_due_periods(
    ctx: &Ctx,
    now: i64,
    clock: Option<&str>,
    report: &mut TickReport,
) -> Result<(), Problem> {
    let limit = ctx.config.tick.max_charges;
    let sql = crate::sql!(
        "SELECT ",
        subscriptions::COLUMNS,
        " FROM subscriptions
         WHERE status = 'active' AND current_period_end <= ? AND test_clock IS ?
         ORDER BY current_period_end LIMIT ?"
    );
    let due: Vec<SubscriptionRow> = ctx.db().all(sql, params![now, clock, limit]).await?;
    if due.len() as u32 == limit {
        report.work_left = true;
    }
    let mut balances = Balances::of(ctx, &due).await?;
    let mut discounts = Discounts::of(ctx, &due).await?;
    // Each close is a guarded pair of statements; many go to D1 in one batch, so closing a
    // period costs a fraction of a round trip.
    let mut planned: Vec<(Closed, Vec<Stmt>, &str)> = Vec::new();
    for sub in &due {
        if !within_budget(ctx, ctx.wall_ms(), 2) {
            report.work_left = true;
            break;
        }
        match plan_close(ctx, sub, now, &mut balances, &mut discounts).await {
            Ok(Some((closed, statements))) => planned.push((closed, statements, &sub.id)),
            Ok(None) => {}
            // One broken subscription must not stop the others' billing.
            Err(p) => ctx.log.error(
                "period not closed",
                crate::fields! {"subscriptionId": sub.id, "detail": p.detail},
            ),
        }
    }
    for chunk in planned.chunks_mut(CLOSES_PER_BATCH) {
        let counts: Vec<usize> = chunk.iter().map(|(_, s, _)| s.len()).collect();
        let statements: Vec<Stmt> = chunk
            .iter_mut()
            .flat_map(|(_, s, _)| std::mem::take(s))
            .collect();
        let changes = match ctx.db().batch(statements).await {
            Ok(changes) => changes,
            // A batch is one transaction: one broken close fails them all. They are replanned
            // and closed one by one, so the others' billing goes on.
            Err(_) => {
                close_one_by_one(ctx, &due, chunk.iter().map(|(_, _, id)| *id), now, report).await;
                continue;
            }
        };
        // The first statement of each close is its guarded update: 1 when the close held.
        let mut at = 0;
        for ((closed, _, _), count) in chunk.iter().zip(counts) {
            if changes.get(at).is_some_and(|&n| n > 0) {
                match closed {
                    Closed::Renewed => report.periods_closed += 1,
                    Closed::Canceled => report.subscriptions_canceled += 1,
                }
            }
            at += count;
        }
    }
    Ok(())
}

/// Closes per D1 batch: each is two statements, well under the platform's statement limits.
const CLOSES_PER_BATCH: usize = 50;

async fn close_one_by_one<'a>(
    ctx: &Ctx,
    due: &[SubscriptionRow],
    ids: impl Iterator<Item = &'a str>,
    now: i64,
    report: &mut TickReport,
) {
    for id in ids {
        let Some(sub) = due.iter().find(|s| s.id == id) else {
            continue;
        };
        let mut balances = Balances::default();
        if let Ok(found) = Balances::of(ctx, std::slice::from_ref(sub)).await {
            balances = found;
        }
        let mut discounts = match Discounts::of(ctx, std::slice::from_ref(sub)).await {
            Ok(found) => found,
            Err(p) => {
                ctx.log.error(
                    "period not closed",
                    crate::fields! {"subscriptionId": id, "detail": p.detail},
                );
                continue;
            }
        };
        let closed = match plan_close(ctx, sub, now, &mut balances, &mut discounts).await {
            Ok(Some((closed, statements))) => ctx
                .db()
                .batch(statements)
                .await
                .map(|changes| (changes.first().is_some_and(|&n| n > 0)).then_some(closed)),
            Ok(None) => Ok(None),
            Err(p) => Err(p),
        };
        match closed {
            Ok(Some(Closed::Renewed)) => report.periods_closed += 1,
            Ok(Some(Closed::Canceled)) => report.subscriptions_canceled += 1,
            Ok(None) => {}
            Err(p) => ctx.log.error(
                "period not closed",
                crate::fields! {"subscriptionId": id, "detail": p.detail},
            ),
        }
    }
}

/// The condition of every write that closes a period: the subscription is still at the period
/// we read and, for metered plans, that period's usage sum is still the one we billed. Binds
/// id, current period, id, current period, usage sum.
macro_rules! unchanged_since_read {
    () => {
        "WHERE id = ? AND current_period = ? AND status = 'active'
           AND (SELECT COALESCE(SUM(quantity), 0) FROM usage_records
                WHERE subscription_id = ? AND period_index = ?) = ?"
    };
}

/// The condition that the discounts a close planned with are as read (bound by
/// `discounting::Guard::where_params`): the subscription's own, and its customer's.
macro_rules! discounts_unchanged {
    () => {
        " AND coupon_id IS ? AND discount_periods_left IS ?
          AND (SELECT coupon_id FROM customers WHERE customer_ref = ?) IS ?
          AND (SELECT discount_periods_left FROM customers WHERE customer_ref = ?) IS ?"
    };
}

enum Closed {
    Renewed,
    Canceled,
}

/// The statements that close a subscription's ended period (the first one is the guarded
/// update of the subscription), or `None` when there is nothing to close.
async fn plan_close(
    ctx: &Ctx,
    sub: &SubscriptionRow,
    now: i64,
    balances: &mut Balances,
    discounts: &mut Discounts,
) -> Result<Option<(Closed, Vec<Stmt>)>, Problem> {
    crate::row! {
        struct Sum {
            quantity: i64,
        }
    }
    let db = ctx.db();
    let usage: i64 = match sub.unit_amount {
        None => 0,
        Some(_) => db
            .first::<Sum>(
                crate::sql!(
                    "SELECT COALESCE(SUM(quantity), 0) AS quantity FROM usage_records
                 WHERE subscription_id = ? AND period_index = ?"
                ),
                params![&sub.id, sub.current_period],
            )
            .await?
            .map_or(0, |s| s.quantity),
    };
    let model = subscriptions::to_model(sub)?;
    let decision = match renewal::close(&model, usage, ctx.config.max_charge_amount) {
        Ok(decision) => decision,
        Err(renewal::RenewalError::NothingLeft) => return Ok(None),
        Err(e) => return Err(Problem::internal(e.to_string())),
    };
    // The advance holds only if the subscription is still where we read it and, for metered
    // plans, its usage did not change meanwhile; the charge is claimed only if the advance
    // happened. Otherwise nothing happens and the next tick reads again.
    let guard_params = params![
        &sub.id,
        sub.current_period,
        &sub.id,
        sub.current_period,
        usage
    ];
    let charge_id = ctx.new_id("ch");
    match decision {
        Close::Renew {
            period,
            start_ms,
            end_ms,
            amount,
            installment_number,
            new_terms,
            new_anchor,
            new_quantity,
        } => {
            let plan = plan_name(ctx, new_terms.as_ref().map_or(&sub.plan_id, |t| &t.plan_id));
            let (kind, key, description) = match installment_number {
                Some(n) => (
                    "installment",
                    format!("sub:{}:i{n}", sub.id),
                    format!(
                        "{plan}: installment {n} of {}",
                        sub.installments_total.unwrap_or(n)
                    ),
                ),
                None => (
                    "renewal",
                    format!("sub:{}:p{period}", sub.id),
                    format!("{plan}: period {}", period + 1),
                ),
            };
            // A discount (the subscription's, else its customer's) comes off the price before
            // the balance and the card; installments take none.
            let (discount, guard) = match installment_number {
                None => discounts.plan(sub, amount, ctx.config.min_charge_amount),
                Some(_) => discounts.plan(sub, 0, ctx.config.min_charge_amount),
            };
            let due = discount.as_ref().map_or(amount, |d| d.applied.due);
            let terms = new_terms.as_ref();
            let (anchor_at, anchor_period) =
                new_anchor.unwrap_or((sub.anchor_at, sub.anchor_period));
            let mut advance_params = params![
                period,
                start_ms,
                end_ms,
                terms.map(|t| t.plan_id.clone()),
                terms.map(|t| t.amount),
                terms.map(|t| t.interval.unit.as_str()),
                terms.map(|t| t.interval.count),
                terms.is_some(),
                terms.and_then(|t| t.unit_amount),
                anchor_at,
                anchor_period,
                new_quantity,
                now
            ];
            advance_params.extend(guard.set_params());
            advance_params.extend(guard_params);
            advance_params.extend(guard.where_params());
            let advance = stmt(
                crate::sql!(concat!(
                    "UPDATE subscriptions SET current_period = ?, current_period_start = ?,
                         current_period_end = ?,
                         plan_id = COALESCE(?, plan_id), amount = COALESCE(?, amount),
                         interval_unit = COALESCE(?, interval_unit),
                         interval_count = COALESCE(?, interval_count),
                         unit_amount = CASE WHEN ? THEN ? ELSE unit_amount END,
                         pending_plan_id = NULL, pending_plan = NULL,
                         anchor_at = ?, anchor_period = ?, quantity = COALESCE(?, quantity),
                         pending_quantity = NULL, updated_at = ?,
                         coupon_id = ?, discount_periods_left = ? ",
                    unchanged_since_read!(),
                    discounts_unchanged!()
                )),
                advance_params,
            );
            let charge = period_charge(sub, &charge_id, &key, kind, period, due, &description, now);
            // The customer's balance (a downgrade's credit) pays what it can of the period; the
            // card is charged the rest.
            let applied = balances.take(&sub.customer_ref, &sub.currency, due);
            let claim = new_id("claim");
            let card_pays = (due > applied).then_some(charge_id.as_str());
            let mut batch = vec![advance];
            if let Some(d) = &discount {
                batch.extend(discounting::statements(
                    sub, period, d, &claim, card_pays, now,
                ));
            }
            if due == 0 {
                // The discount paid it all: nothing to charge.
            } else if applied == 0 {
                batch.push(charges::claim_for_period(&charge, &sub.id, period));
            } else {
                let spend_id = format!("cbt_{}_p{period}", sub.id);
                batch.extend(balance_store::spend(
                    &balance_store::Spend {
                        id: &spend_id,
                        claim: &claim,
                        customer_ref: &sub.customer_ref,
                        currency: &sub.currency,
                        amount: applied,
                        subscription_id: Some(&sub.id),
                        period_index: Some(period),
                        charge_id: card_pays,
                        now,
                    },
                    balance_store::Guard::AtPeriod(&sub.id, period),
                ));
                batch.extend(charges::claim_for_period_after_spend(
                    &charge,
                    &sub.id,
                    period,
                    applied,
                    (&spend_id, &claim),
                ));
            }
            if let Some(d) = &discount
                && card_pays.is_some()
            {
                // Marked after the charge's insert, which the discount statements preceded.
                batch.push(crate::store::coupons::mark_charge(
                    &charge_id,
                    &d.coupon_id,
                    d.applied.discount,
                ));
            }
            Ok(Some((Closed::Renewed, batch)))
        }
        Close::Cancel {
            period,
            final_amount,
        } => {
            let mut cancel_params = params![period, now, now];
            cancel_params.extend(guard_params);
            let cancel = stmt(
                crate::sql!(concat!(
                    "UPDATE subscriptions SET current_period = ?, status = 'canceled',
                         status_reason = 'canceled at period end', canceled_at = ?,
                         updated_at = ? ",
                    unchanged_since_read!()
                )),
                cancel_params,
            );
            let mut batch = vec![cancel];
            let key = format!("sub:{}:p{period}", sub.id);
            let description = format!("{}: usage of the last period", plan_name(ctx, &sub.plan_id));
            if let Some(amount) = final_amount {
                let charge = period_charge(
                    sub,
                    &charge_id,
                    &key,
                    "renewal",
                    period,
                    amount,
                    &description,
                    now,
                );
                batch.push(charges::claim_for_period(&charge, &sub.id, period));
            }
            Ok(Some((Closed::Canceled, batch)))
        }
    }
}

/// Positive customer balances of a tick's due subscriptions, spent down as their periods are
/// planned, so that one customer's balance is never planned twice in a tick. (The batch checks
/// again: a balance used meanwhile is not spent, and the card pays all.)
#[derive(Default)]
struct Balances(std::collections::HashMap<(String, String), i64>);

impl Balances {
    async fn of(ctx: &Ctx, due: &[SubscriptionRow]) -> Result<Balances, Problem> {
        let mut found = std::collections::HashMap::new();
        let mut currencies: Vec<&str> = due.iter().map(|s| s.currency.as_str()).collect();
        currencies.sort_unstable();
        currencies.dedup();
        for currency in currencies {
            let refs: Vec<&str> = due
                .iter()
                .filter(|s| s.currency == currency && s.kind == "recurring")
                .map(|s| s.customer_ref.as_str())
                .collect();
            if refs.is_empty() {
                continue;
            }
            let json = serde_json::to_string(&refs).unwrap_or_default();
            for (customer, amount) in balance_store::positive_of(ctx.db(), &json, currency).await? {
                found.insert((customer, currency.to_owned()), amount);
            }
        }
        Ok(Balances(found))
    }

    /// Takes up to `amount` of the customer's balance.
    fn take(&mut self, customer: &str, currency: &str, amount: i64) -> i64 {
        match self.0.get_mut(&(customer.to_owned(), currency.to_owned())) {
            Some(left) => {
                let taken = (*left).min(amount).max(0);
                *left -= taken;
                taken
            }
            None => 0,
        }
    }
}

/// The charge of a subscription's period (a renewal, an installment, or the last usage).
#[allow(clippy::too_many_arguments)]
fn period_charge<'a>(
    sub: &'a SubscriptionRow,
    id: &'a str,
    key: &'a str,
    kind: &'a str,
    period: u32,
    amount: i64,
    description: &'a str,
    now: i64,
) -> NewCharge<'a> {
    NewCharge {
        id,
        charge_key: key,
        customer_ref: &sub.customer_ref,
        subscription_id: Some(&sub.id),
        period_index: Some(period),
        kind,
        amount,
        currency: &sub.currency,
        description,
        metadata: None,
        request_hash: None,
        now,
    }
}

/// The plan's display name for charge descriptions; its id if the catalog no longer has it.
fn plan_name<'a>(ctx: &'a Ctx, plan_id: &'a str) -> &'a str {
    ctx.config
        .catalog
        .get(plan_id)
        .map_or(plan_id, |p| p.name.as_str())
}

/// Drives charges that need the provider: just claimed, dunning retries that are due, and any
/// left unsettled by an earlier drive (a crash, a timeout, a lost webhook). True when every one
/// of them went to the charges queue.
async fn drive_due_charges(
    ctx: &Ctx,
    now: i64,
    clock: Option<&str>,
    started: i64,
    report: &mut TickReport,
) -> Result<bool, Problem> {
    crate::row! {
        struct Due {
            id: String,
        }
    }
    let budget = ctx.config.tick;
    // Fanned out: the consumers drive them, each invocation inside its own budget. What could
    // not be sent is driven here, so a queue outage never stops billing.
    let mut unsent = Vec::new();
    if let Some(queue) = ctx.charges_queue() {
        let ids = fanout::claim_due(ctx, now, clock, budget.max_charges).await?;
        if ids.len() as u32 == budget.max_charges {
            report.work_left = true;
        }
        let claimed = ids.len() as u32;
        unsent = fanout::send(ctx, queue, ids).await;
        report.charges_enqueued += claimed - unsent.len() as u32;
        if unsent.is_empty() {
            return Ok(true);
        }
    }
    let due: Vec<Due> = if !unsent.is_empty() {
        unsent.into_iter().map(|id| Due { id }).collect()
    } else {
        ctx.db()
            .all(
                crate::sql!(
                    "SELECT id FROM charges
             WHERE kind != 'checkout'
               AND ((status IN ('processing', 'pending')
                     AND (next_retry_at IS NULL OR next_retry_at <= ?1))
                    OR (status = 'failed' AND next_retry_at <= ?1))
               AND (lease_until IS NULL OR lease_until < ?2) AND test_clock IS ?4
             ORDER BY COALESCE(next_retry_at, created_at), id
             LIMIT ?3"
                ),
                params![now, ctx.wall_ms(), budget.max_charges, clock],
            )
            .await?
    };
    if due.len() as u32 == budget.max_charges {
        report.work_left = true;
    }
    // Pass 1 starts every due charge and reads its status once, without waiting on it: a
    // drive that slept while its payment settled would hold one of the few connection slots
    // idle. Pass 2 reads again the ones still in flight, which had the whole of pass 1 to
    // settle. Whatever is still open after that, webhooks and the next tick finish.
    let first_pass_started = ctx.wall_ms();
    let ids: Vec<String> = due.into_iter().map(|d| d.id).collect();
    let waiting = drive_all(ctx, ids, Pass::Start, started, report).await;
    if !waiting.is_empty() {
        let elapsed = ctx.wall_ms() - first_pass_started;
        if elapsed < SECOND_PASS_MIN_GAP_MS {
            worker::Delay::from(std::time::Duration::from_millis(
                (SECOND_PASS_MIN_GAP_MS - elapsed) as u64,
            ))
            .await;
        }
        report.waiting = 0;
        report.charges_driven -= waiting.len() as u32;
        drive_all(ctx, waiting, Pass::Settle, started, report).await;
    }
    Ok(false)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Start payments; leave part of the budget for reading them.
    Start,
    /// Read what was started.
    Settle,
}

/// Share of the call budget pass 1 may use, so that pass 2 can read what pass 1 started.
const START_PASS_BUDGET_PERCENT: u32 = 70;

/// Drives `ids` with bounded concurrency inside the budget, counting outcomes in `report`;
/// returns the charges left waiting on the provider.
async fn drive_all(
    ctx: &Ctx,
    ids: Vec<String>,
    pass: Pass,
    started: i64,
    report: &mut TickReport,
) -> Vec<String> {
    let concurrency = ctx.config.tick.concurrency as usize;
    let reserve = match pass {
        Pass::Start => ctx.config.tick.max_subrequests * (100 - START_PASS_BUDGET_PERCENT) / 100,
        Pass::Settle => 0,
    };
    let patience = match pass {
        Pass::Start => Patience::StartOnly,
        Pass::Settle => Patience::Poll(&[]),
    };
    type Driven = (String, Option<Result<DriveEnd, Problem>>);
    let results: RefCell<Vec<Driven>> = RefCell::new(Vec::new());
    let done = &results;
    let mut jobs = ids.into_iter().map(|id| -> Job<'_> {
        Box::pin(async move {
            // Checked as each charge starts, so the budget holds however fast others finish.
            if !within_budget(ctx, started, CALLS_PER_CHARGE + reserve) {
                done.borrow_mut().push((id, None));
                return;
            }
            let end =
                charging::drive_charge_end(ctx, &id, charging::Mode::Initiate, patience).await;
            done.borrow_mut().push((id, Some(end)));
        })
    });
    concurrently::run(concurrency, &mut jobs).await;
    let mut waiting = Vec::new();
    for (id, result) in results.into_inner() {
        match result {
            None => report.work_left = true,
            Some(Ok(end)) => {
                report.charges_driven += 1;
                match end {
                    DriveEnd::Succeeded => report.succeeded += 1,
                    DriveEnd::Declined => report.declined += 1,
                    DriveEnd::Failed => report.failed += 1,
                    DriveEnd::Waiting => {
                        report.waiting += 1;
                        waiting.push(id);
                    }
                    DriveEnd::NeedsAttention => report.needs_attention += 1,
                    DriveEnd::Busy => report.busy += 1,
                }
            }
            Some(Err(p)) => {
                report.failed += 1;
                ctx.log.error(
                    "charge not driven",
                    crate::fields! {"chargeId": id, "detail": p.detail},
                );
            }
        }
    }
    waiting
}

/// Settlement reads per kind (charges, refunds) a tick makes at most.
const SETTLEMENT_READS_PER_TICK: u32 = 50;

/// Refunds whose purchase is due to be read: voids to confirm, settlements to wait for.
async fn advance_due_refunds(ctx: &Ctx, now: i64) -> Result<u32, Problem> {
    let due = crate::store::refunds::due(ctx.db(), now, 10).await?;
    let count = due.len() as u32;
    for refund in due {
        refunding::advance(ctx, &refund.id).await?;
    }
    Ok(count)
}

async fn settle_refunds(ctx: &Ctx, older_than: i64) -> Result<u32, Problem> {
    let pending = crate::store::refunds::unsettled(ctx.db(), older_than, 10).await?;
    let mut settled = 0;
    for refund in pending {
        if refunding::settle(ctx, &refund.id).await? {
            settled += 1;
        }
    }
    Ok(settled)
}
