//! Splitting a price into installments: equal parts, the remainder on the last one, so the parts
//! always add up to the price exactly.

/// Sixty monthly installments is five years; beyond that it is a loan, not a payment plan.
pub const MAX_INSTALLMENTS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// The count is outside 1..=MAX_INSTALLMENTS.
    Count,
    /// The total is too small for every installment to be at least one minor unit.
    TooSmall,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::Count => write!(f, "installments must be 1 to {MAX_INSTALLMENTS}"),
            SplitError::TooSmall => {
                f.write_str("the total is smaller than the number of installments")
            }
        }
    }
}

impl std::error::Error for SplitError {}

pub fn split(total: i64, count: u32) -> Result<Vec<i64>, SplitError> {
    if !(1..=MAX_INSTALLMENTS).contains(&count) {
        return Err(SplitError::Count);
    }
    let n = i64::from(count);
    if total < n {
        return Err(SplitError::TooSmall);
    }
    let share = total / n;
    let mut parts = vec![share; count as usize];
    // `total - share * (n - 1)` cannot overflow: it is `share + total % n`.
    parts[count as usize - 1] = share + total % n;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_remainder_goes_last() {
        assert_eq!(split(10_001, 4).unwrap(), [2500, 2500, 2500, 2501]);
        assert_eq!(split(120_001, 3).unwrap(), [40_000, 40_000, 40_001]);
        assert_eq!(split(5, 5).unwrap(), [1, 1, 1, 1, 1]);
        assert_eq!(split(7, 1).unwrap(), [7]);
    }

    #[test]
    fn refuses_impossible_splits() {
        assert_eq!(split(3, 4), Err(SplitError::TooSmall));
        assert_eq!(split(0, 1), Err(SplitError::TooSmall));
        assert_eq!(split(100, 0), Err(SplitError::Count));
        assert_eq!(split(10_000, MAX_INSTALLMENTS + 1), Err(SplitError::Count));
    }

    proptest! {
        #[test]
        fn never_a_cent_lost(total in 1i64..=i64::MAX, count in 1u32..=MAX_INSTALLMENTS) {
            match split(total, count) {
                Ok(parts) => {
                    prop_assert_eq!(parts.len(), count as usize);
                    let sum: i128 = parts.iter().map(|&p| i128::from(p)).sum();
                    prop_assert_eq!(sum, i128::from(total));
                    let first = parts[0];
                    prop_assert!(first > 0);
                    prop_assert!(parts[..parts.len() - 1].iter().all(|&p| p == first));
                    let last = parts[parts.len() - 1];
                    prop_assert!(last >= first && last - first < i64::from(count));
                }
                Err(e) => prop_assert!(e == SplitError::TooSmall && total < i64::from(count)),
            }
        }
    }
}
