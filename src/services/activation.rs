//! Completing a checkout: the single, idempotent path taken by the webhook, by the return page's
//! poll and by the cron reconciler. It trusts only the provider's order status, stores the card
//! in the vault, and records payment method and what the payment was for (a subscription and
//! its first charge, or a card replacement's outstanding charge or verification payment) in one
//! D1 transaction whose every statement is a no-op the second time. A verification payment is
//! refunded right after.

use crate::context::Ctx;
use crate::params;
use crate::services::{discounting, refunding};
use crate::store::card_replacements;
use crate::store::charges::{self, NewCharge};
use crate::store::checkouts::{self, CheckoutRow};
use crate::store::coupons::{self, Given};
use crate::store::db::{Stmt, stmt};
use crate::store::payment_methods::{self, MaskedCard, NewPaymentMethod};
use crate::store::refunds::{self, Claimed};
use crate::store::subscriptions::{self, NewSubscription, Trial};
use crate::store::vault::StoredCard;
use recurring_core::billing::{discount, period, trial};
use recurring_core::catalog::Plan;
use recurring_core::http::problem::Problem;
use recurring_core::psp::outcome::{PageOutcome, page_outcome};
use recurring_core::psp::types::Token;
use recurring_core::secure::digest_id;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    Paid,
    Failed,
    /// Not confirmed yet; `reason` says what was missing (status, tokens, the provider itself).
    Pending {
        reason: String,
    },
}

pub async fn reconcile(ctx: &Ctx, checkout: &CheckoutRow) -> Result<Activation, Problem> {
    match checkout.status.as_str() {
        "paid" => {
            if checkout.card_outcome.as_deref() == Some("verified") {
                refund_verification(ctx, checkout).await?;
            }
            return Ok(Activation::Paid);
        }
        "failed" => return Ok(Activation::Failed),
        _ => {}
    }
    let Some(order_id) = checkout.order_id.clone() else {
        return Ok(Activation::Pending {
            reason: "no_order".into(),
        });
    };
    let status = match ctx.psp().order_status(&order_id).await {
        Ok(status) => status,
        Err(e) => return Ok(Activation::Pending { reason: e.code() }),
    };
    // The subscription starts on the customer's test clock, when the session named one.
    let now = ctx.now_on(checkout.test_clock.as_deref()).await?;
    match page_outcome(&status) {
        PageOutcome::Pending => Ok(Activation::Pending {
            reason: "order_not_completed".into(),
        }),
        PageOutcome::Failed { reason } => {
            // The page link is one-shot, but nothing promises that no payment completes on a
            // failed order: it is watched like any order we stopped using.
            discounting::mark_checkout_failed(ctx, checkout, &reason, true, now).await?;
            Ok(Activation::Failed)
        }
        PageOutcome::Paid { payment_id, .. } => {
            let tokens = match ctx.psp().tokens(&order_id).await {
                Ok(tokens) => tokens,
                Err(e) => return Ok(Activation::Pending { reason: e.code() }),
            };
            let Some(token) = newest(tokens) else {
                return Ok(Activation::Pending {
                    reason: "token_not_ready".into(),
                });
            };
            complete(ctx, checkout, &order_id, &payment_id, token, now).await?;
            Ok(Activation::Paid)
        }
    }
}

fn newest(mut tokens: Vec<Token>) -> Option<Token> {
    // createdAt is RFC 3339 in UTC, so it orders as text.
    tokens.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    tokens.pop()
}

async fn complete(
    ctx: &Ctx,
    checkout: &CheckoutRow,
    order_id: &str,
    payment_id: &str,
    token: Token,
    now: i64,
) -> Result<(), Problem> {
    let customer = checkout.customer_ref.as_str();
    let pm_id = format!("pm_{}", digest_id(&[order_id]));
    let card = MaskedCard {
        brand: token.card_brand.clone(),
        last4: token.truncated_pan.clone(),
        exp_month: token.expiry_month,
        exp_year: token.expiry_year,
    };

    // The vault first: once the ledger says "paid", the card must already be chargeable.
    let vault = ctx.vault();
    let current = vault.get(customer).await?;
    let becomes_active = match &current {
        None => true,
        Some(c) if c.source_order_id == order_id => true,
        // A late activation of an older checkout must not replace a newer card.
        Some(c) => c.source_checkout_created_at <= checkout.created_at,
    };
    let replaces_card = becomes_active
        && current
            .as_ref()
            .is_none_or(|c| c.source_order_id != order_id);
    if replaces_card {
        let stored = StoredCard::new(
            token.token_id.clone(),
            pm_id.clone(),
            card.brand.clone(),
            card.last4.clone(),
            card.exp_month,
            card.exp_year,
            order_id.to_owned(),
            checkout.created_at,
            now,
        );
        vault.put(customer, &stored).await?;
    }

    let mut batch = payment_methods::record(&NewPaymentMethod {
        id: &pm_id,
        customer_ref: customer,
        source_order_id: order_id,
        card: &card,
        becomes_active,
        now,
    });
    let charge_id = format!("ch_{}", checkout.id.trim_start_matches("co_"));
    if checkout.is_card_replacement() {
        batch.extend(card_replacements::record(&card_replacements::Paid {
            checkout_id: &checkout.id,
            order_id,
            payment_id,
            payment_method_id: &pm_id,
            verification_charge_id: &charge_id,
            description: VERIFICATION_DESCRIPTION,
            now,
            wall_now: ctx.wall_ms(),
        }));
    } else {
        // The session's coupon: its periods, counted from the first payment it reduced (or from
        // the first charge after a trial).
        let coupon_periods = match &checkout.coupon_id {
            Some(id) => Some(
                coupons::get(ctx.main_db(), id)
                    .await?
                    .ok_or_else(|| Problem::internal("A checkout's coupon is gone."))?
                    .model()?
                    .duration
                    .periods(),
            ),
            None => None,
        };
        batch.extend(new_subscription(
            checkout,
            order_id,
            payment_id,
            &pm_id,
            &charge_id,
            coupon_periods,
            now,
        )?);
    }
    if replaces_card {
        batch.extend(subscriptions::revive_after_new_card(customer, now));
    }
    ctx.db().batch(batch).await?;

    if (checkout.is_card_replacement()
        || checkout.trial_days.is_some()
        || checkout.discount_amount.unwrap_or(0) > 0)
        && let Some(paid) = checkouts::get(ctx.db(), &checkout.id).await?
        && paid.card_outcome.as_deref() == Some("verified")
    {
        refund_verification(ctx, &paid).await?;
    }
    Ok(())
}

/// How a verification payment shows in the customer's charges.
pub const VERIFICATION_DESCRIPTION: &str = "Card verification (refunded)";

/// The subscription a paid checkout starts, and its first charge (the hosted-page payment).
fn new_subscription(
    checkout: &CheckoutRow,
    order_id: &str,
    payment_id: &str,
    pm_id: &str,
    charge_id: &str,
    coupon_periods: Option<Option<u32>>,
    now: i64,
) -> Result<Vec<Stmt>, Problem> {
    let plan = checkout.plan()?;
    let customer = checkout.customer_ref.as_str();
    let suffix = checkout.id.trim_start_matches("co_");
    let subscription_id = format!("sub_{suffix}");
    let interval = plan.billing_interval();
    // A trial is period 0, free; the calendar starts at its end, where period 1 is charged.
    let trial = match checkout.trial_days {
        Some(days) => {
            let end = trial::end(now, days)
                .ok_or_else(|| Problem::internal("The trial's end cannot be computed."))?;
            Some(Trial {
                end,
                notice_at: trial::notice_at(now, end),
            })
        }
        None => None,
    };
    let (anchor_at, anchor_period, period_end) = match trial {
        Some(t) => (t.end, 1, t.end),
        None => {
            let end = period::period(now, interval, 0)
                .map_err(|_| Problem::internal("The plan's first period cannot be computed."))?
                .end_ms;
            (now, 0, end)
        }
    };
    let kind = if checkout.installments.is_some() {
        "installments"
    } else {
        "recurring"
    };
    // A coupon reduced the page's payment, unless there is a trial (the coupon then starts with
    // the first charge). When it took all of it, the payment only verified the card.
    let discount = checkout.discount_amount.unwrap_or(0);
    let verify = trial.is_some() || (discount > 0 && discount >= plan.amount);
    let (coupon_id, discount_periods_left) = match (&checkout.coupon_id, coupon_periods) {
        (Some(id), Some(periods)) if trial.is_some() => (Some(id.as_str()), periods),
        (Some(id), Some(periods)) => match discount::after_use(periods) {
            Some(left) => (Some(id.as_str()), left),
            None => (None, None),
        },
        _ => (None, None),
    };
    let subscription = NewSubscription {
        id: &subscription_id,
        customer_ref: customer,
        checkout_id: &checkout.id,
        plan_id: &plan.id,
        kind,
        amount: plan.amount,
        currency: &plan.currency,
        interval_unit: interval.unit.as_str(),
        interval_count: interval.count,
        unit_amount: plan.unit_amount,
        installments_total: checkout.installments,
        anchor_at,
        anchor_period,
        period_end,
        trial,
        coupon_id,
        discount_periods_left,
        now,
    };
    // The page's payment: the first period's charge, or (with a trial) a verification of the
    // card that belongs to no period and is refunded right after.
    let charge = match verify {
        false => NewCharge {
            id: charge_id,
            charge_key: &format!("checkout:{}", checkout.id),
            customer_ref: customer,
            subscription_id: Some(&subscription_id),
            period_index: Some(0),
            kind: "checkout",
            amount: checkout.amount,
            currency: &checkout.currency,
            description: &first_charge_description(&plan, checkout.installments),
            metadata: None,
            request_hash: None,
            now,
        },
        true => NewCharge {
            id: charge_id,
            charge_key: &format!("checkout:{}", checkout.id),
            customer_ref: customer,
            subscription_id: None,
            period_index: None,
            kind: "checkout",
            amount: checkout.amount,
            currency: &checkout.currency,
            description: VERIFICATION_DESCRIPTION,
            metadata: None,
            request_hash: None,
            now,
        },
    };
    let outcome = verify.then_some("verified");
    let given_id = format!("dsc_{}", checkout.id);
    let coupon = checkout.coupon_id.as_deref().filter(|_| discount > 0);
    let mut statements = vec![
        stmt(
            crate::sql!(
                "UPDATE checkouts SET status = 'paid', subscription_id = ?, completed_at = ?,
                 updated_at = ?, card_outcome = COALESCE(?, card_outcome)
             WHERE id = ? AND status = 'pending'"
            ),
            params![&subscription_id, now, now, outcome, &checkout.id],
        ),
        subscriptions::insert(&subscription),
        charges::record_settled(
            &charge,
            order_id,
            payment_id,
            Some(pm_id),
            coupon.filter(|_| !verify).map(|c| (c, discount)),
        ),
    ];
    if let Some(coupon) = coupon {
        statements.push(coupons::record(&Given {
            id: &given_id,
            claim: &checkout.id,
            customer_ref: customer,
            subscription_id: Some(&subscription_id),
            period_index: Some(0),
            coupon_id: coupon,
            currency: &checkout.currency,
            amount: discount,
            charge_id: (!verify).then_some(charge_id),
            now,
        }));
    }
    Ok(statements)
}

/// Refunds a verification payment (a card replacement's, or a trial's) in full: claimed once under a key no
/// merchant request can use (it has a space), then started; a replay finds the same refund.
async fn refund_verification(ctx: &Ctx, checkout: &CheckoutRow) -> Result<(), Problem> {
    let charge_id = format!("ch_{}", checkout.id.trim_start_matches("co_"));
    let Some(charge) = charges::get(ctx.db(), &charge_id).await? else {
        return Ok(());
    };
    // The key makes the refund once; the id is fresh per attempt, so that a concurrent attempt
    // (the webhook and the return page's poll) finds the winner's refund instead of colliding.
    let refund_id = ctx.new_id("re");
    let key = format!("card verification {}", checkout.id);
    let now = ctx.now().await?;
    let claimed = refunds::claim(
        ctx.db(),
        &key,
        "card verification",
        &refund_id,
        &charge_id,
        charge.amount,
        &charge.currency,
        now,
    )
    .await?;
    let refund_id = match claimed {
        Claimed::Won => refund_id,
        Claimed::Replay(id) => id,
        // Refunded already (by the merchant): nothing left to give back.
        Claimed::Exceeds => return Ok(()),
    };
    if let Some(refund) = refunds::get(ctx.db(), &refund_id).await?
        && refund.status == "processing"
    {
        refunding::start(ctx, &refund, &charge).await?;
    }
    Ok(())
}

fn first_charge_description(plan: &Plan, installments: Option<u32>) -> String {
    match installments {
        Some(n) => format!("{}: installment 1 of {n}", plan.name),
        None => format!("{}: first period", plan.name),
    }
}

/// A checkout nobody paid within this time is abandoned.
pub const ABANDON_AFTER_MS: i64 = 24 * 3_600_000;

/// Pending checkouts whose webhook may have been lost, asked about again by the cron; those
/// nobody paid for a day are abandoned. Verification payments whose refund a crash left
/// unstarted are refunded.
pub async fn reconcile_stale(ctx: &Ctx, older_than: i64, limit: u32) -> Result<u32, Problem> {
    for checkout in checkouts::unrefunded_verifications(ctx.db(), limit).await? {
        refund_verification(ctx, &checkout).await?;
    }
    let stale = checkouts::stale_pending(ctx.db(), older_than, limit).await?;
    let now = ctx.now().await?;
    let mut settled = 0;
    for checkout in &stale {
        match reconcile(ctx, checkout).await? {
            Activation::Pending { .. } if now - checkout.created_at > ABANDON_AFTER_MS => {
                if abandon(ctx, checkout, now).await? {
                    settled += 1;
                }
            }
            Activation::Pending { .. } => checkouts::touch(ctx.db(), &checkout.id, now).await?,
            _ => settled += 1,
        }
    }
    Ok(settled)
}

/// Cancels the provider order before giving up on a checkout, so the customer cannot pay one
/// we no longer expect. If the cancel is refused the order completed after all, and the next
/// reconciliation activates it. A cancelled order is recorded fenced: should a payment complete
/// there anyway, reconciliation refunds it.
async fn abandon(ctx: &Ctx, checkout: &CheckoutRow, now: i64) -> Result<bool, Problem> {
    let Some(order_id) = &checkout.order_id else {
        return Ok(false);
    };
    match ctx.psp().cancel_order(order_id).await {
        Ok(()) => discounting::mark_checkout_failed(ctx, checkout, "abandoned", true, now).await,
        Err(_) => {
            checkouts::touch(ctx.db(), &checkout.id, now).await?;
            Ok(false)
        }
    }
}
