//! Charge rows and their attempts. A charge is claimed by inserting its deterministic
//! `charge_key`; whoever holds the unexpired lease drives it; every attempt is its own claim.

use super::db::{Db, P, Stmt, stmt};
use crate::params;
use recurring_core::billing::charge_machine::{Attempt, AttemptStatus, CardGuard};
use recurring_core::billing::dunning::{
    CARD_MAX_DECLINES_24H, CARD_MAX_DECLINES_30D, CardDeclines,
};
use recurring_core::billing::time::{DAY_MS, days};
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct ChargeRow {
        pub id: String,
        pub charge_key: String,
        pub customer_ref: String,
        pub subscription_id: Option<String>,
        pub period_index: Option<u32>,
        pub kind: String,
        pub amount: i64,
        pub currency: String,
        pub description: String,
        pub metadata: Option<String>,
        pub request_hash: Option<String>,
        pub status: String,
        pub failure_reason: Option<String>,
        pub decline_class: Option<String>,
        pub order_id: Option<String>,
        pub payment_id: Option<String>,
        pub payment_method_id: Option<String>,
        pub attempts: u32,
        pub provider_refusals: u32,
        pub last_error: Option<String>,
        pub declines: u32,
        pub first_failed_at: Option<i64>,
        pub next_retry_at: Option<i64>,
        pub lease_until: Option<i64>,
        pub refunded_amount: i64,
        /// Why the charge needs an operator, while it stays open.
        pub attention: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        /// When the charge reached its final state (business time).
        pub settled_at: Option<i64>,
        /// The provider's purchase transaction, once its status showed it.
        pub transaction_id: Option<String>,
        /// pending, processed, settled, error or voided; absent until the charge succeeded.
        pub settlement_status: Option<String>,
        pub fee: Option<i64>,
        /// amount − fee.
        pub net: Option<i64>,
        /// The transaction's payout as the provider reported it (equal to `net` unless a
        /// discrepancy was recorded).
        pub provider_payout: Option<i64>,
        pub payout_ref: Option<String>,
        pub settlement_date: Option<String>,
        pub receipt_url: Option<String>,
        /// `proration`: the charge of a plan or quantity change made mid-period.
        pub purpose: Option<String>,
        /// What the customer's balance paid of it before the card was charged `amount`.
        pub balance_applied: Option<i64>,
        /// What a coupon took off its price, and which.
        pub discount_amount: Option<i64>,
        pub coupon_id: Option<String>,
    }
}

pub const COLUMNS: &str = "id, charge_key, customer_ref, subscription_id, period_index, kind, \
    amount, currency, description, metadata, request_hash, status, failure_reason, \
    decline_class, order_id, payment_id, payment_method_id, attempts, provider_refusals, \
    last_error, declines, first_failed_at, next_retry_at, lease_until, refunded_amount, \
    attention, created_at, updated_at, settled_at, transaction_id, settlement_status, fee, net, \
    provider_payout, payout_ref, settlement_date, receipt_url, purpose, balance_applied, \
    discount_amount, coupon_id";

pub struct NewCharge<'a> {
    pub id: &'a str,
    pub charge_key: &'a str,
    pub customer_ref: &'a str,
    pub subscription_id: Option<&'a str>,
    pub period_index: Option<u32>,
    pub kind: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub description: &'a str,
    pub metadata: Option<&'a str>,
    pub request_hash: Option<&'a str>,
    pub now: i64,
}

const CLAIM_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref, subscription_id,
        period_index, kind, amount, currency, description, metadata, request_hash, status,
        created_at, updated_at)
    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?
    WHERE 1
    ON CONFLICT (charge_key) DO NOTHING"
);

const CLAIM_FOR_PERIOD_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref,
        subscription_id, period_index, kind, amount, currency, description, metadata,
        request_hash, status, created_at, updated_at, test_clock)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'processing', ?12, ?13,
        (SELECT test_clock FROM subscriptions WHERE id = ?4)
    WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?14 AND current_period = ?15)
    ON CONFLICT (charge_key) DO NOTHING"
);

fn claim_params(c: &NewCharge<'_>) -> Vec<P> {
    params![
        c.id,
        c.charge_key,
        c.customer_ref,
        c.subscription_id,
        c.period_index,
        c.kind,
        c.amount,
        c.currency,
        c.description,
        c.metadata,
        c.request_hash,
        c.now,
        c.now
    ]
}

/// Claims a charge: inserted once per `charge_key`, whatever races.
pub fn claim(c: &NewCharge<'_>) -> Stmt {
    stmt(CLAIM_SQL, claim_params(c))
}

/// Claims a subscription's charge for a period, only if the subscription now stands at that
/// period: run in the same batch as the subscription's advance, so that a period is never
/// advanced without its charge nor charged without its advance.
pub fn claim_for_period(c: &NewCharge<'_>, subscription_id: &str, period: u32) -> Stmt {
    let mut params = claim_params(c);
    params.extend(params![subscription_id, period]);
    stmt(CLAIM_FOR_PERIOD_SQL, params)
}

const CLAIM_FOR_PERIOD_REST_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref,
        subscription_id, period_index, kind, amount, currency, description, metadata,
        request_hash, status, created_at, updated_at, test_clock, balance_applied)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 - ?16, ?8, ?9, ?10, ?11, 'processing', ?12, ?13,
        (SELECT test_clock FROM subscriptions WHERE id = ?4), ?16
    WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?14 AND current_period = ?15)
      AND EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?17 AND claim = ?18)
    ON CONFLICT (charge_key) DO NOTHING"
);

const CLAIM_FOR_PERIOD_UNPAID_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref,
        subscription_id, period_index, kind, amount, currency, description, metadata,
        request_hash, status, created_at, updated_at, test_clock)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'processing', ?12, ?13,
        (SELECT test_clock FROM subscriptions WHERE id = ?4)
    WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?14 AND current_period = ?15)
      AND NOT EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?16 AND claim = ?17)
    ON CONFLICT (charge_key) DO NOTHING"
);

/// The period's charge when the customer's balance is to pay `applied` of it (the spend
/// `(id, claim)` rides earlier in the batch): the card is charged the rest when this attempt's
/// spend happened (nothing when the balance paid all), the whole amount when it did not (the
/// balance was used meanwhile).
pub fn claim_for_period_after_spend(
    c: &NewCharge<'_>,
    subscription_id: &str,
    period: u32,
    applied: i64,
    spend: (&str, &str),
) -> Vec<Stmt> {
    let mut statements = Vec::new();
    if c.amount > applied {
        let mut params = claim_params(c);
        params.extend(params![subscription_id, period, applied, spend.0, spend.1]);
        statements.push(stmt(CLAIM_FOR_PERIOD_REST_SQL, params));
    }
    let mut params = claim_params(c);
    params.extend(params![subscription_id, period, spend.0, spend.1]);
    statements.push(stmt(CLAIM_FOR_PERIOD_UNPAID_SQL, params));
    statements
}

const CLAIM_AFTER_CHANGE_REST_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref,
        subscription_id, period_index, kind, amount, currency, description, metadata,
        request_hash, status, created_at, updated_at, test_clock, balance_applied, purpose)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 - ?16, ?8, ?9, ?10, ?11, 'processing', ?12, ?13,
        (SELECT test_clock FROM subscriptions WHERE id = ?4), ?16, 'proration'
    WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?14 AND last_change = ?15)
      AND EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?17 AND claim = ?18)
    ON CONFLICT (charge_key) DO NOTHING"
);

const CLAIM_AFTER_CHANGE_UNPAID_SQL: &str = crate::sql!(
    "INSERT INTO charges (id, charge_key, customer_ref,
        subscription_id, period_index, kind, amount, currency, description, metadata,
        request_hash, status, created_at, updated_at, test_clock, purpose)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'processing', ?12, ?13,
        (SELECT test_clock FROM subscriptions WHERE id = ?4), 'proration'
    WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?14 AND last_change = ?15)
      AND NOT EXISTS (SELECT 1 FROM balance_transactions WHERE id = ?16 AND claim = ?17)
    ON CONFLICT (charge_key) DO NOTHING"
);

/// The charge of a change made now (`purpose` proration), only if the change `change_id`
/// happened in the same batch; the customer's balance pays `applied` of it when the spend
/// `(id, claim)` did, the card the rest (nothing when the balance paid all).
pub fn claim_after_change(
    c: &NewCharge<'_>,
    subscription_id: &str,
    change_id: &str,
    applied: i64,
    spend: (&str, &str),
) -> Vec<Stmt> {
    let mut statements = Vec::new();
    if c.amount > applied {
        let mut params = claim_params(c);
        params.extend(params![
            subscription_id,
            change_id,
            applied,
            spend.0,
            spend.1
        ]);
        statements.push(stmt(CLAIM_AFTER_CHANGE_REST_SQL, params));
    }
    let mut params = claim_params(c);
    params.extend(params![subscription_id, change_id, spend.0, spend.1]);
    statements.push(stmt(CLAIM_AFTER_CHANGE_UNPAID_SQL, params));
    statements
}

/// A charge by its key.
pub async fn by_key(db: Db<'_>, key: &str) -> Result<Option<ChargeRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM charges WHERE charge_key = ?");
    db.first(sql, params![key]).await
}

/// A charge that is already settled when it is recorded: the checkout's hosted-page payment,
/// or a payment nobody expected (recorded so that it and its refund show like any other).
pub fn record_settled(
    c: &NewCharge<'_>,
    order_id: &str,
    payment_id: &str,
    pm_id: Option<&str>,
    discount: Option<(&str, i64)>,
) -> Stmt {
    stmt(
        crate::sql!("INSERT INTO charges (id, charge_key, customer_ref, subscription_id, period_index, kind,
             amount, currency, description, metadata, request_hash, status, order_id, payment_id,
             payment_method_id, attempts, created_at, updated_at, settled_at, test_clock,
             coupon_id, discount_amount)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'succeeded', ?12, ?13, ?14, 1, ?15,
                 ?16, ?17, (SELECT test_clock FROM subscriptions WHERE id = ?4), ?18, ?19)
         ON CONFLICT (charge_key) DO NOTHING"),
        params![
            c.id,
            c.charge_key,
            c.customer_ref,
            c.subscription_id,
            c.period_index,
            c.kind,
            c.amount,
            c.currency,
            c.description,
            c.metadata,
            c.request_hash,
            order_id,
            payment_id,
            pm_id,
            c.now,
            c.now,
            c.now,
            discount.map(|d| d.0),
            discount.map_or(0, |d| d.1)
        ],
    )
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<ChargeRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM charges WHERE id = ?");
    db.first(sql, params![id]).await
}

/// The card a new attempt of a charge would use: the customer's active card on file, and what
/// the ledger knows about it across every charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub payment_method_id: Option<String>,
    pub guard: CardGuard,
}

pub struct Leased {
    pub charge: ChargeRow,
    pub attempts: Vec<Attempt>,
    pub card: Card,
}

pub enum Lease {
    /// Ours until released: the charge, its attempts and its card, read under the lease.
    Taken(Box<Leased>),
    /// Not ours: another process holds it, or the charge is final (the row says which).
    Refused(Box<ChargeRow>),
}

/// The customer's active card, its hard declines, and its declines within the windows the
/// card networks count over (business time). Binds: 24 h ago, 30 days ago, the charge id.
const CARD_SQL: &str = crate::sql!(
    "SELECT pm.id AS payment_method_id,
      EXISTS (SELECT 1 FROM charge_attempts a WHERE a.payment_method_id = pm.id
                AND a.status = 'failed' AND a.decline_class = 'hard') AS hard,
      (SELECT COUNT(*) FROM charge_attempts a WHERE a.payment_method_id = pm.id
                AND a.status = 'failed' AND a.updated_at > ?1) AS last_24h,
      (SELECT COUNT(*) FROM charge_attempts a WHERE a.payment_method_id = pm.id
                AND a.status = 'failed' AND a.updated_at > ?2) AS last_30d
    FROM payment_methods pm
    WHERE pm.customer_ref = (SELECT customer_ref FROM charges WHERE id = ?3)
      AND pm.status = 'active'
    ORDER BY pm.created_at DESC LIMIT 1"
);

crate::row! {
    struct CardRow {
        payment_method_id: String,
        hard: i64,
        last_24h: u32,
        last_30d: u32,
    }
}

/// A fresh charge's first attempt, claimed in the lease's own round trip when the charge is
/// still untouched and its card may be charged (the same rules as [`CardGuard`], and an API
/// charge not past its start deadline). Binds: now, id, our lease, start deadline, 24 h ago,
/// the daily limit, 30 days ago, the 30-day limit.
const CLAIM_FIRST_SQL: &str = crate::sql!(
    "INSERT INTO charge_attempts (charge_id, attempt, order_id,
        payment_method_id, status, created_at, updated_at)
    SELECT c.id, 1, NULL, pm.id, 'claimed', ?1, ?1
    FROM charges c
    JOIN payment_methods pm ON pm.customer_ref = c.customer_ref AND pm.status = 'active'
    WHERE c.id = ?2 AND c.lease_until = ?3 AND c.status = 'processing' AND c.attempts = 0
      AND c.order_id IS NULL AND (c.next_retry_at IS NULL OR c.next_retry_at <= ?1)
      AND NOT (c.kind = 'api' AND ?1 - c.created_at > ?4)
      AND NOT EXISTS (SELECT 1 FROM charge_attempts a WHERE a.payment_method_id = pm.id
                        AND a.status = 'failed' AND a.decline_class = 'hard')
      AND (SELECT COUNT(*) FROM charge_attempts a WHERE a.payment_method_id = pm.id
             AND a.status = 'failed' AND a.updated_at > ?5) < ?6
      AND (SELECT COUNT(*) FROM charge_attempts a WHERE a.payment_method_id = pm.id
             AND a.status = 'failed' AND a.updated_at > ?7) < ?8
    ORDER BY pm.created_at DESC LIMIT 1
    ON CONFLICT DO NOTHING"
);

const CLAIMED_FIRST_SQL: &str = crate::sql!(
    "UPDATE charges SET attempts = 1, status = 'pending', updated_at = ?1
    WHERE id = ?2 AND lease_until = ?3 AND attempts = 0
      AND EXISTS (SELECT 1 FROM charge_attempts WHERE charge_id = ?2 AND attempt = 1)"
);

/// Whether a lease also claims a fresh charge's first attempt: only for the charge's owner
/// (the API call, the scheduler), with the start deadline of API charges.
#[derive(Debug, Clone, Copy)]
pub struct ClaimFirst {
    pub start_deadline_ms: i64,
}

/// What a lease is taken for.
#[derive(Debug, Clone, Copy)]
pub enum LeaseFor {
    /// Driving the charge; with a claim, a fresh charge's first attempt is claimed in the same
    /// round trip (the charge's owner only).
    Drive(Option<ClaimFirst>),
    /// Learning what became of an attempt in doubt (a provider webhook): a charge with none
    /// has nothing to learn, and is not leased, so it stays free for whoever drives it next.
    Settle,
}

/// Takes the lease on a charge that may need provider work, and reads it with its attempts and
/// its card in the same round trip. `now` is business time, `wall_now` real time (leases).
pub async fn lease_and_load(
    db: Db<'_>,
    id: &str,
    now: i64,
    wall_now: i64,
    lease_ms: i64,
    purpose: LeaseFor,
) -> Result<Lease, Problem> {
    let lease = wall_now + lease_ms;
    let mut batch = vec![match purpose {
        LeaseFor::Drive(_) => stmt(
            crate::sql!(
                "UPDATE charges SET lease_until = ?
             WHERE id = ? AND status != 'succeeded' AND (lease_until IS NULL OR lease_until < ?)"
            ),
            params![lease, id, wall_now],
        ),
        LeaseFor::Settle => stmt(
            crate::sql!(
                "UPDATE charges SET lease_until = ?
             WHERE id = ? AND status != 'succeeded' AND (lease_until IS NULL OR lease_until < ?)
               AND EXISTS (SELECT 1 FROM charge_attempts a
                           WHERE a.charge_id = charges.id AND a.order_id IS NOT NULL
                             AND a.status IN ('claimed', 'initiated', 'fenced'))"
            ),
            params![lease, id, wall_now],
        ),
    }];
    if let LeaseFor::Drive(Some(claim)) = purpose {
        batch.push(stmt(
            CLAIM_FIRST_SQL,
            params![
                now,
                id,
                lease,
                claim.start_deadline_ms,
                now - DAY_MS,
                CARD_MAX_DECLINES_24H,
                now - days(30),
                CARD_MAX_DECLINES_30D
            ],
        ));
        batch.push(stmt(CLAIMED_FIRST_SQL, params![now, id, lease]));
    }
    let reads = batch.len();
    batch.extend([
        stmt(
            crate::sql!("SELECT ", COLUMNS, " FROM charges WHERE id = ?"),
            params![id],
        ),
        stmt(ATTEMPTS_SQL, params![id]),
    ]);
    // Only a drive that may start an attempt needs the card (and its decline history).
    if matches!(purpose, LeaseFor::Drive(_)) {
        batch.push(stmt(CARD_SQL, params![now - DAY_MS, now - days(30), id]));
    }
    let mut results = db.batch_results(batch).await?;
    let leased = results[0].changes > 0;
    let results = results.split_off(reads);
    let charge = results[0]
        .rows::<ChargeRow>()?
        .into_iter()
        .next()
        .ok_or_else(|| Problem::not_found("The charge"))?;
    if !leased {
        return Ok(Lease::Refused(Box::new(charge)));
    }
    let attempts = to_attempts(results[1].rows::<AttemptRow>()?)?;
    let card = match results.get(2) {
        // A settle-only drive reads the outcome of an attempt already started and starts none
        // (`next_step` stops before the card is looked at): no card is charged.
        None => Card {
            payment_method_id: None,
            guard: CardGuard::Clear,
        },
        Some(card) => card_of(card.rows::<CardRow>()?.into_iter().next()),
    };
    Ok(Lease::Taken(Box::new(Leased {
        charge,
        attempts,
        card,
    })))
}

/// The customer's active card with its decline history, as a drive that may start an attempt
/// sees it.
fn card_of(row: Option<CardRow>) -> Card {
    match row {
        None => Card {
            payment_method_id: None,
            guard: CardGuard::NoCard,
        },
        Some(row) => Card {
            guard: CardGuard::from_history(
                row.hard != 0,
                CardDeclines {
                    last_24h: row.last_24h,
                    last_30d: row.last_30d,
                },
            ),
            payment_method_id: Some(row.payment_method_id),
        },
    }
}

pub async fn release_lease(db: Db<'_>, id: &str) -> Result<(), Problem> {
    db.run(
        crate::sql!("UPDATE charges SET lease_until = NULL, queued_until = NULL WHERE id = ?"),
        params![id],
    )
    .await?;
    Ok(())
}

crate::row! {
    struct AttemptRow {
        attempt: u32,
        order_id: Option<String>,
        payment_id: Option<String>,
        status: String,
        created_at: i64,
    }
}

const ATTEMPTS_SQL: &str = crate::sql!(
    "SELECT attempt, order_id, payment_id, status, created_at
    FROM charge_attempts WHERE charge_id = ? ORDER BY attempt"
);

/// Attempts as the state machine sees them, oldest first.
fn to_attempts(rows: Vec<AttemptRow>) -> Result<Vec<Attempt>, Problem> {
    rows.into_iter()
        .map(|r| {
            let status = AttemptStatus::parse(&r.status)
                .ok_or_else(|| Problem::internal("An attempt has an unknown status."))?;
            Ok(Attempt {
                number: r.attempt,
                order_id: r.order_id,
                payment_id: r.payment_id,
                status,
                created_at: r.created_at,
            })
        })
        .collect()
}

pub async fn list_for_customer(
    db: Db<'_>,
    customer_ref: &str,
    before: Option<(i64, &str)>,
    limit: u32,
) -> Result<Vec<ChargeRow>, Problem> {
    match before {
        None => {
            let sql = crate::sql!(
                "SELECT ",
                COLUMNS,
                " FROM charges WHERE customer_ref = ?
                 ORDER BY created_at DESC, id DESC LIMIT ?"
            );
            db.all(sql, params![customer_ref, limit]).await
        }
        Some((created_at, id)) => {
            let sql = crate::sql!(
                "SELECT ",
                COLUMNS,
                " FROM charges WHERE customer_ref = ?
                   AND (created_at < ? OR (created_at = ? AND id < ?))
                 ORDER BY created_at DESC, id DESC LIMIT ?"
            );
            db.all(
                sql,
                params![customer_ref, created_at, created_at, id, limit],
            )
            .await
        }
    }
}
