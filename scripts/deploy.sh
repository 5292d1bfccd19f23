#!/usr/bin/env bash
# `make deploy`: the production deployment, checked before and after.
#   1. the pinned tools; 2. no placeholder left in [env.production] (scripts/predeploy-check.py);
#   3. logged in to Cloudflare; 4. every secret the worker needs is set on the deployed worker;
#   5. the D1 migrations, applied before the code that needs them; 6. `wrangler deploy`;
#   7. the deployed /health answers 200, else it stops and says how to roll back.
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

scripts/bootstrap.sh
. scripts/env.sh

say "checking [env.$ENV] of wrangler.toml"
python3 scripts/predeploy-check.py --env "$ENV" || die "fix the settings above, then run make deploy again"

say "checking the Cloudflare login"
whoami=$(wrangler whoami 2>&1 || true)
if grep -qi "not authenticated" <<<"$whoami"; then
  die "not logged in to Cloudflare: run \`npx wrangler login\` (or set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)"
fi

# The secrets are the names of .dev.vars.example: whoever adds a secret adds it there.
say "checking that every secret is set on the worker"
required=$(sed -n 's/^\([A-Z][A-Z0-9_]*\)=.*/\1/p' .dev.vars.example | sort -u)
present=$(wrangler secret list --env "$ENV" --format json 2>/dev/null |
  python3 -c 'import json,sys; print("\n".join(s["name"] for s in json.load(sys.stdin)))' 2>/dev/null || true)
missing=$(comm -23 <(printf '%s\n' "$required") <(printf '%s\n' "$present" | sort -u))
if [ -n "$missing" ]; then
  die "secrets not set on the $ENV worker (docs/operate/deploy.md says how to make them):
$(printf '  %s\n' $missing)
  set each with: npx wrangler secret put NAME --env $ENV"
fi

say "applying D1 migrations (remote) before the code that needs them"
wrangler d1 migrations apply DB --remote --env "$ENV"

say "deploying"
wrangler deploy --env "$ENV"

base=$(python3 - "$ENV" <<'EOF'
import sys, tomllib
env = sys.argv[1]
with open("wrangler.toml", "rb") as f:
    print(tomllib.load(f)["env"][env]["vars"]["PUBLIC_BASE_URL"].rstrip("/"))
EOF
)
health=$(mktemp)
trap 'rm -f "$health"' EXIT
say "checking $base/health"
# A new custom domain can take a minute or two to get its certificate.
status=""
for _ in $(seq 1 40); do
  status=$(curl -s -o "$health" -w '%{http_code}' --max-time 10 "$base/health" || true)
  [ "$status" = 200 ] && break
  sleep 5
done
if [ "$status" != 200 ]; then
  cat "$health" >&2 2>/dev/null || true
  die "the deployed worker answers /health with ${status:-nothing}. Fix what the checks above name
  (then run make deploy again), or go back to the previous version:
    npx wrangler deployments list --env $ENV
    npx wrangler rollback --env $ENV -m \"health check failed\""
fi
cat "$health" >&2
say "deployed and healthy: $base"
