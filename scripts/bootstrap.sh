#!/usr/bin/env bash
# Installs every pinned tool the build, the local stack and the tests need, into the project
# (.tools/ and node_modules/), so that no build step downloads anything at build time.
# Idempotent: a second run checks versions and returns in seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORKER_BUILD_VERSION=0.8.7
NEXTEST_VERSION=0.9.143
NODE_MAJOR_MIN=20
TOOLS="$ROOT/.tools"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() {
  printf 'bootstrap: error: %s\n' "$*" >&2
  exit 1
}

require() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. $2"
}

require cargo "Install Rust with rustup (https://rustup.rs), then run this again."
require rustup "Install Rust with rustup (https://rustup.rs); a distribution cargo cannot add the wasm32 target."
require node "Install Node.js $NODE_MAJOR_MIN or newer."
require npm "Install npm (it ships with Node.js)."

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge "$NODE_MAJOR_MIN" ] || die "Node.js $NODE_MAJOR_MIN or newer is required (found $(node --version))."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >&2 || die "could not add the wasm32-unknown-unknown target with rustup."
fi

# The wasm-bindgen CLI must be exactly the wasm-bindgen library version the worker links,
# so it is read from Cargo.lock rather than written down twice.
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$wasm_bindgen_version" ] || die "could not read the wasm-bindgen version from Cargo.lock."

# install_crate NAME VERSION BINARY VERSION_COMMAND [cargo install flags...]
install_crate() {
  local name=$1 version=$2 binary=$3 probe=$4
  shift 4
  if [ -x "$TOOLS/bin/$binary" ] && "$TOOLS/bin/$binary" $probe 2>/dev/null | grep -q "$version"; then
    return 0
  fi
  say "installing $name $version (compiles once, a few minutes)"
  # Tools, not the product: built for the shortest compile (no LTO, no optimisation: half the
  # time of even a light one, and the tools' own work is a second or less per build) into one
  # target directory, so the three share what they have in common. A cold `make test` spends
  # its first minutes here.
  CARGO_TARGET_DIR="$TOOLS/build" \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true \
    cargo install "$name" --version "$version" --root "$TOOLS" --force "$@" >&2 ||
    die "could not install $name $version with cargo install."
}

install_crate worker-build "$WORKER_BUILD_VERSION" worker-build --version --locked
# Not --locked: the lockfile published with wasm-bindgen-cli 0.2.130 names a webpki-roots
# release that the registry does not serve. The CLI itself stays pinned to the exact version.
install_crate wasm-bindgen-cli "$wasm_bindgen_version" wasm-bindgen --version

# cargo-nextest runs the test suites (per-test processes, hang timeouts, one summary line).
if ! cargo nextest --version 2>/dev/null | grep -q "cargo-nextest $NEXTEST_VERSION"; then
  install_crate cargo-nextest "$NEXTEST_VERSION" cargo-nextest "nextest --version" --locked
fi

# What the tools were built from is not needed once they are installed.
rm -rf "$TOOLS/build"

# npm ci is slow even when nothing changed, so it runs only when the lockfile changed.
lock_stamp="$ROOT/node_modules/.recurring-edge-lock"
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_sum" ]; then
  say "installing the pinned Node.js tools (wrangler, esbuild, binaryen, playwright-core)"
  npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed; check that the npm registry is reachable."
  printf '%s' "$lock_sum" >"$lock_stamp"
fi

for bin in wrangler esbuild wasm-opt playwright-core; do
  [ -x "node_modules/.bin/$bin" ] || die "node_modules/.bin/$bin is missing after npm ci."
done
