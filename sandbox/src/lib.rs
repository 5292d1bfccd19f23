//! A local stand-in for the payment provider, for development and tests: the provider's API
//! (reference/psp-api.md), a hosted payment page with test cards, card tokens, signed webhooks,
//! refunds as return orders, fault injection, and a ledger to inspect.

pub mod api;
pub mod config;
pub mod control;
pub mod faults;
pub mod model;
pub mod page;
pub mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub use config::Config;
pub use state::{Sandbox, Shared};

/// The provider's API under both path forms: flat with a MERCHANT-ID header (the formal
/// reference), and `/merchants/:merchantId/...` (the guide's form, kept as an alias).
pub fn app(sb: Shared) -> Router {
    let provider = Router::new()
        .route("/orders", post(api::create_order))
        .route("/orders/{order}", delete(api::cancel_order))
        .route("/orders/{order}/status", get(api::order_status))
        .route("/orders/{order}/tokens", get(api::order_tokens))
        .route("/payments", post(api::initiate_payment))
        .route("/payments/{payment}", delete(api::cancel_payment))
        .route("/payments/{payment}/void", put(api::void_payment))
        .route("/merchants/{merchant}/orders", post(api::create_order))
        .route(
            "/merchants/{merchant}/orders/{order}",
            delete(api::cancel_order),
        )
        .route(
            "/merchants/{merchant}/orders/{order}/status",
            get(api::order_status),
        )
        .route(
            "/merchants/{merchant}/orders/{order}/tokens",
            get(api::order_tokens),
        )
        .route(
            "/merchants/{merchant}/payments",
            post(api::initiate_payment),
        );
    let control = Router::new()
        .route("/_sandbox/orders/{order}/pay", post(control::pay))
        .route(
            "/_sandbox/tokens/{token}/behaviour",
            put(control::set_behaviour),
        )
        .route(
            "/_sandbox/faults",
            put(control::set_faults).delete(control::clear_faults),
        )
        .route(
            "/_sandbox/webhooks",
            put(control::set_webhooks).delete(control::clear_webhooks),
        )
        .route("/_sandbox/ledger", get(control::ledger))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/health", get(control::health));
    let page = Router::new().route("/pay/{order}", get(page::show).post(page::pay));
    provider
        .merge(control)
        .merge(page)
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "Not found") })
        .layer(middleware::from_fn(log_requests))
        .with_state(sb)
}

/// One line per request on stderr: method, path, status, time. Never bodies or headers, which
/// carry credentials and tokens.
async fn log_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let line = format!("{} {}", req.method(), req.uri().path());
    let response = next.run(req).await;
    eprintln!(
        "{line} -> {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response.into_response()
}

/// Binds, announces the address on stdout, and serves until the process ends.
pub async fn serve(config: Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    run(listener, config, true).await
}

/// Serves on a bound listener (tests bind their own on port 0).
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    announce: bool,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let sb = Sandbox::new(config, public_url);
    sb.resume_in_flight();
    if announce {
        // The test harness and `make dev` read this line to learn the port.
        println!("psp-sandbox listening on http://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
    }
    axum::serve(listener, app(sb)).await
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
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_745_580_144_845),
            "2025-04-25T11:22:24.845Z"
        );
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
