//! The pure core of recurring-edge: every rule that decides what money moves, and every reading
//! of what comes in, with no I/O of its own.
//!
//! - `billing`: calendars, periods, installments, metering, dunning, declines, and the charge
//!   state machine with its driver (generic over the I/O it needs) and a randomized simulation;
//! - `psp`: the provider's wire types, answer envelope, webhooks and their signatures;
//! - `http`: the router, problem details (RFC 9457) and CORS decisions;
//! - `input`, `json_read`, `validate`: strict reading of request bodies;
//! - `session`: customer sessions (format, minting, verification);
//! - `catalog`, `config`: the plan catalog and the worker's settings, parsed and checked;
//! - `merchant_auth`: which merchant key a request presents and what it may do;
//! - `monitoring`: what an operator is alerted on;
//! - `merchant_webhook`, `secure`: Standard Webhooks signatures, constant-time comparison,
//!   request fingerprints;
//! - `staff`: the dashboard's users (Access tokens' claims, development sessions, roles, which
//!   browser requests may change something).
//!
//! Nothing here reads a clock or draws randomness: instants come in as `i64` milliseconds (UTC)
//! and ids as strings, so every rule runs natively, under property tests and at any simulated
//! time. The worker crate is the adapters around it (fetch, D1, KV, queues, cron).

pub mod archive;
pub mod billing;
pub mod catalog;
pub mod config;
pub mod http;
pub mod input;
pub mod json_read;
pub mod merchant_auth;
pub mod merchant_webhook;
pub mod monitoring;
pub mod psp;
pub mod secure;
pub mod session;
pub mod shards;
pub mod staff;
pub mod validate;
