#!/usr/bin/env bash
# The worker's build command (wrangler.toml [build], make dev, make test): `worker-build
# --release` with the pinned tools. It is skipped when nothing that goes into the build changed
# since the last successful one (the sources, the manifests, the toolchain, the pinned tools,
# this script): an unchanged tree gives the same wasm, and wasm-opt alone takes a minute on a
# small machine. `--force` (or FORCE_BUILD=1) builds anyway.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/env.sh

[ -x "$WASM_BINDGEN_BIN" ] || {
  echo "build-worker: the pinned tools are missing; run scripts/bootstrap.sh (or make dev / make test)" >&2
  exit 1
}

force=${FORCE_BUILD:-}
[ "${1:-}" = "--force" ] && force=1

OUT=build
STAMP="$OUT/.inputs.sha256"
OUTPUTS=("$OUT/worker/shim.mjs" "$OUT/index.js" "$OUT/index_bg.wasm")

inputs_digest() {
  {
    rustc -V
    cargo -V
    worker-build --version
    "$WASM_BINDGEN_BIN" --version
    # Flags that change what cargo produces.
    env | grep -E '^(RUSTFLAGS|CARGO_ENCODED_RUSTFLAGS|CARGO_PROFILE_[A-Z_]+|CARGO_BUILD_[A-Z_]+)=' | LC_ALL=C sort || true
    # openapi.json is built into the worker (GET /openapi.json).
    sha256sum Cargo.toml Cargo.lock package-lock.json openapi.json scripts/build-worker.sh scripts/env.sh
    find src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

built() {
  local f
  for f in "${OUTPUTS[@]}"; do [ -s "$f" ] || return 1; done
}

digest=$(inputs_digest)
if [ -z "$force" ] && built && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ]; then
  echo "build-worker: up to date (no source, manifest or tool changed since the last build)" >&2
  exit 0
fi

# The stamp goes away first and comes back only after a complete build, so a build that fails
# or is interrupted is never taken for an up-to-date one.
rm -f "$STAMP"
worker-build --release
built || {
  echo "build-worker: worker-build finished but ${OUTPUTS[*]} are not all there" >&2
  exit 1
}
printf '%s\n' "$digest" >"$STAMP"
