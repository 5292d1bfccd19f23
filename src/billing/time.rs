//! Instants are `i64` milliseconds since the Unix epoch, UTC: what the ledger stores. These
//! helpers convert to and from RFC 3339 and never read a clock.

use chrono::{DateTime, SecondsFormat, Utc};

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z: the range the ledger accepts.
pub const MIN_MS: i64 = 0;
pub const MAX_MS: i64 = 253_402_300_799_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError;

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an RFC 3339 date-time between 1970 and 9999")
    }
}

impl std::error::Error for TimeError {}

/// Parses `2027-01-31T10:00:00Z`, with an offset or fractional seconds, to milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    let t = DateTime::parse_from_rfc3339(text.trim()).map_err(|_| TimeError)?;
    let ms = t.timestamp_millis();
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimeError)
    }
}

/// Formats milliseconds as `2027-01-31T10:00:00.000Z`. Out-of-range values are clamped, which
/// cannot happen for values that came through the ledger.
pub fn format_rfc3339(ms: i64) -> String {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_normalises_offsets() {
        let ms = parse_rfc3339("2027-01-31T10:00:00Z").unwrap();
        assert_eq!(format_rfc3339(ms), "2027-01-31T10:00:00.000Z");
        assert_eq!(parse_rfc3339("2027-01-31T11:00:00+01:00").unwrap(), ms);
        assert_eq!(parse_rfc3339("2027-01-31T10:00:00.250Z").unwrap(), ms + 250);
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn refuses_what_is_not_a_supported_instant() {
        for bad in [
            "",
            "2027-01-31",
            "2027-02-30T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(TimeError), "{bad}");
        }
    }
}
