//! `psp-sandbox`: see `--help` and sandbox/README.md.

use psp_sandbox::{Config, serve};

#[tokio::main]
async fn main() {
    let config = match Config::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(config).await {
        eprintln!("psp-sandbox: {e}");
        std::process::exit(1);
    }
}
