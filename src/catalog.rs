//! The merchant's plans, from the `PLANS` setting. Prices only ever come from here: a browser
//! names a plan, never an amount.

use serde::{Deserialize, Serialize};

use crate::billing::interval::{Interval, IntervalUnit};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Recurring plans: the fee per period. Installment plans: the total price.
    pub amount: i64,
    pub currency: String,
    pub interval: IntervalUnit,
    #[serde(default = "one")]
    pub interval_count: u32,
    /// Metered plans: price per unit of reported usage, billed in arrears with the base fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<i64>,
    /// Installment plans: the numbers of installments a customer may choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installments: Option<Vec<u32>>,
}

fn one() -> u32 {
    1
}

impl Plan {
    pub fn billing_interval(&self) -> Interval {
        Interval {
            unit: self.interval,
            count: self.interval_count,
        }
    }

    pub fn is_installment_plan(&self) -> bool {
        self.installments.is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub plans: Vec<Plan>,
}

impl Catalog {
    pub fn parse(json: &str, currencies: &[String]) -> Result<Catalog, String> {
        let plans: Vec<Plan> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON list of plans ({e})"))?;
        if plans.is_empty() {
            return Err("the list is empty".into());
        }
        for (i, plan) in plans.iter().enumerate() {
            let at = |msg: &str| format!("plan {:?}: {msg}", plan.id);
            if !crate::validate::is_identifier(&plan.id) {
                return Err(format!("plan #{i}: id must be 1-64 of [A-Za-z0-9._:-]"));
            }
            if plans[..i].iter().any(|p| p.id == plan.id) {
                return Err(at("duplicate id"));
            }
            if plan.amount <= 0 {
                return Err(at("amount must be a positive integer in minor units"));
            }
            if !currencies.contains(&plan.currency) {
                return Err(at("currency is not in CURRENCIES"));
            }
            if plan.interval_count == 0 || plan.interval_count > 366 {
                return Err(at("intervalCount must be 1 to 366"));
            }
            if plan.unit_amount.is_some_and(|u| u < 0) {
                return Err(at("unitAmount must not be negative"));
            }
            if let Some(options) = &plan.installments {
                if plan.unit_amount.is_some() {
                    return Err(at("a plan is either metered or paid in installments"));
                }
                if options.is_empty()
                    || options.iter().any(|&n| {
                        !(2..=crate::billing::installments::MAX_INSTALLMENTS).contains(&n)
                            || i64::from(n) > plan.amount
                    })
                {
                    return Err(at("installments must list counts from 2 up, each at most \
                                   the maximum and the amount"));
                }
            }
        }
        Ok(Catalog { plans })
    }

    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currencies() -> Vec<String> {
        vec!["752".into(), "978".into()]
    }

    #[test]
    fn parses_the_three_kinds_of_plan() {
        let c = Catalog::parse(
            r#"[{"id":"basic","name":"Basic","amount":9900,"currency":"752","interval":"month"},
                {"id":"api","name":"API","amount":4900,"currency":"752","interval":"month","unitAmount":25},
                {"id":"course","name":"Course","amount":120000,"currency":"978","interval":"week",
                 "intervalCount":2,"installments":[3,4]}]"#,
            &currencies(),
        )
        .unwrap();
        assert_eq!(c.plans.len(), 3);
        assert_eq!(c.get("api").unwrap().unit_amount, Some(25));
        assert!(c.get("course").unwrap().is_installment_plan());
        assert_eq!(c.get("course").unwrap().billing_interval().count, 2);
        assert!(c.get("missing").is_none());
    }

    #[test]
    fn refuses_bad_plans_with_a_reason() {
        let cases = [
            (r#"[]"#, "empty"),
            (
                r#"[{"id":"a","name":"A","amount":0,"currency":"752","interval":"month"}]"#,
                "amount",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":"840","interval":"month"}]"#,
                "currency",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"fortnight"}]"#,
                "JSON",
            ),
            (
                r#"[{"id":"a b","name":"A","amount":1,"currency":"752","interval":"month"}]"#,
                "id",
            ),
            (
                r#"[{"id":"a","name":"A","amount":100,"currency":"752","interval":"month","installments":[1]}]"#,
                "installments",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month"},
                    {"id":"a","name":"B","amount":1,"currency":"752","interval":"month"}]"#,
                "duplicate",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month","price":3}]"#,
                "JSON",
            ),
        ];
        for (json, expected) in cases {
            let err = Catalog::parse(json, &currencies()).unwrap_err();
            assert!(err.contains(expected), "{json} -> {err}");
        }
    }
}
