//! The settlement rules, as pure functions: when the daily batch takes a transaction, when it
//! settles, and what the provider keeps of it. [`crate::batches`] applies them to the ledger.
//!
//! The provider settles completed transactions in a daily batch: one cutoff a day (UTC), then
//! the money arrives a number of business days (Monday to Friday; no holidays) after the batch.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Timelike, Utc, Weekday};

/// Every UTC day is this long in epoch milliseconds (they count no leap seconds), so the daily
/// cutoff is plain arithmetic; dates and weekdays come from `chrono`.
pub const DAY_MS: i64 = 86_400_000;

/// When batches run and how long their money takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The daily cutoff, in minutes after 00:00 UTC.
    pub cutoff_minutes: u32,
    /// Business days from a batch to its settlement date.
    pub delay_days: u32,
}

impl Schedule {
    /// The first daily cutoff strictly after `instant`: a transaction completed at or after a
    /// day's cutoff goes into the next day's batch.
    pub fn batch_after(&self, instant: i64) -> i64 {
        let cutoff_today = instant.div_euclid(DAY_MS) * DAY_MS + self.cutoff_ms();
        if instant < cutoff_today {
            cutoff_today
        } else {
            cutoff_today + DAY_MS
        }
    }

    /// The cutoff after the one at `batch_at`: where a batch step that failed is retried.
    pub fn next_batch(&self, batch_at: i64) -> i64 {
        batch_at + DAY_MS
    }

    /// The settlement date of a batch: `delay_days` business days after the batch date (with no
    /// delay, the batch date itself if it is a business day, else the next one).
    pub fn settlement_date(&self, batch_at: i64) -> NaiveDate {
        add_business_days(date_of(batch_at), self.delay_days)
    }

    /// When a transaction of the batch at `batch_at` becomes SETTLED: 00:00 UTC of its
    /// settlement date (never before the batch itself, which only a zero delay could ask for).
    pub fn settled_at(&self, batch_at: i64) -> i64 {
        start_of(self.settlement_date(batch_at)).max(batch_at)
    }

    fn cutoff_ms(&self) -> i64 {
        i64::from(self.cutoff_minutes) * 60_000
    }
}

/// `HH:MM` (24 hours) as minutes after midnight.
pub fn parse_cutoff(text: &str) -> Option<u32> {
    let time = NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()?;
    Some(time.hour() * 60 + time.minute())
}

/// The UTC date of an instant.
pub fn date_of(ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// 00:00 UTC of a date, in epoch milliseconds.
pub fn start_of(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

pub fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The business day `n` business days after `date`; with `n = 0`, `date` itself if it is a
/// business day, else the next one.
pub fn add_business_days(date: NaiveDate, n: u32) -> NaiveDate {
    let next = |d: NaiveDate| d.checked_add_days(Days::new(1)).unwrap_or(d);
    let mut day = date;
    let mut left = n;
    if left == 0 {
        while !is_business_day(day) {
            day = next(day);
        }
        return day;
    }
    while left > 0 {
        day = next(day);
        if is_business_day(day) {
            left -= 1;
        }
    }
    day
}

/// What the provider keeps of a purchase of `amount` (minor units): `rate_bp` basis points of
/// it, rounded to the minor unit with halves away from zero, plus `fixed`; never more than the
/// amount itself, so no purchase pays out less than nothing.
pub fn purchase_fee(amount: i64, rate_bp: u32, fixed: i64) -> i64 {
    let scaled = i128::from(amount) * i128::from(rate_bp);
    let proportional = (scaled.abs() + 5_000) / 10_000 * scaled.signum();
    let fee = i64::try_from(proportional)
        .unwrap_or(i64::MAX)
        .saturating_add(fixed);
    fee.min(amount).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        crate::clock::parse_rfc3339(text).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    const DEFAULT: Schedule = Schedule {
        cutoff_minutes: 23 * 60,
        delay_days: 1,
    };

    #[test]
    fn a_transaction_joins_the_first_cutoff_strictly_after_it() {
        // 2026-03-02 is a Monday.
        let before = DEFAULT.batch_after(at("2026-03-02T22:59:59.999Z"));
        assert_eq!(before, at("2026-03-02T23:00:00Z"));
        let on_the_dot = DEFAULT.batch_after(at("2026-03-02T23:00:00Z"));
        assert_eq!(on_the_dot, at("2026-03-03T23:00:00Z"));
        let after = DEFAULT.batch_after(at("2026-03-02T23:30:00Z"));
        assert_eq!(after, at("2026-03-03T23:00:00Z"));
        let midnight = Schedule {
            cutoff_minutes: 0,
            delay_days: 1,
        };
        assert_eq!(
            midnight.batch_after(at("2026-03-02T00:00:00Z")),
            at("2026-03-03T00:00:00Z")
        );
        assert_eq!(
            DEFAULT.next_batch(at("2026-03-02T23:00:00Z")),
            at("2026-03-03T23:00:00Z")
        );
    }

    #[test]
    fn batches_settle_on_the_next_business_day_and_weekends_on_monday() {
        let settles = |batch: &str| DEFAULT.settlement_date(at(batch)).to_string();
        assert_eq!(settles("2026-03-02T23:00:00Z"), "2026-03-03", "Monday");
        assert_eq!(settles("2026-03-05T23:00:00Z"), "2026-03-06", "Thursday");
        assert_eq!(settles("2026-03-06T23:00:00Z"), "2026-03-09", "Friday");
        assert_eq!(settles("2026-03-07T23:00:00Z"), "2026-03-09", "Saturday");
        assert_eq!(settles("2026-03-08T23:00:00Z"), "2026-03-09", "Sunday");
        assert_eq!(
            DEFAULT.settled_at(at("2026-03-06T23:00:00Z")),
            at("2026-03-09T00:00:00Z")
        );
        let slow = Schedule {
            cutoff_minutes: 23 * 60,
            delay_days: 3,
        };
        assert_eq!(
            slow.settlement_date(at("2026-03-05T23:00:00Z")).to_string(),
            "2026-03-10",
            "Thursday + 3 business days"
        );
    }

    #[test]
    fn without_a_delay_a_batch_settles_at_once_on_business_days() {
        let at_once = Schedule {
            cutoff_minutes: 23 * 60,
            delay_days: 0,
        };
        let friday = at("2026-03-06T23:00:00Z");
        assert_eq!(at_once.settled_at(friday), friday);
        assert_eq!(
            at_once.settled_at(at("2026-03-07T23:00:00Z")),
            at("2026-03-09T00:00:00Z"),
            "a Saturday batch waits for Monday"
        );
    }

    #[test]
    fn business_days_skip_weekends_only() {
        assert!(is_business_day(day("2026-03-06")));
        assert!(!is_business_day(day("2026-03-07")));
        assert!(!is_business_day(day("2026-03-08")));
        assert_eq!(add_business_days(day("2026-03-06"), 1), day("2026-03-09"));
        assert_eq!(add_business_days(day("2026-03-06"), 5), day("2026-03-13"));
        assert_eq!(add_business_days(day("2026-03-08"), 0), day("2026-03-09"));
        assert_eq!(add_business_days(day("2026-03-04"), 0), day("2026-03-04"));
        // Across a month and a leap day.
        assert_eq!(add_business_days(day("2028-02-28"), 2), day("2028-03-01"));
    }

    #[test]
    fn the_fee_rounds_halves_away_from_zero_and_never_exceeds_the_amount() {
        // 1.80 % + 1.80 of 299.00: 5.382 rounds to 5.38, plus 1.80.
        assert_eq!(purchase_fee(29_900, 180, 180), 538 + 180);
        // 1.80 % of 25.00 is exactly 0.45.
        assert_eq!(purchase_fee(2_500, 180, 180), 45 + 180);
        // Halves: 0.5 of a minor unit goes up, just below it goes down.
        assert_eq!(purchase_fee(250, 200, 0), 5, "2 % of 2.50 = 0.05 exactly");
        assert_eq!(purchase_fee(25, 200, 0), 1, "0.5 rounds up");
        assert_eq!(purchase_fee(24, 200, 0), 0, "0.48 rounds down");
        assert_eq!(purchase_fee(75, 200, 0), 2, "1.5 rounds up");
        assert_eq!(
            purchase_fee(250, 180, 0),
            5,
            "1.80 % of 2.50 = 4.5 minor units"
        );
        assert_eq!(purchase_fee(750, 180, 0), 14, "13.5 minor units");
        assert_eq!(purchase_fee(249, 180, 0), 4, "4.482 minor units");
        // Capped at the amount: a tiny purchase pays out nothing, never less.
        assert_eq!(purchase_fee(100, 180, 180), 100);
        assert_eq!(purchase_fee(180, 0, 180), 180);
        assert_eq!(purchase_fee(0, 180, 180), 0);
        // Large amounts do not overflow.
        assert_eq!(
            purchase_fee(i64::MAX / 2, 10_000, 0),
            i64::MAX / 2,
            "100 % of it"
        );
    }

    #[test]
    fn cutoffs_read_as_hours_and_minutes() {
        assert_eq!(parse_cutoff("23:00"), Some(23 * 60));
        assert_eq!(parse_cutoff("00:00"), Some(0));
        assert_eq!(parse_cutoff("07:45"), Some(7 * 60 + 45));
        assert_eq!(parse_cutoff("24:00"), None);
        assert_eq!(parse_cutoff("23:60"), None);
        assert_eq!(parse_cutoff("23"), None);
    }
}
