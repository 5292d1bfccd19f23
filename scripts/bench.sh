#!/usr/bin/env bash
# `make bench`: builds the release worker and sandbox, prints the wasm size, then measures
# renewals fanned out over the charges queue against plain create → pay → poll loops, at 0, 50
# and 150 ms of provider latency (1,000 renewals per latency; pass another count, and
# BENCH_LATENCIES_MS=50 to measure one latency only; BENCH_WEBHOOK_CONCURRENCY and
# BENCH_WEBHOOK_DROP for how the provider sends its webhooks), then the same renewals at 50 ms
# with the ledger in BENCH_SHARDED_SHARDS (4) D1 databases, showing each one's share of the
# statements (0 skips it), then what a renewal leaves in the ledger once retention has run
# (examples/storage.rs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
. scripts/env.sh
bash scripts/build-worker.sh >/dev/null
cargo build --release --locked -p psp-sandbox
# Local D1 flushes every transaction to disk; on a tmpfs the figures describe the worker rather
# than this machine's disk.
if [ -d /dev/shm ]; then
  export E2E_DIR=/dev/shm/recurring-edge-bench
fi
rm -rf "${E2E_DIR:-${CARGO_TARGET_DIR:-target}/e2e}"
raw=$(stat -c %s build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
printf 'worker wasm (release): %s bytes raw, %s bytes gzip -9\n' "$raw" "$gz"
cargo run --release --locked --example bench -- "${1:-1000}"
# The same renewals with the ledger spread over several databases (LEDGER_SHARDS).
if [ "${BENCH_SHARDED_SHARDS:-4}" != 0 ]; then
  rm -rf "${E2E_DIR:-${CARGO_TARGET_DIR:-target}/e2e}"
  BENCH_LEDGER_SHARDS="${BENCH_SHARDED_SHARDS:-4}" BENCH_LATENCIES_MS=50 \
    cargo run --release --locked --example bench -- "${1:-1000}"
fi
# What a renewal leaves in the ledger once retention has run, and what that means for one D1
# database (BENCH_STORAGE_CUSTOMERS monthly subscriptions through a year; 0 skips it).
if [ "${BENCH_STORAGE_CUSTOMERS:-40}" != 0 ]; then
  rm -rf "${E2E_DIR:-${CARGO_TARGET_DIR:-target}/e2e}"
  cargo run --release --locked --example storage -- "${BENCH_STORAGE_CUSTOMERS:-40}"
fi
