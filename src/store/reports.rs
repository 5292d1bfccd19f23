//! The ledger's figures for the merchant's reports. Each is one aggregate query over an index
//! range (charges and refunds by the time they reached their final state, payouts by date),
//! so a report costs a handful of queries whatever the range holds.

use super::db::Db;
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone, Default)]
    pub struct ChargeTotals {
        pub succeeded: u32,
        pub gross: i64,
        pub fees: i64,
        /// Succeeded charges whose settlement (and so fee) is known.
        pub settled: u32,
        /// Succeeded after at least one declined attempt (dunning recovered them).
        pub recovered: u32,
        pub recovered_amount: i64,
    }
}

pub async fn charge_totals(
    db: Db<'_>,
    from: i64,
    to: i64,
    currency: &str,
) -> Result<ChargeTotals, Problem> {
    let sql = crate::sql!(
        "SELECT
           COUNT(CASE WHEN status = 'succeeded' THEN 1 END) AS succeeded,
           COALESCE(SUM(CASE WHEN status = 'succeeded' THEN amount END), 0) AS gross,
           COALESCE(SUM(CASE WHEN status = 'succeeded' THEN fee END), 0) AS fees,
           COUNT(CASE WHEN status = 'succeeded' AND settlement_status IN ('settled', 'voided')
                 THEN 1 END) AS settled,
           COUNT(CASE WHEN status = 'succeeded' AND first_failed_at IS NOT NULL THEN 1 END)
             AS recovered,
           COALESCE(SUM(CASE WHEN status = 'succeeded' AND first_failed_at IS NOT NULL
                        THEN amount END), 0) AS recovered_amount
         FROM charges WHERE settled_at >= ? AND settled_at < ? AND currency = ?"
    );
    Ok(db
        .first(sql, params![from, to, currency])
        .await?
        .unwrap_or_default())
}

impl ChargeTotals {
    /// Another shard's totals added to these.
    pub fn add(&mut self, other: &ChargeTotals) {
        self.succeeded += other.succeeded;
        self.gross += other.gross;
        self.fees += other.fees;
        self.settled += other.settled;
        self.recovered += other.recovered;
        self.recovered_amount += other.recovered_amount;
    }
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct Count {
        pub key: Option<String>,
        pub n: u32,
        pub amount: i64,
    }
}

/// Charges whose latest attempt failed in the range (by when it failed: a failed charge has
/// no `settled_at`), by reason.
pub async fn failures_by_reason(
    db: Db<'_>,
    from: i64,
    to: i64,
    currency: &str,
) -> Result<Vec<Count>, Problem> {
    let sql = crate::sql!(
        "SELECT failure_reason AS key, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount
         FROM charges
         WHERE status = 'failed' AND updated_at >= ? AND updated_at < ? AND currency = ?
         GROUP BY failure_reason ORDER BY n DESC, key"
    );
    db.all(sql, params![from, to, currency]).await
}

/// Succeeded refunds in the range, by method (void, return).
pub async fn refunds_by_method(
    db: Db<'_>,
    from: i64,
    to: i64,
    currency: &str,
) -> Result<Vec<Count>, Problem> {
    let sql = crate::sql!(
        "SELECT COALESCE(method, 'return') AS key, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount
         FROM refunds
         WHERE settled_at >= ? AND settled_at < ? AND currency = ? AND status = 'succeeded'
         GROUP BY COALESCE(method, 'return') ORDER BY key"
    );
    db.all(sql, params![from, to, currency]).await
}

crate::row! {
    #[derive(Debug, Clone, Default)]
    pub struct PaidOut {
        pub payouts: u32,
        pub amount: i64,
    }
}

/// Payouts settled on dates in `[from_date, to_date)`: their number and what the provider paid.
pub async fn paid_out(
    db: Db<'_>,
    from_date: &str,
    to_date: &str,
    currency: &str,
) -> Result<PaidOut, Problem> {
    let sql = crate::sql!(
        "SELECT COUNT(*) AS payouts,
           COALESCE(SUM(
             (SELECT COALESCE(SUM(c.provider_payout), 0) FROM charges c
               WHERE c.payout_ref = p.payout_ref)
             + (SELECT COALESCE(SUM(r.provider_payout), 0) FROM refunds r
               WHERE r.payout_ref = p.payout_ref)), 0) AS amount
         FROM payouts p
         WHERE p.settlement_date >= ? AND p.settlement_date < ? AND p.currency = ?"
    );
    Ok(db
        .first(sql, params![from_date, to_date, currency])
        .await?
        .unwrap_or_default())
}

/// The references of the payouts [`paid_out`] counts (a sharded ledger counts them once).
pub async fn payout_refs(
    db: Db<'_>,
    from_date: &str,
    to_date: &str,
    currency: &str,
) -> Result<Vec<String>, Problem> {
    crate::row! {
        struct Ref {
            payout_ref: String,
        }
    }
    let sql = crate::sql!(
        "SELECT payout_ref FROM payouts
         WHERE settlement_date >= ? AND settlement_date < ? AND currency = ?"
    );
    let refs: Vec<Ref> = db.all(sql, params![from_date, to_date, currency]).await?;
    Ok(refs.into_iter().map(|r| r.payout_ref).collect())
}

/// Subscriptions by the status they had just before `at` (the last transition before it).
pub async fn subscriptions_by_status(
    db: Db<'_>,
    at: i64,
    currency: &str,
) -> Result<Vec<Count>, Problem> {
    let sql = crate::sql!(
        "SELECT e.to_status AS key, COUNT(*) AS n, 0 AS amount
         FROM subscriptions s
         JOIN subscription_events e ON e.id = (
           SELECT MAX(e2.id) FROM subscription_events e2
           WHERE e2.subscription_id = s.id AND e2.at < ?)
         WHERE s.currency = ?
         GROUP BY e.to_status ORDER BY e.to_status"
    );
    db.all(sql, params![at, currency]).await
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct PriceGroup {
        pub amount: i64,
        pub interval_unit: String,
        pub interval_count: u32,
        pub n: u32,
    }
}

/// Recurring subscriptions billing just before `at` (active or past due), grouped by price.
pub async fn recurring_prices(
    db: Db<'_>,
    at: i64,
    currency: &str,
) -> Result<Vec<PriceGroup>, Problem> {
    let sql = crate::sql!(
        "SELECT s.amount, s.interval_unit, s.interval_count, COUNT(*) AS n
         FROM subscriptions s
         JOIN subscription_events e ON e.id = (
           SELECT MAX(e2.id) FROM subscription_events e2
           WHERE e2.subscription_id = s.id AND e2.at < ?)
         WHERE s.currency = ? AND s.kind = 'recurring' AND e.to_status IN ('active', 'past_due')
         GROUP BY s.amount, s.interval_unit, s.interval_count"
    );
    db.all(sql, params![at, currency]).await
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct ExportRow {
        /// charge or refund.
        pub kind: String,
        pub id: String,
        pub charge_id: String,
        pub charge_kind: String,
        pub customer_ref: String,
        pub subscription_id: Option<String>,
        pub status: String,
        pub amount: i64,
        pub currency: String,
        pub failure_reason: Option<String>,
        pub method: Option<String>,
        pub created_at: i64,
        pub settled_at: i64,
        pub fee: Option<i64>,
        pub net: Option<i64>,
        pub settlement_status: Option<String>,
        pub payout_ref: Option<String>,
        pub settlement_date: Option<String>,
        pub transaction_id: Option<String>,
        pub order_id: Option<String>,
        /// Charges: what a coupon took off the price.
        pub discount_amount: Option<i64>,
        pub coupon_id: Option<String>,
    }
}

/// Succeeded charges in `[from, to)` after `(settled_at, id)`, in that order.
pub async fn export_charges(
    db: Db<'_>,
    from: i64,
    to: i64,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<ExportRow>, Problem> {
    let sql = crate::sql!(
        "SELECT 'charge' AS kind, id, id AS charge_id, kind AS charge_kind, customer_ref,
           subscription_id, status, amount, currency, failure_reason, NULL AS method,
           created_at, settled_at, fee, net, settlement_status, payout_ref, settlement_date,
           transaction_id, order_id, discount_amount, coupon_id
         FROM charges
         WHERE settled_at >= ? AND settled_at < ? AND status = 'succeeded'
           AND (settled_at > ? OR (settled_at = ? AND id > ?))
         ORDER BY settled_at, id LIMIT ?"
    );
    db.all(sql, params![from, to, after.0, after.0, after.1, limit])
        .await
}

/// Failed charges whose latest attempt failed in `[from, to)` after `(updated_at, id)`.
pub async fn export_failed_charges(
    db: Db<'_>,
    from: i64,
    to: i64,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<ExportRow>, Problem> {
    let sql = crate::sql!(
        "SELECT 'charge' AS kind, id, id AS charge_id, kind AS charge_kind, customer_ref,
           subscription_id, status, amount, currency, failure_reason, NULL AS method,
           created_at, updated_at AS settled_at, fee, net, settlement_status, payout_ref,
           settlement_date, transaction_id, order_id, discount_amount, coupon_id
         FROM charges
         WHERE status = 'failed' AND updated_at >= ? AND updated_at < ?
           AND (updated_at > ? OR (updated_at = ? AND id > ?))
         ORDER BY updated_at, id LIMIT ?"
    );
    db.all(sql, params![from, to, after.0, after.0, after.1, limit])
        .await
}

/// Final refunds in `[from, to)` after `(settled_at, id)`, in that order.
pub async fn export_refunds(
    db: Db<'_>,
    from: i64,
    to: i64,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<ExportRow>, Problem> {
    let sql = crate::sql!(
        "SELECT 'refund' AS kind, r.id, r.charge_id, c.kind AS charge_kind, c.customer_ref,
           c.subscription_id, r.status, r.amount, r.currency, r.failure_reason, r.method,
           r.created_at, r.settled_at, 0 AS fee, -r.amount AS net, r.settlement_status,
           r.payout_ref, r.settlement_date, r.transaction_id, r.order_id
         FROM refunds r JOIN charges c ON c.id = r.charge_id
         WHERE r.settled_at >= ? AND r.settled_at < ? AND r.status IN ('succeeded', 'failed')
           AND (r.settled_at > ? OR (r.settled_at = ? AND r.id > ?))
         ORDER BY r.settled_at, r.id LIMIT ?"
    );
    db.all(sql, params![from, to, after.0, after.0, after.1, limit])
        .await
}
