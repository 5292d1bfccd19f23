//! The customers' directory of a sharded ledger: which database holds each customer. Read and
//! written in `DB` only; with one database it is never used.

use recurring_core::http::problem::Problem;
use recurring_core::shards::shard_for_customer;

use super::db::Db;
use crate::params;

crate::row! {
    struct Entry {
        shard: i64,
    }
}

crate::row! {
    struct Known {
        known: i64,
    }
}

/// The shard that holds `customer_ref`, out of `shards` databases. `record`: a customer seen
/// for the first time is written down (a route about to store something of theirs); a read
/// only asks, and leaves nothing behind for a reference it never saw.
///
/// The recorded shard, not the hash, is the answer once there is one: that is what lets the
/// shard count grow without moving anyone. A customer from before sharding (no entry, records
/// in `DB`) stays in shard 0.
pub async fn customer_shard(
    main: Db<'_>,
    customer_ref: &str,
    shards: usize,
    now: i64,
    record: bool,
) -> Result<usize, Problem> {
    if let Some(entry) = main
        .first::<Entry>(
            crate::sql!("SELECT shard FROM customer_shards WHERE customer_ref = ?"),
            params![customer_ref],
        )
        .await?
    {
        return Ok(usize::try_from(entry.shard).unwrap_or(0));
    }
    let known: Option<Known> = main
        .first(
            crate::sql!(
                "SELECT EXISTS (SELECT 1 FROM customers WHERE customer_ref = ?1)
                     OR EXISTS (SELECT 1 FROM checkouts WHERE customer_ref = ?1)
                     OR EXISTS (SELECT 1 FROM customer_balances WHERE customer_ref = ?1)
                     OR EXISTS (SELECT 1 FROM discounts_applied WHERE customer_ref = ?1)
                     AS known"
            ),
            params![customer_ref],
        )
        .await?;
    let shard = if known.is_some_and(|k| k.known != 0) {
        0
    } else {
        shard_for_customer(customer_ref, shards)
    };
    if !record {
        return Ok(shard);
    }
    // Two first requests for one customer race to the same answer (the hash is stable); the
    // row that won is read back all the same, in case a mover changed it meanwhile.
    let written = main
        .batch_results(vec![
            super::db::stmt(
                crate::sql!(
                    "INSERT INTO customer_shards (customer_ref, shard, created_at) VALUES (?, ?, ?)
                     ON CONFLICT (customer_ref) DO NOTHING"
                ),
                params![customer_ref, shard as i64, now],
            ),
            super::db::stmt(
                crate::sql!("SELECT shard FROM customer_shards WHERE customer_ref = ?"),
                params![customer_ref],
            ),
        ])
        .await?;
    let recorded: Vec<Entry> = match written.get(1) {
        Some(result) => result.rows()?,
        None => Vec::new(),
    };
    Ok(recorded
        .first()
        .map_or(shard, |e| usize::try_from(e.shard).unwrap_or(shard)))
}
