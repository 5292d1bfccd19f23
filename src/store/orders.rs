//! Provider orders this backend created or learned about, and the watch over those it stopped
//! using (`status = 'fenced'`): each is looked at again at `next_check_at` until `closed`.

use super::db::{Db, Stmt, stmt};
use crate::params;
use recurring_core::billing::order_watch::{Owner, WATCH, WatchedOrder};
use recurring_core::http::problem::Problem;

/// Records an order as carrying `owner`'s work (idempotent).
pub fn record(order_id: &str, owner_kind: &str, owner_id: &str, now: i64) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO provider_orders (order_id, owner_kind, owner_id, created_at)
         VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING"
        ),
        params![order_id, owner_kind, owner_id, now],
    )
}

/// Gives an order up: it is never used again, and watched for what the provider may still do
/// on it. Works whether or not the order was recorded before (a webhook may name it first).
pub fn watch(order_id: &str, owner_kind: &str, owner_id: &str, now: i64) -> Stmt {
    stmt(
        crate::sql!(
            "INSERT INTO provider_orders (order_id, owner_kind, owner_id, status, created_at,
             watch_since, next_check_at)
         VALUES (?1, ?2, ?3, 'fenced', ?4, ?4, ?5)
         ON CONFLICT (order_id) DO UPDATE SET status = 'fenced',
           watch_since = COALESCE(provider_orders.watch_since, excluded.watch_since),
           next_check_at = MIN(COALESCE(provider_orders.next_check_at, excluded.next_check_at),
                               excluded.next_check_at)
         WHERE provider_orders.status != 'closed'"
        ),
        params![
            order_id,
            owner_kind,
            owner_id,
            now,
            now + WATCH.first_gap_ms
        ],
    )
}

crate::row! {
    /// A watched order with what the ledger says of its owner now.
    #[derive(Debug)]
    struct DueRow {
        order_id: String,
        owner_kind: String,
        owner_id: String,
        watch_since: Option<i64>,
        created_at: i64,
        checks: u32,
        charge_status: Option<String>,
        charge_payment_id: Option<String>,
        checkout_order_id: Option<String>,
        checkout_status: Option<String>,
    }
}

const DUE_SQL: &str = crate::sql!(
    "SELECT o.order_id, o.owner_kind, o.owner_id, o.watch_since, o.created_at,
      o.checks, c.status AS charge_status, c.payment_id AS charge_payment_id,
      k.order_id AS checkout_order_id, k.status AS checkout_status
    FROM provider_orders o
    LEFT JOIN charges c ON o.owner_kind = 'charge' AND c.id = o.owner_id
    LEFT JOIN checkouts k ON o.owner_kind = 'checkout' AND k.id = o.owner_id"
);

fn to_watched(r: DueRow) -> Option<WatchedOrder> {
    let owner = match r.owner_kind.as_str() {
        "charge" => Owner::Charge {
            charge_id: r.owner_id,
            paid_with: (r.charge_status.as_deref() == Some("succeeded"))
                .then_some(r.charge_payment_id)
                .flatten(),
        },
        "checkout" => Owner::Checkout {
            paid_here: r.checkout_status.as_deref() == Some("paid")
                && r.checkout_order_id.as_deref() == Some(r.order_id.as_str()),
            checkout_id: r.owner_id,
        },
        // Return orders are settled by their refund, never watched.
        _ => return None,
    };
    Some(WatchedOrder {
        order_id: r.order_id,
        owner,
        since: r.watch_since.unwrap_or(r.created_at),
        checks: r.checks,
    })
}

/// Watched orders whose next look is due, soonest first.
pub async fn due(db: Db<'_>, now: i64, limit: u32) -> Result<Vec<WatchedOrder>, Problem> {
    let sql = crate::sql!(
        DUE_SQL,
        " WHERE o.status = 'fenced' AND o.next_check_at <= ?
         ORDER BY o.next_check_at LIMIT ?"
    );
    let rows: Vec<DueRow> = db.all(sql, params![now, limit]).await?;
    Ok(rows.into_iter().filter_map(to_watched).collect())
}

/// One watched order, as `due` reads it (for a webhook about it).
pub async fn watched(db: Db<'_>, order_id: &str) -> Result<Option<WatchedOrder>, Problem> {
    let sql = crate::sql!(DUE_SQL, " WHERE o.order_id = ? AND o.status = 'fenced'");
    let row: Option<DueRow> = db.first(sql, params![order_id]).await?;
    Ok(row.and_then(to_watched))
}

pub fn reschedule(order_id: &str, at: i64) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE provider_orders SET next_check_at = ?, checks = checks + 1
         WHERE order_id = ? AND status = 'fenced'"
        ),
        params![at, order_id],
    )
}

pub fn close(order_id: &str) -> Stmt {
    stmt(
        crate::sql!(
            "UPDATE provider_orders SET status = 'closed', next_check_at = NULL WHERE order_id = ?"
        ),
        params![order_id],
    )
}

crate::row! {
    /// Who an order belongs to, and whether it is watched.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OwnerRow {
        pub owner_kind: String,
        pub owner_id: String,
        pub status: String,
    }
}

pub fn owner_sql(order_id: &str) -> Stmt {
    stmt(
        crate::sql!("SELECT owner_kind, owner_id, status FROM provider_orders WHERE order_id = ?"),
        params![order_id],
    )
}
