//! Storage adapters: the D1 ledger (money, exactly-once claims) and the KV token vault.

pub mod archives;
pub mod balances;
pub mod card_replacements;
pub mod charges;
pub mod checkouts;
pub mod coupons;
pub mod dashboard;
pub mod db;
pub mod directory;
pub mod events;
pub mod idempotency;
pub mod incidents;
pub mod orders;
pub mod payment_methods;
pub mod payouts;
pub mod refunds;
pub mod reports;
pub mod row;
pub mod settlements;
pub mod sql;
pub mod subscriptions;
pub mod vault;
