//! Cards on file as the ledger knows them: brand, last 4, expiry, history. Never the token.

use serde::{Deserialize, Serialize};

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::http::problem::Problem;

/// What a frontend may see of a card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MaskedCard {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
}

crate::row! {
    struct Row {
        brand: Option<String>,
        last4: Option<String>,
        exp_month: Option<u8>,
        exp_year: Option<u16>,
        created_at: i64,
    }
}

impl From<Row> for MaskedCard {
    fn from(r: Row) -> Self {
        MaskedCard {
            brand: r.brand,
            last4: r.last4,
            exp_month: r.exp_month,
            exp_year: r.exp_year,
        }
    }
}

/// The customer's card on file, masked, with when it was recorded.
pub async fn active(db: Db<'_>, customer_ref: &str) -> Result<Option<(MaskedCard, i64)>, Problem> {
    let row: Option<Row> = db
        .first(
            crate::sql!(
                "SELECT brand, last4, exp_month, exp_year, created_at FROM payment_methods
             WHERE customer_ref = ? AND status = 'active' ORDER BY created_at DESC LIMIT 1"
            ),
            params![customer_ref],
        )
        .await?;
    Ok(row.map(|r| {
        let created_at = r.created_at;
        (r.into(), created_at)
    }))
}

/// Whether the customer has a card on file. The ledger decides, never the vault: KV is
/// eventually consistent, and a late activation may write a card back into it after the
/// merchant removed it.
pub async fn has_active(db: Db<'_>, customer_ref: &str) -> Result<bool, Problem> {
    crate::row! {
        struct Found {
            n: i64,
        }
    }
    let found: Option<Found> = db
        .first(
            crate::sql!("SELECT COUNT(*) AS n FROM payment_methods WHERE customer_ref = ? AND status = 'active'"),
            params![customer_ref],
        )
        .await?;
    Ok(found.is_some_and(|f| f.n > 0))
}

pub async fn masked_by_order(db: Db<'_>, order_id: &str) -> Result<Option<MaskedCard>, Problem> {
    let row: Option<Row> = db
        .first(
            crate::sql!("SELECT brand, last4, exp_month, exp_year, created_at FROM payment_methods WHERE source_order_id = ?"),
            params![order_id],
        )
        .await?;
    Ok(row.map(Into::into))
}

pub struct NewPaymentMethod<'a> {
    pub id: &'a str,
    pub customer_ref: &'a str,
    pub source_order_id: &'a str,
    pub card: &'a MaskedCard,
    /// False when a newer card is already on file: this one is recorded as replaced at once.
    pub becomes_active: bool,
    pub now: i64,
}

/// Records a tokenized card; with `becomes_active` it retires the customer's previous card.
pub fn record(pm: &NewPaymentMethod<'_>) -> Vec<Stmt> {
    let status = if pm.becomes_active {
        "active"
    } else {
        "replaced"
    };
    let mut statements = Vec::new();
    if pm.becomes_active {
        statements.push(stmt(
            crate::sql!(
                "UPDATE payment_methods SET status = 'replaced', ended_at = ?
             WHERE customer_ref = ? AND status = 'active' AND source_order_id != ?"
            ),
            params![pm.now, pm.customer_ref, pm.source_order_id],
        ));
    }
    statements.push(stmt(
        crate::sql!("INSERT INTO payment_methods (id, customer_ref, source_order_id, brand, last4, exp_month,
             exp_year, status, created_at, ended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_order_id) DO NOTHING"),
        params![
            pm.id,
            pm.customer_ref,
            pm.source_order_id,
            pm.card.brand.as_deref(),
            pm.card.last4.as_deref(),
            pm.card.exp_month.map(i64::from),
            pm.card.exp_year.map(i64::from),
            status,
            pm.now,
            (!pm.becomes_active).then_some(pm.now)
        ],
    ));
    statements
}

/// The customer's card is forgotten: the ledger keeps the history, marked removed.
pub async fn mark_removed(db: Db<'_>, customer_ref: &str, now: i64) -> Result<usize, Problem> {
    db.run(
        crate::sql!(
            "UPDATE payment_methods SET status = 'removed', ended_at = ?
         WHERE customer_ref = ? AND status = 'active'"
        ),
        params![now, customer_ref],
    )
    .await
}
