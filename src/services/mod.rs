//! Flows that combine the provider, the vault and the ledger. Each is idempotent: webhooks,
//! polls, retries and cron ticks may run any of them again at any time.

pub mod activation;
pub mod charging;
pub mod events;
pub mod fanout;
pub mod hosted_checkout;
pub mod order_watching;
pub mod refunding;
pub mod tick;
pub mod webhook_events;
