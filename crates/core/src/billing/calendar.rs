//! Proleptic Gregorian calendar arithmetic on UTC milliseconds, in integers.
//!
//! Month arithmetic is the one place where billing calendars differ between systems, so it is
//! written out here (Howard Hinnant's `days_from_civil` / `civil_from_days`) and checked
//! against chrono in the tests rather than delegated to it: a change of behaviour in a
//! dependency must not silently move anyone's billing date.
//!
//! Every function accepts only instants in years 1970..=9999 and returns `None` for
//! results outside it, so no input can overflow.

use super::time::{DAY_MS, in_range};

/// The last year the ledger can store (see [`super::time::MAX_MS`]).
pub const MAX_YEAR: i64 = 9999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
}

pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// 28..=31. `month` outside 1..=12 counts as 31, which callers never pass.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date.
fn days_from_civil(date: CivilDate) -> i64 {
    let y = if date.month <= 2 {
        date.year - 1
    } else {
        date.year
    };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    // Months counted from March, so the leap day is the last day of the year.
    let month_from_march = i64::from((date.month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` days after 1970-01-01.
fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction: month 1..=12, day 1..=31.
    CivilDate {
        year,
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

/// The UTC date of an instant, and the milliseconds since that date's midnight.
pub fn split(ms: i64) -> Option<(CivilDate, i64)> {
    in_range(ms).then(|| {
        (
            civil_from_days(ms.div_euclid(DAY_MS)),
            ms.rem_euclid(DAY_MS),
        )
    })
}

/// The inverse of [`split`]; `None` for an invalid date or a result out of range.
pub fn join(date: CivilDate, ms_of_day: i64) -> Option<i64> {
    let valid = (1..=12).contains(&date.month)
        && (1..=days_in_month(date.year, date.month)).contains(&date.day)
        && (0..=MAX_YEAR).contains(&date.year)
        && (0..DAY_MS).contains(&ms_of_day);
    if !valid {
        return None;
    }
    let ms = days_from_civil(date) * DAY_MS + ms_of_day;
    in_range(ms).then_some(ms)
}

/// Months between the calendar months of `from` and `to`, ignoring the day: Jan 31 → Feb 1
/// is 1. Saturates for years no instant has, rather than overflowing.
pub fn months_between(from: CivilDate, to: CivilDate) -> i64 {
    let index = |d: CivilDate| d.year.saturating_mul(12).saturating_add(i64::from(d.month));
    index(to).saturating_sub(index(from))
}

/// `ms` plus `months` calendar months at the same time of day, the day clamped to the length
/// of the target month (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year).
pub fn add_months(ms: i64, months: u64) -> Option<i64> {
    let (date, ms_of_day) = split(ms)?;
    let month_index =
        (date.year * 12 + i64::from(date.month) - 1).checked_add(i64::try_from(months).ok()?)?;
    let year = month_index / 12;
    if year > MAX_YEAR {
        return None;
    }
    let month = u32::try_from(month_index % 12).ok()? + 1;
    let day = date.day.min(days_in_month(year, month));
    join(CivilDate { year, month, day }, ms_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::time::{MAX_MS, MIN_MS, parse_rfc3339};
    use chrono::{DateTime, Datelike, Months, NaiveDateTime};
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn chrono_naive(ms: i64) -> NaiveDateTime {
        DateTime::from_timestamp_millis(ms).unwrap().naive_utc()
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(2027));
        assert!(!is_leap_year(2100));
        assert!(is_leap_year(2000));
        assert_eq!(days_in_month(2028, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2027, 4), 30);
        assert_eq!(days_in_month(2027, 12), 31);
    }

    #[test]
    fn month_ends_clamp() {
        assert_eq!(
            add_months(at("2027-01-31T10:00:00Z"), 1),
            Some(at("2027-02-28T10:00:00Z"))
        );
        assert_eq!(
            add_months(at("2028-01-31T10:00:00Z"), 1),
            Some(at("2028-02-29T10:00:00Z"))
        );
        assert_eq!(
            add_months(at("2027-01-31T10:00:00Z"), 2),
            Some(at("2027-03-31T10:00:00Z"))
        );
        assert_eq!(
            add_months(at("2028-02-29T23:59:59.999Z"), 12),
            Some(at("2029-02-28T23:59:59.999Z"))
        );
        assert_eq!(
            add_months(at("2027-12-15T00:00:00Z"), 1),
            Some(at("2028-01-15T00:00:00Z"))
        );
    }

    #[test]
    fn the_end_of_the_calendar_is_an_answer_not_a_panic() {
        assert_eq!(
            add_months(at("9999-12-01T00:00:00Z"), 0),
            Some(at("9999-12-01T00:00:00Z"))
        );
        assert_eq!(add_months(at("9999-12-01T00:00:00Z"), 1), None);
        assert_eq!(add_months(0, u64::MAX), None);
        assert_eq!(add_months(-1, 1), None);
        assert_eq!(add_months(MAX_MS + 1, 0), None);
        assert_eq!(split(-1), None);
        for bad in [
            CivilDate {
                year: 2027,
                month: 2,
                day: 29,
            },
            CivilDate {
                year: 2027,
                month: 0,
                day: 1,
            },
            CivilDate {
                year: 2027,
                month: 13,
                day: 1,
            },
            CivilDate {
                year: 2027,
                month: 1,
                day: 0,
            },
            CivilDate {
                year: 10_000,
                month: 1,
                day: 1,
            },
            CivilDate {
                year: 1969,
                month: 12,
                day: 31,
            },
        ] {
            assert_eq!(join(bad, 0), None, "{bad:?}");
        }
        assert_eq!(
            join(
                CivilDate {
                    year: 2027,
                    month: 1,
                    day: 1
                },
                DAY_MS
            ),
            None
        );
        let date = |year, month, day| CivilDate { year, month, day };
        assert_eq!(months_between(date(2027, 1, 31), date(2027, 2, 1)), 1);
        assert_eq!(
            months_between(date(1970, 1, 1), date(i64::MAX, 12, 31)),
            i64::MAX - (1970 * 12 + 1)
        );
        assert!(months_between(date(i64::MAX, 12, 31), date(1970, 1, 1)) < 0);
    }

    #[test]
    fn agrees_with_chrono_on_every_day_of_a_leap_cycle() {
        // Every day of 2027-2030 (with 2028 a leap year) plus 0..=48 months: ~70k cases.
        let first = at("2027-01-01T13:14:15.016Z");
        for day in 0..(4 * 365 + 1) {
            let anchor = first + day * DAY_MS;
            for months in 0..=48u32 {
                let expected = chrono_naive(anchor)
                    .checked_add_months(Months::new(months))
                    .map(|t| t.and_utc().timestamp_millis());
                assert_eq!(add_months(anchor, u64::from(months)), expected);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn civil_dates_match_chrono(ms in MIN_MS..=MAX_MS) {
            let (date, ms_of_day) = split(ms).unwrap();
            let reference = chrono_naive(ms);
            prop_assert_eq!(date.year, i64::from(reference.year()));
            prop_assert_eq!(date.month, reference.month());
            prop_assert_eq!(date.day, reference.day());
            prop_assert_eq!(join(date, ms_of_day), Some(ms));
        }

        #[test]
        fn month_arithmetic_matches_chrono(ms in MIN_MS..=MAX_MS, months in 0u32..130_000) {
            let expected = chrono_naive(ms)
                .checked_add_months(Months::new(months))
                .map(|t| t.and_utc().timestamp_millis())
                .filter(|t| *t <= MAX_MS);
            prop_assert_eq!(add_months(ms, u64::from(months)), expected);
        }
    }
}
