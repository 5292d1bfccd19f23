//! The payment provider: wire types and answer interpretation (pure), webhook signatures
//! (pure), and the fetch client (the only part that needs the Workers runtime).

pub mod client;
pub mod envelope;
pub mod outcome;
#[cfg(test)]
pub(crate) mod read_equivalence;
pub mod signature;
pub mod types;
pub mod webhook;
