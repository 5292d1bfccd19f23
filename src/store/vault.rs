//! The token vault in Workers KV: one card per customer, under `card:<customerRef>`.
//! KV suits tokens (written once, read everywhere); it is never used to decide whether money
//! moves, because it is eventually consistent.

use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::kv::{KvError, KvStore, ToRawKvValue};

use crate::meter::Meter;
use crate::store::row::{self, FromRow, Row, RowError};
use recurring_core::http::problem::Problem;

/// Stored as JSON text; a member without a value is left out.
#[derive(Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredCard {
    token_id: String,
    pub payment_method_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp_month: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp_year: Option<u16>,
    /// The tokenizing order, and when its checkout started: a late activation of an older
    /// checkout must not replace a newer card.
    pub source_order_id: String,
    pub source_checkout_created_at: i64,
    pub stored_at: i64,
}

impl StoredCard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        token_id: String,
        payment_method_id: String,
        brand: Option<String>,
        last4: Option<String>,
        exp_month: Option<u8>,
        exp_year: Option<u16>,
        source_order_id: String,
        source_checkout_created_at: i64,
        stored_at: i64,
    ) -> Self {
        StoredCard {
            token_id,
            payment_method_id,
            brand,
            last4,
            exp_month,
            exp_year,
            source_order_id,
            source_checkout_created_at,
            stored_at,
        }
    }

    /// The one way to read the token: only the provider client's caller needs it.
    pub fn token_for_provider(&self) -> &str {
        &self.token_id
    }
}

/// Read from the record as KV's JSON parse gives it back, by the rules of the derived
/// `Deserialize` it replaces (see [`crate::store::row`]).
impl FromRow for StoredCard {
    fn from_row(row: &Row) -> Result<Self, RowError> {
        let read = StoredCard {
            token_id: row.get("tokenId"),
            payment_method_id: row.get("paymentMethodId"),
            brand: row.get("brand"),
            last4: row.get("last4"),
            exp_month: row.get("expMonth"),
            exp_year: row.get("expYear"),
            source_order_id: row.get("sourceOrderId"),
            source_checkout_created_at: row.get("sourceCheckoutCreatedAt"),
            stored_at: row.get("storedAt"),
        };
        row.finish(read)
    }
}

impl std::fmt::Debug for StoredCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCard")
            .field("token_id", &"<redacted>")
            .field("payment_method_id", &self.payment_method_id)
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
}

pub struct Vault<'a> {
    kv: &'a KvStore,
    meter: &'a Meter,
}

/// A record's JSON text, handed to KV as it is. (worker's `put` of a `Serialize` value would
/// convert it through a JavaScript object, with a branch for values that are a bare number,
/// and with it the float formatting code, which a card record never needs.)
struct RecordText(String);

impl ToRawKvValue for RecordText {
    fn raw_kv_value(&self) -> Result<JsValue, KvError> {
        Ok(JsValue::from_str(&self.0))
    }
}

fn key(customer_ref: &str) -> String {
    format!("card:{customer_ref}")
}

impl<'a> Vault<'a> {
    pub fn new(kv: &'a KvStore, meter: &'a Meter) -> Self {
        Vault { kv, meter }
    }

    pub async fn get(&self, customer_ref: &str) -> Result<Option<StoredCard>, Problem> {
        self.meter.kv_read();
        let text = self
            .kv
            .get(&key(customer_ref))
            .text()
            .await
            .map_err(|e| vault_failure("read", &e))?;
        let Some(text) = text else {
            return Ok(None);
        };
        // The parser's own message may quote the text, and the text holds the token: it is
        // not logged.
        let value = js_sys::JSON::parse(&text)
            .map_err(|_| vault_failure("read", &"the stored record is not JSON"))?;
        if value.is_null() {
            return Ok(None);
        }
        row::one(value)
            .map(Some)
            .map_err(|e| vault_failure("read", &e))
    }

    pub async fn put(&self, customer_ref: &str, card: &StoredCard) -> Result<(), Problem> {
        let text = serde_json::to_string(card).map_err(|e| vault_failure("encode", &e))?;
        self.meter.kv_write();
        self.kv
            .put(&key(customer_ref), RecordText(text))
            .map_err(|e| vault_failure("encode", &e))?
            .execute()
            .await
            .map_err(|e| vault_failure("write", &e))
    }

    pub async fn delete(&self, customer_ref: &str) -> Result<(), Problem> {
        self.meter.kv_write();
        self.kv
            .delete(&key(customer_ref))
            .await
            .map_err(|e| vault_failure("delete", &e))
    }
}

fn vault_failure(action: &str, error: &dyn std::fmt::Display) -> Problem {
    // KvError and RowError texts describe the operation or the column, not the stored value.
    crate::log::emit_plain(
        crate::log::Level::Error,
        "kv error",
        crate::fields! {"action": action, "error": error.to_string()},
    );
    Problem::internal("The card vault could not be reached. Retry the request.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text KV holds: the members the reader above reads, a missing value left out (as
    /// when the record went through a JavaScript object, whose `undefined` members
    /// `JSON.stringify` drops).
    #[test]
    fn the_record_text_names_every_member_and_leaves_out_missing_values() {
        let full = StoredCard::new(
            "tok".into(),
            "pm_1".into(),
            Some("VISA".into()),
            Some("4242".into()),
            Some(12),
            Some(2031),
            "o1".into(),
            1_700_000_000_000,
            1_700_000_000_500,
        );
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            r#"{"tokenId":"tok","paymentMethodId":"pm_1","brand":"VISA","last4":"4242","expMonth":12,"expYear":2031,"sourceOrderId":"o1","sourceCheckoutCreatedAt":1700000000000,"storedAt":1700000000500}"#
        );
        let bare = StoredCard::new(
            "tok".into(),
            "pm_1".into(),
            None,
            None,
            None,
            None,
            "o1".into(),
            1,
            2,
        );
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"tokenId":"tok","paymentMethodId":"pm_1","sourceOrderId":"o1","sourceCheckoutCreatedAt":1,"storedAt":2}"#
        );
    }
}
