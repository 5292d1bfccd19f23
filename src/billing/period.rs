//! Billing periods on a calendar anchored at the subscription's start.
//!
//! Period k starts at `anchor + k × interval`, always computed from the anchor and never by
//! stepping from the previous period, so a day-31 anchor does not drift to the 28th after
//! February: Jan 31 → Feb 28 (29 in leap years) → Mar 31 → Apr 30 → May 31. A yearly Feb 29
//! anchor bills on Feb 28 in common years and Feb 29 in leap years. The anchor's time of day
//! (UTC) is kept.

use chrono::{DateTime, Months, NaiveDateTime};

use super::interval::{Interval, IntervalUnit};
use super::time::{DAY_MS, MAX_MS, MIN_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub index: u32,
    pub start_ms: i64,
    /// The start of the next period.
    pub end_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodError {
    /// A zero count, an anchor outside 1970..=9999, or a period beyond year 9999.
    OutOfRange,
}

impl std::fmt::Display for PeriodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the billing period is out of the supported range")
    }
}

impl std::error::Error for PeriodError {}

fn naive(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc())
}

/// Start of period `k`.
pub fn start_of(anchor_ms: i64, interval: Interval, k: u32) -> Result<i64, PeriodError> {
    if interval.count == 0 || !(MIN_MS..=MAX_MS).contains(&anchor_ms) {
        return Err(PeriodError::OutOfRange);
    }
    let steps = u64::from(k) * u64::from(interval.count);
    let start = match interval.unit {
        IntervalUnit::Day | IntervalUnit::Week => {
            let days = if interval.unit == IntervalUnit::Week {
                7
            } else {
                1
            };
            i64::try_from(steps)
                .ok()
                .and_then(|s| s.checked_mul(days * DAY_MS))
                .and_then(|d| anchor_ms.checked_add(d))
        }
        IntervalUnit::Month | IntervalUnit::Year => {
            let months = if interval.unit == IntervalUnit::Year {
                steps * 12
            } else {
                steps
            };
            u32::try_from(months)
                .ok()
                .and_then(|m| naive(anchor_ms)?.checked_add_months(Months::new(m)))
                .map(|t| t.and_utc().timestamp_millis())
        }
    };
    start
        .filter(|s| (MIN_MS..=MAX_MS).contains(s))
        .ok_or(PeriodError::OutOfRange)
}

pub fn period(anchor_ms: i64, interval: Interval, k: u32) -> Result<Period, PeriodError> {
    let next = k.checked_add(1).ok_or(PeriodError::OutOfRange)?;
    Ok(Period {
        index: k,
        start_ms: start_of(anchor_ms, interval, k)?,
        end_ms: start_of(anchor_ms, interval, next)?,
    })
}

/// The index of the period containing `t`; `None` before the anchor or out of range.
pub fn period_index_at(anchor_ms: i64, interval: Interval, t: i64) -> Option<u32> {
    if t < anchor_ms || interval.count == 0 {
        return None;
    }
    // An estimate from the average length, then corrected against the exact calendar.
    let approx_len = match interval.unit {
        IntervalUnit::Day => DAY_MS,
        IntervalUnit::Week => 7 * DAY_MS,
        IntervalUnit::Month => 2_629_746_000, // 365.2425 / 12 days
        IntervalUnit::Year => 31_556_952_000, // 365.2425 days
    } * i64::from(interval.count);
    let mut k = u32::try_from((t - anchor_ms) / approx_len).ok()?;
    while k > 0 && start_of(anchor_ms, interval, k).ok()? > t {
        k -= 1;
    }
    while start_of(anchor_ms, interval, k + 1).ok()? <= t {
        k += 1;
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::time::{format_rfc3339, parse_rfc3339};
    use chrono::Datelike;
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn every(unit: IntervalUnit, count: u32) -> Interval {
        Interval { unit, count }
    }

    #[test]
    fn month_ends_clamp_without_drifting() {
        let anchor = at("2027-01-31T10:00:00Z");
        let starts: Vec<String> = (0..13)
            .map(|k| format_rfc3339(start_of(anchor, every(IntervalUnit::Month, 1), k).unwrap()))
            .collect();
        assert_eq!(
            &starts[..6],
            [
                "2027-01-31T10:00:00.000Z",
                "2027-02-28T10:00:00.000Z",
                "2027-03-31T10:00:00.000Z",
                "2027-04-30T10:00:00.000Z",
                "2027-05-31T10:00:00.000Z",
                "2027-06-30T10:00:00.000Z",
            ]
        );
        assert_eq!(starts[12], "2028-01-31T10:00:00.000Z");
        // 2028 is a leap year.
        assert_eq!(
            format_rfc3339(start_of(anchor, every(IntervalUnit::Month, 1), 13).unwrap()),
            "2028-02-29T10:00:00.000Z"
        );
    }

    #[test]
    fn a_leap_day_yearly_anchor_bills_on_the_28th_in_common_years() {
        let anchor = at("2028-02-29T00:00:00Z");
        let year = every(IntervalUnit::Year, 1);
        assert_eq!(
            format_rfc3339(start_of(anchor, year, 1).unwrap()),
            "2029-02-28T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(start_of(anchor, year, 4).unwrap()),
            "2032-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn days_and_weeks_are_exact() {
        let anchor = at("2027-03-01T00:00:00Z");
        let p = period(anchor, every(IntervalUnit::Week, 2), 3).unwrap();
        assert_eq!(p.start_ms - anchor, 42 * DAY_MS);
        assert_eq!(p.end_ms - p.start_ms, 14 * DAY_MS);
        assert_eq!(
            period(anchor, every(IntervalUnit::Day, 1), 0)
                .unwrap()
                .end_ms,
            anchor + DAY_MS
        );
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let anchor = at("9999-06-01T00:00:00Z");
        assert_eq!(
            start_of(anchor, every(IntervalUnit::Year, 1), 1),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(
            start_of(0, every(IntervalUnit::Month, 0), 1),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(
            start_of(0, every(IntervalUnit::Day, u32::MAX), u32::MAX),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(
            period_index_at(anchor, every(IntervalUnit::Month, 1), anchor - 1),
            None
        );
    }

    fn unit() -> impl Strategy<Value = IntervalUnit> {
        prop_oneof![
            Just(IntervalUnit::Day),
            Just(IntervalUnit::Week),
            Just(IntervalUnit::Month),
            Just(IntervalUnit::Year)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn periods_are_contiguous_and_increasing(
            anchor in 0i64..4_102_444_800_000, unit in unit(), count in 1u32..13, k in 0u32..240,
        ) {
            let i = every(unit, count);
            let p = period(anchor, i, k).unwrap();
            let q = period(anchor, i, k + 1).unwrap();
            prop_assert!(p.start_ms < p.end_ms);
            prop_assert_eq!(p.end_ms, q.start_ms);
        }

        #[test]
        fn period_lengths_stay_within_the_calendar(
            anchor in 0i64..4_102_444_800_000, unit in unit(), k in 0u32..240,
        ) {
            let len = {
                let p = period(anchor, every(unit, 1), k).unwrap();
                p.end_ms - p.start_ms
            };
            let days = match unit {
                IntervalUnit::Day => 1..=1,
                IntervalUnit::Week => 7..=7,
                // Clamping keeps months calendar-sized: Jan 31 → Feb 28 is 28 days,
                // Feb 28 → Mar 31 is 31.
                IntervalUnit::Month => 28..=31,
                IntervalUnit::Year => 365..=366,
            };
            prop_assert!(days.contains(&(len / DAY_MS)), "{} days", len / DAY_MS);
        }

        #[test]
        fn months_match_the_calendar_reference(anchor in 0i64..4_102_444_800_000, k in 0u32..400) {
            let expected = naive(anchor).unwrap().checked_add_months(Months::new(k)).unwrap();
            let ours = start_of(anchor, every(IntervalUnit::Month, 1), k).unwrap();
            prop_assert_eq!(ours, expected.and_utc().timestamp_millis());
            // Never drifts: whenever the anchor's day exists in the month, it is that day.
            let a = naive(anchor).unwrap();
            let s = naive(ours).unwrap();
            if a.day() <= 28 {
                prop_assert_eq!(s.day(), a.day());
            }
            prop_assert_eq!(s.time(), a.time());
        }

        #[test]
        fn the_index_of_an_instant_names_the_period_containing_it(
            anchor in 0i64..4_102_444_800_000, unit in unit(), count in 1u32..4, offset in 0i64..3_000_000_000_000,
        ) {
            let i = every(unit, count);
            let t = anchor + offset;
            if let Some(k) = period_index_at(anchor, i, t) {
                let p = period(anchor, i, k).unwrap();
                prop_assert!(p.start_ms <= t && t < p.end_ms);
            }
        }
    }
}
