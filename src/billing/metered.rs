//! Metered totals: base fee + unit price × quantity, in integer minor units, checked.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeteredError {
    Negative,
    Overflow,
    AboveCap { total: i128, cap: i64 },
}

impl std::fmt::Display for MeteredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeteredError::Negative => f.write_str("fees and quantities must not be negative"),
            MeteredError::Overflow => f.write_str("the total does not fit in 64 bits"),
            MeteredError::AboveCap { total, cap } => {
                write!(f, "the total {total} is above the maximum charge {cap}")
            }
        }
    }
}

impl std::error::Error for MeteredError {}

pub fn metered_total(
    base: i64,
    unit_amount: i64,
    quantity: i64,
    cap: Option<i64>,
) -> Result<i64, MeteredError> {
    if base < 0 || unit_amount < 0 || quantity < 0 {
        return Err(MeteredError::Negative);
    }
    // In i128 the product and sum cannot overflow; the result must still fit an i64.
    let total = i128::from(base) + i128::from(unit_amount) * i128::from(quantity);
    if let Some(cap) = cap
        && total > i128::from(cap)
    {
        return Err(MeteredError::AboveCap { total, cap });
    }
    i64::try_from(total).map_err(|_| MeteredError::Overflow)
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
    }

    #[test]
    fn refuses_negatives_overflow_and_totals_above_the_cap() {
        assert_eq!(metered_total(-1, 1, 1, None), Err(MeteredError::Negative));
        assert_eq!(metered_total(0, 1, -1, None), Err(MeteredError::Negative));
        assert_eq!(
            metered_total(0, i64::MAX, 2, None),
            Err(MeteredError::Overflow)
        );
        assert!(matches!(
            metered_total(100, 10, 10, Some(199)),
            Err(MeteredError::AboveCap { .. })
        ));
        assert_eq!(metered_total(100, 10, 10, Some(200)), Ok(200));
    }

    proptest! {
        #[test]
        fn equals_the_formula_or_says_why_not(
            base in 0i64..=i64::MAX, unit in 0i64..=i64::MAX, quantity in 0i64..=i64::MAX,
        ) {
            let exact = i128::from(base) + i128::from(unit) * i128::from(quantity);
            match metered_total(base, unit, quantity, None) {
                Ok(total) => prop_assert_eq!(i128::from(total), exact),
                Err(e) => prop_assert!(e == MeteredError::Overflow && exact > i128::from(i64::MAX)),
            }
        }

        #[test]
        fn more_usage_never_costs_less(base in 0i64..1_000_000, unit in 0i64..10_000, q in 0i64..1_000_000) {
            let a = metered_total(base, unit, q, None).unwrap();
            let b = metered_total(base, unit, q + 1, None).unwrap();
            prop_assert!(b >= a);
        }
    }
}
