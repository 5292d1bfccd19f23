//! `/dashboard`: the merchant's staff in the browser. Every path under it is answered here,
//! pages included, so that nothing of it is served to someone who has not proved who they are:
//! a Cloudflare Access token (verified here, not only by Access) or, in development only, a
//! signed session cookie. The pages read and act through `/dashboard/api/`: the merchant API's
//! own routes (`/dashboard/api/v1/...`, reads for everyone, a few writes for admins), and the
//! reads below that only the dashboard needs. The merchant API key never reaches a browser.

use std::rc::Rc;

use futures_util::future::try_join_all;
use serde::Serialize;
use serde_json::{Value, json};
use worker::{Context, Env, Request, Response};

use super::{body, reports, respond};
use crate::context::{Ctx, load_config};
use crate::log::Log;
use crate::services::events as event_service;
use crate::store::{charges, dashboard as reads, incidents, payment_methods, refunds};
use crate::views;
use recurring_core::billing::reports::month_ends;
use recurring_core::billing::time::{DAY_MS, format_rfc3339};
use recurring_core::config::Config;
use recurring_core::http::problem::Problem;
use recurring_core::http::router::{self, Access, Matched, Route};
use recurring_core::input::Fields;
use recurring_core::staff::{self, Role, Staff, Via};
use recurring_core::validate;

/// The pages: served from the assets, after the visitor is known.
const ASSETS: &str = "ASSETS";
/// The page a development sign-in starts from.
const LOGIN_PAGE: &str = "/dashboard/login.html";

fn wall_seconds() -> i64 {
    (worker::Date::now().as_millis() / 1000) as i64
}

/// Who is asking: an Access token first; a development session only when that is on.
async fn authenticate(req: &Request, config: &Config) -> Result<Staff, Problem> {
    let dash = &config.dashboard;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let refused = |detail: &str| {
        Problem::new(401, "unauthorized", "Unauthorized")
            .detail(detail.to_owned())
            .header("WWW-Authenticate", "Cf-Access-Jwt-Assertion")
    };
    if let Some(token) = header("Cf-Access-Jwt-Assertion") {
        let Some(app) = &dash.access else {
            return Err(refused("This deployment accepts no Access token."));
        };
        let parsed = staff::parse_access_token(token.trim()).map_err(|r| refused(r.detail()))?;
        staff::check_access_claims(&parsed, &app.team_domain, &app.aud, wall_seconds())
            .map_err(|r| refused(r.detail()))?;
        crate::access_keys::verify(app, &parsed)
            .await
            .map_err(|r| refused(r.detail()))?;
        return Ok(Staff {
            role: staff::role_of(&parsed.email, &dash.admins),
            email: parsed.email,
            via: Via::Access,
        });
    }
    if dash.dev_login
        && let Some(cookies) = header("Cookie")
        && let Some(value) = staff::cookie(&cookies, staff::DEV_COOKIE)
        && let Some(email) =
            staff::verify_dev_session(&config.merchant_keys.current, value, wall_seconds())
    {
        return Ok(Staff {
            role: staff::role_of(&email, &dash.admins),
            email,
            via: Via::Development,
        });
    }
    Err(refused(
        "Sign in through Cloudflare Access (or, in development, at /dashboard/login.html).",
    ))
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(403, "forbidden", "Forbidden").detail(detail.to_owned())
}

/// Headers every dashboard answer carries: pages only from this site, never framed, never
/// cached, no referrer leaving it.
fn guarded(mut response: Response, page: bool) -> Response {
    let headers = response.headers_mut();
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("X-Frame-Options", "DENY");
    let _ = headers.set("Referrer-Policy", "no-referrer");
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    if page {
        let _ = headers.set(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        );
    }
    response
}

pub async fn handle(
    req: Request,
    env: &Env,
    worker_ctx: &Context,
    method: &str,
    path: &str,
    log: &Rc<Log>,
) -> Result<Response, Problem> {
    let config = load_config(env)?;
    let dash = &config.dashboard;
    if dash.access.is_none() && !dash.dev_login {
        return Err(Problem::route_not_found(path));
    }
    let is_api = path.starts_with("/dashboard/api/");
    match (method, path) {
        // The dashboard speaks to its own pages only: no cross-origin call is ever allowed.
        ("OPTIONS", _) => return Err(Problem::method_not_allowed(&["GET", "POST"])),
        // The sign-in page and what it loads; nothing else is served before sign-in.
        ("GET", LOGIN_PAGE | "/dashboard/login.js" | "/dashboard/dashboard.css")
            if dash.dev_login =>
        {
            return asset(env, req, path).await;
        }
        ("POST", "/dashboard/api/dev-login") if dash.dev_login => {
            return dev_login(req, &config).await;
        }
        ("POST", "/dashboard/api/logout") => {
            let secure = config.public_base_url.starts_with("https://");
            let mut response = respond::empty(204, Vec::new())?;
            let _ = response
                .headers_mut()
                .set("Set-Cookie", &staff::dev_cookie_cleared(secure));
            return Ok(guarded(response, false));
        }
        _ => {}
    }
    let staff = match authenticate(&req, &config).await {
        Ok(staff) => staff,
        // A page asked for by a browser without a session goes to the sign-in, in development.
        Err(_) if !is_api && method == "GET" && dash.dev_login => {
            let response = Response::redirect_with_status(
                worker::Url::parse(&format!("{}{LOGIN_PAGE}", config.public_base_url))
                    .map_err(|_| Problem::internal("The sign-in address is not a URL."))?,
                303,
            )
            .map_err(|_| Problem::internal("The redirect could not be built."))?;
            return Ok(guarded(response, false));
        }
        Err(problem) => return Err(problem),
    };
    log.tag("staff", &staff.email);
    let Some(rest) = path.strip_prefix("/dashboard/api/") else {
        return match method {
            "GET" | "HEAD" => asset(env, req, path).await,
            _ => Err(Problem::method_not_allowed(&["GET"])),
        };
    };
    if method != "GET" {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        if !staff::same_site_write(
            header(staff::WRITE_HEADER).as_deref(),
            header("Origin").as_deref(),
            header("Sec-Fetch-Site").as_deref(),
            &config.public_base_url,
        ) {
            return Err(forbidden(
                "Changes are accepted from the dashboard's own pages only.",
            ));
        }
        if staff.role != Role::Admin {
            return Err(forbidden(
                "Your account may read the dashboard, not change anything.",
            ));
        }
    }
    let ctx = Ctx::with_log(env, config, log.clone())?;
    let response = api(req, &ctx, env, worker_ctx, method, rest, &staff).await?;
    Ok(guarded(response, false))
}

async fn dev_login(mut req: Request, config: &Config) -> Result<Response, Problem> {
    // No other site may sign a browser in, even in development.
    let header = |name: &str| req.headers().get(name).ok().flatten();
    if !staff::same_site_write(
        header(staff::WRITE_HEADER).as_deref(),
        header("Origin").as_deref(),
        header("Sec-Fetch-Site").as_deref(),
        &config.public_base_url,
    ) {
        return Err(forbidden("Sign in from the dashboard's own page."));
    }
    let map = body::object(&mut req).await?;
    let mut f = Fields::new(map);
    let email = f.string("email");
    if let Some(e) = &email {
        f.check(validate::is_email(e), "email", "must be an email address");
    }
    f.finish()?;
    let email = email.unwrap_or_default().to_ascii_lowercase();
    let cookie = staff::mint_dev_session(&config.merchant_keys.current, &email, wall_seconds());
    let secure = config.public_base_url.starts_with("https://");
    let role = staff::role_of(&email, &config.dashboard.admins);
    let mut response = respond::json(200, &json!({"email": email, "role": role.as_str()}))?;
    let _ = response
        .headers_mut()
        .set("Set-Cookie", &staff::dev_cookie(&cookie, secure));
    Ok(guarded(response, false))
}

/// A page or a file of the dashboard, from the assets.
async fn asset(env: &Env, req: Request, path: &str) -> Result<Response, Problem> {
    let assets = env
        .assets(ASSETS)
        .map_err(|_| Problem::misconfigured("The ASSETS binding is missing."))?;
    let url = req
        .url()
        .map_err(|_| Problem::invalid_request("Bad URL."))?;
    // `/dashboard` is the same page as `/dashboard/`.
    let target = if path == "/dashboard" {
        format!(
            "{}://{}/dashboard/",
            url.scheme(),
            url.host_str().unwrap_or("")
        )
    } else {
        url.to_string()
    };
    let mut fetched = assets
        .fetch(target, None)
        .await
        .map_err(|_| Problem::internal("The dashboard's page could not be read."))?;
    let status = fetched.status_code();
    let content_type = fetched
        .headers()
        .get("Content-Type")
        .ok()
        .flatten()
        .unwrap_or_else(|| "application/octet-stream".into());
    let bytes = fetched
        .bytes()
        .await
        .map_err(|_| Problem::internal("The dashboard's page could not be read."))?;
    // A copy: the fetched answer's headers cannot be changed.
    let mut response = Response::from_bytes(bytes)
        .map_err(|_| Problem::internal("The page could not be built."))?
        .with_status(status);
    let _ = response.headers_mut().set("Content-Type", &content_type);
    Ok(guarded(response, true))
}

async fn api(
    req: Request,
    ctx: &Ctx,
    env: &Env,
    worker_ctx: &Context,
    method: &str,
    rest: &str,
    staff: &Staff,
) -> Result<Response, Problem> {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["me"]) => respond::json(
            200,
            &json!({
                "email": staff.email,
                "role": staff.role.as_str(),
                "via": staff.via.as_str(),
                "testClock": ctx.config.test_clock,
                "currencies": ctx.config.currencies,
            }),
        ),
        ("GET", ["customers"]) => search_customers(&req, ctx).await,
        ("GET", ["customers", customer]) => customer_detail(ctx, customer).await,
        ("GET", ["charges", id, "timeline"]) => timeline(ctx, id).await,
        ("GET", ["overview"]) => overview(&req, ctx).await,
        (_, ["v1", ..]) => merchant_route(req, ctx, env, worker_ctx, method, rest).await,
        _ => Err(Problem::route_not_found(&format!("/dashboard/api/{rest}"))),
    }
}

/// The merchant API's own routes, as the staff member may use them: every read; of the writes,
/// only refunds, subscription changes, redeliveries and the test clock.
async fn merchant_route(
    req: Request,
    ctx: &Ctx,
    env: &Env,
    worker_ctx: &Context,
    method: &str,
    rest: &str,
) -> Result<Response, Problem> {
    let path = format!("/{rest}");
    let route = match router::resolve(method, &path) {
        Matched::Route(route) if route.access() == Access::Merchant => route,
        Matched::MethodNotAllowed(allowed) => return Err(Problem::method_not_allowed(allowed)),
        _ => return Err(Problem::route_not_found(&format!("/dashboard/api{path}"))),
    };
    let writable = matches!(
        route,
        Route::CreateRefund(_)
            | Route::SubscriptionAction(..)
            | Route::RedeliverEvent(_)
            | Route::TestClockTick
    );
    if method != "GET" && !writable {
        return Err(forbidden("The dashboard does not make this change."));
    }
    super::route_to(route, req, ctx, env, worker_ctx).await
}

async fn search_customers(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let q = body::query_param(req, "q").unwrap_or_default();
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 254 || recurring_core::input::has_control(q) {
        return Err(Problem::invalid_request(
            "q is a customer reference or an email, or the start of one.",
        ));
    }
    let rows = super::page::across_shards(
        ctx,
        20,
        |shard| async move { reads::search_customers(shard.db(), q, 20).await },
        |a: &reads::CustomerRow, b: &reads::CustomerRow| a.customer_ref.cmp(&b.customer_ref),
    )
    .await?;
    let data: Vec<Value> = rows.iter().map(customer_view).collect();
    respond::json(200, &json!({ "data": data }))
}

fn customer_view(c: &reads::CustomerRow) -> Value {
    json!({
        "customerRef": c.customer_ref,
        "email": c.email,
        "name": c.name,
        "createdAt": format_rfc3339(c.created_at),
    })
}

/// Events rendered as the API renders them, from JSON text back to values.
async fn rendered(
    ctx: &Ctx,
    rows: &[crate::store::events::EventRow],
) -> Result<Vec<Value>, Problem> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text = event_service::render(ctx, row, None).await?;
        out.push(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    Ok(out)
}

async fn customer_detail(ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let ctx = &ctx.for_customer(customer, false).await?;
    let db = ctx.db();
    let Some(row) = reads::customer(db, customer).await? else {
        return Err(Problem::not_found("The customer"));
    };
    let card = payment_methods::active(db, customer).await?;
    let subscriptions =
        crate::store::subscriptions::list(db, Some(customer), None, None, 50).await?;
    let charges = charges::list_for_customer(db, customer, None, 50).await?;
    let refunds = reads::refunds_of(db, customer, 50).await?;
    let ids: Vec<&str> = charges
        .iter()
        .map(|c| c.id.as_str())
        .chain(subscriptions.iter().map(|s| s.id.as_str()))
        .chain(refunds.iter().map(|r| r.id.as_str()))
        .collect();
    let events = reads::events_of(db, &serde_json::to_string(&ids).unwrap_or_default(), 50).await?;
    let body = json!({
        "customer": customer_view(&row),
        "paymentMethod": card
            .as_ref()
            .map(|(card, added_at)| views::payment_method(customer, card, *added_at)),
        "subscriptions": subscriptions.iter().map(views::subscription).collect::<Vec<_>>(),
        "charges": charges.iter().map(views::charge).collect::<Vec<_>>(),
        "refunds": refunds.iter().map(views::refund).collect::<Vec<_>>(),
        "events": rendered(ctx, &events).await?,
    });
    respond::json(200, &body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Step {
    at: String,
    what: String,
    detail: Value,
}

/// A charge as a timeline: its attempts and the orders they used, its refunds, incidents and
/// events, oldest first.
async fn timeline(ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(id) {
        return Err(Problem::not_found("The charge"));
    }
    let ctx = &ctx.by_id(id);
    let db = ctx.db();
    let charge = charges::get(db, id)
        .await?
        .ok_or_else(|| Problem::not_found("The charge"))?;
    let attempts = reads::attempts(db, id).await?;
    let orders = reads::orders(db, id).await?;
    let refunds = refunds::list_for_charge(db, id).await?;
    let incident_rows = incidents::list(db, None, None, Some(id), 50).await?;
    let events =
        reads::events_of(db, &serde_json::to_string(&[id]).unwrap_or_default(), 50).await?;
    let mut steps = vec![Step {
        at: format_rfc3339(charge.created_at),
        what: "created".into(),
        detail: json!({"kind": charge.kind, "amount": charge.amount}),
    }];
    for o in &orders {
        steps.push(Step {
            at: format_rfc3339(o.created_at),
            what: "order".into(),
            detail: json!({"providerOrderId": o.order_id, "status": o.status}),
        });
    }
    for a in &attempts {
        steps.push(Step {
            at: format_rfc3339(a.updated_at),
            what: format!("attempt {}", a.attempt),
            detail: json!({
                "status": a.status, "providerOrderId": a.order_id,
                "providerPaymentId": a.payment_id, "failureReason": a.failure_reason,
                "declineCategory": a.decline_class,
            }),
        });
    }
    for r in &refunds {
        steps.push(Step {
            at: format_rfc3339(r.updated_at),
            what: "refund".into(),
            detail: serde_json::to_value(views::refund(r)).unwrap_or(Value::Null),
        });
    }
    for i in &incident_rows {
        steps.push(Step {
            at: format_rfc3339(i.created_at),
            what: "incident".into(),
            detail: json!({"type": i.kind, "detail": i.detail}),
        });
    }
    steps.sort_by(|a, b| a.at.cmp(&b.at));
    let mut shown = views::charge(&charge);
    shown.incidents = incidents::kinds_for_charge(db, id).await?;
    respond::json(
        200,
        &json!({
            "charge": shown,
            "timeline": steps,
            "refunds": refunds.iter().map(views::refund).collect::<Vec<_>>(),
            "events": rendered(ctx, &events).await?,
        }),
    )
}

/// The first page: MRR over 12 months, money by day (30 days) and by month (12), failures,
/// dunning, what needs attention.
async fn overview(req: &Request, ctx: &Ctx) -> Result<Response, Problem> {
    let currency = body::query_param(req, "currency")
        .filter(|c| ctx.config.currencies.contains(c))
        .unwrap_or_else(|| ctx.config.currencies[0].clone());
    let now = ctx.now().await?;
    let mut mrr = Vec::new();
    for (month, at) in month_ends(now, 12) {
        let (value, subscriptions) = reports::mrr_at(ctx, at, &currency).await?;
        mrr.push(json!({"month": month, "mrr": value, "subscriptions": subscriptions}));
    }
    let day_start = now.div_euclid(DAY_MS) * DAY_MS;
    let days_from = day_start - 29 * DAY_MS;
    let months_from = month_ends(now, 12)
        .first()
        .and_then(|(month, _)| {
            recurring_core::billing::time::parse_rfc3339(&format!("{month}-01T00:00:00Z")).ok()
        })
        .unwrap_or(days_from);
    let to = now + 1;
    let series = |charges: Vec<reads::Bucket>, refunds: Vec<reads::Bucket>| {
        let mut keys: Vec<String> = charges
            .iter()
            .chain(&refunds)
            .map(|b| b.key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|key| {
                let c = charges.iter().find(|b| b.key == key);
                let r = refunds.iter().find(|b| b.key == key);
                let gross = c.map_or(0, |b| b.amount);
                let fees = c.map_or(0, |b| b.fees);
                let refunded = r.map_or(0, |b| b.amount);
                json!({"period": key, "gross": gross, "refunds": refunded, "fees": fees,
                       "net": gross - refunded - fees, "charges": c.map_or(0, |b| b.n)})
            })
            .collect::<Vec<_>>()
    };
    let shards = try_join_all(ctx.every_shard().into_iter().map(|shard| {
        let currency = currency.as_str();
        async move {
            let db = shard.db();
            Ok::<_, Problem>((
                [
                    reads::series(db, false, false, days_from, to, currency).await?,
                    reads::series(db, true, false, days_from, to, currency).await?,
                    reads::series(db, false, true, months_from, to, currency).await?,
                    reads::series(db, true, true, months_from, to, currency).await?,
                ],
                crate::store::reports::failures_by_reason(db, days_from, to, currency).await?,
                crate::store::reports::charge_totals(db, days_from, to, currency).await?,
                reads::attention(db).await?,
                incidents::recent(db, 10).await?,
            ))
        }
    }))
    .await?;
    // Every shard's figures, added up (in one shard's order, as each query gives them).
    let mut buckets: [Vec<reads::Bucket>; 4] = Default::default();
    let mut failures: Vec<crate::store::reports::Count> = Vec::new();
    let mut totals = crate::store::reports::ChargeTotals::default();
    let mut attention = reads::Attention::default();
    let mut recent: Vec<crate::store::incidents::IncidentRow> = Vec::new();
    for (series_of, failed, charged, attending, incidents) in shards {
        for (into, more) in buckets.iter_mut().zip(series_of) {
            for b in more {
                match into.iter_mut().find(|i| i.key == b.key) {
                    Some(i) => {
                        i.n += b.n;
                        i.amount += b.amount;
                        i.fees += b.fees;
                    }
                    None => into.push(b),
                }
            }
        }
        reports::add_counts(&mut failures, failed);
        totals.add(&charged);
        attention.charges += attending.charges;
        attention.events_failed += attending.events_failed;
        attention.events_retrying += attending.events_retrying;
        recent.extend(incidents);
    }
    if ctx.shard_count() > 1 {
        reports::by_count(&mut failures);
        recent.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        recent.truncate(10);
    }
    let [
        daily_charges,
        daily_refunds,
        monthly_charges,
        monthly_refunds,
    ] = buckets;
    let daily = series(daily_charges, daily_refunds);
    let monthly = series(monthly_charges, monthly_refunds);
    respond::json(
        200,
        &json!({
            "currency": currency,
            "asOf": format_rfc3339(now),
            "mrr": mrr,
            "daily": daily,
            "monthly": monthly,
            "failuresByReason": failures.iter().map(|c| json!({
                "reason": c.key.clone().unwrap_or_else(|| "unknown".into()),
                "count": c.n, "amount": c.amount,
            })).collect::<Vec<_>>(),
            "dunning": {"recovered": totals.recovered, "recoveredAmount": totals.recovered_amount},
            "attention": {
                "charges": attention.charges,
                "eventsFailed": attention.events_failed,
                "eventsRetrying": attention.events_retrying,
            },
            "incidents": recent.iter().map(|i| json!({
                "id": i.id, "type": i.kind, "chargeId": i.charge_id, "detail": i.detail,
                "createdAt": format_rfc3339(i.created_at),
            })).collect::<Vec<_>>(),
        }),
    )
}
