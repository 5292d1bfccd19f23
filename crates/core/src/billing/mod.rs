//! The pure billing core: calendars, money arithmetic, decline classification, dunning, and the
//! charge state machine.
//!
//! Nothing here imports the Workers runtime or reads a clock: every function takes `now` as an
//! argument and instants are plain `i64` milliseconds (UTC), as the ledger stores them. That is
//! what lets the rules that move money (which period a charge belongs to, what it costs, whether
//! to retry it) be tested natively and exhaustively, including with property tests, and replayed
//! at any simulated time without a worker.

pub mod calendar;
pub mod charge_driver;
pub mod charge_machine;
pub mod decline;
pub mod discount;
pub mod dunning;
pub mod installments;
pub mod interval;
pub mod metered;
pub mod order_watch;
pub mod period;
pub mod proration;
pub mod refund_plan;
pub mod renewal;
pub mod reports;
pub mod settlement;
pub mod time;
pub mod trial;

#[cfg(test)]
mod charge_simulation;
