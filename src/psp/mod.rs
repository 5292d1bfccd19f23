//! The payment provider's fetch client. What the provider's answers mean (wire types, envelope,
//! webhooks, signatures) is pure and lives in the core's `psp`.

pub mod client;
