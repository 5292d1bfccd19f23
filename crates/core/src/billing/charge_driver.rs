//! Drives one charge through the provider until it is final or must wait, following
//! `charge_machine`. Generic over [`ChargeIo`] so the very loop that runs in production is
//! exercised natively against a simulated provider with faults and crashes.

use super::charge_machine::{
    Attempt, AttemptStatus, ChargeStatus, ChargeView, MAX_REJECTED_ATTEMPTS, MissingAction,
    NO_PAYMENT_METHOD, STUCK_AFTER_MS, Step, Verdict, is_permanent_refusal, judge, next_step,
    on_missing, order_reusable,
};
use super::dunning::CardLimit;
use crate::psp::envelope::PspError;
use crate::psp::types::OrderStatus;
use std::ops::ControlFlow;

/// Why a charge fails without the card declining it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeFailure {
    /// Nothing reached the card before the start deadline (API charges while the provider is
    /// down): the merchant is told instead of the card being charged days later.
    Expired,
    /// The customer has no card on file.
    NoPaymentMethod,
    /// The card gave a hard decline on another charge: a new card is needed.
    CardBlocked,
    /// An API charge that would break a card network's retry limit.
    CardRetryLimit,
}

impl ChargeFailure {
    pub fn code(self) -> &'static str {
        match self {
            ChargeFailure::Expired => "provider_unavailable",
            ChargeFailure::NoPaymentMethod => NO_PAYMENT_METHOD,
            ChargeFailure::CardBlocked => "card_hard_declined",
            ChargeFailure::CardRetryLimit => "card_retry_limit",
        }
    }
}

/// Why a charge needs an operator. The charge stays open and keeps being reconciled: if the
/// provider later tells, it settles by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// The provider answers 404 for the order carrying the charge.
    OrderLost { order_id: String },
    /// The provider gave a payment id but never showed the payment within the settle window.
    OutcomeUnknown { order_id: String },
    /// A payment in flight for longer than [`STUCK_AFTER_MS`].
    Stuck { order_id: String },
    /// The provider keeps refusing our requests (or refused one that cannot succeed).
    ProviderRefused { code: String },
}

impl Attention {
    /// The incident type, as the API shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Attention::OrderLost { .. } => "orderLost",
            Attention::OutcomeUnknown { .. } => "outcomeUnknown",
            Attention::Stuck { .. } => "paymentStuck",
            Attention::ProviderRefused { .. } => "providerRefused",
        }
    }
}

/// The provider calls and ledger writes a charge needs. Every ledger write must be durable
/// before it returns: the driver relies on a write having happened once it moves on.
#[allow(async_fn_in_trait)]
pub trait ChargeIo {
    type Error;

    async fn create_order(&mut self) -> Result<String, PspError>;
    /// `POST /payments` with the customer's token.
    async fn initiate(&mut self, order_id: &str) -> Result<String, PspError>;
    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError>;
    /// A best effort only: its answer proves nothing about payments on the order.
    async fn cancel_order(&mut self, order_id: &str) -> Result<(), PspError>;
    async fn sleep(&mut self, ms: u32);

    /// The order is the charge's now; `claimed_ahead`: the attempt it was created for.
    async fn record_order(
        &mut self,
        order_id: &str,
        claimed_ahead: Option<u32>,
    ) -> Result<(), Self::Error>;
    /// The conditional insert of attempt `number`: false when another process claimed it.
    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Self::Error>;
    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Self::Error>;
    /// The provider refused a call before anything could happen; `refusals` is the charge's
    /// running count. A refused attempt's order is given up: we cannot tell why it was refused.
    async fn record_refused(
        &mut self,
        attempt: Option<(u32, &str)>,
        code: &str,
        refusals: u32,
    ) -> Result<(), Self::Error>;
    /// Attempt `number`'s order was asked to cancel; the attempt stays in doubt.
    async fn record_fenced(&mut self, number: u32) -> Result<(), Self::Error>;
    /// The attempt is over without the card answering (`Cancelled`), or given up after its
    /// settle window (`Abandoned`). Its order is given up and watched for a late payment.
    async fn record_ended(
        &mut self,
        number: u32,
        status: AttemptStatus,
        payment_id: Option<&str>,
        order_id: &str,
    ) -> Result<(), Self::Error>;
    async fn record_success(
        &mut self,
        number: u32,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Self::Error>;
    /// The card declined. `given_up_order`: the order, when it cannot carry a retry.
    async fn record_decline(
        &mut self,
        number: u32,
        payment_id: &str,
        reason: Option<&str>,
        given_up_order: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// The charge stays open; `code` says why (a provider error), for operators.
    async fn record_waiting(&mut self, code: Option<&str>) -> Result<(), Self::Error>;
    /// The charge stays open and an operator is told why.
    async fn record_attention(&mut self, attention: &Attention) -> Result<(), Self::Error>;
    /// The charge fails without a card decline.
    async fn record_failure(&mut self, failure: ChargeFailure) -> Result<(), Self::Error>;
    /// A scheduled charge waits until the card may be attempted again.
    async fn record_deferred(&mut self, limit: CardLimit) -> Result<(), Self::Error>;
}

#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Pauses between status reads while a payment is in flight; empty = read once.
    pub poll_delays_ms: Vec<u32>,
    /// Provider refusals already counted on this charge.
    pub refusals: u32,
    /// Stop once a payment is initiated, without reading its status: a batch that starts many
    /// charges reads them all later, when they had time to settle.
    pub stop_after_initiate: bool,
    /// A renewal or installment: a card limit defers it instead of failing it.
    pub scheduled: bool,
}

/// How a drive ended, for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveEnd {
    Succeeded,
    Declined,
    Failed,
    /// Not final: a webhook, a later tick or a retry of the request will finish it.
    Waiting,
    /// Not final, and an operator was told why.
    NeedsAttention,
    /// Someone else holds the attempt; nothing was done.
    Busy,
}

impl DriveEnd {
    /// The variant's name, as logged.
    pub fn name(&self) -> &'static str {
        match self {
            DriveEnd::Succeeded => "Succeeded",
            DriveEnd::Declined => "Declined",
            DriveEnd::Failed => "Failed",
            DriveEnd::Waiting => "Waiting",
            DriveEnd::NeedsAttention => "NeedsAttention",
            DriveEnd::Busy => "Busy",
        }
    }
}

/// Runs steps until the charge is final or has to wait.
pub async fn drive<I: ChargeIo>(
    io: &mut I,
    view: ChargeView,
    options: &DriveOptions,
) -> Result<DriveEnd, I::Error> {
    let mut run = Run {
        view,
        options,
        polls: 0,
        refusals: options.refusals,
        unrecorded: None,
    };
    // A bound on steps: each one is a provider call, and a drive must fit in one invocation.
    for _ in 0..32 {
        if let ControlFlow::Break(end) = run.step(io).await? {
            // The payment id of an attempt still open is recorded before the drive lets go;
            // a final outcome records it with the outcome.
            if let Some((number, payment_id)) = run.unrecorded.take() {
                io.record_initiated(number, &payment_id).await?;
            }
            return Ok(end);
        }
    }
    if let Some((number, payment_id)) = run.unrecorded.take() {
        io.record_initiated(number, &payment_id).await?;
    }
    io.record_waiting(None).await?;
    Ok(DriveEnd::Waiting)
}

/// One drive's state between steps.
struct Run<'o> {
    view: ChargeView,
    options: &'o DriveOptions,
    polls: usize,
    refusals: u32,
    /// A payment id learned in this drive and not written yet: the write rides with the
    /// attempt's outcome when the drive sees it, saving a round trip per charge.
    unrecorded: Option<(u32, String)>,
}

type Next<E> = Result<ControlFlow<DriveEnd>, E>;

impl Run<'_> {
    async fn step<I: ChargeIo>(&mut self, io: &mut I) -> Next<I::Error> {
        let end = |e| Ok(ControlFlow::Break(e));
        match next_step(&self.view) {
            Step::Stop => end(match self.view.status {
                ChargeStatus::Succeeded => DriveEnd::Succeeded,
                ChargeStatus::Failed => DriveEnd::Declined,
                _ => DriveEnd::Waiting,
            }),
            Step::Expire => fail(io, ChargeFailure::Expired).await,
            Step::NoCard => fail(io, ChargeFailure::NoPaymentMethod).await,
            Step::CardBlocked => fail(io, ChargeFailure::CardBlocked).await,
            Step::CardLimited(limit) if self.options.scheduled => {
                io.record_deferred(limit).await?;
                end(DriveEnd::Waiting)
            }
            Step::CardLimited(_) => fail(io, ChargeFailure::CardRetryLimit).await,
            Step::CreateOrder => self.create_order(io).await,
            Step::StartAttempt { number, order_id } => {
                if !io.claim_attempt(number, &order_id).await? {
                    return end(DriveEnd::Busy);
                }
                let previous = self.view.latest.replace(Attempt {
                    number,
                    order_id: Some(order_id.clone()),
                    payment_id: None,
                    status: AttemptStatus::Claimed,
                    created_at: self.view.now,
                });
                if let Some(id) = previous.and_then(|p| p.payment_id) {
                    self.view.earlier_payment_ids.push(id);
                }
                self.initiate(io, number, order_id).await
            }
            Step::Initiate { number, order_id } => {
                if let Some(latest) = self.view.latest.as_mut() {
                    latest.order_id = Some(order_id.clone());
                }
                self.initiate(io, number, order_id).await
            }
            Step::ReadStatus { order_id } => self.read_status(io, order_id).await,
        }
    }

    async fn create_order<I: ChargeIo>(&mut self, io: &mut I) -> Next<I::Error> {
        let claimed_ahead = self
            .view
            .latest
            .as_ref()
            .filter(|a| a.status == AttemptStatus::Claimed && a.order_id.is_none())
            .map(|a| a.number);
        match io.create_order().await {
            Ok(order_id) => {
                io.record_order(&order_id, claimed_ahead).await?;
                self.view.order_id = Some(order_id);
                Ok(ControlFlow::Continue(()))
            }
            Err(e) if !e.is_refusal() => {
                // An order that may exist without our knowing its id moves no money: no
                // payment can be started on it. The next drive simply creates another.
                io.record_waiting(Some(&e.code())).await?;
                Ok(ControlFlow::Break(DriveEnd::Waiting))
            }
            Err(e) => {
                self.refusals += 1;
                io.record_refused(None, &e.code(), self.refusals).await?;
                refused(io, &e.code(), self.refusals).await
            }
        }
    }

    /// `POST /payments` for attempt `number`, claimed and with its order recorded.
    async fn initiate<I: ChargeIo>(
        &mut self,
        io: &mut I,
        number: u32,
        order_id: String,
    ) -> Next<I::Error> {
        self.view.status = ChargeStatus::Pending;
        self.view.retry_due = false;
        match io.initiate(&order_id).await {
            Ok(payment_id) => {
                if self.options.stop_after_initiate {
                    io.record_initiated(number, &payment_id).await?;
                    return Ok(ControlFlow::Break(DriveEnd::Waiting));
                }
                if let Some(latest) = self.view.latest.as_mut() {
                    latest.payment_id = Some(payment_id.clone());
                    latest.status = AttemptStatus::Initiated;
                }
                self.unrecorded = Some((number, payment_id));
                Ok(ControlFlow::Continue(()))
            }
            // Unknown: the attempt stays claimed and the status read decides.
            Err(e) if e.outcome_unknown() => Ok(ControlFlow::Continue(())),
            Err(e) if !e.is_refusal() => {
                io.record_waiting(Some(&e.code())).await?;
                Ok(ControlFlow::Break(DriveEnd::Waiting))
            }
            Err(e) => {
                self.refusals += 1;
                io.record_refused(Some((number, &order_id)), &e.code(), self.refusals)
                    .await?;
                refused(io, &e.code(), self.refusals).await
            }
        }
    }

    async fn read_status<I: ChargeIo>(&mut self, io: &mut I, order_id: String) -> Next<I::Error> {
        let Some(attempt) = self.view.latest.clone() else {
            return Ok(ControlFlow::Break(DriveEnd::Waiting));
        };
        let status = match io.status(&order_id).await {
            Ok(status) => status,
            Err(PspError::NotFound) => {
                return attention(io, Attention::OrderLost { order_id }).await;
            }
            Err(e) => {
                io.record_waiting(Some(&e.code())).await?;
                return Ok(ControlFlow::Break(DriveEnd::Waiting));
            }
        };
        let reusable = order_reusable(&attempt, &status);
        match judge(&attempt, &self.view.earlier_payment_ids, &status) {
            Verdict::Succeeded { payment_id, amount } => {
                self.unrecorded = None;
                io.record_success(attempt.number, &payment_id, amount)
                    .await?;
                self.view.status = ChargeStatus::Succeeded;
                Ok(ControlFlow::Break(DriveEnd::Succeeded))
            }
            Verdict::Declined { payment_id, reason } => {
                self.unrecorded = None;
                let given_up = (!reusable).then_some(order_id.as_str());
                io.record_decline(attempt.number, &payment_id, reason.as_deref(), given_up)
                    .await?;
                self.view.status = ChargeStatus::Failed;
                Ok(ControlFlow::Break(DriveEnd::Declined))
            }
            Verdict::Cancelled { payment_id } => {
                // Known to be over without the card answering: the charge moves on to a new
                // order at once. A cancelled order is never used again.
                self.unrecorded = None;
                io.record_ended(
                    attempt.number,
                    AttemptStatus::Cancelled,
                    Some(&payment_id),
                    &order_id,
                )
                .await?;
                give_up_order(&mut self.view, AttemptStatus::Cancelled, Some(payment_id));
                self.polls = 0;
                Ok(ControlFlow::Continue(()))
            }
            Verdict::InFlight { payment_id } => {
                if attempt.payment_id.is_none() {
                    io.record_initiated(attempt.number, &payment_id).await?;
                    if let Some(latest) = self.view.latest.as_mut() {
                        latest.payment_id = Some(payment_id);
                        if latest.status == AttemptStatus::Claimed {
                            latest.status = AttemptStatus::Initiated;
                        }
                    }
                }
                if self.view.now - attempt.created_at > STUCK_AFTER_MS {
                    return attention(io, Attention::Stuck { order_id }).await;
                }
                if !self.pause(io).await {
                    io.record_waiting(None).await?;
                    return Ok(ControlFlow::Break(DriveEnd::Waiting));
                }
                Ok(ControlFlow::Continue(()))
            }
            Verdict::Missing => self.missing(io, attempt, order_id).await,
        }
    }

    /// The status shows nothing for the attempt.
    async fn missing<I: ChargeIo>(
        &mut self,
        io: &mut I,
        attempt: Attempt,
        order_id: String,
    ) -> Next<I::Error> {
        // Give a lagging status its chance before concluding anything.
        if self.pause(io).await {
            return Ok(ControlFlow::Continue(()));
        }
        match on_missing(&attempt, self.view.now, self.view.settle_window_ms) {
            MissingAction::Wait => {}
            MissingAction::Lost => {
                return attention(io, Attention::OutcomeUnknown { order_id }).await;
            }
            // Only the charge's owner acts on the order; a webhook only reads.
            _ if !self.view.may_initiate => {}
            MissingAction::Fence => {
                let _ = io.cancel_order(&order_id).await;
                io.record_fenced(attempt.number).await?;
                if let Some(latest) = self.view.latest.as_mut() {
                    latest.status = AttemptStatus::Fenced;
                }
            }
            MissingAction::Abandon => {
                if attempt.status != AttemptStatus::Fenced {
                    let _ = io.cancel_order(&order_id).await;
                }
                io.record_ended(attempt.number, AttemptStatus::Abandoned, None, &order_id)
                    .await?;
                give_up_order(&mut self.view, AttemptStatus::Abandoned, None);
                self.polls = 0;
                return Ok(ControlFlow::Continue(()));
            }
        }
        io.record_waiting(None).await?;
        Ok(ControlFlow::Break(DriveEnd::Waiting))
    }

    async fn pause<I: ChargeIo>(&mut self, io: &mut I) -> bool {
        match self.options.poll_delays_ms.get(self.polls) {
            Some(&ms) => {
                self.polls += 1;
                io.sleep(ms).await;
                true
            }
            None => false,
        }
    }
}

/// The latest attempt ended as `status` and its order will not be used again.
fn give_up_order(view: &mut ChargeView, status: AttemptStatus, payment_id: Option<String>) {
    if let Some(latest) = view.latest.as_mut() {
        latest.status = status;
        if latest.payment_id.is_none() {
            latest.payment_id = payment_id;
        }
    }
    view.order_id = None;
}

async fn fail<I: ChargeIo>(io: &mut I, failure: ChargeFailure) -> Next<I::Error> {
    io.record_failure(failure).await?;
    Ok(ControlFlow::Break(DriveEnd::Failed))
}

async fn attention<I: ChargeIo>(io: &mut I, why: Attention) -> Next<I::Error> {
    io.record_attention(&why).await?;
    Ok(ControlFlow::Break(DriveEnd::NeedsAttention))
}

/// After a refusal: a missing card fails the charge; a refusal that cannot go away, or one
/// too many, needs an operator; otherwise the charge simply stays open.
async fn refused<I: ChargeIo>(io: &mut I, code: &str, refusals: u32) -> Next<I::Error> {
    if code == NO_PAYMENT_METHOD {
        fail(io, ChargeFailure::NoPaymentMethod).await
    } else if is_permanent_refusal(code) || refusals >= MAX_REJECTED_ATTEMPTS {
        attention(
            io,
            Attention::ProviderRefused {
                code: code.to_owned(),
            },
        )
        .await
    } else {
        Ok(ControlFlow::Break(DriveEnd::Waiting))
    }
}

#[cfg(test)]
mod names {
    use super::DriveEnd;

    #[test]
    fn a_drive_end_is_logged_by_its_variant_name() {
        for end in [
            DriveEnd::Succeeded,
            DriveEnd::Declined,
            DriveEnd::Failed,
            DriveEnd::Waiting,
            DriveEnd::NeedsAttention,
            DriveEnd::Busy,
        ] {
            assert_eq!(end.name(), format!("{end:?}"));
        }
    }
}
