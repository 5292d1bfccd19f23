//! `GET /v1/payouts` and `GET /v1/payouts/:id`: what the provider paid out, grouped by its
//! payout reference, with the charges and refunds in each and whether they add up.

use futures_util::future::try_join_all;
use serde::Serialize;
use worker::{Request, Response};

use super::{body, page, respond};
use crate::context::Ctx;
use crate::store::payouts::{self, PayoutLine, PayoutRow};
use recurring_core::billing::time::format_rfc3339;
use recurring_core::http::problem::Problem;
use recurring_core::validate;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayoutView<'a> {
    id: &'a str,
    currency: &'a str,
    settlement_date: &'a str,
    /// What the provider paid out: the sum of its transactions' payouts as it reported them.
    amount: i64,
    /// Charges' amounts, their fees and the refunds taken from it.
    gross: i64,
    fees: i64,
    refunds: i64,
    /// What the ledger expects: gross − fees − refunds.
    expected: i64,
    /// `amount == expected`; when false, each transaction that disagrees is an incident
    /// (`settlementMismatch`) naming the payout.
    reconciled: bool,
    charge_count: u32,
    refund_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    transactions: Option<Vec<LineView<'a>>>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LineView<'a> {
    /// charge or refund.
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    charge_id: &'a str,
    customer_ref: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    amount: i64,
    fee: i64,
    net: i64,
    /// The provider's payout for this transaction.
    reported: i64,
}

fn view<'a>(p: &'a PayoutRow, lines: Option<&'a [PayoutLine]>) -> PayoutView<'a> {
    let expected = p.charges_net - p.refunded;
    PayoutView {
        id: &p.payout_ref,
        currency: &p.currency,
        settlement_date: &p.settlement_date,
        amount: p.reported,
        gross: p.gross,
        fees: p.fees,
        refunds: p.refunded,
        expected,
        reconciled: p.reported == expected,
        charge_count: p.charges,
        refund_count: p.refunds,
        transactions: lines.map(|lines| {
            lines
                .iter()
                .map(|l| LineView {
                    kind: &l.kind,
                    id: &l.id,
                    charge_id: &l.charge_id,
                    customer_ref: &l.customer_ref,
                    transaction_id: l.transaction_id.as_deref(),
                    amount: l.amount,
                    fee: l.fee.unwrap_or(0),
                    net: l.net.unwrap_or(0),
                    reported: l.reported.unwrap_or(0),
                })
                .collect()
        }),
        created_at: format_rfc3339(p.created_at),
        updated_at: format_rfc3339(p.updated_at),
    }
}

/// Newest settlement date first; `?limit=` and `?startingAfter=<payout id>`.
pub async fn list(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = page::limit(req)?;
    let after = match body::query_param(req, "startingAfter") {
        None => None,
        Some(id) => {
            let p = find(ctx, &id)
                .await?
                .ok_or_else(|| Problem::invalid_request("startingAfter is not a payout id."))?;
            Some((p.settlement_date, p.payout_ref))
        }
    };
    let after = after.as_ref().map(|(d, r)| (d.as_str(), r.as_str()));
    let pages = try_join_all(
        ctx.every_shard()
            .into_iter()
            .map(|shard| async move { payouts::list(shard.db(), after, limit + 1).await }),
    )
    .await?;
    let mut rows = combine(pages.into_iter().flatten());
    rows.truncate(limit as usize + 1);
    respond::json(
        200,
        &page::of(&rows, limit, |p| &p.payout_ref, |p| view(p, None)),
    )
}

/// One payout with its transactions.
pub async fn get(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The payout"));
    }
    let payout = find(ctx, id)
        .await?
        .ok_or_else(|| Problem::not_found("The payout"))?;
    let mut lines: Vec<PayoutLine> = try_join_all(
        ctx.every_shard()
            .into_iter()
            .map(|shard| async move { payouts::lines(shard.db(), id).await }),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();
    if ctx.shard_count() > 1 {
        lines.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    }
    respond::json(200, &view(&payout, Some(&lines)))
}

/// A payout as every shard knows it: each records it with its own charges and refunds.
async fn find(ctx: &Ctx, id: &str) -> Result<Option<PayoutRow>, Problem> {
    let found = try_join_all(
        ctx.every_shard()
            .into_iter()
            .map(|shard| async move { payouts::get(shard.db(), id).await }),
    )
    .await?;
    Ok(combine(found.into_iter().flatten()).pop())
}

/// Shards' rows of the same payouts added up, newest settlement date first.
fn combine(rows: impl Iterator<Item = PayoutRow>) -> Vec<PayoutRow> {
    let mut out: Vec<PayoutRow> = Vec::new();
    for row in rows {
        match out.iter_mut().find(|p| p.payout_ref == row.payout_ref) {
            Some(p) => {
                p.created_at = p.created_at.min(row.created_at);
                p.updated_at = p.updated_at.max(row.updated_at);
                p.charges += row.charges;
                p.gross += row.gross;
                p.fees += row.fees;
                p.charges_net += row.charges_net;
                p.refunds += row.refunds;
                p.refunded += row.refunded;
                p.reported += row.reported;
            }
            None => out.push(row),
        }
    }
    out.sort_by(|a, b| {
        (&b.settlement_date, &b.payout_ref).cmp(&(&a.settlement_date, &a.payout_ref))
    });
    out
}
