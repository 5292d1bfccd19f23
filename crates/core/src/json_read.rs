//! Reading JSON written by others (the provider's answers and webhooks) or kept by us (the
//! card vault) into typed structs, member by member, under the rules a derived `Deserialize`
//! applied: unknown members are ignored, a required member must be there with the right type,
//! an optional one may be absent or `null`, an integer must be a whole number in its type's
//! range, and a member the text names twice is refused. One small reader per kind of member,
//! shared by every type, instead of a deserializer (and its error messages) per type. Pure:
//! tested natively.

use std::cell::Cell;

use serde_json::{Map, Value};

use crate::input::{self, DUPLICATED, Duplicates};

/// Parses JSON text, keeping track of duplicated members for [`Object`].
pub fn parse(bytes: &[u8]) -> Option<Value> {
    input::parse_value(bytes, Duplicates::Mark).ok()
}

/// Drops what [`parse`] noted of duplicated members, everywhere in `value`: where a member
/// named twice is not to be refused, the last one stands.
pub fn forget_duplicates(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove(DUPLICATED);
            map.values_mut().for_each(forget_duplicates);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_duplicates),
        _ => {}
    }
}

/// A type read from a JSON value; `None` when the value does not have its shape.
pub trait FromJson: Sized {
    fn from_json(value: &Value) -> Option<Self>;
}

/// Data that is not read: anything is accepted.
impl FromJson for () {
    fn from_json(_: &Value) -> Option<Self> {
        Some(())
    }
}

/// `null` is `None`, anything else must read as `T`.
impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_json(other).map(Some),
        }
    }
}

/// An array whose every item reads as `T`.
impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value) -> Option<Self> {
        value.as_array()?.iter().map(T::from_json).collect()
    }
}

/// The members of one JSON object. A member that cannot be read marks the object broken, and
/// [`Object::finish`] then refuses it: a type is read without an early return per member.
pub struct Object<'a> {
    map: &'a Map<String, Value>,
    broken: Cell<bool>,
}

impl<'a> Object<'a> {
    pub fn new(value: &'a Value) -> Option<Object<'a>> {
        Some(Object {
            map: value.as_object()?,
            broken: Cell::new(false),
        })
    }

    fn fail(&self) {
        self.broken.set(true);
    }

    /// The member, absent or `null` as `None`. A member named twice is refused.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let duplicated = self
            .map
            .get(DUPLICATED)
            .and_then(Value::as_array)
            .is_some_and(|names| names.iter().any(|n| n == name));
        if duplicated {
            self.fail();
            return None;
        }
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A member that must be there (and not `null`).
    fn required(&self, name: &str) -> Option<&'a Value> {
        let value = self.get(name);
        if value.is_none() {
            self.fail();
        }
        value
    }

    /// Text that must be there.
    pub fn text(&self, name: &str) -> String {
        self.required(name)
            .and_then(|v| self.text_of(v))
            .unwrap_or_default()
    }

    /// Text that may be absent or `null`.
    pub fn optional_text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| self.text_of(v))
    }

    fn text_of(&self, value: &Value) -> Option<String> {
        let text = value.as_str().map(str::to_owned);
        if text.is_none() {
            self.fail();
        }
        text
    }

    /// A whole number that may be absent or `null`, in `T`'s range.
    pub fn optional_integer<T: TryFrom<i64>>(&self, name: &str) -> Option<T> {
        self.get(name).and_then(|v| self.integer_of(v))
    }

    fn integer_of<T: TryFrom<i64>>(&self, value: &Value) -> Option<T> {
        let n = value.as_i64().and_then(|n| T::try_from(n).ok());
        if n.is_none() {
            self.fail();
        }
        n
    }

    /// `true` or `false` that may be absent or `null`.
    pub fn optional_bool(&self, name: &str) -> Option<bool> {
        let value = self.get(name)?;
        let read = value.as_bool();
        if read.is_none() {
            self.fail();
        }
        read
    }

    /// The readable `T`s of a list that is not essential to the object: anything else (absent,
    /// `null`, not a list, named twice) is an empty list, and an element that cannot be read is
    /// left out. The object is never broken by it.
    pub fn lenient_list<T: FromJson>(&self, name: &str) -> Vec<T> {
        let duplicated = self
            .map
            .get(DUPLICATED)
            .and_then(Value::as_array)
            .is_some_and(|names| names.iter().any(|n| n == name));
        match self.map.get(name).and_then(Value::as_array) {
            Some(items) if !duplicated => items.iter().filter_map(T::from_json).collect(),
            _ => Vec::new(),
        }
    }

    /// A member read as `T`: absent or `null` is `None`, a value without `T`'s shape breaks
    /// the object.
    pub fn optional<T: FromJson>(&self, name: &str) -> Option<T> {
        let value = self.get(name)?;
        let read = T::from_json(value);
        if read.is_none() {
            self.fail();
        }
        read
    }

    /// A member read as `T` that must be there.
    pub fn required_as<T: FromJson>(&self, name: &str) -> Option<T> {
        let read = self.required(name).and_then(T::from_json);
        if read.is_none() {
            self.fail();
        }
        read
    }

    /// A list that may be absent (then empty); `null` or anything else but a list of `T`s
    /// breaks the object.
    pub fn list<T: FromJson>(&self, name: &str) -> Vec<T> {
        if !self.map.contains_key(name) {
            return Vec::new();
        }
        let read = match self.get(name) {
            Some(value) => Vec::<T>::from_json(value),
            None => None,
        };
        if read.is_none() {
            self.fail();
        }
        read.unwrap_or_default()
    }

    /// What was read, unless a member could not be.
    pub fn finish<T>(&self, read: T) -> Option<T> {
        (!self.broken.get()).then_some(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Sample {
        id: String,
        note: Option<String>,
        month: Option<u8>,
        list: Vec<()>,
    }

    impl FromJson for Sample {
        fn from_json(value: &Value) -> Option<Self> {
            let o = Object::new(value)?;
            let read = Sample {
                id: o.text("id"),
                note: o.optional_text("note"),
                month: o.optional_integer("month"),
                list: o.list("list"),
            };
            o.finish(read)
        }
    }

    fn read(text: &str) -> Option<Sample> {
        Sample::from_json(&parse(text.as_bytes())?)
    }

    #[test]
    fn members_are_read_by_kind_and_unknown_ones_ignored() {
        let s = read(r#"{"id":"a","note":"n","month":7,"list":[1],"other":{"x":[]}}"#).unwrap();
        assert_eq!(
            (s.id.as_str(), s.note.as_deref(), s.month, s.list.len()),
            ("a", Some("n"), Some(7), 1)
        );
        let s = read(r#"{"id":"a","note":null,"month":null}"#).unwrap();
        assert_eq!((s.note, s.month, s.list.len()), (None, None, 0));
    }

    #[test]
    fn a_missing_or_mistyped_member_refuses_the_whole() {
        for bad in [
            r#"{}"#,
            r#"{"id":null}"#,
            r#"{"id":1}"#,
            r#"{"id":"a","note":3}"#,
            r#"{"id":"a","month":256}"#,
            r#"{"id":"a","month":-1}"#,
            r#"{"id":"a","month":7.0}"#,
            r#"{"id":"a","month":"7"}"#,
            r#"{"id":"a","list":null}"#,
            r#"{"id":"a","list":{}}"#,
            r#"["a"]"#,
            r#""a""#,
            r#"{"id":"a"} x"#,
        ] {
            assert!(read(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_member_named_twice_is_refused_only_when_read() {
        assert!(read(r#"{"id":"a","id":"b"}"#).is_none());
        assert!(read(r#"{"id":"a","note":"x","note":"y"}"#).is_none());
        // Twice where nothing is read: as before, the last one stands and nobody minds.
        let s = read(r#"{"id":"a","other":1,"other":2,"list":[{"k":1,"k":2}]}"#).unwrap();
        assert_eq!(s.id, "a");
    }

    #[test]
    fn options_and_lists_compose() {
        assert_eq!(Option::<()>::from_json(&json!(null)), Some(None));
        assert_eq!(Option::<()>::from_json(&json!(1)), Some(Some(())));
        assert_eq!(Vec::<()>::from_json(&json!([1, "x"])), Some(vec![(), ()]));
        assert_eq!(Vec::<()>::from_json(&json!({})), None);
        assert!(Vec::<Sample>::from_json(&json!([{"id": "a"}, {"id": 1}])).is_none());
    }
}
