//! `GET /health`: whether this deployment can serve, for monitoring. Works even when the
//! settings are broken, and says which check failed (never a value): the settings (including
//! placeholders left from the example configuration), KV, D1 and whether the payment provider
//! answers at all.

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Either, select};
use serde::Serialize;
use worker::{AbortController, Delay, Env, Fetch, Response};

use super::respond;
use crate::meter::Meter;
use crate::store::db::Db;
use recurring_core::config::{Config, is_http_url};
use recurring_core::http::problem::Problem;

/// A provider that has not answered by then is as good as down for a charge.
const PROVIDER_PROBE_MS: u64 = 3_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checks {
    config: Check,
    kv: Check,
    d1: Check,
    provider: Check,
    rate_limit: Check,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Check {
    fn ok(detail: Option<String>) -> Check {
        Check { ok: true, detail }
    }
    fn failed(detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            detail: Some(detail.into()),
        }
    }
}

pub async fn get(env: &Env) -> Result<Response, Problem> {
    let lookup = |n: &str| env.var(n).ok().map(|v| v.to_string());
    let placeholders = placeholder_settings(lookup);
    let parsed = Config::from_lookup(lookup);
    let rate_limit = match &parsed {
        Ok(c) if !c.rate_limit => Check::ok(Some("off (RATE_LIMIT)".into())),
        _ if super::rate_limit::binding_present(env) => Check::ok(None),
        _ => Check::failed(format!(
            "no {} binding ([[ratelimits]] in wrangler.toml)",
            recurring_core::config::RATE_LIMIT_BINDING
        )),
    };
    let config = match &parsed {
        Ok(_) if placeholders.is_empty() => Check::ok(None),
        Ok(_) => Check::failed(placeholder_detail(&placeholders)),
        Err(e) => {
            let mut problems = e.problems.clone();
            if !placeholders.is_empty() {
                problems.push(placeholder_detail(&placeholders));
            }
            Check::failed(problems.join("; "))
        }
    };
    let shards = parsed.as_ref().map_or(1, |c| c.ledger_shards);
    let base_url = lookup("PSP_BASE_URL").unwrap_or_default();
    let (kv, d1, provider) = futures_util::join!(
        kv_check(env),
        d1_check(env, shards),
        provider_check(base_url.trim())
    );
    let healthy = config.ok && kv.ok && d1.ok && provider.ok && rate_limit.ok;
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks {
            config,
            kv,
            d1,
            provider,
            rate_limit,
        },
    };
    respond::json(if healthy { 200 } else { 503 }, &body)
}

fn placeholder_detail(names: &[&str]) -> String {
    format!("placeholder values, replace them: {}", names.join(", "))
}

async fn kv_check(env: &Env) -> Check {
    match env.kv("TOKENS") {
        Ok(kv) => match kv.get("health:probe").text().await {
            Ok(_) => Check::ok(None),
            Err(_) => Check::failed("the TOKENS namespace did not answer"),
        },
        Err(_) => Check::failed("no TOKENS binding"),
    }
}

/// Every shard of the ledger answers with the same schema.
async fn d1_check(env: &Env, shards: usize) -> Check {
    let mut schemas = Vec::with_capacity(shards);
    for k in 0..shards {
        let binding = crate::context::shard_binding(k);
        let check = match env.d1(&binding) {
            Ok(d1) => schema_check(&d1).await,
            Err(_) => Check::failed(format!("no {binding} binding")),
        };
        if !check.ok || shards == 1 {
            return check;
        }
        schemas.push(check.detail.unwrap_or_default());
    }
    if schemas.iter().any(|s| *s != schemas[0]) {
        return Check::failed(format!(
            "the shards' schemas differ ({}): migrate every DB_k binding",
            schemas.join(", ")
        ));
    }
    Check::ok(Some(format!("{} on {shards} shards", schemas[0])))
}

async fn schema_check(d1: &worker::D1Database) -> Check {
    crate::row! {
        struct Migration {
            name: String,
        }
    }
    let meter = Meter::default();
    let db = Db::new(d1, 0, &meter, None);
    // wrangler records applied migrations in d1_migrations; the newest tells the schema version.
    match db
        .first::<Migration>(
            crate::sql!("SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1"),
            vec![],
        )
        .await
    {
        Ok(Some(m)) => Check::ok(Some(format!("schema {}", m.name))),
        Ok(None) | Err(_) => Check::failed("the ledger schema is not migrated"),
    }
}

/// Whether the provider answers HTTP at all: a GET of its base URL, with no credentials (a
/// probe never carries a secret) and no order (it moves nothing and draws no sandbox fault).
async fn provider_check(base_url: &str) -> Check {
    if !is_http_url(base_url) {
        return Check::failed("PSP_BASE_URL is not an http(s) URL");
    }
    if is_placeholder_url(base_url) {
        return Check::failed("PSP_BASE_URL is a placeholder: not probed");
    }
    let url = format!("{}/", base_url.trim_end_matches('/'));
    let Some(request) = crate::outbound::request("GET", &url, None, None) else {
        return Check::failed("PSP_BASE_URL is not a valid URL");
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let exchange = fetch.send_with_signal(&signal);
    let timeout = Delay::from(Duration::from_millis(PROVIDER_PROBE_MS));
    match select(pin!(exchange), pin!(timeout)).await {
        Either::Left((Ok(response), _)) => provider_answer(response.status_code()),
        Either::Left((Err(_), _)) => Check::failed("the provider (PSP_BASE_URL) is unreachable"),
        Either::Right(_) => {
            controller.abort();
            Check::failed(format!(
                "the provider (PSP_BASE_URL) did not answer within {PROVIDER_PROBE_MS} ms"
            ))
        }
    }
}

/// Any answer below 500 (a 404 for the bare base URL is usual) means the provider is there; a
/// 5xx is its gateway saying it is not.
fn provider_answer(status: u16) -> Check {
    if status < 500 {
        Check::ok(Some(format!("reachable (HTTP {status} on the base URL)")))
    } else {
        Check::failed(format!("the provider answered HTTP {status}"))
    }
}

/// Settings whose value was plainly never filled in: an id or secret like `your-merchant-id`,
/// or a URL on a reserved example host (`*.invalid`, `*.example`, `example.com`). Names only.
/// Loopback URLs are the local sandbox, not placeholders.
pub fn placeholder_settings(get: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    const URLS: [&str; 3] = ["PSP_BASE_URL", "PUBLIC_BASE_URL", "MERCHANT_WEBHOOK_URL"];
    const LISTS_OF_URLS: [&str; 1] = ["ALLOWED_ORIGINS"];
    const IDS_AND_SECRETS: [&str; 9] = [
        "PSP_MERCHANT_ID",
        "PSP_PAGE_TERMINAL_ID",
        "PSP_MIT_TERMINAL_ID",
        "PSP_API_KEY",
        "PSP_API_SECRET",
        "PSP_WEBHOOK_SECRET",
        "MERCHANT_API_KEY",
        "CUSTOMER_SESSION_SECRET",
        "MERCHANT_WEBHOOK_SECRET",
    ];
    let mut found = Vec::new();
    for name in URLS {
        if get(name).is_some_and(|v| is_placeholder_url(v.trim())) {
            found.push(name);
        }
    }
    for name in LISTS_OF_URLS {
        if get(name).is_some_and(|v| v.split(',').any(|u| is_placeholder_url(u.trim()))) {
            found.push(name);
        }
    }
    for name in IDS_AND_SECRETS {
        if get(name).is_some_and(|v| is_placeholder_value(v.trim())) {
            found.push(name);
        }
    }
    found
}

/// A URL on a host that RFC 2606 / RFC 6761 reserve for examples or for never resolving.
pub fn is_placeholder_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .split(':')
        .next()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    [
        "invalid",
        "example",
        "example.com",
        "example.net",
        "example.org",
    ]
    .iter()
    .any(|d| under(d))
}

/// An id or secret copied from an example: `your-...`, `changeme`, `placeholder`, all zeros.
pub fn is_placeholder_value(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    v.starts_with("your-")
        || v.starts_with("your_")
        || v.starts_with('<')
        || [
            "changeme",
            "change-me",
            "replace-me",
            "replace_me",
            "placeholder",
        ]
        .iter()
        .any(|p| v.contains(p))
        || (!v.is_empty() && v.chars().all(|c| c == '0' || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_example_production_values_are_placeholders_by_name() {
        let production_example = [
            ("PSP_BASE_URL", "https://provider.invalid"),
            ("PSP_MERCHANT_ID", "your-merchant-id"),
            ("PSP_PAGE_TERMINAL_ID", "your-payment-page-terminal-id"),
            ("PSP_MIT_TERMINAL_ID", "your-merchant-initiated-terminal-id"),
            ("PUBLIC_BASE_URL", "https://payments.shop.example"),
            ("ALLOWED_ORIGINS", "https://shop.example"),
            ("PSP_API_KEY", "a-real-looking-key"),
        ];
        assert_eq!(
            placeholder_settings(lookup(&production_example)),
            [
                "PSP_BASE_URL",
                "PUBLIC_BASE_URL",
                "ALLOWED_ORIGINS",
                "PSP_MERCHANT_ID",
                "PSP_PAGE_TERMINAL_ID",
                "PSP_MIT_TERMINAL_ID"
            ]
        );
    }

    #[test]
    fn the_local_defaults_and_real_values_are_not() {
        let local = [
            ("PSP_BASE_URL", "http://127.0.0.1:8790"),
            ("PSP_MERCHANT_ID", "5a1e0f3c2b4d6e8f90"),
            ("PSP_PAGE_TERMINAL_ID", "7e1d5c3b9a0f2e4d61"),
            ("PSP_MIT_TERMINAL_ID", "3c9a7e5b1d0f8e6a42"),
            ("PUBLIC_BASE_URL", "http://127.0.0.1:8787"),
            (
                "ALLOWED_ORIGINS",
                "http://127.0.0.1:8787,http://localhost:8787,http://shop.test",
            ),
            ("PSP_API_KEY", "sandbox-api-key"),
            ("MERCHANT_API_KEY", "dev-merchant-key"),
        ];
        assert!(placeholder_settings(lookup(&local)).is_empty());
        let live = [
            ("PSP_BASE_URL", "https://api.psp-live.se"),
            ("PUBLIC_BASE_URL", "https://payments.myshop.se"),
            (
                "ALLOWED_ORIGINS",
                "https://myshop.se, https://www.myshop.se",
            ),
            ("MERCHANT_WEBHOOK_URL", "https://backend.myshop.se/hooks"),
        ];
        assert!(placeholder_settings(lookup(&live)).is_empty());
    }

    #[test]
    fn reserved_hosts_are_recognised_whatever_the_port_case_or_path() {
        for url in [
            "https://provider.invalid",
            "https://PROVIDER.INVALID:8443/api",
            "http://example.com",
            "https://www.example.org/x",
            "https://shop.example.",
            "https://user@pay.example.net",
        ] {
            assert!(is_placeholder_url(url), "{url}");
        }
        for url in [
            "https://example.company.com",
            "https://notexample.com",
            "https://invalid-host.se",
            "http://127.0.0.1:8790",
            "not a url",
        ] {
            assert!(!is_placeholder_url(url), "{url}");
        }
    }

    #[test]
    fn copied_ids_and_secrets_are_recognised() {
        for v in [
            "your-merchant-id",
            "YOUR_API_KEY",
            "<merchant id>",
            "changeme",
            "00000000-0000-0000-0000-000000000000",
            "placeholder-secret",
        ] {
            assert!(is_placeholder_value(v), "{v}");
        }
        for v in [
            "5a1e0f3c2b4d6e8f90",
            "sandbox-api-key",
            "yourshop-key-1",
            "",
        ] {
            assert!(!is_placeholder_value(v), "{v}");
        }
    }

    #[test]
    fn a_provider_answering_below_500_is_reachable() {
        assert!(provider_answer(404).ok);
        assert!(provider_answer(401).ok);
        assert!(provider_answer(200).ok);
        assert!(!provider_answer(502).ok);
        assert!(!provider_answer(503).ok);
    }
}
