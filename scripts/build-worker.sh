#!/usr/bin/env bash
# The worker's build command (wrangler.toml [build]): `worker-build --release` with the pinned tools.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/env.sh

[ -x "$WASM_BINDGEN_BIN" ] || {
  echo "build-worker: the pinned tools are missing; run scripts/bootstrap.sh (or make dev / make test)" >&2
  exit 1
}
exec worker-build --release
