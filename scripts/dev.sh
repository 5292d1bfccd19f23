#!/usr/bin/env bash
# `make dev`: the whole product on this machine. The PSP sandbox on :8790 and the worker
# (wrangler dev, local KV and D1) on :8787, the demo storefront at /.
#
# - Builds the worker once, and only when something that goes into it changed; wrangler then
#   runs a generated configuration without the [build] step (which stays in wrangler.toml for
#   `wrangler deploy`), so it neither builds again nor rebuilds on file changes.
# - Prints the URLs only once /health answers 200 (worker, bindings, schema and sandbox all up).
# - Fails at once, with the reason and a non-zero exit, when a port is taken or the sandbox or
#   the worker cannot start.
# - Ctrl-C, SIGTERM or SIGHUP (to this script or its process group) stops everything it started,
#   and what those started, at any moment, start-up included; it returns once their ports are free.
#
# Settings (environment): WORKER_PORT (8787), SANDBOX_PORT (8790), INSPECTOR_PORT (the DevTools
# port of the worker: 9229, or any free port when 9229 is taken), DEV_DIR (.wrangler: the local
# ledger, the sandbox's state file, logs and the generated configuration), DEV_SKIP_BUILD=1 (use
# what is built, install and build nothing: the test of this script, run beside other tests),
# PSP_SANDBOX_BIN (the sandbox binary to run: the release build by default),
# ALLOWED_ORIGINS (origins allowed besides the worker's own, comma-separated: a frontend's dev
# server, `make dev ALLOWED_ORIGINS=http://localhost:5173`), LEDGER_SHARDS (1: the D1 databases
# the ledger spreads over, 1 to 128; `make dev LEDGER_SHARDS=4` declares DB_1 .. DB_3 beside DB
# and migrates each; docs/design/sharding.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORKER_PORT=${WORKER_PORT:-8787}
SANDBOX_PORT=${SANDBOX_PORT:-8790}
DEV_DIR=${DEV_DIR:-.wrangler}
STATE="$DEV_DIR/state"
SANDBOX_STATE="$DEV_DIR/sandbox-state.json"
SANDBOX_LOG="$DEV_DIR/sandbox.log"
CONFIG="$DEV_DIR/dev/wrangler.json"
SANDBOX_BIN="${PSP_SANDBOX_BIN:-${CARGO_TARGET_DIR:-target}/release/psp-sandbox}"
# How long the worker may take to answer /health once started (a cold workerd on a busy
# 2-core machine takes a few seconds; a degraded answer is reported sooner).
HEALTH_DEADLINE_S=${HEALTH_DEADLINE_S:-90}

say() { printf 'dev: %s\n' "$*" >&2; }
die() {
  printf '\ndev: error: %s\n' "$*" >&2
  exit 1
}

# --- processes -------------------------------------------------------------------------------
# Everything long-running starts in a process group of its own (wrangler starts workerd, cargo
# starts rustc), so stopping a group stops all of it, whoever sent the signal.

groups=()
ports=() # the ports of what was started: free again before this script exits
spawn() { # spawn LOG|- COMMAND...: starts COMMAND in its own process group ("-": output to stderr)
  if [ "$1" = - ]; then exec 9>&2; else exec 9>>"$1"; fi
  shift
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" </dev/null >&9 2>&9 &
  else
    set -m
    "$@" </dev/null >&9 2>&9 &
    set +m
  fi
  spawned=$!
  exec 9>&-
  groups+=("$spawned")
}

forget() { # forget PID: a group that ended on its own
  local g kept=()
  for g in "${groups[@]}"; do [ "$g" = "$1" ] || kept+=("$g"); done
  groups=(${kept[@]+"${kept[@]}"})
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

who_listens() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null |
      sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -1
  elif command -v lsof >/dev/null 2>&1; then
    lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR==2 {print $1 " (pid " $2 ")"}'
  fi
}

# This script's own group (the terminal's foreground job, or make's): never signalled as a
# group, since that would stop this script before it finished stopping the rest.
self_group=$(ps -o pgid= -p $$ | tr -d ' ')

# "PID PGID" of every live process this run started: whatever is in a recorded group, and
# whatever descends from this script. The second catches what the first cannot: a child between
# fork and setsid (still in this script's group, and it may swallow a signal meant for the
# script), or one a signal interrupted before its group was recorded.
ours() {
  local listing
  # Left out: this script, the shell running this function (a subshell when called as
  # $(ours)), and ps itself (the subshell that printed its own pid first, then became ps).
  listing=$(echo "$BASHPID" && exec ps -A -o pid= -o ppid= -o pgid= -o stat=) || return 0
  awk -v root=$$ -v shell="$BASHPID" -v recorded=" ${groups[*]-} " '
    NR == 1 { helper = $1; next }
    { n++; pid[n] = $1; parent[n] = $2; pgid[n] = $3; stat[n] = $4 }
    END {
      mine[root] = 1
      do {
        more = 0
        for (i = 1; i <= n; i++)
          if (!(pid[i] in mine) && (parent[i] in mine)) { mine[pid[i]] = 1; more = 1 }
      } while (more)
      for (i = 1; i <= n; i++) {
        if (pid[i] == root || pid[i] == shell || pid[i] == helper || stat[i] ~ /^Z/) continue
        if ((pid[i] in mine) || index(recorded, " " pgid[i] " ")) print pid[i], pgid[i]
      }
    }' <<<"$listing"
}

stopped=""
stop_all() {
  [ -z "$stopped" ] || return 0
  stopped=1
  # A second Ctrl-C, a closed terminal or a closed pipe must not cut the stop short: what is
  # left unstopped would hold its port until killed by hand.
  trap '' INT TERM HUP PIPE
  set +e
  local found target signalled=" " since=$SECONDS port holder
  while found=$(ours) && [ -n "$found" ]; do
    if [ $((SECONDS - since)) -ge 30 ]; then
      say "these did not stop, even on SIGKILL: $(tr '\n' ' ' <<<"$found")"
      return 0
    fi
    # A group as a whole, so that what a process started goes with it; a process still in this
    # script's group alone. TERM once each, then after 5 s KILL whatever is left.
    for target in $(awk -v self="$self_group" '{ print ($2 == self ? $1 : "-" $2) }' <<<"$found" | sort -u); do
      if [ $((SECONDS - since)) -ge 5 ]; then
        kill -KILL -- "$target" 2>/dev/null
      elif [[ "$signalled" != *" $target "* ]]; then
        kill -TERM -- "$target" 2>/dev/null
        signalled+="$target "
      fi
    done
    sleep 0.1
  done
  groups=()
  wait 2>/dev/null
  # Sockets close as their processes exit, so this wait is short; a port still taken after it
  # is named, with whoever holds it.
  for port in ${ports[@]+"${ports[@]}"}; do
    for _ in $(seq 1 50); do
      port_taken "$port" || continue 2
      sleep 0.1
    done
    holder=$(who_listens "$port")
    say "port $port is still in use${holder:+ by $holder}"
  done
}

on_signal() {
  trap '' INT TERM HUP PIPE
  printf '\n' >&2 || true
  say "stopping (${1})" || true
  stop_all
  exit "$2"
}
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGHUP 129' HUP
trap stop_all EXIT

# Runs a step in the foreground as far as the user sees, but in its own process group and
# waited for with `wait`, which a signal interrupts at once.
step() {
  spawn - "$@"
  local pid=$spawned status=0
  wait "$pid" || status=$?
  forget "$pid"
  return "$status"
}

# --- checks before starting anything ---------------------------------------------------------

check_port() { # check_port PORT VARIABLE WHAT
  local holder
  if port_taken "$1"; then
    holder=$(who_listens "$1" || true)
    die "port $1 ($3) is already in use${holder:+ by $holder}.
  Stop that process, or choose another port: $2=<port> make dev"
  fi
}

for pair in "WORKER_PORT:$WORKER_PORT" "SANDBOX_PORT:$SANDBOX_PORT"; do
  value=${pair#*:}
  [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge 1 ] && [ "$value" -le 65535 ] ||
    die "${pair%%:*} must be a port number (1-65535), not '$value'"
done
[ "$WORKER_PORT" != "$SANDBOX_PORT" ] || die "WORKER_PORT and SANDBOX_PORT must differ"

# The worker's own origins, and any the developer adds (a frontend's dev server). Checked here:
# the worker would only report a bad one as a degraded /health, after everything started.
origins="http://127.0.0.1:$WORKER_PORT,http://localhost:$WORKER_PORT"
IFS=', ' read -ra extra_origins <<<"${ALLOWED_ORIGINS:-}"
for origin in ${extra_origins[@]+"${extra_origins[@]}"}; do
  origin=${origin%/}
  [ -n "$origin" ] || continue
  [[ "$origin" =~ ^https?://[^/?#@[:space:]]+$ ]] ||
    die "ALLOWED_ORIGINS: '$origin' is not an origin (scheme://host[:port]), e.g. make dev ALLOWED_ORIGINS=http://localhost:5173"
  [[ ",$origins," == *",$origin,"* ]] || origins+=",$origin"
done

# Checked here for the same reason: the worker would refuse it only once started.
if [ -n "${LEDGER_SHARDS:-}" ]; then
  [[ "$LEDGER_SHARDS" =~ ^[0-9]{1,4}$ ]] && [ "$((10#$LEDGER_SHARDS))" -ge 1 ] && [ "$((10#$LEDGER_SHARDS))" -le 128 ] ||
    die "LEDGER_SHARDS must be an integer from 1 to 128 (the ledger's D1 databases), not '$LEDGER_SHARDS', e.g. make dev LEDGER_SHARDS=4"
fi

check_port "$SANDBOX_PORT" SANDBOX_PORT "the PSP sandbox"
check_port "$WORKER_PORT" WORKER_PORT "the worker"
command -v python3 >/dev/null 2>&1 || die "python3 (3.11 or newer) is required"
python3 -c 'import tomllib' 2>/dev/null || die "python3 3.11 or newer is required (it reads wrangler.toml)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# workerd does not survive a taken DevTools port, and another wrangler dev (another checkout, a
# test) may hold 9229: a port asked for must be free, the default gives way.
if [ -n "${INSPECTOR_PORT:-}" ]; then
  check_port "$INSPECTOR_PORT" INSPECTOR_PORT "the worker's DevTools inspector"
elif port_taken 9229; then
  INSPECTOR_PORT=$(free_port)
else
  INSPECTOR_PORT=9229
fi

# --- build -----------------------------------------------------------------------------------

started_at=$(date +%s)
if [ "${DEV_SKIP_BUILD:-}" = 1 ]; then
  . scripts/env.sh
  for built in build/worker/shim.mjs "$SANDBOX_BIN" node_modules/.bin/wrangler; do
    [ -e "$built" ] || die "DEV_SKIP_BUILD=1 but $built is missing: run make dev (or make build) once"
  done
else
  step scripts/bootstrap.sh || die "the tools could not be installed (see above)"
  . scripts/env.sh
  say "building the worker (skipped when nothing changed) and the PSP sandbox"
  step bash scripts/build-worker.sh || die "the worker did not build (see above)"
  step cargo build --release --locked -p psp-sandbox || die "the PSP sandbox did not build (see above)"
fi

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  say "created .dev.vars from .dev.vars.example (local secrets matching the sandbox)"
else
  # A .dev.vars from before a secret was added gets the example's value for it.
  while IFS= read -r line; do
    name=${line%%=*}
    if ! grep -q "^$name=" .dev.vars; then
      printf '%s\n' "$line" >>.dev.vars
      say "added $name to .dev.vars from .dev.vars.example"
    fi
  done < <(grep -E '^[A-Z_]+=' .dev.vars.example)
fi

mkdir -p "$DEV_DIR/dev" "$STATE"
base="http://127.0.0.1:$WORKER_PORT"
sandbox_url="http://127.0.0.1:$SANDBOX_PORT"
python3 scripts/dev-config.py "$CONFIG" \
  "PSP_BASE_URL=$sandbox_url" "PUBLIC_BASE_URL=$base" \
  "ALLOWED_ORIGINS=$origins" ${LEDGER_SHARDS:+"LEDGER_SHARDS=$((10#$LEDGER_SHARDS))"} ||
  die "the wrangler configuration could not be generated (see above)"
# wrangler reads .dev.vars next to its configuration.
ln -sfn "$ROOT/.dev.vars" "$DEV_DIR/dev/.dev.vars"

# Every database of the ledger (DB, and DB_1 .. with LEDGER_SHARDS above 1), as the generated
# configuration declares them: each starts empty and needs the whole schema.
ledger=$(python3 -c '
import json, re, sys
for db in json.load(open(sys.argv[1])).get("d1_databases", []):
    if re.fullmatch(r"DB(_[0-9]+)?", db.get("binding", "")):
        print(db["binding"])' "$CONFIG") || die "cannot read $CONFIG"
shards=$(wc -w <<<"$ledger")
for binding in $ledger; do
  if [ "$shards" -gt 1 ]; then
    say "applying D1 migrations to the local ledger: $binding (one of $shards shards)"
  else
    say "applying D1 migrations to the local ledger"
  fi
  step wrangler d1 migrations apply "$binding" --local --config "$CONFIG" --persist-to "$STATE" ||
    die "the D1 migrations could not be applied to $binding (see above)"
done

# --- start -----------------------------------------------------------------------------------

# The ports may have been taken while building.
check_port "$SANDBOX_PORT" SANDBOX_PORT "the PSP sandbox"
check_port "$WORKER_PORT" WORKER_PORT "the worker"
check_port "$INSPECTOR_PORT" INSPECTOR_PORT "the worker's DevTools inspector"

: >"$SANDBOX_LOG"
# The sandbox keeps its orders and tokens across restarts, matching the persisted ledger.
ports+=("$SANDBOX_PORT")
spawn "$SANDBOX_LOG" "$SANDBOX_BIN" --port "$SANDBOX_PORT" --state "$SANDBOX_STATE"
sandbox_pid=$spawned
deadline=$(($(date +%s) + 15))
until grep -q "psp-sandbox listening on" "$SANDBOX_LOG" 2>/dev/null; do
  if ! kill -0 "$sandbox_pid" 2>/dev/null; then
    die "the PSP sandbox did not start:
$(tail -n 5 "$SANDBOX_LOG" | sed 's/^/  /')
  (full log: $SANDBOX_LOG)"
  fi
  [ "$(date +%s)" -lt "$deadline" ] || die "the PSP sandbox did not announce itself within 15 s (log: $SANDBOX_LOG)"
  sleep 0.1
done

say "starting the worker (wrangler dev); its log follows"
ports+=("$WORKER_PORT" "$INSPECTOR_PORT")
spawn - wrangler dev --config "$CONFIG" --local --ip 127.0.0.1 --port "$WORKER_PORT" \
  --inspector-port "$INSPECTOR_PORT" --persist-to "$STATE" --test-scheduled \
  --show-interactive-dev-session=false
wrangler_pid=$spawned

health=""
code=""
deadline=$(($(date +%s) + HEALTH_DEADLINE_S))
degraded_since=""
while :; do
  kill -0 "$sandbox_pid" 2>/dev/null ||
    die "the PSP sandbox stopped:
$(tail -n 5 "$SANDBOX_LOG" | sed 's/^/  /')"
  kill -0 "$wrangler_pid" 2>/dev/null ||
    die "the worker (wrangler dev) stopped before /health answered; its output is above"
  code=$(curl -s -o "$DEV_DIR/dev/health.json" -w '%{http_code}' --max-time 5 "$base/health" 2>/dev/null || true)
  [ "$code" = 200 ] && break
  if [ "$code" = 503 ]; then
    # Up but degraded: give it a few seconds (bindings warm up), then say what is wrong.
    degraded_since=${degraded_since:-$(date +%s)}
    if [ $(($(date +%s) - degraded_since)) -ge 10 ]; then
      health=$(cat "$DEV_DIR/dev/health.json" 2>/dev/null || true)
      die "the worker answers /health with 503 (degraded): $health"
    fi
  fi
  [ "$(date +%s)" -lt "$deadline" ] ||
    die "the worker did not answer /health within ${HEALTH_DEADLINE_S} s (last answer: ${code:-none})"
  sleep 0.2
done

cat >&2 <<EOT

  Ready in $(($(date +%s) - started_at)) s.

  Storefront (demo)   $base/
  Health              $base/health
  API                 $base/v1/...   (merchant key: MERCHANT_API_KEY in .dev.vars; customer
                      sessions: POST /v1/customer-sessions with it)
  PSP sandbox         $sandbox_url   (ledger: /_sandbox/ledger, log: $SANDBOX_LOG)
  DevTools            127.0.0.1:$INSPECTOR_PORT (chrome://inspect)
  Run the cron now    curl "$base/__scheduled?cron=*+*+*+*+*"
  Move time forward   curl -X POST $base/v1/test-clock/tick -H 'Authorization: Bearer dev-merchant-key' \\
                        -H 'Content-Type: application/json' -d '{"now":"2027-01-01T00:00:00Z"}'

  Ctrl-C stops everything. After changing src/ or crates/, run make dev again (it rebuilds what changed).

EOT

# Until a signal comes, or one of the two stops on its own (then everything stops).
while kill -0 "$sandbox_pid" 2>/dev/null && kill -0 "$wrangler_pid" 2>/dev/null; do
  sleep 1 &
  napper=$!
  wait "$napper" || true
done
if ! kill -0 "$sandbox_pid" 2>/dev/null; then
  die "the PSP sandbox stopped; stopping the worker too:
$(tail -n 5 "$SANDBOX_LOG" | sed 's/^/  /')"
fi
die "the worker (wrangler dev) stopped; stopping the sandbox too"
