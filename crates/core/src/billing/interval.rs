//! Billing intervals: a unit and a count ("every 3 months").
//!
//! The unit's spelling ("day", "week", "month", "year") is what plans, the ledger and the API
//! use; it is parsed strictly so that a stored value means exactly one thing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalUnit {
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    pub const ALL: [IntervalUnit; 4] = [
        IntervalUnit::Day,
        IntervalUnit::Week,
        IntervalUnit::Month,
        IntervalUnit::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
            IntervalUnit::Year => "year",
        }
    }
}

impl std::str::FromStr for IntervalUnit {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntervalUnit::ALL
            .into_iter()
            .find(|unit| unit.as_str() == s)
            .ok_or_else(|| IntervalError::UnknownUnit(s.to_owned()))
    }
}

impl std::fmt::Display for IntervalUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `count` units. The fields are public for plain construction; everything that computes
/// with an interval refuses a zero count instead of trusting it, and [`Interval::new`],
/// parsing and deserialising refuse it up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "IntervalFields")]
pub struct Interval {
    pub unit: IntervalUnit,
    /// At least 1.
    pub count: u32,
}

impl Interval {
    pub fn new(unit: IntervalUnit, count: u32) -> Result<Interval, IntervalError> {
        if count == 0 {
            return Err(IntervalError::ZeroCount);
        }
        Ok(Interval { unit, count })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalError {
    UnknownUnit(String),
    ZeroCount,
    /// The count in "3 months" is not a whole number that fits a `u32`.
    BadCount(String),
}

impl std::fmt::Display for IntervalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntervalError::UnknownUnit(unit) => {
                write!(f, "unknown interval {unit:?} (day, week, month or year)")
            }
            IntervalError::ZeroCount => f.write_str("an interval count must be at least 1"),
            IntervalError::BadCount(count) => {
                write!(f, "the interval count {count:?} is not a whole number")
            }
        }
    }
}

impl std::error::Error for IntervalError {}

/// The JSON shape: `{"unit": "month", "count": 3}`, `count` defaulting to 1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalFields {
    unit: IntervalUnit,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

impl TryFrom<IntervalFields> for Interval {
    type Error = IntervalError;

    fn try_from(fields: IntervalFields) -> Result<Self, Self::Error> {
        Interval::new(fields.unit, fields.count)
    }
}

/// Text form: "month" for one unit, "3 months" (or "3 month") for several.
impl std::str::FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let (count, unit) = match (words.next(), words.next(), words.next()) {
            (Some(unit), None, None) => (1, unit),
            (Some(count), Some(unit), None) => {
                // `u32::from_str` would accept "+3"; a count is plain digits.
                let count = count
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| count.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| IntervalError::BadCount(count.to_owned()))?;
                (count, unit.strip_suffix('s').unwrap_or(unit))
            }
            _ => return Err(IntervalError::UnknownUnit(s.to_owned())),
        };
        Interval::new(unit.parse()?, count)
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 1 {
            f.write_str(self.unit.as_str())
        } else {
            write!(f, "{} {}s", self.count, self.unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_round_trip_through_text_and_json() {
        for unit in IntervalUnit::ALL {
            assert_eq!(unit.as_str().parse::<IntervalUnit>(), Ok(unit));
            assert_eq!(unit.to_string(), unit.as_str());
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, format!("\"{unit}\""));
            assert_eq!(serde_json::from_str::<IntervalUnit>(&json).unwrap(), unit);
        }
    }

    #[test]
    fn units_are_spelled_exactly() {
        for bad in ["fortnight", "Month", "months", " month", ""] {
            assert_eq!(
                bad.parse::<IntervalUnit>(),
                Err(IntervalError::UnknownUnit(bad.to_owned()))
            );
        }
        assert!(serde_json::from_str::<IntervalUnit>("\"Month\"").is_err());
    }

    #[test]
    fn intervals_read_and_print_like_a_merchant_says_them() {
        let quarter = Interval::new(IntervalUnit::Month, 3).unwrap();
        assert_eq!("3 months".parse::<Interval>(), Ok(quarter));
        assert_eq!("3 month".parse::<Interval>(), Ok(quarter));
        assert_eq!(" 3   months ".parse::<Interval>(), Ok(quarter));
        assert_eq!(quarter.to_string(), "3 months");
        let month = Interval::new(IntervalUnit::Month, 1).unwrap();
        assert_eq!("month".parse::<Interval>(), Ok(month));
        assert_eq!("1 month".parse::<Interval>(), Ok(month));
        assert_eq!(month.to_string(), "month");
    }

    #[test]
    fn refuses_malformed_intervals() {
        assert_eq!(
            Interval::new(IntervalUnit::Day, 0),
            Err(IntervalError::ZeroCount)
        );
        assert_eq!("0 days".parse::<Interval>(), Err(IntervalError::ZeroCount));
        for (text, err) in [
            ("", IntervalError::UnknownUnit(String::new())),
            ("months", IntervalError::UnknownUnit("months".into())),
            (
                "3 fortnights",
                IntervalError::UnknownUnit("fortnight".into()),
            ),
            (
                "every 3 months",
                IntervalError::UnknownUnit("every 3 months".into()),
            ),
            ("+3 months", IntervalError::BadCount("+3".into())),
            ("-3 months", IntervalError::BadCount("-3".into())),
            (
                "4294967296 days",
                IntervalError::BadCount("4294967296".into()),
            ),
        ] {
            assert_eq!(text.parse::<Interval>(), Err(err), "{text:?}");
        }
    }

    #[test]
    fn json_has_a_unit_and_a_count_of_at_least_one() {
        let quarter = Interval::new(IntervalUnit::Month, 3).unwrap();
        let json = serde_json::to_string(&quarter).unwrap();
        assert_eq!(json, r#"{"unit":"month","count":3}"#);
        assert_eq!(serde_json::from_str::<Interval>(&json).unwrap(), quarter);
        assert_eq!(
            serde_json::from_str::<Interval>(r#"{"unit":"year"}"#).unwrap(),
            Interval::new(IntervalUnit::Year, 1).unwrap()
        );
        for bad in [
            r#"{"unit":"year","count":0}"#,
            r#"{"unit":"year","count":-1}"#,
            r#"{"unit":"decade"}"#,
            r#"{"count":2}"#,
            r#"{"unit":"year","every":2}"#,
        ] {
            assert!(serde_json::from_str::<Interval>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn text_round_trips(unit in proptest::sample::select(IntervalUnit::ALL.to_vec()), count in 1u32..) {
            let interval = Interval::new(unit, count).unwrap();
            prop_assert_eq!(interval.to_string().parse::<Interval>(), Ok(interval));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<Interval>();
        }
    }
}
