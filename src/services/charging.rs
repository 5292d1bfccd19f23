//! Runs the pure charge driver against the real provider and the D1 ledger. Each `record_*`
//! is one atomic D1 write, conditioned so that a late or repeated write never moves a charge
//! out of a final state.

use std::time::Duration;

use worker::{Delay, console_log, console_warn};

use crate::billing::charge_driver::{ChargeIo, DriveEnd, DriveOptions, drive};
use crate::billing::charge_machine::{ChargeStatus, ChargeView};
use crate::billing::decline::classify;
use crate::billing::dunning::{DunningPolicy, DunningStep, GiveUpReason};
use crate::context::Ctx;
use crate::http::problem::Problem;
use crate::params;
use crate::psp::envelope::PspError;
use crate::psp::types::*;
use crate::store::charges::{self, ChargeRow, Lease};
use crate::store::db::stmt;

/// How long an API charge may wait for the provider before it fails unstarted.
pub const API_START_DEADLINE_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// May create orders and start payments: the charge's owner (API call, scheduler).
    Initiate,
    /// Only reads the status and records what happened: webhooks.
    SettleOnly,
}

/// How long a drive waits for the provider's outcome.
#[derive(Debug, Clone, Copy)]
pub enum Patience<'a> {
    /// Read the status after these pauses (ms), then leave the rest to webhooks and the cron.
    Poll(&'a [u32]),
    /// Return as soon as the payment is initiated; the caller reads it later.
    StartOnly,
}

/// Drives a charge if nobody else is, and returns its row afterwards.
pub async fn drive_charge(
    ctx: &Ctx,
    charge_id: &str,
    mode: Mode,
    patience: Patience<'_>,
) -> Result<ChargeRow, Problem> {
    drive_charge_end(ctx, charge_id, mode, patience).await?;
    charges::get(ctx.db(), charge_id)
        .await?
        .ok_or_else(|| Problem::internal("The charge vanished."))
}

/// Drives a charge if nobody else is; `Busy` when another process holds its lease.
pub async fn drive_charge_end(
    ctx: &Ctx,
    charge_id: &str,
    mode: Mode,
    patience: Patience<'_>,
) -> Result<DriveEnd, Problem> {
    let now = ctx.now().await?;
    let wall = ctx.wall_ms();
    // A live driver keeps its lease for a whole drive; a dead one's lease expires and the next
    // driver resumes from what the ledger recorded.
    let lease =
        charges::lease_and_load(ctx.db(), charge_id, wall, ctx.config.charge_lease_ms).await?;
    let (charge, attempts) = match lease {
        Lease::Taken(charge, attempts) => (charge, attempts),
        // Settled meanwhile (a webhook, another tick): done, not busy.
        Lease::Refused(charge) if charge.status == "succeeded" => return Ok(DriveEnd::Succeeded),
        Lease::Refused(_) => return Ok(DriveEnd::Busy),
    };
    let outcome = drive_leased(ctx, charge, attempts, mode, patience, now).await;
    // The last write of a drive usually released the lease already; otherwise (a wait, an
    // error) release it here.
    let released = matches!(outcome, Ok((_, true)));
    let outcome = outcome.map(|(end, _)| end);
    if !released {
        charges::release_lease(ctx.db(), charge_id).await?;
    }
    if let Ok(end) = &outcome {
        console_log!("charge {charge_id} drive -> {end:?}");
    }
    outcome
}

async fn drive_leased(
    ctx: &Ctx,
    charge: ChargeRow,
    mut attempts: Vec<crate::billing::charge_machine::Attempt>,
    mode: Mode,
    patience: Patience<'_>,
    now: i64,
) -> Result<(DriveEnd, bool), Problem> {
    let latest = attempts.pop();
    let status = ChargeStatus::parse(&charge.status)
        .ok_or_else(|| Problem::internal("A charge has an unknown status."))?;
    let retry_due = mode == Mode::Initiate
        && status == ChargeStatus::Failed
        && charge.next_retry_at.is_some_and(|at| at <= now);
    let view = ChargeView {
        status,
        order_id: charge.order_id.clone(),
        latest,
        earlier_payment_ids: attempts.into_iter().filter_map(|a| a.payment_id).collect(),
        retry_due,
        may_initiate: mode == Mode::Initiate,
        // A merchant asked for this charge now; if the provider could not take it within a
        // day, moving the money later would surprise them. Scheduled charges keep trying.
        start_expired: charge.kind == "api" && now - charge.created_at > API_START_DEADLINE_MS,
    };
    let options = DriveOptions {
        poll_delays_ms: match patience {
            Patience::Poll(delays) => delays.to_vec(),
            Patience::StartOnly => Vec::new(),
        },
        refusals: charge.provider_refusals,
        stop_after_initiate: matches!(patience, Patience::StartOnly),
    };
    let policy = ctx.config.dunning_policy();
    let mut io = LedgerCharge {
        ctx,
        charge,
        now,
        policy,
        payment_method_id: None,
        start_only: options.stop_after_initiate,
        released: false,
    };
    let end = drive(&mut io, view, &options).await?;
    Ok((end, io.released))
}

struct LedgerCharge<'a> {
    ctx: &'a Ctx,
    charge: ChargeRow,
    now: i64,
    policy: DunningPolicy,
    payment_method_id: Option<String>,
    /// The drive ends once the payment is initiated.
    start_only: bool,
    /// The drive's last write released the lease (saves a round trip per drive).
    released: bool,
}

impl LedgerCharge<'_> {
    fn is_scheduled(&self) -> bool {
        matches!(self.charge.kind.as_str(), "renewal" | "installment")
    }
}

impl ChargeIo for LedgerCharge<'_> {
    type Error = Problem;

    async fn create_order(&mut self) -> Result<String, PspError> {
        let c = &self.charge;
        let config = &self.ctx.config;
        let order = CreateOrder {
            terminal_id: config.psp.mit_terminal_id.clone(),
            reference_id: c.id.clone(),
            order_lines: vec![OrderLine {
                id: c.kind.clone(),
                name: c.description.clone(),
                quantity: 1,
                amount: Amount::of(c.amount, &c.currency),
                purchase_order_id: None,
            }],
            total_order_amount: Amount::of(c.amount, &c.currency),
            customer: None,
            control_functions: ControlFunctions {
                call_back_url: Some(config.webhook_url()),
                ..ControlFunctions::default()
            },
        };
        self.ctx
            .psp()
            .create_order(&order)
            .await
            .map(|o| o.order_id)
    }

    async fn initiate(&mut self, order_id: &str) -> Result<String, PspError> {
        let card = self
            .ctx
            .vault()
            .get(&self.charge.customer_ref)
            .await
            .map_err(|_| PspError::Network)?;
        let Some(card) = card else {
            return Err(PspError::Business {
                code: "no_payment_method".into(),
                message: "The customer has no card on file.".into(),
            });
        };
        self.payment_method_id = Some(card.payment_method_id.clone());
        let payment = self
            .ctx
            .psp()
            .initiate_payment(order_id, card.token_for_provider())
            .await?;
        Ok(payment.payment_id)
    }

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        self.ctx.psp().order_status(order_id).await
    }

    async fn cancel_order(&mut self, order_id: &str) -> Result<(), PspError> {
        self.ctx.psp().cancel_order(order_id).await
    }

    async fn sleep(&mut self, ms: u32) {
        Delay::from(Duration::from_millis(u64::from(ms))).await;
    }

    async fn record_order(&mut self, order_id: &str) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        self.ctx
            .db()
            .batch(vec![
                stmt(
                    "UPDATE charges SET order_id = ?, updated_at = ?
                     WHERE id = ? AND order_id IS NULL",
                    params![order_id, now, id],
                ),
                stmt(
                    "INSERT INTO provider_orders (order_id, owner_kind, owner_id, created_at)
                     VALUES (?, 'charge', ?, ?) ON CONFLICT (order_id) DO NOTHING",
                    params![order_id, id, now],
                ),
            ])
            .await?;
        Ok(())
    }

    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let changes = self
            .ctx
            .db()
            .batch(vec![
                stmt(
                    "INSERT INTO charge_attempts (charge_id, attempt, order_id, status, created_at,
                         updated_at)
                     VALUES (?, ?, ?, 'claimed', ?, ?)
                     ON CONFLICT (charge_id, attempt) DO NOTHING",
                    params![id, number, order_id, now, now],
                ),
                stmt(
                    "UPDATE charges SET attempts = MAX(attempts, ?), status = 'pending',
                         next_retry_at = NULL, updated_at = ?
                     WHERE id = ? AND status != 'succeeded'",
                    params![number, now, id],
                ),
            ])
            .await?;
        Ok(changes.first() == Some(&1))
    }

    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        self.ctx
            .db()
            .batch(vec![
                stmt(
                    "UPDATE charge_attempts SET payment_id = ?, status = 'initiated', updated_at = ?
                     WHERE charge_id = ? AND attempt = ? AND status = 'claimed'",
                    params![payment_id, now, id, number],
                ),
                stmt(
                    "UPDATE charges SET payment_id = ?,
                         payment_method_id = COALESCE(?, payment_method_id), updated_at = ?,
                         lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
                     WHERE id = ? AND status = 'pending'",
                    params![
                        payment_id,
                        self.payment_method_id.as_deref(),
                        now,
                        self.start_only,
                        id
                    ],
                ),
            ])
            .await?;
        self.released = self.start_only;
        Ok(())
    }

    async fn record_refused(
        &mut self,
        number: Option<u32>,
        code: &str,
        refusals: u32,
    ) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let mut batch = vec![stmt(
            "UPDATE charges SET provider_refusals = ?, last_error = ?, updated_at = ?
             WHERE id = ? AND status != 'succeeded'",
            params![refusals, code, now, id],
        )];
        if let Some(number) = number {
            batch.push(stmt(
                "UPDATE charge_attempts SET status = 'rejected', failure_reason = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ? AND status = 'claimed'",
                params![code, now, id, number],
            ));
        }
        self.ctx.db().batch(batch).await?;
        Ok(())
    }

    async fn record_fenced(&mut self, number: u32, order_id: &str) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        console_warn!("charge {id}: attempt {number} outcome unknown; order {order_id} cancelled");
        self.ctx
            .db()
            .batch(vec![
                stmt(
                    "UPDATE charge_attempts SET status = 'fenced', updated_at = ?
                     WHERE charge_id = ? AND attempt = ? AND status = 'claimed'",
                    params![now, id, number],
                ),
                stmt(
                    "UPDATE charges SET order_id = NULL, updated_at = ?
                     WHERE id = ? AND order_id = ?",
                    params![now, id, order_id],
                ),
                stmt(
                    "UPDATE provider_orders SET status = 'fenced' WHERE order_id = ?",
                    params![order_id],
                ),
            ])
            .await?;
        Ok(())
    }

    async fn record_success(
        &mut self,
        number: u32,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Problem> {
        let c = &self.charge;
        let now = self.now;
        if amount.is_some_and(|a| a != c.amount) {
            console_warn!(
                "charge {}: provider reports {} for a charge of {}",
                c.id,
                amount.unwrap_or_default(),
                c.amount
            );
        }
        let mut batch = vec![
            stmt(
                "UPDATE charge_attempts SET status = 'succeeded', payment_id = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ?",
                params![payment_id, now, &c.id, number],
            ),
            stmt(
                "UPDATE charges SET status = 'succeeded', payment_id = ?, failure_reason = NULL,
                     decline_class = NULL, next_retry_at = NULL, last_error = NULL,
                     settled_at = ?, updated_at = ?, lease_until = NULL
                 WHERE id = ? AND status != 'succeeded'",
                params![payment_id, now, now, &c.id],
            ),
        ];
        if let Some(subscription_id) = &c.subscription_id {
            batch.push(crate::store::subscriptions::after_payment(
                subscription_id,
                c.period_index.unwrap_or(0),
                now,
            ));
        }
        self.ctx.db().batch(batch).await?;
        self.released = true;
        Ok(())
    }

    async fn record_decline(
        &mut self,
        number: u32,
        payment_id: &str,
        reason: Option<&str>,
    ) -> Result<(), Problem> {
        let c = &self.charge;
        let now = self.now;
        let class = classify(reason);
        let declines = c.declines + 1;
        let first_failed_at = c.first_failed_at.unwrap_or(now);
        let reason = reason.unwrap_or("DECLINED");
        let step = self
            .is_scheduled()
            .then(|| self.policy.next_step(class, declines, first_failed_at, now));
        let next_retry_at = match &step {
            Some(DunningStep::RetryAt(at)) => Some(*at),
            _ => None,
        };
        let mut batch = vec![
            stmt(
                "UPDATE charge_attempts SET status = 'failed', payment_id = ?, failure_reason = ?,
                     updated_at = ?
                 WHERE charge_id = ? AND attempt = ?",
                params![payment_id, reason, now, &c.id, number],
            ),
            stmt(
                "UPDATE charges SET status = 'failed', failure_reason = ?, decline_class = ?,
                     declines = ?, first_failed_at = ?, next_retry_at = ?, payment_id = ?,
                     updated_at = ?, lease_until = NULL
                 WHERE id = ? AND status != 'succeeded'",
                params![
                    reason,
                    class.as_str(),
                    declines,
                    first_failed_at,
                    next_retry_at,
                    payment_id,
                    now,
                    &c.id
                ],
            ),
        ];
        if let (Some(subscription_id), Some(step)) = (&c.subscription_id, &step) {
            batch.push(crate::store::subscriptions::after_decline(
                subscription_id,
                c.period_index.unwrap_or(0),
                step,
                reason,
                now,
            ));
        }
        self.ctx.db().batch(batch).await?;
        self.released = true;
        Ok(())
    }

    async fn record_waiting(&mut self, code: Option<&str>) -> Result<(), Problem> {
        // Nothing new to say: every step so far is already recorded.
        let Some(code) = code else {
            return Ok(());
        };
        let (id, now) = (&self.charge.id, self.now);
        self.ctx
            .db()
            .run(
                "UPDATE charges SET last_error = ?, updated_at = ?
                 WHERE id = ? AND status IN ('processing', 'pending')",
                params![code, now, id],
            )
            .await?;
        Ok(())
    }

    async fn record_failure(&mut self, code: &str) -> Result<(), Problem> {
        let c = &self.charge;
        let now = self.now;
        let mut batch = vec![stmt(
            "UPDATE charges SET status = 'failed', failure_reason = ?, decline_class = NULL,
                 next_retry_at = NULL, updated_at = ?, lease_until = NULL
             WHERE id = ? AND status != 'succeeded'",
            params![code, now, &c.id],
        )];
        if let Some(subscription_id) = &c.subscription_id
            && self.is_scheduled()
        {
            // Refused without a decline (no card on file, a permanent refusal): a new card or
            // an operator is needed, retrying the same request cannot help.
            batch.push(crate::store::subscriptions::after_decline(
                subscription_id,
                c.period_index.unwrap_or(0),
                &DunningStep::GiveUp(GiveUpReason::HardDecline),
                code,
                now,
            ));
        }
        self.ctx.db().batch(batch).await?;
        self.released = true;
        Ok(())
    }
}
