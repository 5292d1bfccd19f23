//! The merchant's plans, from the `PLANS` setting. Prices only ever come from here: a browser
//! names a plan, never an amount.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::billing::interval::{Interval, IntervalUnit};
use crate::input::{self, Duplicates};

/// Written as JSON (the plan snapshots of checkouts and subscriptions) with these member names;
/// read back by [`Plan::from_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Recurring plans: the fee per period. Installment plans: the total price.
    pub amount: i64,
    pub currency: String,
    pub interval: IntervalUnit,
    pub interval_count: u32,
    /// Metered plans: price per unit of reported usage, billed in arrears with the base fee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<i64>,
    /// Installment plans: the numbers of installments a customer may choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installments: Option<Vec<u32>>,
    /// Recurring plans: days of free trial before the first charge (the card is verified at
    /// checkout by the smallest payment the provider takes, voided at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<u32>,
}

/// The longest trial a plan or a session may give.
pub const MAX_TRIAL_DAYS: u32 = 730;

/// A plan's members, in the order a plan written as a JSON array lists them.
const MEMBERS: [&str; 9] = [
    "id",
    "name",
    "amount",
    "currency",
    "interval",
    "intervalCount",
    "unitAmount",
    "installments",
    "trialDays",
];

impl Plan {
    /// Reads one plan: an object of the members above and no others, each named once (the
    /// text is parsed with duplicates refused), or an array of them in that order. `id`,
    /// `name`, `currency` are text, `amount` a whole number, `interval` a unit's name;
    /// `intervalCount` is 1 when absent; `unitAmount` and `installments` may be absent or
    /// `null`. These are the rules the derived `Deserialize` applied (its copy in the tests
    /// checks that both readings agree); the error names the member and the rule it broke.
    /// What the values mean (a positive amount, a known currency) is [`Catalog::parse`]'s.
    pub fn from_json(value: &Value) -> Result<Plan, String> {
        let listed: Map<String, Value>;
        let map = match value {
            Value::Object(map) => map,
            Value::Array(items) if items.len() <= MEMBERS.len() => {
                listed = MEMBERS
                    .iter()
                    .map(|name| name.to_string())
                    .zip(items.iter().cloned())
                    .collect();
                &listed
            }
            _ => return Err("must be a JSON object".into()),
        };
        if let Some(name) = map.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
            return Err(format!(
                "{:?} is not a plan member (those are {})",
                name,
                MEMBERS.join(", ")
            ));
        }
        let mut read = Members { map, error: None };
        let plan = Plan {
            id: read.text("id"),
            name: read.text("name"),
            amount: read.whole("amount", true, false).unwrap_or_default(),
            currency: read.text("currency"),
            interval: read.interval(),
            interval_count: read.whole("intervalCount", false, false).unwrap_or(1),
            unit_amount: read.whole("unitAmount", false, true),
            installments: read.installments(),
            trial_days: read.whole("trialDays", false, true),
        };
        match read.error {
            None => Ok(plan),
            Some(e) => Err(e),
        }
    }

    /// A plan snapshot as stored with a checkout or a subscription.
    pub fn from_snapshot(text: &str) -> Option<Plan> {
        let value = input::parse_value(text.as_bytes(), Duplicates::Refuse).ok()?;
        Plan::from_json(&value).ok()
    }

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

/// The members of one plan being read; the first one that cannot be read is the error.
struct Members<'a> {
    map: &'a Map<String, Value>,
    error: Option<String>,
}

impl Members<'_> {
    fn fail(&mut self, name: &str, rule: &str) {
        if self.error.is_none() {
            self.error = Some(format!("{name} {rule}"));
        }
    }

    /// The member, absent as `None`; a required one that is absent is an error.
    fn get(&mut self, name: &str, required: bool) -> Option<&Value> {
        let value = self.map.get(name);
        if value.is_none() && required {
            self.fail(name, "is required");
        }
        value
    }

    fn text(&mut self, name: &str) -> String {
        match self.get(name, true) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.fail(name, "must be text");
                String::new()
            }
            None => String::new(),
        }
    }

    /// A whole number in `T`'s range; `null` is `None` where the member is `nullable`.
    fn whole<T: TryFrom<i64>>(&mut self, name: &str, required: bool, nullable: bool) -> Option<T> {
        let value = self.get(name, required)?;
        if value.is_null() && nullable {
            return None;
        }
        let n = value.as_i64().and_then(|n| T::try_from(n).ok());
        if n.is_none() {
            self.fail(name, "must be a whole number in range");
        }
        n
    }

    fn interval(&mut self) -> IntervalUnit {
        let unit = match self.get("interval", true) {
            Some(Value::String(s)) => s.parse().ok(),
            // The derived reading also took a unit as `{"month": null}` (serde's form of an
            // enum variant without data); a configuration written so keeps starting.
            Some(Value::Object(m)) if m.len() == 1 => match m.iter().next() {
                Some((s, Value::Null)) => s.parse().ok(),
                _ => None,
            },
            Some(_) => None,
            None => return IntervalUnit::Month,
        };
        unit.unwrap_or_else(|| {
            self.fail("interval", "must be one of day, week, month, year");
            IntervalUnit::Month
        })
    }

    fn installments(&mut self) -> Option<Vec<u32>> {
        let value = self.get("installments", false)?;
        if value.is_null() {
            return None;
        }
        let counts = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|n| n.as_i64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        });
        if counts.is_none() {
            self.fail("installments", "must be a list of whole numbers");
        }
        counts
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub plans: Vec<Plan>,
}

impl Catalog {
    pub fn parse(json: &str, currencies: &[String]) -> Result<Catalog, String> {
        let value = match input::parse_value(json.as_bytes(), Duplicates::Refuse) {
            Ok(value) => value,
            // Our own message (a member named twice), with the parser's position.
            Err(e) if e.is_data() => return Err(e.to_string()),
            Err(e) => {
                return Err(format!(
                    "not valid JSON (at line {}, column {})",
                    e.line(),
                    e.column()
                ));
            }
        };
        let Value::Array(items) = value else {
            return Err("must be a JSON list of plans".into());
        };
        let plans = items
            .iter()
            .enumerate()
            .map(|(i, item)| Plan::from_json(item).map_err(|e| format!("plan #{i}: {e}")))
            .collect::<Result<Vec<Plan>, String>>()?;
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
            if let Some(days) = plan.trial_days {
                if !(1..=MAX_TRIAL_DAYS).contains(&days) {
                    return Err(at("trialDays must be 1 to 730"));
                }
                if plan.installments.is_some() {
                    return Err(at("an installment plan has no trial"));
                }
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

/// `Plan::from_json` held to the derived `Deserialize` it replaced, kept here as the reference:
/// for a valid plan of each kind and many broken variants of it (a member missing, `null`, of
/// another type, out of range, named twice, unknown; the array form; the unit's other
/// spellings), both readings accept the same texts and give the same plans.
#[cfg(test)]
mod read_equivalence {
    use serde_json::{Value, json};

    use super::Plan;
    use crate::billing::interval::IntervalUnit;
    use crate::input::{self, Duplicates};

    mod derived {
        use serde::Deserialize;

        use crate::billing::interval::IntervalUnit;

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct Plan {
            pub id: String,
            pub name: String,
            pub amount: i64,
            pub currency: String,
            pub interval: IntervalUnit,
            #[serde(default = "one")]
            pub interval_count: u32,
            #[serde(default)]
            pub unit_amount: Option<i64>,
            #[serde(default)]
            pub installments: Option<Vec<u32>>,
            #[serde(default)]
            pub trial_days: Option<u32>,
        }

        fn one() -> u32 {
            1
        }
    }

    fn derived_plans(text: &str) -> Option<Vec<Plan>> {
        let plans: Vec<derived::Plan> = serde_json::from_str(text).ok()?;
        Some(
            plans
                .into_iter()
                .map(|p| Plan {
                    id: p.id,
                    name: p.name,
                    amount: p.amount,
                    currency: p.currency,
                    interval: p.interval,
                    interval_count: p.interval_count,
                    unit_amount: p.unit_amount,
                    installments: p.installments,
                    trial_days: p.trial_days,
                })
                .collect(),
        )
    }

    /// The list as `Catalog::parse` reads it, before it checks what the values mean.
    fn plans(text: &str) -> Option<Vec<Plan>> {
        match input::parse_value(text.as_bytes(), Duplicates::Refuse).ok()? {
            Value::Array(items) => items.iter().map(|p| Plan::from_json(p).ok()).collect(),
            _ => None,
        }
    }

    fn same_as_derived(texts: &[String]) {
        for text in texts {
            assert_eq!(plans(text), derived_plans(text), "{text}");
            // A snapshot is one plan, read the same way.
            let one = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(text);
            let derived_one = derived_plans(&format!("[{one}]")).filter(|p| p.len() == 1);
            assert_eq!(
                Plan::from_snapshot(one),
                derived_one.and_then(|mut p| p.pop()),
                "{one}"
            );
        }
    }

    #[test]
    fn plans_are_read_as_the_derived_type_read_them() {
        let kinds = [
            json!({"id": "basic", "name": "Basic", "amount": 9900, "currency": "752",
                   "interval": "month"}),
            json!({"id": "api", "name": "API", "amount": 4900, "currency": "752",
                   "interval": "week", "intervalCount": 2, "unitAmount": 25}),
            json!({"id": "course", "name": "Course", "amount": 120000, "currency": "978",
                   "interval": "year", "intervalCount": 1, "unitAmount": null,
                   "installments": [3, 4]}),
        ];
        let mut accepted = 0;
        let mut total = 0;
        for plan in kinds {
            let texts = crate::psp::read_equivalence::variants(&json!([plan]));
            same_as_derived(&texts);
            accepted += texts.iter().filter(|t| plans(t).is_some()).count();
            total += texts.len();
        }
        assert!(total > 1400 && accepted > 100, "{accepted} of {total}");
    }

    #[test]
    fn units_installments_and_the_array_form_are_read_as_before() {
        let plan = |interval: &str, installments: &str| {
            format!(
                r#"[{{"id":"a","name":"A","amount":100,"currency":"752","interval":{interval}{installments}}}]"#
            )
        };
        let mut texts = Vec::new();
        for interval in [
            r#""day""#,
            r#""year""#,
            r#""Month""#,
            r#""month ""#,
            r#""fortnight""#,
            r#""mon\u0074h""#,
            r#"{"month":null}"#,
            r#"{"week":null}"#,
            r#"{"month":1}"#,
            r#"{"month":{}}"#,
            r#"{"month":null,"week":null}"#,
            r#"{"fortnight":null}"#,
            r#"{}"#,
            r#"["month"]"#,
        ] {
            texts.push(plan(interval, ""));
        }
        for installments in [
            "[]",
            "[2]",
            "[3,4,12]",
            "[3,1.5]",
            "[3,-1]",
            "[3,4294967295]",
            "[3,4294967296]",
            "[3,null]",
            r#"[3,"4"]"#,
            "[[3]]",
            "3",
            "{}",
        ] {
            texts.push(plan(
                r#""month""#,
                &format!(r#","installments":{installments}"#),
            ));
        }
        for array in [
            r#"["a","A",100,"752","month"]"#,
            r#"["a","A",100,"752","month",2]"#,
            r#"["a","A",100,"752","month",2,25]"#,
            r#"["a","A",100,"752","month",2,null,[3]]"#,
            r#"["a","A",100,"752","month",2,null,null]"#,
            r#"["a","A",100,"752","month",null]"#,
            r#"["a","A",100,"752","month",2,null,[3],1]"#,
            r#"["a","A",100,"752"]"#,
            r#"["a","A",100,"752",{"day":null}]"#,
            r#"["a","A","100","752","month"]"#,
            r#"[]"#,
        ] {
            texts.push(format!("[{array}]"));
        }
        texts.extend(
            [
                "[]",
                "{}",
                "null",
                "",
                "[1]",
                "[null]",
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month"}] x"#,
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month"},]"#,
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month"},
                    {"id":"b","name":"B","amount":2,"currency":"978","interval":"day"}]"#,
            ]
            .map(String::from),
        );
        same_as_derived(&texts);
        let read = plans(&plan(
            r#"{"week":null}"#,
            r#","installments":[3,4294967295]"#,
        ));
        let read = &read.expect("read")[0];
        assert_eq!(read.interval, IntervalUnit::Week);
        assert_eq!(read.installments, Some(vec![3, u32::MAX]));
        let read = plans(r#"[["a","A",100,"752","day",2,null,[3]]]"#).expect("read");
        assert_eq!((read[0].interval_count, read[0].unit_amount), (2, None));
    }

    #[test]
    fn snapshots_read_back_what_was_written() {
        for plan in [
            Plan {
                id: "basic".into(),
                name: "Basic \"plus\"".into(),
                amount: 9900,
                currency: "752".into(),
                interval: IntervalUnit::Month,
                interval_count: 3,
                unit_amount: Some(25),
                installments: None,
                trial_days: Some(14),
            },
            Plan {
                id: "course".into(),
                name: "Kurs".into(),
                amount: 120000,
                currency: "978".into(),
                interval: IntervalUnit::Week,
                interval_count: 1,
                unit_amount: None,
                installments: Some(vec![3, 4]),
                trial_days: None,
            },
        ] {
            let snapshot = serde_json::to_string(&plan).unwrap();
            assert_eq!(Plan::from_snapshot(&snapshot), Some(plan));
        }
        assert_eq!(Plan::from_snapshot("{}"), None);
        assert_eq!(Plan::from_snapshot("not json"), None);
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
                "interval must be one of",
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
                "plan #0: \"price\" is not a plan member",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"interval":"month"}]"#,
                "plan #0: currency is required",
            ),
            (
                r#"[{"id":"a","name":"A","amount":"1","currency":"752","interval":"month"}]"#,
                "plan #0: amount must be a whole number",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":752,"interval":"month"}]"#,
                "plan #0: currency must be text",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"currency":"752","interval":"month",
                    "installments":[3,"4"]}]"#,
                "plan #0: installments must be a list of whole numbers",
            ),
            (
                r#"[{"id":"a","name":"A","amount":1,"amount":2,"currency":"752","interval":"month"}]"#,
                "duplicate member amount at line 1",
            ),
            (r#"{"id":"a"}"#, "must be a JSON list of plans"),
            (r#"[{"id":"a",]"#, "not valid JSON (at line 1, column 12)"),
            ("[1]", "plan #0: must be a JSON object"),
        ];
        for (json, expected) in cases {
            let err = Catalog::parse(json, &currencies()).unwrap_err();
            assert!(err.contains(expected), "{json} -> {err}");
        }
    }
}
