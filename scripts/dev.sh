#!/usr/bin/env bash
# `make dev`: the whole product on this machine. The worker (wrangler dev, local KV and D1 under
# .wrangler/state) on :8787, the PSP sandbox on :8790, the demo storefront at /. Ctrl-C stops both.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORKER_PORT=${WORKER_PORT:-8787}
SANDBOX_PORT=${SANDBOX_PORT:-8790}
STATE=.wrangler/state

scripts/bootstrap.sh
. scripts/env.sh

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "dev: created .dev.vars from .dev.vars.example (local secrets matching the sandbox)" >&2
else
  # A .dev.vars from before a secret was added gets the example's value for it.
  while IFS= read -r line; do
    name=${line%%=*}
    if ! grep -q "^$name=" .dev.vars; then
      printf '%s\n' "$line" >>.dev.vars
      echo "dev: added $name to .dev.vars from .dev.vars.example" >&2
    fi
  done < <(grep -E '^[A-Z_]+=' .dev.vars.example)
fi

echo "dev: building the worker and the PSP sandbox" >&2
bash scripts/build-worker.sh >&2
cargo build --release --locked -p psp-sandbox >&2

echo "dev: applying D1 migrations to the local ledger" >&2
wrangler d1 migrations apply DB --local --persist-to "$STATE" >&2

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p .wrangler
# The sandbox keeps its orders and tokens across restarts, matching the persisted ledger.
setsid target/release/psp-sandbox --port "$SANDBOX_PORT" --state .wrangler/sandbox-state.json \
  > .wrangler/sandbox.log 2>&1 &
pids+=($!)

base="http://127.0.0.1:$WORKER_PORT"
setsid wrangler dev --local --ip 127.0.0.1 --port "$WORKER_PORT" --persist-to "$STATE" \
  --test-scheduled \
  --var "PSP_BASE_URL:http://127.0.0.1:$SANDBOX_PORT" --var "PUBLIC_BASE_URL:$base" \
  --var "ALLOWED_ORIGINS:$base,http://localhost:$WORKER_PORT" &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  sleep 0.5
done

cat <<EOT

  Storefront (demo)   $base/
  Health              $base/health
  API                 $base/v1/...   (merchant key: MERCHANT_API_KEY in .dev.vars; customer
                      sessions: POST /v1/customer-sessions with it)
  PSP sandbox         http://127.0.0.1:$SANDBOX_PORT   (ledger: /_sandbox/ledger, log: .wrangler/sandbox.log)
  Run the cron now    curl "$base/__scheduled?cron=*+*+*+*+*"
  Move time forward   curl -X POST $base/v1/test-clock/tick -H 'Authorization: Bearer dev-merchant-key' \\
                        -H 'Content-Type: application/json' -d '{"now":"2027-01-01T00:00:00Z"}'

  Ctrl-C stops everything.
EOT
wait
