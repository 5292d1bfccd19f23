//! Dunning: when to retry a declined merchant-initiated charge, and when to stop.
//!
//! The schedule is a list of offsets in whole days from the *first* decline of the charge
//! (default 1, 3, 5, 7: retries on day 1, 3, 5 and 7 after the first decline). That is how
//! merchants read "+1, +3, +5, +7 days", and anchoring on the first decline keeps the whole
//! sequence inside a fixed window however late each retry actually ran. A retry whose slot
//! has passed (the scheduler was down) runs [`MIN_GAP_MS`] after the decline before it, so
//! missed slots are never caught up in a burst: a charge is attempted at most once a day.
//!
//! How many retries a decline earns depends on its class: hard declines none, unknown codes
//! one (counting every retry the charge already had), soft declines the whole schedule.
//!
//! Card-network rules bound what any configuration may do, because reattempts beyond them are
//! billed to the merchant:
//! - Visa: more than 20 reattempts of a soft-declined transaction on one card within a rolling
//!   30 days (15 before May 2025; merchant- and customer-initiated counted apart), and any
//!   reattempt after a "Category 1" decline (pick up, lost, stolen, closed or invalid account).
//! - Mastercard: more than 10 declines of one card in 24 hours, or more than 35 in 30 days.
//!
//! Per charge, a schedule may have at most [`MAX_RETRIES`] retries, all within
//! [`MAX_SPAN_DAYS`] of the first decline. Because several charges can share a card, the
//! per-card limits are enforced separately by [`may_retry_card`].

use super::decline::DeclineClass;
use super::time::{DAY_MS, days, in_range};

/// Retries of one charge, whatever the configuration says. With the first attempt that is at
/// most 11 declines in 30 days and, given [`MIN_GAP_MS`], one a day: under Visa's 15/20
/// reattempts and Mastercard's 10 a day and 35 a month, so one charge alone never reaches a
/// network limit.
pub const MAX_RETRIES: u32 = 10;
/// Every retry of one charge happens within this many days of its first decline: the
/// networks count over 30 days.
pub const MAX_SPAN_DAYS: u32 = 30;
/// A retry never runs sooner than this after the decline before it. Scheduled offsets are
/// whole days apart anyway; this only bites when a retry ran late, and keeps an issuer that
/// declined for lack of funds from seeing the same charge twice in a day.
pub const MIN_GAP_MS: i64 = DAY_MS;
/// The default schedule, in days after the first decline.
pub const DEFAULT_SCHEDULE_DAYS: [u32; 4] = [1, 3, 5, 7];

/// Declines of one card (across all its charges) after which it is not retried: within the
/// last 24 hours, and within the last 30 days. Half of Mastercard's 10 and under its 35; 15
/// also bounds the reattempts (every reattempt follows a decline) to Visa's older, stricter
/// limit.
pub const CARD_MAX_DECLINES_24H: u32 = 5;
pub const CARD_MAX_DECLINES_30D: u32 = 15;

/// Offsets (days after the first decline, strictly increasing, 1..=30) and how many of them
/// are used. Only constructed through validation, so it always respects the network ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    offsets_days: Vec<u32>,
    max_retries: u32,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            offsets_days: DEFAULT_SCHEDULE_DAYS.to_vec(),
            max_retries: DEFAULT_SCHEDULE_DAYS.len() as u32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// An empty item, as in "1,,3" or "1,3,".
    EmptyItem {
        position: usize,
    },
    NotANumber {
        item: String,
    },
    /// Day 0 is the decline itself; days past [`MAX_SPAN_DAYS`] leave the network window.
    DayOutOfRange {
        day: u32,
    },
    NotIncreasing {
        previous: u32,
        day: u32,
    },
    TooManyRetries {
        retries: usize,
    },
    /// `max_retries` may only shorten the schedule.
    MaxRetriesBeyondSchedule {
        max_retries: u32,
        scheduled: usize,
    },
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::EmptyItem { position } => write!(
                f,
                "retry day #{position} is empty: write days after the first decline, like 1,3,5,7"
            ),
            ScheduleError::NotANumber { item } => {
                write!(f, "{item:?} is not a whole number of days")
            }
            ScheduleError::DayOutOfRange { day } => write!(
                f,
                "retry day {day} is outside 1 to {MAX_SPAN_DAYS} (days after the first decline)"
            ),
            ScheduleError::NotIncreasing { previous, day } => {
                write!(f, "retry days must increase, but {day} follows {previous}")
            }
            ScheduleError::TooManyRetries { retries } => write!(
                f,
                "{retries} retries is above the limit of {MAX_RETRIES} (card-network rules)"
            ),
            ScheduleError::MaxRetriesBeyondSchedule {
                max_retries,
                scheduled,
            } => write!(
                f,
                "max retries {max_retries} is more than the {scheduled} retry days scheduled"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// What to do after a decline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DunningStep {
    /// Retry at this instant (ms).
    RetryAt(i64),
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The card will not pay: ask the customer for another.
    HardDecline,
    /// An unclassified decline already had its one retry.
    UnknownDeclineRetried,
    /// Every retry of the schedule has been used.
    ScheduleExhausted,
    /// The next retry would fall outside [`MAX_SPAN_DAYS`] of the first decline (or after the
    /// last instant the ledger can store).
    WindowClosed,
    /// A decline count of zero or an instant outside 1970..=9999: refuse rather than guess
    /// when money is involved.
    InvalidInput,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::HardDecline => "hard decline",
            GiveUpReason::UnknownDeclineRetried => "unknown decline already retried",
            GiveUpReason::ScheduleExhausted => "retries exhausted",
            GiveUpReason::WindowClosed => "retry window closed",
            GiveUpReason::InvalidInput => "invalid dunning input",
        }
    }
}

impl std::fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DunningPolicy {
    /// A schedule of `offsets_days` after the first decline, of which the first `max_retries`
    /// are used (all of them when `None`).
    pub fn new(
        offsets_days: Vec<u32>,
        max_retries: Option<u32>,
    ) -> Result<DunningPolicy, ScheduleError> {
        let mut previous = None;
        for &day in &offsets_days {
            if day == 0 || day > MAX_SPAN_DAYS {
                return Err(ScheduleError::DayOutOfRange { day });
            }
            if let Some(previous) = previous.filter(|&p| day <= p) {
                return Err(ScheduleError::NotIncreasing { previous, day });
            }
            previous = Some(day);
        }
        let scheduled = offsets_days.len();
        let scheduled_u32 = u32::try_from(scheduled)
            .ok()
            .filter(|&n| n <= MAX_RETRIES)
            .ok_or(ScheduleError::TooManyRetries { retries: scheduled })?;
        let max_retries = max_retries.unwrap_or(scheduled_u32);
        if max_retries > scheduled_u32 {
            return Err(ScheduleError::MaxRetriesBeyondSchedule {
                max_retries,
                scheduled,
            });
        }
        Ok(DunningPolicy {
            offsets_days,
            max_retries,
        })
    }

    /// Parses "1,3,5,7": days after the first decline, comma-separated, spaces allowed, a
    /// leading `+` tolerated ("+1, +3"). An empty (or blank) string means never retry.
    pub fn parse(text: &str) -> Result<DunningPolicy, ScheduleError> {
        if text.trim().is_empty() {
            return DunningPolicy::new(Vec::new(), None);
        }
        let mut offsets = Vec::new();
        for (i, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                return Err(ScheduleError::EmptyItem { position: i + 1 });
            }
            let day = item
                .parse::<u32>()
                .map_err(|_| ScheduleError::NotANumber { item: item.into() })?;
            offsets.push(day);
        }
        DunningPolicy::new(offsets, None)
    }

    /// The same schedule, using only its first `max_retries` offsets.
    pub fn with_max_retries(self, max_retries: u32) -> Result<DunningPolicy, ScheduleError> {
        DunningPolicy::new(self.offsets_days, Some(max_retries))
    }

    /// Retries a soft decline gets.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub fn offsets_days(&self) -> &[u32] {
        &self.offsets_days
    }

    /// Retries a charge may have in total, given the class of its latest decline.
    pub fn retries_allowed(&self, class: DeclineClass) -> u32 {
        match class {
            DeclineClass::Hard => 0,
            DeclineClass::Unknown => self.max_retries.min(1),
            DeclineClass::Soft => self.max_retries,
        }
    }

    /// After the `declines`-th decline of a charge (1 for the first), decided at `now`, with
    /// the first decline at `first_failed_at`: retry when, or give up why.
    pub fn next_step(
        &self,
        class: DeclineClass,
        declines: u32,
        first_failed_at: i64,
        now: i64,
    ) -> DunningStep {
        if declines == 0 || !in_range(first_failed_at) || !in_range(now) {
            return DunningStep::GiveUp(GiveUpReason::InvalidInput);
        }
        let retries_done = declines - 1;
        if retries_done >= self.retries_allowed(class) {
            return DunningStep::GiveUp(match class {
                DeclineClass::Hard => GiveUpReason::HardDecline,
                DeclineClass::Unknown if retries_done < self.max_retries => {
                    GiveUpReason::UnknownDeclineRetried
                }
                _ => GiveUpReason::ScheduleExhausted,
            });
        }
        let Some(&offset) = self.offsets_days.get(retries_done as usize) else {
            return DunningStep::GiveUp(GiveUpReason::ScheduleExhausted);
        };
        // In range, so none of this can overflow: instants < 2^48, offsets <= 30 days.
        let scheduled = first_failed_at + days(offset);
        let window_end = first_failed_at + days(MAX_SPAN_DAYS);
        let at = scheduled.max(now + MIN_GAP_MS);
        if at > window_end || !in_range(at) {
            return DunningStep::GiveUp(GiveUpReason::WindowClosed);
        }
        DunningStep::RetryAt(at)
    }
}

/// Prints as [`DunningPolicy::parse`] reads, without `max_retries`.
impl std::fmt::Display for DunningPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, day) in self.offsets_days.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{day}")?;
        }
        Ok(())
    }
}

/// Declines of one card within the two windows the networks count over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardDeclines {
    pub last_24h: u32,
    pub last_30d: u32,
}

impl CardDeclines {
    /// Counts the card's declines at `decline_times` (ms) as seen at `now`. Times after `now`
    /// (clock skew between writers) count as recent: over-counting only delays a retry.
    pub fn count(decline_times: &[i64], now: i64) -> CardDeclines {
        let since = |window: i64| {
            let from = now.saturating_sub(window);
            let n = decline_times.iter().filter(|&&t| t > from).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        CardDeclines {
            last_24h: since(DAY_MS),
            last_30d: since(days(30)),
        }
    }
}

/// Which per-card limit a retry would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardLimit {
    Day,
    ThirtyDays,
}

impl std::fmt::Display for CardLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardLimit::Day => write!(
                f,
                "the card was declined {CARD_MAX_DECLINES_24H} times in 24 hours"
            ),
            CardLimit::ThirtyDays => write!(
                f,
                "the card was declined {CARD_MAX_DECLINES_30D} times in 30 days"
            ),
        }
    }
}

impl std::error::Error for CardLimit {}

/// Whether the card may be attempted again: only while one more decline would still keep it
/// within [`CARD_MAX_DECLINES_24H`] and [`CARD_MAX_DECLINES_30D`]. A refused retry is not
/// lost: the charge's next scheduled retry asks again.
pub fn may_retry_card(declines: CardDeclines) -> Result<(), CardLimit> {
    if declines.last_24h >= CARD_MAX_DECLINES_24H {
        Err(CardLimit::Day)
    } else if declines.last_30d >= CARD_MAX_DECLINES_30D {
        Err(CardLimit::ThirtyDays)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::time::{MAX_MS, hours};
    use proptest::prelude::*;

    const T0: i64 = 1_800_000_000_000;

    fn retry_at(day: u32) -> DunningStep {
        DunningStep::RetryAt(T0 + days(day))
    }

    #[test]
    fn soft_declines_follow_the_schedule_from_the_first_decline() {
        let p = DunningPolicy::default();
        // Each retry runs on time and is declined again: (declines so far, day now, next day).
        for (declines, today, next) in [(1, 0, 1), (2, 1, 3), (3, 3, 5), (4, 5, 7)] {
            assert_eq!(
                p.next_step(DeclineClass::Soft, declines, T0, T0 + days(today)),
                retry_at(next),
                "decline {declines}"
            );
        }
        assert_eq!(
            p.next_step(DeclineClass::Soft, 5, T0, T0 + days(7)),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
    }

    #[test]
    fn hard_declines_are_never_retried() {
        let p = DunningPolicy::default();
        for declines in 1..=5 {
            assert_eq!(
                p.next_step(DeclineClass::Hard, declines, T0, T0),
                DunningStep::GiveUp(GiveUpReason::HardDecline)
            );
        }
    }

    #[test]
    fn unknown_declines_are_retried_once() {
        let p = DunningPolicy::default();
        assert_eq!(p.next_step(DeclineClass::Unknown, 1, T0, T0), retry_at(1));
        assert_eq!(
            p.next_step(DeclineClass::Unknown, 2, T0, T0 + days(1)),
            DunningStep::GiveUp(GiveUpReason::UnknownDeclineRetried)
        );
        // The latest decline decides: an unknown code after a retried soft one ends it, a soft
        // code after a retried unknown one continues the schedule.
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, T0 + days(1)),
            retry_at(3)
        );
        // After all soft retries were used, an unknown code is simply the end of the schedule.
        assert_eq!(
            p.next_step(DeclineClass::Unknown, 5, T0, T0 + days(7)),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
    }

    #[test]
    fn a_late_tick_never_retries_sooner_than_the_minimum_gap() {
        let p = DunningPolicy::default();
        let late = T0 + days(4);
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, late),
            DunningStep::RetryAt(late + MIN_GAP_MS)
        );
    }

    #[test]
    fn missed_slots_are_not_caught_up_in_a_burst() {
        let p = DunningPolicy::parse("1,2,3,4,5,6,7,8,9,10").unwrap();
        // The scheduler was down until day 9: the first retry runs then and is declined.
        let mut now = T0 + days(9);
        for declines in 2..=11 {
            match p.next_step(DeclineClass::Soft, declines, T0, now) {
                DunningStep::RetryAt(at) => {
                    assert_eq!(at, now + MIN_GAP_MS, "decline {declines}");
                    now = at;
                }
                DunningStep::GiveUp(reason) => {
                    assert_eq!(reason, GiveUpReason::ScheduleExhausted);
                    assert_eq!(declines, 11);
                }
            }
        }
    }

    #[test]
    fn a_retry_never_leaves_the_thirty_day_window() {
        let p = DunningPolicy::parse("1,30").unwrap();
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, T0 + days(2)),
            retry_at(30)
        );
        // The first retry only ran on day 28.5: day 30 is still a full gap later.
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, T0 + days(28) + hours(12)),
            retry_at(30)
        );
        // It ran so late that the gap would overshoot day 30.
        assert_eq!(
            p.next_step(DeclineClass::Soft, 2, T0, T0 + days(30) - MIN_GAP_MS + 1),
            DunningStep::GiveUp(GiveUpReason::WindowClosed)
        );
    }

    #[test]
    fn nonsense_inputs_give_up_instead_of_guessing() {
        let p = DunningPolicy::default();
        for (declines, first, now) in [
            (0, T0, T0),
            (1, -1, T0),
            (1, T0, -1),
            (1, T0, i64::MAX),
            (1, i64::MIN, i64::MIN),
            (1, MAX_MS + 1, T0),
        ] {
            assert_eq!(
                p.next_step(DeclineClass::Soft, declines, first, now),
                DunningStep::GiveUp(GiveUpReason::InvalidInput),
                "{declines} {first} {now}"
            );
        }
        // At the end of the calendar there is nothing to retry into.
        assert_eq!(
            p.next_step(DeclineClass::Soft, 1, MAX_MS, MAX_MS),
            DunningStep::GiveUp(GiveUpReason::WindowClosed)
        );
        assert_eq!(
            p.next_step(DeclineClass::Soft, u32::MAX, T0, T0),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
    }

    #[test]
    fn parses_the_configured_schedule() {
        assert_eq!(
            DunningPolicy::parse(" 1, 3,5 ,7").unwrap(),
            DunningPolicy::default()
        );
        assert_eq!(DunningPolicy::default().to_string(), "1,3,5,7");
        assert_eq!(
            DunningPolicy::parse("+1,+3"),
            DunningPolicy::new(vec![1, 3], None)
        );
        let none = DunningPolicy::parse("  ").unwrap();
        assert_eq!(none.max_retries(), 0);
        assert_eq!(
            none.next_step(DeclineClass::Soft, 1, T0, T0),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
        assert_eq!(
            none.next_step(DeclineClass::Unknown, 1, T0, T0),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
        assert_eq!(
            DunningPolicy::parse("1,2,3,4,5,6,7,8,9,10")
                .unwrap()
                .max_retries(),
            10
        );
    }

    #[test]
    fn refuses_schedules_outside_the_network_limits_with_the_reason() {
        for (text, err) in [
            ("0", ScheduleError::DayOutOfRange { day: 0 }),
            ("1,31", ScheduleError::DayOutOfRange { day: 31 }),
            (
                "3,2",
                ScheduleError::NotIncreasing {
                    previous: 3,
                    day: 2,
                },
            ),
            (
                "1,1",
                ScheduleError::NotIncreasing {
                    previous: 1,
                    day: 1,
                },
            ),
            ("a", ScheduleError::NotANumber { item: "a".into() }),
            ("1.5", ScheduleError::NotANumber { item: "1.5".into() }),
            ("-1", ScheduleError::NotANumber { item: "-1".into() }),
            ("1,,3", ScheduleError::EmptyItem { position: 2 }),
            ("1,3,", ScheduleError::EmptyItem { position: 3 }),
            (
                "1,2,3,4,5,6,7,8,9,10,11",
                ScheduleError::TooManyRetries { retries: 11 },
            ),
        ] {
            assert_eq!(DunningPolicy::parse(text), Err(err), "{text:?}");
        }
        let long = (1..=1000)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(DunningPolicy::parse(&long).is_err());
    }

    #[test]
    fn max_retries_can_only_shorten_the_schedule() {
        let two = DunningPolicy::default().with_max_retries(2).unwrap();
        assert_eq!(two.max_retries(), 2);
        assert_eq!(
            two.next_step(DeclineClass::Soft, 3, T0, T0 + days(3)),
            DunningStep::GiveUp(GiveUpReason::ScheduleExhausted)
        );
        assert_eq!(
            DunningPolicy::default().with_max_retries(5),
            Err(ScheduleError::MaxRetriesBeyondSchedule {
                max_retries: 5,
                scheduled: 4
            })
        );
        let zero = DunningPolicy::default().with_max_retries(0).unwrap();
        assert_eq!(zero.retries_allowed(DeclineClass::Unknown), 0);
    }

    #[test]
    fn counts_a_cards_recent_declines() {
        let now = T0;
        let times = [
            now - days(31),
            now - days(30),
            now - days(29),
            now - hours(25),
            now - hours(24),
            now - hours(1),
            now,
            now + hours(1),
        ];
        assert_eq!(
            CardDeclines::count(&times, now),
            CardDeclines {
                last_24h: 3,
                last_30d: 6
            }
        );
        assert_eq!(CardDeclines::count(&[], now), CardDeclines::default());
        assert_eq!(
            CardDeclines::count(&[i64::MIN, i64::MAX], i64::MIN).last_30d,
            1
        );
    }

    #[test]
    fn a_card_is_rested_before_the_network_limits() {
        let ok = |last_24h, last_30d| may_retry_card(CardDeclines { last_24h, last_30d });
        assert_eq!(ok(0, 0), Ok(()));
        assert_eq!(
            ok(CARD_MAX_DECLINES_24H - 1, CARD_MAX_DECLINES_30D - 1),
            Ok(())
        );
        assert_eq!(
            ok(CARD_MAX_DECLINES_24H, CARD_MAX_DECLINES_24H),
            Err(CardLimit::Day)
        );
        assert_eq!(ok(0, CARD_MAX_DECLINES_30D), Err(CardLimit::ThirtyDays));
        assert_eq!(ok(u32::MAX, u32::MAX), Err(CardLimit::Day));
        const { assert!(CARD_MAX_DECLINES_24H < 10 && CARD_MAX_DECLINES_30D <= 15) };
        const { assert!(MAX_RETRIES <= CARD_MAX_DECLINES_30D) };
    }

    fn class() -> impl Strategy<Value = DeclineClass> {
        prop_oneof![
            Just(DeclineClass::Soft),
            Just(DeclineClass::Hard),
            Just(DeclineClass::Unknown)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Runs a charge that is declined on every attempt, each retry starting up to two days
        /// after its slot, with the class of each decline drawn at random.
        #[test]
        fn retries_are_bounded_increasing_and_inside_the_window(
            days_set in proptest::collection::btree_set(1u32..=MAX_SPAN_DAYS, 0..=MAX_RETRIES as usize),
            max_retries in proptest::option::of(0u32..=MAX_RETRIES),
            classes in proptest::collection::vec(class(), 12),
            delays in proptest::collection::vec(0i64..days(2), 12),
            first in 0i64..4_102_444_800_000,
        ) {
            let offsets: Vec<u32> = days_set.into_iter().collect();
            let text = offsets.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let parsed = DunningPolicy::parse(&text).unwrap();
            prop_assert_eq!(parsed.offsets_days(), &offsets[..]);
            let policy = match max_retries {
                Some(m) if m as usize > offsets.len() => return Ok(()),
                Some(m) => parsed.with_max_retries(m).unwrap(),
                None => parsed,
            };
            let (mut now, mut retries, mut declines) = (first, 0u32, 1u32);
            loop {
                let class = classes[declines as usize - 1];
                match policy.next_step(class, declines, first, now) {
                    DunningStep::RetryAt(at) => {
                        prop_assert!(class != DeclineClass::Hard);
                        prop_assert!(at >= now + MIN_GAP_MS);
                        prop_assert!(at > first && at <= first + days(MAX_SPAN_DAYS));
                        if class == DeclineClass::Unknown {
                            prop_assert_eq!(retries, 0);
                        }
                        now = at + delays[declines as usize - 1];
                        retries += 1;
                        declines += 1;
                    }
                    DunningStep::GiveUp(reason) => {
                        if class == DeclineClass::Hard {
                            prop_assert_eq!(reason, GiveUpReason::HardDecline);
                        }
                        break;
                    }
                }
                }
            prop_assert!(retries <= policy.max_retries());
            prop_assert!(retries <= MAX_RETRIES);
            if classes[0] == DeclineClass::Hard {
                prop_assert_eq!(retries, 0);
            }
        }

        #[test]
        fn any_schedule_text_parses_or_explains(text in "[0-9, +a-]{0,40}") {
            match DunningPolicy::parse(&text) {
                Ok(p) => {
                    prop_assert!(p.max_retries() <= MAX_RETRIES);
                    prop_assert!(p.offsets_days().windows(2).all(|w| w[0] < w[1]));
                    prop_assert!(p.offsets_days().iter().all(|d| (1..=MAX_SPAN_DAYS).contains(d)));
                    prop_assert_eq!(DunningPolicy::parse(&p.to_string()), Ok(p));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn next_step_never_panics(
            class in class(), declines in any::<u32>(), first in any::<i64>(), now in any::<i64>(),
        ) {
            if let DunningStep::RetryAt(at) = DunningPolicy::default().next_step(class, declines, first, now) {
                prop_assert!(at > now && at <= first + days(MAX_SPAN_DAYS));
            }
        }
    }
}
