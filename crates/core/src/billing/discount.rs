//! Coupons and the discounts they give: a percentage or an amount off a charge, for one
//! charge, for N billing periods, or for ever; an expiry and a redemption limit.
//!
//! A discount is taken off a charge's price before the customer's balance and the card: the
//! charge shows the price, the discount and what was charged. A percentage is rounded half up
//! (in the customer's favour on an exact half); an amount is capped at the price. What is left
//! under the provider's smallest charge is waived rather than charged: a discount never makes a
//! charge the provider would refuse.

use serde::Serialize;

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Off {
    /// 1 to 100 per cent.
    Percent(u8),
    /// Minor units of the coupon's currency.
    Amount(i64),
}

/// How long a discount lasts once applied, in charges of the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    Once,
    Repeating(u32),
    Forever,
}

impl Duration {
    /// Charges the discount reduces: `None` for ever.
    pub fn periods(self) -> Option<u32> {
        match self {
            Duration::Once => Some(1),
            Duration::Repeating(n) => Some(n),
            Duration::Forever => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Duration::Once => "once",
            Duration::Repeating(_) => "repeating",
            Duration::Forever => "forever",
        }
    }
}

/// The periods a discount has left after one more charge used it: `None` when it is used up
/// (the discount ends), `Some(None)` for ever.
pub fn after_use(left: Option<u32>) -> Option<Option<u32>> {
    match left {
        None => Some(None),
        Some(n) if n > 1 => Some(Some(n - 1)),
        Some(_) => None,
    }
}

/// A coupon as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub id: String,
    pub off: Off,
    /// Amount-off coupons only.
    pub currency: Option<String>,
    pub duration: Duration,
    pub redeem_by: Option<i64>,
    pub max_redemptions: Option<u32>,
    pub times_redeemed: u32,
    pub deleted: bool,
}

/// Why a coupon cannot be redeemed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRedeemable {
    Deleted,
    Expired,
    Exhausted,
    /// An amount off in another currency than the price's.
    OtherCurrency,
}

impl NotRedeemable {
    pub fn detail(self) -> &'static str {
        match self {
            NotRedeemable::Deleted => "the coupon was deleted",
            NotRedeemable::Expired => "the coupon's redeemBy has passed",
            NotRedeemable::Exhausted => "the coupon reached its maxRedemptions",
            NotRedeemable::OtherCurrency => "the coupon's amount is in another currency",
        }
    }
}

impl Coupon {
    /// Whether one more redemption, at `now`, against prices in `currency`, is allowed.
    pub fn redeemable(&self, now: i64, currency: &str) -> Result<(), NotRedeemable> {
        if self.deleted {
            return Err(NotRedeemable::Deleted);
        }
        if self.redeem_by.is_some_and(|by| now >= by) {
            return Err(NotRedeemable::Expired);
        }
        if self
            .max_redemptions
            .is_some_and(|max| self.times_redeemed >= max)
        {
            return Err(NotRedeemable::Exhausted);
        }
        if self.currency.as_deref().is_some_and(|c| c != currency) {
            return Err(NotRedeemable::OtherCurrency);
        }
        Ok(())
    }
}

/// A discount applied to one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub discount: i64,
    /// price − discount: what is left to pay (by the balance, then the card).
    pub due: i64,
}

/// Applies `off` to `price` (minor units, ≥ 0). What would be left under `min_charge` (and
/// above zero) is waived.
pub fn apply(price: i64, off: Off, min_charge: i64) -> Applied {
    let price = price.max(0);
    let discount = match off {
        Off::Percent(p) => {
            let p = i128::from(p.min(100));
            // Half up: (2·price·p + 100) / 200.
            ((2 * i128::from(price) * p + 100) / 200) as i64
        }
        Off::Amount(a) => a.max(0),
    }
    .min(price);
    let due = price - discount;
    if due > 0 && due < min_charge {
        return Applied {
            discount: price,
            due: 0,
        };
    }
    Applied { discount, due }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coupon() -> Coupon {
        Coupon {
            id: "WELCOME".into(),
            off: Off::Percent(10),
            currency: None,
            duration: Duration::Once,
            redeem_by: Some(1_000),
            max_redemptions: Some(2),
            times_redeemed: 0,
            deleted: false,
        }
    }

    #[test]
    fn percentages_round_half_up_and_amounts_are_capped() {
        assert_eq!(apply(9_900, Off::Percent(10), 300).discount, 990);
        assert_eq!(
            apply(9_905, Off::Percent(10), 300).discount,
            991,
            "990.5 up"
        );
        assert_eq!(apply(9_904, Off::Percent(10), 300).discount, 990);
        assert_eq!(
            apply(9_900, Off::Percent(100), 300),
            Applied {
                discount: 9_900,
                due: 0
            }
        );
        assert_eq!(
            apply(9_900, Off::Amount(2_500), 300),
            Applied {
                discount: 2_500,
                due: 7_400
            }
        );
        assert_eq!(
            apply(9_900, Off::Amount(20_000), 300),
            Applied {
                discount: 9_900,
                due: 0
            }
        );
    }

    #[test]
    fn a_rest_under_the_smallest_charge_is_waived() {
        assert_eq!(
            apply(1_000, Off::Amount(800), 300),
            Applied {
                discount: 1_000,
                due: 0
            }
        );
        assert_eq!(
            apply(1_000, Off::Amount(700), 300),
            Applied {
                discount: 700,
                due: 300
            }
        );
    }

    #[test]
    fn durations_count_the_charges_left() {
        assert_eq!(Duration::Once.periods(), Some(1));
        assert_eq!(after_use(Some(1)), None);
        assert_eq!(after_use(Some(3)), Some(Some(2)));
        assert_eq!(after_use(None), Some(None), "for ever stays for ever");
    }

    #[test]
    fn redemption_stops_at_expiry_limit_deletion_and_another_currency() {
        let c = coupon();
        assert_eq!(c.redeemable(999, "752"), Ok(()));
        assert_eq!(c.redeemable(1_000, "752"), Err(NotRedeemable::Expired));
        let used = Coupon {
            times_redeemed: 2,
            ..coupon()
        };
        assert_eq!(used.redeemable(0, "752"), Err(NotRedeemable::Exhausted));
        let gone = Coupon {
            deleted: true,
            ..coupon()
        };
        assert_eq!(gone.redeemable(0, "752"), Err(NotRedeemable::Deleted));
        let kronor = Coupon {
            off: Off::Amount(500),
            currency: Some("752".into()),
            ..coupon()
        };
        assert_eq!(kronor.redeemable(0, "752"), Ok(()));
        assert_eq!(
            kronor.redeemable(0, "978"),
            Err(NotRedeemable::OtherCurrency)
        );
    }

    proptest! {
        /// No money is made or lost: discount + due is the price, both within it, and what is
        /// due is either nothing or a charge the provider takes.
        #[test]
        fn a_discount_splits_the_price(
            price in 0i64..10_000_000_000,
            percent in 1u8..=100,
            amount in 1i64..10_000_000,
            min in 1i64..1_000,
        ) {
            for off in [Off::Percent(percent), Off::Amount(amount)] {
                let a = apply(price, off, min);
                prop_assert_eq!(a.discount + a.due, price);
                prop_assert!(a.discount >= 0 && a.due >= 0);
                prop_assert!(a.due == 0 || a.due >= min);
            }
            // The percentage is the exact share rounded half up, unless the rest was waived.
            let a = apply(price, Off::Percent(percent), min);
            let exact_twice = 2 * i128::from(price) * i128::from(percent);
            let d = i128::from(a.discount) * 200;
            prop_assert!(a.due == 0 || (d - exact_twice > -100 && d - exact_twice <= 100));
        }
    }
}
