//! The HTTP API: one module per resource. This file routes, authenticates and applies CORS.

pub mod balance_refunds;
pub mod body;
pub mod charges;
pub mod checkout;
pub mod coupons;
pub mod customer_sessions;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod incidents;
pub mod monitoring;
pub mod page;
pub mod payment_method;
pub mod payouts;
pub mod plan_changes;
pub mod plans;
pub mod portal;
pub mod rate_limit;
pub mod receipts;
pub mod refunds;
pub mod reports;
pub mod respond;
pub mod subscriptions;
pub mod test_clock;
pub mod test_clocks;
pub mod usage;
pub mod webhooks;

use std::rc::Rc;

use worker::{Context, Env, Request, Response};

use crate::ids::new_id;
use crate::log::{Level, Log};

use crate::context::{Ctx, load_config};
use rate_limit::Subject;
use recurring_core::config::Config;
use recurring_core::http::cors::{self, Decision};
use recurring_core::http::problem::Problem;
use recurring_core::http::router::{self, Access, Matched, Route};
use recurring_core::merchant_auth::{self, Refusal};
use recurring_core::session::{self, Claims};

pub async fn handle(req: Request, env: Env, worker_ctx: Context) -> worker::Result<Response> {
    let started = worker::Date::now().as_millis();
    let method = req.method().to_string();
    let path = req.path();
    // The platform's id of the request, so a line can be found from the request and back.
    let request_id = req
        .headers()
        .get("cf-ray")
        .ok()
        .flatten()
        .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or_else(|| new_id("req"));
    let log = Rc::new(Log::new(request_id));
    let changes_state = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let events_env =
        (changes_state && env.var("MERCHANT_WEBHOOK_URL").is_ok()).then(|| env.clone());
    let response = match dispatch(req, env, &worker_ctx, &method, &path, &log).await {
        Ok(response) => response,
        Err(problem) => respond::problem(&problem),
    };
    // A change may have written events: they leave for the merchant after the answer.
    if let Some(env) = events_env {
        worker_ctx.wait_until(dispatch_events(env, log.request_id()));
    }
    // The route and what it touched, never a body or a header: they can carry secrets.
    let status = response.status_code();
    log.emit(
        if status >= 500 {
            Level::Error
        } else {
            Level::Info
        },
        "request",
        crate::fields! {
            "method": method,
            "route": path,
            "status": status,
            "durationMs": worker::Date::now().as_millis().saturating_sub(started),
        },
    );
    Ok(response)
}

async fn dispatch_events(env: Env, request_id: String) {
    let Ok(config) = load_config(&env) else {
        return;
    };
    let log = Rc::new(Log::new(request_id));
    let Ok(ctx) = Ctx::with_log(&env, config, log.clone()) else {
        return;
    };
    // Each shard's outbox: a change writes its events in its customer's shard.
    for shard in ctx.every_shard() {
        if let Err(p) = crate::services::events::dispatch(&shard).await {
            // The cron dispatches them instead: they are in the outbox.
            log.error("events not dispatched", crate::fields! {"detail": p.detail});
        }
    }
}

async fn dispatch(
    req: Request,
    env: Env,
    worker_ctx: &Context,
    method: &str,
    path: &str,
    log: &Rc<Log>,
) -> Result<Response, Problem> {
    // The staff's pages and their calls: authenticated apart, never through CORS.
    if path == "/dashboard" || path.starts_with("/dashboard/") {
        return dashboard::handle(req, &env, worker_ctx, method, path, log).await;
    }
    if method == "OPTIONS" {
        return preflight(&req, &env, path);
    }
    let route = match router::resolve(method, path) {
        Matched::Route(route) => route,
        Matched::MethodNotAllowed(allowed) => return Err(Problem::method_not_allowed(allowed)),
        Matched::NotFound => return Err(Problem::route_not_found(path)),
    };
    // Answered whatever the settings: monitoring must see a broken deployment.
    if route == Route::Health {
        return health::get(&env).await;
    }
    let config = load_config(&env)?;
    let access = route.access();
    let cors_headers = match access {
        Access::Public | Access::Customer => {
            match cors::decide(origin(&req).as_deref(), &config.allowed_origins) {
                Decision::Deny(problem) => return Err(problem),
                Decision::Allow(headers) => headers,
                Decision::NotCors => Vec::new(),
            }
        }
        Access::Merchant | Access::Provider | Access::Open => Vec::new(),
    };
    // Everything from here on answers with the CORS headers, errors included, so that a page
    // can read why it was refused.
    let result =
        authenticate_and_route(route, access, req, &env, worker_ctx, config, log.clone()).await;
    let mut response = match result {
        Ok(response) => response,
        Err(problem) => respond::problem(&problem),
    };
    for (name, value) in cors_headers {
        let _ = response.headers_mut().set(name, &value);
    }
    Ok(response)
}

async fn authenticate_and_route(
    route: Route,
    access: Access,
    req: Request,
    env: &Env,
    worker_ctx: &Context,
    config: Config,
    log: Rc<Log>,
) -> Result<Response, Problem> {
    let customer = match access {
        Access::Public => {
            rate_limit::check(env, &config, &Subject::address_of(&req)).await?;
            None
        }
        Access::Customer => match customer_session(&req, &config) {
            Ok(claims) => {
                rate_limit::check(env, &config, &Subject::Customer(&claims.customer_ref)).await?;
                Some(claims)
            }
            Err(problem) => {
                // Guessing at sessions costs the guesser's address its quota.
                rate_limit::check(env, &config, &Subject::address_of(&req)).await?;
                return Err(problem);
            }
        },
        Access::Merchant => {
            authenticate_merchant(&req, &config)?;
            None
        }
        Access::Provider | Access::Open => None,
    };
    if let Some(claims) = &customer {
        log.tag("customerRef", &claims.customer_ref);
    }
    let ctx = Ctx::with_log(env, config, log)?;
    match customer {
        Some(customer) => customer_route(route, req, &ctx, &customer).await,
        None => route_to(route, req, &ctx, env, worker_ctx).await,
    }
}

/// The routes a customer session opens; the customer is the session's, never the caller's word.
async fn customer_route(
    route: Route,
    mut req: Request,
    ctx: &Ctx,
    customer: &Claims,
) -> Result<Response, Problem> {
    use Route::*;
    // Everything of the customer is in their shard; a route that stores something of theirs
    // may be the first to meet them.
    let first_store = matches!(route, CreateCheckout | PortalReplaceCard);
    let ctx = &ctx
        .for_customer(&customer.customer_ref, first_store)
        .await?;
    match route {
        CreateCheckout => checkout::create(&mut req, ctx, customer).await,
        GetCheckout(id) => checkout::get(ctx, customer, &id).await,
        GetPaymentMethod(customer_ref) => payment_method::get(ctx, customer, &customer_ref).await,
        PortalSubscriptions => portal::subscriptions(ctx, customer).await,
        PortalSubscriptionAction(id, action) => {
            portal::act(&mut req, ctx, customer, &id, action).await
        }
        PortalCharges => portal::charges(&req, ctx, customer).await,
        PortalReplaceCard => portal::replace_card(&mut req, ctx, customer).await,
        _ => unreachable!("only customer routes are given a customer"),
    }
}

pub(super) async fn route_to(
    route: Route,
    mut req: Request,
    ctx: &Ctx,
    env: &Env,
    worker_ctx: &Context,
) -> Result<Response, Problem> {
    use Route::*;
    match route {
        ListPlans => plans::list(ctx),
        CreateCustomerSession => customer_sessions::create(&mut req, ctx).await,
        DemoSession => customer_sessions::demo(&mut req, ctx).await,
        DeletePaymentMethod(customer) => {
            payment_method::delete(&ctx.for_customer(&customer, false).await?, &customer).await
        }
        ProviderWebhook => webhooks::receive(&mut req, ctx, env, worker_ctx).await,
        CreateCharge => charges::create(&mut req, ctx).await,
        GetCharge(id) => charges::get(&ctx.by_id(&id), &id).await,
        ListCustomerCharges(customer) => {
            let ctx = ctx.for_customer(&customer, false).await?;
            charges::list_for_customer(&req, &ctx, &customer).await
        }
        CreateRefund(charge_id) => {
            refunds::create(&mut req, &ctx.by_id(&charge_id), &charge_id).await
        }
        ListRefunds(charge_id) => {
            refunds::list_for_charge(&ctx.by_id(&charge_id), &charge_id).await
        }
        GetRefund(id) => refunds::get(&ctx.by_id(&id), &id).await,
        ListSubscriptions => subscriptions::list(&req, ctx).await,
        GetSubscription(id) => subscriptions::get(&ctx.by_id(&id), &id).await,
        ListSubscriptionEvents(id) => subscriptions::events(&ctx.by_id(&id), &id).await,
        SubscriptionAction(id, action) => {
            subscriptions::act(&mut req, &ctx.by_id(&id), &id, action).await
        }
        PreviewPlanChange(id) => plan_changes::preview(&mut req, &ctx.by_id(&id), &id).await,
        GetCustomerBalance(customer) => {
            plan_changes::balance(&ctx.for_customer(&customer, false).await?, &customer).await
        }
        RefundCustomerBalance(customer) => {
            let ctx = ctx.for_customer(&customer, false).await?;
            balance_refunds::create(&mut req, &ctx, &customer).await
        }
        Monitoring => monitoring::get(ctx).await,
        CreateCoupon => coupons::create(&mut req, ctx).await,
        ListCoupons => coupons::list(&req, ctx).await,
        GetCoupon(id) => coupons::get(ctx, &id).await,
        DeleteCoupon(id) => coupons::delete(ctx, &id).await,
        SetSubscriptionDiscount(id) => {
            coupons::set_on_subscription(&mut req, &ctx.by_id(&id), &id).await
        }
        DeleteSubscriptionDiscount(id) => {
            coupons::remove_from_subscription(&ctx.by_id(&id), &id).await
        }
        SetCustomerDiscount(customer) => {
            let ctx = ctx.for_customer(&customer, true).await?;
            coupons::set_on_customer(&mut req, &ctx, &customer).await
        }
        DeleteCustomerDiscount(customer) => {
            let ctx = ctx.for_customer(&customer, false).await?;
            coupons::remove_from_customer(&ctx, &customer).await
        }
        RecordUsage => usage::record(&mut req, ctx).await,
        ListIncidents => incidents::list(&req, ctx).await,
        GetIncident(id) => incidents::get(&ctx.by_id(&id), &id).await,
        ListEvents => events::list(&req, ctx).await,
        GetEvent(id) => events::get(ctx, &id).await,
        RedeliverEvent(id) => events::redeliver(&mut req, ctx, &id).await,
        GetReceipt(id) => receipts::get(&ctx.by_id(&id), &id).await,
        EmailReceipt(id) => receipts::email(&mut req, &ctx.by_id(&id), &id).await,
        ListPayouts => payouts::list(&req, ctx).await,
        GetPayout(id) => payouts::get(ctx, &id).await,
        ReportSummary => reports::summary(&req, ctx).await,
        ReportMrr => reports::mrr(&req, ctx).await,
        ReportChargesCsv => reports::charges_csv(&req, ctx, env).await,
        TestClockTick => test_clock::tick(&mut req, ctx).await,
        CreateTestClock => test_clocks::create(&mut req, ctx).await,
        ListTestClocks => test_clocks::list(ctx).await,
        GetTestClock(id) => test_clocks::get(ctx, &id).await,
        DeleteTestClock(id) => test_clocks::delete(ctx, &id).await,
        AdvanceTestClock(id) => test_clocks::advance(&mut req, ctx, &id).await,
        ReadTestClock => test_clock::read(&req, ctx).await,
        Health => unreachable!("answered before configuration is read"),
        CreateCheckout
        | GetCheckout(_)
        | GetPaymentMethod(_)
        | PortalSubscriptions
        | PortalSubscriptionAction(..)
        | PortalCharges
        | PortalReplaceCard => unreachable!("customer routes are routed with their customer"),
    }
}

/// Preflight for the browser routes; other routes do not speak CORS.
fn preflight(req: &Request, env: &Env, path: &str) -> Result<Response, Problem> {
    let public = ["GET", "POST"].iter().any(|m| {
        matches!(router::resolve(m, path),
            Matched::Route(r) if matches!(r.access(), Access::Public | Access::Customer))
    });
    if !public {
        return match router::resolve("GET", path) {
            Matched::NotFound => Err(Problem::route_not_found(path)),
            _ => Err(Problem::method_not_allowed(&["GET", "POST"])),
        };
    }
    let config = load_config(env)?;
    match cors::decide(origin(req).as_deref(), &config.allowed_origins) {
        Decision::Allow(headers) => respond::empty(204, cors::preflight_headers(headers)),
        Decision::Deny(problem) => Err(problem),
        Decision::NotCors => respond::empty(204, Vec::new()),
    }
}

fn origin(req: &Request) -> Option<String> {
    req.headers().get("Origin").ok().flatten()
}

fn authenticate_merchant(req: &Request, config: &Config) -> Result<(), Problem> {
    let header = req.headers().get("Authorization").ok().flatten();
    match merchant_auth::authorize(
        &config.merchant_keys,
        header.as_deref(),
        req.method().as_ref(),
    ) {
        Ok(_) => Ok(()),
        Err(Refusal::Missing) => Err(Problem::unauthorized(
            "Send the merchant API key as `Authorization: Bearer <key>`.",
        )),
        Err(Refusal::Invalid) => Err(Problem::unauthorized("The merchant API key is not valid.")),
        Err(Refusal::ReadOnly) => Err(Problem::new(403, "read-only-key", "Read-only key").detail(
            "MERCHANT_READ_KEY reads (GET) and changes nothing; use the merchant API key."
                .to_owned(),
        )),
    }
}

/// The customer session in `Authorization: Bearer`, verified against wall-clock time (sessions
/// expire in real time, whatever the test clock says).
fn customer_session(req: &Request, config: &Config) -> Result<Claims, Problem> {
    let header = req.headers().get("Authorization").ok().flatten();
    let Some(presented) = header.as_deref().and_then(|h| h.strip_prefix("Bearer ")) else {
        return Err(Problem::session_required(
            "Send the customer session as `Authorization: Bearer <clientSecret>`; the merchant's \
             backend mints it with POST /v1/customer-sessions.",
        ));
    };
    let now = (worker::Date::now().as_millis() / 1000) as i64;
    let claims = session::verify(
        &config.session_keys,
        presented.trim(),
        now,
        config.session_max_lifetime_s,
    )
    .map_err(|e| Problem::session_required(e.detail()))?;
    // A session signed with the real key may still name a test clock (a merchant's backend
    // that copied a test's payload): where there are no test clocks, no customer may be put on
    // one, or the production cron would never bill them.
    if claims.test_clock.is_some() && !config.test_clock {
        return Err(Problem::session_required(
            "The session names a test clock, and this deployment has none.",
        ));
    }
    Ok(claims)
}
