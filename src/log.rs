//! Logs an operator can search: one JSON object per line, with the time, the level, a message,
//! the invocation's request id (the `cf-ray` of a request, or one of our own for the cron and
//! the queues), the ids of what the invocation touched (customer, charge, subscription, ...),
//! and the line's own fields. Never a token, a secret, a card number beyond its last four
//! digits, or a request body: callers pass ids, codes, statuses and timings only.

use std::cell::RefCell;

use serde_json::{Map, Value};

use crate::billing::time::format_rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The log of one invocation.
pub struct Log {
    request_id: RefCell<String>,
    /// Ids of what the invocation is about, added to every line from then on.
    tags: RefCell<Map<String, Value>>,
}

impl Log {
    pub fn new(request_id: String) -> Log {
        Log {
            request_id: RefCell::new(request_id),
            tags: RefCell::new(Map::new()),
        }
    }

    pub fn set_request_id(&self, id: String) {
        *self.request_id.borrow_mut() = id;
    }

    pub fn request_id(&self) -> String {
        self.request_id.borrow().clone()
    }

    /// Names what the invocation is about (`customerRef`, `chargeId`, `subscriptionId`, ...).
    pub fn tag(&self, key: &str, value: &str) {
        self.tags
            .borrow_mut()
            .insert(key.to_owned(), Value::String(value.to_owned()));
    }

    pub fn info(&self, msg: &str, fields: Value) {
        self.emit(Level::Info, msg, fields);
    }

    pub fn warn(&self, msg: &str, fields: Value) {
        self.emit(Level::Warn, msg, fields);
    }

    pub fn error(&self, msg: &str, fields: Value) {
        self.emit(Level::Error, msg, fields);
    }

    pub fn emit(&self, level: Level, msg: &str, fields: Value) {
        let line = line(
            level,
            msg,
            &self.request_id.borrow(),
            &self.tags.borrow(),
            fields,
            now_ms(),
        );
        write(level, &line);
    }
}

/// A line for code that has no invocation context (yet): configuration errors.
pub fn emit_plain(level: Level, msg: &str, fields: Value) {
    let line = line(level, msg, "-", &Map::new(), fields, now_ms());
    write(level, &line);
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn write(level: Level, line: &str) {
    match level {
        Level::Info => worker::console_log!("{line}"),
        Level::Warn => worker::console_warn!("{line}"),
        Level::Error => worker::console_error!("{line}"),
    }
}

/// The JSON text of one line. Fields may not overwrite the line's own members.
pub fn line(
    level: Level,
    msg: &str,
    request_id: &str,
    tags: &Map<String, Value>,
    fields: Value,
    time_ms: i64,
) -> String {
    let mut out = Map::new();
    out.insert("time".into(), format_rfc3339(time_ms).into());
    out.insert("level".into(), level.as_str().into());
    out.insert("msg".into(), msg.into());
    out.insert("requestId".into(), request_id.into());
    for (k, v) in tags {
        out.insert(k.clone(), v.clone());
    }
    if let Value::Object(fields) = fields {
        for (k, v) in fields {
            out.entry(k).or_insert(v);
        }
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_one_json_object_with_its_context() {
        let mut tags = Map::new();
        tags.insert("chargeId".into(), "ch_1".into());
        let text = line(
            Level::Warn,
            "psp call",
            "8d2c",
            &tags,
            json!({"status": 500, "msg": "cannot override", "level": "nor this"}),
            1_800_000_000_000,
        );
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["time"], "2027-01-15T08:00:00.000Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "psp call");
        assert_eq!(v["requestId"], "8d2c");
        assert_eq!(v["chargeId"], "ch_1");
        assert_eq!(v["status"], 500);
    }
}
