//! The worker's settings, read from vars and secrets by name (the names are part of the
//! interface: deploy tooling and docs rely on them).
//! Parsing is pure: it takes a lookup function, so every rule here is tested natively.

use crate::catalog::Catalog;
use crate::merchant_auth::MerchantKeys;
use crate::session::{SessionKey, SessionKeys};

/// Provider connection settings.
#[derive(Clone)]
pub struct PspConfig {
    pub base_url: String,
    pub merchant_id: String,
    pub page_terminal_id: String,
    pub mit_terminal_id: String,
    pub api_key: String,
    pub api_secret: String,
    /// Per-request timeout: past it the outcome of the call is unknown and gets reconciled.
    pub timeout_ms: u32,
}

/// What one scheduler invocation may spend before leaving the rest to the next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickBudget {
    /// Charges driven per tick.
    pub max_charges: u32,
    /// Simultaneous provider conversations; Workers allow 6 open outbound connections.
    pub concurrency: u32,
    /// Outbound requests per tick (the platform allows 50 on Free, 10,000 on Paid).
    pub max_subrequests: u32,
    /// Wall time after which no new work starts.
    pub max_wall_ms: u32,
}

/// Where events go, and the key that signs them.
#[derive(Clone)]
pub struct MerchantWebhook {
    pub url: String,
    /// The bytes of `MERCHANT_WEBHOOK_SECRET` (`whsec_<base64>`).
    pub key: Vec<u8>,
    /// `MERCHANT_WEBHOOK_SECRET_PREVIOUS`, during a rotation: every delivery is signed with
    /// both, so the merchant's endpoint verifies with either.
    pub previous_key: Option<Vec<u8>>,
    pub timeout_ms: u32,
}

/// Seconds between a failed delivery and the next, one entry per retry: over a day in all.
pub const DEFAULT_EVENT_RETRY_SCHEDULE: &str = "30,300,1800,7200,18000,36000,36000";

#[derive(Clone)]
pub struct Config {
    pub psp: PspConfig,
    /// Unset: events are only kept for the feed (`GET /v1/events`), never sent.
    pub merchant_webhook: Option<MerchantWebhook>,
    /// Delays before each retry of an event delivery, in seconds.
    pub event_retry_delays_s: Vec<u32>,
    pub webhook_secret: String,
    /// `PSP_WEBHOOK_SECRET_PREVIOUS`: still accepted on the provider's webhooks during a
    /// rotation.
    pub webhook_secret_previous: Option<String>,
    /// The merchant's keys: the current and (during a rotation) the previous full key, and
    /// the read-only key.
    pub merchant_keys: MerchantKeys,
    /// Keys of customer sessions: the current one signs, the previous one is still accepted.
    pub session_keys: SessionKeys,
    /// The longest lifetime a customer session may have.
    pub session_max_lifetime_s: i64,
    /// Checkouts (including card replacements) a customer may have open at once.
    pub max_open_checkouts: u32,
    /// The Workers Rate Limiting binding guards the routes browsers call.
    pub rate_limit: bool,
    /// The demo storefront's stand-in for a merchant backend (`POST /v1/demo/session`).
    pub demo: bool,
    pub public_base_url: String,
    pub allowed_origins: Vec<String>,
    pub test_clock: bool,
    pub catalog: Catalog,
    /// ISO 4217 numeric codes the merchant's provider account accepts.
    pub currencies: Vec<String>,
    pub min_charge_amount: i64,
    pub max_charge_amount: i64,
    /// Dunning retry offsets in days from the first failure, e.g. "1,3,5,7".
    pub dunning_schedule: String,
    /// Webhook events older than this are not acted upon without the provider's status.
    pub webhook_max_age_ms: i64,
    pub tick: TickBudget,
    /// How long a process may drive a charge before another may take over: longer than a
    /// drive takes, short enough that a crashed process does not hold a charge for long.
    pub charge_lease_ms: i64,
    /// How long an attempt the provider never shows stays in doubt before its charge moves on
    /// to a new order: longer than the provider's status can lag.
    pub settle_window_ms: i64,
    /// The tick enqueues due charges to the CHARGES queue (when bound) instead of driving them.
    pub charge_fanout: bool,
    /// How long a charge the tick enqueued is not enqueued again (its message is on its way).
    pub charge_queue_hold_ms: i64,
    /// Charges one queue consumer invocation drives at once.
    pub consumer_concurrency: u32,
    /// A payment the consumer started whose outcome has not arrived (the provider's webhook is
    /// late or lost) is looked at after this long, then after twice and four times as long.
    pub charge_outcome_check_s: u32,
    /// `RECEIPTS=email`: every renewal's receipt is emailed by the provider once settled.
    pub email_receipts: bool,
    pub dashboard: DashboardConfig,
    /// How long events, webhook records and tick reports stay in the ledger before the
    /// archive (`RETENTION_*`); without an `ARCHIVE` bucket nothing leaves.
    pub retention: crate::archive::Retention,
    /// `LEDGER_SHARDS`: the D1 databases the ledger spreads its customers over (`DB`, then
    /// `DB_1` …); 1 is a single database.
    pub ledger_shards: usize,
}

/// Who may open the dashboard (`/dashboard`).
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// The Cloudflare Access application in front of it; unset: no Access token is accepted.
    pub access: Option<AccessApp>,
    /// `DASHBOARD_ADMINS`: emails that may refund and change subscriptions (lowercase).
    pub admins: Vec<String>,
    /// `DASHBOARD_DEV_LOGIN=on`: a development sign-in by email, never in production.
    pub dev_login: bool,
}

#[derive(Debug, Clone)]
pub struct AccessApp {
    /// `ACCESS_TEAM_DOMAIN`: the team's URL, the tokens' issuer; its keys are published at
    /// `/cdn-cgi/access/certs` under it.
    pub team_domain: String,
    /// `ACCESS_AUD`: the application's audience tag.
    pub aud: String,
}

impl AccessApp {
    pub fn certs_url(&self) -> String {
        format!("{}/cdn-cgi/access/certs", self.team_domain)
    }
}

// Redacts secrets, so a stray `{:?}` can never print them.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("psp_base_url", &self.psp.base_url)
            .field("public_base_url", &self.public_base_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("test_clock", &self.test_clock)
            .field("demo", &self.demo)
            .field("session_keys", &self.session_keys)
            .field("plans", &self.catalog.plans.len())
            .field(
                "merchant_webhook_url",
                &self.merchant_webhook.as_ref().map(|w| &w.url),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

pub const DEFAULT_CURRENCIES: &str = "752,978,208";
/// The provider's per-transaction limits: 3 SEK to 499,999 SEK, in minor units.
pub const DEFAULT_MIN_CHARGE: i64 = 300;
pub const DEFAULT_MAX_CHARGE: i64 = 49_999_900;
pub const DEFAULT_DUNNING_SCHEDULE: &str = "1,3,5,7";
/// A session secret shorter than this is refused: it is the only thing between a browser and
/// another customer's account.
pub const MIN_SESSION_SECRET_BYTES: usize = 32;
/// The Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml).
pub const RATE_LIMIT_BINDING: &str = "PUBLIC_RATE_LIMITER";
/// The binding's `simple.period`, sent as `Retry-After` on a 429 (the binding does not say).
pub const RATE_LIMIT_PERIOD_SECONDS: u32 = 60;

impl Config {
    /// Reads every setting through `get` (vars and secrets by name) and reports all problems at
    /// once, naming the setting and never echoing a value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut required = |name: &str| -> String {
            match get(name).map(|v| v.trim().to_owned()) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    problems.push(format!("{name} is not set"));
                    String::new()
                }
            }
        };
        let base_url = required("PSP_BASE_URL");
        let merchant_id = required("PSP_MERCHANT_ID");
        let page_terminal_id = required("PSP_PAGE_TERMINAL_ID");
        let mit_terminal_id = required("PSP_MIT_TERMINAL_ID");
        let api_key = required("PSP_API_KEY");
        let api_secret = required("PSP_API_SECRET");
        let webhook_secret = required("PSP_WEBHOOK_SECRET");
        let merchant_api_key = required("MERCHANT_API_KEY");
        let secondary = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let merchant_keys = MerchantKeys {
            previous: secondary("MERCHANT_API_KEY_PREVIOUS"),
            read: secondary("MERCHANT_READ_KEY"),
            current: merchant_api_key,
        };
        let webhook_secret_previous = secondary("PSP_WEBHOOK_SECRET_PREVIOUS");
        let merchant_webhook_previous = secondary("MERCHANT_WEBHOOK_SECRET_PREVIOUS");
        let session_secret = required("CUSTOMER_SESSION_SECRET");
        let public_base_url = required("PUBLIC_BASE_URL");
        let plans = required("PLANS");

        let optional = |name: &str, default: &str| -> String {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let mut number = |name: &str, default: i64, min: i64, max: i64| -> i64 {
            let raw = optional(name, &default.to_string());
            match raw.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(format!("{name} must be an integer from {min} to {max}"));
                    default
                }
            }
        };
        let timeout_ms = number("PSP_TIMEOUT_MS", 10_000, 100, 60_000) as u32;
        let min_charge_amount = number("MIN_CHARGE_AMOUNT", DEFAULT_MIN_CHARGE, 1, i64::MAX);
        let max_charge_amount = number("MAX_CHARGE_AMOUNT", DEFAULT_MAX_CHARGE, 1, 1 << 52);
        let webhook_max_age_hours = number("WEBHOOK_MAX_AGE_HOURS", 24, 1, 24 * 90);
        let tick = TickBudget {
            max_charges: number("TICK_MAX_CHARGES", 200, 1, 5_000) as u32,
            concurrency: number("TICK_CONCURRENCY", 6, 1, 6) as u32,
            max_subrequests: number("TICK_MAX_SUBREQUESTS", 900, 10, 10_000) as u32,
            max_wall_ms: number("TICK_MAX_WALL_MS", 50_000, 1_000, 900_000) as u32,
        };
        let charge_lease_ms = number("CHARGE_LEASE_SECONDS", 120, 5, 3_600) * 1_000;
        let webhook_timeout_ms = number("MERCHANT_WEBHOOK_TIMEOUT_MS", 10_000, 100, 30_000) as u32;
        let settle_window_ms = number("SETTLE_WINDOW_MINUTES", 15, 1, 24 * 60) * 60_000;
        let charge_queue_hold_ms = number("CHARGE_QUEUE_HOLD_SECONDS", 300, 0, 3_600) * 1_000;
        let consumer_concurrency = number("CONSUMER_CONCURRENCY", 50, 1, 100) as u32;
        let charge_outcome_check_s = number("CHARGE_OUTCOME_CHECK_SECONDS", 3, 1, 300) as u32;
        let session_max_lifetime_s = number("CUSTOMER_SESSION_MAX_SECONDS", 4 * 3_600, 60, 86_400);
        let max_open_checkouts = number("MAX_OPEN_CHECKOUTS", 5, 1, 100) as u32;
        let retention_default = crate::archive::Retention::default();
        let retention = crate::archive::Retention {
            events_days: number(
                "RETENTION_EVENTS_DAYS",
                retention_default.events_days.into(),
                1,
                3_650,
            ) as u32,
            webhooks_days: number(
                "RETENTION_WEBHOOKS_DAYS",
                retention_default.webhooks_days.into(),
                1,
                3_650,
            ) as u32,
            ticks_days: number(
                "RETENTION_TICKS_DAYS",
                retention_default.ticks_days.into(),
                1,
                3_650,
            ) as u32,
            batch: number("RETENTION_BATCH", retention_default.batch.into(), 10, 5_000) as u32,
        };
        let ledger_shards =
            number("LEDGER_SHARDS", 1, 1, crate::shards::MAX_SHARDS as i64) as usize;
        if min_charge_amount > max_charge_amount {
            problems.push("MIN_CHARGE_AMOUNT is above MAX_CHARGE_AMOUNT".into());
        }

        for (name, url) in [
            ("PSP_BASE_URL", &base_url),
            ("PUBLIC_BASE_URL", &public_base_url),
        ] {
            if !url.is_empty() && !is_http_url(url) {
                problems.push(format!("{name} must be an http(s) URL"));
            }
        }

        let allowed_origins: Vec<String> = optional("ALLOWED_ORIGINS", "")
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if let Some(bad) = allowed_origins.iter().find(|o| !is_http_url(o)) {
            problems.push(format!(
                "ALLOWED_ORIGINS entry {bad:?} is not an http(s) origin"
            ));
        }

        let mut switch = |name: &str, default: &str| match optional(name, default).as_str() {
            "on" => true,
            "off" => false,
            _ => {
                problems.push(format!("{name} must be \"on\" or \"off\""));
                default == "on"
            }
        };
        let test_clock = switch("TEST_CLOCK", "off");
        let demo = switch("DEMO", "off");
        let rate_limit = switch("RATE_LIMIT", "on");
        let charge_fanout = switch("CHARGE_FANOUT", "on");
        let access = match (
            optional("ACCESS_TEAM_DOMAIN", ""),
            optional("ACCESS_AUD", ""),
        ) {
            (team, aud) if team.is_empty() && aud.is_empty() => None,
            (team, aud) if is_http_url(&team) && !aud.trim().is_empty() => Some(AccessApp {
                team_domain: team.trim_end_matches('/').to_owned(),
                aud: aud.trim().to_owned(),
            }),
            _ => {
                problems
                    .push("ACCESS_TEAM_DOMAIN (an https URL) and ACCESS_AUD go together".into());
                None
            }
        };
        let admins: Vec<String> = optional("DASHBOARD_ADMINS", "")
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        if let Some(bad) = admins.iter().find(|e| !crate::validate::is_email(e)) {
            problems.push(format!("DASHBOARD_ADMINS entry {bad:?} is not an email"));
        }
        let dev_login = match optional("DASHBOARD_DEV_LOGIN", "off").as_str() {
            "on" => true,
            "off" => false,
            _ => {
                problems.push("DASHBOARD_DEV_LOGIN must be \"on\" or \"off\"".into());
                false
            }
        };
        let email_receipts = match optional("RECEIPTS", "off").as_str() {
            "email" => true,
            "off" => false,
            _ => {
                problems.push("RECEIPTS must be \"email\" or \"off\"".into());
                false
            }
        };
        if merchant_keys.read.is_some()
            && [
                Some(&merchant_keys.current),
                merchant_keys.previous.as_ref(),
            ]
            .contains(&merchant_keys.read.as_ref())
        {
            problems.push("MERCHANT_READ_KEY must differ from the full merchant keys".into());
        }
        if merchant_webhook_previous
            .as_deref()
            .is_some_and(|s| crate::merchant_webhook::decode_secret(s).is_none())
        {
            problems.push(
                "MERCHANT_WEBHOOK_SECRET_PREVIOUS must be whsec_ and the base64 of at least 16 \
                 random bytes"
                    .into(),
            );
        }
        let merchant_webhook = match optional("MERCHANT_WEBHOOK_URL", "").as_str() {
            "" => None,
            url if !is_http_url(url) => {
                problems.push("MERCHANT_WEBHOOK_URL must be an http(s) URL".into());
                None
            }
            url => match crate::merchant_webhook::decode_secret(&optional(
                "MERCHANT_WEBHOOK_SECRET",
                "",
            )) {
                Some(key) => Some(MerchantWebhook {
                    url: url.to_owned(),
                    key,
                    previous_key: merchant_webhook_previous
                        .as_deref()
                        .and_then(crate::merchant_webhook::decode_secret),
                    timeout_ms: webhook_timeout_ms,
                }),
                None => {
                    problems.push(
                        "MERCHANT_WEBHOOK_SECRET must be whsec_ and the base64 of at least 16 \
                         random bytes when MERCHANT_WEBHOOK_URL is set"
                            .into(),
                    );
                    None
                }
            },
        };
        let event_retry_delays_s: Vec<u32> =
            match optional("EVENT_RETRY_SCHEDULE_SECONDS", DEFAULT_EVENT_RETRY_SCHEDULE)
                .split(',')
                .map(|d| d.trim().parse::<u32>())
                .collect::<Result<Vec<u32>, _>>()
            {
                Ok(delays)
                    if !delays.is_empty() && delays.iter().all(|d| (1..=86_400).contains(d)) =>
                {
                    delays
                }
                _ => {
                    problems.push(
                    "EVENT_RETRY_SCHEDULE_SECONDS must list seconds from 1 to 86400, e.g. 30,300"
                        .into(),
                );
                    Vec::new()
                }
            };

        let previous_secret = optional("CUSTOMER_SESSION_SECRET_PREVIOUS", "");
        for (name, secret) in [
            ("CUSTOMER_SESSION_SECRET", &session_secret),
            ("CUSTOMER_SESSION_SECRET_PREVIOUS", &previous_secret),
        ] {
            if !secret.is_empty() && secret.len() < MIN_SESSION_SECRET_BYTES {
                problems.push(format!(
                    "{name} must be at least {MIN_SESSION_SECRET_BYTES} bytes (e.g. 32 random bytes, hex)"
                ));
            }
        }
        let session_keys = SessionKeys {
            current: SessionKey::new(&session_secret),
            previous: (!previous_secret.is_empty() && previous_secret != session_secret)
                .then(|| SessionKey::new(&previous_secret)),
        };
        if session_keys
            .previous
            .as_ref()
            .is_some_and(|p| p.id() == session_keys.current.id())
        {
            problems.push(
                "CUSTOMER_SESSION_SECRET_PREVIOUS has the same key id as CUSTOMER_SESSION_SECRET; pick a new secret".into(),
            );
        }

        let currencies: Vec<String> = optional("CURRENCIES", DEFAULT_CURRENCIES)
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if currencies.is_empty() || currencies.iter().any(|c| !is_numeric_currency(c)) {
            problems.push("CURRENCIES must list ISO 4217 numeric codes, e.g. 752,978".into());
        }

        let catalog = if plans.is_empty() {
            Catalog::default()
        } else {
            match Catalog::parse(&plans, &currencies) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("PLANS: {e}"));
                    Catalog::default()
                }
            }
        };
        let dunning_schedule = optional("DUNNING_SCHEDULE_DAYS", DEFAULT_DUNNING_SCHEDULE);
        if let Err(e) = crate::billing::dunning::DunningPolicy::parse(&dunning_schedule) {
            problems.push(format!("DUNNING_SCHEDULE_DAYS: {e}"));
        }

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            merchant_webhook,
            event_retry_delays_s,
            psp: PspConfig {
                base_url: base_url.trim_end_matches('/').to_owned(),
                merchant_id,
                page_terminal_id,
                mit_terminal_id,
                api_key,
                api_secret,
                timeout_ms,
            },
            webhook_secret,
            webhook_secret_previous,
            merchant_keys,
            session_keys,
            session_max_lifetime_s,
            max_open_checkouts,
            rate_limit,
            demo,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            allowed_origins,
            test_clock,
            email_receipts,
            dashboard: DashboardConfig {
                access,
                admins,
                dev_login,
            },
            catalog,
            currencies,
            min_charge_amount,
            max_charge_amount,
            dunning_schedule,
            webhook_max_age_ms: webhook_max_age_hours * 3_600_000,
            tick,
            charge_lease_ms,
            settle_window_ms,
            charge_fanout,
            charge_queue_hold_ms,
            consumer_concurrency,
            charge_outcome_check_s,
            retention,
            ledger_shards,
        })
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/v1/webhooks/psp", self.public_base_url)
    }

    pub fn dunning_policy(&self) -> crate::billing::dunning::DunningPolicy {
        // Validated in from_lookup, so this cannot fail on a Config that exists.
        crate::billing::dunning::DunningPolicy::parse(&self.dunning_schedule).unwrap_or_default()
    }
}

pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@')
        }
        None => false,
    }
}

pub fn is_numeric_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub const PLANS: &str = r#"[
        {"id":"basic-monthly","name":"Basic","amount":9900,"currency":"752","interval":"month"}
    ]"#;

    pub fn dev_vars() -> HashMap<&'static str, String> {
        [
            ("PSP_BASE_URL", "http://127.0.0.1:8790/"),
            ("PSP_MERCHANT_ID", "5a1e0f3c2b4d6e8f90"),
            ("PSP_PAGE_TERMINAL_ID", "7e1d5c3b9a0f2e4d61"),
            ("PSP_MIT_TERMINAL_ID", "3c9a7e5b1d0f8e6a42"),
            ("PSP_API_KEY", "k"),
            ("PSP_API_SECRET", "s"),
            ("PSP_WEBHOOK_SECRET", "w"),
            ("MERCHANT_API_KEY", "m"),
            (
                "CUSTOMER_SESSION_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("PUBLIC_BASE_URL", "http://127.0.0.1:8787"),
            (
                "ALLOWED_ORIGINS",
                "http://127.0.0.1:8787, http://localhost:8787/",
            ),
            ("TEST_CLOCK", "on"),
            ("PLANS", PLANS),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    pub fn dev_config() -> Config {
        let vars = dev_vars();
        Config::from_lookup(|n| vars.get(n).cloned()).expect("dev config is valid")
    }

    #[test]
    fn dev_defaults_parse_and_normalise() {
        let c = dev_config();
        assert_eq!(c.psp.base_url, "http://127.0.0.1:8790");
        assert_eq!(
            c.allowed_origins,
            ["http://127.0.0.1:8787", "http://localhost:8787"]
        );
        assert_eq!(c.webhook_url(), "http://127.0.0.1:8787/v1/webhooks/psp");
        assert!(c.test_clock);
        assert_eq!(c.currencies, ["752", "978", "208"]);
        assert_eq!(c.tick.concurrency, 6);
    }

    #[test]
    fn reports_every_missing_setting_by_name_without_values() {
        let mut vars = dev_vars();
        vars.remove("PSP_API_SECRET");
        vars.remove("MERCHANT_API_KEY");
        vars.insert("TICK_CONCURRENCY", "12".into());
        let err = Config::from_lookup(|n| vars.get(n).cloned()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("PSP_API_SECRET is not set"), "{text}");
        assert!(text.contains("MERCHANT_API_KEY is not set"), "{text}");
        assert!(text.contains("TICK_CONCURRENCY"), "{text}");
        assert_eq!(err.problems.len(), 3);
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let mut vars = dev_vars();
        vars.insert("PSP_API_SECRET", "very-secret-value".into());
        let c = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }

    #[test]
    fn receipts_are_emailed_only_when_asked() {
        let mut vars = dev_vars();
        let read = |vars: &HashMap<&str, String>| Config::from_lookup(|n| vars.get(n).cloned());
        assert!(!read(&vars).unwrap().email_receipts);
        vars.insert("RECEIPTS", "email".into());
        assert!(read(&vars).unwrap().email_receipts);
        vars.insert("RECEIPTS", "yes".into());
        let e = read(&vars).unwrap_err();
        assert!(e.to_string().contains("RECEIPTS"), "{e}");
    }

    #[test]
    fn test_clock_is_off_unless_exactly_on() {
        let mut vars = dev_vars();
        vars.remove("TEST_CLOCK");
        assert!(
            !Config::from_lookup(|n| vars.get(n).cloned())
                .unwrap()
                .test_clock
        );
        vars.insert("TEST_CLOCK", "yes".into());
        assert!(Config::from_lookup(|n| vars.get(n).cloned()).is_err());
    }

    #[test]
    fn the_session_secret_is_required_long_and_rotatable() {
        let mut vars = dev_vars();
        vars.remove("CUSTOMER_SESSION_SECRET");
        let err = Config::from_lookup(|n| vars.get(n).cloned()).unwrap_err();
        assert_eq!(err.problems, ["CUSTOMER_SESSION_SECRET is not set"]);

        vars.insert("CUSTOMER_SESSION_SECRET", "short-secret".into());
        let err = Config::from_lookup(|n| vars.get(n).cloned()).unwrap_err();
        assert!(err.problems[0].contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("short-secret"), "never the value");

        vars.insert("CUSTOMER_SESSION_SECRET", "n".repeat(40));
        vars.insert("CUSTOMER_SESSION_SECRET_PREVIOUS", "o".repeat(40));
        let c = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
        let previous = c
            .session_keys
            .previous
            .clone()
            .expect("the previous key is kept");
        assert_eq!(previous.id(), crate::session::key_id(&"o".repeat(40)));
        assert_eq!(
            c.session_keys.current.id(),
            crate::session::key_id(&"n".repeat(40))
        );
        assert!(!format!("{c:?}").contains(&"o".repeat(40)));
    }

    #[test]
    fn switches_and_bounds_have_safe_defaults() {
        let mut vars = dev_vars();
        let c = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
        assert!(!c.demo, "the demo is off unless asked for");
        assert!(c.rate_limit, "rate limiting is on unless turned off");
        assert_eq!(c.max_open_checkouts, 5);
        assert_eq!(c.session_max_lifetime_s, 4 * 3600);
        vars.insert("DEMO", "yes".into());
        vars.insert("MAX_OPEN_CHECKOUTS", "0".into());
        let err = Config::from_lookup(|n| vars.get(n).cloned()).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn urls_must_be_http() {
        assert!(is_http_url("https://shop.example/done"));
        assert!(is_http_url("http://127.0.0.1:8787"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https://user@evil.example"));
        assert!(!is_http_url("ftp://x"));
    }
}
