//! Incidents: what happened that an operator or the merchant's finance team must know about
//! (a second payment refunded, an unexpected payment refunded, an order the provider lost, an
//! outcome nobody can tell). Each is one row per `incident_key`, whatever retries.

use super::db::{Db, Stmt, stmt};
use crate::ids::new_id;
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct IncidentRow {
        pub id: String,
        pub kind: String,
        pub charge_id: Option<String>,
        pub checkout_id: Option<String>,
        pub order_id: Option<String>,
        pub payment_id: Option<String>,
        pub refund_id: Option<String>,
        pub customer_ref: Option<String>,
        pub amount: Option<i64>,
        pub currency: Option<String>,
        pub detail: String,
        pub created_at: i64,
    }
}

const COLUMNS: &str = "id, kind, charge_id, checkout_id, order_id, payment_id, refund_id, \
    customer_ref, amount, currency, detail, created_at";

/// An incident about to be recorded. `key` names the thing that happened, so that recording
/// it again (a retry, a second tick) changes nothing.
#[derive(Debug, Default, Clone)]
pub struct NewIncident<'a> {
    pub key: String,
    pub kind: &'a str,
    pub charge_id: Option<&'a str>,
    pub checkout_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub refund_id: Option<&'a str>,
    pub customer_ref: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub detail: String,
    pub now: i64,
}

/// An incident's id carries the shard of what it is about (it is recorded in that shard).
fn incident_id(i: &NewIncident<'_>) -> String {
    let shard = [i.charge_id, i.checkout_id, i.refund_id]
        .into_iter()
        .flatten()
        .find_map(recurring_core::shards::shard_of_id)
        .unwrap_or(0);
    let id = new_id("inc");
    format!(
        "inc_{}{}",
        recurring_core::shards::id_infix(shard),
        &id["inc_".len()..]
    )
}

pub fn record(i: &NewIncident<'_>) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO incidents (id, incident_key, kind, charge_id, checkout_id, order_id,
             payment_id, refund_id, customer_ref, amount, currency, detail, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (incident_key) DO NOTHING"
        ),
        params![
            incident_id(i),
            i.key.as_str(),
            i.kind,
            i.charge_id,
            i.checkout_id,
            i.order_id,
            i.payment_id,
            i.refund_id,
            i.customer_ref,
            i.amount,
            i.currency,
            i.detail.as_str(),
            i.now
        ],
    )
}

/// Oldest first, after the incident `after` (keyset paging), optionally of one kind or charge.
pub async fn list(
    db: Db<'_>,
    after: Option<(i64, &str)>,
    kind: Option<&str>,
    charge_id: Option<&str>,
    limit: u32,
) -> Result<Vec<IncidentRow>, Problem> {
    let (after_at, after_id) = after.unwrap_or((i64::MIN, ""));
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM incidents
         WHERE (created_at > ?1 OR (created_at = ?1 AND id > ?2))
           AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR charge_id = ?4)
         ORDER BY created_at, id LIMIT ?5"
    );
    db.all(sql, params![after_at, after_id, kind, charge_id, limit])
        .await
}

/// The newest incidents first.
pub async fn recent(db: Db<'_>, limit: u32) -> Result<Vec<IncidentRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM incidents ORDER BY created_at DESC, id DESC LIMIT ?"
    );
    db.all(sql, params![limit]).await
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<IncidentRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM incidents WHERE id = ?");
    db.first(sql, params![id]).await
}

/// The kinds of incident recorded on a charge, oldest first.
pub async fn kinds_for_charge(db: Db<'_>, charge_id: &str) -> Result<Vec<String>, Problem> {
    crate::row! {
        struct Row {
            kind: String,
        }
    }
    let rows: Vec<Row> = db
        .all(
            crate::sql!("SELECT kind FROM incidents WHERE charge_id = ? ORDER BY created_at, id"),
            params![charge_id],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.kind).collect())
}
