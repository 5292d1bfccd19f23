//! What `GET /v1/monitoring` alerts on, decided from the counts the ledger gives: each alert is
//! a condition an operator must act on, so a monitor can page on `status: "alert"` alone.

use crate::billing::time::MINUTE_MS;

/// The cron runs every minute; a scheduler silent for this long has stopped.
pub const SCHEDULER_LATE_AFTER_MS: i64 = 5 * MINUTE_MS;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages that reached a dead-letter queue in the last 24 hours.
    pub dead_letters_recent: u32,
    /// Incidents written in the last 24 hours.
    pub incidents_recent: u32,
    /// Charges still open that an operator must look at.
    pub charges_needing_attention: u32,
    /// Events whose delivery failed at least once and is being retried.
    pub deliveries_retrying: u32,
    /// Events whose delivery gave up.
    pub deliveries_failed: u32,
    /// Wall time the last tick started, if any ever did.
    pub last_tick_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    DeadLetters,
    Incidents,
    ChargesNeedingAttention,
    DeliveriesFailing,
    SchedulerLate,
}

impl Alert {
    pub fn name(self) -> &'static str {
        match self {
            Alert::DeadLetters => "deadLetters",
            Alert::Incidents => "incidents",
            Alert::ChargesNeedingAttention => "chargesNeedingAttention",
            Alert::DeliveriesFailing => "deliveriesFailing",
            Alert::SchedulerLate => "schedulerLate",
        }
    }
}

/// Whether the scheduler is late at wall time `now`. With the test clock on, ticks are run by
/// the API, not the cron, so silence is not lateness.
pub fn scheduler_late(last_tick_at: Option<i64>, now: i64, test_clock: bool) -> bool {
    !test_clock && last_tick_at.is_none_or(|at| now - at > SCHEDULER_LATE_AFTER_MS)
}

/// The alerts the counts raise, in a stable order.
pub fn alerts(c: &Counts, now: i64, test_clock: bool) -> Vec<Alert> {
    let mut out = Vec::new();
    if c.dead_letters_recent > 0 {
        out.push(Alert::DeadLetters);
    }
    if c.incidents_recent > 0 {
        out.push(Alert::Incidents);
    }
    if c.charges_needing_attention > 0 {
        out.push(Alert::ChargesNeedingAttention);
    }
    if c.deliveries_failed > 0 || c.deliveries_retrying > 0 {
        out.push(Alert::DeliveriesFailing);
    }
    if scheduler_late(c.last_tick_at, now, test_clock) {
        out.push(Alert::SchedulerLate);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000_000;

    #[test]
    fn a_quiet_deployment_raises_nothing() {
        let c = Counts {
            last_tick_at: Some(NOW - MINUTE_MS),
            ..Counts::default()
        };
        assert!(alerts(&c, NOW, false).is_empty());
    }

    #[test]
    fn each_condition_raises_its_alert() {
        let c = Counts {
            dead_letters_recent: 1,
            incidents_recent: 2,
            charges_needing_attention: 1,
            deliveries_retrying: 0,
            deliveries_failed: 3,
            last_tick_at: Some(NOW - 6 * MINUTE_MS),
        };
        assert_eq!(
            alerts(&c, NOW, false),
            vec![
                Alert::DeadLetters,
                Alert::Incidents,
                Alert::ChargesNeedingAttention,
                Alert::DeliveriesFailing,
                Alert::SchedulerLate
            ]
        );
    }

    #[test]
    fn the_scheduler_is_late_after_five_silent_minutes_unless_tests_drive_it() {
        assert!(!scheduler_late(Some(NOW - 5 * MINUTE_MS), NOW, false));
        assert!(scheduler_late(Some(NOW - 5 * MINUTE_MS - 1), NOW, false));
        assert!(scheduler_late(None, NOW, false), "never ran");
        assert!(!scheduler_late(None, NOW, true));
    }
}
