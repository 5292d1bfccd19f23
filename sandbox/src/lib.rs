//! A local stand-in for the payment provider, for development and tests: the provider's API
//! (as the provider's public reference describes it), a hosted payment page with test cards, card tokens, signed webhooks,
//! refunds as return orders, fault injection, and a ledger to inspect.

pub mod api;
pub mod cards;
pub mod config;
pub mod control;
pub mod faults;
pub mod hosted_page;
pub mod ledger;
pub mod model;
pub mod processing;
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

pub use config::Config;
pub use state::{Sandbox, Shared};

/// The sandbox for `config`, in memory or loaded from `config.state_file`. Payment page links
/// start with `config.public_url`, else `http://{host}:{port}`. Call it inside a tokio runtime
/// (payments that were in flight in the state file resume at once).
///
/// # Panics
/// If the state file exists but is not a sandbox state; [`serve`] reports that as an error.
pub fn app(config: Config) -> Router {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", config.host, config.port));
    let sb = Sandbox::new(config, public_url).unwrap_or_else(|e| panic!("{e}"));
    processing::resume_in_flight(&sb);
    router(sb)
}

/// The provider's API under both path forms (flat with a MERCHANT-ID header, as the formal
/// reference has it, and the guide's `/merchants/:merchantId/...`), the hosted payment page, and
/// the control API.
pub fn router(sb: Shared) -> Router {
    use api::{orders, payments};
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
        .route("/_sandbox/ledger", get(control::ledger))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/health", get(control::health))
        .route("/healthz", get(control::health));
    let page = Router::new().route(
        "/pay/{order}",
        get(hosted_page::show).post(hosted_page::pay),
    );
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
/// strings, which carry credentials; token ids in control paths are masked.
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
    match path.strip_prefix("/_sandbox/tokens/") {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            format!("/_sandbox/tokens/***{tail}")
        }
        None => path.to_owned(),
    }
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
    processing::resume_in_flight(&sb);
    if announce {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "psp-sandbox listening on http://{addr}")?;
        out.flush()?;
    }
    axum::serve(listener, router(sb)).await
}

/// `2026-04-25T11:22:24.845Z` from epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_745_580_144_845),
            "2025-04-25T11:22:24.845Z"
        );
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
