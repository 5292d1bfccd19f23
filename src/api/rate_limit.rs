//! The Workers Rate Limiting binding in front of the routes browsers call: per customer when a
//! session names one, per client address otherwise.

use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Request};

use crate::log::{self, Level};
use recurring_core::config::{Config, RATE_LIMIT_BINDING, RATE_LIMIT_PERIOD_SECONDS};
use recurring_core::http::problem::Problem;

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
    match limit(limiter.as_ref(), &subject.key()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::too_many_requests(RATE_LIMIT_PERIOD_SECONDS)),
        Err(error) => {
            log::emit_plain(
                Level::Warn,
                "rate limiter failed, request let through",
                crate::fields! {"error": error},
            );
            Ok(())
        }
    }
}

/// `limiter.limit({key})` and its `success`, called on the binding directly: the workers crate's
/// `RateLimiter::limit` does the same through `serde_wasm_bindgen`, whose decoder (with its
/// error texts) is otherwise not needed. An answer without a boolean `success` is an error, as
/// it was there.
async fn limit(limiter: &JsValue, key: &str) -> Result<bool, String> {
    let js_error = |e: JsValue| format!("js error: {e:?}");
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"key".into(), &key.into()).map_err(js_error)?;
    let call = js_sys::Reflect::get(limiter, &"limit".into())
        .map_err(js_error)?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| "the binding has no limit function".to_owned())?;
    let promise = call.call1(limiter, &options).map_err(js_error)?;
    let outcome = JsFuture::from(js_sys::Promise::resolve(&promise))
        .await
        .map_err(js_error)?;
    js_sys::Reflect::get(&outcome, &"success".into())
        .ok()
        .and_then(|success| success.as_bool())
        .ok_or_else(|| "the answer has no boolean success".to_owned())
}

/// For `/health`: whether the binding the configuration asks for exists.
pub fn binding_present(env: &Env) -> bool {
    env.rate_limiter(RATE_LIMIT_BINDING).is_ok()
}
