//! Strict request bodies. Every JSON body is read here, field by field, against the shape its
//! route expects: unknown members, duplicate members, `null`, wrong types and control
//! characters are refused, and every error names the field and the rule it broke
//! (`description: required`), never the parser's own text. Pure: tested natively.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::http::problem::{FieldError, Problem};

const DUPLICATE: &str = "duplicate member ";

/// What a parse does with an object that names a member twice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// The whole text is refused: with two `"amount"` members a reader could act on one and a
    /// log or a fingerprint on the other.
    Refuse,
    /// The last one is kept, and the object records the names given twice under
    /// [`DUPLICATED`], so that a reader can refuse exactly the members it reads (see
    /// `crate::json_read`).
    Mark,
}

/// The member under which [`Duplicates::Mark`] lists an object's duplicated names (a name no
/// JSON text of ours or of the provider uses).
pub const DUPLICATED: &str = "\u{0}duplicated";

/// Parses one JSON value (and nothing after it but whitespace), handling duplicate object
/// members at every depth as `duplicates` says.
pub fn parse_value(bytes: &[u8], duplicates: Duplicates) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictVisitor(duplicates).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct StrictVisitor(Duplicates);

impl<'de> DeserializeSeed<'de> for StrictVisitor {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut duplicated = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == DUPLICATED && self.0 == Duplicates::Mark {
                // No reader reads a member of that name: one in the text itself is dropped, so
                // that it can never pass for the list of duplicated names.
                access.next_value::<de::IgnoredAny>()?;
                continue;
            }
            let seen = map.contains_key(&key);
            if seen && self.0 == Duplicates::Refuse {
                return Err(de::Error::custom(format!("{DUPLICATE}{}", shown(&key))));
            }
            let value = access.next_value_seed(self)?;
            if seen {
                duplicated.push(Value::String(key.clone()));
            }
            map.insert(key, value);
        }
        if !duplicated.is_empty() {
            map.insert(DUPLICATED.to_owned(), Value::Array(duplicated));
        }
        Ok(Value::Object(map))
    }
}

/// A member name as it may appear in an error: bounded, and without control characters.
fn shown(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect();
    if name.chars().count() > 64 {
        format!("{clean}…")
    } else {
        clean
    }
}

/// Parses a body that must be one JSON object.
pub fn object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::validation(vec![FieldError::new(
            "body",
            "required (a JSON object)",
        )]));
    }
    let value = match parse_value(bytes, Duplicates::Refuse) {
        Ok(value) => value,
        Err(e) if e.is_data() => {
            // Only our own duplicate-member error is a data error here: every JSON value is
            // accepted by the visitor. The message is ours; the parser's position is dropped.
            let text = e.to_string();
            let name = text
                .strip_prefix(DUPLICATE)
                .and_then(|rest| rest.rsplit_once(" at line ").map(|(n, _)| n))
                .unwrap_or("body");
            return Err(Problem::validation(vec![FieldError::new(
                name,
                "appears more than once",
            )]));
        }
        Err(_) => {
            return Err(Problem::invalid_request(
                "The body is not valid JSON; send one JSON object.",
            ));
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Problem::validation(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )])),
    }
}

/// Parses the body of an action that takes none: only an empty body or `{}` is accepted.
pub fn nothing(bytes: &[u8]) -> Result<(), Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let map = object(bytes)?;
    Fields::new(map).finish()
}

/// Whether a `Content-Type` announces JSON: `application/json`, optionally with
/// `charset=utf-8` (the only encoding JSON has).
pub fn is_json_media_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            p.is_empty()
                || p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("charset")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                })
        })
}

/// True when `s` has a character no field of this API may contain: C0 and C1 controls
/// (NUL, newlines, tabs, escape, ...).
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Reads the members of a body one by one. Each read removes the member, so whatever is left
/// at `finish` is unknown; errors accumulate so that a caller learns about every field at once.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Fields {
            map,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, field: &str, rule: impl Into<String>) {
        self.errors.push(FieldError::new(field, rule));
    }

    pub fn check(&mut self, ok: bool, field: &str, rule: &str) {
        if !ok {
            self.error(field, rule);
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The member, if present and not null; `null` is an error, never a default.
    fn take(&mut self, name: &str) -> Option<Value> {
        match self.map.remove(name) {
            None => None,
            Some(Value::Null) => {
                self.error(name, "must not be null");
                None
            }
            Some(value) => Some(value),
        }
    }

    fn required(&mut self, name: &str) -> Option<Value> {
        let present = self.map.contains_key(name);
        let value = self.take(name);
        if !present {
            self.error(name, "required");
        }
        value
    }

    fn as_string(&mut self, name: &str, value: Value) -> Option<String> {
        match value {
            Value::String(s) if has_control(&s) => {
                self.error(name, "must not contain control characters");
                None
            }
            Value::String(s) => Some(s),
            _ => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    fn as_integer(&mut self, name: &str, value: Value) -> Option<i64> {
        // A JSON integer only: 12.5, "1250" and 1e3 are refused rather than converted.
        match value.as_i64() {
            Some(n) if value.is_i64() || value.is_u64() => Some(n),
            _ => {
                self.error(name, "must be an integer");
                None
            }
        }
    }

    pub fn string(&mut self, name: &str) -> Option<String> {
        let value = self.required(name)?;
        self.as_string(name, value)
    }

    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        let value = self.take(name)?;
        self.as_string(name, value)
    }

    pub fn integer(&mut self, name: &str) -> Option<i64> {
        let value = self.required(name)?;
        self.as_integer(name, value)
    }

    pub fn optional_integer(&mut self, name: &str) -> Option<i64> {
        let value = self.take(name)?;
        self.as_integer(name, value)
    }

    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.take(name)? {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// An object of string values (merchant metadata): keys and values are checked like any
    /// other string, errors are reported as `name.key`.
    pub fn optional_string_map(
        &mut self,
        name: &str,
        max_entries: usize,
        max_key: usize,
        max_value: usize,
    ) -> Option<Map<String, Value>> {
        let map = match self.take(name)? {
            Value::Object(map) => map,
            _ => {
                self.error(name, "must be an object of strings");
                return None;
            }
        };
        let before = self.errors.len();
        if map.len() > max_entries {
            self.error(name, format!("must have at most {max_entries} entries"));
        }
        for (key, value) in &map {
            let field = format!("{name}.{}", shown(key));
            if key.is_empty() || key.chars().count() > max_key || has_control(key) {
                self.error(
                    &field,
                    format!("keys must be 1-{max_key} characters without control characters"),
                );
            }
            match value {
                Value::String(s) if has_control(s) => {
                    self.error(&field, "must not contain control characters")
                }
                Value::String(s) if s.chars().count() > max_value => {
                    self.error(&field, format!("must be at most {max_value} characters"))
                }
                Value::String(_) => {}
                Value::Null => self.error(&field, "must not be null"),
                _ => self.error(&field, "must be a string"),
            }
        }
        (self.errors.len() == before).then_some(map)
    }

    /// Ends the reading: members nobody asked for are refused, then every error is reported.
    pub fn finish(mut self) -> Result<(), Problem> {
        let unknown: Vec<String> = self.map.keys().map(|k| shown(k)).collect();
        for name in unknown {
            self.error(&name, "unknown field");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(p: &Problem) -> Vec<(String, String)> {
        p.extensions["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn read(body: &str) -> Result<(Option<String>, Option<i64>), Problem> {
        let mut f = Fields::new(object(body.as_bytes())?);
        let description = f.string("description");
        let amount = f.optional_integer("amount");
        f.finish()?;
        Ok((description, amount))
    }

    #[test]
    fn a_well_formed_body_reads_field_by_field() {
        assert_eq!(
            read(r#"{"description":"Top-up","amount":300}"#).unwrap(),
            (Some("Top-up".into()), Some(300))
        );
        assert_eq!(
            read(r#"{"description":"Top-up"}"#).unwrap(),
            (Some("Top-up".into()), None)
        );
    }

    #[test]
    fn errors_name_the_field_and_the_rule_never_the_parser() {
        let p = read(r#"{"amount": 5}"#).unwrap_err();
        assert_eq!(p.detail.as_deref(), Some("description: required"));
        assert_eq!(errors(&p), [("description".into(), "required".into())]);

        let p = read(r#"{"description": "x", "amount": null}"#).unwrap_err();
        assert_eq!(errors(&p), [("amount".into(), "must not be null".into())]);

        let p =
            read(r#"{"description": "a\u0000b", "amount": 1.5, "customerRef": "v"}"#).unwrap_err();
        assert_eq!(
            errors(&p),
            [
                (
                    "description".into(),
                    "must not contain control characters".into()
                ),
                ("amount".into(), "must be an integer".into()),
                ("customerRef".into(), "unknown field".into()),
            ]
        );
        for bad in [
            r#"{"description":"x","amount":"300"}"#,
            r#"{"description":"x","amount":3e2}"#,
        ] {
            assert_eq!(
                errors(&read(bad).unwrap_err())[0].1,
                "must be an integer",
                "{bad}"
            );
        }
    }

    #[test]
    fn non_objects_truncated_and_duplicate_bodies_are_refused_without_parser_text() {
        for body in ["[]", "[true]", "\"x\"", "12", "null"] {
            let p = read(body).unwrap_err();
            assert_eq!(
                errors(&p),
                [("body".into(), "must be a JSON object".into())]
            );
        }
        let p = read(r#"{"description": "x""#).unwrap_err();
        assert_eq!(p.kind, "invalid-request");
        assert!(!p.detail.unwrap().contains("line"), "no parser position");
        let p = read("").unwrap_err();
        assert_eq!(errors(&p)[0].0, "body");
        let p = read(r#"{"description": "a", "description": "b"}"#).unwrap_err();
        assert_eq!(
            errors(&p),
            [("description".into(), "appears more than once".into())]
        );
        let p = read(r#"{"description": "a", "m": {"k": 1, "k": 2}}"#).unwrap_err();
        assert_eq!(errors(&p)[0].0, "k");
    }

    #[test]
    fn bodyless_actions_take_nothing_or_an_empty_object() {
        assert!(nothing(b"").is_ok());
        assert!(nothing(b"  \n").is_ok());
        assert!(nothing(b"{}").is_ok());
        assert!(nothing(b"{ }").is_ok());
        assert_eq!(nothing(b"[]").unwrap_err().status, 400);
        assert_eq!(nothing(b"[true]").unwrap_err().status, 400);
        assert_eq!(nothing(b"{\"atPeriodEnd\":true").unwrap_err().status, 400);
        assert_eq!(
            errors(&nothing(b"{\"x\":1}").unwrap_err()),
            [("x".into(), "unknown field".into())]
        );
        assert_eq!(nothing(b"text").unwrap_err().kind, "invalid-request");
    }

    #[test]
    fn only_json_media_types_are_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "application/jsonx",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn control_characters_include_nul_c1_and_line_breaks() {
        for s in ["a\0b", "a\nb", "a\tb", "a\u{1b}b", "a\u{85}b", "a\u{7f}"] {
            assert!(has_control(s), "{s:?}");
        }
        assert!(!has_control("Åsa Öberg – ümlaut ✓"));
    }

    #[test]
    fn string_maps_check_every_entry() {
        let body = r#"{"m": {"ok": "v", "bad": 1, "nul": "a\u0000", "n": null}}"#;
        let mut f = Fields::new(object(body.as_bytes()).unwrap());
        assert!(f.optional_string_map("m", 20, 40, 500).is_none());
        let p = f.finish().unwrap_err();
        let fields: Vec<String> = errors(&p).into_iter().map(|e| e.0).collect();
        assert_eq!(fields, ["m.bad", "m.n", "m.nul"]);
    }

    #[test]
    fn long_or_hostile_member_names_are_shown_bounded() {
        let name = "k".repeat(100);
        let p = read(&format!(r#"{{"description":"x","{name}":1}}"#)).unwrap_err();
        assert!(errors(&p)[0].0.chars().count() <= 65);
        let p = read("{\"description\":\"x\",\"a\\u0000\":1}").unwrap_err();
        assert_eq!(errors(&p)[0].0, "a?");
    }
}
