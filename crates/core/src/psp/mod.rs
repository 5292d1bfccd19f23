//! The payment provider as its documents describe it: wire types, what an answer means, webhook
//! bodies and their signatures. The fetch client that sends these is the worker's.

pub mod envelope;
pub mod outcome;
#[cfg(test)]
pub(crate) mod read_equivalence;
pub mod signature;
pub mod types;
pub mod webhook;
