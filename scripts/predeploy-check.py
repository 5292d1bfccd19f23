#!/usr/bin/env python3
"""Refuses to deploy an environment of wrangler.toml that still carries example values.

usage: predeploy-check.py [--env production] [--config wrangler.toml]

Checks, for the environment (nothing is inherited from the top level for bindings and vars):
  - the KV namespace and D1 database ids are real ids, not the zeros of the example, and no
    two D1 bindings share a database;
  - LEDGER_SHARDS (default 1) is a shard count the worker takes (1 to 128), and each of the
    ledger's other databases it needs, DB_1 .. DB_{N-1}, is declared beside DB;
  - the rate limiter's namespace_id is set and is not the example's (Cloudflare has no command
    that creates one: it is a number the user picks, unique in the account);
  - the URLs (PSP_BASE_URL, PUBLIC_BASE_URL, ALLOWED_ORIGINS, MERCHANT_WEBHOOK_URL, routes) are
    https, on no reserved example host (*.invalid, *.example, example.com/.net/.org) and not on
    this machine (localhost, 127.0.0.1);
  - the provider's merchant and terminal ids are filled in, and are not the sandbox's;
  - TEST_CLOCK, DEMO and DASHBOARD_DEV_LOGIN are off, the demo storefront (public/) is not
    deployed, and PUBLIC_BASE_URL is served by one of the environment's routes or custom domains;
  - the dashboard's Cloudflare Access team domain and audience, when set, are not the example's,
    and DASHBOARD_ADMINS names no address on a reserved example domain.
Every problem is reported, by setting name, before it exits 1. Exit 0: nothing found.
Config values are not secrets (secrets never live in wrangler.toml), so they are shown.
"""

import argparse
import pathlib
import re
import sys
import tomllib
from urllib.parse import urlsplit

ROOT = pathlib.Path(__file__).resolve().parent.parent

RESERVED_DOMAINS = ("invalid", "example", "example.com", "example.net", "example.org")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]")
ID_PLACEHOLDER = re.compile(r"^(your[-_].*|<.*>|.*(changeme|change-me|replace[-_]me|placeholder).*)$", re.I)
KV_ID = re.compile(r"^[0-9a-f]{32}$")
D1_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
# The most databases the worker spreads its ledger over (MAX_SHARDS in crates/core/src/shards.rs).
MAX_LEDGER_SHARDS = 128
RATE_LIMIT_NAMESPACE = re.compile(r"^[1-9][0-9]*$")
# The namespace_id wrangler.toml ships with: an account that deploys it as is shares its counts
# with any other worker of the account that kept it too.
EXAMPLE_RATE_LIMIT_NAMESPACE = "1001"
REQUIRED_VARS = (
    "PSP_BASE_URL",
    "PSP_MERCHANT_ID",
    "PSP_PAGE_TERMINAL_ID",
    "PSP_MIT_TERMINAL_ID",
    "PUBLIC_BASE_URL",
    "ALLOWED_ORIGINS",
    "PLANS",
)
PROVIDER_IDS = ("PSP_MERCHANT_ID", "PSP_PAGE_TERMINAL_ID", "PSP_MIT_TERMINAL_ID")


def host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


def reserved(host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in RESERVED_DOMAINS)


def url_problem(url: str) -> str | None:
    """Why a URL cannot serve production, or None."""
    parts = urlsplit(url.strip())
    host = host_of(url)
    if parts.scheme != "https" or not host:
        return f"{url!r} is not an https URL"
    if reserved(host):
        return f"{url!r} is a placeholder (reserved example host)"
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return f"{url!r} points at this machine"
    return None


def zeros(value: str) -> bool:
    return bool(value) and set(value) <= {"0", "-"}


def check(config: dict, env_name: str) -> list[str]:
    problems: list[str] = []
    envs = config.get("env", {})
    if env_name not in envs:
        return [f"wrangler.toml has no [env.{env_name}]"]
    env = envs[env_name]
    where = f"[env.{env_name}]"
    top_vars = config.get("vars", {})

    account = env.get("account_id", config.get("account_id"))
    if account is not None and not ACCOUNT_ID.match(str(account)):
        problems.append(f"{where} account_id: {account!r} is not a Cloudflare account id (32 hex characters)")

    kv = env.get("kv_namespaces", [])
    if not any(n.get("binding") == "TOKENS" for n in kv):
        problems.append(f"{where} kv_namespaces: no TOKENS namespace")
    for namespace in kv:
        ns_id = str(namespace.get("id", ""))
        name = f"{where} kv_namespaces {namespace.get('binding', '?')} id"
        if zeros(ns_id) or ID_PLACEHOLDER.match(ns_id):
            problems.append(f"{name}: {ns_id!r} is the example's placeholder (`wrangler kv namespace create TOKENS` gives yours)")
        elif not KV_ID.match(ns_id):
            problems.append(f"{name}: {ns_id!r} is not a KV namespace id (32 hex characters)")

    dbs = env.get("d1_databases", [])
    variables = env.get("vars", {})
    if not any(d.get("binding") == "DB" for d in dbs):
        problems.append(f"{where} d1_databases: no DB database")
    bindings_of: dict[str, list[str]] = {}
    for db in dbs:
        db_id = str(db.get("database_id", ""))
        name = f"{where} d1_databases {db.get('binding', '?')} database_id"
        create = f"`wrangler d1 create {db.get('database_name', 'recurring-edge')}`"
        if zeros(db_id) or ID_PLACEHOLDER.match(db_id):
            problems.append(f"{name}: {db_id!r} is the example's placeholder ({create} gives yours)")
        elif not D1_ID.match(db_id):
            problems.append(f"{name}: {db_id!r} is not a D1 database id (a UUID)")
        else:
            bindings_of.setdefault(db_id, []).append(str(db.get("binding", "?")))
    # Two shards in one database would hold each other's customers, and moving a customer
    # from one to the other would delete what it just copied.
    for db_id, bindings in bindings_of.items():
        if len(bindings) > 1:
            problems.append(
                f"{where} d1_databases {', '.join(bindings)}: the same database {db_id!r} (each binding needs a database of its own)"
            )

    # The ledger's shards: DB, then DB_1 .. DB_{N-1}, each a database that `make deploy`
    # migrates. One not declared would only be noticed by the deployed worker.
    shards_value = str(variables.get("LEDGER_SHARDS", "1")).strip()
    if not re.fullmatch(r"[0-9]+", shards_value) or not 1 <= int(shards_value) <= MAX_LEDGER_SHARDS:
        problems.append(
            f"[env.{env_name}.vars] LEDGER_SHARDS: {shards_value!r} is not a shard count (an integer from 1 to {MAX_LEDGER_SHARDS})"
        )
    else:
        declared = {d.get("binding") for d in dbs}
        missing = [k for k in range(1, int(shards_value)) if f"DB_{k}" not in declared]
        if missing:
            problems.append(
                f"{where} d1_databases: LEDGER_SHARDS = {shards_value!r} needs the bindings "
                f"{', '.join(f'DB_{k}' for k in missing)}, not declared. Create each database ("
                + "; ".join(f"`npx wrangler d1 create recurring-edge-shard-{k}`" for k in missing)
                + f") and declare each as a [[env.{env_name}.d1_databases]] like DB's, with its binding, "
                "database_name and the database_id the command prints (docs/operate/deploy.md#shards)"
            )

    limiters = env.get("ratelimits", [])
    rate_limit_on = str(variables.get("RATE_LIMIT", "on")).strip().lower() != "off"
    if rate_limit_on and not any(r.get("name") == "PUBLIC_RATE_LIMITER" for r in limiters):
        problems.append(f"{where} ratelimits: no PUBLIC_RATE_LIMITER (or set RATE_LIMIT = \"off\")")
    for limiter in limiters:
        ns_id = str(limiter.get("namespace_id", "")).strip()
        name = f"{where} ratelimits {limiter.get('name', '?')} namespace_id"
        if not ns_id:
            problems.append(f"{name}: not set (a number of your choice, unique in your account)")
        elif ns_id == EXAMPLE_RATE_LIMIT_NAMESPACE:
            problems.append(f"{name}: {ns_id!r} is the example's (choose a number of your own, unique in your account)")
        elif not RATE_LIMIT_NAMESPACE.match(ns_id):
            problems.append(f"{name}: {ns_id!r} is not a rate limiter namespace id (a positive integer)")

    for name in REQUIRED_VARS:
        if not str(variables.get(name, "")).strip():
            problems.append(f"[env.{env_name}.vars] {name}: not set (vars are not inherited from [vars])")
    for name in ("PSP_BASE_URL", "PUBLIC_BASE_URL", "MERCHANT_WEBHOOK_URL"):
        value = str(variables.get(name, "")).strip()
        if value and (why := url_problem(value)):
            problems.append(f"[env.{env_name}.vars] {name}: {why}")
    for origin in str(variables.get("ALLOWED_ORIGINS", "")).split(","):
        if origin.strip() and (why := url_problem(origin)):
            problems.append(f"[env.{env_name}.vars] ALLOWED_ORIGINS: {why}")
    for name in PROVIDER_IDS:
        value = str(variables.get(name, "")).strip()
        if not value:
            continue
        if ID_PLACEHOLDER.match(value) or zeros(value):
            problems.append(f"[env.{env_name}.vars] {name}: {value!r} is a placeholder (Surfboard gives you yours)")
        elif value == str(top_vars.get(name, "")).strip():
            problems.append(f"[env.{env_name}.vars] {name}: {value!r} is the local sandbox's id, not yours")
    for name in ("TEST_CLOCK", "DEMO", "DASHBOARD_DEV_LOGIN"):
        value = str(variables.get(name, "off")).strip().lower()
        if value not in ("", "off"):
            problems.append(f"[env.{env_name}.vars] {name}: must be \"off\" in production (found {value!r})")
    team = str(variables.get("ACCESS_TEAM_DOMAIN", "")).strip()
    if team:
        if (why := url_problem(team)):
            problems.append(f"[env.{env_name}.vars] ACCESS_TEAM_DOMAIN: {why}")
        elif host_of(team).split(".")[0].lower().startswith("your-") or not host_of(team).endswith(".cloudflareaccess.com"):
            problems.append(f"[env.{env_name}.vars] ACCESS_TEAM_DOMAIN: {team!r} is not your team's <team>.cloudflareaccess.com")
    aud = str(variables.get("ACCESS_AUD", "")).strip()
    if aud and (ID_PLACEHOLDER.match(aud) or zeros(aud)):
        problems.append(f"[env.{env_name}.vars] ACCESS_AUD: {aud!r} is a placeholder (the Access application's audience tag)")
    if bool(team) != bool(aud):
        problems.append(f"[env.{env_name}.vars] ACCESS_TEAM_DOMAIN and ACCESS_AUD go together")
    for admin in str(variables.get("DASHBOARD_ADMINS", "")).split(","):
        domain = admin.strip().rsplit("@", 1)[-1].lower()
        if admin.strip() and reserved(domain):
            problems.append(f"[env.{env_name}.vars] DASHBOARD_ADMINS: {admin.strip()!r} is on a reserved example domain")

    assets = env.get("assets", config.get("assets"))
    top_assets = (config.get("assets") or {}).get("directory")
    if assets and "assets" not in env and top_assets:
        problems.append(f"{where} assets: inherits the demo storefront ({top_assets}/); name the environment's own [env.{env_name}.assets] directory")
    elif assets and top_assets and pathlib.PurePath(assets.get("directory", "")) == pathlib.PurePath(top_assets):
        problems.append(f"{where} assets: the demo storefront ({top_assets}/) must not be deployed")

    routes = list(env.get("routes", []))
    if "route" in env:
        routes.append(env["route"])
    served: list[str] = []
    for route in routes:
        pattern = route if isinstance(route, str) else str(route.get("pattern", ""))
        host = pattern.split("/", 1)[0].split(":", 1)[0].lstrip("*.").lower()
        served.append(host)
        if reserved(host):
            problems.append(f"{where} routes: {pattern!r} is a placeholder (reserved example host)")
    public_host = host_of(str(variables.get("PUBLIC_BASE_URL", "")))
    workers_dev = env.get("workers_dev", config.get("workers_dev", True))
    if public_host and not reserved(public_host):
        on_workers_dev = public_host.endswith(".workers.dev") and workers_dev
        if not on_workers_dev and public_host not in served:
            problems.append(
                f"[env.{env_name}.vars] PUBLIC_BASE_URL: its host {public_host!r} is not one of the environment's routes "
                f"or custom domains ({', '.join(served) or 'none'}): the provider's webhooks would not reach this worker"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="production")
    parser.add_argument("--config", default=str(ROOT / "wrangler.toml"))
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    problems = check(config, args.env)
    if problems:
        print(f"predeploy: [env.{args.env}] of {args.config} is not ready to deploy:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print("See the production checklist in docs/operate/deploy.md.", file=sys.stderr)
        return 1
    print(f"predeploy: [env.{args.env}] has no placeholder left", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
