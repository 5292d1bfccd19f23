//! Checkout rows: the customer-present, tokenizing first payment.

use serde::Deserialize;

use super::db::{Db, Stmt, stmt};
use crate::catalog::Plan;
use crate::http::problem::Problem;
use crate::params;

#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutRow {
    pub id: String,
    pub customer_ref: String,
    pub plan_id: String,
    /// JSON of the plan as priced when the checkout started.
    pub plan: String,
    pub installments: Option<u32>,
    pub amount: i64,
    pub currency: String,
    pub order_id: Option<String>,
    pub payment_page_url: Option<String>,
    pub return_url: String,
    pub cancel_url: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub subscription_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
}

const COLUMNS: &str = "id, customer_ref, plan_id, plan, installments, amount, currency, order_id, \
    payment_page_url, return_url, cancel_url, status, failure_reason, subscription_id, \
    created_at, updated_at, completed_at";

pub struct NewCheckout<'a> {
    pub id: &'a str,
    pub customer_ref: &'a str,
    pub plan: &'a Plan,
    pub installments: Option<u32>,
    pub amount: i64,
    pub currency: &'a str,
    pub return_url: &'a str,
    pub cancel_url: &'a str,
    pub now: i64,
}

/// The insert of a new checkout in state `creating`; with `if_won` (see
/// `idempotency::if_won_params`) it only happens if this request won the idempotency claim.
pub fn insert(c: &NewCheckout<'_>, if_won: Option<Vec<super::db::P>>) -> Stmt {
    let plan_json = serde_json::to_string(c.plan).unwrap_or_default();
    let mut params = params![
        c.id,
        c.customer_ref,
        &c.plan.id,
        plan_json,
        c.installments,
        c.amount,
        c.currency,
        c.return_url,
        c.cancel_url,
        c.now,
        c.now
    ];
    match if_won {
        None => stmt(
            "INSERT INTO checkouts (id, customer_ref, plan_id, plan, installments, amount, currency,
                 return_url, cancel_url, status, created_at, updated_at)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?",
            params,
        ),
        Some(extra) => {
            params.extend(extra);
            stmt(
                "INSERT INTO checkouts (id, customer_ref, plan_id, plan, installments, amount, currency,
                     return_url, cancel_url, status, created_at, updated_at)
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?
                 WHERE EXISTS (SELECT 1 FROM idempotency_keys
                               WHERE scope = ? AND key = ? AND resource_id = ?)",
                params,
            )
        }
    }
}

pub fn upsert_customer(
    customer_ref: &str,
    email: Option<&str>,
    name: Option<&str>,
    now: i64,
) -> Stmt {
    stmt(
        "INSERT INTO customers (customer_ref, email, name, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (customer_ref) DO UPDATE SET
           email = COALESCE(excluded.email, customers.email),
           name = COALESCE(excluded.name, customers.name),
           updated_at = excluded.updated_at",
        params![customer_ref, email, name, now, now],
    )
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<CheckoutRow>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM checkouts WHERE id = ?");
    db.first(&sql, params![id]).await
}

/// Records the provider order; false when another request already recorded one.
pub async fn set_order(
    db: Db<'_>,
    id: &str,
    order_id: &str,
    page_url: &str,
    now: i64,
) -> Result<bool, Problem> {
    let changes = db
        .batch(vec![
            stmt(
                "UPDATE checkouts SET order_id = ?, payment_page_url = ?, status = 'pending',
                     updated_at = ?
                 WHERE id = ? AND order_id IS NULL AND status = 'creating'",
                params![order_id, page_url, now, id],
            ),
            stmt(
                "INSERT INTO provider_orders (order_id, owner_kind, owner_id, created_at)
                 VALUES (?, 'checkout', ?, ?) ON CONFLICT (order_id) DO NOTHING",
                params![order_id, id, now],
            ),
        ])
        .await?;
    Ok(changes.first() == Some(&1))
}

/// Marks a checkout failed unless it already ended (final states are never overwritten).
pub async fn mark_failed(db: Db<'_>, id: &str, reason: &str, now: i64) -> Result<bool, Problem> {
    let changes = db
        .run(
            "UPDATE checkouts SET status = 'failed', failure_reason = ?, completed_at = ?,
                 updated_at = ?
             WHERE id = ? AND status IN ('creating', 'pending')",
            params![reason, now, now, id],
        )
        .await?;
    Ok(changes == 1)
}

/// Pending checkouts to ask the provider about: the cron's safety net for lost webhooks.
pub async fn stale_pending(
    db: Db<'_>,
    older_than: i64,
    limit: u32,
) -> Result<Vec<CheckoutRow>, Problem> {
    let sql = format!(
        "SELECT {COLUMNS} FROM checkouts WHERE status = 'pending' AND updated_at < ?
         ORDER BY updated_at LIMIT ?"
    );
    db.all(&sql, params![older_than, limit]).await
}

/// Touches a still-pending checkout so the reconciler moves on to others.
pub async fn touch(db: Db<'_>, id: &str, now: i64) -> Result<(), Problem> {
    db.run(
        "UPDATE checkouts SET updated_at = ? WHERE id = ? AND status = 'pending'",
        params![now, id],
    )
    .await?;
    Ok(())
}

impl CheckoutRow {
    /// The plan as the customer was shown it; a later edit of the catalog does not change it.
    pub fn plan(&self) -> Result<Plan, Problem> {
        serde_json::from_str(&self.plan)
            .map_err(|_| Problem::internal("A checkout's plan snapshot is unreadable."))
    }
}
