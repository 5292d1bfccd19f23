//! The arithmetic of the merchant's reports: monthly recurring revenue in integers, and the
//! CSV text of the charges export (RFC 4180).

use super::calendar::{self, CivilDate};
use super::interval::IntervalUnit;
use super::time::DAY_MS;

/// The first UTC date whose midnight is at or after `t`, as `YYYY-MM-DD`: payouts are dated,
/// and a payout belongs to a range when its day starts inside it.
pub fn day_on_or_after(t: i64) -> Option<String> {
    let start = t.div_euclid(DAY_MS) * DAY_MS;
    let day = if start == t { start } else { start + DAY_MS };
    let (date, _) = calendar::split(day)?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year, date.month, date.day
    ))
}

/// The last `months` calendar months up to the one holding `now`, oldest first: each as
/// `YYYY-MM` and the instant its figures are taken at (the next month's first instant, or
/// `now` for the month still running).
pub fn month_ends(now: i64, months: u32) -> Vec<(String, i64)> {
    let Some((today, _)) = calendar::split(now) else {
        return Vec::new();
    };
    let index = today.year * 12 + i64::from(today.month) - 1;
    (0..i64::from(months))
        .rev()
        .filter_map(|back| {
            let m = index - back;
            let (year, month) = (m.div_euclid(12), (m.rem_euclid(12) + 1) as u32);
            let next = m + 1;
            let first_of_next = CivilDate {
                year: next.div_euclid(12),
                month: (next.rem_euclid(12) + 1) as u32,
                day: 1,
            };
            let at = calendar::join(first_of_next, 0)?.min(now);
            Some((format!("{year:04}-{month:02}"), at))
        })
        .collect()
}

/// A subscription's contribution to monthly recurring revenue, in minor units: its price per
/// billing interval spread over a month. Weekly prices count 52 weeks a year, daily ones 365
/// days, both over 12 months; yearly ones a twelfth. The division rounds half up, once per
/// subscription, so the MRR of a set is the sum of its members'.
pub fn monthly(amount: i64, unit: IntervalUnit, count: u32) -> i64 {
    let count = i64::from(count.max(1));
    let (numerator, denominator) = match unit {
        IntervalUnit::Day => (365, 12 * count),
        IntervalUnit::Week => (52, 12 * count),
        IntervalUnit::Month => (1, count),
        IntervalUnit::Year => (1, 12 * count),
    };
    let scaled = i128::from(amount) * numerator;
    let d = i128::from(denominator);
    // Half up, for non-negative amounts (prices are positive).
    ((scaled * 2 + d) / (2 * d)) as i64
}

/// One CSV field, quoted when it must be (RFC 4180: a comma, a quote or a line break inside),
/// with quotes doubled. A field that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`
/// first) is quoted and led by a single quote, so that an exported description cannot become
/// code in the finance team's spreadsheet. Numbers are written by [`number`], never through here.
pub fn field(text: &str) -> String {
    let formula = text
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if formula || text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A number field (negative numbers are plain: they are never formulas).
pub fn number(n: i64) -> String {
    n.to_string()
}

/// A CSV record: fields joined by commas, ended by CRLF as RFC 4180 has it.
pub fn record(fields: &[String]) -> String {
    let mut line = fields.join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_spread_over_a_month() {
        assert_eq!(monthly(29900, IntervalUnit::Month, 1), 29900);
        assert_eq!(monthly(29900, IntervalUnit::Month, 3), 9967); // 9966.67
        assert_eq!(monthly(120000, IntervalUnit::Year, 1), 10000);
        assert_eq!(monthly(1000, IntervalUnit::Week, 1), 4333); // 4333.33
        assert_eq!(monthly(1000, IntervalUnit::Week, 2), 2167); // 2166.67
        assert_eq!(monthly(100, IntervalUnit::Day, 1), 3042); // 3041.67
        assert_eq!(monthly(5, IntervalUnit::Year, 1), 0); // 0.42
        assert_eq!(monthly(6, IntervalUnit::Year, 1), 1); // 0.5 rounds up
    }

    proptest! {
        #[test]
        fn mrr_is_the_exact_quotient_rounded_half_up(amount in 0i64..10_000_000_000, count in 1u32..=24, unit in 0..4usize) {
            let (unit, per_year) = [
                (IntervalUnit::Day, 365.0),
                (IntervalUnit::Week, 52.0),
                (IntervalUnit::Month, 12.0),
                (IntervalUnit::Year, 1.0),
            ][unit];
            let m = monthly(amount, unit, count);
            // Against an independent exact rational: amount × per_year / (12 × count).
            let numerator = i128::from(amount) * per_year as i128;
            let denominator = 12 * i128::from(count);
            let floor = numerator / denominator;
            let remainder = numerator % denominator;
            let expected = if remainder * 2 >= denominator { floor + 1 } else { floor };
            prop_assert_eq!(i128::from(m), expected);
        }
    }

    #[test]
    fn ranges_use_whole_days_and_months() {
        use crate::billing::time::parse_rfc3339;
        let t = |s| parse_rfc3339(s).unwrap();
        assert_eq!(
            day_on_or_after(t("2026-12-01T00:00:00Z")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            day_on_or_after(t("2026-12-31T00:00:01Z")).as_deref(),
            Some("2027-01-01")
        );
        let now = t("2027-02-10T12:00:00Z");
        assert_eq!(
            month_ends(now, 3),
            vec![
                ("2026-12".to_owned(), t("2027-01-01T00:00:00Z")),
                ("2027-01".to_owned(), t("2027-02-01T00:00:00Z")),
                ("2027-02".to_owned(), now),
            ]
        );
        assert_eq!(month_ends(now, 14)[0].0, "2026-01");
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be_and_never_run_as_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(field("-5"), "\"'-5\"");
        assert_eq!(number(-5), "-5");
        assert_eq!(record(&[field("a"), number(1)]), "a,1\r\n");
    }
}
