//! Following each succeeded charge and each returned refund until the provider has settled its
//! transaction, and recording what it settled: fee, net, payout reference and date. Every
//! write is conditional on the row still being unsettled, so a second reader changes nothing.

use super::db::{Db, Stmt, stmt};
use super::incidents::{self, NewIncident};
use crate::params;
use recurring_core::http::problem::Problem;

/// A money movement the provider will settle: a charge's purchase or a refund's return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Charge,
    Refund,
}

crate::row! {
    #[derive(Debug, Clone)]
    pub struct Followed {
        pub id: String,
        pub customer_ref: String,
        /// The provider order the transaction is on.
        pub order_id: Option<String>,
        /// The payment whose transaction it is (charges; a return order has one payment).
        pub payment_id: Option<String>,
        pub amount: i64,
        pub currency: String,
        /// When the money moved (business time).
        pub completed_at: i64,
        pub settlement_checks: u32,
        /// Charges: the renewal whose receipt may be emailed once settled.
        pub kind: Option<String>,
    }
}

/// Due reads, oldest first.
pub async fn due(db: Db<'_>, of: Of, now: i64, limit: u32) -> Result<Vec<Followed>, Problem> {
    match of {
        Of::Charge => {
            let sql = crate::sql!(
                "SELECT id, customer_ref, order_id, payment_id, amount, currency,
                   COALESCE(settled_at, updated_at) AS completed_at, settlement_checks, kind
                 FROM charges
                 WHERE settlement_status IN ('pending', 'processed', 'error')
                   AND settlement_check_at <= ?
                 ORDER BY settlement_check_at LIMIT ?"
            );
            db.all(sql, params![now, limit]).await
        }
        Of::Refund => {
            let sql = crate::sql!(
                "SELECT r.id, c.customer_ref, r.order_id, NULL AS payment_id, r.amount, r.currency,
                   COALESCE(r.settled_at, r.updated_at) AS completed_at, r.settlement_checks,
                   NULL AS kind
                 FROM refunds r JOIN charges c ON c.id = r.charge_id
                 WHERE r.settlement_status IN ('pending', 'processed', 'error')
                   AND r.settlement_check_at <= ?
                 ORDER BY r.settlement_check_at LIMIT ?"
            );
            db.all(sql, params![now, limit]).await
        }
    }
}

/// The next read of a movement not settled yet, with the stage the provider showed (`None`:
/// not shown) and the transaction id once known.
pub fn schedule(
    of: Of,
    id: &str,
    status: Option<&str>,
    transaction_id: Option<&str>,
    check_at: i64,
) -> Stmt {
    match of {
        Of::Charge => stmt(
            crate::sql!(
                "UPDATE charges SET settlement_status = COALESCE(?, settlement_status),
                   transaction_id = COALESCE(transaction_id, ?), settlement_check_at = ?,
                   settlement_checks = settlement_checks + 1
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![status, transaction_id, check_at, id],
        ),
        Of::Refund => stmt(
            crate::sql!(
                "UPDATE refunds SET settlement_status = COALESCE(?, settlement_status),
                   transaction_id = COALESCE(transaction_id, ?), settlement_check_at = ?,
                   settlement_checks = settlement_checks + 1
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![status, transaction_id, check_at, id],
        ),
    }
}

/// What the provider settled for one movement.
pub struct Settled<'a> {
    pub of: Of,
    pub id: &'a str,
    pub transaction_id: &'a str,
    pub fee: i64,
    pub net: i64,
    pub provider_payout: i64,
    pub payout_ref: &'a str,
    pub settlement_date: &'a str,
    pub currency: &'a str,
    pub now: i64,
}

/// Records a settled movement, and its payout if it is the first of it we see, in one batch.
pub fn record(s: &Settled<'_>) -> Vec<Stmt> {
    let movement = match s.of {
        Of::Charge => stmt(
            crate::sql!(
                "UPDATE charges SET settlement_status = 'settled', transaction_id = ?, fee = ?,
                   net = ?, provider_payout = ?, payout_ref = ?, settlement_date = ?,
                   settlement_check_at = NULL, settlement_checks = settlement_checks + 1,
                   updated_at = ?
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![
                s.transaction_id,
                s.fee,
                s.net,
                s.provider_payout,
                s.payout_ref,
                s.settlement_date,
                s.now,
                s.id
            ],
        ),
        Of::Refund => stmt(
            crate::sql!(
                "UPDATE refunds SET settlement_status = 'settled', transaction_id = ?,
                   provider_payout = ?, payout_ref = ?, settlement_date = ?,
                   settlement_check_at = NULL, settlement_checks = settlement_checks + 1
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![
                s.transaction_id,
                s.provider_payout,
                s.payout_ref,
                s.settlement_date,
                s.id
            ],
        ),
    };
    vec![
        movement,
        stmt(
            crate::sql!(
                "INSERT INTO payouts (payout_ref, currency, settlement_date, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (payout_ref) DO UPDATE SET updated_at = excluded.updated_at"
            ),
            params![s.payout_ref, s.currency, s.settlement_date, s.now, s.now],
        ),
    ]
}

/// The provider's figures for a settled movement do not add up: an incident naming the
/// payout and the transaction, once per transaction.
pub fn discrepancy(s: &Settled<'_>, customer_ref: &str, amount: i64, detail: &str) -> Stmt {
    let (charge_id, refund_id) = match s.of {
        Of::Charge => (Some(s.id), None),
        Of::Refund => (None, Some(s.id)),
    };
    incidents::record(&NewIncident {
        key: format!("settlement:{}", s.transaction_id),
        kind: "settlementMismatch",
        charge_id,
        refund_id,
        customer_ref: Some(customer_ref),
        amount: Some(amount),
        currency: Some(s.currency),
        detail: format!(
            "Payout {} (settled {}), transaction {}: {detail}.",
            s.payout_ref, s.settlement_date, s.transaction_id
        ),
        now: s.now,
        ..NewIncident::default()
    })
}

/// The charge's receipt URL, once the provider gave it.
pub async fn set_receipt_url(db: Db<'_>, charge_id: &str, url: &str) -> Result<(), Problem> {
    db.run(
        crate::sql!("UPDATE charges SET receipt_url = ? WHERE id = ? AND receipt_url IS NULL"),
        params![url, charge_id],
    )
    .await?;
    Ok(())
}

/// Claims the automatic receipt email of a settled charge: true for the one caller that sends.
pub async fn claim_receipt_email(db: Db<'_>, charge_id: &str, now: i64) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE charges SET receipt_emailed_at = ?
             WHERE id = ? AND receipt_emailed_at IS NULL AND settlement_status = 'settled'"
            ),
            params![now, charge_id],
        )
        .await?;
    Ok(changes > 0)
}

/// Gives the claim back when the email could not be sent, so a later tick tries again.
pub async fn release_receipt_email(db: Db<'_>, charge_id: &str, at: i64) -> Result<(), Problem> {
    db.run(
        crate::sql!(
            "UPDATE charges SET receipt_emailed_at = NULL WHERE id = ? AND receipt_emailed_at = ?"
        ),
        params![charge_id, at],
    )
    .await?;
    Ok(())
}

/// The provider's settlement of a transaction failed: an incident, once per transaction (the
/// provider retries it at a later batch, and the movement is followed until then).
pub fn settlement_error(of: Of, id: &str, transaction_id: &str, row: &Followed, now: i64) -> Stmt {
    let (charge_id, refund_id) = match of {
        Of::Charge => (Some(id), None),
        Of::Refund => (None, Some(id)),
    };
    incidents::record(&NewIncident {
        key: format!("settlement-error:{transaction_id}"),
        kind: "settlementError",
        charge_id,
        refund_id,
        customer_ref: Some(&row.customer_ref),
        amount: Some(row.amount),
        currency: Some(&row.currency),
        detail: format!(
            "The provider reports its settlement of transaction {transaction_id} failed; it \
             is followed until a later batch settles it."
        ),
        now,
        ..NewIncident::default()
    })
}

/// The transaction was voided: it will never settle.
pub fn voided(of: Of, id: &str, now: i64) -> Stmt {
    match of {
        Of::Charge => stmt(
            crate::sql!(
                "UPDATE charges SET settlement_status = 'voided', settlement_check_at = NULL,
                   fee = 0, net = amount, updated_at = ?
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![now, id],
        ),
        // A return is never voided; a status that says so is kept out of the follow-up.
        Of::Refund => stmt(
            crate::sql!(
                "UPDATE refunds SET settlement_check_at = NULL
                 WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![id],
        ),
    }
}

crate::row! {
    struct Email {
        email: Option<String>,
    }
}

/// The customer's email, as their checkout gave it.
pub async fn customer_email(db: Db<'_>, customer_ref: &str) -> Result<Option<String>, Problem> {
    let row: Option<Email> = db
        .first(
            crate::sql!("SELECT email FROM customers WHERE customer_ref = ?"),
            params![customer_ref],
        )
        .await?;
    Ok(row.and_then(|r| r.email))
}
