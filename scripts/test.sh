#!/usr/bin/env bash
# `make test`: every check and every test, on a machine with only rustup, Node 20 and npm.
# The worker's wasm and the PSP sandbox are built once here; the end-to-end tests start their
# own stacks on free loopback ports and stop them when they end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/bootstrap.sh
. scripts/env.sh

# The browser suite (tests/e2e/browser.rs) drives Debian's Chromium. Installed once; a machine
# that has it spends a dpkg query here.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || [ ! -x /usr/bin/chromium ]; then
  printf 'test: installing Chromium (Debian package) for the browser suite\n' >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || { echo "test: apt-get not found; install Debian's chromium package by hand" >&2; exit 1; }
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi

step() { printf '\n==> %s\n' "$*" >&2; }

step "format"
cargo fmt --all -- --check

step "lint (native, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "lint (wasm32, the deployed build)"
cargo clippy -p recurring-edge --lib --target wasm32-unknown-unknown --locked -- -D warnings

step "build the worker (release wasm) and the PSP sandbox"
bash scripts/build-worker.sh
# The sandbox in the tests' own profile: its dependencies are built once for both, where a
# release build (LTO, one codegen unit) would build them again. The stacks and `make dev` under
# test run this binary.
cargo build --locked -p psp-sandbox
export PSP_SANDBOX_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/psp-sandbox"
step "the production bundle (wrangler deploy --dry-run --env production)"
# Validates the production configuration and bundles what would be uploaded, offline. The
# placeholders of the example are refused by scripts/predeploy-check.py (make deploy), not here.
dry_run=$(mktemp -d)
wrangler deploy --dry-run --env production --outdir "$dry_run" >"$dry_run.log" 2>&1 || {
  cat "$dry_run.log" >&2
  exit 1
}
grep -E "assets directory|Total Upload" "$dry_run.log" >&2 || true
rm -rf "$dry_run" "$dry_run.log"

# Migrations may have changed since the last run: the harness rebuilds its template state.
rm -rf "${CARGO_TARGET_DIR:-target}/e2e"

step "tests (native unit tests, sandbox tests, end-to-end tests)"
exec cargo nextest run --workspace --locked --no-fail-fast "$@"
