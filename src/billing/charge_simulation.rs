//! Randomised simulation of the charge driver against a provider that refuses, fails before or
//! after acting, times out, lags its status, and a process that crashes between any provider
//! call and the ledger write after it. Whatever happens, a charge never completes two payments,
//! and once the faults stop it always ends in the right final state.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::charge_driver::{ChargeIo, DriveEnd, DriveOptions, drive};
use super::charge_machine::{Attempt, AttemptStatus, ChargeStatus, ChargeView};
use crate::psp::envelope::PspError;
use crate::psp::types::{OrderStatus, PaymentStatus};

/// The simulated I/O never suspends, so a single poll completes the future.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("simulated I/O never suspends"),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: small, deterministic per seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PayState {
    InFlight { settles_at: u64 },
    Completed,
    Failed,
    Cancelled,
}

struct Payment {
    id: String,
    state: PayState,
    created_at: u64,
}

#[derive(Default)]
struct Order {
    cancelled: bool,
    payments: Vec<Payment>,
}

/// The provider's real state, with the behaviour of the card.
struct Provider {
    orders: BTreeMap<String, Order>,
    approve: bool,
    clock: u64,
    next_id: u64,
}

impl Provider {
    fn advance(&mut self) {
        self.clock += 1;
        let (clock, approve) = (self.clock, self.approve);
        for order in self.orders.values_mut() {
            for p in &mut order.payments {
                if let PayState::InFlight { settles_at } = p.state
                    && settles_at <= clock
                {
                    p.state = if approve {
                        PayState::Completed
                    } else {
                        PayState::Failed
                    };
                }
            }
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn completed_payments(&self) -> Vec<String> {
        self.orders
            .values()
            .flat_map(|o| &o.payments)
            .filter(|p| p.state == PayState::Completed)
            .map(|p| p.id.clone())
            .collect()
    }
}

/// The durable ledger, as D1 would hold it.
#[derive(Clone, Default)]
struct Ledger {
    status: Option<ChargeStatus>,
    order_id: Option<String>,
    attempts: Vec<Attempt>,
    refusals: u32,
    payment_id: Option<String>,
}

impl Ledger {
    fn view(&self) -> ChargeView {
        let latest = self.attempts.last().cloned();
        let earlier = self.attempts[..self.attempts.len().saturating_sub(1)]
            .iter()
            .filter_map(|a| a.payment_id.clone())
            .collect();
        ChargeView {
            status: self.status.unwrap_or(ChargeStatus::Processing),
            order_id: self.order_id.clone(),
            latest,
            earlier_payment_ids: earlier,
            retry_due: false,
            may_initiate: true,
            start_expired: false,
        }
    }

    fn attempt(&mut self, number: u32) -> &mut Attempt {
        self.attempts
            .iter_mut()
            .find(|a| a.number == number)
            .expect("recorded attempts exist")
    }
}

#[derive(Debug)]
struct Crash;

struct Sim<'a> {
    provider: &'a mut Provider,
    ledger: &'a mut Ledger,
    rng: &'a mut Rng,
    faults: bool,
    /// Set when a provider call acted: the next ledger write may be lost to a crash.
    crash_window: bool,
}

impl Sim<'_> {
    /// Decides the fate of one provider call: refused, failed before acting, or acted (and then
    /// possibly failed or timed out so that the caller does not learn the result).
    fn fault(&mut self) -> Fault {
        self.provider.advance();
        if !self.faults {
            return Fault::None;
        }
        match self.rng.next() % 100 {
            0..=7 => Fault::Refuse,
            8..=15 => Fault::FailBefore,
            16..=27 => Fault::FailAfter,
            _ => Fault::None,
        }
    }

    fn write(&mut self) -> Result<(), Crash> {
        if self.faults && std::mem::take(&mut self.crash_window) && self.rng.chance(30) {
            return Err(Crash);
        }
        Ok(())
    }
}

#[derive(PartialEq, Eq)]
enum Fault {
    None,
    Refuse,
    FailBefore,
    FailAfter,
}

fn business(code: &str) -> PspError {
    PspError::Business {
        code: code.into(),
        message: String::new(),
    }
}

impl ChargeIo for Sim<'_> {
    type Error = Crash;

    async fn create_order(&mut self) -> Result<String, PspError> {
        let fault = self.fault();
        match fault {
            Fault::Refuse => return Err(business("OR_0001")),
            Fault::FailBefore => return Err(PspError::Unavailable { status: 500 }),
            _ => {}
        }
        let id = self.provider.id("o");
        self.provider.orders.insert(id.clone(), Order::default());
        self.crash_window = true;
        if fault == Fault::FailAfter {
            return Err(PspError::Timeout);
        }
        Ok(id)
    }

    async fn initiate(&mut self, order_id: &str) -> Result<String, PspError> {
        let fault = self.fault();
        match fault {
            Fault::Refuse => return Err(business("PS_0001")),
            Fault::FailBefore => return Err(PspError::Unavailable { status: 502 }),
            _ => {}
        }
        let id = self.provider.id("p");
        let settles_at = self.provider.clock + 1 + self.rng.next() % 4;
        let clock = self.provider.clock;
        let order = self.provider.orders.get_mut(order_id).expect("known order");
        if order.cancelled {
            return Err(business("PS_0040"));
        }
        if order
            .payments
            .iter()
            .any(|p| p.state == PayState::Completed)
        {
            return Err(business("PS_0041"));
        }
        order.payments.push(Payment {
            id: id.clone(),
            state: PayState::InFlight { settles_at },
            created_at: clock,
        });
        self.crash_window = true;
        if fault == Fault::FailAfter {
            return Err(PspError::Timeout);
        }
        Ok(id)
    }

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        let fault = self.fault();
        if fault == Fault::FailBefore || fault == Fault::Refuse {
            return Err(PspError::Unavailable { status: 503 });
        }
        // A lagging status does not show recent payments; sometimes for longer than a drive
        // polls, which is exactly when an attempt's outcome stays unknown.
        let lag = if self.faults && self.rng.chance(30) {
            self.rng.next() % 16
        } else {
            0
        };
        let clock = self.provider.clock;
        let order = self
            .provider
            .orders
            .get(order_id)
            .ok_or(PspError::NotFound)?;
        let payments = order
            .payments
            .iter()
            .filter(|p| p.created_at + lag <= clock)
            .map(|p| PaymentStatus {
                payment_id: p.id.clone(),
                payment_status: match p.state {
                    PayState::InFlight { .. } => "PAYMENT_PROCESSING",
                    PayState::Completed => "PAYMENT_COMPLETED",
                    PayState::Failed => "PAYMENT_FAILED",
                    PayState::Cancelled => "PAYMENT_CANCELLED",
                }
                .into(),
                payment_method: Some("CTOKEN".into()),
                amount: Some(500),
                failure_reason: (p.state == PayState::Failed).then(|| "DENIED_NO_FUNDS".into()),
            })
            .collect();
        Ok(OrderStatus {
            order_status: "PAYMENT_INITIATED".into(),
            payments,
        })
    }

    async fn cancel_order(&mut self, order_id: &str) -> Result<(), PspError> {
        let fault = self.fault();
        if fault == Fault::FailBefore {
            return Err(PspError::Timeout);
        }
        let order = self.provider.orders.get_mut(order_id).expect("known order");
        if order
            .payments
            .iter()
            .any(|p| p.state == PayState::Completed)
        {
            return Err(business("OR_0050"));
        }
        order.cancelled = true;
        for p in &mut order.payments {
            if matches!(p.state, PayState::InFlight { .. }) {
                p.state = PayState::Cancelled;
            }
        }
        self.crash_window = true;
        if fault == Fault::FailAfter {
            return Err(PspError::Timeout);
        }
        Ok(())
    }

    async fn sleep(&mut self, _ms: u32) {
        self.provider.advance();
    }

    async fn record_order(&mut self, order_id: &str) -> Result<(), Crash> {
        self.write()?;
        self.ledger.order_id = Some(order_id.into());
        Ok(())
    }

    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Crash> {
        self.write()?;
        if self.ledger.attempts.iter().any(|a| a.number == number) {
            return Ok(false);
        }
        self.ledger.attempts.push(Attempt {
            number,
            order_id: order_id.into(),
            payment_id: None,
            status: AttemptStatus::Claimed,
        });
        self.ledger.status = Some(ChargeStatus::Pending);
        Ok(true)
    }

    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.payment_id = Some(payment_id.into());
        a.status = AttemptStatus::Initiated;
        Ok(())
    }

    async fn record_refused(&mut self, number: Option<u32>, _: &str, n: u32) -> Result<(), Crash> {
        self.write()?;
        if let Some(number) = number {
            self.ledger.attempt(number).status = AttemptStatus::Rejected;
        }
        self.ledger.refusals = n;
        Ok(())
    }

    async fn record_fenced(&mut self, number: u32, _order_id: &str) -> Result<(), Crash> {
        self.write()?;
        self.ledger.attempt(number).status = AttemptStatus::Fenced;
        self.ledger.order_id = None;
        Ok(())
    }

    async fn record_success(&mut self, number: u32, id: &str, _: Option<i64>) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.status = AttemptStatus::Succeeded;
        a.payment_id = Some(id.into());
        self.ledger.status = Some(ChargeStatus::Succeeded);
        self.ledger.payment_id = Some(id.into());
        Ok(())
    }

    async fn record_decline(
        &mut self,
        number: u32,
        id: &str,
        _: Option<&str>,
    ) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.status = AttemptStatus::Failed;
        a.payment_id = Some(id.into());
        self.ledger.status = Some(ChargeStatus::Failed);
        self.ledger.payment_id = Some(id.into());
        Ok(())
    }

    async fn record_waiting(&mut self, _: Option<&str>) -> Result<(), Crash> {
        self.write()
    }

    async fn record_failure(&mut self, _: &str) -> Result<(), Crash> {
        self.write()?;
        self.ledger.status = Some(ChargeStatus::Failed);
        Ok(())
    }
}

struct Outcome {
    ledger: Ledger,
    orders: usize,
    completed: Vec<String>,
    max_completed_seen: usize,
}

/// Drives one charge: some drives with faults and crashes, then drives without faults until
/// the charge is final.
fn simulate(seed: u64, approve: bool, faulty_drives: usize) -> Outcome {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut provider = Provider {
        orders: BTreeMap::new(),
        approve,
        clock: 0,
        next_id: 0,
    };
    let mut ledger = Ledger::default();
    let options = |ledger: &Ledger| DriveOptions {
        poll_delays_ms: vec![1, 1, 1],
        refusals: ledger.refusals,
        stop_after_initiate: false,
    };
    let mut max_completed_seen = 0;
    for round in 0..faulty_drives + 12 {
        let faults = round < faulty_drives;
        let view = ledger.view();
        let opts = options(&ledger);
        let mut sim = Sim {
            provider: &mut provider,
            ledger: &mut ledger,
            rng: &mut rng,
            faults,
            crash_window: false,
        };
        let result = run(drive(&mut sim, view, &opts));
        max_completed_seen = max_completed_seen.max(provider.completed_payments().len());
        if !faults
            && matches!(
                result,
                Ok(DriveEnd::Succeeded | DriveEnd::Declined | DriveEnd::Failed)
            )
        {
            break;
        }
    }
    let completed = provider.completed_payments();
    Outcome {
        orders: provider.orders.len(),
        ledger,
        completed,
        max_completed_seen,
    }
}

#[test]
fn never_two_payments_and_always_the_right_end_when_the_card_approves() {
    for seed in 0..3_000 {
        let out = simulate(seed, true, 1 + (seed % 6) as usize);
        assert!(
            out.max_completed_seen <= 1,
            "seed {seed}: two completed payments"
        );
        // A charge can fail without moving money when the provider refused too often.
        match out.ledger.status {
            Some(ChargeStatus::Succeeded) => {
                assert_eq!(out.completed.len(), 1, "seed {seed}");
                assert_eq!(
                    out.ledger.payment_id.as_ref(),
                    out.completed.first(),
                    "seed {seed}"
                );
            }
            Some(ChargeStatus::Failed) => {
                assert!(
                    out.completed.is_empty(),
                    "seed {seed}: failed charge moved money"
                );
                assert!(
                    out.ledger.refusals >= 1,
                    "seed {seed}: failed without a refusal"
                );
            }
            other => panic!("seed {seed}: charge not final without faults: {other:?}"),
        }
    }
}

#[test]
fn a_declining_card_never_moves_money_and_ends_declined() {
    for seed in 0..1_500 {
        let out = simulate(seed, false, 1 + (seed % 4) as usize);
        assert!(out.completed.is_empty(), "seed {seed}");
        assert_eq!(out.ledger.status, Some(ChargeStatus::Failed), "seed {seed}");
    }
}

#[test]
fn the_simulation_reaches_the_hard_cases() {
    // Guards the simulation itself: the seeds above must exercise fences (attempts whose
    // outcome was unknown and whose order was cancelled), orphan orders and refusals.
    let (mut fenced, mut orphans, mut refused, mut multi_attempt) = (0, 0, 0, 0);
    for seed in 0..3_000 {
        let out = simulate(seed, true, 1 + (seed % 6) as usize);
        fenced += out
            .ledger
            .attempts
            .iter()
            .filter(|a| a.status == AttemptStatus::Fenced)
            .count();
        refused += usize::from(out.ledger.refusals > 0);
        multi_attempt += usize::from(out.ledger.attempts.len() > 1);
        orphans += usize::from(out.orders > out.ledger.attempts.len().max(1));
    }
    assert!(fenced > 50, "fenced {fenced}");
    assert!(refused > 50, "refused {refused}");
    assert!(multi_attempt > 50, "multi {multi_attempt}");
    assert!(orphans > 50, "orphans {orphans}");
}

#[test]
fn without_faults_a_charge_takes_one_order_and_one_payment() {
    let out = simulate(7, true, 0);
    assert_eq!(out.ledger.status, Some(ChargeStatus::Succeeded));
    assert_eq!(out.ledger.attempts.len(), 1);
    assert_eq!(out.completed.len(), 1);
}
