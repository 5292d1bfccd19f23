//! The daily settlement batches, applied to the ledger: every completed, not voided
//! transaction goes `NOT_SETTLED` → `PROCESSED` (or `ERROR`, retried at the next cutoff) at its
//! batch cutoff → `SETTLED` on its settlement date, when it joins the payout of that date and
//! currency. [`crate::settlement`] says when and how much; this module does it.
//!
//! Steps are applied when they are due by the sandbox clock: by a task about once a second, by
//! every call whose answer depends on them (status, void, refund, receipts), and at once when
//! the clock is moved. Due steps run in the order of their instants, so a clock that jumps a
//! week gives the same history as a week that passed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::wall_ms;
use crate::faults::FaultKind;
use crate::model::*;
use crate::settlement::{Schedule, purchase_fee};
use crate::state::{Inner, Shared, new_id};
use crate::status;

/// What one run did.
#[derive(Debug, Default)]
pub struct Run {
    pub processed: usize,
    pub settled: usize,
    pub errors: usize,
    /// References of the payouts opened or grown, in the order they were first touched.
    pub payouts: Vec<String>,
}

impl Run {
    /// `{"processed", "settled", "errors", "payouts": [<payout>]}`.
    pub fn view(&self, ledger: &Ledger) -> Value {
        let payouts: Vec<Value> = self
            .payouts
            .iter()
            .filter_map(|r| ledger.payouts.iter().find(|p| &p.settlement_ref == r))
            .map(payout_view)
            .collect();
        json!({
            "processed": self.processed,
            "settled": self.settled,
            "errors": self.errors,
            "payouts": payouts,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The daily cutoff takes the transaction (or fails to, with the `settlement` fault).
    Batch,
    /// Its settlement date has come.
    Settle,
}

/// A payment's next settlement step and when it is due; `None` once it has nothing left to do
/// (settled, voided, or not completed).
fn next_step(p: &Payment, schedule: &Schedule) -> Option<(i64, Step)> {
    if p.voided {
        return None;
    }
    let completed = p.completed()?;
    let s = &p.settlement;
    match s.status {
        SettlementStatus::NotSettled => Some((schedule.batch_after(completed), Step::Batch)),
        SettlementStatus::Error => Some((schedule.next_batch(s.batch_at?), Step::Batch)),
        SettlementStatus::Processed => Some((schedule.settled_at(s.batch_at?), Step::Settle)),
        SettlementStatus::Settled => None,
    }
}

/// The instant a payment completed `at` will be taken by a batch: what [`run_due`] needs to
/// know so that it looks again in time.
pub fn payment_completed(sb: &Shared, inner: &mut Inner, at: i64) {
    let batch = sb.config.schedule().batch_after(at);
    if let Some(due) = inner.settlement_due.as_mut() {
        *due = (*due).min(batch);
    }
}

/// Applies every settlement step due at `now` (sandbox clock), in the order of their instants.
pub fn run_due(sb: &Shared, inner: &mut Inner, now: i64) -> Run {
    let mut run = Run::default();
    if inner.settlement_due.is_some_and(|due| now < due) {
        return run;
    }
    let schedule = sb.config.schedule();
    // (due, completed, payment id): a fault's draws follow the instants, ties by completion.
    let mut due: BinaryHeap<Reverse<(i64, i64, String)>> = BinaryHeap::new();
    let mut later = i64::MAX;
    let queue = |p: &Payment, due: &mut BinaryHeap<_>, later: &mut i64| {
        if let Some((at, _)) = next_step(p, &schedule) {
            if at <= now {
                due.push(Reverse((at, p.completed().unwrap_or(at), p.id.clone())));
            } else {
                *later = (*later).min(at);
            }
        }
    };
    for p in inner.ledger.payments.values() {
        queue(p, &mut due, &mut later);
    }
    let mut touched_orders = BTreeSet::new();
    while let Some(Reverse((at, _, id))) = due.pop() {
        let Some(step) = inner
            .ledger
            .payments
            .get(&id)
            .and_then(|p| next_step(p, &schedule))
            .map(|(_, step)| step)
        else {
            continue;
        };
        match step {
            Step::Batch => {
                let failed = inner.faults.decide_settlement(FaultKind::Error);
                let Some(p) = inner.ledger.payments.get_mut(&id) else {
                    continue;
                };
                p.settlement.batch_at = Some(at);
                if failed {
                    p.settlement.status = SettlementStatus::Error;
                    p.settlement.settlement_date = None;
                    run.errors += 1;
                } else {
                    p.settlement.status = SettlementStatus::Processed;
                    p.settlement.settlement_date = Some(schedule.settlement_date(at).to_string());
                    run.processed += 1;
                }
            }
            Step::Settle => {
                let short = inner.faults.decide_settlement(FaultKind::ShortPayout);
                let reference = settle(sb, &mut inner.ledger, &id, short);
                if !run.payouts.contains(&reference) {
                    run.payouts.push(reference);
                }
                run.settled += 1;
            }
        }
        let p = &inner.ledger.payments[&id];
        touched_orders.insert(p.order_id.clone());
        queue(p, &mut due, &mut later);
    }
    inner.settlement_due = Some(later);
    if !touched_orders.is_empty() {
        let wall = wall_ms();
        for order_id in &touched_orders {
            status::record(&mut inner.ledger, order_id, wall);
        }
        sb.persist(inner);
    }
    run
}

/// Settles a processed payment: its fee and payout, and its line in the payout of its date and
/// currency (opened with a fresh reference by the first transaction of that date). The payout's
/// reference. `short` (the `short_payout` fault): the payout reported, on the transaction and
/// on its line alike, is one minor unit less than the fee leaves; the fee stays right.
fn settle(sb: &Shared, ledger: &mut Ledger, payment_id: &str, short: bool) -> String {
    let p = &ledger.payments[payment_id];
    let kind = ledger
        .orders
        .get(&p.order_id)
        .map_or(OrderKind::Purchase, |o| o.kind);
    let (fee, payout) = match kind {
        OrderKind::Purchase => {
            let fee = purchase_fee(p.amount, sb.config.fee_rate_bp, sb.config.fee_fixed);
            (fee, p.amount - fee)
        }
        // A refund costs nothing and is taken from the payout.
        OrderKind::Return => (0, -p.amount),
    };
    let payout = if short { payout - 1 } else { payout };
    let date = p.settlement.settlement_date.clone().unwrap_or_default();
    let line = PayoutLine {
        transaction_id: p.transaction_id.clone(),
        order_id: p.order_id.clone(),
        payment_id: p.id.clone(),
        kind,
        amount: p.amount,
        fee,
        payout,
    };
    let currency = p.currency.clone();
    let index = match ledger
        .payouts
        .iter()
        .position(|o| o.settlement_date == date && o.currency == currency)
    {
        Some(i) => i,
        None => {
            ledger.payouts.push(Payout {
                settlement_ref: new_id(),
                settlement_date: date,
                currency,
                transactions: Vec::new(),
            });
            ledger.payouts.len() - 1
        }
    };
    let payout_of_date = &mut ledger.payouts[index];
    payout_of_date.transactions.push(line);
    let reference = payout_of_date.settlement_ref.clone();
    if let Some(p) = ledger.payments.get_mut(payment_id) {
        p.settlement.status = SettlementStatus::Settled;
        p.settlement.fee = Some(fee);
        p.settlement.payout = Some(payout);
        p.settlement.settlement_ref = Some(reference.clone());
        p.settlement.short_paid = short;
    }
    reference
}

/// A payout as the control API shows it: integers in minor units.
pub fn payout_view(p: &Payout) -> Value {
    json!({
        "settlementRef": p.settlement_ref,
        "settlementDate": p.settlement_date,
        "currency": p.currency,
        "amount": p.amount(),
        "gross": p.gross(),
        "fees": p.fees(),
        "refunds": p.refunds(),
        "transactions": p.transactions.iter().map(|l| json!({
            "transactionId": l.transaction_id,
            "orderId": l.order_id,
            "paymentId": l.payment_id,
            "type": l.kind.as_str(),
            "amount": l.amount,
            "fee": l.fee,
            "payout": l.payout,
        })).collect::<Vec<_>>(),
    })
}

/// Runs the due steps about once a second, for as long as the sandbox exists.
pub fn spawn_daily_batches(sb: &Shared) {
    let sandbox = Arc::downgrade(sb);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(sb) = sandbox.upgrade() else {
                return;
            };
            let mut guard = sb.lock();
            run_due(&sb, &mut guard, sb.now());
        }
    });
}
