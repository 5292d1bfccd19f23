//! Fault injection, reproducible for a seed: each rule draws from its own generator in the
//! order calls arrive, so the same seed and the same sequence of calls give the same faults.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    CreateOrder,
    InitiatePayment,
    OrderStatus,
    Tokens,
    CancelOrder,
    CancelPayment,
    VoidPayment,
    Refund,
    Webhook,
    ReceiptLink,
    ReceiptEmail,
    /// The settlement of a transaction (not an API call): an error at its batch step leaves
    /// it `ERROR` until the next day's cutoff; a short payout, when it settles, reports a payout
    /// one minor unit short. Only rules that name it apply.
    Settlement,
}

impl Endpoint {
    /// The answer of an injected business error: a plausible code of the endpoint's family.
    pub fn business_error(self) -> &'static str {
        match self {
            Endpoint::CreateOrder => "OR_0001: Order creation failed",
            Endpoint::Refund => "OR_0001: Return order creation failed",
            Endpoint::OrderStatus => "OR_0002: Could not fetch the order status",
            Endpoint::Tokens => "OR_0003: Could not fetch the card information",
            Endpoint::CancelOrder => "OR_0005: Order cancellation failed",
            Endpoint::InitiatePayment => "PS_0001: Payment initiation failed",
            Endpoint::CancelPayment => "PS_0005: Payment cancellation failed",
            Endpoint::VoidPayment => "PS_0006: Payment void failed",
            Endpoint::Webhook => "WH_0001: Webhook failed",
            Endpoint::ReceiptLink => "RC_0002: Could not fetch the receipt link",
            Endpoint::ReceiptEmail => "RC_0003: Could not send the receipt",
            Endpoint::Settlement => "ST_0001: Settlement failed",
        }
    }
}

/// Names one fault that always fires (ours): with `times`, the next N calls meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Error,
    ErrorAfter,
    BusinessError,
    Timeout,
    TimeoutBefore,
    Drop,
    Duplicate,
    /// `cancel_order`: the cancel succeeds but a payment already in flight on the order is not
    /// stopped; it settles as it would have, money and webhooks included.
    PaymentSurvives,
    /// `create_order`, `refund`: the order is created and its id answered, then the provider
    /// forgets it (404 from then on).
    Lost,
    /// `settlement`: a transaction settles with a payout one minor unit below amount − fee, and
    /// its payout's total carries that figure (the fee stays right).
    ShortPayout,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Omitted: every endpoint, webhooks included.
    pub endpoint: Option<Endpoint>,
    /// The fault that fires on every matching call, as if its rate were 1.
    #[serde(default)]
    pub fault: Option<FaultKind>,
    /// HTTP 500 before the call does anything.
    #[serde(default)]
    pub error_rate: f64,
    /// The call does its work, then answers HTTP 500: the caller cannot know it worked.
    #[serde(default)]
    pub error_after_rate: f64,
    /// HTTP 200/201 with `"status": "ERROR"`; nothing done.
    #[serde(default)]
    pub business_error_rate: f64,
    /// The call does its work, then the answer is withheld for `timeout_ms`.
    #[serde(default)]
    pub timeout_rate: f64,
    /// The answer is withheld for `timeout_ms` and nothing is done.
    #[serde(default)]
    pub timeout_before_rate: f64,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub latency_ms: u64,
    /// The call does its work at once, then its answer waits this long (a slow way back): the
    /// provider's webhooks for that work overtake the answer.
    #[serde(default)]
    pub answer_latency_ms: u64,
    /// Status reads show the order as it was this long ago.
    #[serde(default)]
    pub status_lag_ms: u64,
    /// Webhooks: not sent.
    #[serde(default)]
    pub drop_rate: f64,
    /// Webhooks: sent twice with the same eventId.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Webhooks: an event is held back until the next event of its order has been sent.
    #[serde(default)]
    pub reorder: bool,
    /// Cancelling an order leaves a payment already in flight on it running.
    #[serde(default)]
    pub payment_survives_rate: f64,
    /// A created order is forgotten right after its creation was answered.
    #[serde(default)]
    pub lost_rate: f64,
    /// A settling transaction reports a payout one minor unit short.
    #[serde(default)]
    pub short_payout_rate: f64,
    /// The rule applies to the next `times` matching calls, then expires.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Proceed,
    ErrorBefore,
    ErrorAfter,
    Business,
    TimeoutAfter(u64),
    TimeoutBefore(u64),
}

/// What a call meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub latency_ms: u64,
    pub answer_latency_ms: u64,
    pub status_lag_ms: u64,
    /// A cancel that does its work leaves payments in flight running.
    pub payment_survives: bool,
    /// An order created by this call is forgotten once the answer is decided.
    pub lose_order: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookDecision {
    pub drop: bool,
    pub duplicate: bool,
    pub reorder: bool,
    pub latency_ms: u64,
}

pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

struct Active {
    rule: Rule,
    rng: u64,
}

impl Rule {
    /// The rate of one kind of fault: the named `fault` always fires.
    fn rate(&self, kind: FaultKind) -> f64 {
        if self.fault == Some(kind) {
            return 1.0;
        }
        match kind {
            FaultKind::Error => self.error_rate,
            FaultKind::ErrorAfter => self.error_after_rate,
            FaultKind::BusinessError => self.business_error_rate,
            FaultKind::Timeout => self.timeout_rate,
            FaultKind::TimeoutBefore => self.timeout_before_rate,
            FaultKind::Drop => self.drop_rate,
            FaultKind::Duplicate => self.duplicate_rate,
            FaultKind::PaymentSurvives => self.payment_survives_rate,
            FaultKind::Lost => self.lost_rate,
            FaultKind::ShortPayout => self.short_payout_rate,
        }
    }

    fn rates(&self) -> [f64; 10] {
        [
            self.error_rate,
            self.error_after_rate,
            self.business_error_rate,
            self.timeout_rate,
            self.timeout_before_rate,
            self.drop_rate,
            self.duplicate_rate,
            self.payment_survives_rate,
            self.lost_rate,
            self.short_payout_rate,
        ]
    }

    /// A rule that would never do anything is a mistake in the test that wrote it.
    fn does_something(&self) -> bool {
        self.fault.is_some()
            || self.rates().iter().any(|r| *r > 0.0)
            || self.latency_ms > 0
            || self.answer_latency_ms > 0
            || self.status_lag_ms > 0
            || self.reorder
    }
}

impl Rule {
    /// A field that cannot act on the rule's endpoint (webhook faults on an API call, or the
    /// reverse), which would silently do nothing.
    fn misplaced_field(&self, endpoint: Endpoint) -> Option<&'static str> {
        let webhook_only = [
            (self.drop_rate > 0.0, "drop_rate"),
            (self.duplicate_rate > 0.0, "duplicate_rate"),
            (self.reorder, "reorder"),
            (
                matches!(self.fault, Some(FaultKind::Drop | FaultKind::Duplicate)),
                "this fault",
            ),
        ];
        let calls_only = [
            (self.error_rate > 0.0, "error_rate"),
            (self.error_after_rate > 0.0, "error_after_rate"),
            (self.business_error_rate > 0.0, "business_error_rate"),
            (self.timeout_rate > 0.0, "timeout_rate"),
            (self.timeout_before_rate > 0.0, "timeout_before_rate"),
            (self.answer_latency_ms > 0, "answer_latency_ms"),
            (
                self.fault
                    .is_some_and(|f| !matches!(f, FaultKind::Drop | FaultKind::Duplicate)),
                "this fault",
            ),
        ];
        let wrong: &[(bool, &'static str)] = if endpoint == Endpoint::Webhook {
            &calls_only
        } else {
            &webhook_only
        };
        if endpoint == Endpoint::Settlement {
            return self.misplaced_on_settlement();
        }
        if self.status_lag_ms > 0 && endpoint != Endpoint::OrderStatus {
            return Some("status_lag_ms");
        }
        if self.rate(FaultKind::PaymentSurvives) > 0.0 && endpoint != Endpoint::CancelOrder {
            return Some("payment_survives");
        }
        if self.rate(FaultKind::Lost) > 0.0
            && !matches!(endpoint, Endpoint::CreateOrder | Endpoint::Refund)
        {
            return Some("lost");
        }
        if self.rate(FaultKind::ShortPayout) > 0.0 {
            return Some("short_payout");
        }
        wrong.iter().find(|(set, _)| *set).map(|(_, name)| *name)
    }

    /// A settlement answers nobody: its batch step can only fail (`error_rate`, `"fault":
    /// "error"`) and its settling can only short-pay (`short_payout_rate`, `"fault":
    /// "short_payout"`).
    fn misplaced_on_settlement(&self) -> Option<&'static str> {
        let only_for_calls = [
            (self.error_after_rate > 0.0, "error_after_rate"),
            (self.business_error_rate > 0.0, "business_error_rate"),
            (self.timeout_rate > 0.0, "timeout_rate"),
            (self.timeout_before_rate > 0.0, "timeout_before_rate"),
            (self.latency_ms > 0, "latency_ms"),
            (self.answer_latency_ms > 0, "answer_latency_ms"),
            (self.status_lag_ms > 0, "status_lag_ms"),
            (self.drop_rate > 0.0, "drop_rate"),
            (self.duplicate_rate > 0.0, "duplicate_rate"),
            (self.reorder, "reorder"),
            (self.payment_survives_rate > 0.0, "payment_survives"),
            (self.lost_rate > 0.0, "lost"),
            (
                self.fault
                    .is_some_and(|f| !matches!(f, FaultKind::Error | FaultKind::ShortPayout)),
                "this fault",
            ),
        ];
        only_for_calls
            .iter()
            .find(|(set, _)| *set)
            .map(|(_, name)| *name)
    }
}

#[derive(Default)]
pub struct Faults {
    seed: Option<u64>,
    active: Vec<Active>,
}

fn next(state: &mut u64) -> f64 {
    // splitmix64: tiny, good enough, reproducible across platforms.
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Faults {
    /// Checks a configuration before it replaces the current one.
    pub fn validate(config: &FaultConfig) -> Result<(), String> {
        for (i, rule) in config.rules.iter().enumerate() {
            if rule.rates().iter().any(|r| !(0.0..=1.0).contains(r)) {
                return Err(format!("rule {i}: rates are between 0 and 1"));
            }
            if !rule.does_something() {
                return Err(format!(
                    "rule {i} names no fault: give a rate, a `fault`, latency_ms, answer_latency_ms, status_lag_ms or reorder"
                ));
            }
            if let Some(endpoint) = rule.endpoint
                && let Some(field) = rule.misplaced_field(endpoint)
            {
                return Err(format!(
                    "rule {i}: {field} does not apply to {endpoint:?} calls"
                ));
            }
            let short_pays = rule.rate(FaultKind::ShortPayout) > 0.0;
            if short_pays && rule.endpoint.is_none() {
                return Err(format!(
                    "rule {i}: short_payout applies to settlement only: give \"endpoint\": \"settlement\""
                ));
            }
            if short_pays && rule.rate(FaultKind::Error) > 0.0 {
                // One rule, one step: its `times` and its draws count the steps it acts on.
                return Err(format!(
                    "rule {i}: a settlement rule fails batch steps (error) or short-pays settlements (short_payout), not both: use two rules"
                ));
            }
        }
        Ok(())
    }

    pub fn configure(&mut self, config: FaultConfig, default_seed: u64) {
        let seed = config.seed.unwrap_or(default_seed);
        self.seed = Some(seed);
        self.active = config
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| Active {
                rule,
                rng: seed ^ ((i as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)),
            })
            .collect();
    }

    pub fn clear(&mut self) {
        self.seed = None;
        self.active.clear();
    }

    /// The configuration in force, with what is left of each rule's `times`.
    pub fn current(&self) -> FaultConfig {
        FaultConfig {
            seed: self.seed,
            rules: self.active.iter().map(|a| a.rule.clone()).collect(),
        }
    }

    /// The live rules for `endpoint`. A rule without an endpoint applies to every API call and
    /// webhook, but not to settlement: a chaos setup for calls must not also hold up payouts.
    fn matching(&mut self, endpoint: Endpoint) -> impl Iterator<Item = &mut Active> {
        self.active.iter_mut().filter(move |a| {
            let applies = match a.rule.endpoint {
                Some(e) => e == endpoint,
                None => endpoint != Endpoint::Settlement,
            };
            applies && a.rule.times != Some(0)
        })
    }

    /// Decides the fate of one API call.
    pub fn decide(&mut self, endpoint: Endpoint) -> Decision {
        let mut decision = Decision {
            action: Action::Proceed,
            latency_ms: 0,
            answer_latency_ms: 0,
            status_lag_ms: 0,
            payment_survives: false,
            lose_order: false,
        };
        for active in self.matching(endpoint) {
            let r = &active.rule;
            decision.latency_ms = decision.latency_ms.max(r.latency_ms);
            decision.answer_latency_ms = decision.answer_latency_ms.max(r.answer_latency_ms);
            decision.status_lag_ms = decision.status_lag_ms.max(r.status_lag_ms);
            let timeout = r.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            let draw = next(&mut active.rng);
            // Extra draws only for the rules that use them, so the sequences of every other
            // rule stay what they were for a seed.
            let mut side_fault = |kind: FaultKind| {
                let rate = active.rule.rate(kind);
                rate > 0.0 && next(&mut active.rng) < rate
            };
            decision.payment_survives |= side_fault(FaultKind::PaymentSurvives);
            decision.lose_order |= side_fault(FaultKind::Lost);
            if let Some(times) = active.rule.times.as_mut() {
                *times -= 1;
            }
            if decision.action != Action::Proceed {
                continue;
            }
            let r = &active.rule;
            let choices = [
                (
                    r.rate(FaultKind::TimeoutBefore),
                    Action::TimeoutBefore(timeout),
                ),
                (r.rate(FaultKind::Error), Action::ErrorBefore),
                (r.rate(FaultKind::BusinessError), Action::Business),
                (r.rate(FaultKind::ErrorAfter), Action::ErrorAfter),
                (r.rate(FaultKind::Timeout), Action::TimeoutAfter(timeout)),
            ];
            let mut cumulative = 0.0;
            for (rate, action) in choices {
                cumulative += rate;
                if rate > 0.0 && draw < cumulative {
                    decision.action = action;
                    break;
                }
            }
        }
        decision
    }

    /// Decides one settlement step of one transaction: `FaultKind::Error` for its batch step
    /// (true: it fails), `FaultKind::ShortPayout` for its settling (true: the payout is one
    /// minor unit short). Only the `settlement` rules of that kind take part: each draws once and
    /// counts one of its `times`, so a rule of one kind never spends the other step's.
    pub fn decide_settlement(&mut self, kind: FaultKind) -> bool {
        let mut fires = false;
        for active in self.matching(Endpoint::Settlement) {
            let rate = active.rule.rate(kind);
            if rate <= 0.0 {
                continue;
            }
            let draw = next(&mut active.rng);
            if let Some(times) = active.rule.times.as_mut() {
                *times -= 1;
            }
            fires |= draw < rate;
        }
        fires
    }

    /// Decides what happens to one webhook delivery.
    pub fn decide_webhook(&mut self) -> WebhookDecision {
        let mut d = WebhookDecision::default();
        for active in self.matching(Endpoint::Webhook) {
            let drop_draw = next(&mut active.rng);
            let dup_draw = next(&mut active.rng);
            if let Some(times) = active.rule.times.as_mut() {
                *times -= 1;
            }
            let r = &active.rule;
            d.drop |= drop_draw < r.rate(FaultKind::Drop);
            d.duplicate |= dup_draw < r.rate(FaultKind::Duplicate);
            d.reorder |= r.reorder;
            d.latency_ms = d.latency_ms.max(r.latency_ms);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> FaultConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed: u64| {
            let mut f = Faults::default();
            f.configure(
                config(&format!(
                    r#"{{"seed": {seed}, "rules": [{{"endpoint": "create_order", "error_rate": 0.3, "business_error_rate": 0.2}}]}}"#
                )),
                1,
            );
            (0..200)
                .map(|_| f.decide(Endpoint::CreateOrder).action)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let errors = run(7).iter().filter(|a| **a == Action::ErrorBefore).count();
        assert!((35..=85).contains(&errors), "about 30% of 200: {errors}");
    }

    #[test]
    fn times_limits_a_rule_and_other_endpoints_are_untouched() {
        let mut f = Faults::default();
        f.configure(config(r#"{"rules": [{"endpoint": "initiate_payment", "timeout_rate": 1.0, "timeout_ms": 5, "times": 2}]}"#), 1);
        assert_eq!(f.decide(Endpoint::CreateOrder).action, Action::Proceed);
        assert_eq!(
            f.decide(Endpoint::InitiatePayment).action,
            Action::TimeoutAfter(5)
        );
        assert_eq!(
            f.decide(Endpoint::InitiatePayment).action,
            Action::TimeoutAfter(5)
        );
        assert_eq!(f.decide(Endpoint::InitiatePayment).action, Action::Proceed);
    }

    #[test]
    fn lag_and_webhook_faults_are_reported() {
        let mut f = Faults::default();
        f.configure(
            config(r#"{"rules": [{"endpoint": "order_status", "status_lag_ms": 2000},
                                 {"endpoint": "webhook", "drop_rate": 1.0, "duplicate_rate": 1.0, "reorder": true}]}"#),
            1,
        );
        assert_eq!(f.decide(Endpoint::OrderStatus).status_lag_ms, 2000);
        let w = f.decide_webhook();
        assert!(w.drop && w.duplicate && w.reorder);
        assert!(
            serde_json::from_str::<FaultConfig>(r#"{"rules": [{"endpoint": "nope"}]}"#).is_err()
        );
        assert!(serde_json::from_str::<FaultConfig>(r#"{"rules": [{"eror_rate": 1}]}"#).is_err());
    }

    #[test]
    fn a_named_fault_with_times_fires_exactly_that_often() {
        let mut f = Faults::default();
        let c = config(
            r#"{"rules": [{"endpoint": "initiate_payment", "fault": "error_after", "times": 2}]}"#,
        );
        Faults::validate(&c).unwrap();
        f.configure(c, 1);
        let seen: Vec<Action> = (0..4)
            .map(|_| f.decide(Endpoint::InitiatePayment).action)
            .collect();
        assert_eq!(
            seen,
            [
                Action::ErrorAfter,
                Action::ErrorAfter,
                Action::Proceed,
                Action::Proceed
            ]
        );
        assert_eq!(f.current().rules[0].times, Some(0));
    }

    #[test]
    fn rules_that_do_nothing_or_rates_out_of_range_are_refused() {
        let nothing = config(r#"{"rules": [{"endpoint": "create_order", "times": 1}]}"#);
        assert!(Faults::validate(&nothing).is_err());
        let too_much = config(r#"{"rules": [{"error_rate": 1.5}]}"#);
        assert!(Faults::validate(&too_much).is_err());
        let lag = config(r#"{"rules": [{"endpoint": "order_status", "status_lag_ms": 10}]}"#);
        assert!(Faults::validate(&lag).is_ok());
        for misplaced in [
            r#"{"rules": [{"endpoint": "webhook", "error_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "webhook", "fault": "timeout"}]}"#,
            r#"{"rules": [{"endpoint": "create_order", "drop_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "create_order", "status_lag_ms": 5}]}"#,
            r#"{"rules": [{"endpoint": "tokens", "reorder": true}]}"#,
        ] {
            assert!(Faults::validate(&config(misplaced)).is_err(), "{misplaced}");
        }
        let everywhere =
            config(r#"{"rules": [{"latency_ms": 5, "drop_rate": 0.1, "error_rate": 0.1}]}"#);
        assert!(
            Faults::validate(&everywhere).is_ok(),
            "no endpoint: applies to all"
        );
    }

    #[test]
    fn surviving_payments_and_lost_orders_come_beside_the_answer() {
        let mut f = Faults::default();
        let c = config(
            r#"{"rules": [{"endpoint": "cancel_order", "fault": "payment_survives", "times": 1},
                          {"endpoint": "cancel_order", "fault": "error_after", "times": 2},
                          {"endpoint": "create_order", "lost_rate": 1.0, "times": 1}]}"#,
        );
        Faults::validate(&c).unwrap();
        f.configure(c, 1);
        let first = f.decide(Endpoint::CancelOrder);
        assert_eq!(
            (first.action, first.payment_survives),
            (Action::ErrorAfter, true),
            "both rules act on the same call"
        );
        let second = f.decide(Endpoint::CancelOrder);
        assert_eq!(
            (second.action, second.payment_survives),
            (Action::ErrorAfter, false)
        );
        let third = f.decide(Endpoint::CancelOrder);
        assert_eq!(
            (third.action, third.payment_survives),
            (Action::Proceed, false),
            "both rules are used up"
        );
        assert!(f.decide(Endpoint::CreateOrder).lose_order);
        assert!(!f.decide(Endpoint::CreateOrder).lose_order);
    }

    #[test]
    fn a_rate_of_surviving_payments_is_reproducible_and_leaves_other_sequences_alone() {
        let run = |seed: u64| {
            let mut f = Faults::default();
            f.configure(
                config(&format!(
                    r#"{{"seed": {seed}, "rules": [{{"endpoint": "cancel_order", "payment_survives_rate": 0.5}}]}}"#
                )),
                1,
            );
            (0..100)
                .map(|_| f.decide(Endpoint::CancelOrder).payment_survives)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        let survived = run(3).iter().filter(|s| **s).count();
        assert!((30..=70).contains(&survived), "about half: {survived}");
        // A rule without the new fields draws exactly as before: a pinned sequence.
        let mut f = Faults::default();
        f.configure(
            config(r#"{"seed": 7, "rules": [{"endpoint": "create_order", "error_rate": 0.5}]}"#),
            1,
        );
        let mut g = Faults::default();
        g.configure(
            config(r#"{"seed": 7, "rules": [{"endpoint": "create_order", "error_rate": 0.5, "lost_rate": 0.0}]}"#),
            1,
        );
        for _ in 0..50 {
            assert_eq!(
                f.decide(Endpoint::CreateOrder),
                g.decide(Endpoint::CreateOrder)
            );
        }
    }

    #[test]
    fn settlement_faults_only_fail_and_only_when_named() {
        for misplaced in [
            r#"{"rules": [{"endpoint": "settlement", "timeout_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "fault": "business_error"}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "latency_ms": 5}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "drop_rate": 0.5}]}"#,
        ] {
            assert!(Faults::validate(&config(misplaced)).is_err(), "{misplaced}");
        }
        let mut f = Faults::default();
        let c = config(
            r#"{"rules": [{"error_rate": 1.0}, {"endpoint": "settlement", "fault": "error", "times": 1}]}"#,
        );
        Faults::validate(&c).unwrap();
        f.configure(c, 1);
        assert!(f.decide_settlement(FaultKind::Error));
        assert!(
            !f.decide_settlement(FaultKind::Error),
            "the rule without an endpoint does not reach settlement"
        );
        assert_eq!(f.decide(Endpoint::ReceiptLink).action, Action::ErrorBefore);
    }

    #[test]
    fn short_payouts_are_for_settlement_only_and_spend_only_their_own_step() {
        for misplaced in [
            r#"{"rules": [{"endpoint": "create_order", "fault": "short_payout"}]}"#,
            r#"{"rules": [{"endpoint": "webhook", "fault": "short_payout"}]}"#,
            r#"{"rules": [{"endpoint": "order_status", "short_payout_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "webhook", "short_payout_rate": 0.5}]}"#,
            r#"{"rules": [{"short_payout_rate": 0.5}]}"#,
            r#"{"rules": [{"fault": "short_payout"}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "short_payout_rate": 1.5}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "fault": "short_payout", "error_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "fault": "error", "short_payout_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "settlement", "fault": "short_payout", "latency_ms": 5}]}"#,
        ] {
            assert!(Faults::validate(&config(misplaced)).is_err(), "{misplaced}");
        }
        let mut f = Faults::default();
        let c = config(
            r#"{"rules": [{"endpoint": "settlement", "fault": "short_payout", "times": 2},
                          {"endpoint": "settlement", "fault": "error", "times": 1}]}"#,
        );
        Faults::validate(&c).unwrap();
        f.configure(c, 1);
        assert!(f.decide_settlement(FaultKind::Error));
        assert!(
            !f.decide_settlement(FaultKind::Error),
            "the error rule is used up"
        );
        assert_eq!(
            f.current().rules[0].times,
            Some(2),
            "batch steps spend none"
        );
        assert!(f.decide_settlement(FaultKind::ShortPayout));
        assert!(f.decide_settlement(FaultKind::ShortPayout));
        assert!(!f.decide_settlement(FaultKind::ShortPayout));
        assert_eq!(f.current().rules[0].times, Some(0));

        let run = |seed: u64| {
            let mut f = Faults::default();
            f.configure(
                config(&format!(
                    r#"{{"seed": {seed}, "rules": [{{"endpoint": "settlement", "short_payout_rate": 0.3}}]}}"#
                )),
                1,
            );
            (0..200)
                .map(|_| f.decide_settlement(FaultKind::ShortPayout))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let short = run(5).iter().filter(|s| **s).count();
        assert!((35..=85).contains(&short), "about 30% of 200: {short}");
    }

    #[test]
    fn surviving_payments_and_lost_orders_only_apply_where_they_can_act() {
        for misplaced in [
            r#"{"rules": [{"endpoint": "cancel_payment", "fault": "payment_survives"}]}"#,
            r#"{"rules": [{"endpoint": "webhook", "payment_survives_rate": 0.5}]}"#,
            r#"{"rules": [{"endpoint": "order_status", "fault": "lost"}]}"#,
            r#"{"rules": [{"endpoint": "initiate_payment", "lost_rate": 1}]}"#,
            r#"{"rules": [{"endpoint": "cancel_order", "payment_survives_rate": 1.5}]}"#,
        ] {
            assert!(Faults::validate(&config(misplaced)).is_err(), "{misplaced}");
        }
        for fine in [
            r#"{"rules": [{"endpoint": "cancel_order", "fault": "payment_survives"}]}"#,
            r#"{"rules": [{"endpoint": "refund", "fault": "lost", "times": 1}]}"#,
            r#"{"rules": [{"endpoint": "create_order", "lost_rate": 0.2}]}"#,
        ] {
            assert!(Faults::validate(&config(fine)).is_ok(), "{fine}");
        }
    }
}
