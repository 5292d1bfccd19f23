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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub endpoint: Option<Endpoint>,
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
    /// The rule applies to the next `times` matching calls, then expires.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
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
    pub status_lag_ms: u64,
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

#[derive(Default)]
pub struct Faults {
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
    pub fn configure(&mut self, config: FaultConfig, default_seed: u64) {
        let seed = config.seed.unwrap_or(default_seed);
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
        self.active.clear();
    }

    fn matching(&mut self, endpoint: Endpoint) -> impl Iterator<Item = &mut Active> {
        self.active.iter_mut().filter(move |a| {
            a.rule.endpoint.is_none_or(|e| e == endpoint) && a.rule.times != Some(0)
        })
    }

    /// Decides the fate of one API call.
    pub fn decide(&mut self, endpoint: Endpoint) -> Decision {
        let mut decision = Decision {
            action: Action::Proceed,
            latency_ms: 0,
            status_lag_ms: 0,
        };
        for active in self.matching(endpoint) {
            let r = &active.rule;
            decision.latency_ms = decision.latency_ms.max(r.latency_ms);
            decision.status_lag_ms = decision.status_lag_ms.max(r.status_lag_ms);
            let timeout = r.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            let draw = next(&mut active.rng);
            if let Some(times) = active.rule.times.as_mut() {
                *times -= 1;
            }
            if decision.action != Action::Proceed {
                continue;
            }
            let r = &active.rule;
            let choices = [
                (r.timeout_before_rate, Action::TimeoutBefore(timeout)),
                (r.error_rate, Action::ErrorBefore),
                (r.business_error_rate, Action::Business),
                (r.error_after_rate, Action::ErrorAfter),
                (r.timeout_rate, Action::TimeoutAfter(timeout)),
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
            d.drop |= drop_draw < r.drop_rate;
            d.duplicate |= dup_draw < r.duplicate_rate;
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
}
