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
///
/// Settings and secrets are fixed for the life of an isolate (changing one deploys a new
/// version, in new isolates), so they are read once per isolate, not once per invocation: a
/// renewal takes four invocations, each of which read some sixty settings. A misconfiguration is
/// not kept: it is read, and logged, again by the next invocation.
pub fn load_config(env: &Env) -> Result<Config, Problem> {
    if let Some(config) = LOADED_CONFIG.with_borrow(Option::clone) {
        return Ok(config);
    }
    let config =
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
        })?;
    LOADED_CONFIG.set(Some(config.clone()));
    Ok(config)
}

thread_local! {
    static LOADED_CONFIG: std::cell::RefCell<Option<Config>> = const { std::cell::RefCell::new(None) };
}

/// Outgoing connections a Worker may keep open at once.
pub const CONNECTIONS: usize = 6;

/// The binding of shard `k`: `DB`, then `DB_1`, `DB_2` …
pub fn shard_binding(k: usize) -> String {
    if k == 0 {
        "DB".to_owned()
    } else {
        format!("DB_{k}")
    }
}

/// What one invocation works with, seen from one shard of the ledger: `db()` is that shard's
/// database, everything else (settings, meter, log, connections, clock) is the invocation's,
/// shared by every shard's view of it.
pub struct Ctx {
    shared: Rc<Shared>,
    shard: usize,
}

pub struct Shared {
    pub config: Config,
    pub meter: Meter,
    /// The invocation's log: its lines share a request id and what the invocation is about.
    pub log: Rc<Log>,
    /// The invocation's outgoing connections, shared by everything it drives at once.
    connections: Slots,
    /// The ledger's databases: `DB` (shard 0, which also holds the merchant-wide rows), then
    /// `DB_1` … (see docs/design/sharding.md).
    shards: Vec<D1Database>,
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

impl std::ops::Deref for Ctx {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Ctx {
    /// A context with a log of its own (the cron, a queue batch, work after an answer).
    pub fn from_env(env: &Env, config: Config) -> Result<Ctx, Problem> {
        Ctx::with_log(env, config, Rc::new(Log::new(new_id("inv"))))
    }

    /// A context whose lines go to `log` (a request's, which logs its own line at the end).
    pub fn with_log(env: &Env, config: Config, log: Rc<Log>) -> Result<Ctx, Problem> {
        let mut shards = Vec::with_capacity(config.ledger_shards);
        for k in 0..config.ledger_shards {
            let binding = shard_binding(k);
            shards.push(env.d1(&binding).map_err(|_| {
                Problem::misconfigured(format!("The D1 binding {binding} is missing."))
            })?);
        }
        let kv = env
            .kv("TOKENS")
            .map_err(|_| Problem::misconfigured("The KV binding TOKENS is missing."))?;
        Ok(Ctx {
            shared: Rc::new(Shared {
                config,
                meter: Meter::default(),
                log,
                connections: Slots::new(CONNECTIONS),
                shards,
                kv,
                charges_queue: env.queue("CHARGES").ok(),
                events_queue: env.queue("EVENTS").ok(),
                archive: env.bucket("ARCHIVE").ok(),
                now: Cell::new(None),
                named_clocks: Cell::new(false),
            }),
            shard: 0,
        })
    }

    /// The same invocation seen from shard `shard` (one the configuration has).
    pub fn on_shard(&self, shard: usize) -> Ctx {
        Ctx {
            shared: Rc::clone(&self.shared),
            shard: shard.min(self.shards.len() - 1),
        }
    }

    /// The invocation seen from each shard of the ledger, in order.
    pub fn every_shard(&self) -> Vec<Ctx> {
        (0..self.shards.len()).map(|k| self.on_shard(k)).collect()
    }

    /// The shard this context reads and writes.
    pub fn shard(&self) -> usize {
        self.shard
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard an id names, if the configuration has it: ids made in shard k carry k.
    pub fn for_id(&self, id: &str) -> Option<Ctx> {
        recurring_core::shards::shard_of_id(id)
            .filter(|k| *k < self.shards.len())
            .map(|k| self.on_shard(k))
    }

    /// The invocation seen from the shard of `customer_ref`: where everything of that customer
    /// is. `record`: the caller is about to store something of a customer it may never have
    /// seen, whose shard is then written down (see [`directory`](crate::store::directory)).
    pub async fn for_customer(&self, customer_ref: &str, record: bool) -> Result<Ctx, Problem> {
        if self.shards.len() == 1 {
            return Ok(self.on_shard(0));
        }
        let now = self.wall_ms();
        let shard = crate::store::directory::customer_shard(
            self.main_db(),
            customer_ref,
            self.shards.len(),
            now,
            record,
        )
        .await?;
        Ok(self.on_shard(shard))
    }

    /// The shard an id names, or `DB` for an id that names none (it is then not found there,
    /// as before sharding).
    pub fn by_id(&self, id: &str) -> Ctx {
        self.for_id(id).unwrap_or_else(|| self.on_shard(0))
    }

    /// A new id for a record of this shard: the id says where it lives.
    pub fn new_id(&self, prefix: &str) -> String {
        let id = new_id(prefix);
        self.shard_id(prefix, &id[prefix.len() + 1..])
    }

    /// The id `<prefix>_<unique>` of a record of this shard (an id derived from another, or
    /// from a digest).
    pub fn shard_id(&self, prefix: &str, unique: &str) -> String {
        format!(
            "{prefix}_{}{unique}",
            recurring_core::shards::id_infix(self.shard)
        )
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

    /// This shard's database: the customers it holds and everything of theirs.
    pub fn db(&self) -> Db<'_> {
        Db::new(
            &self.shards[self.shard],
            self.shard,
            &self.meter,
            Some(&self.log),
        )
    }

    /// The merchant-wide rows (coupons, payouts, test clocks, dead letters, tick reports, the
    /// customers' directory): always in `DB`, shard 0.
    pub fn main_db(&self) -> Db<'_> {
        Db::new(&self.shards[0], 0, &self.meter, Some(&self.log))
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
                .main_db()
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
            .main_db()
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
        // The charge is in this shard, the clocks in `DB`.
        crate::row! {
            struct Row {
                test_clock: Option<String>,
            }
        }
        let row: Option<Row> = self
            .db()
            .first(
                crate::sql!("SELECT test_clock FROM charges WHERE id = ?"),
                crate::params![charge_id],
            )
            .await?;
        match row.and_then(|r| r.test_clock) {
            Some(name) => self.now_on(Some(&name)).await,
            None => Ok(global),
        }
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
