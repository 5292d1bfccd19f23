//! Free trials: a subscription whose first period (period 0) costs nothing. The card is proven
//! at checkout by a verification payment that is given back at once; the first charge is the
//! renewal that closes the trial, at its end, and the calendar is anchored there (period 1
//! starts when the trial ends).

use super::time::{DAY_MS, MAX_MS};

/// The customer is told this long before the trial ends (`subscription.trial_will_end`).
pub const NOTICE_BEFORE_MS: i64 = 3 * DAY_MS;

/// When a trial of `days` started at `start_ms` ends: whole days of 24 hours, so a trial is as
/// long on a daylight-saving change as on any other day (all instants are UTC).
pub fn end(start_ms: i64, days: u32) -> Option<i64> {
    i64::from(days)
        .checked_mul(DAY_MS)
        .and_then(|length| start_ms.checked_add(length))
        .filter(|end| *end <= MAX_MS)
}

/// When the trial's end is announced: three days before it, or at once for a shorter trial.
pub fn notice_at(start_ms: i64, end_ms: i64) -> i64 {
    (end_ms - NOTICE_BEFORE_MS).max(start_ms)
}

/// Which trial a checkout gives: the session's (the merchant's say for this customer, `0` for
/// none) before the plan's. Installment plans have none.
pub fn days(plan_days: Option<u32>, session_days: Option<u32>, installments: bool) -> Option<u32> {
    if installments {
        return None;
    }
    session_days.or(plan_days).filter(|d| *d > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::time::parse_rfc3339;

    #[test]
    fn a_trial_is_whole_days_and_its_notice_comes_three_days_before() {
        let start = parse_rfc3339("2028-02-27T10:00:00Z").unwrap();
        let end = end(start, 14).unwrap();
        assert_eq!(end, parse_rfc3339("2028-03-12T10:00:00Z").unwrap());
        assert_eq!(
            notice_at(start, end),
            parse_rfc3339("2028-03-09T10:00:00Z").unwrap()
        );
    }

    #[test]
    fn a_short_trial_is_announced_at_once() {
        let start = parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(notice_at(start, end(start, 2).unwrap()), start);
    }

    #[test]
    fn the_session_decides_before_the_plan_and_zero_means_none() {
        assert_eq!(days(Some(14), None, false), Some(14));
        assert_eq!(days(Some(14), Some(30), false), Some(30));
        assert_eq!(days(Some(14), Some(0), false), None);
        assert_eq!(days(None, Some(7), false), Some(7));
        assert_eq!(days(None, None, false), None);
        assert_eq!(days(Some(14), Some(7), true), None);
    }

    #[test]
    fn an_absurd_trial_has_no_end_rather_than_a_wrapped_one() {
        assert_eq!(end(i64::MAX - 1, 1), None);
        assert_eq!(end(MAX_MS - DAY_MS + 1, 1), None);
    }
}
