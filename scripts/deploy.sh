#!/usr/bin/env bash
# `make deploy`: the production deployment. Nothing on Cloudflare changes before every check passed:
#   1. the pinned tools; 2. no placeholder left in [env.production], the rate limiter's
#      namespace_id included (scripts/predeploy-check.py: Cloudflare has no command that makes one),
#      and a D1 binding declared for each shard of the ledger LEDGER_SHARDS asks for (DB_1 ..);
#   3. the D1 databases and the KV namespace named there are in the account (their ids are the
#      user's to write: nothing here edits wrangler.toml); which queues and R2 buckets are missing;
#   4. every secret the worker needs is set; 5. the bundle builds (`wrangler deploy --dry-run`).
# Then the changes, each only once the one before it succeeded:
#   6. the missing queues and buckets are created; 7. the D1 migrations, applied to each database of
#      the ledger (DB, DB_1 ..) before the code that needs them; 8. `wrangler deploy`; 9. the deployed
#      /health answers 200, else `make rollback`.
# wrangler's own error output always reaches the terminal: when a call fails (no network, a
# refused token, a missing permission), its message is the diagnosis, and the deployment stops.
# DEPLOY_ENV picks another environment of wrangler.toml (default: production).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ENV=${DEPLOY_ENV:-production}
say() { printf '\ndeploy: %s\n' "$*" >&2; }
die() {
  printf '\ndeploy: error: %s\n' "$*" >&2
  exit 1
}
wr() { wrangler "$@" || die "\`wrangler $*\` failed (its message is above); nothing after it was done"; }
resources() { python3 scripts/deploy-resources.py --env "$ENV" "$@"; }

scripts/bootstrap.sh
. scripts/env.sh

answers=$(mktemp -d)
trap 'rm -rf "$answers"' EXIT

say "checking [env.$ENV] of wrangler.toml"
python3 scripts/predeploy-check.py --env "$ENV" || die "fix the settings above, then run make deploy again"
# The ledger's databases (DB, and DB_1 .. with LEDGER_SHARDS above 1): each is migrated below.
ledger=$(resources ledger-bindings) || die "fix the settings above, then run make deploy again"

say "checking that the D1 databases and the KV namespace of [env.$ENV] are in the Cloudflare account"
wr d1 list --json --env "$ENV" >"$answers/d1.json"
wr kv namespace list --env "$ENV" >"$answers/kv.json"
resources check-ids "$answers/d1.json" "$answers/kv.json" ||
  die "nothing was changed: fix what is named above, then run make deploy again"

say "checking the queues"
# One page: the queues API answers an account's queues at once.
wr queues list --env "$ENV" >"$answers/queues.txt"
missing_queues=$(resources missing-queues "$answers/queues.txt")

say "checking the R2 buckets"
wr r2 bucket list >"$answers/buckets.txt"
missing_buckets=$(resources missing-buckets "$answers/buckets.txt")

say "checking that every secret is set on the worker"
wr secret list --env "$ENV" --format json >"$answers/secrets.json"
missing_secrets=$(resources missing-secrets "$answers/secrets.json")
if [ -n "$missing_secrets" ]; then
  die "nothing was changed: secrets not set on the $ENV worker (docs/operate/deploy.md says how to make them):
$(printf '  %s\n' $missing_secrets)
  set each with: npx wrangler secret put NAME --env $ENV"
fi

say "building the bundle (wrangler deploy --dry-run)"
wr deploy --dry-run --env "$ENV"

if [ -n "$missing_queues" ]; then
  for queue in $missing_queues; do
    say "creating the queue $queue (wrangler queues list does not show it)"
    # Its output is a binding snippet that wrangler.toml already has.
    wr queues create "$queue" --env "$ENV" >/dev/null
  done
  say "created the queues: ${missing_queues//$'\n'/, }"
else
  say "every queue is there"
fi

if [ -n "$missing_buckets" ]; then
  for bucket in $missing_buckets; do
    say "creating the R2 bucket $bucket (wrangler r2 bucket list does not show it)"
    wr r2 bucket create "$bucket" >/dev/null
  done
  say "created the buckets: ${missing_buckets//$'\n'/, }"
else
  say "every bucket is there"
fi

for binding in $ledger; do
  say "applying the D1 migrations to $binding (remote), before the code that needs them"
  wr d1 migrations apply "$binding" --remote --env "$ENV"
done

say "deploying"
wr deploy --env "$ENV"

scripts/health-check.sh "$ENV" ||
  die "the deployed worker is not healthy. Fix what /health names (then run make deploy again), or go
  back to the previous version: make rollback (the migrations just applied stay; the previous
  version works on them)"
say "deployed and healthy: $(resources base-url)"
