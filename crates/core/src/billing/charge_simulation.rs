//! Randomised simulation of the charge driver and the order watch against a provider that is
//! as unkind as its documents allow: it refuses, fails before or after acting, times out, lags
//! its status (hiding payments and their declines), answers 5xx to a cancel it carried out,
//! lets a payment complete on an order it confirmed cancelled, and forgets orders (404); and a
//! process that crashes between any provider call and the ledger write after it.
//!
//! Whatever happens: after reconciliation a charge never has two net payments; no decline is
//! booked that the card did not give; the card is never attempted after it hard-declined; and
//! once the faults stop every charge is final or flagged for an operator.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::charge_driver::{Attention, ChargeFailure, ChargeIo, DriveOptions, drive};
use super::charge_machine::{Attempt, AttemptStatus, CardGuard, ChargeStatus, ChargeView};
use super::dunning::CardLimit;
use super::order_watch::{Adoption, Owner, WatchIo, WatchPolicy, WatchedOrder, look};
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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The settle window, in simulated clock units (one per provider call).
const WINDOW: i64 = 40;
/// The longest status lag of a provider that keeps the design's assumption: shorter than the
/// window.
const MAX_LAG: u64 = 16;
/// A provider that breaks it: its status lags several windows behind.
const SLOW_LAG: u64 = 3 * WINDOW as u64;
/// The watch, on the simulation's time scale.
const WATCH: WatchPolicy = WatchPolicy {
    watch_for_ms: 10 * WINDOW,
    at_most_ms: 50 * WINDOW,
    first_gap_ms: 5,
    longest_gap_ms: 2 * WINDOW,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Card {
    Approves,
    SoftDeclines,
    HardDeclines,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PayState {
    InFlight {
        settles_at: u64,
    },
    Completed,
    /// Declined by the card.
    Failed,
    Cancelled,
}

struct Payment {
    id: String,
    order_id: String,
    state: PayState,
    created_at: u64,
    /// When it reached its final state.
    final_at: u64,
    /// How far behind the status shows it: its existence and its outcome each appear this
    /// long after they happened.
    lag: u64,
    reversed: bool,
}

#[derive(Default)]
struct Order {
    cancelled: bool,
    lost: bool,
}

/// The provider's real state, with the behaviour of the card.
struct Provider {
    orders: BTreeMap<String, Order>,
    payments: Vec<Payment>,
    card: Card,
    /// Whether a confirmed cancel stops payments in flight on the order.
    fence_honoured: bool,
    /// How far behind its status can be, and how often it is.
    max_lag: u64,
    lag_percent: u64,
    loses_orders: bool,
    clock: u64,
    next_id: u64,
}

impl Provider {
    fn advance(&mut self) {
        self.clock += 1;
        let (clock, card) = (self.clock, self.card);
        for p in &mut self.payments {
            if let PayState::InFlight { settles_at } = p.state
                && settles_at <= clock
            {
                p.state = if card == Card::Approves {
                    PayState::Completed
                } else {
                    PayState::Failed
                };
                p.final_at = clock;
            }
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn net_payments(&self) -> usize {
        self.payments
            .iter()
            .filter(|p| p.state == PayState::Completed && !p.reversed)
            .count()
    }

    fn first_hard_decline(&self) -> Option<u64> {
        (self.card == Card::HardDeclines)
            .then(|| {
                self.payments
                    .iter()
                    .filter(|p| p.state == PayState::Failed)
                    .map(|p| p.final_at)
                    .min()
            })
            .flatten()
    }

    fn decline_reason(&self) -> &'static str {
        match self.card {
            Card::HardDeclines => "DENIED_DO_NOT_TRY_AGAIN",
            _ => "DENIED_NO_FUNDS",
        }
    }
}

#[derive(Clone)]
struct Watched {
    order: WatchedOrder,
    next_at: i64,
    closed: bool,
}

/// The durable ledger, as D1 would hold it.
#[derive(Clone, Default)]
struct Ledger {
    status: Option<ChargeStatus>,
    order_id: Option<String>,
    attempts: Vec<Attempt>,
    refusals: u32,
    payment_id: Option<String>,
    declines: u32,
    hard_declined: bool,
    failure: Option<ChargeFailure>,
    attention: Option<&'static str>,
    watched: Vec<Watched>,
    /// Payments refunded as duplicates or unexpected.
    reversed: Vec<String>,
    /// Round trips to the ledger, the lease's included.
    writes: usize,
}

impl Ledger {
    fn view(&self, now: i64) -> ChargeView {
        let latest = self.attempts.last().cloned();
        let earlier = self.attempts[..self.attempts.len().saturating_sub(1)]
            .iter()
            .filter_map(|a| a.payment_id.clone())
            .collect();
        let status = self.status.unwrap_or(ChargeStatus::Processing);
        ChargeView {
            status,
            order_id: self.order_id.clone(),
            latest,
            earlier_payment_ids: earlier,
            // Dunning, reduced to its essence: soft declines are retried twice.
            retry_due: status == ChargeStatus::Failed
                && self.failure.is_none()
                && !self.hard_declined
                && self.declines < 3,
            may_initiate: true,
            start_expired: false,
            now,
            settle_window_ms: WINDOW,
            card: if self.hard_declined {
                CardGuard::HardDeclined
            } else {
                CardGuard::Clear
            },
        }
    }

    fn attempt(&mut self, number: u32) -> &mut Attempt {
        self.attempts
            .iter_mut()
            .find(|a| a.number == number)
            .expect("recorded attempts exist")
    }

    fn watch(&mut self, order_id: &str, now: i64) {
        if self.order_id.as_deref() == Some(order_id) {
            self.order_id = None;
        }
        if self.watched.iter().any(|w| w.order.order_id == order_id) {
            return;
        }
        self.watched.push(Watched {
            order: WatchedOrder {
                order_id: order_id.to_owned(),
                owner: Owner::Charge {
                    charge_id: "ch".into(),
                    paid_with: None,
                },
                since: now,
                checks: 0,
            },
            next_at: now,
            closed: false,
        });
    }

    fn is_final(&self) -> bool {
        match self.status {
            Some(ChargeStatus::Succeeded) => true,
            Some(ChargeStatus::Failed) => !self.view(0).retry_due,
            _ => false,
        }
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
    /// Every `POST /payments` that reached the provider, with the clock then.
    initiated_at: &'a mut Vec<u64>,
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

impl Sim<'_> {
    fn now(&self) -> i64 {
        self.provider.clock as i64
    }

    /// Decides the fate of one provider call: refused, failed before acting, or acted (and then
    /// possibly failed or timed out so that the caller does not learn the result).
    fn fault(&mut self) -> Fault {
        self.provider.advance();
        if !self.faults {
            return Fault::None;
        }
        match self.rng.next() % 100 {
            0..=6 => Fault::Refuse,
            7..=14 => Fault::FailBefore,
            15..=26 => Fault::FailAfter,
            _ => Fault::None,
        }
    }

    fn write(&mut self) -> Result<(), Crash> {
        self.ledger.writes += 1;
        if self.faults && std::mem::take(&mut self.crash_window) && self.rng.chance(30) {
            return Err(Crash);
        }
        Ok(())
    }

    fn order(&mut self, order_id: &str) -> Result<&mut Order, PspError> {
        match self.provider.orders.get_mut(order_id) {
            Some(order) if !order.lost => Ok(order),
            _ => Err(PspError::NotFound),
        }
    }

    /// The status as the provider shows it: each payment appears, and its outcome shows, only
    /// its lag after they happened. Declines hide behind the lag as well as successes.
    fn status_now(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        let fault = self.fault();
        if fault == Fault::FailBefore || fault == Fault::Refuse {
            return Err(PspError::Unavailable { status: 503 });
        }
        if self.faults && self.provider.loses_orders && self.rng.chance(2) {
            // The provider forgets the order for good.
            self.order(order_id)?.lost = true;
        }
        let clock = self.provider.clock;
        let order = self.order(order_id)?;
        let cancelled = order.cancelled;
        let reason = self.provider.decline_reason();
        let payments = self
            .provider
            .payments
            .iter()
            .filter(|p| p.order_id == order_id && p.created_at + p.lag <= clock)
            .map(|p| {
                let state = if p.final_at.saturating_add(p.lag) <= clock {
                    p.state
                } else {
                    PayState::InFlight { settles_at: 0 }
                };
                PaymentStatus {
                    payment_id: p.id.clone(),
                    payment_status: match state {
                        PayState::InFlight { .. } => "PAYMENT_PROCESSING",
                        PayState::Completed => "PAYMENT_COMPLETED",
                        PayState::Failed => "PAYMENT_FAILED",
                        PayState::Cancelled => "PAYMENT_CANCELLED",
                    }
                    .into(),
                    payment_method: Some("CTOKEN".into()),
                    amount: Some(500),
                    failure_reason: (state == PayState::Failed).then(|| reason.into()),
                }
            })
            .collect();
        Ok(OrderStatus {
            transactions: Vec::new(),
            order_status: if cancelled {
                "PAYMENT_CANCELLED"
            } else {
                "PAYMENT_INITIATED"
            }
            .into(),
            payments,
        })
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
        let clock = self.provider.clock;
        let order = self.order(order_id)?;
        if order.cancelled {
            return Err(business("PS_0040"));
        }
        if self.provider.payments.iter().any(|p| {
            p.order_id == order_id
                && matches!(p.state, PayState::Completed | PayState::InFlight { .. })
        }) {
            return Err(business("PS_0041"));
        }
        let id = self.provider.id("p");
        // Most payments settle at once; some take long enough for a fence to meet them in flight.
        let settles_at = clock
            + 1
            + if self.rng.chance(30) {
                self.rng.below(3 * WINDOW as u64)
            } else {
                self.rng.below(6)
            };
        let lag = if self.faults && self.rng.chance(self.provider.lag_percent) {
            self.rng.below(self.provider.max_lag)
        } else {
            0
        };
        self.provider.payments.push(Payment {
            id: id.clone(),
            order_id: order_id.into(),
            state: PayState::InFlight { settles_at },
            created_at: clock,
            final_at: u64::MAX,
            lag,
            reversed: false,
        });
        self.initiated_at.push(clock);
        self.crash_window = true;
        if fault == Fault::FailAfter {
            return Err(PspError::Timeout);
        }
        Ok(id)
    }

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        self.status_now(order_id)
    }

    async fn cancel_order(&mut self, order_id: &str) -> Result<(), PspError> {
        let fault = self.fault();
        if fault == Fault::FailBefore || fault == Fault::Refuse {
            return Err(PspError::Timeout);
        }
        let clock = self.provider.clock;
        let honoured = self.provider.fence_honoured;
        self.order(order_id)?;
        if self
            .provider
            .payments
            .iter()
            .any(|p| p.order_id == order_id && p.state == PayState::Completed)
        {
            return Err(business("OR_0040"));
        }
        self.order(order_id)?.cancelled = true;
        if honoured {
            for p in &mut self.provider.payments {
                if p.order_id == order_id && matches!(p.state, PayState::InFlight { .. }) {
                    p.state = PayState::Cancelled;
                    p.final_at = clock;
                }
            }
        }
        self.crash_window = true;
        if fault == Fault::FailAfter {
            return Err(PspError::Unavailable { status: 500 });
        }
        Ok(())
    }

    async fn sleep(&mut self, _ms: u32) {
        self.provider.advance();
    }

    async fn record_order(&mut self, order_id: &str, ahead: Option<u32>) -> Result<(), Crash> {
        self.write()?;
        self.ledger.order_id = Some(order_id.into());
        if let Some(number) = ahead {
            self.ledger.attempt(number).order_id = Some(order_id.into());
        }
        Ok(())
    }

    async fn claim_attempt(&mut self, number: u32, order_id: &str) -> Result<bool, Crash> {
        self.write()?;
        if self.ledger.attempts.iter().any(|a| a.number == number) {
            return Ok(false);
        }
        self.ledger.attempts.push(Attempt {
            number,
            order_id: Some(order_id.into()),
            payment_id: None,
            status: AttemptStatus::Claimed,
            created_at: self.now(),
        });
        self.ledger.status = Some(ChargeStatus::Pending);
        Ok(true)
    }

    async fn record_initiated(&mut self, number: u32, payment_id: &str) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.payment_id = Some(payment_id.into());
        if a.status == AttemptStatus::Claimed {
            a.status = AttemptStatus::Initiated;
        }
        Ok(())
    }

    async fn record_refused(
        &mut self,
        attempt: Option<(u32, &str)>,
        _: &str,
        n: u32,
    ) -> Result<(), Crash> {
        self.write()?;
        if let Some((number, order_id)) = attempt {
            self.ledger.attempt(number).status = AttemptStatus::Rejected;
            let now = self.now();
            self.ledger.watch(order_id, now);
        }
        self.ledger.refusals = n;
        Ok(())
    }

    async fn record_fenced(&mut self, number: u32) -> Result<(), Crash> {
        self.write()?;
        self.ledger.attempt(number).status = AttemptStatus::Fenced;
        Ok(())
    }

    async fn record_ended(
        &mut self,
        number: u32,
        status: AttemptStatus,
        payment_id: Option<&str>,
        order_id: &str,
    ) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.status = status;
        if let Some(id) = payment_id {
            a.payment_id = Some(id.into());
        }
        let now = self.now();
        self.ledger.watch(order_id, now);
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
        reason: Option<&str>,
        given_up: Option<&str>,
    ) -> Result<(), Crash> {
        self.write()?;
        let a = self.ledger.attempt(number);
        a.status = AttemptStatus::Failed;
        a.payment_id = Some(id.into());
        self.ledger.status = Some(ChargeStatus::Failed);
        self.ledger.declines += 1;
        self.ledger.hard_declined |= reason == Some("DENIED_DO_NOT_TRY_AGAIN");
        if let Some(order_id) = given_up {
            let now = self.now();
            self.ledger.watch(order_id, now);
        }
        Ok(())
    }

    async fn record_waiting(&mut self, _: Option<&str>) -> Result<(), Crash> {
        self.write()
    }

    async fn record_attention(&mut self, why: &Attention) -> Result<(), Crash> {
        self.write()?;
        self.ledger.attention = Some(why.kind());
        Ok(())
    }

    async fn record_failure(&mut self, failure: ChargeFailure) -> Result<(), Crash> {
        self.write()?;
        self.ledger.status = Some(ChargeStatus::Failed);
        self.ledger.failure = Some(failure);
        Ok(())
    }

    async fn record_deferred(&mut self, _: CardLimit) -> Result<(), Crash> {
        self.write()
    }
}

impl WatchIo for Sim<'_> {
    type Error = Crash;

    async fn status(&mut self, order_id: &str) -> Result<OrderStatus, PspError> {
        self.status_now(order_id)
    }

    async fn adopt(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        _: Option<i64>,
    ) -> Result<Adoption, Crash> {
        self.write()?;
        if let Some(paid) = &self.ledger.payment_id {
            return Ok(if paid == payment_id {
                Adoption::Adopted
            } else {
                Adoption::Declined
            });
        }
        if self.ledger.attention == Some("orderLost") {
            return Ok(Adoption::Declined);
        }
        if let Some(a) = self
            .ledger
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.order_id.as_deref() == Some(order.order_id.as_str()))
        {
            a.status = AttemptStatus::Succeeded;
            a.payment_id = Some(payment_id.into());
        }
        // Whatever the charge had in doubt elsewhere is over now: its order is watched, and a
        // payment completing there will be a duplicate to refund.
        let now = self.now();
        let in_doubt: Vec<String> = self
            .ledger
            .attempts
            .iter_mut()
            .filter(|a| a.status.in_doubt())
            .filter_map(|a| {
                a.status = AttemptStatus::Abandoned;
                a.order_id.clone()
            })
            .collect();
        for order_id in in_doubt {
            self.ledger.watch(&order_id, now);
        }
        self.ledger.status = Some(ChargeStatus::Succeeded);
        self.ledger.payment_id = Some(payment_id.into());
        Ok(Adoption::Adopted)
    }

    async fn reverse(
        &mut self,
        _: &WatchedOrder,
        payment_id: &str,
        _: Option<i64>,
    ) -> Result<(), Crash> {
        self.write()?;
        if !self.ledger.reversed.iter().any(|r| r == payment_id) {
            self.ledger.reversed.push(payment_id.into());
            if let Some(p) = self
                .provider
                .payments
                .iter_mut()
                .find(|p| p.id == payment_id)
            {
                assert!(!p.reversed, "a payment refunded twice");
                p.reversed = true;
            }
        }
        Ok(())
    }

    async fn note_decline(
        &mut self,
        order: &WatchedOrder,
        payment_id: &str,
        _: Option<&str>,
    ) -> Result<(), Crash> {
        self.write()?;
        let known = self
            .ledger
            .attempts
            .iter()
            .any(|a| a.payment_id.as_deref() == Some(payment_id));
        let attempt = self.ledger.attempts.iter_mut().rev().find(|a| {
            a.order_id.as_deref() == Some(order.order_id.as_str())
                && (a.payment_id.as_deref() == Some(payment_id)
                    || (!known && a.payment_id.is_none()))
        });
        if let Some(a) = attempt
            && a.status != AttemptStatus::Failed
        {
            a.status = AttemptStatus::Failed;
            a.payment_id = Some(payment_id.into());
        }
        Ok(())
    }

    async fn note_incident(&mut self, _: &WatchedOrder, _: &str) -> Result<(), Crash> {
        self.write()
    }

    async fn reschedule(&mut self, order: &WatchedOrder, at: i64) -> Result<(), Crash> {
        self.write()?;
        if let Some(w) = self.watched(order) {
            w.next_at = at;
            w.order.checks += 1;
        }
        Ok(())
    }

    async fn close(&mut self, order: &WatchedOrder) -> Result<(), Crash> {
        self.write()?;
        if let Some(w) = self.watched(order) {
            w.closed = true;
        }
        Ok(())
    }
}

impl Sim<'_> {
    fn watched(&mut self, order: &WatchedOrder) -> Option<&mut Watched> {
        self.ledger
            .watched
            .iter_mut()
            .find(|w| w.order.order_id == order.order_id)
    }
}

struct Outcome {
    ledger: Ledger,
    provider: Provider,
    initiated_at: Vec<u64>,
    orders: usize,
}

/// How unkind the provider is, beyond its random faults.
#[derive(Clone, Copy)]
struct Kind {
    fence_honoured: bool,
    max_lag: u64,
    /// The provider may forget orders. Not together with a lag beyond the settle window: an
    /// order forgotten after a payment completed on it unseen is beyond what any merchant-side
    /// ledger can see (only the provider's settlement report would show it).
    loses_orders: bool,
}

impl Kind {
    /// Within the documents: lag shorter than the settle window; a cancel may or may not stop
    /// a payment in flight.
    fn documented(seed: u64) -> Kind {
        Kind {
            fence_honoured: !seed.is_multiple_of(3),
            max_lag: MAX_LAG,
            loses_orders: true,
        }
    }

    /// Beyond them, for some seeds: a status lagging several settle windows behind, so that a
    /// charge moves on while its first payment still completes.
    fn slow_sometimes(seed: u64) -> Kind {
        let slow = seed.is_multiple_of(4);
        Kind {
            max_lag: if slow { SLOW_LAG } else { MAX_LAG },
            loses_orders: !slow,
            ..Kind::documented(seed)
        }
    }
}

/// Drives one charge: some rounds with faults and crashes, then rounds without faults until the
/// charge is final and every watched order is closed. Each round drives the charge and looks
/// at the watched orders that are due, then lets simulated time pass.
fn simulate(seed: u64, card: Card, provider_kind: Kind, faulty_rounds: usize) -> Outcome {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut provider = Provider {
        orders: BTreeMap::new(),
        payments: Vec::new(),
        card,
        fence_honoured: provider_kind.fence_honoured,
        max_lag: provider_kind.max_lag,
        lag_percent: 20 + seed % 60,
        loses_orders: provider_kind.loses_orders,
        clock: 0,
        next_id: 0,
    };
    let mut ledger = Ledger::default();
    let mut initiated_at = Vec::new();
    for round in 0..faulty_rounds + 400 {
        let faults = round < faulty_rounds;
        let now = provider.clock as i64;
        // The lease of a fresh charge claims its first attempt in the same write, ahead of
        // its order; a process may die right after it.
        if ledger.attempts.is_empty() && ledger.status.is_none() {
            ledger.writes += 1;
            ledger.attempts.push(Attempt {
                number: 1,
                order_id: None,
                payment_id: None,
                status: AttemptStatus::Claimed,
                created_at: now,
            });
            ledger.status = Some(ChargeStatus::Pending);
            if faults && rng.chance(10) {
                provider.clock += 1;
                continue;
            }
        }
        let view = ledger.view(now);
        let options = DriveOptions {
            poll_delays_ms: vec![1, 1, 1],
            refusals: ledger.refusals,
            stop_after_initiate: false,
            scheduled: true,
        };
        let mut sim = Sim {
            provider: &mut provider,
            ledger: &mut ledger,
            rng: &mut rng,
            faults,
            crash_window: false,
            initiated_at: &mut initiated_at,
        };
        let _ = run(drive(&mut sim, view, &options));
        // The cron's watch over the orders we stopped using.
        let due: Vec<Watched> = sim
            .ledger
            .watched
            .iter()
            .filter(|w| !w.closed && w.next_at <= sim.now())
            .cloned()
            .collect();
        for mut w in due {
            if let Owner::Charge { paid_with, .. } = &mut w.order.owner {
                paid_with.clone_from(&sim.ledger.payment_id);
            }
            let now = sim.now();
            if run(look(&mut sim, &w.order, now, &WATCH)).is_err() {
                break;
            }
        }
        let done = sim.ledger.is_final() || sim.ledger.attention.is_some();
        let settled = sim.ledger.watched.iter().all(|w| w.closed)
            && !sim
                .provider
                .payments
                .iter()
                .any(|p| matches!(p.state, PayState::InFlight { .. }));
        if !faults && done && settled {
            break;
        }
        // Time passes between ticks; past the faults, whole windows at a time.
        provider.clock += if faults {
            rng.below(12)
        } else {
            2 * WINDOW as u64
        };
        provider.advance();
    }
    Outcome {
        orders: provider.orders.len(),
        ledger,
        provider,
        initiated_at,
    }
}

/// The properties every schedule must keep.
fn check(seed: u64, out: &Outcome) {
    let ctx = format!("seed {seed} card {:?}", out.provider.card);
    // Never two net payments; exactly one for a charge that succeeded.
    let net = out.provider.net_payments();
    match out.ledger.status {
        Some(ChargeStatus::Succeeded) => {
            assert_eq!(net, 1, "{ctx}: succeeded with {net} net payments");
            let paid = out.ledger.payment_id.as_deref();
            assert!(
                out.provider
                    .payments
                    .iter()
                    .any(|p| Some(p.id.as_str()) == paid && p.state == PayState::Completed),
                "{ctx}: the ledger's payment is not the provider's"
            );
        }
        _ if out.ledger.attention.is_some() => {
            assert!(net <= 1, "{ctx}: {net} net payments");
        }
        other => assert_eq!(net, 0, "{ctx}: {other:?} yet {net} net payments"),
    }
    // Every decline the ledger booked is one the card gave.
    for a in &out.ledger.attempts {
        if a.status == AttemptStatus::Failed {
            let p = out
                .provider
                .payments
                .iter()
                .find(|p| Some(&p.id) == a.payment_id.as_ref())
                .unwrap_or_else(|| panic!("{ctx}: a decline without a payment"));
            assert_eq!(
                p.state,
                PayState::Failed,
                "{ctx}: booked a decline of {p:?}"
            );
        }
    }
    if out.provider.card == Card::Approves {
        assert_eq!(out.ledger.declines, 0, "{ctx}: an approving card declined");
    }
    // Never a new payment on the card once it hard-declined.
    if let Some(hard_at) = out.provider.first_hard_decline() {
        let later = out.initiated_at.iter().filter(|&&t| t > hard_at).count();
        assert_eq!(later, 0, "{ctx}: {later} payments after a hard decline");
    }
    // Once the faults stop: final or flagged for an operator, and nothing left watched.
    assert!(
        out.ledger.is_final() || out.ledger.attention.is_some(),
        "{ctx}: not final: {:?}",
        out.ledger.status
    );
}

impl std::fmt::Debug for Payment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.id, self.state)
    }
}

const SEEDS: u64 = 20_000;

#[test]
fn an_approving_card_is_paid_exactly_once_whatever_the_provider_does() {
    for seed in 0..SEEDS {
        let out = simulate(
            seed,
            Card::Approves,
            Kind::slow_sometimes(seed),
            1 + (seed % 6) as usize,
        );
        check(seed, &out);
        if out.ledger.attention.is_none() {
            assert_eq!(
                out.ledger.status,
                Some(ChargeStatus::Succeeded),
                "seed {seed}: a good card must end paid"
            );
        }
    }
}

#[test]
fn a_soft_declining_card_never_moves_money_and_is_retried_only_by_dunning() {
    for seed in 0..SEEDS {
        let out = simulate(
            seed,
            Card::SoftDeclines,
            Kind::documented(seed),
            1 + (seed % 5) as usize,
        );
        check(seed, &out);
        // Declines are counted once each: dunning allows three.
        assert!(
            out.ledger.declines <= 3,
            "seed {seed}: {}",
            out.ledger.declines
        );
    }
}

#[test]
fn a_hard_declining_card_is_never_attempted_again() {
    for seed in 0..SEEDS {
        let out = simulate(
            seed,
            Card::HardDeclines,
            Kind::documented(seed),
            1 + (seed % 5) as usize,
        );
        check(seed, &out);
        assert!(
            out.ledger.declines <= 1,
            "seed {seed}: {}",
            out.ledger.declines
        );
    }
}

#[test]
fn the_simulation_reaches_the_hard_cases() {
    // Guards the simulation itself: the seeds must exercise fences, abandoned orders, late
    // payments adopted and refunded, lost orders, refusals and cancelled payments.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in 0..SEEDS {
        let out = simulate(
            seed,
            Card::Approves,
            Kind::slow_sometimes(seed),
            1 + (seed % 6) as usize,
        );
        let mut count = |what, n: usize| *seen.entry(what).or_default() += n;
        for a in &out.ledger.attempts {
            count(a.status.as_str(), 1);
        }
        count("reversed", out.ledger.reversed.len());
        let adopted_late = out.ledger.status == Some(ChargeStatus::Succeeded)
            && out.ledger.watched.iter().any(|w| {
                out.provider.payments.iter().any(|p| {
                    p.order_id == w.order.order_id && Some(&p.id) == out.ledger.payment_id.as_ref()
                })
            });
        count("adopted", usize::from(adopted_late));
        count("attention", usize::from(out.ledger.attention.is_some()));
        count("refused", usize::from(out.ledger.refusals > 0));
        count(
            "orphan orders",
            usize::from(out.orders > out.ledger.attempts.len().max(1)),
        );
        let adopted = out
            .ledger
            .attempts
            .iter()
            .filter(|a| a.status == AttemptStatus::Succeeded)
            .count();
        count("succeeded", adopted);
    }
    for (what, at_least) in [
        ("fenced", 50),
        ("cancelled", 50),
        ("abandoned", 50),
        ("rejected", 50),
        ("reversed", 50),
        ("adopted", 5),
        ("attention", 50),
        ("refused", 50),
        ("orphan orders", 50),
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) >= at_least,
            "{what}: {seen:?}"
        );
    }
}

#[test]
fn without_faults_a_charge_takes_one_order_and_one_payment() {
    let out = simulate(7, Card::Approves, Kind::documented(1), 0);
    assert_eq!(out.ledger.status, Some(ChargeStatus::Succeeded));
    assert_eq!(out.ledger.attempts.len(), 1);
    // The lease (claiming attempt 1), the order id, the outcome: three round trips.
    assert_eq!(out.ledger.writes, 3);
    assert_eq!(out.provider.payments.len(), 1);
    assert_eq!(out.orders, 1);
}
