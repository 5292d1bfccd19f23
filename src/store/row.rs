//! Rows as D1 returns them (one JavaScript object per row, a property per column), read into
//! the ledger's row types. Each type lists its columns once, in [`row!`](crate::row); reading a
//! column is one small shared function per column type, so a row type costs a few bytes per
//! column instead of a deserializer of its own.
//!
//! The rules are the ones a derived `Deserialize` through `serde_wasm_bindgen` applied: a
//! text column must hold a string, an integer column a safe integer in the type's range, an
//! `Option` column is `None` when NULL or absent, and anything else is an error naming the
//! column.

use std::cell::Cell;
use std::fmt;

use wasm_bindgen::JsValue;

/// One row: a JavaScript object, and the first column that could not be read.
pub struct Row {
    value: JsValue,
    error: Cell<Option<RowError>>,
}

/// A column that is missing or holds a value of the wrong kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowError {
    pub column: &'static str,
    pub expected: &'static str,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column.is_empty() {
            write!(f, "a row is not an object")
        } else {
            write!(f, "column `{}`: expected {}", self.column, self.expected)
        }
    }
}

impl Row {
    /// The row, if `value` is an object.
    pub fn new(value: JsValue) -> Result<Row, RowError> {
        if value.is_object() {
            Ok(Row {
                value,
                error: Cell::new(None),
            })
        } else {
            Err(RowError {
                column: "",
                expected: "an object",
            })
        }
    }

    fn value(&self, column: &str) -> JsValue {
        js_sys::Reflect::get(&self.value, &JsValue::from_str(column)).unwrap_or(JsValue::UNDEFINED)
    }

    /// The column's value. One that cannot be read gives the type's default and is remembered
    /// for [`Row::finish`], so a row type is read without an early return (and without the
    /// code that would drop the columns read before it) at every column.
    #[inline(never)]
    pub fn get<T: Column + Default>(&self, column: &'static str) -> T {
        T::read(self.value(column)).unwrap_or_else(|| {
            if self.error.get().is_none() {
                self.error.set(Some(RowError {
                    column,
                    expected: T::EXPECTED,
                }));
            }
            T::default()
        })
    }

    /// The row read, or the first column that could not be.
    pub fn finish<T>(&self, read: T) -> Result<T, RowError> {
        match self.error.get() {
            None => Ok(read),
            Some(error) => Err(error),
        }
    }
}

/// A row type: built from a row by reading its columns.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, RowError>;
}

/// A column's type.
pub trait Column: Sized {
    const EXPECTED: &'static str;
    fn read(value: JsValue) -> Option<Self>;
}

impl Column for String {
    const EXPECTED: &'static str = "text";
    fn read(value: JsValue) -> Option<Self> {
        value.as_string()
    }
}

/// A JavaScript number that is a safe integer (or a BigInt within `i64`).
fn integer(value: JsValue) -> Option<i64> {
    if value.is_bigint() {
        return i64::try_from(value).ok();
    }
    if js_sys::Number::is_safe_integer(&value) {
        return value.as_f64().map(|n| n as i64);
    }
    None
}

impl Column for i64 {
    const EXPECTED: &'static str = "an integer";
    fn read(value: JsValue) -> Option<Self> {
        integer(value)
    }
}

impl Column for u32 {
    const EXPECTED: &'static str = "an integer from 0 to 4294967295";
    fn read(value: JsValue) -> Option<Self> {
        integer(value).and_then(|n| u32::try_from(n).ok())
    }
}

impl Column for u16 {
    const EXPECTED: &'static str = "an integer from 0 to 65535";
    fn read(value: JsValue) -> Option<Self> {
        integer(value).and_then(|n| u16::try_from(n).ok())
    }
}

impl Column for u8 {
    const EXPECTED: &'static str = "an integer from 0 to 255";
    fn read(value: JsValue) -> Option<Self> {
        integer(value).and_then(|n| u8::try_from(n).ok())
    }
}

impl<T: Column> Column for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn read(value: JsValue) -> Option<Self> {
        if value.is_null() || value.is_undefined() {
            Some(None)
        } else {
            T::read(value).map(Some)
        }
    }
}

/// Reads every row of a D1 `results` array.
pub fn all<T: FromRow>(rows: &js_sys::Array) -> Result<Vec<T>, RowError> {
    let mut out = Vec::new();
    each(rows, &mut |row| {
        out.push(T::from_row(row)?);
        Ok(())
    })?;
    Ok(out)
}

// The loop of `all`, shared by every row type.
fn each(
    rows: &js_sys::Array,
    read: &mut dyn FnMut(&Row) -> Result<(), RowError>,
) -> Result<(), RowError> {
    for value in rows.iter() {
        read(&Row::new(value)?)?;
    }
    Ok(())
}

/// Reads one JavaScript object (a row, or a row kept as JSON and parsed back).
pub fn one<T: FromRow>(value: JsValue) -> Result<T, RowError> {
    T::from_row(&Row::new(value)?)
}

/// Declares a row type and how it is read: the struct as written, and a [`FromRow`] that reads
/// each field from the column of the same name.
///
/// [`FromRow`]: crate::store::row::FromRow
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty ),*
        }

        impl $crate::store::row::FromRow for $name {
            fn from_row(
                row: &$crate::store::row::Row,
            ) -> ::core::result::Result<Self, $crate::store::row::RowError> {
                let read = $name {
                    $( $field: row.get(stringify!($field)) ),*
                };
                row.finish(read)
            }
        }
    };
}
