//! What happens when a subscription's current period ends: the next period's charge (base fee
//! in advance, plus the closing period's metered usage in arrears, or the next installment),
//! a plan change taking effect, or the end of the subscription.

use super::installments;
use super::interval::Interval;
use super::metered;
use super::period;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Recurring,
    Installments { total_count: u32 },
}

/// The prices and calendar a subscription bills by (a snapshot of its plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub plan_id: String,
    /// Recurring: the fee per period. Installments: the total price.
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
    pub unit_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub kind: Kind,
    pub terms: Terms,
    pub anchor_at: i64,
    pub anchor_period: u32,
    /// The period in service (already billed); the next one is `current_period + 1`.
    pub current_period: u32,
    pub cancel_at_period_end: bool,
    /// A plan change waiting for the next period.
    pub pending: Option<Terms>,
    /// Units (seats) the fee is charged for.
    pub quantity: u32,
    /// A quantity change waiting for the next period.
    pub pending_quantity: Option<u32>,
    /// The period in service is a free trial: what is used in it is not billed.
    pub trial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// Move to `period` and charge `amount` for it.
    Renew {
        period: u32,
        start_ms: i64,
        end_ms: i64,
        amount: i64,
        /// Charge key and kind: `sub:<id>:p<k>` renewals, `sub:<id>:i<n>` installments.
        installment_number: Option<u32>,
        /// Set when a plan change takes effect with this period.
        new_terms: Option<Terms>,
        /// The calendar is re-anchored here when the interval changes.
        new_anchor: Option<(i64, u32)>,
        /// Set when a quantity change takes effect with this period.
        new_quantity: Option<u32>,
    },
    /// The subscription ends with its current period; `final_amount` bills the usage of that
    /// last period, if any.
    Cancel {
        period: u32,
        final_amount: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalError {
    /// Every installment has been scheduled already.
    NothingLeft,
    Calendar,
    Money(String),
}

impl std::fmt::Display for RenewalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenewalError::NothingLeft => f.write_str("every installment is already scheduled"),
            RenewalError::Calendar => f.write_str("the billing period cannot be computed"),
            RenewalError::Money(e) => write!(f, "the amount cannot be computed: {e}"),
        }
    }
}

impl std::error::Error for RenewalError {}

/// Start and end of `period` on the subscription's calendar.
pub fn bounds(
    anchor_at: i64,
    anchor_period: u32,
    interval: Interval,
    period: u32,
) -> Option<(i64, i64)> {
    let k = period.checked_sub(anchor_period)?;
    let p = period::period(anchor_at, interval, k).ok()?;
    Some((p.start_ms, p.end_ms))
}

/// Decides the close of the current period, given the usage quantity recorded in it.
pub fn close(sub: &Subscription, usage: i64, max_charge: i64) -> Result<Close, RenewalError> {
    let next = sub.current_period + 1;
    let usage_fee = |terms: &Terms| -> Result<i64, RenewalError> {
        match terms.unit_amount {
            _ if sub.trial => Ok(0),
            None => Ok(0),
            Some(unit) => metered::metered_total(0, unit, usage, Some(max_charge))
                .map_err(|e| RenewalError::Money(e.to_string())),
        }
    };

    if sub.cancel_at_period_end {
        let fee = usage_fee(&sub.terms)?;
        return Ok(Close::Cancel {
            period: next,
            final_amount: (fee > 0).then_some(fee),
        });
    }

    match sub.kind {
        Kind::Installments { total_count } => {
            if next >= total_count {
                return Err(RenewalError::NothingLeft);
            }
            let parts = installments::split(sub.terms.amount, total_count)
                .map_err(|e| RenewalError::Money(e.to_string()))?;
            let (start_ms, end_ms) =
                bounds(sub.anchor_at, sub.anchor_period, sub.terms.interval, next)
                    .ok_or(RenewalError::Calendar)?;
            Ok(Close::Renew {
                period: next,
                start_ms,
                end_ms,
                amount: parts[next as usize],
                installment_number: Some(next + 1),
                new_terms: None,
                new_anchor: None,
                new_quantity: None,
            })
        }
        Kind::Recurring => {
            // Usage of the closing period is billed at the old price; the new plan's fee
            // applies from the new period.
            let usage_fee = usage_fee(&sub.terms)?;
            let terms = sub.pending.as_ref().unwrap_or(&sub.terms);
            let (start_ms, _) = bounds(sub.anchor_at, sub.anchor_period, sub.terms.interval, next)
                .ok_or(RenewalError::Calendar)?;
            let new_anchor = (terms.interval != sub.terms.interval).then_some((start_ms, next));
            let (anchor_at, anchor_period) =
                new_anchor.unwrap_or((sub.anchor_at, sub.anchor_period));
            let (start_ms, end_ms) = bounds(anchor_at, anchor_period, terms.interval, next)
                .ok_or(RenewalError::Calendar)?;
            // The fee is per unit: the quantity of the new period (a pending change applies).
            let quantity = sub.pending_quantity.unwrap_or(sub.quantity);
            let amount = terms
                .amount
                .checked_mul(i64::from(quantity))
                .and_then(|fee| fee.checked_add(usage_fee))
                .filter(|a| *a <= max_charge)
                .ok_or_else(|| RenewalError::Money("above the maximum charge".into()))?;
            Ok(Close::Renew {
                period: next,
                start_ms,
                end_ms,
                amount,
                installment_number: None,
                new_terms: sub.pending.clone(),
                new_anchor,
                new_quantity: sub.pending_quantity,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::interval::IntervalUnit;
    use crate::billing::time::parse_rfc3339;

    fn month() -> Interval {
        Interval {
            unit: IntervalUnit::Month,
            count: 1,
        }
    }

    fn terms(amount: i64, unit: Option<i64>) -> Terms {
        Terms {
            plan_id: "p".into(),
            amount,
            currency: "752".into(),
            interval: month(),
            unit_amount: unit,
        }
    }

    fn sub(kind: Kind, terms: Terms, current: u32) -> Subscription {
        Subscription {
            kind,
            terms,
            anchor_at: parse_rfc3339("2027-01-31T10:00:00Z").unwrap(),
            anchor_period: 0,
            current_period: current,
            cancel_at_period_end: false,
            pending: None,
            quantity: 1,
            pending_quantity: None,
            trial: false,
        }
    }

    #[test]
    fn a_trial_closes_into_the_first_paid_period_at_its_end_without_its_usage() {
        let trial_end = parse_rfc3339("2027-02-14T10:00:00Z").unwrap();
        let mut s = sub(Kind::Recurring, terms(1_000, Some(7)), 0);
        s.anchor_at = trial_end;
        s.anchor_period = 1;
        s.trial = true;
        match close(&s, 40, 1_000_000).unwrap() {
            Close::Renew {
                period,
                start_ms,
                end_ms,
                amount,
                ..
            } => {
                assert_eq!((period, start_ms, amount), (1, trial_end, 1_000));
                assert_eq!(end_ms, parse_rfc3339("2027-03-14T10:00:00Z").unwrap());
            }
            other => panic!("{other:?}"),
        }
        s.cancel_at_period_end = true;
        assert_eq!(
            close(&s, 40, 1_000_000).unwrap(),
            Close::Cancel {
                period: 1,
                final_amount: None
            }
        );
    }

    #[test]
    fn the_fee_is_per_seat_and_a_pending_quantity_applies_from_the_next_period() {
        let mut s = sub(Kind::Recurring, terms(1_000, None), 0);
        s.quantity = 3;
        match close(&s, 0, 1_000_000).unwrap() {
            Close::Renew {
                amount,
                new_quantity,
                ..
            } => assert_eq!((amount, new_quantity), (3_000, None)),
            other => panic!("{other:?}"),
        }
        s.pending_quantity = Some(5);
        match close(&s, 0, 1_000_000).unwrap() {
            Close::Renew {
                amount,
                new_quantity,
                ..
            } => assert_eq!((amount, new_quantity), (5_000, Some(5))),
            other => panic!("{other:?}"),
        }
        // Usage is billed in arrears, once, whatever the seats.
        s.terms.unit_amount = Some(10);
        match close(&s, 7, 1_000_000).unwrap() {
            Close::Renew { amount, .. } => assert_eq!(amount, 5_070),
            other => panic!("{other:?}"),
        }
        assert!(close(&s, 0, 4_999).is_err(), "above the maximum charge");
    }

    #[test]
    fn a_monthly_renewal_charges_the_fee_for_the_next_clamped_period() {
        let s = sub(Kind::Recurring, terms(9900, None), 0);
        let Close::Renew {
            period,
            start_ms,
            end_ms,
            amount,
            ..
        } = close(&s, 0, i64::MAX).unwrap()
        else {
            panic!()
        };
        assert_eq!((period, amount), (1, 9900));
        assert_eq!(start_ms, parse_rfc3339("2027-02-28T10:00:00Z").unwrap());
        assert_eq!(end_ms, parse_rfc3339("2027-03-31T10:00:00Z").unwrap());
    }

    #[test]
    fn metered_usage_of_the_closing_period_is_added_to_the_next_fee() {
        let s = sub(Kind::Recurring, terms(4900, Some(25)), 3);
        let Close::Renew { amount, .. } = close(&s, 40, i64::MAX).unwrap() else {
            panic!()
        };
        assert_eq!(amount, 4900 + 25 * 40);
    }

    #[test]
    fn installments_charge_their_share_with_the_remainder_last() {
        let mut s = sub(
            Kind::Installments { total_count: 4 },
            terms(10_001, None),
            0,
        );
        let mut total = 2500; // installment 1, paid at checkout
        for expected_number in 2..=4 {
            let Close::Renew {
                amount,
                installment_number,
                period,
                ..
            } = close(&s, 0, i64::MAX).unwrap()
            else {
                panic!()
            };
            assert_eq!(installment_number, Some(expected_number));
            total += amount;
            s.current_period = period;
        }
        assert_eq!(total, 10_001);
        assert_eq!(close(&s, 0, i64::MAX), Err(RenewalError::NothingLeft));
    }

    #[test]
    fn cancel_at_period_end_bills_only_the_last_usage() {
        let mut s = sub(Kind::Recurring, terms(4900, Some(10)), 2);
        s.cancel_at_period_end = true;
        assert_eq!(
            close(&s, 7, i64::MAX),
            Ok(Close::Cancel {
                period: 3,
                final_amount: Some(70)
            })
        );
        assert_eq!(
            close(&s, 0, i64::MAX),
            Ok(Close::Cancel {
                period: 3,
                final_amount: None
            })
        );
    }

    #[test]
    fn a_plan_change_takes_effect_with_the_next_period_and_reanchors_on_a_new_interval() {
        let mut s = sub(Kind::Recurring, terms(9900, None), 1);
        let mut yearly = terms(99_000, None);
        yearly.interval = Interval {
            unit: IntervalUnit::Year,
            count: 1,
        };
        s.pending = Some(yearly.clone());
        let Close::Renew {
            amount,
            start_ms,
            end_ms,
            new_terms,
            new_anchor,
            ..
        } = close(&s, 0, i64::MAX).unwrap()
        else {
            panic!()
        };
        assert_eq!(amount, 99_000);
        assert_eq!(new_terms, Some(yearly));
        assert_eq!(start_ms, parse_rfc3339("2027-03-31T10:00:00Z").unwrap());
        assert_eq!(end_ms, parse_rfc3339("2028-03-31T10:00:00Z").unwrap());
        assert_eq!(new_anchor, Some((start_ms, 2)));
    }

    #[test]
    fn charges_above_the_maximum_are_refused() {
        let s = sub(Kind::Recurring, terms(4900, Some(1_000)), 0);
        assert!(matches!(
            close(&s, 1_000_000, 10_000_000),
            Err(RenewalError::Money(_))
        ));
    }
}
