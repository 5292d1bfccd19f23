//! Metered totals: base fee + unit price × quantity, in integer minor units.
//!
//! Every step is checked: an amount that does not fit is an error, never a wrapped or
//! saturated number, because either would charge a customer something nobody priced. The
//! optional cap is the merchant's configured maximum for one charge; usage that would exceed
//! it is refused rather than silently cut to the cap, so a runaway meter is looked at by a
//! person instead of billed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeteredError {
    /// Names the input that was negative: "base fee", "unit price", "quantity" or "cap".
    Negative(&'static str),
    /// The total does not fit in 64 bits of minor units.
    Overflow,
    AboveCap {
        total: i64,
        cap: i64,
    },
}

impl std::fmt::Display for MeteredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeteredError::Negative(what) => write!(f, "the {what} must not be negative"),
            MeteredError::Overflow => f.write_str("the total is too large to charge"),
            MeteredError::AboveCap { total, cap } => {
                write!(f, "the total {total} is above the maximum charge {cap}")
            }
        }
    }
}

impl std::error::Error for MeteredError {}

fn non_negative(value: i64, what: &'static str) -> Result<i64, MeteredError> {
    if value < 0 {
        Err(MeteredError::Negative(what))
    } else {
        Ok(value)
    }
}

/// `base + unit_amount × quantity`, refused above `cap` when one is given.
pub fn metered_total(
    base: i64,
    unit_amount: i64,
    quantity: i64,
    cap: Option<i64>,
) -> Result<i64, MeteredError> {
    let base = non_negative(base, "base fee")?;
    let unit_amount = non_negative(unit_amount, "unit price")?;
    let quantity = non_negative(quantity, "quantity")?;
    let cap = cap.map(|c| non_negative(c, "cap")).transpose()?;
    let total = unit_amount
        .checked_mul(quantity)
        .and_then(|usage| usage.checked_add(base))
        .ok_or(MeteredError::Overflow)?;
    match cap {
        Some(cap) if total > cap => Err(MeteredError::AboveCap { total, cap }),
        _ => Ok(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base_plus_units() {
        assert_eq!(metered_total(4900, 25, 40, None), Ok(5900));
        assert_eq!(metered_total(4900, 25, 0, None), Ok(4900));
        assert_eq!(metered_total(0, 0, 1_000_000, None), Ok(0));
        assert_eq!(metered_total(0, 1, i64::MAX, None), Ok(i64::MAX));
        assert_eq!(metered_total(i64::MAX, 0, i64::MAX, None), Ok(i64::MAX));
    }

    #[test]
    fn refuses_negative_inputs_by_name() {
        assert_eq!(
            metered_total(-1, 1, 1, None),
            Err(MeteredError::Negative("base fee"))
        );
        assert_eq!(
            metered_total(0, -1, 1, None),
            Err(MeteredError::Negative("unit price"))
        );
        assert_eq!(
            metered_total(0, 1, -1, None),
            Err(MeteredError::Negative("quantity"))
        );
        assert_eq!(
            metered_total(0, 1, 1, Some(-1)),
            Err(MeteredError::Negative("cap"))
        );
    }

    #[test]
    fn refuses_overflow_in_the_product_and_in_the_sum() {
        assert_eq!(
            metered_total(0, i64::MAX, 2, None),
            Err(MeteredError::Overflow)
        );
        assert_eq!(
            metered_total(1, 1, i64::MAX, None),
            Err(MeteredError::Overflow)
        );
        assert_eq!(
            metered_total(1, 1, i64::MAX, Some(i64::MAX)),
            Err(MeteredError::Overflow)
        );
    }

    #[test]
    fn the_cap_is_inclusive() {
        assert_eq!(metered_total(100, 10, 10, Some(200)), Ok(200));
        assert_eq!(
            metered_total(100, 10, 11, Some(200)),
            Err(MeteredError::AboveCap {
                total: 210,
                cap: 200
            })
        );
        assert_eq!(metered_total(0, 10, 0, Some(0)), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn equals_the_formula_or_says_why_not(
            base in 0i64..=i64::MAX,
            unit in prop_oneof![0i64..=i64::MAX, 0i64..1_000_000],
            quantity in prop_oneof![0i64..=i64::MAX, 0i64..1_000_000],
            cap in proptest::option::of(0i64..=i64::MAX),
        ) {
            let exact = i128::from(base) + i128::from(unit) * i128::from(quantity);
            match metered_total(base, unit, quantity, cap) {
                Ok(total) => {
                    prop_assert_eq!(i128::from(total), exact);
                    prop_assert!(cap.is_none_or(|c| total <= c));
                }
                Err(MeteredError::Overflow) => prop_assert!(exact > i128::from(i64::MAX)),
                Err(MeteredError::AboveCap { total, cap: c }) => {
                    prop_assert_eq!(Some(c), cap);
                    prop_assert_eq!(i128::from(total), exact);
                    prop_assert!(total > c);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn more_usage_never_costs_less(
            base in 0i64..1_000_000_000, unit in 0i64..1_000_000, q in 0i64..1_000_000_000,
            more in 0i64..1_000_000,
        ) {
            let a = metered_total(base, unit, q, None).unwrap();
            let b = metered_total(base, unit, q + more, None).unwrap();
            prop_assert!(b >= a);
            prop_assert_eq!(b - a, unit * more);
        }
    }
}
