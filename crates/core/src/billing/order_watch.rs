//! Orders we stopped using, watched for what the provider may still do on them.
//!
//! Nothing in the provider's documents says that cancelling an order stops a payment already in
//! progress, and its status may lag by minutes. So every order the backend fenced, abandoned,
//! created without using, or learned about only from a webhook stays watched for days, with
//! backoff. A payment that completes there is the charge's success if the charge has none yet
//! (adopted), and otherwise a second payment, refunded at once with a return order and recorded
//! as an incident. A decline that shows up late is recorded on its attempt, so the card's
//! retry limits count it. Generic over [`WatchIo`], like the charge driver, so the simulation
//! runs this very code.

use super::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::psp::envelope::PspError;
use crate::psp::types::{OrderStatus, PaymentState};

/// How long and how often orders are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchPolicy {
    /// How long an order stays watched after we stopped using it.
    pub watch_for_ms: i64,
    /// A payment still in flight when the watch ends is followed until this, then left to an
    /// operator (an incident says so).
    pub at_most_ms: i64,
    pub first_gap_ms: i64,
    pub longest_gap_ms: i64,
}

/// Seven days, looking after a minute, then doubling the gap up to six hours.
pub const WATCH: WatchPolicy = WatchPolicy {
    watch_for_ms: 7 * DAY_MS,
    at_most_ms: 30 * DAY_MS,
    first_gap_ms: MINUTE_MS,
    longest_gap_ms: 6 * HOUR_MS,
};

impl WatchPolicy {
    /// When to look again after `checks` looks.
    pub fn next_check(&self, now: i64, checks: u32) -> i64 {
        let gap = self
            .first_gap_ms
            .saturating_mul(1_i64 << checks.min(20))
            .min(self.longest_gap_ms);
        now + gap
    }
}

/// Whose order it is, as the ledger says when the watch looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A charge. `paid_with`: the payment the charge succeeded with, if it did.
    Charge {
        charge_id: String,
        paid_with: Option<String>,
    },
    /// A checkout. `paid_here`: the checkout was paid on this very order.
    Checkout {
        checkout_id: String,
        paid_here: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedOrder {
    pub order_id: String,
    pub owner: Owner,
    /// When we stopped using it (business time).
    pub since: i64,
    pub checks: u32,
}

/// What adopting a late payment as the charge's success came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    Adopted,
    /// Not adoptable: the charge succeeded with another payment meanwhile (this one is a
    /// duplicate), or an order of the charge is lost, so a payment there could never be seen
    /// and refunded (the one we can see is refunded instead).
    Declined,
    /// Someone holds the charge's lease: look again soon.
    Busy,
}

#[allow(async_fn_in_trait)]
pub trait WatchIo {
    type Error;

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError>;
    /// Records the payment as the charge's success, under the charge's lease.
    async fn adopt(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<Adoption, Self::Error>;
    /// Refunds a payment nobody expects with a return order (once per payment, whatever
    /// retries), and records the incident.
    async fn reverse(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Self::Error>;
    /// A payment of ours on the order was declined by the card, learned late.
    async fn note_decline(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        reason: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// Tells an operator (once) that the provider no longer knows the order, or that the
    /// watch ended with a payment still in flight.
    async fn note_incident(&mut self, order: &WatchedOrder, kind: &str) -> Result<(), Self::Error>;
    async fn reschedule(&mut self, order: &WatchedOrder, at: i64) -> Result<(), Self::Error>;
    /// Nothing more can happen that we would act on.
    async fn close(&mut self, order: &WatchedOrder) -> Result<(), Self::Error>;
}

/// How one look at a watched order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Looked {
    Quiet,
    Adopted,
    Reversed,
    Closed,
}

/// Looks at one watched order at business time `now`.
pub async fn look<I: WatchIo>(
    io: &mut I,
    order: &WatchedOrder,
    now: i64,
    policy: &WatchPolicy,
) -> Result<Looked, I::Error> {
    let later = policy.next_check(now, order.checks);
    let status = match io.status(&order.order_id).await {
        Ok(status) => status,
        Err(PspError::NotFound) => {
            io.note_incident(order, "orderLost").await?;
            io.reschedule(order, later).await?;
            return Ok(Looked::Quiet);
        }
        Err(_) => {
            io.reschedule(order, later).await?;
            return Ok(Looked::Quiet);
        }
    };
    // A payment of the order that completed: at most one, the provider takes no payment on a
    // completed order.
    let completed = status
        .payments
        .iter()
        .find(|p| PaymentState::parse(&p.payment_status) == PaymentState::Completed);
    if let Some(payment) = completed {
        let expected = match &order.owner {
            Owner::Charge { paid_with, .. } => match paid_with {
                Some(id) if *id == payment.payment_id => return close(io, order).await,
                Some(_) => false,
                None => true,
            },
            Owner::Checkout { paid_here, .. } => {
                if *paid_here {
                    return close(io, order).await;
                }
                false
            }
        };
        if expected {
            match io.adopt(order, &payment.payment_id, payment.amount).await? {
                Adoption::Adopted => {
                    io.close(order).await?;
                    return Ok(Looked::Adopted);
                }
                Adoption::Busy => {
                    io.reschedule(order, now + policy.first_gap_ms).await?;
                    return Ok(Looked::Quiet);
                }
                Adoption::Declined => {}
            }
        }
        io.reverse(order, &payment.payment_id, payment.amount)
            .await?;
        io.close(order).await?;
        return Ok(Looked::Reversed);
    }
    if matches!(order.owner, Owner::Charge { .. }) {
        for p in &status.payments {
            if PaymentState::parse(&p.payment_status) == PaymentState::Failed {
                io.note_decline(order, &p.payment_id, p.failure_reason.as_deref())
                    .await?;
            }
        }
    }
    let in_flight = status
        .payments
        .iter()
        .any(|p| PaymentState::parse(&p.payment_status) == PaymentState::InFlight);
    let age = now - order.since;
    if (!in_flight && age >= policy.watch_for_ms) || age >= policy.at_most_ms {
        if in_flight {
            io.note_incident(order, "paymentStuck").await?;
        }
        return close(io, order).await;
    }
    io.reschedule(order, later).await?;
    Ok(Looked::Quiet)
}

async fn close<I: WatchIo>(io: &mut I, order: &WatchedOrder) -> Result<Looked, I::Error> {
    io.close(order).await?;
    Ok(Looked::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_from_a_minute_to_six_hours() {
        assert_eq!(WATCH.next_check(0, 0), MINUTE_MS);
        assert_eq!(WATCH.next_check(0, 1), 2 * MINUTE_MS);
        assert_eq!(WATCH.next_check(0, 9), 6 * HOUR_MS);
        assert_eq!(WATCH.next_check(0, u32::MAX), 6 * HOUR_MS);
        // Seven days of watching take a bounded number of looks.
        let (mut t, mut n) = (0, 0);
        while t < WATCH.watch_for_ms {
            t = WATCH.next_check(t, n);
            n += 1;
        }
        assert!(n < 40, "{n} looks");
    }
}
