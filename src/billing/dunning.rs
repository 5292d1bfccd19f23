//! Dunning: when to retry a declined merchant-initiated charge, and when to stop.
//!
//! The schedule is a list of offsets in days from the *first* failure (default 1, 3, 5, 7:
//! retries on day 1, 3, 5 and 7 after the first decline), which is how merchants state it.
//! Hard declines are never retried; declines we cannot classify are retried once.
//!
//! Card-network rules bound what any configuration may do. Visa charges for more than 20
//! reattempts of a soft-declined MIT in a rolling 30 days (15 before May 2025) and for any retry
//! of a Category 1 decline; Mastercard for more than 10 declines per card in a day or 35 in 30
//! days. A schedule here may have at most [`MAX_RETRIES`] retries, all within [`MAX_SPAN_DAYS`]
//! of the first failure: far inside all of them, for one charge at a time.

use super::decline::DeclineClass;
use super::time::{DAY_MS, HOUR_MS};

/// Retries of one charge, whatever the configuration says.
pub const MAX_RETRIES: usize = 10;
/// The window all retries of one charge must fit in (the networks count over 30 days).
pub const MAX_SPAN_DAYS: u32 = 30;
/// A retry never runs sooner than this after the decline before it, even when a tick ran late.
pub const MIN_GAP_MS: i64 = HOUR_MS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    offsets_days: Vec<u32>,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            offsets_days: vec![1, 3, 5, 7],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DunningStep {
    RetryAt(i64),
    GiveUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(String);

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

impl DunningPolicy {
    /// Parses "1,3,5,7" (days after the first failure). An empty string means no retries.
    pub fn parse(text: &str) -> Result<DunningPolicy, ScheduleError> {
        let err = |m: String| Err(ScheduleError(m));
        let mut offsets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Ok(day) = part.parse::<u32>() else {
                return err(format!("{part:?} is not a whole number of days"));
            };
            if day == 0 || day > MAX_SPAN_DAYS {
                return err(format!(
                    "retry days must be 1 to {MAX_SPAN_DAYS}, not {day}"
                ));
            }
            if offsets.last().is_some_and(|&last| day <= last) {
                return err("retry days must increase".into());
            }
            offsets.push(day);
        }
        if offsets.len() > MAX_RETRIES {
            return err(format!(
                "at most {MAX_RETRIES} retries (card-network limits)"
            ));
        }
        Ok(DunningPolicy {
            offsets_days: offsets,
        })
    }

    pub fn retries(&self) -> usize {
        self.offsets_days.len()
    }

    /// After the `declines`-th decline of a charge (1 for the first), what next.
    pub fn next_step(
        &self,
        class: DeclineClass,
        declines: u32,
        first_failed_at: i64,
        now: i64,
    ) -> DunningStep {
        let retries_done = declines.saturating_sub(1) as usize;
        let allowed = match class {
            DeclineClass::Hard => 0,
            DeclineClass::Unknown => self.retries().min(1),
            DeclineClass::Soft => self.retries(),
        };
        if retries_done >= allowed {
            return DunningStep::GiveUp;
        }
        let scheduled = first_failed_at + i64::from(self.offsets_days[retries_done]) * DAY_MS;
        let window_end = first_failed_at + i64::from(MAX_SPAN_DAYS) * DAY_MS;
        let at = scheduled.max(now + MIN_GAP_MS);
        if at > window_end {
            return DunningStep::GiveUp;
        }
        DunningStep::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn soft_declines_follow_the_schedule_from_the_first_failure() {
        let p = DunningPolicy::default();
        let mut now = T0;
        for (declines, day) in [(1, 1), (2, 3), (3, 5), (4, 7)] {
            let step = p.next_step(DeclineClass::Soft, declines, T0, now);
            assert_eq!(
                step,
                DunningStep::RetryAt(T0 + day * DAY_MS),
                "decline {declines}"
            );
            if let DunningStep::RetryAt(at) = step {
                now = at;
            }
        }
        assert_eq!(
            p.next_step(DeclineClass::Soft, 5, T0, now),
            DunningStep::GiveUp
        );
    }

    #[test]
    fn hard_declines_are_never_retried_and_unknown_ones_once() {
        let p = DunningPolicy::default();
        assert_eq!(
            p.next_step(DeclineClass::Hard, 1, T0, T0),
            DunningStep::GiveUp
        );
        assert_eq!(
            p.next_step(DeclineClass::Unknown, 1, T0, T0),
            DunningStep::RetryAt(T0 + DAY_MS)
        );
        assert_eq!(
            p.next_step(DeclineClass::Unknown, 2, T0, T0 + DAY_MS),
            DunningStep::GiveUp
        );
    }

    #[test]
    fn a_late_tick_never_retries_sooner_than_the_minimum_gap() {
        let p = DunningPolicy::default();
        let late = T0 + 4 * DAY_MS;
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, late),
            DunningStep::RetryAt(late + MIN_GAP_MS)
        );
    }

    #[test]
    fn schedules_are_validated_against_network_limits() {
        assert_eq!(
            DunningPolicy::parse(" 1, 3,5 ,7").unwrap(),
            DunningPolicy::default()
        );
        assert_eq!(DunningPolicy::parse("").unwrap().retries(), 0);
        for bad in ["0", "31", "3,2", "1,1", "a", "1,2,3,4,5,6,7,8,9,10,11"] {
            assert!(DunningPolicy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DunningPolicy::parse("1,2,3,4,5,6,7,8,9,10")
                .unwrap()
                .retries(),
            10
        );
        assert_eq!(
            DunningPolicy::parse("")
                .unwrap()
                .next_step(DeclineClass::Soft, 1, T0, T0),
            DunningStep::GiveUp
        );
    }

    proptest! {
        #[test]
        fn retries_are_bounded_increasing_and_inside_the_window(
            days in proptest::collection::btree_set(1u32..=30, 0..=10),
            hard in any::<bool>(),
        ) {
            let text = days.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let policy = DunningPolicy::parse(&text).unwrap();
            let class = if hard { DeclineClass::Hard } else { DeclineClass::Soft };
            let (mut now, mut retries, mut declines) = (T0, 0usize, 1u32);
            while let DunningStep::RetryAt(at) = policy.next_step(class, declines, T0, now) {
                prop_assert!(at > now);
                prop_assert!(at <= T0 + i64::from(MAX_SPAN_DAYS) * DAY_MS);
                now = at;
                retries += 1;
                declines += 1;
                prop_assert!(retries <= MAX_RETRIES);
            }
            prop_assert!(retries <= policy.retries());
            if hard {
                prop_assert_eq!(retries, 0);
            }
        }
    }
}
