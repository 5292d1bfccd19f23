//! Runs the pure charge driver against the real provider and the D1 ledger. Each `record_*`
//! is one atomic D1 write, conditioned so that a late or repeated write never moves a charge
//! out of a final state.

use std::time::Duration;

use worker::Delay;

use crate::context::Ctx;
use crate::params;
use crate::store::charges::{self, ChargeRow, ClaimFirst, Lease, LeaseFor, Leased};
use crate::store::db::{BatchResult, Stmt, stmt};
use crate::store::incidents::{self, NewIncident};
use crate::store::orders;
use crate::store::subscriptions;
use recurring_core::billing::charge_driver::{
    Attention, ChargeFailure, ChargeIo, DriveEnd, DriveOptions, drive,
};
use recurring_core::billing::charge_machine::{AttemptStatus, ChargeStatus, ChargeView};
use recurring_core::billing::decline::classify;
use recurring_core::billing::dunning::{CardLimit, DunningPolicy, DunningStep};
use recurring_core::billing::time::{DAY_MS, HOUR_MS};
use recurring_core::http::problem::Problem;
use recurring_core::psp::envelope::PspError;
use recurring_core::psp::types::*;

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
    Ok(
        match drive_unless_refused(ctx, charge_id, mode, patience, Vec::new()).await? {
            Driven::Drove(drove) => drove.end,
            // Settled meanwhile (a webhook, another tick): done, not busy.
            Driven::Refused(charge) if charge.status == "succeeded" => DriveEnd::Succeeded,
            Driven::Refused(_) => DriveEnd::Busy,
        },
    )
}

/// What a look at a charge for its outcome found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looked {
    /// Succeeded or failed, now or before.
    Final,
    /// Still open: the provider has no outcome yet, or there was nothing to look at.
    Open,
    /// Open, and another process holds its lease right now: the look can be tried again soon.
    Held,
}

/// Reads the outcome of a charge's payment in flight and records it (a webhook's part), in the
/// round trips the drive takes anyway: the lease's answer says whether the charge was final or
/// held. `with_outcome` rides in the write that records an outcome, if this look makes one;
/// then the answer carries their results.
pub async fn settle_charge(
    ctx: &Ctx,
    charge_id: &str,
    with_outcome: Vec<Stmt>,
) -> Result<(Looked, Option<Vec<BatchResult>>), Problem> {
    let is_final = |status: &str| status == "succeeded" || status == "failed";
    let driven = drive_unless_refused(
        ctx,
        charge_id,
        Mode::SettleOnly,
        Patience::Poll(&[]),
        with_outcome,
    )
    .await?;
    Ok(match driven {
        Driven::Drove(drove) => match drove.end {
            DriveEnd::Succeeded | DriveEnd::Declined | DriveEnd::Failed => {
                (Looked::Final, drove.riding)
            }
            _ => (Looked::Open, None),
        },
        Driven::Refused(charge) if is_final(&charge.status) => (Looked::Final, None),
        Driven::Refused(charge) if charge.lease_until.is_some_and(|t| t >= ctx.wall_ms()) => {
            (Looked::Held, None)
        }
        Driven::Refused(_) => (Looked::Open, None),
    })
}

enum Driven {
    Drove(Drove),
    /// The lease was not taken: the charge as it was read in the same round trip.
    Refused(Box<ChargeRow>),
}

struct Drove {
    end: DriveEnd,
    /// The drive's last write released the lease (saves a round trip per drive).
    released: bool,
    /// The results of the statements that rode with an outcome, when they did.
    riding: Option<Vec<BatchResult>>,
}

async fn drive_unless_refused(
    ctx: &Ctx,
    charge_id: &str,
    mode: Mode,
    patience: Patience<'_>,
    with_outcome: Vec<Stmt>,
) -> Result<Driven, Problem> {
    let now = ctx.now_for_charge(charge_id).await?;
    let wall = ctx.wall_ms();
    // A live driver keeps its lease for a whole drive; a dead one's lease expires and the next
    // driver resumes from what the ledger recorded.
    // The charge's owner claims a fresh charge's first attempt with the lease: one round trip.
    let purpose = match mode {
        Mode::Initiate => LeaseFor::Drive(Some(ClaimFirst {
            start_deadline_ms: API_START_DEADLINE_MS,
        })),
        Mode::SettleOnly => LeaseFor::Settle,
    };
    let lease = charges::lease_and_load(
        ctx.db(),
        charge_id,
        now,
        wall,
        ctx.config.charge_lease_ms,
        purpose,
    )
    .await?;
    let leased = match lease {
        Lease::Taken(leased) => leased,
        Lease::Refused(charge) => return Ok(Driven::Refused(charge)),
    };
    let (customer_ref, subscription_id, kind) = (
        leased.charge.customer_ref.clone(),
        leased.charge.subscription_id.clone(),
        leased.charge.kind.clone(),
    );
    let outcome = drive_leased(ctx, *leased, mode, patience, now, with_outcome).await;
    // The last write of a drive usually released the lease already; otherwise (a wait, an
    // error) release it here.
    if !matches!(outcome, Ok(Drove { released: true, .. })) {
        charges::release_lease(ctx.db(), charge_id).await?;
    }
    if let Ok(Drove { end, .. }) = &outcome {
        ctx.log.info(
            "charge driven",
            crate::fields! {
                "chargeId": charge_id,
                "customerRef": customer_ref,
                "subscriptionId": subscription_id,
                "kind": kind,
                "end": end.name(),
            },
        );
    }
    outcome.map(Driven::Drove)
}

async fn drive_leased(
    ctx: &Ctx,
    leased: Leased,
    mode: Mode,
    patience: Patience<'_>,
    now: i64,
    with_outcome: Vec<Stmt>,
) -> Result<Drove, Problem> {
    let Leased {
        charge,
        mut attempts,
        card,
    } = leased;
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
        now,
        settle_window_ms: ctx.config.settle_window_ms,
        card: card.guard,
    };
    let scheduled = matches!(charge.kind.as_str(), "renewal" | "installment");
    let options = DriveOptions {
        poll_delays_ms: match patience {
            Patience::Poll(delays) => delays.to_vec(),
            Patience::StartOnly => Vec::new(),
        },
        refusals: charge.provider_refusals,
        stop_after_initiate: matches!(patience, Patience::StartOnly),
        scheduled,
    };
    let mut io = LedgerCharge {
        ctx,
        charge,
        now,
        policy: ctx.config.dunning_policy(),
        payment_method_id: card.payment_method_id,
        scheduled,
        start_only: options.stop_after_initiate,
        released: false,
        with_outcome,
        riding: None,
    };
    let end = drive(&mut io, view, &options).await?;
    Ok(Drove {
        end,
        released: io.released,
        riding: io.riding,
    })
}

/// How long a charge that needs an operator waits between looks of its own.
const ATTENTION_RECHECK_MS: i64 = HOUR_MS;

struct LedgerCharge<'a> {
    ctx: &'a Ctx,
    charge: ChargeRow,
    now: i64,
    policy: DunningPolicy,
    /// The card a new attempt charges: the customer's active card in the ledger.
    payment_method_id: Option<String>,
    scheduled: bool,
    /// The drive ends once the payment is initiated.
    start_only: bool,
    /// The drive's last write released the lease (saves a round trip per drive).
    released: bool,
    /// Statements that ride with the write of an outcome (success, decline or failure).
    with_outcome: Vec<Stmt>,
    /// Their results, once written.
    riding: Option<Vec<BatchResult>>,
}

impl LedgerCharge<'_> {
    async fn write(&mut self, batch: Vec<Stmt>, releases: bool) -> Result<(), Problem> {
        self.ctx.db().batch(batch).await?;
        self.released |= releases;
        Ok(())
    }

    /// The write that records the charge's outcome, with what rides along; it releases the lease.
    async fn write_outcome(&mut self, mut batch: Vec<Stmt>) -> Result<(), Problem> {
        let riding = std::mem::take(&mut self.with_outcome);
        if riding.is_empty() {
            return self.write(batch, true).await;
        }
        let own = batch.len();
        batch.extend(riding);
        let mut results = self.ctx.db().batch_results(batch).await?;
        self.riding = Some(results.split_off(own));
        self.released = true;
        Ok(())
    }

    /// Gives the order up: the charge's next attempt needs a new one, and this one is watched.
    fn give_up_order(&self, order_id: &str) -> [Stmt; 2] {
        let (id, now) = (&self.charge.id, self.now);
        [
            stmt(
                crate::sql!(
                    "UPDATE charges SET order_id = NULL, updated_at = ? WHERE id = ? AND order_id = ?"
                ),
                params![now, id, order_id],
            ),
            orders::watch(order_id, "charge", id, now),
        ]
    }

    fn incident(&self, kind: &str, key: String, order_id: Option<&str>, detail: String) -> Stmt {
        let c = &self.charge;
        incidents::record(&NewIncident {
            key,
            kind,
            charge_id: Some(&c.id),
            order_id,
            customer_ref: Some(&c.customer_ref),
            amount: Some(c.amount),
            currency: Some(&c.currency),
            detail,
            now: self.now,
            ..NewIncident::default()
        })
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
        // The ledger decided which card this attempt charges; the vault is eventually
        // consistent, so a copy that does not show that card yet is waited for, never used.
        let Some(card) =
            card.filter(|c| Some(&c.payment_method_id) == self.payment_method_id.as_ref())
        else {
            return Err(PspError::Local {
                code: "card_not_readable_yet".into(),
            });
        };
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

    async fn record_order(
        &mut self,
        order_id: &str,
        claimed_ahead: Option<u32>,
    ) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let mut batch = vec![
            stmt(
                crate::sql!(
                    "UPDATE charges SET order_id = ?, updated_at = ? WHERE id = ? AND order_id IS NULL"
                ),
                params![order_id, now, id],
            ),
            orders::record(order_id, "charge", id, now),
        ];
        if let Some(number) = claimed_ahead {
            batch.push(stmt(
                crate::sql!(
                    "UPDATE charge_attempts SET order_id = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ? AND order_id IS NULL"
                ),
                params![order_id, now, id, number],
            ));
        }
        self.write(batch, false).await
    }

    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let changes = self
            .ctx
            .db()
            .batch(vec![
                stmt(
                    crate::sql!("INSERT INTO charge_attempts (charge_id, attempt, order_id, payment_method_id,
                         status, created_at, updated_at)
                     VALUES (?, ?, ?, ?, 'claimed', ?, ?)
                     ON CONFLICT (charge_id, attempt) DO NOTHING"),
                    params![
                        id,
                        number,
                        order_id,
                        self.payment_method_id.as_deref(),
                        now,
                        now
                    ],
                ),
                stmt(
                    crate::sql!("UPDATE charges SET attempts = MAX(attempts, ?), status = 'pending',
                         next_retry_at = NULL, updated_at = ?
                     WHERE id = ? AND status != 'succeeded'"),
                    params![number, now, id],
                ),
            ])
            .await?;
        Ok(changes.first().is_some_and(|&n| n > 0))
    }

    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let batch = vec![
            stmt(
                crate::sql!(
                    "UPDATE charge_attempts SET payment_id = ?,
                     status = CASE status WHEN 'claimed' THEN 'initiated' ELSE status END,
                     updated_at = ?
                 WHERE charge_id = ? AND attempt = ? AND status IN ('claimed', 'fenced')"
                ),
                params![payment_id, now, id, number],
            ),
            stmt(
                crate::sql!(
                    "UPDATE charges SET payment_id = ?,
                     payment_method_id = COALESCE(?, payment_method_id), updated_at = ?,
                     lease_until = CASE WHEN ? THEN NULL ELSE lease_until END,
                     queued_until = CASE WHEN ? THEN NULL ELSE queued_until END
                 WHERE id = ? AND status = 'pending'"
                ),
                params![
                    payment_id,
                    self.payment_method_id.as_deref(),
                    now,
                    self.start_only,
                    self.start_only,
                    id
                ],
            ),
        ];
        let releases = self.start_only;
        self.write(batch, releases).await
    }

    async fn record_refused(
        &mut self,
        attempt: Option<(u32, &str)>,
        code: &str,
        refusals: u32,
    ) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        let mut batch = vec![stmt(
            crate::sql!(
                "UPDATE charges SET provider_refusals = ?, last_error = ?, updated_at = ?
             WHERE id = ? AND status != 'succeeded'"
            ),
            params![refusals, code, now, id],
        )];
        if let Some((number, order_id)) = attempt {
            batch.push(stmt(
                crate::sql!("UPDATE charge_attempts SET status = 'rejected', failure_reason = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ? AND status = 'claimed'"),
                params![code, now, id, number],
            ));
            batch.extend(self.give_up_order(order_id));
        }
        self.write(batch, false).await
    }

    async fn record_fenced(&mut self, number: u32) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        self.ctx.log.warn(
            "charge attempt fenced: outcome unknown, its order was cancelled",
            crate::fields! {"chargeId": id, "attempt": number},
        );
        let batch = vec![stmt(
            crate::sql!(
                "UPDATE charge_attempts SET status = 'fenced', updated_at = ?
             WHERE charge_id = ? AND attempt = ? AND status = 'claimed'"
            ),
            params![now, id, number],
        )];
        self.write(batch, false).await
    }

    async fn record_ended(
        &mut self,
        number: u32,
        status: AttemptStatus,
        payment_id: Option<&str>,
        order_id: &str,
    ) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        if status == AttemptStatus::Abandoned {
            self.ctx.log.warn(
                "charge attempt abandoned: the provider never showed its order, which is watched",
                crate::fields! {"chargeId": id, "attempt": number, "orderId": order_id},
            );
        }
        let mut batch = vec![stmt(
            crate::sql!(
                "UPDATE charge_attempts SET status = ?, payment_id = COALESCE(?, payment_id),
                 updated_at = ?
             WHERE charge_id = ? AND attempt = ? AND status IN ('claimed', 'initiated', 'fenced')"
            ),
            params![status.as_str(), payment_id, now, id, number],
        )];
        batch.extend(self.give_up_order(order_id));
        self.write(batch, false).await
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
            self.ctx.log.warn(
                "provider reports another amount",
                crate::fields! {"chargeId": c.id, "reported": amount, "amount": c.amount},
            );
        }
        let mut batch = vec![
            stmt(
                crate::sql!("UPDATE charge_attempts SET status = 'succeeded', payment_id = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ?"),
                params![payment_id, now, &c.id, number],
            ),
            stmt(
                crate::sql!("UPDATE charges SET status = 'succeeded', payment_id = ?, failure_reason = NULL,
                     decline_class = NULL, next_retry_at = NULL, last_error = NULL,
                     attention = NULL, settled_at = ?, updated_at = ?, lease_until = NULL,
                     queued_until = NULL
                 WHERE id = ? AND status != 'succeeded'"),
                params![payment_id, now, now, &c.id],
            ),
        ];
        if let Some(subscription_id) = &c.subscription_id {
            batch.push(subscriptions::after_payment(
                subscription_id,
                c.period_index.unwrap_or(0),
                now,
            ));
        }
        self.write_outcome(batch).await
    }

    async fn record_decline(
        &mut self,
        number: u32,
        payment_id: &str,
        reason: Option<&str>,
        given_up_order: Option<&str>,
    ) -> Result<(), Problem> {
        let c = &self.charge;
        let now = self.now;
        let class = classify(reason);
        let declines = c.declines + 1;
        let first_failed_at = c.first_failed_at.unwrap_or(now);
        let reason = reason.unwrap_or("DECLINED");
        let step = self
            .scheduled
            .then(|| self.policy.next_step(class, declines, first_failed_at, now));
        let next_retry_at = match &step {
            Some(DunningStep::RetryAt(at)) => Some(*at),
            _ => None,
        };
        let mut batch = vec![
            stmt(
                crate::sql!("UPDATE charge_attempts SET status = 'failed', payment_id = ?, failure_reason = ?,
                     decline_class = ?, updated_at = ?
                 WHERE charge_id = ? AND attempt = ?"),
                params![payment_id, reason, class.as_str(), now, &c.id, number],
            ),
            stmt(
                crate::sql!("UPDATE charges SET status = 'failed', failure_reason = ?, decline_class = ?,
                     declines = ?, first_failed_at = ?, next_retry_at = ?, payment_id = ?,
                     attention = NULL, updated_at = ?, lease_until = NULL,
                     queued_until = NULL
                 WHERE id = ? AND status != 'succeeded'"),
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
            batch.push(subscriptions::after_decline(
                subscription_id,
                c.period_index.unwrap_or(0),
                step,
                reason,
                now,
            ));
        }
        if let Some(order_id) = given_up_order {
            batch.extend(self.give_up_order(order_id));
        }
        self.write_outcome(batch).await
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
                crate::sql!(
                    "UPDATE charges SET last_error = ?, updated_at = ?
                 WHERE id = ? AND status IN ('processing', 'pending')"
                ),
                params![code, now, id],
            )
            .await?;
        Ok(())
    }

    async fn record_attention(&mut self, why: &Attention) -> Result<(), Problem> {
        let (id, now) = (self.charge.id.clone(), self.now);
        let (order_id, detail, key) = match why {
            Attention::OrderLost { order_id } => (
                Some(order_id.as_str()),
                format!("The provider answers 404 for order {order_id}: it no longer knows it."),
                format!("orderLost:{order_id}"),
            ),
            Attention::OutcomeUnknown { order_id } => (
                Some(order_id.as_str()),
                format!(
                    "The provider gave a payment id on order {order_id} but never showed the \
                     payment; the charge is held until its outcome is known."
                ),
                format!("outcomeUnknown:{order_id}"),
            ),
            Attention::Stuck { order_id } => (
                Some(order_id.as_str()),
                format!("A payment on order {order_id} has been in flight for over a day."),
                format!("paymentStuck:{order_id}"),
            ),
            Attention::ProviderRefused { code } => (
                None,
                format!("The provider keeps refusing this charge's requests ({code})."),
                format!("providerRefused:{id}"),
            ),
        };
        self.ctx.log.warn(
            "charge needs attention",
            crate::fields! {"chargeId": id, "attention": why.kind()},
        );
        let key = format!("{id}:{key}");
        let batch = vec![
            stmt(
                crate::sql!(
                    "UPDATE charges SET attention = ?, next_retry_at = ?, updated_at = ?,
                     lease_until = NULL, queued_until = NULL
                 WHERE id = ? AND status IN ('processing', 'pending')"
                ),
                params![why.kind(), now + ATTENTION_RECHECK_MS, now, &id],
            ),
            self.incident(why.kind(), key, order_id, detail),
        ];
        self.write(batch, true).await
    }

    async fn record_failure(&mut self, failure: ChargeFailure) -> Result<(), Problem> {
        let c = &self.charge;
        let now = self.now;
        let code = failure.code();
        let mut batch = vec![stmt(
            crate::sql!(
                "UPDATE charges SET status = 'failed', failure_reason = ?, decline_class = NULL,
                 next_retry_at = NULL, attention = NULL, updated_at = ?, lease_until = NULL,
                 queued_until = NULL
             WHERE id = ? AND status != 'succeeded'"
            ),
            params![code, now, &c.id],
        )];
        let why = match failure {
            ChargeFailure::NoPaymentMethod => Some("no card on file; a new card is needed"),
            ChargeFailure::CardBlocked => {
                Some("the card on file was hard-declined before; a new card is needed")
            }
            // Only API charges expire or are refused for card limits: no subscription moves.
            ChargeFailure::Expired | ChargeFailure::CardRetryLimit => None,
        };
        if let (Some(subscription_id), Some(why), true) = (&c.subscription_id, why, self.scheduled)
        {
            batch.push(subscriptions::after_failure(
                subscription_id,
                c.period_index.unwrap_or(0),
                why,
                now,
            ));
        }
        self.write_outcome(batch).await
    }

    async fn record_deferred(&mut self, limit: CardLimit) -> Result<(), Problem> {
        let (id, now) = (&self.charge.id, self.now);
        self.ctx.log.warn(
            "charge deferred a day",
            crate::fields! {"chargeId": id, "limit": limit.to_string()},
        );
        let batch = vec![stmt(
            crate::sql!("UPDATE charges SET next_retry_at = ?, last_error = 'card_retry_limit', updated_at = ?,
                 lease_until = NULL, queued_until = NULL
             WHERE id = ? AND status != 'succeeded'"),
            params![now + DAY_MS, now, id],
        )];
        self.write(batch, true).await
    }
}
