//! End-to-end tests: the release build of the worker under `wrangler dev`, against the PSP
//! sandbox, driven over HTTP. Each test starts its own stack (see `stack.rs`).

mod flows;
mod http;
pub mod openapi;
mod receiver;
mod stack;

mod abuse;
mod attacks;
mod backups;
mod billing;
mod browser;
mod charge_safety;
mod charges;
mod checkout;
mod coupons;
mod dashboard;
mod events;
mod fanout;
mod foundation;
mod keys;
mod listen;
mod logs;
mod monitoring;
mod plan_changes;
mod portal;
mod reports;
mod retention;
mod sessions;
mod settlement;
mod shards;
mod test_clocks;
mod trials;
