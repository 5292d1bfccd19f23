//! The claim/reconcile state machine of one charge: given what the ledger recorded, which
//! provider call comes next; given an order status, what happened to an attempt.
//!
//! The provider has no idempotency keys, so exactly-once rests on three rules:
//! - every `POST /payments` is claimed first (attempt n of a charge is a UNIQUE row), so no two
//!   processes ever initiate the same attempt;
//! - a new attempt is started only when the previous one is known to be over: declined,
//!   refused by the provider before it started, or *fenced*;
//! - an attempt whose outcome is unknown and that the order status does not show (the request
//!   may still be in flight, or the status may lag) is fenced by cancelling its order. Once the
//!   provider confirms the cancellation no payment can complete on that order, so the charge
//!   moves to a fresh order. If the cancellation is refused, the order completed after all and
//!   the status will show it.
//!
//! An order whose creation timed out before its id was known is simply created again: an unpaid
//! order moves no money.

use crate::psp::types::{OrderStatus, PaymentState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Claimed; no payment has reached the provider yet, or one may have.
    Processing,
    /// A payment is (or may be) in flight; the outcome is awaited.
    Pending,
    Succeeded,
    /// Declined or refused. Final unless dunning schedules a retry.
    Failed,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Processing => "processing",
            ChargeStatus::Pending => "pending",
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ChargeStatus> {
        Some(match s {
            "processing" => ChargeStatus::Processing,
            "pending" => ChargeStatus::Pending,
            "succeeded" => ChargeStatus::Succeeded,
            "failed" => ChargeStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Claimed; `POST /payments` may or may not have reached the provider.
    Claimed,
    /// The provider answered with a payment id; the outcome is awaited.
    Initiated,
    Succeeded,
    /// The card was declined (or the payment cancelled): a real attempt on the card.
    Failed,
    /// The provider refused to start the payment: nothing reached the card.
    Rejected,
    /// Its order was cancelled before anything could complete on it.
    Fenced,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Claimed => "claimed",
            AttemptStatus::Initiated => "initiated",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Rejected => "rejected",
            AttemptStatus::Fenced => "fenced",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        Some(match s {
            "claimed" => AttemptStatus::Claimed,
            "initiated" => AttemptStatus::Initiated,
            "succeeded" => AttemptStatus::Succeeded,
            "failed" => AttemptStatus::Failed,
            "rejected" => AttemptStatus::Rejected,
            "fenced" => AttemptStatus::Fenced,
            _ => return None,
        })
    }

    /// Over: a next attempt may start without risk of a second payment.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            AttemptStatus::Failed | AttemptStatus::Rejected | AttemptStatus::Fenced
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: AttemptStatus,
}

/// What decides the next step: the charge row and its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeView {
    pub status: ChargeStatus,
    pub order_id: Option<String>,
    pub latest: Option<Attempt>,
    /// Payment ids of every earlier attempt, so an unknown payment on the order can be told
    /// apart from old ones.
    pub earlier_payment_ids: Vec<String>,
    /// A failed charge whose dunning retry is due (only the scheduler sets this).
    pub retry_due: bool,
    /// May this drive start a payment? False when only settling (a webhook, a status read).
    pub may_initiate: bool,
    /// Past its deadline to start: a charge whose payment never reached the card by then fails
    /// instead of moving money long after it was asked for (API charges while the provider
    /// is down).
    pub start_expired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do now: final, waiting for a scheduled retry, or not allowed to initiate.
    Stop,
    CreateOrder,
    /// Claim attempt `number` and initiate it on `order_id`.
    StartAttempt {
        number: u32,
        order_id: String,
    },
    /// Read the order status to learn what happened to the latest attempt.
    ReadStatus {
        order_id: String,
    },
    /// Give up starting: nothing reached the card and the deadline passed.
    Expire,
}

pub fn next_step(view: &ChargeView) -> Step {
    match view.status {
        ChargeStatus::Succeeded => return Step::Stop,
        ChargeStatus::Failed if !view.retry_due => return Step::Stop,
        _ => {}
    }
    if let Some(latest) = &view.latest {
        match latest.status {
            AttemptStatus::Succeeded => return Step::Stop,
            AttemptStatus::Claimed | AttemptStatus::Initiated => {
                return Step::ReadStatus {
                    order_id: latest.order_id.clone(),
                };
            }
            AttemptStatus::Failed | AttemptStatus::Rejected | AttemptStatus::Fenced => {}
        }
    }
    if !view.may_initiate {
        return Step::Stop;
    }
    // Only a charge whose attempts all ended without a decline can expire: a declined one has
    // already reached the card, and its retries are dunning's business.
    let never_reached_card = view
        .latest
        .as_ref()
        .is_none_or(|a| matches!(a.status, AttemptStatus::Rejected | AttemptStatus::Fenced));
    if view.start_expired && never_reached_card {
        return Step::Expire;
    }
    let number = view.latest.as_ref().map_or(1, |a| a.number + 1);
    match &view.order_id {
        None => Step::CreateOrder,
        Some(order_id) => Step::StartAttempt {
            number,
            order_id: order_id.clone(),
        },
    }
}

/// What the order status says about an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Succeeded {
        payment_id: String,
        amount: Option<i64>,
    },
    Declined {
        payment_id: String,
        reason: Option<String>,
    },
    /// The payment exists and is not final yet.
    InFlight { payment_id: String },
    /// The status shows no payment for this attempt.
    Missing,
}

/// Finds the attempt's payment in the status: by id when the provider told us the id, otherwise
/// the newest payment that belongs to no earlier attempt.
pub fn judge(attempt: &Attempt, earlier_payment_ids: &[String], status: &OrderStatus) -> Verdict {
    let payment = match &attempt.payment_id {
        Some(id) => status.payments.iter().find(|p| &p.payment_id == id),
        None => status
            .payments
            .iter()
            .rev()
            .find(|p| !earlier_payment_ids.contains(&p.payment_id)),
    };
    let Some(payment) = payment else {
        return Verdict::Missing;
    };
    let payment_id = payment.payment_id.clone();
    match PaymentState::parse(&payment.payment_status) {
        PaymentState::Completed => Verdict::Succeeded {
            payment_id,
            amount: payment.amount,
        },
        PaymentState::Failed => Verdict::Declined {
            payment_id,
            reason: payment.failure_reason.clone(),
        },
        PaymentState::Cancelled => Verdict::Declined {
            payment_id,
            reason: Some(
                payment
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "PAYMENT_CANCELLED".to_owned()),
            ),
        },
        PaymentState::InFlight => Verdict::InFlight { payment_id },
    }
}

/// What to do when the status shows nothing for the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingAction {
    /// The provider gave us a payment id, so the payment exists: the status lags. Wait.
    Wait,
    /// We never learned whether `POST /payments` landed: cancel the order to settle it.
    Fence,
}

pub fn on_missing(attempt: &Attempt) -> MissingAction {
    if attempt.payment_id.is_some() || attempt.status == AttemptStatus::Initiated {
        MissingAction::Wait
    } else {
        MissingAction::Fence
    }
}

/// Provider refusals to start a payment that will not go away by trying again.
pub fn is_permanent_refusal(code: &str) -> bool {
    // PS_0025: payment on an order of the wrong terminal; a token refused outright.
    matches!(code, "PS_0025" | "no_payment_method" | "provider_http_400")
}

/// Refusals tolerated before a charge fails: a transient provider error must not fail a charge
/// on the first try, and a persistent one must not loop forever.
pub const MAX_REJECTED_ATTEMPTS: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::types::PaymentStatus;

    fn view(status: ChargeStatus, order: Option<&str>, latest: Option<Attempt>) -> ChargeView {
        ChargeView {
            status,
            order_id: order.map(str::to_owned),
            latest,
            earlier_payment_ids: vec![],
            retry_due: false,
            may_initiate: true,
            start_expired: false,
        }
    }

    fn attempt(number: u32, status: AttemptStatus, payment: Option<&str>) -> Attempt {
        Attempt {
            number,
            order_id: "o1".into(),
            payment_id: payment.map(str::to_owned),
            status,
        }
    }

    fn order_status(payments: &[(&str, &str, Option<&str>)]) -> OrderStatus {
        OrderStatus {
            order_status: "PAYMENT_INITIATED".into(),
            payments: payments
                .iter()
                .map(|(id, status, reason)| PaymentStatus {
                    payment_id: (*id).into(),
                    payment_status: (*status).into(),
                    payment_method: Some("CTOKEN".into()),
                    amount: Some(100),
                    failure_reason: reason.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn a_fresh_claim_creates_an_order_then_starts_attempt_one() {
        assert_eq!(
            next_step(&view(ChargeStatus::Processing, None, None)),
            Step::CreateOrder
        );
        assert_eq!(
            next_step(&view(ChargeStatus::Processing, Some("o1"), None)),
            Step::StartAttempt {
                number: 1,
                order_id: "o1".into()
            }
        );
    }

    #[test]
    fn an_attempt_in_doubt_is_always_read_before_anything_else() {
        for status in [AttemptStatus::Claimed, AttemptStatus::Initiated] {
            let v = view(
                ChargeStatus::Pending,
                Some("o1"),
                Some(attempt(1, status, None)),
            );
            assert_eq!(
                next_step(&v),
                Step::ReadStatus {
                    order_id: "o1".into()
                }
            );
        }
    }

    #[test]
    fn final_charges_stop_and_failed_ones_wait_for_their_retry() {
        let done = view(
            ChargeStatus::Succeeded,
            Some("o1"),
            Some(attempt(1, AttemptStatus::Succeeded, Some("p1"))),
        );
        assert_eq!(next_step(&done), Step::Stop);
        let mut failed = view(
            ChargeStatus::Failed,
            Some("o1"),
            Some(attempt(1, AttemptStatus::Failed, Some("p1"))),
        );
        assert_eq!(next_step(&failed), Step::Stop);
        failed.retry_due = true;
        assert_eq!(
            next_step(&failed),
            Step::StartAttempt {
                number: 2,
                order_id: "o1".into()
            },
            "a retry reuses the open MIT order"
        );
    }

    #[test]
    fn a_charge_that_never_reached_the_card_expires_instead_of_starting_late() {
        let mut v = view(ChargeStatus::Processing, None, None);
        v.start_expired = true;
        assert_eq!(next_step(&v), Step::Expire);
        v.latest = Some(attempt(1, AttemptStatus::Fenced, None));
        assert_eq!(next_step(&v), Step::Expire);
        // An attempt in doubt is still read, never abandoned: it may have moved money.
        v.latest = Some(attempt(1, AttemptStatus::Claimed, None));
        v.order_id = Some("o1".into());
        assert_eq!(
            next_step(&v),
            Step::ReadStatus {
                order_id: "o1".into()
            }
        );
        v.start_expired = false;
        v.latest = Some(attempt(1, AttemptStatus::Rejected, None));
        assert!(matches!(
            next_step(&v),
            Step::StartAttempt { number: 2, .. }
        ));
    }

    #[test]
    fn after_a_fence_the_next_attempt_needs_a_new_order() {
        let v = view(
            ChargeStatus::Pending,
            None,
            Some(attempt(1, AttemptStatus::Fenced, None)),
        );
        assert_eq!(next_step(&v), Step::CreateOrder);
    }

    #[test]
    fn settling_never_initiates() {
        let mut v = view(
            ChargeStatus::Pending,
            Some("o1"),
            Some(attempt(1, AttemptStatus::Rejected, None)),
        );
        v.may_initiate = false;
        assert_eq!(next_step(&v), Step::Stop);
        v.latest = Some(attempt(1, AttemptStatus::Initiated, Some("p1")));
        assert_eq!(
            next_step(&v),
            Step::ReadStatus {
                order_id: "o1".into()
            },
            "settling still reads the status"
        );
    }

    #[test]
    fn judge_finds_the_attempt_by_id() {
        let s = order_status(&[
            ("p0", "PAYMENT_FAILED", Some("DENIED_NO_FUNDS")),
            ("p1", "PAYMENT_COMPLETED", None),
        ]);
        assert_eq!(
            judge(&attempt(1, AttemptStatus::Initiated, Some("p0")), &[], &s),
            Verdict::Declined {
                payment_id: "p0".into(),
                reason: Some("DENIED_NO_FUNDS".into())
            }
        );
        assert_eq!(
            judge(&attempt(2, AttemptStatus::Initiated, Some("p1")), &[], &s),
            Verdict::Succeeded {
                payment_id: "p1".into(),
                amount: Some(100)
            }
        );
    }

    #[test]
    fn judge_adopts_an_unknown_payment_only_if_no_earlier_attempt_owns_it() {
        let s = order_status(&[
            ("p0", "PAYMENT_FAILED", Some("DENIED")),
            ("p1", "PAYMENT_PROCESSED", None),
        ]);
        let claimed = attempt(2, AttemptStatus::Claimed, None);
        assert_eq!(
            judge(&claimed, &["p0".into()], &s),
            Verdict::InFlight {
                payment_id: "p1".into()
            }
        );
        let only_old = order_status(&[("p0", "PAYMENT_FAILED", Some("DENIED"))]);
        assert_eq!(judge(&claimed, &["p0".into()], &only_old), Verdict::Missing);
    }

    #[test]
    fn cancelled_payments_are_declines_with_a_reason() {
        let s = order_status(&[("p1", "PAYMENT_CANCELLED", None)]);
        assert_eq!(
            judge(&attempt(1, AttemptStatus::Initiated, Some("p1")), &[], &s),
            Verdict::Declined {
                payment_id: "p1".into(),
                reason: Some("PAYMENT_CANCELLED".into())
            }
        );
    }

    #[test]
    fn missing_payment_is_fenced_only_when_we_never_heard_back() {
        assert_eq!(
            on_missing(&attempt(1, AttemptStatus::Claimed, None)),
            MissingAction::Fence
        );
        assert_eq!(
            on_missing(&attempt(1, AttemptStatus::Initiated, Some("p1"))),
            MissingAction::Wait,
            "a payment id means the payment exists; the status lags"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            ChargeStatus::Processing,
            ChargeStatus::Pending,
            ChargeStatus::Succeeded,
            ChargeStatus::Failed,
        ] {
            assert_eq!(ChargeStatus::parse(s.as_str()), Some(s));
        }
        for s in [
            AttemptStatus::Claimed,
            AttemptStatus::Initiated,
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::Rejected,
            AttemptStatus::Fenced,
        ] {
            assert_eq!(AttemptStatus::parse(s.as_str()), Some(s));
        }
    }
}
