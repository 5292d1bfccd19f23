//! Splitting a price into installments: equal parts, the remainder on the last one, so the parts
//! always add up to the price exactly ("never a cent lost").
//!
//! The remainder goes last rather than first so that the amount the customer is shown and
//! charged at checkout (the first installment) is the plain share, and is never more than any
//! later one. It is less than the number of installments, so at most 59 minor units.

/// Sixty monthly installments is five years; beyond that it is a loan, not a payment plan.
pub const MAX_INSTALLMENTS: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// The count is outside 1..=[`MAX_INSTALLMENTS`].
    Count { count: u32 },
    /// Zero or negative totals have nothing to split.
    NotPositive { total: i64 },
    /// The total is too small for every installment to be at least one minor unit.
    TooSmall { total: i64, count: u32 },
    /// Installment numbers run from 1 to the count.
    NoSuchInstallment { number: u32, count: u32 },
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::Count { count } => write!(
                f,
                "{count} installments is not possible: choose 1 to {MAX_INSTALLMENTS}"
            ),
            SplitError::NotPositive { total } => {
                write!(f, "the total {total} must be positive to split")
            }
            SplitError::TooSmall { total, count } => write!(
                f,
                "the total {total} is smaller than the number of installments ({count})"
            ),
            SplitError::NoSuchInstallment { number, count } => {
                write!(f, "there is no installment {number} of {count}")
            }
        }
    }
}

impl std::error::Error for SplitError {}

fn check(total: i64, count: u32) -> Result<(), SplitError> {
    if !(1..=MAX_INSTALLMENTS).contains(&count) {
        Err(SplitError::Count { count })
    } else if total <= 0 {
        Err(SplitError::NotPositive { total })
    } else if total < i64::from(count) {
        Err(SplitError::TooSmall { total, count })
    } else {
        Ok(())
    }
}

/// All `count` installments of `total`, in order.
pub fn split(total: i64, count: u32) -> Result<Vec<i64>, SplitError> {
    check(total, count)?;
    (1..=count).map(|n| installment(total, count, n)).collect()
}

/// The amount of installment `number` (1-based) of `count`, without building the whole list.
pub fn installment(total: i64, count: u32, number: u32) -> Result<i64, SplitError> {
    check(total, count)?;
    if !(1..=count).contains(&number) {
        return Err(SplitError::NoSuchInstallment { number, count });
    }
    let n = i64::from(count);
    let share = total / n;
    // `share + total % n` rather than `total - share * (n - 1)`: same value, no overflow.
    Ok(if number == count {
        share + total % n
    } else {
        share
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_remainder_goes_last() {
        assert_eq!(split(10_001, 4).unwrap(), [2500, 2500, 2500, 2501]);
        assert_eq!(split(120_001, 3).unwrap(), [40_000, 40_000, 40_001]);
        assert_eq!(split(100, 3).unwrap(), [33, 33, 34]);
        assert_eq!(split(5, 5).unwrap(), [1, 1, 1, 1, 1]);
        assert_eq!(split(7, 1).unwrap(), [7]);
        assert_eq!(split(119, 60).unwrap()[59], 60);
        assert_eq!(installment(10_001, 4, 4), Ok(2501));
        assert_eq!(installment(10_001, 4, 1), Ok(2500));
    }

    #[test]
    fn the_largest_total_splits_without_overflow() {
        let parts = split(i64::MAX, MAX_INSTALLMENTS).unwrap();
        let sum: i128 = parts.iter().copied().map(i128::from).sum();
        assert_eq!(sum, i128::from(i64::MAX));
    }

    #[test]
    fn refuses_impossible_splits() {
        assert_eq!(
            split(3, 4),
            Err(SplitError::TooSmall { total: 3, count: 4 })
        );
        assert_eq!(split(0, 1), Err(SplitError::NotPositive { total: 0 }));
        assert_eq!(
            split(i64::MIN, 1),
            Err(SplitError::NotPositive { total: i64::MIN })
        );
        assert_eq!(split(100, 0), Err(SplitError::Count { count: 0 }));
        assert_eq!(
            split(10_000, MAX_INSTALLMENTS + 1),
            Err(SplitError::Count { count: 61 })
        );
        assert_eq!(
            installment(100, 3, 0),
            Err(SplitError::NoSuchInstallment {
                number: 0,
                count: 3
            })
        );
        assert_eq!(
            installment(100, 3, 4),
            Err(SplitError::NoSuchInstallment {
                number: 4,
                count: 3
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_a_cent_lost(total in 1i64..=i64::MAX, count in 1u32..=MAX_INSTALLMENTS) {
            let parts = split(total, count).unwrap();
            prop_assert_eq!(parts.len(), count as usize);
            let sum: i128 = parts.iter().copied().map(i128::from).sum();
            prop_assert_eq!(sum, i128::from(total));
            let (last, others) = parts.split_last().unwrap();
            let first = parts[0];
            prop_assert!(first > 0);
            prop_assert!(others.iter().all(|&p| p == first));
            prop_assert!(*last >= first && *last - first < i64::from(count));
            for (i, part) in parts.iter().enumerate() {
                prop_assert_eq!(installment(total, count, i as u32 + 1), Ok(*part));
            }
        }

        #[test]
        fn small_totals_split_exactly_when_every_part_gets_a_unit(
            total in -100i64..200, count in 0u32..=MAX_INSTALLMENTS + 2,
        ) {
            let possible = (1..=MAX_INSTALLMENTS).contains(&count) && total >= i64::from(count);
            match split(total, count) {
                Ok(parts) => {
                    prop_assert!(possible);
                    prop_assert_eq!(parts.iter().sum::<i64>(), total);
                }
                Err(_) => prop_assert!(!possible),
            }
        }
    }
}
