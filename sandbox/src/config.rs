//! Flags and environment variables. Every default matches the worker's `.dev.vars.example` and
//! `wrangler.toml`, so `make dev` needs no configuration.

use std::path::PathBuf;

use crate::settlement::{Schedule, parse_cutoff};

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 0 picks a free port; the chosen one is announced on stdout.
    pub port: u16,
    /// Base of the hosted payment page links; defaults to the listening address.
    pub public_url: Option<String>,
    pub api_key: String,
    pub api_secret: String,
    pub merchant_id: String,
    pub page_terminal_id: String,
    pub mit_terminal_id: String,
    pub webhook_secret: String,
    /// Seeds fault injection when a fault configuration does not name its own seed.
    pub seed: u64,
    pub state_file: Option<PathBuf>,
    /// How long a payment takes from initiated to final.
    pub processing_ms: u64,
    /// Where the sandbox clock starts (epoch ms); `None`: real time.
    pub clock: Option<i64>,
    /// The daily settlement cutoff, minutes after 00:00 UTC.
    pub settlement_cutoff_minutes: u32,
    /// Business days from a batch to its settlement date.
    pub settlement_delay_days: u32,
    /// The provider's fee on a purchase: basis points of the amount, plus a fixed part (minor
    /// units).
    pub fee_rate_bp: u32,
    pub fee_fixed: i64,
    /// Webhooks in flight at once to one URL: 1 sends them one at a time, in order.
    pub webhook_concurrency: usize,
}

impl Config {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            cutoff_minutes: self.settlement_cutoff_minutes,
            delay_days: self.settlement_delay_days,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8790,
            public_url: None,
            api_key: "sandbox-api-key".into(),
            api_secret: "sandbox-api-secret".into(),
            merchant_id: "5a1e0f3c2b4d6e8f90".into(),
            page_terminal_id: "7e1d5c3b9a0f2e4d61".into(),
            mit_terminal_id: "3c9a7e5b1d0f8e6a42".into(),
            webhook_secret: "sandbox-webhook-secret".into(),
            seed: 1,
            state_file: None,
            processing_ms: 50,
            clock: None,
            settlement_cutoff_minutes: 23 * 60,
            settlement_delay_days: 1,
            fee_rate_bp: 180,
            fee_fixed: 180,
            webhook_concurrency: 1,
        }
    }
}

/// Flag, environment variable, and help text of each setting.
const SETTINGS: [(&str, &str, &str); 18] = [
    (
        "--host",
        "PSP_SANDBOX_HOST",
        "address to listen on (127.0.0.1)",
    ),
    (
        "--port",
        "PSP_SANDBOX_PORT",
        "port (8790; 0 picks a free one)",
    ),
    (
        "--public-url",
        "PSP_SANDBOX_PUBLIC_URL",
        "base URL of payment page links",
    ),
    ("--api-key", "PSP_API_KEY", "expected API-KEY header"),
    (
        "--api-secret",
        "PSP_API_SECRET",
        "expected API-SECRET header",
    ),
    (
        "--merchant-id",
        "PSP_MERCHANT_ID",
        "expected MERCHANT-ID header",
    ),
    (
        "--page-terminal-id",
        "PSP_PAGE_TERMINAL_ID",
        "the PaymentPage terminal",
    ),
    (
        "--mit-terminal-id",
        "PSP_MIT_TERMINAL_ID",
        "the MerchantInitiated terminal",
    ),
    (
        "--webhook-secret",
        "PSP_WEBHOOK_SECRET",
        "key of x-webhook-signature",
    ),
    (
        "--seed",
        "PSP_SANDBOX_SEED",
        "default seed of fault injection (1)",
    ),
    (
        "--state",
        "PSP_SANDBOX_STATE",
        "file that keeps all state across restarts",
    ),
    (
        "--processing-ms",
        "PSP_SANDBOX_PROCESSING_MS",
        "ms a payment takes from initiated to final (50)",
    ),
    (
        "--clock",
        "PSP_SANDBOX_CLOCK",
        "RFC 3339 instant the sandbox clock starts at (now)",
    ),
    (
        "--settlement-cutoff",
        "PSP_SANDBOX_SETTLEMENT_CUTOFF",
        "daily settlement batch, HH:MM UTC (23:00)",
    ),
    (
        "--fee-rate-bp",
        "PSP_SANDBOX_FEE_RATE_BP",
        "fee on purchases, basis points of the amount (180)",
    ),
    (
        "--fee-fixed",
        "PSP_SANDBOX_FEE_FIXED",
        "fixed fee on purchases, minor units (180)",
    ),
    (
        "--settlement-delay-days",
        "PSP_SANDBOX_SETTLEMENT_DELAY_DAYS",
        "business days from batch to settlement (1)",
    ),
    (
        "--webhook-concurrency",
        "PSP_SANDBOX_WEBHOOK_CONCURRENCY",
        "webhooks in flight at once to one URL (1: one at a time, in order; up to 64)",
    ),
];

pub fn usage() -> String {
    let mut text = String::from(
        "psp-sandbox: a local stand-in for the payment provider, for development and tests\n\n\
         usage: psp-sandbox [--flag value | --flag=value]...\n\
         Each flag can also be set by its environment variable; flags win.\n\n",
    );
    for (flag, env, help) in SETTINGS {
        text.push_str(&format!("  {flag:<24} {env:<34} {help}\n"));
    }
    text
}

impl Config {
    /// Reads `args` (without the program name) over the environment over the defaults.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut values: Vec<(&str, String)> = SETTINGS
            .iter()
            .filter_map(|(flag, var, _)| env(var).map(|v| (*flag, v)))
            .collect();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(usage());
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let Some((known, _, _)) = SETTINGS.iter().find(|(f, _, _)| *f == flag) else {
                return Err(format!("unknown argument {arg:?}\n\n{}", usage()));
            };
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(format!("{flag} needs a value")),
            };
            values.push((known, value));
        }
        let mut c = Config::default();
        for (flag, value) in values {
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag} must be a number"))
            };
            match flag {
                "--host" => c.host = value,
                "--port" => {
                    c.port = number(&value)?
                        .try_into()
                        .map_err(|_| "--port is too large")?
                }
                "--public-url" => c.public_url = Some(value.trim_end_matches('/').to_owned()),
                "--api-key" => c.api_key = value,
                "--api-secret" => c.api_secret = value,
                "--merchant-id" => c.merchant_id = value,
                "--page-terminal-id" => c.page_terminal_id = value,
                "--mit-terminal-id" => c.mit_terminal_id = value,
                "--webhook-secret" => c.webhook_secret = value,
                "--seed" => c.seed = number(&value)?,
                "--state" => c.state_file = Some(PathBuf::from(value)),
                "--processing-ms" => c.processing_ms = number(&value)?,
                "--clock" => {
                    c.clock =
                        Some(crate::clock::parse_rfc3339(&value).ok_or(
                            "--clock must be an RFC 3339 instant, like 2026-03-02T10:00:00Z",
                        )?)
                }
                "--settlement-cutoff" => {
                    c.settlement_cutoff_minutes = parse_cutoff(&value)
                        .ok_or("--settlement-cutoff must be HH:MM (UTC), like 23:00")?
                }
                "--fee-rate-bp" => {
                    c.fee_rate_bp = number(&value)?
                        .try_into()
                        .ok()
                        .filter(|bp| *bp <= 10_000)
                        .ok_or("--fee-rate-bp is at most 10000 (100 %)")?
                }
                "--webhook-concurrency" => {
                    c.webhook_concurrency = number(&value)?
                        .try_into()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or("--webhook-concurrency is from 1 to 64")?
                }
                "--fee-fixed" => {
                    c.fee_fixed = number(&value)?
                        .try_into()
                        .map_err(|_| "--fee-fixed is too large")?
                }
                "--settlement-delay-days" => {
                    c.settlement_delay_days = number(&value)?
                        .try_into()
                        .ok()
                        .filter(|d| *d <= 366)
                        .ok_or("--settlement-delay-days is at most 366")?
                }
                _ => unreachable!("every setting is matched"),
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_environment_which_overrides_defaults() {
        let env = |name: &str| (name == "PSP_SANDBOX_PORT").then(|| "9000".to_owned());
        let c = Config::parse(["--api-key".into(), "k".into(), "--seed=9".into()], env).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.api_key, "k");
        assert_eq!(c.seed, 9);
        assert_eq!(c.merchant_id, "5a1e0f3c2b4d6e8f90");
        let c = Config::parse(["--port".into(), "0".into()], env).unwrap();
        assert_eq!(c.port, 0);
    }

    #[test]
    fn clock_and_settlement_settings_are_read_and_checked() {
        let env = |name: &str| (name == "PSP_SANDBOX_FEE_RATE_BP").then(|| "250".to_owned());
        let c = Config::parse(
            [
                "--clock=2026-03-02T10:00:00+01:00".into(),
                "--settlement-cutoff".into(),
                "18:30".into(),
                "--fee-fixed=0".into(),
                "--settlement-delay-days=2".into(),
            ],
            env,
        )
        .unwrap();
        assert_eq!(c.clock, Some(1_772_442_000_000));
        assert_eq!(c.settlement_cutoff_minutes, 18 * 60 + 30);
        assert_eq!((c.fee_rate_bp, c.fee_fixed), (250, 0));
        assert_eq!(c.settlement_delay_days, 2);
        let d = Config::default();
        assert_eq!(
            (
                d.clock,
                d.settlement_cutoff_minutes,
                d.fee_rate_bp,
                d.fee_fixed
            ),
            (None, 23 * 60, 180, 180)
        );
        assert_eq!(d.settlement_delay_days, 1);
        for bad in [
            "--clock=tomorrow",
            "--settlement-cutoff=23",
            "--settlement-cutoff=25:00",
            "--fee-rate-bp=10001",
            "--fee-fixed=-1",
            "--settlement-delay-days=x",
        ] {
            assert!(Config::parse([bad.into()], |_| None).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_or_incomplete_flags_are_errors() {
        assert!(Config::parse(["--nope".into()], |_| None).is_err());
        assert!(Config::parse(["--port".into()], |_| None).is_err());
        assert!(Config::parse(["--port".into(), "x".into()], |_| None).is_err());
    }
}
