//! The numbers a merchant's finance team asks for: `GET /v1/reports/summary`,
//! `GET /v1/reports/mrr` and `GET /v1/reports/charges.csv`. All are computed from the ledger
//! when asked, with a bounded number of index-range queries (the CSV pages through its range).

use std::rc::Rc;

use futures_util::future::try_join_all;
use futures_util::stream;
use serde::Serialize;
use worker::{Env, Request, Response};

use super::body;
use super::respond;
use crate::context::Ctx;
use crate::store::reports::{self, Count, ExportRow};
use recurring_core::billing::interval::IntervalUnit;
use recurring_core::billing::reports::{
    day_on_or_after, field, month_ends, monthly, number, record,
};
use recurring_core::billing::time::{days, format_rfc3339, parse_rfc3339};
use recurring_core::http::problem::Problem;

/// The longest range one report covers.
const MAX_RANGE_MS: i64 = days(731);
/// Rows one page of the CSV export reads from D1.
const EXPORT_PAGE: u32 = 500;

struct Range {
    from: i64,
    to: i64,
}

fn range(req: &Request) -> Result<Range, Problem> {
    let instant = |name: &str| -> Result<i64, Problem> {
        let raw = body::query_param(req, name).ok_or_else(|| {
            Problem::invalid_request(format!("{name} is required (RFC 3339, UTC or an offset)."))
        })?;
        parse_rfc3339(&raw)
            .map_err(|e| Problem::invalid_request(format!("{name} is not a valid instant: {e}.")))
    };
    let (from, to) = (instant("from")?, instant("to")?);
    if to <= from || to - from > MAX_RANGE_MS {
        return Err(Problem::invalid_request(
            "to must be after from, by at most 731 days.",
        ));
    }
    Ok(Range { from, to })
}

fn currency(req: &Request, ctx: &Ctx) -> Result<String, Problem> {
    match body::query_param(req, "currency") {
        Some(c) if ctx.config.currencies.contains(&c) => Ok(c),
        _ => Err(Problem::invalid_request(format!(
            "currency is required: one of {} (ISO 4217 numeric).",
            ctx.config.currencies.join(", ")
        ))),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    from: String,
    to: String,
    currency: String,
    /// Succeeded charges (by when they succeeded).
    gross: i64,
    /// Succeeded refunds (by when they succeeded), voids included.
    refunded: i64,
    /// The provider's fees on the range's succeeded charges, as far as they are settled.
    fees: i64,
    /// gross − refunded − fees.
    net: i64,
    /// Payouts whose settlement day starts in the range: what the provider paid out.
    paid_out: i64,
    payouts: u32,
    charges: ChargeCounts,
    failures_by_reason: Vec<Reason>,
    refunds: RefundCounts,
    /// What coupons took off prices in the range: never charged, so neither in `gross` nor in
    /// `refunded`.
    discounts: DiscountCounts,
    dunning: Dunning,
    /// Subscriptions by the status they had at `to`.
    subscriptions: std::collections::BTreeMap<String, u32>,
    /// Monthly recurring revenue at `to` (see docs/operate/reports.md for the normalization rule).
    mrr: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChargeCounts {
    succeeded: u32,
    failed: u32,
    /// Succeeded charges whose fee is known (settled, or voided: no fee).
    settled: u32,
}

#[derive(Serialize)]
struct Reason {
    reason: String,
    count: u32,
    amount: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundCounts {
    count: u32,
    voided: u32,
    voided_amount: i64,
    returned: u32,
    returned_amount: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscountCounts {
    /// Charges (or whole periods) a coupon reduced.
    count: u32,
    amount: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dunning {
    /// Charges that succeeded after at least one declined attempt.
    recovered: u32,
    recovered_amount: i64,
}

fn of_method<'a>(counts: &'a [Count], method: &str) -> Option<&'a Count> {
    counts.iter().find(|c| c.key.as_deref() == Some(method))
}

/// MRR at `at`: each recurring subscription billing then, its price spread over a month.
pub(super) async fn mrr_at(ctx: &Ctx, at: i64, currency: &str) -> Result<(i64, u32), Problem> {
    // A sum of subscriptions' prices: each shard's groups add up the same way.
    let groups = try_join_all(
        ctx.every_shard()
            .into_iter()
            .map(|shard| async move { reports::recurring_prices(shard.db(), at, currency).await }),
    )
    .await?
    .into_iter()
    .flatten();
    let mut total = 0i64;
    let mut subscriptions = 0u32;
    for g in groups {
        let Ok(unit) = g.interval_unit.parse::<IntervalUnit>() else {
            continue;
        };
        total += i64::from(g.n) * monthly(g.amount, unit, g.interval_count);
        subscriptions += g.n;
    }
    Ok((total, subscriptions))
}

/// A summary's figures from one shard, and their sum over the shards.
#[derive(Default)]
struct Figures {
    charges: reports::ChargeTotals,
    refunds: Vec<Count>,
    failures: Vec<Count>,
    paid: reports::PaidOut,
    /// The payouts' references, when counted over several shards.
    paid_refs: Vec<String>,
    statuses: Vec<Count>,
    discounts: (u32, i64),
}

impl Figures {
    async fn of(
        shard: Ctx,
        from: i64,
        to: i64,
        (from_day, to_day): (&str, &str),
        currency: &str,
    ) -> Result<Figures, Problem> {
        let db = shard.db();
        let paid = reports::paid_out(db, from_day, to_day, currency).await?;
        // A payout carries charges of several shards and each records it: counted once.
        let paid_refs = if shard.shard_count() > 1 {
            reports::payout_refs(db, from_day, to_day, currency).await?
        } else {
            Vec::new()
        };
        Ok(Figures {
            charges: reports::charge_totals(db, from, to, currency).await?,
            refunds: reports::refunds_by_method(db, from, to, currency).await?,
            failures: reports::failures_by_reason(db, from, to, currency).await?,
            paid,
            paid_refs,
            statuses: reports::subscriptions_by_status(db, to, currency).await?,
            discounts: crate::store::coupons::given_between(db, from, to, currency).await?,
        })
    }

    fn sum(shards: Vec<Figures>) -> Figures {
        let mut shards = shards.into_iter();
        let Some(mut total) = shards.next() else {
            return Figures::default();
        };
        let mut merged = false;
        for f in shards {
            merged = true;
            total.charges.add(&f.charges);
            add_counts(&mut total.refunds, f.refunds);
            add_counts(&mut total.failures, f.failures);
            add_counts(&mut total.statuses, f.statuses);
            total.paid.amount += f.paid.amount;
            total.paid_refs.extend(f.paid_refs);
            total.discounts.0 += f.discounts.0;
            total.discounts.1 += f.discounts.1;
        }
        if merged {
            total.paid_refs.sort_unstable();
            total.paid_refs.dedup();
            total.paid.payouts = total.paid_refs.len() as u32;
            // In the order each query gives its own.
            total.refunds.sort_by(|a, b| a.key.cmp(&b.key));
            total.statuses.sort_by(|a, b| a.key.cmp(&b.key));
            by_count(&mut total.failures);
        }
        total
    }
}

/// In the order `failures_by_reason` gives its own: most first, then by reason.
pub(super) fn by_count(counts: &mut [Count]) {
    counts.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.key.cmp(&b.key)));
}

/// Adds one shard's counts to another's, key by key.
pub(super) fn add_counts(into: &mut Vec<Count>, more: Vec<Count>) {
    for c in more {
        match into.iter_mut().find(|i| i.key == c.key) {
            Some(i) => {
                i.n += c.n;
                i.amount += c.amount;
            }
            None => into.push(c),
        }
    }
}

pub async fn summary(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let Range { from, to } = range(req)?;
    let currency = currency(req, ctx)?;
    let (from_day, to_day) = (
        day_on_or_after(from).unwrap_or_default(),
        day_on_or_after(to).unwrap_or_default(),
    );
    let shards = try_join_all(
        ctx.every_shard()
            .into_iter()
            .map(|shard| Figures::of(shard, from, to, (&from_day, &to_day), &currency)),
    )
    .await?;
    let Figures {
        charges,
        refunds,
        failures,
        paid,
        statuses,
        discounts: (discounted, discount_amount),
        ..
    } = Figures::sum(shards);
    let failed: u32 = failures.iter().map(|c| c.n).sum();
    let (mrr, _) = mrr_at(ctx, to, &currency).await?;
    let refunded: i64 = refunds.iter().map(|c| c.amount).sum();
    let voided = of_method(&refunds, "void");
    let returned = of_method(&refunds, "return");
    let summary = Summary {
        from: format_rfc3339(from),
        to: format_rfc3339(to),
        currency,
        gross: charges.gross,
        refunded,
        fees: charges.fees,
        net: charges.gross - refunded - charges.fees,
        paid_out: paid.amount,
        payouts: paid.payouts,
        charges: ChargeCounts {
            succeeded: charges.succeeded,
            failed,
            settled: charges.settled,
        },
        failures_by_reason: failures
            .into_iter()
            .map(|c| Reason {
                reason: c.key.unwrap_or_else(|| "unknown".into()),
                count: c.n,
                amount: c.amount,
            })
            .collect(),
        refunds: RefundCounts {
            count: refunds.iter().map(|c| c.n).sum(),
            voided: voided.map_or(0, |c| c.n),
            voided_amount: voided.map_or(0, |c| c.amount),
            returned: returned.map_or(0, |c| c.n),
            returned_amount: returned.map_or(0, |c| c.amount),
        },
        discounts: DiscountCounts {
            count: discounted,
            amount: discount_amount,
        },
        dunning: Dunning {
            recovered: charges.recovered,
            recovered_amount: charges.recovered_amount,
        },
        subscriptions: statuses
            .into_iter()
            .filter_map(|c| Some((c.key?, c.n)))
            .collect(),
        mrr,
    };
    respond::json(200, &summary)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MrrPoint {
    month: String,
    /// The instant the figure is taken at: the month's end, or now for the current month.
    at: String,
    mrr: i64,
    subscriptions: u32,
}

#[derive(Serialize)]
struct MrrSeries {
    currency: String,
    data: Vec<MrrPoint>,
}

/// `?months=` (1-24, default 12) and `?currency=`.
pub async fn mrr(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let months = match body::query_param(req, "months") {
        None => 12,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=24).contains(n))
            .ok_or_else(|| Problem::invalid_request("months must be an integer from 1 to 24."))?,
    };
    let currency = currency(req, ctx)?;
    let now = ctx.now().await?;
    let mut data = Vec::new();
    for (month, at) in month_ends(now, months) {
        let (mrr, subscriptions) = mrr_at(ctx, at, &currency).await?;
        data.push(MrrPoint {
            month,
            at: format_rfc3339(at),
            mrr,
            subscriptions,
        });
    }
    respond::json(200, &MrrSeries { currency, data })
}

/// The export's columns, in order.
pub const CSV_COLUMNS: [&str; 22] = [
    "type",
    "id",
    "charge_id",
    "charge_kind",
    "customer_ref",
    "subscription_id",
    "status",
    "amount",
    "currency",
    "failure_reason",
    "refund_method",
    "created_at",
    "final_at",
    "fee",
    "net",
    "settlement_status",
    "payout_id",
    "settlement_date",
    "transaction_id",
    "provider_order_id",
    "discount_amount",
    "coupon",
];

fn csv_record(r: &ExportRow) -> String {
    let text = |v: &Option<String>| field(v.as_deref().unwrap_or(""));
    let succeeded = r.status == "succeeded";
    let optional_number = |v: Option<i64>| v.map(number).unwrap_or_default();
    record(&[
        field(&r.kind),
        field(&r.id),
        field(&r.charge_id),
        field(&r.charge_kind),
        field(&r.customer_ref),
        text(&r.subscription_id),
        field(&r.status),
        number(r.amount),
        field(&r.currency),
        text(&r.failure_reason),
        text(&r.method),
        field(&format_rfc3339(r.created_at)),
        field(&format_rfc3339(r.settled_at)),
        optional_number(r.fee.filter(|_| succeeded)),
        optional_number(r.net.filter(|_| succeeded)),
        text(&r.settlement_status),
        text(&r.payout_ref),
        text(&r.settlement_date),
        text(&r.transaction_id),
        text(&r.order_id),
        optional_number(r.discount_amount.filter(|d| *d > 0)),
        text(&r.coupon_id),
    ])
}

/// Where the export stands between two pages.
enum Cursor {
    Charges(i64, String),
    Failed(i64, String),
    Refunds(i64, String),
    Done,
}

/// The export's next page of one kind over every shard, in the order each shard gives its
/// own (`(settled_at, id)`).
async fn export_page(
    ctx: &Ctx,
    kind: Kind,
    from: i64,
    to: i64,
    after: (i64, &str),
) -> Result<Vec<ExportRow>, Problem> {
    super::page::across_shards(
        ctx,
        EXPORT_PAGE,
        |shard| async move {
            match kind {
                Kind::Charges => {
                    reports::export_charges(shard.db(), from, to, after, EXPORT_PAGE).await
                }
                Kind::Failed => {
                    reports::export_failed_charges(shard.db(), from, to, after, EXPORT_PAGE).await
                }
                Kind::Refunds => {
                    reports::export_refunds(shard.db(), from, to, after, EXPORT_PAGE).await
                }
            }
        },
        |a: &ExportRow, b: &ExportRow| (a.settled_at, &a.id).cmp(&(b.settled_at, &b.id)),
    )
    .await
}

/// `?from=&to=`: one row per charge that succeeded in the range, then per charge whose latest
/// attempt failed in it, then per final refund, each in the order it got there. Streamed a page of rows at a time, so a range
/// of any size stays inside D1's limits and the worker's memory.
pub async fn charges_csv(req: &Request, ctx: &Ctx, env: &Env) -> Result<Response, Problem> {
    let Range { from, to } = range(req)?;
    // The stream outlives this call: it gets a context of its own, with the same log.
    let owned = Rc::new(Ctx::with_log(env, ctx.config.clone(), ctx.log.clone())?);
    let header = record(&CSV_COLUMNS.map(field));
    let start = Cursor::Charges(from - 1, String::new());
    let pages = stream::unfold(Some(start), move |cursor| {
        let ctx = owned.clone();
        async move {
            let cursor = cursor?;
            let (rows, next) = match &cursor {
                Cursor::Charges(at, id) => (
                    export_page(&ctx, Kind::Charges, from, to, (*at, id)).await,
                    Kind::Charges,
                ),
                Cursor::Failed(at, id) => (
                    export_page(&ctx, Kind::Failed, from, to, (*at, id)).await,
                    Kind::Failed,
                ),
                Cursor::Refunds(at, id) => (
                    export_page(&ctx, Kind::Refunds, from, to, (*at, id)).await,
                    Kind::Refunds,
                ),
                Cursor::Done => return None,
            };
            let rows = match rows {
                Ok(rows) => rows,
                // The status line is gone: the cut-off body and the log tell what happened.
                Err(p) => {
                    ctx.log
                        .error("export page failed", crate::fields! {"detail": p.detail});
                    return Some((Err(worker::Error::RustError("export failed".into())), None));
                }
            };
            let full = rows.len() == EXPORT_PAGE as usize;
            let text: String = rows.iter().map(csv_record).collect();
            let cursor = match (rows.last(), full, next) {
                (Some(last), true, Kind::Charges) => {
                    Cursor::Charges(last.settled_at, last.id.clone())
                }
                (Some(last), true, Kind::Failed) => {
                    Cursor::Failed(last.settled_at, last.id.clone())
                }
                (Some(last), true, Kind::Refunds) => {
                    Cursor::Refunds(last.settled_at, last.id.clone())
                }
                (_, _, Kind::Charges) => Cursor::Failed(from - 1, String::new()),
                (_, _, Kind::Failed) => Cursor::Refunds(from - 1, String::new()),
                (_, _, Kind::Refunds) => Cursor::Done,
            };
            Some((
                Ok::<Vec<u8>, worker::Error>(text.into_bytes()),
                Some(cursor),
            ))
        }
    });
    let body = stream::iter([Ok::<Vec<u8>, worker::Error>(header.into_bytes())]);
    let response = Response::from_stream(futures_util::StreamExt::chain(body, pages))
        .map_err(|_| Problem::internal("The export could not be started."))?;
    let headers = worker::Headers::new();
    for (name, value) in [
        ("Content-Type", "text/csv; charset=utf-8; header=present"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        (
            "Content-Disposition",
            "attachment; filename=\"charges.csv\"",
        ),
    ] {
        let _ = headers.set(name, value);
    }
    Ok(response.with_headers(headers))
}

#[derive(Clone, Copy)]
enum Kind {
    Charges,
    Failed,
    Refunds,
}
