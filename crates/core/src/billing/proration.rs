//! Proration: what a plan or quantity change in the middle of a period costs or gives back.
//!
//! The rule, in integers:
//!
//! - the period `[start, end)` and the change at `at` are counted in **whole seconds**: the
//!   period has `total = (end − start) / 1000` seconds (whole: its bounds share their
//!   milliseconds) and `remaining = ⌊(end − at) / 1000⌋` of them are left when the change is
//!   made;
//! - the **credit** for the old price is `old × remaining / total`, and the **charge** for the
//!   new price is `new × remaining / total`, each rounded to the minor unit, halves up;
//! - the change costs `charge − credit`: a positive amount is charged now, a negative one is
//!   owed to the customer (kept as a balance the next charges use).
//!
//! Each rounding splits one price in two parts that add up to it exactly (the part used or not
//! billed is the price less the rounded part), so no money is created or lost: what the
//! customer pays over the period is the used part of the old price plus the rest of the new.

/// A mid-period change, as its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proration {
    /// Seconds of the period.
    pub total_seconds: i64,
    /// Seconds left of it at the change.
    pub remaining_seconds: i64,
    /// Given back for the unused part of the old price.
    pub credit: i64,
    /// Due for the rest of the period at the new price.
    pub charge: i64,
}

impl Proration {
    /// What the change costs now: positive, charged; negative, owed to the customer.
    pub fn net(&self) -> i64 {
        self.charge - self.credit
    }
}

/// What a change made now costs, once the customer's balance is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCost {
    /// Paid from the customer's balance.
    pub balance_applied: i64,
    /// Charged to the card now (0: nothing to charge).
    pub due_now: i64,
    /// Added to the customer's balance (a downgrade's unused part).
    pub credited: i64,
}

/// Splits a change's net between the balance, the card and the balance again: a positive net is
/// paid from the balance first, then by the card; a negative one is credited.
pub fn cost(p: &Proration, balance: i64) -> ChangeCost {
    let net = p.net();
    if net <= 0 {
        return ChangeCost {
            balance_applied: 0,
            due_now: 0,
            credited: -net,
        };
    }
    let applied = balance.clamp(0, net);
    ChangeCost {
        balance_applied: applied,
        due_now: net - applied,
        credited: 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationError {
    /// The change is not inside the period, or the period is empty.
    OutsidePeriod,
    /// A price below zero.
    Negative,
}

/// `amount × part / whole`, rounded half up (non-negative operands).
fn share(amount: i64, part: i64, whole: i64) -> i64 {
    let scaled = i128::from(amount) * i128::from(part);
    let whole = i128::from(whole);
    ((scaled * 2 + whole) / (2 * whole)) as i64
}

/// Prorates a change from `old` to `new` (prices per period, minor units) made at `at` in the
/// period `[start, end)` (milliseconds).
pub fn prorate(
    start: i64,
    end: i64,
    at: i64,
    old: i64,
    new: i64,
) -> Result<Proration, ProrationError> {
    if old < 0 || new < 0 {
        return Err(ProrationError::Negative);
    }
    if !(start <= at && at < end) {
        return Err(ProrationError::OutsidePeriod);
    }
    let total_seconds = (end - start) / 1000;
    if total_seconds <= 0 {
        return Err(ProrationError::OutsidePeriod);
    }
    let remaining_seconds = ((end - at) / 1000).min(total_seconds);
    Ok(Proration {
        total_seconds,
        remaining_seconds,
        credit: share(old, remaining_seconds, total_seconds),
        charge: share(new, remaining_seconds, total_seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::interval::{Interval, IntervalUnit};
    use crate::billing::period;
    use crate::billing::time::parse_rfc3339;
    use proptest::prelude::*;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn an_upgrade_halfway_charges_half_the_difference() {
        let p = prorate(
            at("2027-02-01T00:00:00Z"),
            at("2027-03-01T00:00:00Z"),
            at("2027-02-15T00:00:00Z"),
            9_900,
            29_900,
        )
        .unwrap();
        // 14 of 28 days left.
        assert_eq!(
            (p.total_seconds, p.remaining_seconds),
            (28 * 86_400, 14 * 86_400)
        );
        assert_eq!((p.credit, p.charge, p.net()), (4_950, 14_950, 10_000));
    }

    #[test]
    fn a_downgrade_owes_the_customer_and_halves_round_up() {
        // 1 of 3 seconds left: 100/3 = 33.33 → 33; 200/3 = 66.67 → 67.
        let p = prorate(0, 3_000, 2_000, 200, 100).unwrap();
        assert_eq!((p.credit, p.charge, p.net()), (67, 33, -34));
        // 1 of 2 seconds: 5/2 = 2.5 rounds up to 3.
        assert_eq!(prorate(0, 2_000, 1_000, 5, 5).unwrap().credit, 3);
        // Milliseconds into a second count as that second gone.
        assert_eq!(
            prorate(0, 10_000, 1_999, 10, 10).unwrap().remaining_seconds,
            8
        );
    }

    #[test]
    fn the_balance_pays_first_and_a_downgrade_is_credited() {
        let up = prorate(0, 10_000, 5_000, 1_000, 3_000).unwrap();
        assert_eq!(up.net(), 1_000);
        assert_eq!(
            cost(&up, 0),
            ChangeCost {
                balance_applied: 0,
                due_now: 1_000,
                credited: 0
            }
        );
        assert_eq!(
            cost(&up, 300),
            ChangeCost {
                balance_applied: 300,
                due_now: 700,
                credited: 0
            }
        );
        assert_eq!(
            cost(&up, 5_000),
            ChangeCost {
                balance_applied: 1_000,
                due_now: 0,
                credited: 0
            }
        );
        let down = prorate(0, 10_000, 5_000, 3_000, 1_000).unwrap();
        assert_eq!(
            cost(&down, 5_000),
            ChangeCost {
                balance_applied: 0,
                due_now: 0,
                credited: 1_000
            }
        );
    }

    #[test]
    fn changes_outside_the_period_are_refused() {
        assert_eq!(
            prorate(0, 1_000, 1_000, 1, 1),
            Err(ProrationError::OutsidePeriod)
        );
        assert_eq!(
            prorate(0, 1_000, -1, 1, 1),
            Err(ProrationError::OutsidePeriod)
        );
        assert_eq!(prorate(0, 1_000, 0, -1, 1), Err(ProrationError::Negative));
        assert_eq!(prorate(0, 0, 0, 1, 1), Err(ProrationError::OutsidePeriod));
    }

    /// A real period: anchored at `anchor`, the `k`-th of `interval`.
    fn real_period(anchor: i64, unit: usize, count: u32, k: u32) -> (i64, i64) {
        let unit = [
            IntervalUnit::Day,
            IntervalUnit::Week,
            IntervalUnit::Month,
            IntervalUnit::Year,
        ][unit];
        let p = period::period(anchor, Interval { unit, count }, k).unwrap();
        (p.start_ms, p.end_ms)
    }

    proptest! {
        /// Against an exact rational computation, over real calendars (month ends, leap days:
        /// anchors from 2024 to 2031, on any day, any time of day).
        #[test]
        fn prorations_are_the_exact_shares_rounded_half_up_and_lose_nothing(
            anchor_s in 1_704_067_200i64..1_956_528_000, // 2024-01-01 .. 2032-01-01
            anchor_ms in 0i64..1000,
            unit in 0usize..4,
            count in 1u32..=3,
            k in 0u32..30,
            at_fraction in 0.0f64..1.0,
            old in 0i64..10_000_000,
            new in 0i64..10_000_000,
        ) {
            let (start, end) = real_period(anchor_s * 1000 + anchor_ms, unit, count, k);
            prop_assume!(end > start);
            let at = start + ((end - start) as f64 * at_fraction) as i64;
            prop_assume!(at < end);
            let p = prorate(start, end, at, old, new).unwrap();
            // The independent reading: seconds as exact rationals of the period.
            let total = i128::from((end - start) / 1000);
            prop_assert_eq!(i128::from(end - start) % 1000, 0, "periods are whole seconds");
            let remaining = i128::from((end - at) / 1000);
            let exact = |price: i64| -> (i128, i128) { (i128::from(price) * remaining, total) };
            for (got, price) in [(p.credit, old), (p.charge, new)] {
                let (num, den) = exact(price);
                // got is the nearest integer to num/den, halves up: |2·got·den − 2·num| ≤ den,
                // and exactly den only when rounding up.
                let diff = 2 * i128::from(got) * den - 2 * num;
                prop_assert!(diff.abs() <= den && diff > -den, "{} for {}/{}", got, num, den);
                // No money created or lost: the two parts of the price add up to it.
                let rest = price - got;
                prop_assert!(rest >= 0 && rest + got == price);
            }
            prop_assert!(p.credit <= old && p.charge <= new);
        }
    }
}
