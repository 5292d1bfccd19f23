//! How a refund is made with a provider that refuses a return order until the purchase has
//! settled: a full refund on the day of the purchase is a void (no fee, nothing to settle);
//! anything else waits for the purchase to settle and is then a return order.
//!
//! The decisions are pure; the worker's `refunding` flow carries them out. Every step that
//! can move money is claimed in the ledger before the call, and a return order is only ever
//! created after the provider's own status showed the purchase settled and not voided, so a
//! void whose answer was lost can never be followed by a return of the same money: a voided
//! purchase never settles.

use super::settlement::{self, REFUND_WINDOW_MS, Stage as Settlement};

/// Where a refund stands (the ledger's `refunds.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Claimed; nothing sent.
    New,
    /// A void is sent (or about to be); its outcome is read from the purchase's status.
    Voiding,
    /// Nothing sent: the purchase must settle before the provider takes a return order.
    AwaitingSettlement,
    /// The return order is claimed: created at most once, its outcome read from its status.
    Returning,
    Done,
}

impl Stage {
    pub fn parse(text: Option<&str>) -> Stage {
        match text {
            Some("voiding") => Stage::Voiding,
            Some("awaiting_settlement") => Stage::AwaitingSettlement,
            Some("returning") => Stage::Returning,
            Some("done") => Stage::Done,
            _ => Stage::New,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Voiding => "voiding",
            Stage::AwaitingSettlement => "awaiting_settlement",
            Stage::Returning => "returning",
            Stage::Done => "done",
        }
    }
}

/// How the money went back (the refund's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Void,
    Return,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Void => "void",
            Method::Return => "return",
        }
    }
}

/// What the refund is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    /// What the payment took.
    pub amount: i64,
    /// When it completed.
    pub completed_at: i64,
}

/// Whether the provider still takes a refund of `purchase` at `now`.
pub fn within_window(purchase: Purchase, now: i64) -> bool {
    now <= purchase.completed_at.saturating_add(REFUND_WINDOW_MS)
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send (or send again: voiding twice moves no money twice) a void of the payment.
    Void,
    /// Claim the return order and create it.
    Return,
    /// Read the purchase's status again at this instant.
    WaitUntil(i64),
    /// The money is back.
    Succeeded(Method),
    /// The refund cannot be made; the reason is the refund's `failureReason`.
    Failed(&'static str),
}

/// The first step of a refund just claimed: a void when it returns the whole payment and the
/// ledger has not seen the payment batched, otherwise a read of the purchase's settlement.
///
/// The void is asked for even when this worker's clock says the cutoff has passed: where the
/// cutoff falls is the provider's to say (its clock, its batch), and a void it can no longer make
/// is answered `CANNOT_VOID`, which moves no money and leaves the refund waiting for
/// settlement. One call is the price of never waiting a day for a refund the provider would
/// still have voided.
pub fn first_step(refund_amount: i64, purchase: Purchase, batched: bool, now: i64) -> Step {
    if refund_amount == purchase.amount && !batched {
        Step::Void
    } else {
        Step::WaitUntil(now)
    }
}

/// The step after reading the purchase's transaction at `now` (the `checks`-th read).
pub fn after_reading(
    stage: Stage,
    refund_amount: i64,
    purchase: Purchase,
    seen: &Settlement,
    now: i64,
    checks: u32,
) -> Step {
    match seen {
        // A voided purchase returned all of its money, whoever voided it.
        Settlement::Voided if refund_amount == purchase.amount => Step::Succeeded(Method::Void),
        Settlement::Voided => Step::Failed("purchase_voided"),
        Settlement::Settled(_) => Step::Return,
        // A void that is not shown yet is sent again while it can still work; after the
        // cutoff the purchase goes to the batch and the refund waits for its settlement.
        Settlement::NotSettled | Settlement::Unknown
            if stage == Stage::Voiding && settlement::voidable(purchase.completed_at, now) =>
        {
            Step::Void
        }
        _ => Step::WaitUntil(settlement::next_check(now, seen, checks)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::settlement::Settled;
    use crate::billing::time::{days, parse_rfc3339};

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    fn purchase() -> Purchase {
        Purchase {
            amount: 29900,
            completed_at: at("2026-12-07T10:00:00Z"),
        }
    }

    fn settled() -> Settlement {
        Settlement::Settled(Settled {
            fee: 718,
            payout: 29182,
            reference: "r".into(),
            date: "2026-12-08".into(),
        })
    }

    #[test]
    fn a_full_refund_is_a_void_until_the_payment_is_seen_batched() {
        let p = purchase();
        assert_eq!(
            first_step(29900, p, false, at("2026-12-07T22:59:00Z")),
            Step::Void
        );
        // Past the cutoff by this clock: the provider still decides (CANNOT_VOID waits).
        assert_eq!(
            first_step(29900, p, false, at("2026-12-07T23:00:00Z")),
            Step::Void
        );
        let late = at("2026-12-08T10:00:00Z");
        assert_eq!(first_step(29900, p, true, late), Step::WaitUntil(late));
        let now = at("2026-12-07T12:00:00Z");
        assert_eq!(first_step(10000, p, false, now), Step::WaitUntil(now));
    }

    #[test]
    fn a_return_only_follows_a_settled_purchase() {
        let p = purchase();
        let now = at("2026-12-07T12:00:00Z");
        for stage in [Stage::New, Stage::Voiding, Stage::AwaitingSettlement] {
            assert_eq!(
                after_reading(stage, 10000, p, &settled(), now, 1),
                Step::Return
            );
            for seen in [
                Settlement::NotSettled,
                Settlement::Processed,
                Settlement::Error,
                Settlement::Unknown,
            ] {
                assert_ne!(
                    after_reading(stage, 10000, p, &seen, now, 1),
                    Step::Return,
                    "{stage:?} {seen:?}"
                );
            }
        }
    }

    #[test]
    fn an_unseen_void_is_sent_again_until_the_cutoff_then_waits() {
        let p = purchase();
        let before = at("2026-12-07T20:00:00Z");
        let after = at("2026-12-07T23:30:00Z");
        assert_eq!(
            after_reading(Stage::Voiding, 29900, p, &Settlement::NotSettled, before, 1),
            Step::Void
        );
        assert_eq!(
            after_reading(Stage::Voiding, 29900, p, &Settlement::Processed, after, 1),
            Step::WaitUntil(at("2026-12-08T00:30:00Z"))
        );
        assert_eq!(
            after_reading(Stage::Voiding, 29900, p, &Settlement::Voided, after, 1),
            Step::Succeeded(Method::Void)
        );
        // A partial refund never voids; a purchase voided elsewhere leaves it nothing to do.
        assert_eq!(
            after_reading(
                Stage::AwaitingSettlement,
                100,
                p,
                &Settlement::Voided,
                after,
                1
            ),
            Step::Failed("purchase_voided")
        );
    }

    #[test]
    fn the_window_is_ninety_days_from_the_purchase() {
        let p = purchase();
        assert!(within_window(p, p.completed_at + days(90)));
        assert!(!within_window(p, p.completed_at + days(90) + 1));
    }
}
