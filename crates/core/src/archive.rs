//! Retention and archives: how long the ledger keeps the records that only grow (merchant
//! events and their delivery attempts, provider webhook records, tick reports), and the form
//! they take in the archive bucket once they leave it: gzip-compressed JSON lines, one object
//! per archived batch, named so that the same batch always gets the same name (a batch written
//! twice, by a run that crashed before its rows were deleted, replaces itself).
//!
//! Money rows (charges, attempts, orders, refunds, settlements, subscriptions, usage) are never
//! archived or deleted: these rules do not name them.

use std::io::{Read, Write};

use crate::billing::time::DAY_MS;

/// What is archived, each with its own retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Merchant events, each with its delivery attempts.
    Events,
    /// The provider's webhooks as received and settled.
    Webhooks,
    /// The scheduler's reports (one a minute, whatever the load).
    Ticks,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Events, Kind::Webhooks, Kind::Ticks];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Webhooks => "webhooks",
            Kind::Ticks => "ticks",
        }
    }
}

/// Days each kind stays in the ledger (`RETENTION_*_DAYS`), and the most rows one archive
/// object takes (`RETENTION_BATCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events_days: u32,
    pub webhooks_days: u32,
    pub ticks_days: u32,
    pub batch: u32,
}

impl Default for Retention {
    /// Events for 30 days, as payment providers keep theirs; webhook records as long (a
    /// provider's retries and our confirmations are over within days); tick reports a week.
    fn default() -> Self {
        Retention {
            events_days: 30,
            webhooks_days: 30,
            ticks_days: 7,
            batch: 500,
        }
    }
}

impl Retention {
    pub fn days(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Events => self.events_days,
            Kind::Webhooks => self.webhooks_days,
            Kind::Ticks => self.ticks_days,
        }
    }

    /// Records of `kind` older than this instant (ms) may leave the ledger at `now`.
    pub fn cutoff(&self, kind: Kind, now: i64) -> i64 {
        now - i64::from(self.days(kind)) * DAY_MS
    }
}

/// The object's name: `<kind>/<yyyy>/<mm>/<dd>/<first>-<last>.jsonl.gz`, dated by the first
/// record's time, `first` and `last` the batch's first and last keys (a sequence number or an
/// id) with anything but letters, digits, `_` and `-` left out. The same rows give the same
/// name; the date path lets an operator list a day.
pub fn object_key(kind: Kind, first_at_ms: i64, first: &str, last: &str) -> String {
    let date = crate::billing::time::format_rfc3339(first_at_ms);
    let day = &date[..10];
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(64)
            .collect()
    };
    format!(
        "{}/{}/{}/{}/{}-{}.jsonl.gz",
        kind.as_str(),
        &day[0..4],
        &day[5..7],
        &day[8..10],
        clean(first),
        clean(last)
    )
}

/// JSON lines, gzip-compressed: what one archive object holds.
pub fn pack(lines: &[String]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(line.as_bytes());
        let _ = encoder.write_all(b"\n");
    }
    encoder.finish().unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

/// The lines of an archive object.
pub fn unpack(bytes: &[u8]) -> Result<Vec<String>, Unreadable> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|_| Unreadable)?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// The line of an archive object whose member `member` is the string `id`.
pub fn find_line(lines: &[String], member: &str, id: &str) -> Option<serde_json::Value> {
    lines
        .iter()
        .filter(|line| line.contains(id))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value.pointer(member).and_then(|v| v.as_str()) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_as_they_were_packed() {
        let lines: Vec<String> = (0..1_000)
            .map(|i| format!("{{\"event\":{{\"id\":\"evt_{i:04}\",\"snapshot\":\"{{\\\"amount\\\":9900}}\"}}}}"))
            .collect();
        let packed = pack(&lines);
        assert_eq!(unpack(&packed).unwrap(), lines);
        // Events are repetitive JSON: the archive is a fraction of the rows' size.
        let raw: usize = lines.iter().map(|l| l.len() + 1).sum();
        assert!(packed.len() * 5 < raw, "{} of {raw}", packed.len());
    }

    #[test]
    fn an_empty_batch_and_garbage_are_told_apart() {
        assert_eq!(unpack(&pack(&[])).unwrap(), Vec::<String>::new());
        assert_eq!(unpack(b"not gzip"), Err(Unreadable));
        let mut cut = pack(&["{\"a\":1}".to_owned()]);
        cut.truncate(cut.len() - 4);
        assert_eq!(unpack(&cut), Err(Unreadable));
    }

    #[test]
    fn a_line_is_found_by_its_id_not_by_a_mention_of_it() {
        let lines = vec![
            r#"{"event":{"id":"evt_b","snapshot":"mentions evt_a"}}"#.to_owned(),
            r#"{"event":{"id":"evt_a","snapshot":"{}"}}"#.to_owned(),
        ];
        let found = find_line(&lines, "/event/id", "evt_a").unwrap();
        assert_eq!(found["event"]["snapshot"], "{}");
        assert!(find_line(&lines, "/event/id", "evt_c").is_none());
        assert!(find_line(&lines, "/event/id", "evt").is_none());
    }

    #[test]
    fn the_same_rows_always_get_the_same_name_dated_by_the_first() {
        // 2026-12-04T23:59:59.999Z
        let at = 1_796_428_799_999;
        let key = object_key(Kind::Events, at, "41", "540");
        assert_eq!(key, "events/2026/12/04/41-540.jsonl.gz");
        assert_eq!(key, object_key(Kind::Events, at, "41", "540"));
        assert_eq!(
            object_key(Kind::Webhooks, at + 1, "wh/../x", "y z"),
            "webhooks/2026/12/05/whx-yz.jsonl.gz"
        );
    }

    #[test]
    fn each_kind_has_its_own_cutoff() {
        let r = Retention {
            events_days: 30,
            webhooks_days: 10,
            ticks_days: 1,
            batch: 500,
        };
        let now = 100 * DAY_MS;
        assert_eq!(r.cutoff(Kind::Events, now), 70 * DAY_MS);
        assert_eq!(r.cutoff(Kind::Webhooks, now), 90 * DAY_MS);
        assert_eq!(r.cutoff(Kind::Ticks, now), 99 * DAY_MS);
    }
}
