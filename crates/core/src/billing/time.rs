//! Instants are `i64` milliseconds since the Unix epoch, UTC: what the ledger stores. These
//! helpers convert to and from RFC 3339 and never read a clock; `now` is always an argument.
//!
//! Only years 1970..=9999 (UTC) are accepted. Nothing this product bills predates the epoch,
//! and five-digit years have no RFC 3339 spelling, so refusing both keeps every stored instant
//! printable and every calendar computation inside a range that cannot overflow.

use chrono::{DateTime, SecondsFormat};

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// 1970-01-01T00:00:00.000Z.
pub const MIN_MS: i64 = 0;
/// 9999-12-31T23:59:59.999Z.
pub const MAX_MS: i64 = 253_402_300_799_999;

// Durations take `u32` so that they cannot overflow: `u32::MAX` weeks is about 2.6e18 ms,
// well inside `i64`. Subtract them for instants in the past.

pub const fn seconds(n: u32) -> i64 {
    n as i64 * SECOND_MS
}

pub const fn minutes(n: u32) -> i64 {
    n as i64 * MINUTE_MS
}

pub const fn hours(n: u32) -> i64 {
    n as i64 * HOUR_MS
}

pub const fn days(n: u32) -> i64 {
    n as i64 * DAY_MS
}

pub const fn weeks(n: u32) -> i64 {
    n as i64 * WEEK_MS
}

/// Whether `ms` is an instant the ledger accepts (years 1970..=9999 UTC).
pub const fn in_range(ms: i64) -> bool {
    MIN_MS <= ms && ms <= MAX_MS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not an RFC 3339 date-time (date, `T`, time, and `Z` or a numeric offset).
    Syntax,
    /// A valid date-time outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z.
    OutOfRange,
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeError::Syntax => {
                f.write_str("not an RFC 3339 date-time such as 2027-01-31T10:00:00Z")
            }
            TimeError::OutOfRange => f.write_str("the date-time is not between 1970 and 9999 UTC"),
        }
    }
}

impl std::error::Error for TimeError {}

/// Parses `2027-01-31T10:00:00Z`, with a numeric offset or fractional seconds, to milliseconds.
/// Digits beyond milliseconds are truncated (toward the past): a ledger instant never lies after
/// the moment it names. A leap second (`23:59:60`) reads as the first millisecond after it.
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let t = DateTime::parse_from_rfc3339(text.trim()).map_err(|_| TimeError::Syntax)?;
    let ms = t.timestamp_millis();
    if in_range(ms) {
        Ok(ms)
    } else {
        Err(TimeError::OutOfRange)
    }
}

/// Formats milliseconds as `2027-01-31T10:00:00.000Z`: UTC, always with milliseconds, so the
/// text sorts like the number.
pub fn try_format_rfc3339(ms: i64) -> Result<String, TimeError> {
    if !in_range(ms) {
        return Err(TimeError::OutOfRange);
    }
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .ok_or(TimeError::OutOfRange)
}

/// [`try_format_rfc3339`] for instants read back from the ledger, which only ever stores
/// in-range values. An out-of-range value is clamped to the nearest supported instant rather
/// than failing a response over a timestamp.
pub fn format_rfc3339(ms: i64) -> String {
    let clamped = ms.clamp(MIN_MS, MAX_MS);
    try_format_rfc3339(clamped).unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_normalises_offsets() {
        let ms = parse_rfc3339("2027-01-31T10:00:00Z").unwrap();
        assert_eq!(format_rfc3339(ms), "2027-01-31T10:00:00.000Z");
        assert_eq!(parse_rfc3339("2027-01-31T11:00:00+01:00"), Ok(ms));
        assert_eq!(parse_rfc3339("2027-01-31T05:30:00-04:30"), Ok(ms));
        assert_eq!(parse_rfc3339("2027-01-31T10:00:00-00:00"), Ok(ms));
        assert_eq!(parse_rfc3339("  2027-01-31t10:00:00z \n"), Ok(ms));
        assert_eq!(parse_rfc3339("2027-01-31T10:00:00.25Z"), Ok(ms + 250));
        assert_eq!(
            parse_rfc3339("2027-01-31T10:00:00.250999999Z"),
            Ok(ms + 250)
        );
        assert_eq!(format_rfc3339(ms + 7), "2027-01-31T10:00:00.007Z");
    }

    #[test]
    fn a_leap_second_is_the_first_millisecond_after_it() {
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:60Z"),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn knows_the_epoch_and_the_last_supported_instant() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(MIN_MS));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999Z"), Ok(MAX_MS));
        assert_eq!(format_rfc3339(MIN_MS), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(MAX_MS), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn refuses_what_is_not_an_rfc_3339_date_time() {
        for bad in [
            "",
            "tomorrow",
            "2027-01-31",
            "2027-01-31T10:00:00",
            "2027-01-31T10:00Z",
            "2027-02-30T00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-01-31T24:00:00Z",
            "2027-01-31T10:00:00+24:00",
            "+12027-01-31T10:00:00Z",
            "2027-01-31T10:00:00Z trailing",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(TimeError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn refuses_instants_outside_1970_to_9999_utc() {
        for bad in [
            "1969-12-31T23:59:59.999Z",
            // 1969 in UTC, although the local date says 1970.
            "1970-01-01T00:30:00+01:00",
            // 10000 in UTC, although the local date says 9999.
            "9999-12-31T23:30:00-01:00",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(TimeError::OutOfRange), "{bad:?}");
        }
    }

    #[test]
    fn formatting_out_of_range_values_is_refused_or_clamped() {
        assert_eq!(try_format_rfc3339(-1), Err(TimeError::OutOfRange));
        assert_eq!(try_format_rfc3339(MAX_MS + 1), Err(TimeError::OutOfRange));
        assert_eq!(format_rfc3339(i64::MIN), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations_are_exact_and_cannot_overflow() {
        assert_eq!(seconds(1), 1_000);
        assert_eq!(minutes(1), 60_000);
        assert_eq!(hours(1), 3_600_000);
        assert_eq!(days(1), 86_400_000);
        assert_eq!(weeks(1), 7 * 86_400_000);
        assert_eq!(days(30), 2_592_000_000);
        assert!(weeks(u32::MAX) > 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_supported_instant_round_trips(ms in MIN_MS..=MAX_MS) {
            let text = try_format_rfc3339(ms).unwrap();
            prop_assert_eq!(text.len(), 24);
            prop_assert!(text.ends_with('Z'));
            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
        }

        #[test]
        fn formatted_text_sorts_like_the_instant(a in MIN_MS..=MAX_MS, b in MIN_MS..=MAX_MS) {
            prop_assert_eq!(format_rfc3339(a).cmp(&format_rfc3339(b)), a.cmp(&b));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
        }

        #[test]
        fn offsets_name_the_same_instant(ms in hours(48)..=MAX_MS - hours(48), minutes_east in -1439i32..=1439) {
            let utc = try_format_rfc3339(ms).unwrap();
            let local = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .with_timezone(&chrono::FixedOffset::east_opt(minutes_east * 60).unwrap())
                .to_rfc3339_opts(SecondsFormat::Millis, false);
            prop_assert_eq!(parse_rfc3339(&local), parse_rfc3339(&utc));
        }
    }
}
