#!/usr/bin/env bash
# The worker's build command (wrangler.toml [build], make dev, make test): `worker-build
# --release` with the pinned tools. It is skipped when nothing that goes into the build changed
# since the last successful one (the sources of the worker and the core, the manifests, the
# toolchain, the pinned tools, this script): an unchanged tree gives the same wasm, and wasm-opt
# alone takes a minute on a small machine. `--force` (or FORCE_BUILD=1) builds anyway.
#
# wasm-opt runs here rather than inside worker-build (Cargo.toml turns that step off), because
# worker-build always keeps the wasm name section: function names only make stack traces
# readable, and they are about a sixth of the gzipped wasm. A panic's message and source
# location still reach the log without them. KEEP_WASM_NAMES=1 keeps the names, for measuring
# the wasm with twiggy (see BENCHMARKS.md).
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
    env | grep -E '^(RUSTFLAGS|CARGO_ENCODED_RUSTFLAGS|CARGO_PROFILE_[A-Z_]+|CARGO_BUILD_[A-Z_]+|KEEP_WASM_NAMES)=' | LC_ALL=C sort || true
    sha256sum Cargo.toml Cargo.lock .cargo/config.toml package-lock.json scripts/build-worker.sh scripts/env.sh
    # The worker and the core it links (the sandbox is not in the wasm).
    find src crates -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
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

# The same optimisation worker-build would run (-O, and exactly its list of wasm features, so
# that no encoding newer than workerd supports is emitted), minus the name section.
wasm_opt_args=(-O)
for feature in mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue \
  reference-types exception-handling; do
  wasm_opt_args+=("--enable-$feature")
done
if [ -n "${KEEP_WASM_NAMES:-}" ]; then
  wasm_opt_args+=(--debuginfo)
fi
"$WASM_OPT_BIN" "$OUT/index_bg.wasm" -o "$OUT/index_bg.opt.wasm" "${wasm_opt_args[@]}"
mv "$OUT/index_bg.opt.wasm" "$OUT/index_bg.wasm"
printf '%s\n' "$digest" >"$STAMP"
