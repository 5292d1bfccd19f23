//! `psp-sandbox`: see `--help` and sandbox/README.md.

use psp_sandbox::{Config, config, serve};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", config::usage());
        return;
    }
    let config = match Config::parse(args, |name| std::env::var(name).ok()) {
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
