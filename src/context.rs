//! What one invocation works with: settings, bindings, the meter, and the clock.

use std::cell::Cell;
use std::rc::Rc;

use worker::kv::KvStore;
use worker::{Bucket, D1Database, Env, Queue};

use crate::ids::new_id;
use crate::log::Log;
use crate::meter::Meter;
use crate::psp::client::PspClient;
use crate::slots::Slots;
use crate::store::db::Db;
use crate::store::vault::Vault;
use recurring_core::config::Config;
use recurring_core::http::problem::Problem;

/// The invocation's settings, read where it starts (the `#[event]` handlers, the API's dispatch)
/// and passed down. A misconfiguration is logged with what is wrong; the caller gets a problem
/// that names no setting.
pub fn load_config(env: &Env) -> Result<Config, Problem> {
    Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map_err(|e| {
        crate::log::emit_plain(
            crate::log::Level::Error,
            "configuration invalid",
            crate::fields! {"detail": e.to_string()},
        );
        Problem::misconfigured(
            "The service is not configured correctly; the operator has been told which \
             settings are wrong.",
        )
    })
}

/// Outgoing connections a Worker may keep open at once.
pub const CONNECTIONS: usize = 6;

pub struct Ctx {
    pub config: Config,
    pub meter: Meter,
    /// The invocation's log: its lines share a request id and what the invocation is about.
    pub log: Rc<Log>,
    /// The invocation's outgoing connections, shared by everything it drives at once.
    connections: Slots,
    d1: D1Database,
    kv: KvStore,
    /// The queue charges are fanned out to, when the worker has it bound.
    charges_queue: Option<Queue>,
    /// The queue events are delivered through, when the worker has it bound.
    events_queue: Option<Queue>,
    /// The bucket records past their retention go to; without it, nothing leaves the ledger.
    archive: Option<Bucket>,
    /// Business time, once read: the test clock when it is on, else the wall clock.
    now: Cell<Option<i64>>,
    /// Test mode: whether any named test clock exists (read with the global clock). Without
    /// one, every charge runs on the global clock and needs no lookup of its own.
    named_clocks: Cell<bool>,
}

impl Ctx {
    /// A context with a log of its own (the cron, a queue batch, work after an answer).
    pub fn from_env(env: &Env, config: Config) -> Result<Ctx, Problem> {
        Ctx::with_log(env, config, Rc::new(Log::new(new_id("inv"))))
    }

    /// A context whose lines go to `log` (a request's, which logs its own line at the end).
    pub fn with_log(env: &Env, config: Config, log: Rc<Log>) -> Result<Ctx, Problem> {
        let d1 = env
            .d1("DB")
            .map_err(|_| Problem::misconfigured("The D1 binding DB is missing."))?;
        let kv = env
            .kv("TOKENS")
            .map_err(|_| Problem::misconfigured("The KV binding TOKENS is missing."))?;
        Ok(Ctx {
            config,
            meter: Meter::default(),
            log,
            connections: Slots::new(CONNECTIONS),
            d1,
            kv,
            charges_queue: env.queue("CHARGES").ok(),
            events_queue: env.queue("EVENTS").ok(),
            archive: env.bucket("ARCHIVE").ok(),
            now: Cell::new(None),
            named_clocks: Cell::new(false),
        })
    }

    /// The charges queue, unless fan-out is off or the binding is missing.
    pub fn charges_queue(&self) -> Option<&Queue> {
        self.charges_queue
            .as_ref()
            .filter(|_| self.config.charge_fanout)
    }

    pub fn events_queue(&self) -> Option<&Queue> {
        self.events_queue.as_ref()
    }

    pub fn archive(&self) -> Option<&Bucket> {
        self.archive.as_ref()
    }

    /// The invocation's outgoing connections (see [`Slots`]).
    pub fn connections(&self) -> &Slots {
        &self.connections
    }

    pub fn db(&self) -> Db<'_> {
        Db::new(&self.d1, &self.meter, Some(&self.log))
    }

    pub fn vault(&self) -> Vault<'_> {
        Vault::new(&self.kv, &self.meter)
    }

    pub fn psp(&self) -> PspClient<'_> {
        PspClient::new(&self.config.psp, &self.meter, &self.connections, &self.log)
    }

    /// Wall-clock milliseconds: for leases and timeouts, which must follow real time even when
    /// the test clock moves business time by months.
    pub fn wall_ms(&self) -> i64 {
        worker::Date::now().as_millis() as i64
    }

    /// Business time: billing periods, due dates and timestamps on records.
    pub async fn now(&self) -> Result<i64, Problem> {
        if let Some(now) = self.now.get() {
            return Ok(now);
        }
        let now = if self.config.test_clock {
            crate::row! {
                struct Row {
                    now_ms: Option<i64>,
                    named: i64,
                }
            }
            let row: Option<Row> = self
                .db()
                .first(
                    crate::sql!(
                        "SELECT (SELECT now_ms FROM test_clock WHERE id = 1) AS now_ms,
                            EXISTS (SELECT 1 FROM test_clocks) AS named"
                    ),
                    vec![],
                )
                .await?;
            self.named_clocks
                .set(row.as_ref().is_some_and(|r| r.named != 0));
            row.and_then(|r| r.now_ms).unwrap_or_else(|| self.wall_ms())
        } else {
            self.wall_ms()
        };
        self.now.set(Some(now));
        Ok(now)
    }

    /// Business time on a named test clock (`None`: the global one). A named clock that was
    /// never advanced reads as the global clock.
    pub async fn now_on(&self, clock: Option<&str>) -> Result<i64, Problem> {
        let global = self.now().await?;
        let Some(name) = clock.filter(|_| self.config.test_clock && self.named_clocks.get()) else {
            return Ok(global);
        };
        crate::row! {
            struct Row {
                now_ms: i64,
            }
        }
        let row: Option<Row> = self
            .db()
            .first(
                crate::sql!("SELECT now_ms FROM test_clocks WHERE name = ?"),
                crate::params![name],
            )
            .await?;
        Ok(row.map_or(global, |r| r.now_ms))
    }

    /// Business time for a charge: its subscription's named test clock, if it has one.
    pub async fn now_for_charge(&self, charge_id: &str) -> Result<i64, Problem> {
        let global = self.now().await?;
        if !self.config.test_clock || !self.named_clocks.get() {
            return Ok(global);
        }
        crate::row! {
            struct Row {
                now_ms: Option<i64>,
            }
        }
        let row: Option<Row> = self
            .db()
            .first(
                crate::sql!("SELECT t.now_ms FROM charges c LEFT JOIN test_clocks t ON t.name = c.test_clock
                 WHERE c.id = ?"),
                crate::params![charge_id],
            )
            .await?;
        Ok(row.and_then(|r| r.now_ms).unwrap_or(global))
    }

    /// Business time as read so far (with whether named test clocks exist), to hand to a
    /// context that carries on the same work (a webhook's confirmation after its answer).
    pub fn clock(&self) -> (Option<i64>, bool) {
        (self.now.get(), self.named_clocks.get())
    }

    pub fn share_clock(&self, clock: &(Option<i64>, bool)) {
        self.now.set(clock.0);
        self.named_clocks.set(clock.1);
    }

    /// Runs the rest of the invocation "as of" `now` (the scheduler and the test clock).
    pub fn set_now(&self, now: i64) {
        self.now.set(Some(now));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use recurring_core::config::{Config, RATE_LIMIT_BINDING, RATE_LIMIT_PERIOD_SECONDS};

    /// The shipped wrangler.toml and .dev.vars.example: `make dev` and a production deploy
    /// must start with a valid configuration.
    #[test]
    fn the_shipped_configuration_is_valid() {
        let file: toml::Table = include_str!("../wrangler.toml")
            .parse()
            .expect("wrangler.toml");
        let secrets: HashMap<String, String> = include_str!("../.dev.vars.example")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let vars = |table: &toml::Table| -> HashMap<String, String> {
            table["vars"]
                .as_table()
                .expect("[vars]")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string var").to_owned()))
                .chain(secrets.clone())
                .collect()
        };
        let dev = vars(&file);
        let dev = Config::from_lookup(|n| dev.get(n).cloned()).expect("the dev configuration");
        assert!(dev.test_clock);
        assert!(dev.demo, "the demo is on for local development");
        assert!(dev.rate_limit);
        assert!(dev.catalog.plans.len() >= 4);
        let production = vars(
            file["env"]["production"]
                .as_table()
                .expect("[env.production]"),
        );
        let production =
            Config::from_lookup(|n| production.get(n).cloned()).expect("the production example");
        assert!(
            !production.test_clock,
            "the test clock is off in production"
        );
        assert!(!production.demo, "the demo route is off in production");
        assert!(production.rate_limit);
        // Bindings are not inherited by an environment: the limiter is declared in both.
        for table in [&file, file["env"]["production"].as_table().unwrap()] {
            let limits = table["ratelimits"].as_array().expect("[[ratelimits]]");
            assert_eq!(limits[0]["name"].as_str(), Some(RATE_LIMIT_BINDING));
            assert_eq!(
                limits[0]["simple"]["period"].as_integer(),
                Some(i64::from(RATE_LIMIT_PERIOD_SECONDS))
            );
        }
    }
}
