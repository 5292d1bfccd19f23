//! Billing intervals: a unit and a count ("every 3 months").

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
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(IntervalUnit::Day),
            "week" => Ok(IntervalUnit::Week),
            "month" => Ok(IntervalUnit::Month),
            "year" => Ok(IntervalUnit::Year),
            other => Err(format!(
                "unknown interval {other:?} (day, week, month or year)"
            )),
        }
    }
}

impl std::fmt::Display for IntervalUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    pub unit: IntervalUnit,
    /// At least 1.
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip_through_text_and_json() {
        for unit in [
            IntervalUnit::Day,
            IntervalUnit::Week,
            IntervalUnit::Month,
            IntervalUnit::Year,
        ] {
            assert_eq!(unit.as_str().parse::<IntervalUnit>(), Ok(unit));
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(serde_json::from_str::<IntervalUnit>(&json).unwrap(), unit);
        }
        assert!("fortnight".parse::<IntervalUnit>().is_err());
    }
}
