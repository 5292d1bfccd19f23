//! `GET /health`: whether this deployment can serve, for monitoring. Works even when the
//! settings are broken, and says which check failed (never a value).

use serde::{Deserialize, Serialize};
use worker::{Env, Response};

use super::respond;
use crate::config::Config;
use crate::http::problem::Problem;
use crate::meter::Meter;
use crate::store::db::Db;

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
    let parsed = Config::from_lookup(|n| env.var(n).ok().map(|v| v.to_string()));
    let rate_limit = match &parsed {
        Ok(c) if !c.rate_limit => Check::ok(Some("off (RATE_LIMIT)".into())),
        _ if super::rate_limit::binding_present(env) => Check::ok(None),
        _ => Check::failed(format!(
            "no {} binding ([[ratelimits]] in wrangler.toml)",
            crate::config::RATE_LIMIT_BINDING
        )),
    };
    let config = match parsed {
        Ok(_) => Check::ok(None),
        Err(e) => Check::failed(e.problems.join("; ")),
    };
    let kv = match env.kv("TOKENS") {
        Ok(kv) => match kv.get("health:probe").text().await {
            Ok(_) => Check::ok(None),
            Err(_) => Check::failed("the TOKENS namespace did not answer"),
        },
        Err(_) => Check::failed("no TOKENS binding"),
    };
    let d1 = match env.d1("DB") {
        Ok(d1) => schema_check(&d1).await,
        Err(_) => Check::failed("no DB binding"),
    };
    let healthy = config.ok && kv.ok && d1.ok && rate_limit.ok;
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks {
            config,
            kv,
            d1,
            rate_limit,
        },
    };
    respond::json(if healthy { 200 } else { 503 }, &body)
}

async fn schema_check(d1: &worker::D1Database) -> Check {
    #[derive(Deserialize)]
    struct Migration {
        name: String,
    }
    let meter = Meter::default();
    let db = Db::new(d1, &meter);
    // wrangler records applied migrations in d1_migrations; the newest tells the schema version.
    match db
        .first::<Migration>(
            "SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1",
            vec![],
        )
        .await
    {
        Ok(Some(m)) => Check::ok(Some(format!("schema {}", m.name))),
        Ok(None) | Err(_) => Check::failed("the ledger schema is not migrated"),
    }
}
