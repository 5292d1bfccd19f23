//! Drives one charge through the provider until it is final or must wait, following
//! `charge_machine`. Generic over [`ChargeIo`] so the very loop that runs in production is
//! exercised natively against a simulated provider with faults and crashes.

use super::charge_machine::{
    Attempt, AttemptStatus, ChargeStatus, ChargeView, MAX_REJECTED_ATTEMPTS, MissingAction, Step,
    Verdict, is_permanent_refusal, judge, next_step, on_missing,
};
use crate::psp::envelope::PspError;
use crate::psp::types::OrderStatus;

/// The provider calls and ledger writes a charge needs. Every ledger write must be durable
/// before it returns: the driver relies on a write having happened once it moves on.
#[allow(async_fn_in_trait)]
pub trait ChargeIo {
    type Error;

    async fn create_order(&mut self) -> Result<String, PspError>;
    /// `POST /payments` with the customer's token; no token on file is `no_payment_method`.
    async fn initiate(&mut self, order_id: &str) -> Result<String, PspError>;
    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError>;
    async fn cancel_order(&mut self, order_id: &str) -> Result<(), PspError>;
    async fn sleep(&mut self, ms: u32);

    async fn record_order(&mut self, order_id: &str) -> Result<(), Self::Error>;
    /// The conditional insert of attempt `number`: false when another process claimed it.
    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Self::Error>;
    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Self::Error>;
    /// The provider refused a call before anything could happen (attempt `number` if it was
    /// `POST /payments`); `refusals` is the charge's running count.
    async fn record_refused(
        &mut self,
        number: Option<u32>,
        code: &str,
        refusals: u32,
    ) -> Result<(), Self::Error>;
    async fn record_fenced(&mut self, number: u32, order_id: &str) -> Result<(), Self::Error>;
    async fn record_success(
        &mut self,
        number: u32,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Self::Error>;
    async fn record_decline(
        &mut self,
        number: u32,
        payment_id: &str,
        reason: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// The charge stays open; `code` says why (a provider error), for operators.
    async fn record_waiting(&mut self, code: Option<&str>) -> Result<(), Self::Error>;
    /// The charge fails without a card decline (e.g. no card on file, the provider refuses).
    async fn record_failure(&mut self, code: &str) -> Result<(), Self::Error>;
}

/// The failure code of a charge that expired before any payment reached the card.
pub const EXPIRED: &str = "provider_unavailable";

#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Pauses between status reads while a payment is in flight; empty = read once.
    pub poll_delays_ms: Vec<u32>,
    /// Provider refusals already counted on this charge.
    pub refusals: u32,
    /// Stop once a payment is initiated, without reading its status: a batch that starts many
    /// charges reads them all later, when they had time to settle.
    pub stop_after_initiate: bool,
}

/// How a drive ended, for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveEnd {
    Succeeded,
    Declined,
    Failed,
    /// Not final: a webhook, a later tick or a retry of the request will finish it.
    Waiting,
    /// Someone else holds the attempt; nothing was done.
    Busy,
}

/// Runs steps until the charge is final or has to wait.
pub async fn drive<I: ChargeIo>(
    io: &mut I,
    mut view: ChargeView,
    options: &DriveOptions,
) -> Result<DriveEnd, I::Error> {
    let mut polls = 0usize;
    let mut fences = 0u32;
    let mut refusals = options.refusals;
    // A bound on steps: each one is a provider call, and a drive must fit in one invocation.
    for _ in 0..32 {
        match next_step(&view) {
            Step::Stop => {
                return Ok(match view.status {
                    ChargeStatus::Succeeded => DriveEnd::Succeeded,
                    ChargeStatus::Failed => DriveEnd::Declined,
                    _ => DriveEnd::Waiting,
                });
            }
            Step::Expire => {
                io.record_failure(EXPIRED).await?;
                return Ok(DriveEnd::Failed);
            }
            Step::CreateOrder => match io.create_order().await {
                Ok(order_id) => {
                    io.record_order(&order_id).await?;
                    view.order_id = Some(order_id);
                }
                Err(e) if !e.is_refusal() => {
                    // An order that may exist without our knowing its id moves no money; the
                    // next drive simply creates another.
                    io.record_waiting(Some(&e.code())).await?;
                    return Ok(DriveEnd::Waiting);
                }
                Err(e) => {
                    refusals += 1;
                    io.record_refused(None, &e.code(), refusals).await?;
                    return refuse(io, &e.code(), refusals).await;
                }
            },
            Step::StartAttempt { number, order_id } => {
                if !io.claim_attempt(number, &order_id).await? {
                    return Ok(DriveEnd::Busy);
                }
                let mut attempt = Attempt {
                    number,
                    order_id: order_id.clone(),
                    payment_id: None,
                    status: AttemptStatus::Claimed,
                };
                if let Some(previous) = view.latest.take()
                    && let Some(id) = previous.payment_id
                {
                    view.earlier_payment_ids.push(id);
                }
                view.status = ChargeStatus::Pending;
                view.retry_due = false;
                match io.initiate(&order_id).await {
                    Ok(payment_id) => {
                        io.record_initiated(number, &payment_id).await?;
                        if options.stop_after_initiate {
                            return Ok(DriveEnd::Waiting);
                        }
                        attempt.payment_id = Some(payment_id);
                        attempt.status = AttemptStatus::Initiated;
                    }
                    // Unknown: the attempt stays claimed and the status read decides.
                    Err(e) if e.outcome_unknown() => {}
                    Err(e) if !e.is_refusal() => {
                        io.record_waiting(Some(&e.code())).await?;
                        view.latest = Some(attempt);
                        return Ok(DriveEnd::Waiting);
                    }
                    Err(e) => {
                        refusals += 1;
                        io.record_refused(Some(number), &e.code(), refusals).await?;
                        return refuse(io, &e.code(), refusals).await;
                    }
                }
                view.latest = Some(attempt);
            }
            Step::ReadStatus { order_id } => {
                let Some(attempt) = view.latest.clone() else {
                    return Ok(DriveEnd::Waiting);
                };
                let status = match io.status(&order_id).await {
                    Ok(status) => status,
                    Err(e) => {
                        io.record_waiting(Some(&e.code())).await?;
                        return Ok(DriveEnd::Waiting);
                    }
                };
                match judge(&attempt, &view.earlier_payment_ids, &status) {
                    Verdict::Succeeded { payment_id, amount } => {
                        io.record_success(attempt.number, &payment_id, amount)
                            .await?;
                        view.status = ChargeStatus::Succeeded;
                        return Ok(DriveEnd::Succeeded);
                    }
                    Verdict::Declined { payment_id, reason } => {
                        io.record_decline(attempt.number, &payment_id, reason.as_deref())
                            .await?;
                        view.status = ChargeStatus::Failed;
                        return Ok(DriveEnd::Declined);
                    }
                    Verdict::InFlight { payment_id } => {
                        if attempt.payment_id.is_none() {
                            io.record_initiated(attempt.number, &payment_id).await?;
                            if let Some(latest) = view.latest.as_mut() {
                                latest.payment_id = Some(payment_id);
                                latest.status = AttemptStatus::Initiated;
                            }
                        }
                        if !pause(io, options, &mut polls).await {
                            io.record_waiting(None).await?;
                            return Ok(DriveEnd::Waiting);
                        }
                    }
                    Verdict::Missing => {
                        // Give a lagging status its chance before concluding anything.
                        if pause(io, options, &mut polls).await {
                            continue;
                        }
                        if on_missing(&attempt) == MissingAction::Wait
                            || !view.may_initiate
                            || fences >= 2
                        {
                            io.record_waiting(None).await?;
                            return Ok(DriveEnd::Waiting);
                        }
                        match io.cancel_order(&order_id).await {
                            Ok(()) => {
                                io.record_fenced(attempt.number, &order_id).await?;
                                fences += 1;
                                polls = 0;
                                view.order_id = None;
                                if let Some(latest) = view.latest.as_mut() {
                                    latest.status = AttemptStatus::Fenced;
                                }
                            }
                            // Refused (the order completed after all) or unknown: the status
                            // will tell on the next read.
                            Err(e) => {
                                io.record_waiting(Some(&e.code())).await?;
                                return Ok(DriveEnd::Waiting);
                            }
                        }
                    }
                }
            }
        }
    }
    io.record_waiting(None).await?;
    Ok(DriveEnd::Waiting)
}

async fn pause<I: ChargeIo>(io: &mut I, options: &DriveOptions, polls: &mut usize) -> bool {
    match options.poll_delays_ms.get(*polls) {
        Some(&ms) => {
            *polls += 1;
            io.sleep(ms).await;
            true
        }
        None => false,
    }
}

/// After a refusal: fail the charge when trying again cannot help, otherwise leave it open.
async fn refuse<I: ChargeIo>(io: &mut I, code: &str, refusals: u32) -> Result<DriveEnd, I::Error> {
    if is_permanent_refusal(code) || refusals >= MAX_REJECTED_ATTEMPTS {
        io.record_failure(code).await?;
        Ok(DriveEnd::Failed)
    } else {
        Ok(DriveEnd::Waiting)
    }
}
