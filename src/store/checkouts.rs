//! Checkout rows: the customer-present, tokenizing payment on the provider's hosted page, for a
//! new subscription or to replace the card on file.
//!
//! A checkout is claimed (inserted as `creating`, with a lease) before the provider is called;
//! only the holder of the lease creates the provider order, and an order recorded too late
//! (the lease was lost) is fenced: recorded as `fenced` in `provider_orders` and cancelled.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::billing::order_watch::WATCH;
use recurring_core::catalog::Plan;
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct CheckoutRow {
        pub id: String,
        pub customer_ref: String,
        /// `subscription` or `card` (a card replacement).
        pub purpose: String,
        pub plan_id: Option<String>,
        /// JSON of the plan as priced when the checkout started.
        pub plan: Option<String>,
        pub installments: Option<u32>,
        pub amount: i64,
        pub currency: String,
        pub settles_charge_id: Option<String>,
        pub parked_retry_at: Option<i64>,
        pub card_outcome: Option<String>,
        pub order_id: Option<String>,
        pub payment_page_url: Option<String>,
        pub return_url: String,
        pub cancel_url: String,
        pub status: String,
        pub failure_reason: Option<String>,
        pub subscription_id: Option<String>,
        pub lease_token: Option<String>,
        pub lease_until: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
        pub completed_at: Option<i64>,
        pub test_clock: Option<String>,
        /// Days of free trial: the payment only verifies the card, and is given back.
        pub trial_days: Option<u32>,
        /// The coupon of the customer's session, redeemed with the checkout.
        pub coupon_id: Option<String>,
        /// What the coupon took off the first payment.
        pub discount_amount: Option<i64>,
    }
}

const COLUMNS: &str = "id, customer_ref, purpose, plan_id, plan, installments, amount, currency, \
    settles_charge_id, parked_retry_at, card_outcome, order_id, payment_page_url, return_url, \
    cancel_url, status, failure_reason, subscription_id, lease_token, lease_until, created_at, \
    updated_at, completed_at, test_clock, trial_days, coupon_id, discount_amount";

pub const PURPOSE_SUBSCRIPTION: &str = "subscription";
pub const PURPOSE_CARD: &str = "card";

pub struct NewCheckout<'a> {
    pub id: &'a str,
    pub customer_ref: &'a str,
    /// None for a card replacement.
    pub plan: Option<&'a Plan>,
    pub installments: Option<u32>,
    pub amount: i64,
    pub currency: &'a str,
    /// Card replacements: the failed charge the payment is to settle.
    pub settles_charge_id: Option<&'a str>,
    pub return_url: &'a str,
    pub cancel_url: &'a str,
    /// The creator's lease: it alone calls the provider until `lease_until` (wall ms).
    pub lease_token: &'a str,
    pub lease_until: i64,
    /// The named test clock of the customer's session (test mode only).
    pub test_clock: Option<&'a str>,
    pub trial_days: Option<u32>,
    pub coupon_id: Option<&'a str>,
    pub discount_amount: i64,
    pub now: i64,
}

/// The Idempotency-Key a checkout is claimed with. Keys are the customer's own: stored under the
/// customer's reference, so that nobody else's key can ever find this checkout.
pub struct KeyClaim<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub request_hash: &'a str,
}

pub fn scoped_key(customer_ref: &str, key: &str) -> String {
    // A customer reference has no '/', so the pair is unambiguous.
    format!("{customer_ref}/{key}")
}

/// The statements that claim a checkout, in one transaction: the checkout is inserted only if
/// the key (when there is one) was never used and the customer has fewer than `max_open` open
/// checkouts (and, for a card replacement, none open: see the unique index); the key is claimed
/// only if the checkout was; a card replacement parks the charge it settles, so dunning does not
/// retry it on the old card meanwhile.
pub fn claim(
    c: &NewCheckout<'_>,
    key: Option<&KeyClaim<'_>>,
    max_open: u32,
    wall_now: i64,
) -> Vec<Stmt> {
    let scoped = key.map(|k| scoped_key(c.customer_ref, k.key));
    let purpose = if c.plan.is_some() {
        PURPOSE_SUBSCRIPTION
    } else {
        PURPOSE_CARD
    };
    let plan_json = c.plan.map(|p| serde_json::to_string(p).unwrap_or_default());
    let mut params = params![
        c.id,
        c.customer_ref,
        purpose,
        c.plan.map(|p| p.id.as_str()),
        plan_json,
        c.installments,
        c.amount,
        c.currency,
        c.settles_charge_id,
        c.settles_charge_id,
        c.return_url,
        c.cancel_url,
        c.lease_token,
        c.lease_until,
        c.test_clock,
        c.trial_days,
        c.coupon_id,
        c.discount_amount,
        c.now,
        c.now,
        c.customer_ref,
        max_open
    ];
    params.extend(params![key.map(|k| k.scope), scoped.as_deref()]);
    let mut statements = vec![stmt(
        crate::sql!(
            "INSERT INTO checkouts (id, customer_ref, purpose, plan_id, plan, installments, amount,
             currency, settles_charge_id, parked_retry_at, return_url, cancel_url, status,
             lease_token, lease_until, test_clock, trial_days, coupon_id, discount_amount,
             created_at, updated_at)
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?,
                (SELECT next_retry_at FROM charges WHERE id = ?),
                ?, ?, 'creating', ?, ?, ?, ?, ?, ?, ?, ?
         WHERE (SELECT COUNT(*) FROM checkouts
                WHERE customer_ref = ? AND status IN ('creating', 'pending')) < ?
           AND NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ?)
         ON CONFLICT DO NOTHING"
        ),
        params,
    )];
    if let (Some(k), Some(scoped)) = (key, scoped.as_deref()) {
        statements.push(stmt(
            crate::sql!(
                "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at)
             SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM checkouts WHERE id = ?)
             ON CONFLICT (scope, key) DO NOTHING"
            ),
            params![k.scope, scoped, k.request_hash, c.id, c.now, c.id],
        ));
    }
    if let Some(charge_id) = c.settles_charge_id {
        statements.push(stmt(
            crate::sql!(
                "UPDATE charges SET next_retry_at = NULL, updated_at = ?
             WHERE id = ? AND status = 'failed' AND (lease_until IS NULL OR lease_until < ?)
               AND EXISTS (SELECT 1 FROM checkouts WHERE id = ? AND settles_charge_id = ?)"
            ),
            params![c.now, charge_id, wall_now, c.id, charge_id],
        ));
    }
    statements
}

pub fn upsert_customer(
    customer_ref: &str,
    email: Option<&str>,
    name: Option<&str>,
    now: i64,
) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO customers (customer_ref, email, name, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (customer_ref) DO UPDATE SET
           email = COALESCE(excluded.email, customers.email),
           name = COALESCE(excluded.name, customers.name),
           updated_at = excluded.updated_at"
        ),
        params![customer_ref, email, name, now, now],
    )
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<CheckoutRow>, Problem> {
    let sql = crate::sql!("SELECT ", COLUMNS, " FROM checkouts WHERE id = ?");
    db.first(sql, params![id]).await
}

/// A checkout as its customer may see it: another customer's is as absent as an unknown one.
pub async fn get_for_customer(
    db: Db<'_>,
    id: &str,
    customer_ref: &str,
) -> Result<Option<CheckoutRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM checkouts WHERE id = ? AND customer_ref = ?"
    );
    db.first(sql, params![id, customer_ref]).await
}

/// The customer's open card replacement, if any.
pub async fn open_card_replacement(
    db: Db<'_>,
    customer_ref: &str,
) -> Result<Option<CheckoutRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM checkouts
         WHERE customer_ref = ? AND purpose = 'card' AND status IN ('creating', 'pending')"
    );
    db.first(sql, params![customer_ref]).await
}

/// Takes over the lease of a checkout still being created whose holder's lease ran out.
pub async fn take_lease(
    db: Db<'_>,
    id: &str,
    token: &str,
    wall_now: i64,
    lease_ms: i64,
) -> Result<bool, Problem> {
    let changes = db
        .run(
            crate::sql!(
                "UPDATE checkouts SET lease_token = ?, lease_until = ?
             WHERE id = ? AND status = 'creating' AND order_id IS NULL
               AND (lease_until IS NULL OR lease_until < ?)"
            ),
            params![token, wall_now + lease_ms, id, wall_now],
        )
        .await?;
    Ok(changes > 0)
}

/// Gives the lease back after a provider call whose outcome is unknown, so a retry need not wait.
pub async fn release_lease(db: Db<'_>, id: &str, token: &str) -> Result<(), Problem> {
    db.run(
        crate::sql!(
            "UPDATE checkouts SET lease_until = NULL
         WHERE id = ? AND lease_token = ? AND status = 'creating'"
        ),
        params![id, token],
    )
    .await?;
    Ok(())
}

/// Records the provider order a lease holder created. The order is recorded in
/// `provider_orders` in any case: `open` when the checkout took it, `fenced` when the lease was
/// lost meanwhile (the caller then cancels it). True when the checkout took it.
pub async fn record_order(
    db: Db<'_>,
    id: &str,
    token: &str,
    order_id: &str,
    page_url: &str,
    now: i64,
) -> Result<bool, Problem> {
    let changes = db
        .batch(vec![
            stmt(
                crate::sql!("UPDATE checkouts SET order_id = ?, payment_page_url = ?, status = 'pending',
                     lease_token = NULL, lease_until = NULL, updated_at = ?
                 WHERE id = ? AND order_id IS NULL AND status = 'creating' AND lease_token = ?"),
                params![order_id, page_url, now, id, token],
            ),
            // A fenced order is watched from now, like every order we stopped using.
            stmt(
                crate::sql!("INSERT INTO provider_orders (order_id, owner_kind, owner_id, status, created_at,
                     watch_since, next_check_at)
                 SELECT ?1, 'checkout', ?2, s.status, ?3,
                        CASE s.status WHEN 'fenced' THEN ?3 END,
                        CASE s.status WHEN 'fenced' THEN ?4 END
                 FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM checkouts
                                               WHERE id = ?2 AND order_id = ?1)
                              THEN 'open' ELSE 'fenced' END AS status) s
                 WHERE 1
                 ON CONFLICT (order_id) DO NOTHING"),
                params![order_id, id, now, now + WATCH.first_gap_ms],
            ),
        ])
        .await?;
    Ok(changes.first().is_some_and(|&n| n > 0))
}

/// Fails a checkout still being created, as its lease holder: the provider refused the order,
/// or created one the checkout cannot use (`unusable_order`, recorded `fenced` for the caller to
/// cancel).
pub async fn fail_creation(
    db: Db<'_>,
    id: &str,
    token: &str,
    reason: &str,
    unusable_order: Option<&str>,
    now: i64,
) -> Result<bool, Problem> {
    let mut batch = Vec::new();
    if let Some(order_id) = unusable_order {
        batch.push(super::orders::watch(order_id, "checkout", id, now));
    }
    let failing = batch.len();
    batch.push(stmt(
        crate::sql!(
            "UPDATE checkouts SET status = 'failed', failure_reason = ?, completed_at = ?,
             updated_at = ?, lease_token = NULL, lease_until = NULL
         WHERE id = ? AND status = 'creating' AND lease_token = ?"
        ),
        params![reason, now, now, id, token],
    ));
    batch.push(restore_parked_retry(id));
    let changes = db.batch(batch).await?;
    Ok(changes.get(failing).is_some_and(|&n| n > 0))
}

/// A card replacement that ended without paying gives its parked charge back to dunning, with
/// the retry it had. Only while no other open replacement has parked the same charge.
fn restore_parked_retry(id: &str) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE charges SET next_retry_at =
           (SELECT parked_retry_at FROM checkouts WHERE id = ?1)
         WHERE id = (SELECT settles_charge_id FROM checkouts WHERE id = ?1 AND status = 'failed')
           AND status = 'failed' AND next_retry_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM checkouts o WHERE o.settles_charge_id = charges.id
                             AND o.status IN ('creating', 'pending'))"
        ),
        params![id],
    )
}

/// Marks a checkout failed unless it already ended (final states are never overwritten). With
/// `fence_order`, its provider order is recorded `fenced` in the same transaction: the checkout
/// will never use it, and a payment that completes there anyway is refunded by reconciliation.
pub async fn mark_failed(
    db: Db<'_>,
    checkout: &CheckoutRow,
    reason: &str,
    fence_order: bool,
    now: i64,
) -> Result<bool, Problem> {
    let mut batch = vec![stmt(
        crate::sql!(
            "UPDATE checkouts SET status = 'failed', failure_reason = ?, completed_at = ?,
             updated_at = ?, lease_token = NULL, lease_until = NULL
         WHERE id = ? AND status IN ('creating', 'pending')"
        ),
        params![reason, now, now, &checkout.id],
    )];
    if let (true, Some(order_id)) = (fence_order, &checkout.order_id) {
        batch.push(super::orders::watch(
            order_id,
            "checkout",
            &checkout.id,
            now,
        ));
    }
    batch.push(restore_parked_retry(&checkout.id));
    let changes = db.batch(batch).await?;
    Ok(changes.first().is_some_and(|&n| n > 0))
}

/// Pending checkouts to ask the provider about: the cron's safety net for lost webhooks.
pub async fn stale_pending(
    db: Db<'_>,
    older_than: i64,
    limit: u32,
) -> Result<Vec<CheckoutRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM checkouts WHERE status = 'pending' AND updated_at < ?
         ORDER BY updated_at LIMIT ?"
    );
    db.all(sql, params![older_than, limit]).await
}

/// Paid card replacements whose verification payment is not refunded yet (the refund was never
/// claimed, or claimed and not started): the cron's safety net for a crash in between.
pub async fn unrefunded_verifications(db: Db<'_>, limit: u32) -> Result<Vec<CheckoutRow>, Problem> {
    let sql = crate::sql!(
        "SELECT ",
        COLUMNS,
        " FROM checkouts c
         WHERE c.card_outcome = 'verified' AND c.status = 'paid'
           AND NOT EXISTS (SELECT 1 FROM refunds r
                           WHERE r.charge_id = 'ch_' || substr(c.id, 4)
                             AND r.status != 'processing')
         ORDER BY c.updated_at LIMIT ?"
    );
    db.all(sql, params![limit]).await
}

/// Whether `order_id` is a checkout's hosted-page order (a charge settled by a card
/// replacement is carried by one).
pub async fn owns_order(db: Db<'_>, order_id: &str) -> Result<bool, Problem> {
    crate::row! {
        struct Row {
            #[allow(dead_code)]
            id: String,
        }
    }
    let row: Option<Row> = db
        .first(
            crate::sql!("SELECT id FROM checkouts WHERE order_id = ?"),
            params![order_id],
        )
        .await?;
    Ok(row.is_some())
}

/// Touches a still-pending checkout so the reconciler moves on to others.
pub async fn touch(db: Db<'_>, id: &str, now: i64) -> Result<(), Problem> {
    db.run(
        crate::sql!("UPDATE checkouts SET updated_at = ? WHERE id = ? AND status = 'pending'"),
        params![now, id],
    )
    .await?;
    Ok(())
}

impl CheckoutRow {
    /// The plan as the customer was shown it; a later edit of the catalog does not change it.
    pub fn plan(&self) -> Result<Plan, Problem> {
        self.plan
            .as_deref()
            .and_then(Plan::from_snapshot)
            .ok_or_else(|| Problem::internal("A checkout's plan snapshot is unreadable."))
    }

    pub fn is_card_replacement(&self) -> bool {
        self.purpose == PURPOSE_CARD
    }
}
