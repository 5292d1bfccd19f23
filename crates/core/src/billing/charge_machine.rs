//! The claim/reconcile state machine of one charge: given what the ledger recorded, which
//! provider call comes next; given an order status, what happened to an attempt.
//!
//! The provider has no idempotency keys, and its documents promise less than one would like:
//! its status may lag the real outcome by minutes, and nothing says that cancelling an order
//! stops a payment already in progress. So exactly-once rests on these rules:
//! - every `POST /payments` is claimed first (attempt n of a charge is a UNIQUE row), so no two
//!   processes ever initiate the same attempt;
//! - a new attempt starts only when the previous one is *known* to be over (the provider showed
//!   its payment failed or cancelled, or refused to start it), or when its settle window passed
//!   without the provider ever showing it;
//! - an attempt in doubt may be *fenced* (its order cancelled) to hurry its outcome along, but a
//!   fence proves nothing: the attempt stays in doubt until the status speaks or the window ends;
//! - an order we stop using is never used again and stays watched for days: a payment that
//!   completes there anyway is adopted or refunded (see `order_watch`);
//! - only the card declines: a payment cancelled by our fence, a refusal of our request, or an
//!   error of ours never counts as a decline.
//!
//! An order whose creation timed out before its id was known is simply created again: an unpaid
//! order moves no money, and nothing can be paid on an order nobody knows the id of.

use super::dunning::{CardDeclines, CardLimit, may_retry_card};
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
    /// In doubt, and its order was cancelled to hurry the outcome along. Still in doubt: a
    /// cancel does not prove that nothing completes.
    Fenced,
    Succeeded,
    /// The card declined: the only status that counts towards dunning and card limits.
    Failed,
    /// The provider refused to start the payment: nothing reached the card.
    Rejected,
    /// The provider shows the payment cancelled (our fence, or the provider): not a decline.
    Cancelled,
    /// Never shown by the provider within its settle window; its order is watched for a late
    /// outcome while the charge moved on.
    Abandoned,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Claimed => "claimed",
            AttemptStatus::Initiated => "initiated",
            AttemptStatus::Fenced => "fenced",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Rejected => "rejected",
            AttemptStatus::Cancelled => "cancelled",
            AttemptStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        Some(match s {
            "claimed" => AttemptStatus::Claimed,
            "initiated" => AttemptStatus::Initiated,
            "fenced" => AttemptStatus::Fenced,
            "succeeded" => AttemptStatus::Succeeded,
            "failed" => AttemptStatus::Failed,
            "rejected" => AttemptStatus::Rejected,
            "cancelled" => AttemptStatus::Cancelled,
            "abandoned" => AttemptStatus::Abandoned,
            _ => return None,
        })
    }

    /// The outcome is not known: nothing new may start until it is, or its window passed.
    pub fn in_doubt(self) -> bool {
        matches!(
            self,
            AttemptStatus::Claimed | AttemptStatus::Initiated | AttemptStatus::Fenced
        )
    }

    /// Ended without the card ever answering: a charge made only of such attempts never
    /// reached the card.
    pub fn never_reached_card(self) -> bool {
        matches!(
            self,
            AttemptStatus::Rejected | AttemptStatus::Cancelled | AttemptStatus::Abandoned
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    /// `None` for an attempt claimed ahead of its order (a fresh charge claims attempt 1 in the
    /// same round trip as its lease): nothing was sent for it yet.
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub status: AttemptStatus,
    /// When it was claimed (business time): its settle window runs from here.
    pub created_at: i64,
}

/// What the ledger says about the card a new attempt would charge, across all its charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardGuard {
    #[default]
    Clear,
    /// The customer has no card on file.
    NoCard,
    /// The card gave a hard decline on some charge: it is never attempted again.
    HardDeclined,
    /// Another attempt now would break a card network's retry limit.
    Limited(CardLimit),
}

impl CardGuard {
    /// From the card's history across every charge: whether it ever gave a hard decline, and
    /// how often it declined lately.
    pub fn from_history(hard_declined: bool, declines: CardDeclines) -> CardGuard {
        if hard_declined {
            return CardGuard::HardDeclined;
        }
        match may_retry_card(declines) {
            Ok(()) => CardGuard::Clear,
            Err(limit) => CardGuard::Limited(limit),
        }
    }
}

/// What decides the next step: the charge row and its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeView {
    pub status: ChargeStatus,
    /// The order the next attempt goes on; `None` once the last one was given up.
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
    /// Business time of this drive.
    pub now: i64,
    /// How long an attempt the provider never showed stays in doubt before the charge moves on.
    pub settle_window_ms: i64,
    pub card: CardGuard,
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
    /// Initiate attempt `number`, claimed ahead of its order, on the order just created for it.
    Initiate {
        number: u32,
        order_id: String,
    },
    /// Read the order status to learn what happened to the latest attempt.
    ReadStatus {
        order_id: String,
    },
    /// Give up starting: nothing reached the card and the deadline passed.
    Expire,
    /// No card on file: nothing to attempt.
    NoCard,
    /// The card hard-declined before (on this or another charge): never attempt it again.
    CardBlocked,
    /// The card may not be attempted now without breaking a network limit.
    CardLimited(CardLimit),
}

pub fn next_step(view: &ChargeView) -> Step {
    match view.status {
        ChargeStatus::Succeeded => return Step::Stop,
        ChargeStatus::Failed if !view.retry_due => return Step::Stop,
        _ => {}
    }
    // An attempt claimed ahead of its order: nothing was sent for it, so it is carried on
    // rather than read.
    let mut claimed_ahead = None;
    if let Some(latest) = &view.latest {
        if latest.status == AttemptStatus::Succeeded {
            return Step::Stop;
        }
        if latest.status.in_doubt() {
            match &latest.order_id {
                Some(order_id) => {
                    return Step::ReadStatus {
                        order_id: order_id.clone(),
                    };
                }
                None => claimed_ahead = Some(latest.number),
            }
        }
    }
    if !view.may_initiate {
        return Step::Stop;
    }
    // Only a charge whose attempts all ended without the card answering can expire: a
    // declined one has already reached the card, and its retries are dunning's business.
    let never_reached_card = claimed_ahead.is_some()
        || view
            .latest
            .as_ref()
            .is_none_or(|a| a.status.never_reached_card());
    if view.start_expired && never_reached_card {
        return Step::Expire;
    }
    match view.card {
        CardGuard::Clear => {}
        CardGuard::NoCard => return Step::NoCard,
        CardGuard::HardDeclined => return Step::CardBlocked,
        CardGuard::Limited(limit) => return Step::CardLimited(limit),
    }
    let number = view.latest.as_ref().map_or(1, |a| a.number + 1);
    match (&view.order_id, claimed_ahead) {
        (None, _) => Step::CreateOrder,
        (Some(order_id), Some(number)) => Step::Initiate {
            number,
            order_id: order_id.clone(),
        },
        (Some(order_id), None) => Step::StartAttempt {
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
    /// The card declined the payment.
    Declined {
        payment_id: String,
        reason: Option<String>,
    },
    /// The payment was cancelled before the card answered: not a decline.
    Cancelled { payment_id: String },
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
        PaymentState::Cancelled => Verdict::Cancelled { payment_id },
        PaymentState::InFlight => Verdict::InFlight { payment_id },
    }
}

/// Whether the order can carry another attempt: a MIT order stays open after a declined
/// payment, but never once it was cancelled, by us or by anyone.
pub fn order_reusable(attempt: &Attempt, status: &OrderStatus) -> bool {
    attempt.status != AttemptStatus::Fenced && status.order_status != "PAYMENT_CANCELLED"
}

/// What to do when the status shows nothing for an attempt in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingAction {
    /// Within the settle window: the status may lag. Wait for it.
    Wait,
    /// Within the window, and we never learned whether `POST /payments` landed: cancel the
    /// order to hurry the outcome along, then keep waiting for the status.
    Fence,
    /// The window passed and the provider never showed a payment: give the order up (it stays
    /// watched) and move on to a new one.
    Abandon,
    /// The window passed, yet the provider gave us a payment id it never shows: nobody can
    /// tell what happened. An operator must look; the charge keeps being reconciled.
    Lost,
}

pub fn on_missing(attempt: &Attempt, now: i64, settle_window_ms: i64) -> MissingAction {
    let within_window = now - attempt.created_at < settle_window_ms;
    match attempt.status {
        AttemptStatus::Claimed if within_window => MissingAction::Fence,
        _ if within_window => MissingAction::Wait,
        AttemptStatus::Initiated => MissingAction::Lost,
        _ => MissingAction::Abandon,
    }
}

/// A payment in flight for longer than this is reported to an operator (and still awaited).
pub const STUCK_AFTER_MS: i64 = 24 * 3_600_000;

/// Provider refusals to start a payment that will not go away by trying again: the operator
/// must fix something (a terminal of the wrong kind, a request the provider cannot read).
pub fn is_permanent_refusal(code: &str) -> bool {
    matches!(code, "PS_0025" | "provider_http_400")
}

/// Refusals tolerated before a charge needs an operator: a transient provider error must not
/// stop a charge on the first try, and a persistent one must not loop unseen.
pub const MAX_REJECTED_ATTEMPTS: u32 = 3;

/// The failure code of a charge whose customer has no card on file.
pub const NO_PAYMENT_METHOD: &str = "no_payment_method";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::types::PaymentStatus;

    const NOW: i64 = 1_800_000_000_000;
    const WINDOW: i64 = 15 * 60_000;

    fn view(status: ChargeStatus, order: Option<&str>, latest: Option<Attempt>) -> ChargeView {
        ChargeView {
            status,
            order_id: order.map(str::to_owned),
            latest,
            earlier_payment_ids: vec![],
            retry_due: false,
            may_initiate: true,
            start_expired: false,
            now: NOW,
            settle_window_ms: WINDOW,
            card: CardGuard::Clear,
        }
    }

    fn attempt(number: u32, status: AttemptStatus, payment: Option<&str>) -> Attempt {
        Attempt {
            number,
            order_id: Some("o1".into()),
            payment_id: payment.map(str::to_owned),
            status,
            created_at: NOW - 1_000,
        }
    }

    fn order_status(payments: &[(&str, &str, Option<&str>)]) -> OrderStatus {
        OrderStatus {
            transactions: Vec::new(),
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
    fn an_attempt_claimed_ahead_gets_its_order_then_is_initiated_without_a_new_claim() {
        let ahead = Attempt {
            order_id: None,
            ..attempt(1, AttemptStatus::Claimed, None)
        };
        let mut v = view(ChargeStatus::Pending, None, Some(ahead));
        assert_eq!(next_step(&v), Step::CreateOrder);
        v.order_id = Some("o2".into());
        assert_eq!(
            next_step(&v),
            Step::Initiate {
                number: 1,
                order_id: "o2".into()
            }
        );
        // Nothing was sent for it: a settling drive leaves it, and it may still expire.
        v.may_initiate = false;
        assert_eq!(next_step(&v), Step::Stop);
        v.may_initiate = true;
        v.start_expired = true;
        assert_eq!(next_step(&v), Step::Expire);
        v.start_expired = false;
        v.card = CardGuard::HardDeclined;
        assert_eq!(next_step(&v), Step::CardBlocked);
    }

    #[test]
    fn an_attempt_in_doubt_is_always_read_before_anything_else() {
        for status in [
            AttemptStatus::Claimed,
            AttemptStatus::Initiated,
            AttemptStatus::Fenced,
        ] {
            let mut v = view(ChargeStatus::Pending, None, Some(attempt(1, status, None)));
            // Even a settling drive, an expired charge or a blocked card reads first.
            v.may_initiate = false;
            v.start_expired = true;
            v.card = CardGuard::HardDeclined;
            assert_eq!(
                next_step(&v),
                Step::ReadStatus {
                    order_id: "o1".into()
                },
                "{status:?}"
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
    fn a_blocked_or_limited_card_is_never_attempted() {
        let mut v = view(
            ChargeStatus::Failed,
            Some("o1"),
            Some(attempt(1, AttemptStatus::Failed, Some("p1"))),
        );
        v.retry_due = true;
        v.card = CardGuard::HardDeclined;
        assert_eq!(next_step(&v), Step::CardBlocked);
        v.card = CardGuard::Limited(CardLimit::Day);
        assert_eq!(next_step(&v), Step::CardLimited(CardLimit::Day));
        v.card = CardGuard::NoCard;
        assert_eq!(next_step(&v), Step::NoCard);
        let mut fresh = view(ChargeStatus::Processing, None, None);
        fresh.card = CardGuard::HardDeclined;
        assert_eq!(
            next_step(&fresh),
            Step::CardBlocked,
            "not even an order is created for a blocked card"
        );
    }

    #[test]
    fn the_card_guard_follows_the_networks_limits() {
        let clear = CardDeclines {
            last_24h: 4,
            last_30d: 14,
        };
        assert_eq!(CardGuard::from_history(false, clear), CardGuard::Clear);
        assert_eq!(
            CardGuard::from_history(true, CardDeclines::default()),
            CardGuard::HardDeclined
        );
        let day = CardDeclines {
            last_24h: 5,
            ..clear
        };
        assert_eq!(
            CardGuard::from_history(false, day),
            CardGuard::Limited(CardLimit::Day)
        );
        let month = CardDeclines {
            last_30d: 15,
            ..clear
        };
        assert_eq!(
            CardGuard::from_history(false, month),
            CardGuard::Limited(CardLimit::ThirtyDays)
        );
    }

    #[test]
    fn a_charge_that_never_reached_the_card_expires_instead_of_starting_late() {
        let mut v = view(ChargeStatus::Processing, None, None);
        v.start_expired = true;
        assert_eq!(next_step(&v), Step::Expire);
        for over in [
            AttemptStatus::Rejected,
            AttemptStatus::Cancelled,
            AttemptStatus::Abandoned,
        ] {
            v.latest = Some(attempt(1, over, None));
            assert_eq!(next_step(&v), Step::Expire, "{over:?}");
        }
        // A declined charge reached the card: dunning decides, not the start deadline.
        v.status = ChargeStatus::Failed;
        v.retry_due = true;
        v.order_id = Some("o1".into());
        v.latest = Some(attempt(1, AttemptStatus::Failed, Some("p1")));
        assert!(matches!(
            next_step(&v),
            Step::StartAttempt { number: 2, .. }
        ));
    }

    #[test]
    fn after_an_order_was_given_up_the_next_attempt_needs_a_new_order() {
        for over in [
            AttemptStatus::Rejected,
            AttemptStatus::Cancelled,
            AttemptStatus::Abandoned,
        ] {
            let v = view(ChargeStatus::Pending, None, Some(attempt(1, over, None)));
            assert_eq!(next_step(&v), Step::CreateOrder, "{over:?}");
        }
    }

    #[test]
    fn settling_never_initiates() {
        let mut v = view(
            ChargeStatus::Pending,
            None,
            Some(attempt(1, AttemptStatus::Rejected, None)),
        );
        v.may_initiate = false;
        assert_eq!(next_step(&v), Step::Stop);
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
    fn a_cancelled_payment_is_never_a_decline() {
        // Whatever reason the provider gives: the card did not answer.
        for reason in [
            None,
            Some("ORDER_CANCELLED"),
            Some("DENIED_DO_NOT_TRY_AGAIN"),
        ] {
            let s = order_status(&[("p1", "PAYMENT_CANCELLED", reason)]);
            assert_eq!(
                judge(&attempt(1, AttemptStatus::Fenced, Some("p1")), &[], &s),
                Verdict::Cancelled {
                    payment_id: "p1".into()
                }
            );
        }
    }

    #[test]
    fn a_cancelled_or_fenced_order_is_never_reused() {
        let open = order_status(&[("p1", "PAYMENT_FAILED", Some("DENIED"))]);
        assert!(order_reusable(
            &attempt(1, AttemptStatus::Initiated, Some("p1")),
            &open
        ));
        assert!(!order_reusable(
            &attempt(1, AttemptStatus::Fenced, Some("p1")),
            &open
        ));
        let mut cancelled = open.clone();
        cancelled.order_status = "PAYMENT_CANCELLED".into();
        assert!(!order_reusable(
            &attempt(1, AttemptStatus::Initiated, Some("p1")),
            &cancelled
        ));
    }

    #[test]
    fn a_missing_payment_waits_out_its_settle_window_before_anything_moves_on() {
        let at = |status, age: i64| Attempt {
            created_at: NOW - age,
            ..attempt(1, status, None)
        };
        let inside = WINDOW - 1;
        assert_eq!(
            on_missing(&at(AttemptStatus::Claimed, inside), NOW, WINDOW),
            MissingAction::Fence
        );
        assert_eq!(
            on_missing(&at(AttemptStatus::Fenced, inside), NOW, WINDOW),
            MissingAction::Wait,
            "a fence is no proof: wait for the status"
        );
        assert_eq!(
            on_missing(&at(AttemptStatus::Initiated, inside), NOW, WINDOW),
            MissingAction::Wait
        );
        assert_eq!(
            on_missing(&at(AttemptStatus::Claimed, WINDOW), NOW, WINDOW),
            MissingAction::Abandon
        );
        assert_eq!(
            on_missing(&at(AttemptStatus::Fenced, WINDOW), NOW, WINDOW),
            MissingAction::Abandon
        );
        assert_eq!(
            on_missing(&at(AttemptStatus::Initiated, WINDOW), NOW, WINDOW),
            MissingAction::Lost,
            "a payment id the provider never shows is an operator's question"
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
            AttemptStatus::Fenced,
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::Rejected,
            AttemptStatus::Cancelled,
            AttemptStatus::Abandoned,
        ] {
            assert_eq!(AttemptStatus::parse(s.as_str()), Some(s));
        }
    }
}
