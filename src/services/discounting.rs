//! Discounts on renewals: which coupon reduces a subscription's next charge (its own, else its
//! customer's), by how much, and the statements that record it and count its periods down.
//!
//! A tick reads the discounts of all its due subscriptions once and plans their closes in
//! order; a customer's discount is counted down as it is planned, so two subscriptions of one
//! customer closed in one tick never use the same last period twice. Every close's guarded
//! update also requires the discounts to stand as planned: a discount changed meanwhile makes
//! the close wait for the next tick instead of giving it twice.

use std::collections::HashMap;

use crate::context::Ctx;
use crate::params;
use crate::store::checkouts::{self, CheckoutRow};
use crate::store::coupons::{self, Given};
use crate::store::db::{P, Stmt};
use crate::store::subscriptions::SubscriptionRow;
use recurring_core::billing::discount::{self, Applied, Coupon};
use recurring_core::http::problem::Problem;

/// A customer's discount as the next close expects to find it: coupon and periods left.
type State = (Option<String>, Option<u32>);

#[derive(Default)]
pub struct Discounts {
    coupons: HashMap<String, Coupon>,
    customers: HashMap<String, State>,
}

/// Whose discount reduced a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Subscription,
    Customer,
}

/// A discount planned for one close.
#[derive(Debug, Clone)]
pub struct Planned {
    pub coupon_id: String,
    pub applied: Applied,
    pub source: Source,
    /// The periods left after this use (`None`: the discount ends; `Some(None)`: for ever).
    pub after: Option<Option<u32>>,
}

/// How a close leaves the subscription's own discount, and what it expects of the discounts.
pub struct Guard {
    /// The subscription's coupon and periods after the close.
    pub subscription_after: State,
    /// As read: the close holds only if they are unchanged.
    subscription_before: State,
    customer_before: State,
    customer_ref: String,
}

impl Guard {
    /// The subscription's discount after the close: the values of its guarded UPDATE's
    /// `coupon_id = ?, discount_periods_left = ?`.
    pub fn set_params(&self) -> Vec<P> {
        params![self.subscription_after.0.clone(), self.subscription_after.1]
    }

    /// The values of the same UPDATE's conditions that the discounts are as read (in order:
    /// the subscription's coupon and periods, the customer's coupon and periods).
    pub fn where_params(&self) -> Vec<P> {
        params![
            self.subscription_before.0.clone(),
            self.subscription_before.1,
            &self.customer_ref,
            self.customer_before.0.clone(),
            &self.customer_ref,
            self.customer_before.1
        ]
    }
}

impl Discounts {
    /// The coupons and customer discounts the due subscriptions may use.
    pub async fn of(ctx: &Ctx, due: &[SubscriptionRow]) -> Result<Discounts, Problem> {
        let mut refs: Vec<&str> = due.iter().map(|s| s.customer_ref.as_str()).collect();
        refs.sort_unstable();
        refs.dedup();
        let mut found = Discounts::default();
        if refs.is_empty() {
            return Ok(found);
        }
        let json = serde_json::to_string(&refs).unwrap_or_default();
        for c in coupons::customer_discounts(ctx.db(), &json).await? {
            found
                .customers
                .insert(c.customer_ref, (c.coupon_id, c.discount_periods_left));
        }
        let mut ids: Vec<&str> = due.iter().filter_map(|s| s.coupon_id.as_deref()).collect();
        ids.extend(found.customers.values().filter_map(|s| s.0.as_deref()));
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let json = serde_json::to_string(&ids).unwrap_or_default();
            for row in coupons::many(ctx.main_db(), &json).await? {
                found.coupons.insert(row.id.clone(), row.model()?);
            }
        }
        Ok(found)
    }

    /// Plans the discount of `sub`'s next charge of `price`, and counts it as used.
    pub fn plan(
        &mut self,
        sub: &SubscriptionRow,
        price: i64,
        min_charge: i64,
    ) -> (Option<Planned>, Guard) {
        let subscription_before: State = (sub.coupon_id.clone(), sub.discount_periods_left);
        let customer_before = self
            .customers
            .get(&sub.customer_ref)
            .cloned()
            .unwrap_or((None, None));
        let mut guard = Guard {
            subscription_after: subscription_before.clone(),
            subscription_before,
            customer_before: customer_before.clone(),
            customer_ref: sub.customer_ref.clone(),
        };
        let (source, coupon_id, left) = match (&sub.coupon_id, &customer_before.0) {
            (Some(own), _) => (Source::Subscription, own, sub.discount_periods_left),
            (None, Some(theirs)) => (Source::Customer, theirs, customer_before.1),
            (None, None) => return (None, guard),
        };
        let Some(coupon) = self.coupons.get(coupon_id) else {
            return (None, guard);
        };
        if price <= 0
            || coupon
                .currency
                .as_deref()
                .is_some_and(|c| c != sub.currency)
        {
            return (None, guard);
        }
        let applied = discount::apply(price, coupon.off, min_charge);
        if applied.discount == 0 {
            return (None, guard);
        }
        let after = discount::after_use(left);
        let state_after: State = match after {
            Some(left) => (Some(coupon_id.clone()), left),
            None => (None, None),
        };
        match source {
            Source::Subscription => guard.subscription_after = state_after,
            Source::Customer => {
                self.customers.insert(sub.customer_ref.clone(), state_after);
            }
        }
        let planned = Planned {
            coupon_id: coupon_id.clone(),
            applied,
            source,
            after,
        };
        (Some(planned), guard)
    }
}

/// The statements recording a planned discount of a subscription's period (after its guarded
/// update, in the same batch): the ledger row (naming the charge the card pays, if any) and the
/// customer's count down. The charge itself is marked once inserted
/// ([`coupons::mark_charge`]).
pub fn statements(
    sub: &SubscriptionRow,
    period: u32,
    planned: &Planned,
    claim: &str,
    charge_id: Option<&str>,
    now: i64,
) -> Vec<Stmt> {
    let id = format!("dsc_{}_p{period}", sub.id);
    let mut out = Vec::new();
    if planned.applied.discount > 0 {
        out.push(coupons::record_for_period(&Given {
            id: &id,
            claim,
            customer_ref: &sub.customer_ref,
            subscription_id: Some(&sub.id),
            period_index: Some(period),
            coupon_id: &planned.coupon_id,
            currency: &sub.currency,
            amount: planned.applied.discount,
            charge_id,
            now,
        }));
    }
    if planned.source == Source::Customer {
        out.push(coupons::use_customer_discount(
            &sub.customer_ref,
            planned.after,
            (&id, claim),
            now,
        ));
    }
    out
}

/// Marks a checkout failed ([`checkouts::mark_failed`]) and gives its coupon's redemption
/// back; true when this call failed it.
pub async fn mark_checkout_failed(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    reason: &str,
    fence_order: bool,
    now: i64,
) -> Result<bool, Problem> {
    let failed = checkouts::mark_failed(ctx.db(), checkout, reason, fence_order, now).await?;
    if failed {
        coupon_returned(ctx, checkout).await;
    }
    Ok(failed)
}

/// Fails a checkout still being created ([`checkouts::fail_creation`]) and gives its coupon's
/// redemption back; true when this call failed it.
pub async fn fail_checkout_creation(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    token: &str,
    reason: &str,
    unusable_order: Option<&str>,
    now: i64,
) -> Result<bool, Problem> {
    let failed =
        checkouts::fail_creation(ctx.db(), &checkout.id, token, reason, unusable_order, now)
            .await?;
    if failed {
        coupon_returned(ctx, checkout).await;
    }
    Ok(failed)
}

/// A failed checkout's coupon redemption, given back. In `DB` its trigger does; in another
/// shard the trigger gives back the shard's copy's, and `DB`'s count is given back here (see
/// `coupons::reserve`). One that cannot be is logged: the count stays one ahead.
async fn coupon_returned(ctx: &Ctx, checkout: &CheckoutRow) {
    let Some(coupon) = checkout.coupon_id.as_deref().filter(|_| ctx.shard() != 0) else {
        return;
    };
    if let Err(p) = coupons::release(ctx.main_db(), coupon).await {
        ctx.log.warn(
            "coupon redemption not given back",
            crate::fields! {"couponId": coupon, "checkoutId": checkout.id, "detail": p.detail},
        );
    }
}
