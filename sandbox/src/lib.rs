//! A local stand-in for the payment provider, for development and tests: the provider's API
//! (as the provider's public reference describes it), a hosted payment page with test cards,
//! card tokens, signed webhooks, refunds as return orders, daily settlement into payouts,
//! receipts, a clock that tests can move, fault injection, and a ledger to inspect.

pub mod api;
pub mod batches;
pub mod cards;
pub mod clock;
pub mod config;
pub mod control;
pub mod faults;
pub mod hosted_page;
pub mod ledger;
pub mod model;
pub mod processing;
pub mod receipt_page;
pub mod settlement;
pub mod state;
pub mod status;
pub mod webhooks;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};

pub use clock::rfc3339;
pub use config::Config;
pub use state::{Sandbox, Shared};

/// The sandbox for `config`, in memory or loaded from `config.state_file`. Payment page links
/// start with `config.public_url`, else `http://{host}:{port}`. Call it inside a tokio runtime
/// (payments that were in flight in the state file resume at once, and the daily settlement
/// batches run on a task of their own).
///
/// # Panics
/// If the state file exists but is not a sandbox state; [`serve`] reports that as an error.
pub fn app(config: Config) -> Router {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", config.host, config.port));
    let sb = Sandbox::new(config, public_url).unwrap_or_else(|e| panic!("{e}"));
    start_tasks(&sb);
    router(sb)
}

/// What runs without a request: payments that were in flight in the state file, and the daily
/// settlement batches.
fn start_tasks(sb: &Shared) {
    processing::resume_in_flight(sb);
    batches::spawn_daily_batches(sb);
}

/// The provider's API under both path forms (flat with a MERCHANT-ID header, as the formal
/// reference has it, and the guide's `/merchants/:merchantId/...`), the hosted payment page, and
/// the control API.
pub fn router(sb: Shared) -> Router {
    use api::{orders, payments, receipts};
    let mut provider = Router::new();
    for prefix in ["", "/merchants/{merchant}"] {
        provider = provider
            .route(&format!("{prefix}/orders"), post(orders::create_order))
            .route(
                &format!("{prefix}/orders/{{order}}"),
                delete(orders::cancel_order),
            )
            .route(
                &format!("{prefix}/orders/{{order}}/status"),
                get(orders::order_status),
            )
            .route(
                &format!("{prefix}/orders/{{order}}/tokens"),
                get(orders::order_tokens),
            )
            .route(
                &format!("{prefix}/payments"),
                post(payments::initiate_payment),
            )
            .route(
                &format!("{prefix}/payments/{{payment}}"),
                delete(payments::cancel_payment),
            )
            .route(
                &format!("{prefix}/payments/{{payment}}/void"),
                put(payments::void_payment),
            )
            .route(
                &format!("{prefix}/receipts/{{id}}/link"),
                get(receipts::receipt_link),
            )
            .route(
                &format!("{prefix}/receipts/{{id}}/email"),
                put(receipts::receipt_email),
            );
    }
    let control = Router::new()
        .route("/_sandbox/orders/{order}/pay", post(control::pay))
        .route("/_sandbox/orders/{order}", delete(control::lose_order))
        .route(
            "/_sandbox/tokens/{token}/behaviour",
            put(control::set_behaviour).delete(control::clear_behaviour),
        )
        .route(
            "/_sandbox/faults",
            put(control::set_faults)
                .get(control::get_faults)
                .delete(control::clear_faults),
        )
        .route(
            "/_sandbox/webhooks",
            put(control::set_webhooks)
                .get(control::get_webhooks)
                .delete(control::clear_webhooks),
        )
        .route(
            "/_sandbox/clock",
            get(control::get_clock).put(control::set_clock),
        )
        .route("/_sandbox/settlements/run", post(control::run_settlements))
        .route("/_sandbox/payouts", get(control::payouts))
        .route("/_sandbox/receipts/emails", get(control::receipt_emails))
        .route("/_sandbox/ledger", get(control::ledger))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/health", get(control::health))
        .route("/healthz", get(control::health));
    let page = Router::new()
        .route(
            "/pay/{order}",
            get(hosted_page::show).post(hosted_page::pay),
        )
        .route("/receipts/{receipt}", get(receipt_page::show));
    provider
        .merge(control)
        .merge(page)
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "Not found") })
        .method_not_allowed_fallback(|| async {
            api::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        .layer(middleware::from_fn(log_requests))
        .with_state(sb)
}

/// One line per request on stderr: method, path, status, time. Never bodies, headers or query
/// strings, which carry credentials; token ids in control paths and receipt page ids (anyone
/// with one reads the receipt) are masked.
/// With when it arrived (ms since its first request) and how many requests were in progress
/// then, counting itself: how a client spreads its calls over time and connections.
async fn log_requests(req: Request, next: Next) -> Response {
    static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let started = Instant::now();
    let at = started.duration_since(*EPOCH.get_or_init(Instant::now));
    let concurrent = IN_PROGRESS.fetch_add(1, Ordering::SeqCst) + 1;
    let line = format!("{} {}", req.method(), loggable_path(req.uri().path()));
    let response = next.run(req).await;
    IN_PROGRESS.fetch_sub(1, Ordering::SeqCst);
    eprintln!(
        "{line} -> {} {}ms (at {}ms, {concurrent} in progress)",
        response.status().as_u16(),
        started.elapsed().as_millis(),
        at.as_millis(),
    );
    response
}

fn loggable_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/_sandbox/tokens/") {
        let tail = rest.find('/').map_or("", |i| &rest[i..]);
        return format!("/_sandbox/tokens/***{tail}");
    }
    // The receipt page, not the API's /receipts/:id/link and /email.
    if path
        .strip_prefix("/receipts/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    {
        return "/receipts/***".to_owned();
    }
    path.to_owned()
}

/// Binds `config.host:config.port`, announces the address on stdout, and serves until the
/// process ends.
pub async fn serve(config: Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    run(listener, config, true).await
}

/// Serves on a bound listener (tests bind their own on port 0). With `announce`, prints the one
/// line `psp-sandbox listening on http://ADDR` on stdout, which harnesses parse for the port.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    announce: bool,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let sb = Sandbox::new(config, public_url).map_err(std::io::Error::other)?;
    start_tasks(&sb);
    if announce {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "psp-sandbox listening on http://{addr}")?;
        out.flush()?;
    }
    axum::serve(listener, router(sb)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_ids_never_reach_the_log() {
        assert_eq!(
            super::loggable_path("/_sandbox/tokens/822d544dc48c200308/behaviour"),
            "/_sandbox/tokens/***/behaviour"
        );
        assert_eq!(
            super::loggable_path("/orders/abc/status"),
            "/orders/abc/status"
        );
        assert_eq!(
            super::loggable_path("/receipts/0123456789abcdef0123"),
            "/receipts/***"
        );
        assert_eq!(
            super::loggable_path("/receipts/abc/link"),
            "/receipts/abc/link"
        );
    }
}
