//! Reads the dashboard needs beyond the merchant API's: finding customers, a charge's attempts
//! and orders, a customer's refunds and events, and the overview's series and counts. Each is
//! one query over an index, bounded by a limit.

use super::db::Db;
use super::events::EventRow;
use super::refunds::RefundRow;
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct CustomerRow {
        pub customer_ref: String,
        pub email: Option<String>,
        pub name: Option<String>,
        pub created_at: i64,
    }
}

/// Customers whose reference or email starts with `q` (the email compared in lowercase).
pub async fn search_customers(
    db: Db<'_>,
    q: &str,
    limit: u32,
) -> Result<Vec<CustomerRow>, Problem> {
    // A prefix as an index range: [q, q + U+FFFF).
    let end = format!("{q}\u{ffff}");
    let lower = q.to_lowercase();
    let lower_end = format!("{lower}\u{ffff}");
    let sql = crate::sql!(
        "SELECT customer_ref, email, name, created_at FROM customers
           WHERE customer_ref >= ?1 AND customer_ref < ?2
         UNION
         SELECT customer_ref, email, name, created_at FROM customers
           WHERE email >= ?3 AND email < ?4
         ORDER BY customer_ref LIMIT ?5"
    );
    db.all(sql, params![q, end, lower, lower_end, limit]).await
}

pub async fn customer(db: Db<'_>, customer_ref: &str) -> Result<Option<CustomerRow>, Problem> {
    let sql = crate::sql!(
        "SELECT customer_ref, email, name, created_at FROM customers WHERE customer_ref = ?"
    );
    db.first(sql, params![customer_ref]).await
}

crate::row! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct AttemptRow {
        pub attempt: u32,
        pub order_id: Option<String>,
        pub payment_id: Option<String>,
        pub status: String,
        pub failure_reason: Option<String>,
        pub decline_class: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

/// A charge's attempts, first first.
pub async fn attempts(db: Db<'_>, charge_id: &str) -> Result<Vec<AttemptRow>, Problem> {
    let sql = crate::sql!(
        "SELECT attempt, order_id, payment_id, status, failure_reason, decline_class,
           created_at, updated_at
         FROM charge_attempts WHERE charge_id = ? ORDER BY attempt"
    );
    db.all(sql, params![charge_id]).await
}

crate::row! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct OrderRow {
        pub order_id: String,
        /// open, fenced (given up, still watched) or closed.
        pub status: String,
        pub created_at: i64,
        pub checks: u32,
    }
}

/// The provider orders a charge used, oldest first.
pub async fn orders(db: Db<'_>, charge_id: &str) -> Result<Vec<OrderRow>, Problem> {
    let sql = crate::sql!(
        "SELECT order_id, status, created_at, checks FROM provider_orders
         WHERE owner_kind = 'charge' AND owner_id = ? ORDER BY created_at"
    );
    db.all(sql, params![charge_id]).await
}

const REFUND_COLUMNS: &str = "r.id, r.charge_id, r.amount, r.currency, r.status, r.order_id, \
    r.purchase_order_id, r.reverses_payment_id, r.failure_reason, r.lease_until, r.created_at, \
    r.updated_at, r.settled_at, r.method, r.stage, r.next_attempt_at, r.transaction_id, \
    r.settlement_status, r.provider_payout, r.payout_ref, r.settlement_date";

/// A customer's refunds, newest first.
pub async fn refunds_of(
    db: Db<'_>,
    customer_ref: &str,
    limit: u32,
) -> Result<Vec<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        REFUND_COLUMNS,
        " FROM refunds r JOIN charges c ON c.id = r.charge_id
         WHERE c.customer_ref = ? ORDER BY r.created_at DESC LIMIT ?"
    );
    db.all(sql, params![customer_ref, limit]).await
}

const EVENT_COLUMNS: &str = "seq, id, type AS kind, resource, resource_id, snapshot, created_at, \
    delivery, attempts, round_base, last_error, delivered_at";

/// The events of the given resources (`ids` as a JSON array), newest first.
pub async fn events_of(db: Db<'_>, ids_json: &str, limit: u32) -> Result<Vec<EventRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        EVENT_COLUMNS,
        " FROM events WHERE resource_id IN (SELECT value FROM json_each(?))
         ORDER BY seq DESC LIMIT ?"
    );
    db.all(sql, params![ids_json, limit]).await
}

crate::row! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Bucket {
        /// `YYYY-MM-DD` or `YYYY-MM`.
        pub key: String,
        pub n: u32,
        pub amount: i64,
        pub fees: i64,
    }
}

/// Succeeded charges (`charges`) or refunds (`refunds`) in `[from, to)` by day or month.
pub async fn series(
    db: Db<'_>,
    of_refunds: bool,
    monthly: bool,
    from: i64,
    to: i64,
    currency: &str,
) -> Result<Vec<Bucket>, Problem> {
    let format = if monthly { "%Y-%m" } else { "%Y-%m-%d" };
    let sql = if of_refunds {
        crate::sql!(
            "SELECT strftime(?1, settled_at / 1000, 'unixepoch') AS key, COUNT(*) AS n,
               COALESCE(SUM(amount), 0) AS amount, 0 AS fees
             FROM refunds WHERE status = 'succeeded' AND settled_at >= ?2 AND settled_at < ?3
               AND currency = ?4
             GROUP BY key ORDER BY key"
        )
    } else {
        crate::sql!(
            "SELECT strftime(?1, settled_at / 1000, 'unixepoch') AS key, COUNT(*) AS n,
               COALESCE(SUM(amount), 0) AS amount, COALESCE(SUM(fee), 0) AS fees
             FROM charges WHERE status = 'succeeded' AND settled_at >= ?2 AND settled_at < ?3
               AND currency = ?4
             GROUP BY key ORDER BY key"
        )
    };
    db.all(sql, params![format, from, to, currency]).await
}

crate::row! {
    #[derive(Debug, Clone, Default)]
    pub struct Attention {
        /// Open charges an operator must look at.
        pub charges: u32,
        /// Events whose delivery failed for good.
        pub events_failed: u32,
        /// Events being retried after a failed attempt.
        pub events_retrying: u32,
    }
}

pub async fn attention(db: Db<'_>) -> Result<Attention, Problem> {
    let sql = crate::sql!(
        "SELECT
           (SELECT COUNT(*) FROM charges WHERE status IN ('processing', 'pending')
              AND attention IS NOT NULL) AS charges,
           (SELECT COUNT(*) FROM events WHERE delivery = 'failed') AS events_failed,
           (SELECT COUNT(*) FROM events WHERE delivery IN ('pending', 'queued')
              AND attempts > 0) AS events_retrying"
    );
    Ok(db.first(sql, params![]).await?.unwrap_or_default())
}
