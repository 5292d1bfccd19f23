//! `POST /v1/customers/:ref/balance/refund`: the customer's balance (what the merchant owes
//! them, a downgrade's unused part) given back to their card on request, as refunds of their
//! latest charges. Each part's refund, its balance transaction and the balance's debit are one
//! batch, after the request's key: the balance is never both kept and refunded, nor refunded
//! twice.

use serde::Serialize;
use serde_json::json;
use worker::{Request, Response};

use super::{body, respond};
use crate::context::Ctx;
use crate::params;
use crate::services::refunding;
use crate::store::balances;
use crate::store::charges;
use crate::store::db::stmt;
use crate::store::idempotency;
use crate::store::refunds::{self, RefundPart};
use crate::views;
use recurring_core::billing::settlement::REFUND_WINDOW_MS;
use recurring_core::billing::time::DAY_MS;
use recurring_core::http::problem::Problem;
use recurring_core::input::Fields;
use recurring_core::secure::{digest_id, request_fingerprint};
use recurring_core::validate;

const SCOPE: &str = "balance-refund";

pub async fn create(req: &mut Request, ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    let key = body::required_idempotency_key(req)?;
    let mut f = Fields::new(body::object(req).await?);
    let currency = f.string("currency");
    if let Some(c) = &currency {
        f.check(
            ctx.config.currencies.contains(c),
            "currency",
            "must be one of the merchant's currencies (CURRENCIES)",
        );
    }
    let requested = f.optional_integer("amount");
    if let Some(a) = requested {
        f.check(a > 0, "amount", "must be a positive amount in minor units");
    }
    f.finish()?;
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let currency = currency.unwrap_or_default();
    let db = ctx.db();
    let hash = request_fingerprint(
        SCOPE,
        &json!({"customer": customer, "currency": currency, "amount": requested}),
    );
    let scoped = format!("{customer}/{key}");
    let base = digest_id(&[customer, &key]);
    if idempotency::existing(db, SCOPE, &scoped, &hash)
        .await?
        .is_some()
    {
        return answer(ctx, customer, &currency, &base, 200).await;
    }

    let balance = balances::of(db, customer, &currency).await?;
    let amount = requested.unwrap_or(balance);
    if amount <= 0 || amount > balance {
        return Err(Problem::conflict(
            "insufficient-balance",
            "Not that much on the balance",
            format!("The customer's balance in {currency} is {balance}."),
        )
        .with("balance", balance));
    }
    // The provider refunds payments up to 90 days old; a day's margin keeps a part from
    // falling out of the window between now and its return.
    let now = ctx.now().await?;
    let candidates =
        refunds::refundable_charges(db, customer, &currency, now - REFUND_WINDOW_MS + DAY_MS)
            .await?;
    let mut left = amount;
    let mut parts = Vec::new();
    for (n, charge) in candidates.iter().enumerate() {
        if left == 0 {
            break;
        }
        let take = charge.remaining.min(left);
        left -= take;
        parts.push((
            format!("cbt_rf_{base}_{n}"),
            ctx.new_id("re"),
            charge.id.clone(),
            take,
        ));
    }
    if left > 0 {
        return Err(Problem::conflict(
            "balance-not-refundable",
            "Not enough recent payments to refund through",
            format!(
                "A balance is given back as refunds of the customer's payments of the last 89 \
                 days; they can take {} of {amount}. Refund less, or settle the rest another \
                 way.",
                amount - left
            ),
        )
        .with("refundable", amount - left));
    }
    let mut batch = vec![stmt(
        crate::sql!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, resource_id, created_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING"
        ),
        params![SCOPE, &scoped, &hash, &base, now],
    )];
    for (transaction_id, refund_id, charge_id, take) in &parts {
        batch.extend(refunds::refund_part(
            customer,
            &currency,
            &RefundPart {
                transaction_id,
                refund_id,
                charge_id,
                amount: *take,
            },
            (SCOPE, &scoped, &base),
            now,
        ));
    }
    db.batch(batch).await?;
    // Each refund goes its way (a void, or a return after settlement), as any refund does; one
    // the provider did not take now is taken up by the cron, which follows every open refund.
    for (_, refund_id, charge_id, _) in &parts {
        if let (Some(refund), Some(charge)) = (
            refunds::get(db, refund_id).await?,
            charges::get(db, charge_id).await?,
        ) && let Err(p) = refunding::start(ctx, &refund, &charge).await
        {
            ctx.log.warn(
                "balance refund left to the cron",
                crate::fields! {"refundId": refund_id, "detail": p.detail},
            );
        }
    }
    answer(ctx, customer, &currency, &base, 201).await
}

/// The refunds the request made (found through its balance transactions) and the balance now.
async fn answer(
    ctx: &Ctx,
    customer: &str,
    currency: &str,
    base: &str,
    status: u16,
) -> Result<Response, Problem> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        customer_ref: &'a str,
        currency: &'a str,
        /// Given back by this request.
        amount: i64,
        refunds: Vec<views::refund::RefundView<'a>>,
        /// The balance after it.
        balance: i64,
    }
    let db = ctx.db();
    let made = refunds::of_balance_refund(db, &format!("cbt_rf_{base}_")).await?;
    if made.is_empty() {
        return Err(Problem::conflict(
            "balance-changed",
            "The balance changed meanwhile",
            "The balance was used while this request ran; read it and try again with a new \
             Idempotency-Key.",
        ));
    }
    let balance = balances::of(db, customer, currency).await?;
    respond::json(
        status,
        &Answer {
            customer_ref: customer,
            currency,
            amount: made.iter().map(|r| r.amount).sum(),
            refunds: made.iter().map(views::refund).collect(),
            balance,
        },
    )
}
