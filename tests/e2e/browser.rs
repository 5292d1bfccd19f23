//! The demo storefront in a real browser: `tests/browser/storefront.mjs` drives Debian's
//! Chromium (installed by `make test`) with playwright-core through the store, the sandbox's
//! hosted page and the account page, at a desktop and a phone size, against this stack: paying,
//! a declined card and another card, a renewal, dunning; layout, contrast, busy buttons,
//! idempotency keys, provider orders and token ids are checked there. See that file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::stack::{Options, Stack, root};

/// The key the demo's merchant console fills in by itself on a local host (`.dev.vars.example`),
/// so the page works here as under `make dev`.
const DEMO_MERCHANT_KEY: &str = "dev-merchant-key";
const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshot_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target
        .join("e2e")
        .join(format!("browser-{}", std::process::id()))
}

fn require(path: &Path, how: &str) {
    assert!(path.exists(), "{} is missing: {how}", path.display());
}

#[test]
fn the_storefront_works_in_a_real_browser_at_desktop_and_phone_sizes() {
    require(
        Path::new(CHROMIUM),
        "`make test` installs Debian's chromium package (scripts/test.sh)",
    );
    require(
        &root().join("node_modules/playwright-core/package.json"),
        "`make test` installs the pinned playwright-core (scripts/bootstrap.sh)",
    );
    let s = Stack::start_with(Options {
        secrets: vec![("MERCHANT_API_KEY", DEMO_MERCHANT_KEY.into())],
        ..Options::default()
    });
    let shots = screenshot_dir();
    let _ = fs::remove_dir_all(&shots);

    let started = Instant::now();
    let out = Command::new("node")
        .current_dir(root())
        .arg("tests/browser/storefront.mjs")
        .args([&s.worker_url, &s.sandbox_url])
        .arg(&shots)
        .arg(DEMO_MERCHANT_KEY)
        .output()
        .expect("node runs the browser suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser suite failed ({}) after {:.1} s; screenshots in {}\n{stdout}\n{stderr}",
        out.status,
        started.elapsed().as_secs_f64(),
        shots.display(),
    );
    // Screenshots are kept for a failure only.
    let _ = fs::remove_dir_all(&shots);
    eprintln!(
        "browser suite passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
