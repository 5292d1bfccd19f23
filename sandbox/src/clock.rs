//! The sandbox's business clock: real time plus an offset that only ever grows, so a test can
//! jump to tomorrow's settlement without waiting for it. Every instant the sandbox records
//! (orders, payments, tokens, settlement, receipts) is read from it. What is about real time
//! stays on the wall clock: processing delays, status lag, webhook delivery and its metadata
//! (a receiver judges a webhook's age by its own clock, which this one does not move).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the epoch, by the machine's clock.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-04-25T11:22:24.845Z` from epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Epoch milliseconds of an RFC 3339 instant in any offset (`2026-03-02T10:00:00Z`,
/// `2026-03-02T11:00:00+01:00`).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Why the clock did not move.
#[derive(Debug, PartialEq, Eq)]
pub struct Backwards {
    pub now: i64,
}

pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn with_offset(offset_ms: i64) -> Clock {
        Clock {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// The offset that makes the clock read `start` now.
    pub fn offset_for(start: i64) -> i64 {
        start - wall_ms()
    }

    pub fn now(&self) -> i64 {
        wall_ms() + self.offset()
    }

    pub fn offset(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the clock to `target` (it keeps running from there); the new offset. Instants
    /// already recorded must stay in the past, so the clock never goes back.
    pub fn move_to(&self, target: i64) -> Result<i64, Backwards> {
        let now = self.now();
        if target < now {
            return Err(Backwards { now });
        }
        let offset = Clock::offset_for(target);
        self.offset_ms.store(offset, Ordering::SeqCst);
        Ok(offset)
    }

    /// Sets the offset whatever it was: only a reset (which forgets every recorded instant)
    /// may move the clock back.
    pub fn reset_to(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_and_parses_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_745_580_144_845), "2025-04-25T11:22:24.845Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2025-04-25T11:22:24.845Z"),
            Some(1_745_580_144_845)
        );
        assert_eq!(
            parse_rfc3339("2025-04-25T13:22:24.845+02:00"),
            Some(1_745_580_144_845)
        );
        assert_eq!(parse_rfc3339("2025-04-25"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn the_clock_moves_forward_only_and_keeps_running() {
        let clock = Clock::with_offset(0);
        let start = clock.now();
        let target = start + 86_400_000;
        clock.move_to(target).unwrap();
        assert!(clock.now() >= target);
        assert!(clock.move_to(start).is_err());
        assert!(clock.now() >= target, "a refused move changes nothing");
        clock.reset_to(0);
        assert!(clock.now() < target);
    }
}
