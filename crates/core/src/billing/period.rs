//! Billing periods on a calendar anchored at the subscription's start.
//!
//! Period k starts at `anchor + k × interval`, always computed from the anchor and never by
//! stepping from the previous period, so a day-31 anchor does not drift to the 28th after
//! February: Jan 31 → Feb 28 (29 in leap years) → Mar 31 → Apr 30 → May 31. A yearly Feb 29
//! anchor bills on Feb 28 in common years and Feb 29 in leap years. The anchor's time of day
//! (UTC) is kept. Days and weeks are exact multiples of 24 hours: UTC has no daylight saving.
//!
//! A period ends where the next one starts, so every instant after the anchor belongs to
//! exactly one period and a charge keyed by period index cannot be claimed twice for the same
//! stretch of time.

use super::calendar;
use super::interval::{Interval, IntervalUnit};
use super::time::{DAY_MS, WEEK_MS, in_range};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub index: u32,
    pub start_ms: i64,
    /// The start of the next period (exclusive).
    pub end_ms: i64,
}

impl Period {
    pub fn contains(&self, t_ms: i64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }

    pub fn len_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodError {
    /// An interval of zero units never advances.
    ZeroCount,
    /// The anchor is not an instant in 1970..=9999.
    AnchorOutOfRange,
    /// The period would start or end after 9999-12-31.
    BeyondCalendar,
}

impl std::fmt::Display for PeriodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeriodError::ZeroCount => "a billing interval must be at least one unit",
            PeriodError::AnchorOutOfRange => "the billing anchor is not between 1970 and 9999",
            PeriodError::BeyondCalendar => "the billing period ends after the year 9999",
        })
    }
}

impl std::error::Error for PeriodError {}

fn check(anchor_ms: i64, interval: Interval) -> Result<(), PeriodError> {
    if interval.count == 0 {
        Err(PeriodError::ZeroCount)
    } else if !in_range(anchor_ms) {
        Err(PeriodError::AnchorOutOfRange)
    } else {
        Ok(())
    }
}

/// How one interval advances the calendar.
enum Step {
    /// Days and weeks: an exact number of milliseconds.
    Fixed(i64),
    /// Months and years: calendar months, clamped to the month's length.
    Months(u64),
}

fn step(interval: Interval) -> Step {
    let count = interval.count;
    // None of these can overflow: u32::MAX weeks is about 2.6e18 ms.
    match interval.unit {
        IntervalUnit::Day => Step::Fixed(i64::from(count) * DAY_MS),
        IntervalUnit::Week => Step::Fixed(i64::from(count) * WEEK_MS),
        IntervalUnit::Month => Step::Months(u64::from(count)),
        IntervalUnit::Year => Step::Months(u64::from(count) * 12),
    }
}

/// Start of period `k`.
pub fn start_of(anchor_ms: i64, interval: Interval, k: u32) -> Result<i64, PeriodError> {
    check(anchor_ms, interval)?;
    let start = match step(interval) {
        Step::Fixed(len) => len
            .checked_mul(i64::from(k))
            .and_then(|offset| anchor_ms.checked_add(offset))
            .filter(|s| in_range(*s)),
        Step::Months(months) => months
            .checked_mul(u64::from(k))
            .and_then(|total| calendar::add_months(anchor_ms, total)),
    };
    start.ok_or(PeriodError::BeyondCalendar)
}

/// Period `k`: from its start to the start of period `k + 1`.
pub fn period(anchor_ms: i64, interval: Interval, k: u32) -> Result<Period, PeriodError> {
    let next = k.checked_add(1).ok_or(PeriodError::BeyondCalendar)?;
    Ok(Period {
        index: k,
        start_ms: start_of(anchor_ms, interval, k)?,
        end_ms: start_of(anchor_ms, interval, next)?,
    })
}

/// The index of the period containing `t_ms`: the largest k with `start_of(k) <= t_ms`.
/// `None` before the anchor, for a zero count, or for an anchor or `t_ms` outside 1970..=9999.
pub fn period_index_at(anchor_ms: i64, interval: Interval, t_ms: i64) -> Option<u32> {
    check(anchor_ms, interval).ok()?;
    if !in_range(t_ms) || t_ms < anchor_ms {
        return None;
    }
    let months = match step(interval) {
        Step::Fixed(len) => return u32::try_from((t_ms - anchor_ms) / len).ok(),
        Step::Months(months) => i64::try_from(months).ok()?,
    };
    let (anchor, _) = calendar::split(anchor_ms)?;
    let (t, _) = calendar::split(t_ms)?;
    // Period k starts in calendar month `anchor + k × months`, so periods starting in earlier
    // months started before t, and those in later months after it. Only a period starting in
    // t's own month can lie ahead of t (a later day or time), and then t is in the one before.
    let k = u32::try_from(calendar::months_between(anchor, t) / months).ok()?;
    if start_of(anchor_ms, interval, k).ok()? <= t_ms {
        Some(k)
    } else {
        k.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::calendar::days_in_month;
    use crate::billing::time::{MAX_MS, days, format_rfc3339, parse_rfc3339};
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn every(unit: IntervalUnit, count: u32) -> Interval {
        Interval { unit, count }
    }

    fn starts(anchor: &str, interval: Interval, ks: std::ops::Range<u32>) -> Vec<String> {
        ks.map(|k| format_rfc3339(start_of(at(anchor), interval, k).unwrap()))
            .collect()
    }

    #[test]
    fn month_ends_clamp_without_drifting() {
        assert_eq!(
            starts("2027-01-31T10:00:00Z", every(IntervalUnit::Month, 1), 0..6),
            [
                "2027-01-31T10:00:00.000Z",
                "2027-02-28T10:00:00.000Z",
                "2027-03-31T10:00:00.000Z",
                "2027-04-30T10:00:00.000Z",
                "2027-05-31T10:00:00.000Z",
                "2027-06-30T10:00:00.000Z",
            ]
        );
        // 2028 is a leap year.
        assert_eq!(
            starts(
                "2027-01-31T10:00:00Z",
                every(IntervalUnit::Month, 1),
                12..14
            ),
            ["2028-01-31T10:00:00.000Z", "2028-02-29T10:00:00.000Z"]
        );
    }

    #[test]
    fn quarterly_periods_from_a_month_end() {
        assert_eq!(
            starts("2027-11-30T00:00:00Z", every(IntervalUnit::Month, 3), 0..5),
            [
                "2027-11-30T00:00:00.000Z",
                "2028-02-29T00:00:00.000Z",
                "2028-05-30T00:00:00.000Z",
                "2028-08-30T00:00:00.000Z",
                "2028-11-30T00:00:00.000Z",
            ]
        );
    }

    #[test]
    fn a_leap_day_yearly_anchor_bills_on_the_28th_in_common_years() {
        assert_eq!(
            starts("2028-02-29T00:00:00Z", every(IntervalUnit::Year, 1), 0..5),
            [
                "2028-02-29T00:00:00.000Z",
                "2029-02-28T00:00:00.000Z",
                "2030-02-28T00:00:00.000Z",
                "2031-02-28T00:00:00.000Z",
                "2032-02-29T00:00:00.000Z",
            ]
        );
        // 2100 is not a leap year; 2400 is.
        assert_eq!(
            starts("2096-02-29T00:00:00Z", every(IntervalUnit::Year, 4), 1..2),
            ["2100-02-28T00:00:00.000Z"]
        );
    }

    #[test]
    fn days_and_weeks_are_exact() {
        let anchor = at("2027-03-01T00:00:00Z");
        let p = period(anchor, every(IntervalUnit::Week, 2), 3).unwrap();
        assert_eq!(p.start_ms - anchor, days(42));
        assert_eq!(p.len_ms(), days(14));
        assert_eq!(
            period(anchor, every(IntervalUnit::Day, 1), 0).unwrap(),
            Period {
                index: 0,
                start_ms: anchor,
                end_ms: anchor + days(1)
            }
        );
    }

    #[test]
    fn finds_the_period_of_an_instant() {
        let anchor = at("2027-01-31T10:00:00Z");
        let month = every(IntervalUnit::Month, 1);
        for (t, k) in [
            ("2027-01-31T10:00:00Z", Some(0)),
            ("2027-02-28T09:59:59.999Z", Some(0)),
            ("2027-02-28T10:00:00Z", Some(1)),
            ("2027-03-31T09:59:59.999Z", Some(1)),
            ("2027-03-31T10:00:00Z", Some(2)),
            ("2028-01-31T10:00:00Z", Some(12)),
            ("2027-01-31T09:59:59.999Z", None),
            ("1970-01-01T00:00:00Z", None),
        ] {
            assert_eq!(period_index_at(anchor, month, at(t)), k, "{t}");
        }
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let late = at("9999-06-01T00:00:00Z");
        let year = every(IntervalUnit::Year, 1);
        assert_eq!(start_of(late, year, 0), Ok(late));
        assert_eq!(start_of(late, year, 1), Err(PeriodError::BeyondCalendar));
        assert_eq!(period(late, year, 0), Err(PeriodError::BeyondCalendar));
        assert_eq!(
            start_of(0, every(IntervalUnit::Month, 0), 1),
            Err(PeriodError::ZeroCount)
        );
        assert_eq!(start_of(-1, year, 0), Err(PeriodError::AnchorOutOfRange));
        assert_eq!(
            start_of(MAX_MS + 1, year, 0),
            Err(PeriodError::AnchorOutOfRange)
        );
        for unit in IntervalUnit::ALL {
            let huge = every(unit, u32::MAX);
            assert_eq!(
                start_of(0, huge, u32::MAX),
                Err(PeriodError::BeyondCalendar)
            );
            assert_eq!(period(0, huge, u32::MAX), Err(PeriodError::BeyondCalendar));
            assert_eq!(period_index_at(0, huge, MAX_MS), Some(0));
            assert_eq!(period_index_at(i64::MIN, huge, i64::MAX), None);
            assert_eq!(period_index_at(0, every(unit, 0), 0), None);
            assert_eq!(period_index_at(0, huge, MAX_MS + 1), None);
        }
        // The last period of the calendar has no end, but its instants still have an index.
        assert_eq!(period_index_at(late, year, MAX_MS), Some(0));
    }

    fn unit() -> impl Strategy<Value = IntervalUnit> {
        proptest::sample::select(IntervalUnit::ALL.to_vec())
    }

    /// Anchors up to 2100, so that 240 periods of up to 12 units stay in the calendar.
    const ANCHORS: std::ops::Range<i64> = 0..4_102_444_800_000;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn periods_are_contiguous_and_increasing(
            anchor in ANCHORS, unit in unit(), count in 1u32..=12, k in 0u32..240,
        ) {
            let i = every(unit, count);
            let p = period(anchor, i, k).unwrap();
            let q = period(anchor, i, k + 1).unwrap();
            prop_assert_eq!(p.index, k);
            prop_assert!(p.start_ms < p.end_ms);
            prop_assert_eq!(p.end_ms, q.start_ms);
            prop_assert_eq!(start_of(anchor, i, 0), Ok(anchor));
        }

        #[test]
        fn period_lengths_stay_within_the_calendar(
            anchor in ANCHORS, unit in unit(), k in 0u32..2400,
        ) {
            let p = period(anchor, every(unit, 1), k).unwrap();
            prop_assert_eq!(p.len_ms() % DAY_MS, 0);
            let days = p.len_ms() / DAY_MS;
            let allowed = match unit {
                IntervalUnit::Day => 1..=1,
                IntervalUnit::Week => 7..=7,
                // Clamping keeps months calendar-sized: Jan 31 → Feb 28 is 28 days,
                // Feb 28 → Mar 31 is 31.
                IntervalUnit::Month => 28..=31,
                IntervalUnit::Year => 365..=366,
            };
            prop_assert!(allowed.contains(&days), "{days} days");
        }

        #[test]
        fn month_starts_never_drift(anchor in ANCHORS, count in 1u32..=12, k in 0u32..240) {
            let start = start_of(anchor, every(IntervalUnit::Month, count), k).unwrap();
            let (a, a_time) = calendar::split(anchor).unwrap();
            let (s, s_time) = calendar::split(start).unwrap();
            prop_assert_eq!(s_time, a_time);
            prop_assert_eq!(calendar::months_between(a, s), i64::from(k * count));
            // The anchor's day whenever the month has it, else the month's last day.
            prop_assert_eq!(s.day, a.day.min(days_in_month(s.year, s.month)));
        }

        #[test]
        fn years_are_twelve_months(anchor in ANCHORS, count in 1u32..=5, k in 0u32..40) {
            prop_assert_eq!(
                start_of(anchor, every(IntervalUnit::Year, count), k),
                start_of(anchor, every(IntervalUnit::Month, 12 * count), k)
            );
        }

        #[test]
        fn every_instant_after_the_anchor_is_in_exactly_its_period(
            anchor in ANCHORS, unit in unit(), count in 1u32..=4, offset in 0i64..3_000_000_000_000,
        ) {
            let i = every(unit, count);
            let t = anchor + offset;
            let k = period_index_at(anchor, i, t);
            prop_assert!(k.is_some());
            let p = period(anchor, i, k.unwrap_or(0)).unwrap();
            prop_assert!(p.contains(t), "{t} not in {p:?}");
        }

        #[test]
        fn no_instant_before_the_anchor_has_a_period(
            anchor in ANCHORS, unit in unit(), count in 1u32..=4, before in 1i64..=4_102_444_800_000,
        ) {
            prop_assert_eq!(period_index_at(anchor, every(unit, count), anchor - before), None);
        }

        #[test]
        fn period_boundaries_map_to_their_index(
            anchor in ANCHORS, unit in unit(), count in 1u32..=4, k in 1u32..120,
        ) {
            let i = every(unit, count);
            let start = start_of(anchor, i, k).unwrap();
            prop_assert_eq!(period_index_at(anchor, i, start), Some(k));
            prop_assert_eq!(period_index_at(anchor, i, start - 1), Some(k - 1));
        }
    }
}
