//! The sandbox's shared state behind one lock (held briefly, never across an await), the
//! payment life cycle, and persistence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::faults::{Decision, Endpoint, Faults};
use crate::model::*;
use crate::webhooks::{self, Event};

pub struct Inner {
    pub ledger: Ledger,
    pub faults: Faults,
    /// Webhook events held back to be delivered out of order, by order id.
    pub held: HashMap<String, Event>,
}

pub struct Sandbox {
    pub config: Config,
    pub public_url: String,
    inner: Mutex<Inner>,
}

pub type Shared = Arc<Sandbox>;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Provider ids are 18 lowercase hex characters.
pub fn new_id() -> String {
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sandbox {
    pub fn new(config: Config, public_url: String) -> Shared {
        let ledger = config
            .state_file
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice::<Ledger>(&bytes).ok())
            .unwrap_or_default();
        Arc::new(Sandbox {
            config,
            public_url,
            inner: Mutex::new(Inner {
                ledger,
                faults: Faults::default(),
                held: HashMap::new(),
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn decide(&self, endpoint: Endpoint) -> Decision {
        self.lock().faults.decide(endpoint)
    }

    /// Writes the state file (when one is configured) after a change: to a temporary file,
    /// then renamed over the old one, so a crash never leaves half a file.
    pub fn persist(&self, inner: &Inner) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(&inner.ledger) else {
            return;
        };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// Restarts the processing of payments that were in flight when the state was saved.
    pub fn resume_in_flight(self: &Arc<Self>) {
        let in_flight: Vec<String> = self
            .lock()
            .ledger
            .payments
            .values()
            .filter(|p| !p.status.is_final())
            .map(|p| p.id.clone())
            .collect();
        for id in in_flight {
            spawn_processing(self.clone(), id);
        }
    }
}

pub struct NewPayment<'a> {
    pub order_id: &'a str,
    pub method: &'a str,
    pub token_id: Option<String>,
    pub card: Option<Card>,
    pub amount: i64,
    /// How it will end, decided now (the card or the token's behaviour).
    pub planned: Outcome,
    /// Overrides the configured processing time.
    pub delay_ms: Option<u64>,
}

/// Starts a payment on an order: recorded as initiated now, settled later by a task.
pub fn start_payment(sb: &Shared, inner: &mut Inner, new: NewPayment<'_>) -> String {
    let NewPayment {
        order_id,
        method,
        token_id,
        card,
        amount,
        planned,
        delay_ms,
    } = new;
    let now = now_ms();
    let id = new_id();
    let currency = inner
        .ledger
        .orders
        .get(order_id)
        .map(|o| o.currency.clone())
        .unwrap_or_default();
    inner.ledger.payments.insert(
        id.clone(),
        Payment {
            id: id.clone(),
            order_id: order_id.to_owned(),
            method: method.to_owned(),
            token_id,
            amount,
            currency,
            status: PaymentStatus::PaymentInitiated,
            failure_reason: None,
            card,
            voided: false,
            created_at: now,
            updated_at: now,
            planned,
            settle_after_ms: delay_ms.unwrap_or(sb.config.processing_ms),
        },
    );
    if let Some(order) = inner.ledger.orders.get_mut(order_id) {
        order.payments.push(id.clone());
    }
    inner.ledger.snapshot(order_id, now);
    webhooks::emit(sb, inner, order_id, Some(&id), "order.paymentinitiated");
    sb.persist(inner);
    spawn_processing(sb.clone(), id.clone());
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
    let now = now_ms();
    p.status = PaymentStatus::PaymentCancelled;
    p.failure_reason = reason.map(str::to_owned);
    p.updated_at = now;
    let order_id = p.order_id.clone();
    inner.ledger.snapshot(&order_id, now);
    webhooks::emit(
        sb,
        inner,
        &order_id,
        Some(payment_id),
        "order.paymentcancelled",
    );
    true
}

fn spawn_processing(sb: Shared, payment_id: String) {
    tokio::spawn(async move {
        let settle = sb
            .lock()
            .ledger
            .payments
            .get(&payment_id)
            .map_or(0, |p| p.settle_after_ms);
        tokio::time::sleep(Duration::from_millis(settle / 2)).await;
        advance(&sb, &payment_id, false);
        tokio::time::sleep(Duration::from_millis(settle - settle / 2)).await;
        advance(&sb, &payment_id, true);
    });
}

/// Moves a payment one step on. A payment that was cancelled meanwhile (its order was
/// cancelled, or the payment itself) stays cancelled: that is the provider's guarantee that a
/// cancelled order moves no money.
fn advance(sb: &Shared, payment_id: &str, settle: bool) {
    let mut guard = sb.lock();
    let inner = &mut *guard;
    let Some(payment) = inner.ledger.payments.get_mut(payment_id) else {
        return;
    };
    if payment.status.is_final() {
        return;
    }
    let now = now_ms();
    payment.updated_at = now;
    let order_id = payment.order_id.clone();
    let event = if !settle {
        payment.status = PaymentStatus::PaymentProcessed;
        "order.paymentprocessed"
    } else {
        match payment.planned.clone() {
            Outcome::Approve => {
                payment.status = PaymentStatus::PaymentCompleted;
                "order.paymentcompleted"
            }
            Outcome::Decline { reason } => {
                payment.status = PaymentStatus::PaymentFailed;
                payment.failure_reason = Some(reason);
                "order.paymentfailed"
            }
        }
    };
    let completed_card = (payment.status == PaymentStatus::PaymentCompleted)
        .then(|| payment.card.clone())
        .flatten();
    if let (Some(card), Some(order)) = (completed_card, inner.ledger.orders.get(&order_id))
        && order.tokenize
        && !inner.ledger.tokens.values().any(|t| t.order_id == order_id)
    {
        let token = Token {
            id: new_id(),
            order_id: order_id.clone(),
            default_outcome: later_outcome(&card),
            card,
            created_at: now,
        };
        inner.ledger.tokens.insert(token.id.clone(), token);
    }
    inner.ledger.snapshot(&order_id, now);
    webhooks::emit(sb, inner, &order_id, Some(payment_id), event);
    sb.persist(inner);
}

/// How later token charges of a card behave: the card number is not kept, so the test card's
/// later outcome is recorded on the card when it is first used.
fn later_outcome(card: &Card) -> Outcome {
    card.later.clone().unwrap_or(Outcome::Approve)
}
