//! Coupons, the discounts they give to subscriptions and customers, and the ledger of
//! discounts given. A coupon's redemption limit is the database's own CHECK: no race redeems
//! it once too often.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::billing::discount::{Coupon, Duration, Off};
use recurring_core::http::problem::Problem;

crate::row! {
    #[derive(Debug, Clone)]
    pub struct CouponRow {
        pub id: String,
        pub name: Option<String>,
        pub percent_off: Option<u32>,
        pub amount_off: Option<i64>,
        pub currency: Option<String>,
        pub duration: String,
        pub duration_in_periods: Option<u32>,
        pub redeem_by: Option<i64>,
        pub max_redemptions: Option<u32>,
        pub times_redeemed: u32,
        pub deleted_at: Option<i64>,
        pub created_at: i64,
    }
}

const COLUMNS: &str = "id, name, percent_off, amount_off, currency, duration, \
    duration_in_periods, redeem_by, max_redemptions, times_redeemed, deleted_at, created_at";

impl CouponRow {
    /// The coupon as the billing rules read it.
    pub fn model(&self) -> Result<Coupon, Problem> {
        let broken = || Problem::internal(format!("Coupon {} has unreadable terms.", self.id));
        let off = match (self.percent_off, self.amount_off) {
            (Some(p), None) => Off::Percent(u8::try_from(p).map_err(|_| broken())?),
            (None, Some(a)) => Off::Amount(a),
            _ => return Err(broken()),
        };
        let duration = match (self.duration.as_str(), self.duration_in_periods) {
            ("once", _) => Duration::Once,
            ("forever", _) => Duration::Forever,
            ("repeating", Some(n)) => Duration::Repeating(n),
            _ => return Err(broken()),
        };
        Ok(Coupon {
            id: self.id.clone(),
            off,
            currency: self.currency.clone(),
            duration,
            redeem_by: self.redeem_by,
            max_redemptions: self.max_redemptions,
            times_redeemed: self.times_redeemed,
            deleted: self.deleted_at.is_some(),
        })
    }
}

pub struct NewCoupon<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub off: Off,
    pub currency: Option<&'a str>,
    pub duration: Duration,
    pub redeem_by: Option<i64>,
    pub max_redemptions: Option<u32>,
    pub now: i64,
}

/// Creates a coupon; false when its id is taken.
pub async fn create(db: Db<'_>, c: &NewCoupon<'_>) -> Result<bool, Problem> {
    let (percent, amount) = match c.off {
        Off::Percent(p) => (Some(u32::from(p)), None),
        Off::Amount(a) => (None, Some(a)),
    };
    let periods = match c.duration {
        Duration::Repeating(n) => Some(n),
        _ => None,
    };
    let changed = db
        .run(
            crate::sql!(
                "INSERT INTO coupons (id, name, percent_off, amount_off, currency, duration,
                   duration_in_periods, redeem_by, max_redemptions, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO NOTHING"
            ),
            params![
                c.id,
                c.name,
                percent,
                amount,
                c.currency,
                c.duration.as_str(),
                periods,
                c.redeem_by,
                c.max_redemptions,
                c.now
            ],
        )
        .await?;
    Ok(changed > 0)
}

pub async fn get(db: Db<'_>, id: &str) -> Result<Option<CouponRow>, Problem> {
    db.first(
        crate::sql!("SELECT ", COLUMNS, " FROM coupons WHERE id = ?"),
        params![id],
    )
    .await
}

/// Coupons by id, after `after` (the previous page's last id).
pub async fn list(db: Db<'_>, after: Option<&str>, limit: u32) -> Result<Vec<CouponRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT ",
            COLUMNS,
            " FROM coupons WHERE id > ? ORDER BY id LIMIT ?"
        ),
        params![after.unwrap_or(""), limit],
    )
    .await
}

/// Stops new redemptions; discounts already given run their course.
pub async fn delete(db: Db<'_>, id: &str, now: i64) -> Result<bool, Problem> {
    let changed = db
        .run(
            crate::sql!("UPDATE coupons SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL"),
            params![now, id],
        )
        .await?;
    Ok(changed > 0)
}

/// Coupons by id (a JSON array of ids), for a tick's due subscriptions.
pub async fn many(db: Db<'_>, ids_json: &str) -> Result<Vec<CouponRow>, Problem> {
    db.all(
        crate::sql!(
            "SELECT ",
            COLUMNS,
            " FROM coupons WHERE id IN (SELECT value FROM json_each(?))"
        ),
        params![ids_json],
    )
    .await
}

crate::row! {
    /// A customer's own discount (for their subscriptions without one).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CustomerDiscount {
        pub customer_ref: String,
        pub coupon_id: Option<String>,
        pub discount_periods_left: Option<u32>,
    }
}

pub async fn customer_discounts(
    db: Db<'_>,
    refs_json: &str,
) -> Result<Vec<CustomerDiscount>, Problem> {
    db.all(
        crate::sql!(
            "SELECT customer_ref, coupon_id, discount_periods_left FROM customers
             WHERE customer_ref IN (SELECT value FROM json_each(?)) AND coupon_id IS NOT NULL"
        ),
        params![refs_json],
    )
    .await
}

pub async fn customer_discount(
    db: Db<'_>,
    customer_ref: &str,
) -> Result<Option<CustomerDiscount>, Problem> {
    db.first(
        crate::sql!(
            "SELECT customer_ref, coupon_id, discount_periods_left FROM customers
             WHERE customer_ref = ?"
        ),
        params![customer_ref],
    )
    .await
}

/// What a discount applies to.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Subscription(&'a str),
    Customer(&'a str),
}

/// Applies `coupon` to a subscription or a customer in place of any discount it had, counting
/// one redemption, only if the coupon can still be redeemed at `now` (the redemption limit is
/// the CHECK on `times_redeemed`: past it the batch fails and nothing changes). The first
/// statement reports whether the discount was applied.
pub fn apply(holder: Holder<'_>, coupon: &str, periods: Option<u32>, now: i64) -> Vec<Stmt> {
    let set = match holder {
        Holder::Subscription(id) => stmt(
            crate::sql!(
                "UPDATE subscriptions SET coupon_id = ?1, discount_periods_left = ?2,
                   updated_at = ?3
                 WHERE id = ?4 AND status IN ('active', 'past_due', 'unpaid', 'paused')
                   AND kind = 'recurring'
                   AND EXISTS (SELECT 1 FROM coupons WHERE id = ?1 AND deleted_at IS NULL
                        AND (redeem_by IS NULL OR redeem_by > ?3))"
            ),
            params![coupon, periods, now, id],
        ),
        Holder::Customer(customer) => stmt(
            crate::sql!(
                "UPDATE customers SET coupon_id = ?1, discount_periods_left = ?2, updated_at = ?3
                 WHERE customer_ref = ?4
                   AND EXISTS (SELECT 1 FROM coupons WHERE id = ?1 AND deleted_at IS NULL
                        AND (redeem_by IS NULL OR redeem_by > ?3))"
            ),
            params![coupon, periods, now, customer],
        ),
    };
    let count = match holder {
        Holder::Subscription(id) => stmt(
            crate::sql!(
                "UPDATE coupons SET times_redeemed = times_redeemed + 1
                 WHERE id = ?1 AND EXISTS (SELECT 1 FROM subscriptions
                   WHERE id = ?2 AND coupon_id = ?1 AND updated_at = ?3)"
            ),
            params![coupon, id, now],
        ),
        Holder::Customer(customer) => stmt(
            crate::sql!(
                "UPDATE coupons SET times_redeemed = times_redeemed + 1
                 WHERE id = ?1 AND EXISTS (SELECT 1 FROM customers
                   WHERE customer_ref = ?2 AND coupon_id = ?1 AND updated_at = ?3)"
            ),
            params![coupon, customer, now],
        ),
    };
    vec![set, count]
}

/// Removes a subscription's or a customer's discount; true when there was one.
pub async fn remove(db: Db<'_>, holder: Holder<'_>, now: i64) -> Result<bool, Problem> {
    let changed = match holder {
        Holder::Subscription(id) => {
            db.run(
                crate::sql!(
                    "UPDATE subscriptions SET coupon_id = NULL, discount_periods_left = NULL,
                       updated_at = ?
                     WHERE id = ? AND coupon_id IS NOT NULL"
                ),
                params![now, id],
            )
            .await?
        }
        Holder::Customer(customer) => {
            db.run(
                crate::sql!(
                    "UPDATE customers SET coupon_id = NULL, discount_periods_left = NULL,
                       updated_at = ?
                     WHERE customer_ref = ? AND coupon_id IS NOT NULL"
                ),
                params![now, customer],
            )
            .await?
        }
    };
    Ok(changed > 0)
}

/// A discount given, recorded once under its deterministic id by the attempt `claim`.
pub struct Given<'a> {
    pub id: &'a str,
    pub claim: &'a str,
    pub customer_ref: &'a str,
    pub subscription_id: Option<&'a str>,
    pub period_index: Option<u32>,
    pub coupon_id: &'a str,
    pub currency: &'a str,
    pub amount: i64,
    pub charge_id: Option<&'a str>,
    pub now: i64,
}

/// Records a discount given, only if the subscription stands at the period it reduces.
pub fn record_for_period(g: &Given<'_>) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO discounts_applied (id, customer_ref, subscription_id, period_index,
               coupon_id, currency, amount, charge_id, claim, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?3 AND current_period = ?4)
             ON CONFLICT (id) DO NOTHING"
        ),
        given_params(g),
    )
}

/// Records a discount given (a checkout's first payment).
pub fn record(g: &Given<'_>) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO discounts_applied (id, customer_ref, subscription_id, period_index,
               coupon_id, currency, amount, charge_id, claim, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING"
        ),
        given_params(g),
    )
}

fn given_params(g: &Given<'_>) -> Vec<super::db::P> {
    params![
        g.id,
        g.customer_ref,
        g.subscription_id,
        g.period_index,
        g.coupon_id,
        g.currency,
        g.amount,
        g.charge_id,
        g.claim,
        g.now
    ]
}

/// A customer's discount used by one more charge: its periods counted down (the discount ends
/// with its last), only by the attempt whose record `(id, claim)` was written.
pub fn use_customer_discount(
    customer_ref: &str,
    after: Option<Option<u32>>,
    given: (&str, &str),
    now: i64,
) -> Stmt {
    let (coupon_kept, left) = match after {
        Some(left) => (true, left),
        None => (false, None),
    };
    stmt(
        crate::sql!(
            "UPDATE customers SET
               coupon_id = CASE WHEN ?1 THEN coupon_id ELSE NULL END,
               discount_periods_left = ?2, updated_at = ?3
             WHERE customer_ref = ?4
               AND EXISTS (SELECT 1 FROM discounts_applied WHERE id = ?5 AND claim = ?6)"
        ),
        params![coupon_kept, left, now, customer_ref, given.0, given.1],
    )
}

/// The charge a discount reduced shows it (only the row this attempt inserted: `charge_id`).
pub fn mark_charge(charge_id: &str, coupon_id: &str, amount: i64) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE charges SET discount_amount = ?, coupon_id = ?
             WHERE id = ? AND discount_amount = 0"
        ),
        params![amount, coupon_id, charge_id],
    )
}

/// Discounts given in `[from, to)` in `currency`: count and total.
pub async fn given_between(
    db: Db<'_>,
    from: i64,
    to: i64,
    currency: &str,
) -> Result<(u32, i64), Problem> {
    crate::row! {
        struct Row {
            n: u32,
            amount: i64,
        }
    }
    let row: Option<Row> = db
        .first(
            crate::sql!(
                "SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount FROM discounts_applied
                 WHERE created_at >= ? AND created_at < ? AND currency = ?"
            ),
            params![from, to, currency],
        )
        .await?;
    Ok(row.map_or((0, 0), |r| (r.n, r.amount)))
}

/// A sharded ledger keeps each coupon in `DB`, whose `times_redeemed` counts every shard's
/// redemptions, and a copy in each shard that redeems it: the copy carries the terms the
/// shard's own statements check (and its foreign keys need), and counts that shard's own.
/// Written, or brought up to date, in the batch that redeems.
pub fn copy(c: &CouponRow) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO coupons (id, name, percent_off, amount_off, currency, duration,
               duration_in_periods, redeem_by, max_redemptions, deleted_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at"
        ),
        params![
            &c.id,
            c.name.as_deref(),
            c.percent_off,
            c.amount_off,
            c.currency.as_deref(),
            &c.duration,
            c.duration_in_periods,
            c.redeem_by,
            c.max_redemptions,
            c.deleted_at,
            c.created_at
        ],
    )
}

/// One redemption counted in `DB` before another shard makes it: past the limit the CHECK
/// fails the statement, and the redemption is refused.
pub async fn reserve(main: Db<'_>, id: &str, now: i64) -> Result<bool, Problem> {
    let changed = main
        .run(
            crate::sql!(
                "UPDATE coupons SET times_redeemed = times_redeemed + 1
                 WHERE id = ?1 AND deleted_at IS NULL AND (redeem_by IS NULL OR redeem_by > ?2)"
            ),
            params![id, now],
        )
        .await?;
    Ok(changed > 0)
}

/// A reservation given back: the redemption did not happen, or its checkout failed.
pub async fn release(main: Db<'_>, id: &str) -> Result<(), Problem> {
    main.run(
        crate::sql!(
            "UPDATE coupons SET times_redeemed = times_redeemed - 1
             WHERE id = ? AND times_redeemed > 0"
        ),
        params![id],
    )
    .await?;
    Ok(())
}
