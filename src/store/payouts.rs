//! Payouts: the provider's settlement references, with totals computed from the charges and
//! refunds that carry them (never stored twice, so they cannot disagree with the ledger).

use super::db::Db;
use crate::params;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct PayoutRow {
        pub payout_ref: String,
        pub currency: String,
        pub settlement_date: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub charges: u32,
        /// Σ amount of its charges.
        pub gross: i64,
        pub fees: i64,
        /// Σ (amount − fee) of its charges.
        pub charges_net: i64,
        pub refunds: u32,
        /// Σ amount of its refunds.
        pub refunded: i64,
        /// Σ of the payouts the provider reported for its transactions.
        pub reported: i64,
    }
}

const SELECT: &str = "SELECT p.payout_ref, p.currency, p.settlement_date, p.created_at, p.updated_at,
    (SELECT COUNT(*) FROM charges c WHERE c.payout_ref = p.payout_ref) AS charges,
    (SELECT COALESCE(SUM(c.amount), 0) FROM charges c WHERE c.payout_ref = p.payout_ref) AS gross,
    (SELECT COALESCE(SUM(c.fee), 0) FROM charges c WHERE c.payout_ref = p.payout_ref) AS fees,
    (SELECT COALESCE(SUM(c.net), 0) FROM charges c WHERE c.payout_ref = p.payout_ref) AS charges_net,
    (SELECT COUNT(*) FROM refunds r WHERE r.payout_ref = p.payout_ref) AS refunds,
    (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payout_ref = p.payout_ref) AS refunded,
    (SELECT COALESCE(SUM(c.provider_payout), 0) FROM charges c WHERE c.payout_ref = p.payout_ref)
      + (SELECT COALESCE(SUM(r.provider_payout), 0) FROM refunds r WHERE r.payout_ref = p.payout_ref)
      AS reported
  FROM payouts p";

/// Newest settlement date first, after the payout `before` (keyset paging).
pub async fn list(
    db: Db<'_>,
    before: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<PayoutRow>, Problem> {
    match before {
        None => {
            let sql = crate::sql!(
                SELECT,
                " ORDER BY p.settlement_date DESC, p.payout_ref DESC LIMIT ?"
            );
            db.all(sql, params![limit]).await
        }
        Some((date, reference)) => {
            let sql = crate::sql!(
                SELECT,
                " WHERE p.settlement_date < ? OR (p.settlement_date = ? AND p.payout_ref < ?)
                  ORDER BY p.settlement_date DESC, p.payout_ref DESC LIMIT ?"
            );
            db.all(sql, params![date, date, reference, limit]).await
        }
    }
}

pub async fn get(db: Db<'_>, payout_ref: &str) -> Result<Option<PayoutRow>, Problem> {
    let sql = crate::sql!(SELECT, " WHERE p.payout_ref = ?");
    db.first(sql, params![payout_ref]).await
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct PayoutLine {
        /// charge or refund.
        pub kind: String,
        pub id: String,
        pub charge_id: String,
        pub customer_ref: String,
        pub transaction_id: Option<String>,
        pub amount: i64,
        pub fee: Option<i64>,
        pub net: Option<i64>,
        pub reported: Option<i64>,
    }
}

/// The charges and refunds of a payout, charges first.
pub async fn lines(db: Db<'_>, payout_ref: &str) -> Result<Vec<PayoutLine>, Problem> {
    let sql = crate::sql!(
        "SELECT 'charge' AS kind, c.id, c.id AS charge_id, c.customer_ref, c.transaction_id,
           c.amount, c.fee, c.net, c.provider_payout AS reported
         FROM charges c WHERE c.payout_ref = ?
         UNION ALL
         SELECT 'refund' AS kind, r.id, r.charge_id, c.customer_ref, r.transaction_id,
           r.amount, 0 AS fee, -r.amount AS net, r.provider_payout AS reported
         FROM refunds r JOIN charges c ON c.id = r.charge_id WHERE r.payout_ref = ?
         ORDER BY kind, id"
    );
    db.all(sql, params![payout_ref, payout_ref]).await
}
