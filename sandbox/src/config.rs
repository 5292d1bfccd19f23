//! Flags and environment variables. Every default matches the worker's `.dev.vars.example` and
//! `wrangler.toml`, so `make dev` needs no configuration.

use std::path::PathBuf;

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
        }
    }
}

/// Flag, environment variable, and help text of each setting.
const SETTINGS: [(&str, &str, &str); 12] = [
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
        "time a payment takes to settle (50)",
    ),
];

pub fn usage() -> String {
    let mut text = String::from(
        "psp-sandbox: a local stand-in for the payment provider, for development and tests\n\n\
         usage: psp-sandbox [--flag value | --flag=value]...\n\
         Each flag can also be set by its environment variable; flags win.\n\n",
    );
    for (flag, env, help) in SETTINGS {
        text.push_str(&format!("  {flag:<20} {env:<28} {help}\n"));
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
    fn unknown_or_incomplete_flags_are_errors() {
        assert!(Config::parse(["--nope".into()], |_| None).is_err());
        assert!(Config::parse(["--port".into()], |_| None).is_err());
        assert!(Config::parse(["--port".into(), "x".into()], |_| None).is_err());
    }
}
