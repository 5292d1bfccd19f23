//! The payment life cycle: `PAYMENT_INITIATED` → `PAYMENT_PROCESSING` → `PAYMENT_PROCESSED` →
//! `PAYMENT_COMPLETED` | `PAYMENT_FAILED` (or `PAYMENT_CANCELLED` at any point before), each step
//! on a task of its own after the processing delay, never inside the request that started it.

use std::time::Duration;

use crate::clock::wall_ms;
use crate::model::*;
use crate::state::{Inner, Shared, new_id};
use crate::{batches, status, webhooks};

pub struct NewPayment<'a> {
    pub order_id: &'a str,
    pub method: &'a str,
    pub token_id: Option<String>,
    pub card: Option<Card>,
    pub amount: i64,
    /// How it will end, decided now (by the card or the token's behaviour).
    pub planned: Outcome,
    /// Overrides `--processing-ms` (slow token behaviours).
    pub delay_ms: Option<u64>,
}

/// Starts a payment on an order: recorded and announced as initiated now, moved on by a task.
pub fn start_payment(sb: &Shared, inner: &mut Inner, new: NewPayment<'_>) -> String {
    let now = sb.now();
    let id = new_id();
    let currency = inner
        .ledger
        .orders
        .get(new.order_id)
        .map(|o| o.currency.clone())
        .unwrap_or_default();
    inner.ledger.payments.insert(
        id.clone(),
        Payment {
            id: id.clone(),
            order_id: new.order_id.to_owned(),
            transaction_id: new_id(),
            method: new.method.to_owned(),
            token_id: new.token_id,
            amount: new.amount,
            currency,
            status: PaymentStatus::PaymentInitiated,
            failure_reason: None,
            card: new.card,
            voided: false,
            created_at: now,
            updated_at: now,
            completed_at: None,
            planned: new.planned,
            settle_after_ms: new.delay_ms.unwrap_or(sb.config.processing_ms),
            settlement: Settlement::default(),
            receipt_id: None,
        },
    );
    if let Some(order) = inner.ledger.orders.get_mut(new.order_id) {
        order.payments.push(id.clone());
    }
    status::record(&mut inner.ledger, new.order_id, wall_ms());
    webhooks::emit(sb, inner, new.order_id, Some(&id), "order.paymentinitiated");
    sb.persist(inner);
    sb.notify_change();
    spawn_processing(sb.clone(), inner, id.clone());
    id
}

/// Cancels a payment that is not final yet (by the payment's own cancel or its order's).
/// True if it was cancelled now; a final payment is left as it is.
pub fn cancel_in_flight(
    sb: &Shared,
    inner: &mut Inner,
    payment_id: &str,
    reason: Option<&str>,
) -> bool {
    let Some(p) = inner.ledger.payments.get_mut(payment_id) else {
        return false;
    };
    if p.status.is_final() {
        return false;
    }
    p.status = PaymentStatus::PaymentCancelled;
    p.failure_reason = reason.map(str::to_owned);
    p.updated_at = sb.now();
    let order_id = p.order_id.clone();
    status::record(&mut inner.ledger, &order_id, wall_ms());
    webhooks::emit(
        sb,
        inner,
        &order_id,
        Some(payment_id),
        "order.paymentcancelled",
    );
    sb.notify_change();
    true
}

/// Restarts the processing of payments that were in flight when the state was saved.
pub fn resume_in_flight(sb: &Shared) {
    let mut guard = sb.lock();
    let in_flight: Vec<String> = guard
        .ledger
        .payments
        .values()
        .filter(|p| !p.status.is_final())
        .map(|p| p.id.clone())
        .collect();
    for id in in_flight {
        spawn_processing(sb.clone(), &mut guard, id);
    }
}

/// Waits until a payment is final, at most `timeout`; its status then (or the last one seen).
pub async fn wait_final(sb: &Shared, payment_id: &str, timeout: Duration) -> Option<PaymentStatus> {
    // Subscribe before looking, so a change between the look and the wait is not missed.
    let mut changes = sb.watch_changes();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = sb.lock().ledger.payments.get(payment_id).map(|p| p.status);
        match status {
            Some(s) if !s.is_final() => {}
            other => return other,
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return status;
        }
    }
}

#[derive(Clone, Copy)]
enum Step {
    Processing,
    Processed,
    Final,
}

/// Marks the payment's steps as pending until its task ends, however it ends (its last step,
/// a payment found final or gone, or the runtime shutting down).
struct StepsPending {
    sb: Shared,
    payment_id: String,
}

impl Drop for StepsPending {
    fn drop(&mut self) {
        self.sb.lock().steps_pending.remove(&self.payment_id);
    }
}

fn spawn_processing(sb: Shared, inner: &mut Inner, payment_id: String) {
    inner.steps_pending.insert(payment_id.clone());
    let pending = StepsPending {
        sb: sb.clone(),
        payment_id: payment_id.clone(),
    };
    tokio::spawn(async move {
        let _pending = pending;
        let total = sb
            .lock()
            .ledger
            .payments
            .get(&payment_id)
            .map_or(0, |p| p.settle_after_ms);
        // Three steps spread over the processing time.
        let mut waited = 0;
        for (step, at) in [
            (Step::Processing, total / 3),
            (Step::Processed, total * 2 / 3),
            (Step::Final, total),
        ] {
            tokio::time::sleep(Duration::from_millis(at - waited)).await;
            waited = at;
            if !advance(&sb, &payment_id, step) {
                return;
            }
        }
    });
}

/// Moves a payment one step on; false once there is nothing left to do. A payment that was
/// cancelled meanwhile stays cancelled: that is what lets a cancelled order move no money.
fn advance(sb: &Shared, payment_id: &str, step: Step) -> bool {
    let mut guard = sb.lock();
    let inner = &mut *guard;
    let Some(payment) = inner.ledger.payments.get_mut(payment_id) else {
        return false;
    };
    if payment.status.is_final() {
        return false;
    }
    let now = sb.now();
    payment.updated_at = now;
    let order_id = payment.order_id.clone();
    let event = match step {
        // The provider announces no event for this step.
        Step::Processing => {
            payment.status = PaymentStatus::PaymentProcessing;
            None
        }
        Step::Processed => {
            payment.status = PaymentStatus::PaymentProcessed;
            Some("order.paymentprocessed")
        }
        Step::Final => match payment.planned.clone() {
            Outcome::Approve => {
                payment.status = PaymentStatus::PaymentCompleted;
                Some("order.paymentcompleted")
            }
            Outcome::Decline { reason } => {
                payment.status = PaymentStatus::PaymentFailed;
                payment.failure_reason = Some(reason);
                Some("order.paymentfailed")
            }
        },
    };
    if payment.status == PaymentStatus::PaymentCompleted {
        payment.completed_at = Some(now);
        let tokenizing = payment.token_id.is_none();
        let card = payment.card.clone();
        if tokenizing {
            issue_token(&mut inner.ledger, &order_id, card, now);
        }
        batches::payment_completed(sb, inner, now);
    }
    status::record(&mut inner.ledger, &order_id, wall_ms());
    if let Some(event) = event {
        webhooks::emit(sb, inner, &order_id, Some(payment_id), event);
    }
    sb.persist(inner);
    sb.notify_change();
    !matches!(step, Step::Final)
}

/// A completed card payment on an order that asked for tokenization leaves a token behind.
fn issue_token(ledger: &mut Ledger, order_id: &str, card: Option<Card>, now: i64) {
    let (Some(card), Some(order)) = (card, ledger.orders.get(order_id)) else {
        return;
    };
    if !order.tokenize || order.kind != OrderKind::Purchase {
        return;
    }
    let token = Token {
        id: new_id(),
        order_id: order_id.to_owned(),
        default_outcome: card.later.clone().unwrap_or(Outcome::Approve),
        card,
        created_at: now,
    };
    ledger.tokens.insert(token.id.clone(), token);
}
