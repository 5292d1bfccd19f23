//! Logs an operator can search: one JSON object per line, with the time, the level, a message,
//! the invocation's request id (the `cf-ray` of a request, or one of our own for the cron and
//! the queues), the ids of what the invocation touched (customer, charge, subscription, ...),
//! and the line's own fields. Never a token, a secret, a card number beyond its last four
//! digits, or a request body: callers pass ids, codes, statuses and timings only.

use std::cell::RefCell;

use recurring_core::billing::time::format_rfc3339;

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

/// The value of one field of a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Null,
}

/// What a line's fields can be made of: text, integers, and `Option`s of them (`None` is null).
pub trait ToField {
    fn to_field(&self) -> Field<'_>;
}

impl ToField for str {
    fn to_field(&self) -> Field<'_> {
        Field::Text(self)
    }
}

impl ToField for String {
    fn to_field(&self) -> Field<'_> {
        Field::Text(self)
    }
}

impl ToField for bool {
    fn to_field(&self) -> Field<'_> {
        Field::Bool(*self)
    }
}

macro_rules! integer_fields {
    ($($t:ty),*) => {$(
        impl ToField for $t {
            fn to_field(&self) -> Field<'_> {
                Field::Int(*self as i64)
            }
        }
    )*};
}
integer_fields!(i64, u64, u32, u16, usize);

impl<T: ToField + ?Sized> ToField for &T {
    fn to_field(&self) -> Field<'_> {
        (**self).to_field()
    }
}

impl<T: ToField> ToField for Option<T> {
    fn to_field(&self) -> Field<'_> {
        self.as_ref().map_or(Field::Null, ToField::to_field)
    }
}

/// The fields of a line: `fields!{"chargeId": id, "attempt": number}`.
#[macro_export]
macro_rules! fields {
    ($($key:literal : $value:expr),* $(,)?) => {
        &[$(($key, $crate::log::ToField::to_field(&$value))),*]
    };
}

/// The members every line has; fields and tags of the same name are left out.
pub const OWN: [&str; 4] = ["time", "level", "msg", "requestId"];

/// The log of one invocation.
pub struct Log {
    request_id: RefCell<String>,
    /// Ids of what the invocation is about, added to every line from then on.
    tags: RefCell<Vec<(String, String)>>,
}

impl Log {
    pub fn new(request_id: String) -> Log {
        Log {
            request_id: RefCell::new(request_id),
            tags: RefCell::new(Vec::new()),
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
        let mut tags = self.tags.borrow_mut();
        match tags.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => tags.push((key.to_owned(), value.to_owned())),
        }
    }

    pub fn info(&self, msg: &str, fields: &[(&str, Field<'_>)]) {
        self.emit(Level::Info, msg, fields);
    }

    pub fn warn(&self, msg: &str, fields: &[(&str, Field<'_>)]) {
        self.emit(Level::Warn, msg, fields);
    }

    pub fn error(&self, msg: &str, fields: &[(&str, Field<'_>)]) {
        self.emit(Level::Error, msg, fields);
    }

    pub fn emit(&self, level: Level, msg: &str, fields: &[(&str, Field<'_>)]) {
        self.write_line(level, msg, fields, None);
    }

    /// A line whose fields are the members of a report (a struct that serializes to a JSON
    /// object whose member names differ from the line's own and from the tags).
    pub fn report<T: serde::Serialize>(&self, msg: &str, report: &T) {
        let members = serde_json::to_string(report).unwrap_or_default();
        self.write_line(Level::Info, msg, &[], Some(&members));
    }

    fn write_line(
        &self,
        level: Level,
        msg: &str,
        fields: &[(&str, Field<'_>)],
        members: Option<&str>,
    ) {
        let mut text = line(
            level,
            msg,
            &self.request_id.borrow(),
            &self.tags.borrow(),
            fields,
            now_ms(),
        );
        if let Some(members) = members {
            append_members(&mut text, members);
        }
        write(level, &text);
    }
}

/// A line for code that has no invocation context (yet): configuration errors.
pub fn emit_plain(level: Level, msg: &str, fields: &[(&str, Field<'_>)]) {
    let line = line(level, msg, "-", &[], fields, now_ms());
    write(level, &line);
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn write(level: Level, line: &str) {
    use worker::web_sys::console;
    let line = wasm_bindgen::JsValue::from_str(line);
    match level {
        Level::Info => console::log_1(&line),
        Level::Warn => console::warn_1(&line),
        Level::Error => console::error_1(&line),
    }
}

/// The JSON text of one line: its own members, the tags, then the fields. A tag or field may
/// not replace a member before it.
pub fn line(
    level: Level,
    msg: &str,
    request_id: &str,
    tags: &[(String, String)],
    fields: &[(&str, Field<'_>)],
    time_ms: i64,
) -> String {
    let mut out = String::with_capacity(256);
    out.push('{');
    let time = format_rfc3339(time_ms);
    let own = [time.as_str(), level.as_str(), msg, request_id];
    for (name, value) in OWN.iter().zip(own) {
        member(&mut out, name, &Field::Text(value));
    }
    let mut names: Vec<&str> = OWN.to_vec();
    for (name, value) in tags {
        if !names.contains(&name.as_str()) {
            names.push(name);
            member(&mut out, name, &Field::Text(value));
        }
    }
    for (name, value) in fields {
        if !names.contains(name) {
            names.push(name);
            member(&mut out, name, value);
        }
    }
    out.push('}');
    out
}

/// Adds the members of the JSON object `object` to the line.
fn append_members(line: &mut String, object: &str) {
    if let Some(members) = object
        .strip_prefix('{')
        .and_then(|m| m.strip_suffix('}'))
        .filter(|m| !m.is_empty())
    {
        line.pop();
        line.push(',');
        line.push_str(members);
        line.push('}');
    }
}

fn member(out: &mut String, name: &str, value: &Field<'_>) {
    if out.len() > 1 {
        out.push(',');
    }
    string(out, name);
    out.push(':');
    value_text(out, value);
}

fn value_text(out: &mut String, value: &Field<'_>) {
    match value {
        Field::Text(s) => string(out, s),
        Field::Int(n) => out.push_str(&n.to_string()),
        Field::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Field::Null => out.push_str("null"),
    }
}

/// A JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_line_is_one_json_object_with_its_context() {
        let tags = vec![("chargeId".to_owned(), "ch_1".to_owned())];
        let text = line(
            Level::Warn,
            "psp call",
            "8d2c",
            &tags,
            crate::fields! {
                "status": 500_u32,
                "msg": "cannot override",
                "level": "nor this",
                "chargeId": "nor this",
                "orderId": None::<String>,
                "workLeft": true,
            },
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
        assert_eq!(v["orderId"], Value::Null);
        assert_eq!(v["workLeft"], true);
        assert_eq!(v.as_object().unwrap().len(), 8, "{text}");
    }

    #[test]
    fn text_is_escaped_as_json() {
        let odd = "quote \" back \\ nl \n tab \t cr \r bell \u{7} nul \u{0} é ✓";
        let text = line(
            Level::Info,
            odd,
            "r",
            &[],
            crate::fields! {"detail": odd},
            0,
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["msg"], odd);
        assert_eq!(v["detail"], odd);
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_report_adds_its_members() {
        let mut text = line(Level::Info, "tick", "r", &[], &[], 0);
        append_members(&mut text, r#"{"tickId":"t1","usage":{"d1Calls":3}}"#);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["tickId"], "t1");
        assert_eq!(v["usage"]["d1Calls"], 3);
        let mut empty = line(Level::Info, "tick", "r", &[], &[], 0);
        let before = empty.clone();
        append_members(&mut empty, "{}");
        assert_eq!(empty, before);
    }
}
