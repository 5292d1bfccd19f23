#!/usr/bin/env bash
# After `make deploy` and `make rollback`: waits for the deployed worker's /health (on
# [env.ENV]'s PUBLIC_BASE_URL) to answer 200, and shows its answer. Exit 1 if it never does.
# usage: scripts/health-check.sh [ENV]   (default: production)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ENV=${1:-production}
base=$(python3 scripts/deploy-resources.py --env "$ENV" base-url)
if [ -z "$base" ]; then
  printf 'health: [env.%s] has no PUBLIC_BASE_URL to check\n' "$ENV" >&2
  exit 1
fi
body=$(mktemp)
trap 'rm -f "$body"' EXIT

printf '\nhealth: checking %s/health\n' "$base" >&2
# A new custom domain can take a minute or two to get its certificate.
status=""
for _ in $(seq 1 40); do
  status=$(curl -s -o "$body" -w '%{http_code}' --max-time 10 "$base/health" || true)
  [ "$status" = 200 ] && break
  sleep 5
done
cat "$body" >&2 2>/dev/null || true
printf '\n' >&2
if [ "$status" != 200 ]; then
  printf 'health: %s/health answers %s\n' "$base" "${status:-nothing}" >&2
  exit 1
fi
