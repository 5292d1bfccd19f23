//! The provider's settlement calendar, as its documents describe it, and what a settled
//! transaction must add up to.
//!
//! Completed payments are captured in a daily batch at 23:00 UTC (the same instant is the last
//! moment a payment can be voided). A batched transaction is `PROCESSED`, then `SETTLED` on a
//! business day after, with its fee, its payout and the reference of the payout it is part of.
//! The worker never assumes the calendar is right: it only decides *when to read again*, and
//! what it records comes from the provider's status. A wrong guess costs a read, never money.

use super::time::{DAY_MS, HOUR_MS, MINUTE_MS, days, hours};
use crate::psp::types::Transaction;

/// Milliseconds after midnight UTC of the daily batch, and of the last moment to void.
pub const CUTOFF_MS_OF_DAY: i64 = 23 * HOUR_MS;

/// How long after a purchase the provider still accepts a return order.
pub const REFUND_WINDOW_MS: i64 = days(90);

/// The first daily cutoff strictly after `t`: the batch a payment completed at `t` goes into,
/// and the end of the time it can be voided in.
pub fn first_cutoff_after(t: i64) -> i64 {
    let day_start = t.div_euclid(DAY_MS) * DAY_MS;
    let cutoff = day_start + CUTOFF_MS_OF_DAY;
    if t < cutoff { cutoff } else { cutoff + DAY_MS }
}

/// Whether a payment completed at `completed_at` can still be voided at `now`.
pub fn voidable(completed_at: i64, now: i64) -> bool {
    now < first_cutoff_after(completed_at)
}

/// Monday = 0 … Sunday = 6 of the UTC day holding `t` (1970-01-01 was a Thursday).
fn weekday(t: i64) -> i64 {
    (t.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

/// Midnight UTC of the first business day (Monday to Friday) after the day holding `t`.
fn next_business_day(t: i64) -> i64 {
    let mut day = t.div_euclid(DAY_MS) * DAY_MS + DAY_MS;
    while weekday(day) >= 5 {
        day += DAY_MS;
    }
    day
}

/// Settled transactions are read this long after the day starts, so that a provider that
/// settles at midnight has done so.
const AFTER_SETTLEMENT_MS: i64 = 30 * MINUTE_MS;

/// When a transaction completed at `completed_at` is first expected to be settled: the business
/// day after its batch, shortly after midnight. The first read of its status waits until then.
pub fn expected_settlement(completed_at: i64) -> i64 {
    next_business_day(first_cutoff_after(completed_at)) + AFTER_SETTLEMENT_MS
}

/// Where the provider says a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Completed, not yet in a batch.
    NotSettled,
    /// In a batch; settles on a coming business day.
    Processed,
    /// Settled, with what was paid out.
    Settled(Settled),
    /// The provider's settlement of it failed; it retries at a later batch.
    Error,
    /// Voided: it never settles.
    Voided,
    /// The status shows no such transaction yet (status lag), or a stage we do not know.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub fee: i64,
    pub payout: i64,
    pub reference: String,
    pub date: String,
}

/// Reads a transaction's stage. A `SETTLED` transaction without its fee, payout, reference or
/// date is not taken as settled: the record would be incomplete, so it is read again later.
pub fn stage_of(t: &Transaction) -> Stage {
    if t.voided == Some(true) {
        return Stage::Voided;
    }
    match t.settlement_status.as_deref() {
        Some("NOT_SETTLED") => Stage::NotSettled,
        Some("PROCESSED") => Stage::Processed,
        Some("ERROR") => Stage::Error,
        Some("SETTLED") => match (&t.fee, &t.payout, &t.settlement_ref, &t.settlement_date) {
            (Some(fee), Some(payout), Some(reference), Some(date)) if is_date(date) => {
                Stage::Settled(Settled {
                    fee: *fee,
                    payout: *payout,
                    reference: reference.clone(),
                    date: date.clone(),
                })
            }
            _ => Stage::Unknown,
        },
        _ => Stage::Unknown,
    }
}

/// `YYYY-MM-DD`, the only form a settlement date is stored and grouped in.
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// When to read a transaction's status again, after reading it at `now` (the `checks`-th read).
/// Not yet batched or failed: after the next batch's settlement is due; batched: shortly after
/// the next business day starts; not shown at all: back off from an hour to a day.
pub fn next_check(now: i64, stage: &Stage, checks: u32) -> i64 {
    match stage {
        Stage::NotSettled | Stage::Error => expected_settlement(now),
        Stage::Processed => next_business_day(now) + AFTER_SETTLEMENT_MS,
        Stage::Unknown => now + hours(1 << checks.min(5)).min(DAY_MS),
        Stage::Settled(_) | Stage::Voided => now,
    }
}

/// What a purchase or a return is, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    Purchase,
    Return,
}

/// A settled transaction checked against the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// What the merchant keeps of it: amount − fee for a purchase, −amount for a return.
    pub net: i64,
    /// Why the provider's figures do not add up; empty when they do.
    pub discrepancies: Vec<String>,
}

/// Checks a settled transaction against the amount the ledger holds for it. A purchase pays
/// out its amount less its fee; a return takes its amount back, with no fee. Any other figure
/// is a discrepancy, recorded for an operator: the ledger keeps its own amount and the
/// provider's figures side by side, and never adjusts either.
pub fn reconcile(
    movement: Movement,
    amount: i64,
    transaction: &Transaction,
    s: &Settled,
) -> Reconciled {
    let mut discrepancies = Vec::new();
    if let Some(reported) = transaction.amount
        && reported.abs() != amount
    {
        discrepancies.push(format!(
            "the provider settled {reported} where the ledger holds {amount}"
        ));
    }
    let net = match movement {
        Movement::Purchase => {
            if s.fee < 0 || s.fee > amount {
                discrepancies.push(format!("a fee of {} on {amount}", s.fee));
            }
            amount - s.fee
        }
        Movement::Return => {
            if s.fee != 0 {
                discrepancies.push(format!("a fee of {} on a refund", s.fee));
            }
            -amount
        }
    };
    if s.payout != net {
        discrepancies.push(format!(
            "a payout of {} where amount and fee give {net}",
            s.payout
        ));
    }
    Reconciled { net, discrepancies }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::time::parse_rfc3339;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn the_batch_is_the_first_cutoff_after_completion() {
        assert_eq!(
            first_cutoff_after(at("2026-12-07T10:00:00Z")),
            at("2026-12-07T23:00:00Z")
        );
        assert_eq!(
            first_cutoff_after(at("2026-12-07T22:59:59.999Z")),
            at("2026-12-07T23:00:00Z")
        );
        // At the cutoff itself it is too late for that day's batch.
        assert_eq!(
            first_cutoff_after(at("2026-12-07T23:00:00Z")),
            at("2026-12-08T23:00:00Z")
        );
        assert!(voidable(
            at("2026-12-07T10:00:00Z"),
            at("2026-12-07T22:59:59Z")
        ));
        assert!(!voidable(
            at("2026-12-07T10:00:00Z"),
            at("2026-12-07T23:00:00Z")
        ));
        assert!(voidable(
            at("2026-12-07T23:30:00Z"),
            at("2026-12-08T12:00:00Z")
        ));
    }

    #[test]
    fn settlement_is_expected_the_next_business_day() {
        // 2026-12-07 is a Monday.
        assert_eq!(weekday(at("2026-12-07T12:00:00Z")), 0);
        for (completed, expected) in [
            ("2026-12-07T10:00:00Z", "2026-12-08T00:30:00Z"), // Monday → Tuesday
            ("2026-12-07T23:10:00Z", "2026-12-09T00:30:00Z"), // Monday's late one: Tuesday's batch
            ("2026-12-11T10:00:00Z", "2026-12-14T00:30:00Z"), // Friday → Monday
            ("2026-12-12T10:00:00Z", "2026-12-14T00:30:00Z"), // Saturday → Monday
            ("2026-12-13T23:30:00Z", "2026-12-15T00:30:00Z"), // Sunday, after cutoff → Monday's batch
        ] {
            assert_eq!(
                expected_settlement(at(completed)),
                at(expected),
                "{completed}"
            );
        }
    }

    fn transaction(status: &str) -> Transaction {
        Transaction {
            transaction_id: "t1".into(),
            payment_id: Some("p1".into()),
            amount: Some(29900),
            currency: Some("752".into()),
            kind: Some("PURCHASE".into()),
            voided: Some(false),
            settlement_status: Some(status.into()),
            fee: None,
            payout: None,
            settlement_ref: None,
            settlement_date: None,
        }
    }

    #[test]
    fn a_settled_transaction_needs_all_of_its_figures() {
        let mut t = transaction("SETTLED");
        assert_eq!(stage_of(&t), Stage::Unknown);
        t.fee = Some(718);
        t.payout = Some(29182);
        t.settlement_ref = Some("a1b2c3".into());
        t.settlement_date = Some("2026-12-08".into());
        assert_eq!(
            stage_of(&t),
            Stage::Settled(Settled {
                fee: 718,
                payout: 29182,
                reference: "a1b2c3".into(),
                date: "2026-12-08".into()
            })
        );
        t.settlement_date = Some("08/12/2026".into());
        assert_eq!(stage_of(&t), Stage::Unknown);
        t.voided = Some(true);
        assert_eq!(stage_of(&t), Stage::Voided);
        assert_eq!(stage_of(&transaction("PROCESSED")), Stage::Processed);
        assert_eq!(stage_of(&transaction("ERROR")), Stage::Error);
        assert_eq!(stage_of(&transaction("SOMETHING_NEW")), Stage::Unknown);
    }

    #[test]
    fn reads_are_spaced_by_what_the_provider_said() {
        let monday = at("2026-12-07T10:00:00Z");
        assert_eq!(
            next_check(monday, &Stage::NotSettled, 1),
            at("2026-12-08T00:30:00Z")
        );
        let friday_night = at("2026-12-11T23:30:00Z");
        assert_eq!(
            next_check(friday_night, &Stage::Processed, 1),
            at("2026-12-14T00:30:00Z")
        );
        assert_eq!(next_check(monday, &Stage::Unknown, 0), monday + HOUR_MS);
        assert_eq!(next_check(monday, &Stage::Unknown, 3), monday + 8 * HOUR_MS);
        assert_eq!(next_check(monday, &Stage::Unknown, 30), monday + DAY_MS);
    }

    #[test]
    fn a_purchase_pays_out_its_amount_less_its_fee_and_a_return_takes_its_amount_back() {
        let t = transaction("SETTLED");
        let settled = |fee, payout| Settled {
            fee,
            payout,
            reference: "r".into(),
            date: "2026-12-08".into(),
        };
        let ok = reconcile(Movement::Purchase, 29900, &t, &settled(718, 29182));
        assert_eq!(ok.net, 29182);
        assert!(ok.discrepancies.is_empty());
        let short = reconcile(Movement::Purchase, 29900, &t, &settled(718, 29000));
        assert_eq!(short.net, 29182);
        assert_eq!(short.discrepancies.len(), 1, "{:?}", short.discrepancies);
        let wrong_amount = reconcile(Movement::Purchase, 19900, &t, &settled(718, 19182));
        assert_eq!(wrong_amount.discrepancies.len(), 1);
        let mut r = transaction("SETTLED");
        r.amount = Some(-5000);
        let ret = reconcile(Movement::Return, 5000, &r, &settled(0, -5000));
        assert_eq!(ret.net, -5000);
        assert!(ret.discrepancies.is_empty());
        let fee_on_return = reconcile(Movement::Return, 5000, &r, &settled(50, -5050));
        assert_eq!(fee_on_return.discrepancies.len(), 2);
    }
}
