//! Follows every succeeded charge and every returned refund until the provider has settled its
//! transaction, and records the settlement: fee, net, payout reference and date, with an
//! incident when the provider's figures do not add up. Reads are spaced by the provider's
//! calendar (`billing::settlement`): a transaction is first read when it is expected to be
//! settled, so most cost one status read.

use serde::Serialize;

use crate::context::Ctx;
use crate::store::db::Stmt;
use crate::store::settlements::{self, Followed, Of, Settled};
use recurring_core::billing::settlement::{self, Movement, Stage};
use recurring_core::http::problem::Problem;

/// A status that could not be read is read again after this long.
const UNREADABLE_RETRY_MS: i64 = 30 * 60_000;

/// What one round of following did.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowReport {
    /// Status reads made.
    pub read: u32,
    /// Movements recorded as settled.
    pub settled: u32,
    /// Settled movements whose figures did not add up (an incident each).
    pub mismatched: u32,
    /// Receipts emailed (`RECEIPTS=email`).
    pub receipts_emailed: u32,
}

impl FollowReport {
    /// Both reports together (the tick adds up its shards').
    pub fn plus(&self, other: &FollowReport) -> FollowReport {
        FollowReport {
            read: self.read + other.read,
            settled: self.settled + other.settled,
            mismatched: self.mismatched + other.mismatched,
            receipts_emailed: self.receipts_emailed + other.receipts_emailed,
        }
    }
}

/// Follows up to `limit` due charges and `limit` due refunds, while `budget` allows a read.
pub async fn follow_due(
    ctx: &Ctx,
    now: i64,
    limit: u32,
    budget: &dyn Fn() -> bool,
) -> Result<FollowReport, Problem> {
    let mut done = FollowReport::default();
    for of in [Of::Charge, Of::Refund] {
        let due = settlements::due(ctx.db(), of, now, limit).await?;
        // A movement not read before waits until it is expected to be settled: no read.
        let mut scheduled = Vec::new();
        let mut to_read = Vec::new();
        for row in due {
            let expected = settlement::expected_settlement(row.completed_at);
            if row.settlement_checks == 0 && expected > now {
                scheduled.push(settlements::schedule(of, &row.id, None, None, expected));
            } else {
                to_read.push(row);
            }
        }
        if !scheduled.is_empty() {
            ctx.db().batch(scheduled).await?;
        }
        for row in to_read {
            if !budget() {
                break;
            }
            done.read += 1;
            follow_one(ctx, of, &row, now, &mut done).await?;
        }
    }
    Ok(done)
}

async fn follow_one(
    ctx: &Ctx,
    of: Of,
    row: &Followed,
    now: i64,
    done: &mut FollowReport,
) -> Result<(), Problem> {
    let retry_later = |at: i64| settlements::schedule(of, &row.id, None, None, at);
    let Some(order_id) = row.order_id.as_deref() else {
        ctx.db()
            .batch(vec![retry_later(now + UNREADABLE_RETRY_MS)])
            .await?;
        return Ok(());
    };
    let status = match ctx.psp().order_status(order_id).await {
        Ok(status) => status,
        Err(_) => {
            ctx.db()
                .batch(vec![retry_later(now + UNREADABLE_RETRY_MS)])
                .await?;
            return Ok(());
        }
    };
    let (kind, movement) = match of {
        Of::Charge => ("PURCHASE", Movement::Purchase),
        Of::Refund => ("RETURN", Movement::Return),
    };
    let Some(transaction) = status.transaction(row.payment_id.as_deref(), kind) else {
        let next = settlement::next_check(now, &Stage::Unknown, row.settlement_checks);
        ctx.db().batch(vec![retry_later(next)]).await?;
        return Ok(());
    };
    let stage = settlement::stage_of(transaction);
    let id = Some(transaction.transaction_id.as_str());
    let next = settlement::next_check(now, &stage, row.settlement_checks);
    let statements: Vec<Stmt> = match &stage {
        Stage::Settled(settled) => {
            let reconciled = settlement::reconcile(movement, row.amount, transaction, settled);
            let record = Settled {
                of,
                id: &row.id,
                transaction_id: &transaction.transaction_id,
                fee: settled.fee,
                net: reconciled.net,
                provider_payout: settled.payout,
                payout_ref: &settled.reference,
                settlement_date: &settled.date,
                currency: &row.currency,
                now,
            };
            let mut statements = settlements::record(&record);
            if !reconciled.discrepancies.is_empty() {
                done.mismatched += 1;
                let detail = reconciled.discrepancies.join("; ");
                ctx.log.warn(
                    "settlement does not add up",
                    crate::fields! {"id": row.id, "payoutRef": settled.reference, "detail": detail},
                );
                statements.push(settlements::discrepancy(
                    &record,
                    &row.customer_ref,
                    row.amount,
                    &detail,
                ));
            }
            done.settled += 1;
            statements
        }
        Stage::NotSettled => vec![settlements::schedule(
            of,
            &row.id,
            Some("pending"),
            id,
            next,
        )],
        Stage::Processed => vec![settlements::schedule(
            of,
            &row.id,
            Some("processed"),
            id,
            next,
        )],
        Stage::Error => vec![
            settlements::schedule(of, &row.id, Some("error"), id, next),
            settlements::settlement_error(of, &row.id, &transaction.transaction_id, row, now),
        ],
        // Voided by someone else than our refund flow (which records it itself): it will
        // never settle.
        Stage::Voided => vec![settlements::voided(of, &row.id, now)],
        Stage::Unknown => vec![settlements::schedule(of, &row.id, None, id, next)],
    };
    ctx.db().batch(statements).await?;
    if matches!(stage, Stage::Settled(_)) && of == Of::Charge {
        // The receipt exists from now on: its link is kept for the customer's portal. Best
        // effort: the merchant's `GET /v1/charges/:id/receipt` asks again when it is missing.
        if let Ok(link) = ctx.psp().receipt_link(order_id).await {
            settlements::set_receipt_url(ctx.db(), &row.id, &link.receipt_url).await?;
        }
    }
    if matches!(stage, Stage::Settled(_))
        && of == Of::Charge
        && ctx.config.email_receipts
        && matches!(row.kind.as_deref(), Some("renewal" | "installment"))
        && crate::services::receipts::email_once(ctx, &row.id, now).await?
    {
        done.receipts_emailed += 1;
    }
    Ok(())
}
