//! Refund rows. The bound "never more than was captured minus earlier refunds" is enforced by
//! the database in the same statement that claims the refund, so concurrent refunds cannot
//! together exceed the charge.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::billing::refund_plan::Method;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct RefundRow {
        pub id: String,
        pub charge_id: String,
        pub amount: i64,
        pub currency: String,
        pub status: String,
        pub order_id: Option<String>,
        /// The purchase order whose money goes back.
        pub purchase_order_id: Option<String>,
        /// Set on automatic refunds of a payment nobody expected (a second payment of a charge, a
        /// payment on an order we had given up): that payment.
        pub reverses_payment_id: Option<String>,
        pub failure_reason: Option<String>,
        pub lease_until: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
        pub settled_at: Option<i64>,
        /// void or return, once decided.
        pub method: Option<String>,
        /// Where the refund stands: see `recurring_core::billing::refund_plan::Stage`.
        pub stage: Option<String>,
        /// When the purchase's status is read again (waiting refunds).
        pub next_attempt_at: Option<i64>,
        /// The return's own transaction and its settlement (returns only).
        pub transaction_id: Option<String>,
        pub settlement_status: Option<String>,
        pub provider_payout: Option<i64>,
        pub payout_ref: Option<String>,
        pub settlement_date: Option<String>,
    }
}

const COLUMNS: &str = "id, charge_id, amount, currency, status, order_id, purchase_order_id, \
    reverses_payment_id, failure_reason, lease_until, created_at, updated_at, settled_at, method, \
    stage, next_attempt_at, transaction_id, settlement_status, provider_payout, payout_ref, \
    settlement_date";

/// The refunds that return a charge's own payment: the merchant's, and the automatic refund of
/// a charge that exists only to record an unexpected payment. Refunds of a second payment of
/// the charge return other money and leave its refundable amount alone. Correlated on `c`.
macro_rules! own_refunds_sql {
    () => {
        "refunds r WHERE r.charge_id = c.id
           AND (r.reverses_payment_id IS NULL OR r.reverses_payment_id = c.payment_id)"
    };
}

/// What is left to refund on a charge: captured minus its own refunds that are not failed.
/// Binds the charge id once. A macro, so that the claim below can embed it in a static
/// statement.
macro_rules! remaining_sql {
    () => {
        concat!(
            "(SELECT c.amount - (SELECT COALESCE(SUM(r.amount), 0) FROM ",
            own_refunds_sql!(),
            " AND r.status != 'failed')
              FROM charges c WHERE c.id = ? AND c.status = 'succeeded')"
        )
    };
}

pub async fn remaining(db: Db<'_>, charge_id: &str) -> Result<i64, Problem> {
    crate::row! {
        struct Row {
            remaining: Option<i64>,
        }
    }
    let row: Option<Row> = db
        .first(
            crate::sql!(concat!("SELECT ", remaining_sql!(), " AS remaining")),
            params![charge_id],
        )
        .await?;
    Ok(row.and_then(|r| r.remaining).unwrap_or(0))
}

pub enum Claimed {
    Won,
    /// The key was used before; the refund it created.
    Replay(String),
    /// Not claimed: the amount is above what remains refundable.
    Exceeds,
}

/// Claims the idempotency key and inserts the refund in one transaction, only if `amount`
/// still fits in what remains of the charge.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    db: Db<'_>,
    key: &str,
    request_hash: &str,
    refund_id: &str,
    charge_id: &str,
    amount: i64,
    currency: &str,
    now: i64,
) -> Result<Claimed, Problem> {
    let claim_sql = crate::sql!(concat!(
        "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at)
         SELECT 'refund', ?, ?, ?, ?
         WHERE ",
        remaining_sql!(),
        " >= ?
         ON CONFLICT (scope, key) DO NOTHING"
    ));
    let changes = db
        .batch(vec![
            stmt(
                claim_sql,
                params![key, request_hash, refund_id, now, charge_id, amount],
            ),
            stmt(
                crate::sql!("INSERT INTO refunds (id, charge_id, amount, currency, status, purchase_order_id,
                     stage, next_attempt_at, created_at, updated_at)
                 SELECT ?, ?, ?, ?, 'processing', (SELECT order_id FROM charges WHERE id = ?), 'new',
                     ?, ?, ?
                 WHERE EXISTS (SELECT 1 FROM idempotency_keys
                               WHERE scope = 'refund' AND key = ? AND resource_id = ?)"),
                params![
                    refund_id, charge_id, amount, currency, charge_id, now, now, now, key, refund_id
                ],
            ),
        ])
        .await?;
    if changes.first().is_some_and(|&n| n > 0) {
        return Ok(Claimed::Won);
    }
    match super::idempotency::existing(db, "refund", key, request_hash).await? {
        Some(id) => Ok(Claimed::Replay(id)),
        None => Ok(Claimed::Exceeds),
    }
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<RefundRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM refunds WHERE id = ?");
    db.first(sql, params![id]).await
}

pub async fn list_for_charge(db: Db<'_>, charge_id: &str) -> Result<Vec<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM refunds WHERE charge_id = ? ORDER BY created_at, id"
    );
    db.all(sql, params![charge_id]).await
}

/// Claims a void: the refund moves to `voiding` before the call. Voiding again (an answer
/// lost, a void not shown yet) is allowed: a void moves no money twice. Never after a return
/// order was claimed.
pub async fn take_void(db: Db<'_>, id: &str, now: i64) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE refunds SET stage = 'voiding', method = 'void', status = 'pending',
                 next_attempt_at = ?, updated_at = ?
             WHERE id = ? AND stage IN ('new', 'voiding')"
            ),
            params![now + VOID_RECHECK_MS, now, id],
        )
        .await?;
    Ok(changes > 0)
}

/// A void whose outcome is not known yet is read again after this long.
pub const VOID_RECHECK_MS: i64 = 60_000;

/// Nothing is sent: the refund waits for the purchase to settle, read again at `next_at`.
pub async fn await_settlement(
    db: Db<'_>,
    id: &str,
    next_at: i64,
    now: i64,
) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE refunds SET stage = 'awaiting_settlement', method = 'return',
                 status = 'pending', next_attempt_at = ?, updated_at = ?
             WHERE id = ? AND stage IN ('new', 'voiding', 'awaiting_settlement')"
            ),
            params![next_at, now, id],
        )
        .await?;
    Ok(changes > 0)
}

/// Only one process ever creates the return order of a refund: the one that moves it to
/// `returning`. A crash after this leaves it without an order, for an operator or the order's
/// webhook to resolve; creating a second return order could refund twice.
pub async fn take_return(db: Db<'_>, id: &str, now: i64) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE refunds SET stage = 'returning', method = 'return', status = 'pending',
                 next_attempt_at = NULL, updated_at = ?
             WHERE id = ? AND stage = 'awaiting_settlement'"
            ),
            params![now, id],
        )
        .await?;
    Ok(changes > 0)
}

/// The provider answered the return order with a refusal that moved no money because the
/// purchase is not settled in its eyes (its status lags): the refund waits again.
pub async fn return_refused_unsettled(
    db: Db<'_>,
    id: &str,
    next_at: i64,
    now: i64,
) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE refunds SET stage = 'awaiting_settlement', next_attempt_at = ?,
                 updated_at = ?
             WHERE id = ? AND stage = 'returning' AND order_id IS NULL"
            ),
            params![next_at, now, id],
        )
        .await?;
    Ok(changes > 0)
}

/// Refunds whose purchase is to be read again (new, voiding, waiting for settlement).
pub async fn due(db: Db<'_>, now: i64, limit: u32) -> Result<Vec<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM refunds WHERE stage IN ('new', 'voiding', 'awaiting_settlement')
           AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
    );
    db.all(sql, params![now, limit]).await
}

pub async fn set_order(db: Db<'_>, id: &str, order_id: &str, now: i64) -> Result<bool, Problem> {
    let changes = db
        .batch(vec![
            stmt(
                crate::sql!("UPDATE refunds SET order_id = ?, updated_at = ? WHERE id = ? AND order_id IS NULL"),
                params![order_id, now, id],
            ),
            stmt(
                crate::sql!("INSERT INTO provider_orders (order_id, owner_kind, owner_id, created_at)
                 VALUES (?, 'refund', ?, ?) ON CONFLICT (order_id) DO NOTHING"),
                params![order_id, id, now],
            ),
        ])
        .await?;
    Ok(changes.first().is_some_and(|&n| n > 0))
}

pub async fn note(db: Db<'_>, id: &str, reason: &str, now: i64) -> Result<(), Problem> {
    db.run(
        crate::sql!("UPDATE refunds SET failure_reason = ?, updated_at = ? WHERE id = ? AND status = 'pending'"),
        params![reason, now, id],
    )
    .await?;
    Ok(())
}

/// Final states; the charge's refunded total follows in the same transaction. A void leaves
/// the charge's payment nothing to settle.
pub async fn finish(
    db: Db<'_>,
    refund: &RefundRow,
    outcome: Finished<'_>,
    now: i64,
) -> Result<(), Problem> {
    let (status, reason, method) = match outcome {
        Finished::Succeeded(method) => ("succeeded", None, Some(method.as_str())),
        Finished::Failed(reason) => ("failed", Some(reason), refund.method.as_deref()),
    };
    let voided = matches!(outcome, Finished::Succeeded(Method::Void));
    let mut statements = vec![
        stmt(
            crate::sql!(
                "UPDATE refunds SET status = ?, failure_reason = ?, method = ?, stage = 'done',
                 next_attempt_at = NULL, settled_at = ?, updated_at = ?
             WHERE id = ? AND status IN ('processing', 'pending')"
            ),
            params![status, reason, method, now, now, &refund.id],
        ),
        stmt(
            crate::sql!(concat!(
                "UPDATE charges AS c SET refunded_amount =
                   (SELECT COALESCE(SUM(r.amount), 0) FROM ",
                own_refunds_sql!(),
                " AND r.status = 'succeeded'),
                   updated_at = ?
                 WHERE c.id = ?"
            )),
            params![now, &refund.charge_id],
        ),
    ];
    // The charge's own payment voided: it will never settle. (A reversal's payment is not the
    // charge's: the charge's settlement goes on.)
    if voided && refund.reverses_payment_id.is_none() {
        statements.push(stmt(
            crate::sql!(
                "UPDATE charges SET settlement_status = 'voided', settlement_check_at = NULL,
                 fee = 0, net = amount, updated_at = ?
             WHERE id = ? AND settlement_status IN ('pending', 'processed', 'error')"
            ),
            params![now, &refund.charge_id],
        ));
    }
    db.batch(statements).await?;
    Ok(())
}

/// How a refund ended.
#[derive(Debug, Clone, Copy)]
pub enum Finished<'a> {
    Succeeded(Method),
    Failed(&'a str),
}

/// The automatic refund of `payment_id`, a payment on `purchase_order_id` that nobody
/// expected: claimed once per payment (a unique index), whatever retries.
pub struct Reversal<'a> {
    pub id: &'a str,
    pub charge_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub purchase_order_id: &'a str,
    pub payment_id: &'a str,
    pub now: i64,
}

pub fn claim_reversal(r: &Reversal<'_>) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO refunds (id, charge_id, amount, currency, status, purchase_order_id,
             reverses_payment_id, stage, next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'processing', ?, ?, 'new', ?, ?, ?)
         ON CONFLICT DO NOTHING"
        ),
        params![
            r.id,
            r.charge_id,
            r.amount,
            r.currency,
            r.purchase_order_id,
            r.payment_id,
            r.now,
            r.now,
            r.now
        ],
    )
}

pub async fn by_reversed_payment(
    db: Db<'_>,
    payment_id: &str,
) -> Result<Option<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM refunds WHERE reverses_payment_id = ?"
    );
    db.first(sql, params![payment_id]).await
}

pub async fn unsettled(db: Db<'_>, older_than: i64, limit: u32) -> Result<Vec<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM refunds WHERE status = 'pending' AND order_id IS NOT NULL AND stage = 'returning'
           AND updated_at < ? ORDER BY updated_at LIMIT ?"
    );
    db.all(sql, params![older_than, limit]).await
}

/// One part of a balance refund: `amount` of the customer's balance given back as a refund of
/// `charge_id` (a charge of theirs with that much left to refund).
pub struct RefundPart<'a> {
    /// Deterministic (the request's key and the part's number): a part is given back once.
    pub transaction_id: &'a str,
    /// Fresh per attempt: the transaction and the balance move only with this attempt's refund.
    pub refund_id: &'a str,
    pub charge_id: &'a str,
    pub amount: i64,
}

/// The statements of one part, in one batch with the request's key claimed before them
/// (`key`: the idempotency row's scope, key and resource id): the refund row, inserted only if
/// the balance still holds the amount, the charge can still give it back and the part was not
/// given already; then the balance transaction and the balance's debit, only with that refund.
pub fn refund_part(
    customer_ref: &str,
    currency: &str,
    part: &RefundPart<'_>,
    key: (&str, &str, &str),
    now: i64,
) -> Vec<Stmt> {
    vec![
        stmt(
            crate::sql!(concat!(
                "INSERT INTO refunds (id, charge_id, amount, currency, status, purchase_order_id,
                   stage, next_attempt_at, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, 'processing',
                   (SELECT order_id FROM charges WHERE id = ?2), 'new', ?5, ?5, ?5
                 WHERE (SELECT amount FROM customer_balances
                        WHERE customer_ref = ?6 AND currency = ?4) >= ?3
                   AND NOT EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?7)
                   AND EXISTS (SELECT 1 FROM idempotency_keys
                               WHERE scope = ?8 AND key = ?9 AND resource_id = ?10)
                   AND ",
                remaining_sql!(),
                " >= ?3"
            )),
            params![
                part.refund_id,
                part.charge_id,
                part.amount,
                currency,
                now,
                customer_ref,
                part.transaction_id,
                key.0,
                key.1,
                key.2,
                part.charge_id
            ],
        ),
        stmt(
            crate::sql!(
                "INSERT INTO balance_transactions (id, customer_ref, currency, amount, reason,
                   charge_id, refund_id, claim, created_at)
                 SELECT ?1, ?2, ?3, -?4, 'refunded', ?5, ?6, ?6, ?7
                 WHERE EXISTS (SELECT 1 FROM refunds WHERE id = ?6)
                 ON CONFLICT (id) DO NOTHING"
            ),
            params![
                part.transaction_id,
                customer_ref,
                currency,
                part.amount,
                part.charge_id,
                part.refund_id,
                now
            ],
        ),
        stmt(
            crate::sql!(
                "UPDATE customer_balances SET amount = amount - ?, updated_at = ?
                 WHERE customer_ref = ? AND currency = ?
                   AND EXISTS (SELECT 1 FROM balance_transactions WHERE id = ? AND claim = ?)"
            ),
            params![
                part.amount,
                now,
                customer_ref,
                currency,
                part.transaction_id,
                part.refund_id
            ],
        ),
    ]
}

crate::row! {
    /// A charge of the customer's that can still give money back.
    #[derive(Debug, Clone)]
    pub struct Refundable {
        pub id: String,
        pub remaining: i64,
    }
}

/// The customer's succeeded charges in `currency` with something left to refund, newest first
/// (a balance is given back through the payments that made it: the latest ones).
pub async fn refundable_charges(
    db: Db<'_>,
    customer_ref: &str,
    currency: &str,
    not_before: i64,
) -> Result<Vec<Refundable>, Problem> {
    db.all(
        crate::sql!(concat!(
            "SELECT c.id, c.amount - (SELECT COALESCE(SUM(r.amount), 0) FROM ",
            own_refunds_sql!(),
            " AND r.status != 'failed') AS remaining
             FROM charges c
             WHERE c.customer_ref = ? AND c.currency = ? AND c.status = 'succeeded'
               AND c.settled_at >= ?
             ORDER BY c.settled_at DESC, c.id DESC LIMIT 50"
        )),
        params![customer_ref, currency, not_before],
    )
    .await
    .map(|rows: Vec<Refundable>| rows.into_iter().filter(|r| r.remaining > 0).collect())
}

/// The refunds of a balance refund, by its transactions' id prefix.
pub async fn of_balance_refund(db: Db<'_>, prefix: &str) -> Result<Vec<RefundRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM refunds WHERE id IN (SELECT refund_id FROM balance_transactions
            WHERE substr(id, 1, length(?1)) = ?1 AND reason = 'refunded')
          ORDER BY created_at, id"
    );
    db.all(sql, params![prefix]).await
}
