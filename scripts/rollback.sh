#!/usr/bin/env bash
# `make rollback [VERSION=<id>]`: the production worker's previous version (or the version named;
# `npx wrangler deployments list --env production` lists them) serves again, then /health is
# checked. What a rollback cannot undo is said before wrangler asks to go on.
# DEPLOY_ENV picks another environment of wrangler.toml (default: production).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ENV=${DEPLOY_ENV:-production}
VERSION=${1:-}
say() { printf '\nrollback: %s\n' "$*" >&2; }
die() {
  printf '\nrollback: error: %s\n' "$*" >&2
  exit 1
}

scripts/bootstrap.sh
. scripts/env.sh

cat >&2 <<EOF

rollback: ${VERSION:-the previous version} serves again: its code, vars and bindings, and the
secrets it was deployed with. A rollback cannot undo:
  - the D1 migrations applied since: the schema stays. Migrations only add (tables, columns,
    indexes), so the earlier version works on the newer schema.
  - the KV vault's contents: card tokens stored since stay.
  - a secret changed since that version: the version runs with its own, older value (wrangler
    names such secrets and asks first). If the new value must stay, put it again afterwards:
    npx wrangler secret put NAME --env $ENV
EOF

wrangler rollback ${VERSION:+"$VERSION"} --env "$ENV" -m "make rollback${VERSION:+ to $VERSION}" ||
  die "\`wrangler rollback\` failed: its message is above"

scripts/health-check.sh "$ENV" ||
  die "the worker is not healthy after the rollback: /health above names what fails"
say "the worker answers /health with 200 (wrangler above names the version that serves)"
