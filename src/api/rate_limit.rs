//! The Workers Rate Limiting binding in front of the routes browsers call: per customer when a
//! session names one, per client address otherwise.

use worker::{Env, Request};

use crate::config::{Config, RATE_LIMIT_BINDING, RATE_LIMIT_PERIOD_SECONDS};
use crate::http::problem::Problem;
use crate::log::{self, Level};

/// Who a request is counted against.
pub enum Subject<'a> {
    Customer(&'a str),
    Address(String),
}

impl Subject<'_> {
    pub fn address_of(req: &Request) -> Subject<'static> {
        // Set by the platform (and by wrangler dev) to the connecting client; a caller cannot
        // choose it.
        let address = req
            .headers()
            .get("CF-Connecting-IP")
            .ok()
            .flatten()
            .unwrap_or_else(|| "unknown".into());
        Subject::Address(address)
    }

    fn key(&self) -> String {
        match self {
            Subject::Customer(customer) => format!("customer:{customer}"),
            Subject::Address(address) => format!("address:{address}"),
        }
    }
}

/// Counts one request; 429 past the limit. A limiter that errors lets the request through (it is
/// an abuse brake, not an access control); a missing binding is a misconfiguration.
pub async fn check(env: &Env, config: &Config, subject: &Subject<'_>) -> Result<(), Problem> {
    if !config.rate_limit {
        return Ok(());
    }
    let limiter = env.rate_limiter(RATE_LIMIT_BINDING).map_err(|_| {
        log::emit_plain(
            Level::Error,
            "rate limiter binding missing",
            crate::fields! {"binding": RATE_LIMIT_BINDING},
        );
        Problem::misconfigured("The rate limiter is not configured.")
    })?;
    match limiter.limit(subject.key()).await {
        Ok(outcome) if outcome.success => Ok(()),
        Ok(_) => Err(Problem::too_many_requests(RATE_LIMIT_PERIOD_SECONDS)),
        Err(e) => {
            log::emit_plain(
                Level::Warn,
                "rate limiter failed, request let through",
                crate::fields! {"error": e.to_string()},
            );
            Ok(())
        }
    }
}

/// For `/health`: whether the binding the configuration asks for exists.
pub fn binding_present(env: &Env) -> bool {
    env.rate_limiter(RATE_LIMIT_BINDING).is_ok()
}
