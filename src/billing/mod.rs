//! The pure billing core: calendars, money arithmetic, dunning, and the charge state machine.
//! No runtime imports and no clock: every function takes `now` as an argument, so all of it is
//! tested natively, including property tests of the calendar and the money math.

pub mod charge_driver;
pub mod charge_machine;
pub mod decline;
pub mod dunning;
pub mod installments;
pub mod interval;
pub mod metered;
pub mod period;
pub mod renewal;
pub mod time;

#[cfg(test)]
mod charge_simulation;
