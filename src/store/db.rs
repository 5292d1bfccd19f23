//! D1 access: typed parameters, counted queries, and `changes` for conditional writes.

use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::D1Database as D1DatabaseSys;
use worker::{D1Database, D1PreparedStatement};

use super::row::{self, FromRow, RowError};

use crate::log::{Level, Log};

use crate::meter::Meter;
use recurring_core::http::problem::Problem;

/// A bound SQL parameter. Integers stay exact up to 2^53, far beyond any amount or instant here.
#[derive(Debug, Clone, PartialEq)]
pub enum P {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for P {
    fn from(s: &str) -> P {
        P::Text(s.to_owned())
    }
}
impl From<String> for P {
    fn from(s: String) -> P {
        P::Text(s)
    }
}
impl From<&String> for P {
    fn from(s: &String) -> P {
        P::Text(s.clone())
    }
}
impl From<i64> for P {
    fn from(n: i64) -> P {
        P::Int(n)
    }
}
impl From<u32> for P {
    fn from(n: u32) -> P {
        P::Int(i64::from(n))
    }
}
impl From<bool> for P {
    fn from(b: bool) -> P {
        P::Int(i64::from(b))
    }
}
impl<T: Into<P>> From<Option<T>> for P {
    fn from(v: Option<T>) -> P {
        v.map_or(P::Null, Into::into)
    }
}

impl From<&P> for JsValue {
    fn from(p: &P) -> JsValue {
        match p {
            P::Text(s) => JsValue::from_str(s),
            P::Int(n) => JsValue::from_f64(*n as f64),
            P::Null => JsValue::null(),
        }
    }
}

/// `params![a, b, c]` builds a parameter list from anything convertible to [`P`].
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::db::P::from($v)),*] };
}

/// A list of texts as one parameter, a JSON array that SQL reads with
/// `IN (SELECT value FROM json_each(?))`: D1 binds at most 100 parameters a statement, and a
/// list can be longer.
pub fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// One statement of a batch. Its text is fixed at compile time (see [`sql!`](crate::sql)).
pub struct Stmt {
    pub sql: &'static str,
    pub params: Vec<P>,
}

pub fn stmt(sql: &'static str, params: Vec<P>) -> Stmt {
    Stmt { sql, params }
}

#[derive(Clone, Copy)]
pub struct Db<'a> {
    d1: &'a D1Database,
    /// Which of the ledger's databases this is, for the meter.
    shard: usize,
    meter: &'a Meter,
    log: Option<&'a Log>,
}

impl<'a> Db<'a> {
    pub fn new(d1: &'a D1Database, shard: usize, meter: &'a Meter, log: Option<&'a Log>) -> Self {
        Db {
            d1,
            shard,
            meter,
            log,
        }
    }

    fn prepare(&self, sql: &str, params: &[P]) -> Result<D1PreparedStatement, Problem> {
        let values: Vec<JsValue> = params.iter().map(JsValue::from).collect();
        self.d1
            .prepare(sql)
            .bind(&values)
            .map_err(|e| db_failure(self.log, sql, &e.to_string()))
    }

    pub async fn all<T: FromRow>(&self, sql: &str, params: Vec<P>) -> Result<Vec<T>, Problem> {
        let rows = self.rows(sql, params).await?;
        row::all(&rows).map_err(|e| self.unreadable(sql, e))
    }

    // The parts of `all` that do not depend on the row type, kept out of it so that each row
    // type does not carry its own copy of them.
    async fn rows(&self, sql: &str, params: Vec<P>) -> Result<js_sys::Array, Problem> {
        let result = self.query(sql, &params, Call::All).await?;
        Ok(rows_of(&result))
    }

    fn unreadable(&self, sql: &str, error: RowError) -> Problem {
        db_failure(self.log, sql, &error.to_string())
    }

    // The part of `all` and `run` that does not depend on the row type, kept out of `all` so
    // that each row type does not carry its own copy of the query's state machine.
    async fn query(&self, sql: &str, params: &[P], call: Call) -> Result<JsValue, Problem> {
        self.meter.d1(self.shard, 1);
        let statement = self.prepare(sql, params)?;
        let statement = statement.inner();
        let promise = match call {
            Call::All => statement.all(),
            Call::Run => statement.run(),
        };
        settle(promise)
            .await
            .map_err(|e| db_failure(self.log, sql, &e))
    }

    pub async fn first<T: FromRow>(&self, sql: &str, params: Vec<P>) -> Result<Option<T>, Problem> {
        let mut rows = self.all(sql, params).await?;
        rows.truncate(1);
        Ok(rows.pop())
    }

    /// Runs a write and returns how many rows it changed: 0 means a conditional write lost.
    pub async fn run(&self, sql: &str, params: Vec<P>) -> Result<usize, Problem> {
        let result = self.query(sql, &params, Call::Run).await?;
        Ok(changes(&result))
    }

    /// Runs statements as one transaction (D1 batches are atomic) and returns each one's changes.
    pub async fn batch(&self, statements: Vec<Stmt>) -> Result<Vec<usize>, Problem> {
        Ok(self
            .batch_results(statements)
            .await?
            .iter()
            .map(|r| r.changes)
            .collect())
    }

    /// A batch whose statements may read: each one's changes and rows, in order. Reads see the
    /// writes before them in the same batch.
    pub async fn batch_results(&self, statements: Vec<Stmt>) -> Result<Vec<BatchResult>, Problem> {
        self.meter.d1(self.shard, statements.len() as u32);
        let first_sql = statements.first().map_or("", |s| s.sql);
        let prepared = js_sys::Array::new();
        for s in &statements {
            prepared.push(self.prepare(s.sql, &s.params)?.inner());
        }
        let database: &D1DatabaseSys = self.d1.as_ref().unchecked_ref();
        let results = settle(database.batch(prepared))
            .await
            .map_err(|e| db_failure(self.log, first_sql, &e))?;
        Ok(results
            .unchecked_into::<js_sys::Array>()
            .iter()
            .map(|result| BatchResult {
                changes: changes(&result),
                result,
            })
            .collect())
    }
}

#[derive(Clone, Copy)]
enum Call {
    All,
    Run,
}

/// Awaits a D1 call; its failure as the text to log.
async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, String> {
    let promise = promise.map_err(|e| error_text(&e))?;
    JsFuture::from(promise).await.map_err(|e| error_text(&e))
}

/// The database's own message, and its cause when it has one (D1 puts SQLite's message there).
fn error_text(error: &JsValue) -> String {
    let Some(error) = error.dyn_ref::<js_sys::Error>() else {
        return error
            .as_string()
            .unwrap_or_else(|| "unknown error".to_owned());
    };
    let mut text = String::from(error.message());
    if let Some(cause) = error.cause().dyn_ref::<js_sys::Error>() {
        text.push_str(": ");
        text.push_str(&String::from(cause.message()));
    }
    text
}

/// The `results` array of a D1 result (empty when it has none).
fn rows_of(result: &JsValue) -> js_sys::Array {
    js_sys::Reflect::get(result, &JsValue::from_str("results"))
        .ok()
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .unwrap_or_default()
}

pub struct BatchResult {
    pub changes: usize,
    result: JsValue,
}

impl BatchResult {
    pub fn rows<T: FromRow>(&self) -> Result<Vec<T>, Problem> {
        row::all(&rows_of(&self.result)).map_err(unreadable_in_batch)
    }
}

fn unreadable_in_batch(error: RowError) -> Problem {
    db_failure(None, "batch read", &error.to_string())
}

/// Rows the statement changed. D1 counts the rows its triggers wrote too (an event row beside
/// a status change), so a conditional write "happened" when this is above zero, never
/// "exactly one".
fn changes(result: &JsValue) -> usize {
    js_sys::Reflect::get(result, &JsValue::from_str("meta"))
        .and_then(|meta| js_sys::Reflect::get(&meta, &JsValue::from_str("changes")))
        .ok()
        .and_then(|n| n.as_f64())
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
        .map_or(0, |n| n as usize)
}

/// Logs the database's own message (it names tables and constraints, never bound values) and
/// answers a generic 500.
fn db_failure(log: Option<&Log>, sql: &str, error: &str) -> Problem {
    let statement: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    let fields = crate::fields! {"statement": statement, "error": error};
    match log {
        Some(log) => log.error("d1 error", fields),
        None => crate::log::emit_plain(Level::Error, "d1 error", fields),
    }
    Problem::internal(
        "The ledger could not be read or written. Retrying with the same Idempotency-Key is safe.",
    )
}
