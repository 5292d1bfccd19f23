#!/usr/bin/env python3
"""What `make deploy` and `make rollback` read from wrangler.toml, and from wrangler's answers.

usage: deploy-resources.py [--env production] COMMAND [FILE...]
  check-ids D1_JSON KV_JSON   the D1 database and KV namespace ids of the environment are in the
                              account (`wrangler d1 list --json`, `wrangler kv namespace list`);
                              exit 1 naming each missing one and the command that creates it
  missing-queues LIST         the environment's queues (producers, consumers, dead-letter queues)
                              that `wrangler queues list`'s table does not show, one a line
  missing-buckets LIST        the environment's R2 buckets that `wrangler r2 bucket list` does not
                              show, one a line
  missing-secrets LIST_JSON   the secrets the worker needs that `wrangler secret list` does not
                              show, one a line
  ledger-bindings             the ledger's D1 bindings, one a line: DB, then DB_1 .. DB_{N-1}
                              for LEDGER_SHARDS = N (default 1); exit 2 when one is not declared
  base-url                    PUBLIC_BASE_URL, without its trailing slash
The files are wrangler's output as it printed it; a file it cannot read is an error (exit 2),
never taken for an empty account.
"""

import argparse
import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# wrangler colours its tables when it thinks a terminal reads them.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fail(message: str) -> int:
    print(f"deploy: error: {message}", file=sys.stderr)
    return 2


def read_json_list(path: str, what: str) -> list[dict]:
    text = pathlib.Path(path).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"could not read `{what}`'s answer as JSON ({e}):\n{text}") from None
    if not isinstance(value, list):
        raise ValueError(f"`{what}` did not answer a JSON list:\n{text}")
    return value


def check_ids(env: dict, env_name: str, d1_path: str, kv_path: str) -> int:
    databases = {str(d.get("uuid")) for d in read_json_list(d1_path, "wrangler d1 list --json")}
    namespaces = {str(n.get("id")) for n in read_json_list(kv_path, "wrangler kv namespace list")}
    problems = []
    for db in env.get("d1_databases", []):
        db_id, binding = str(db.get("database_id")), db.get("binding")
        if db_id not in databases:
            problems.append(
                f"the D1 database {db_id!r} ([env.{env_name}] d1_databases {binding}) is not in the "
                f"account: `npx wrangler d1 create {db.get('database_name', 'recurring-edge')}` "
                "creates one; put its id in database_id"
            )
    for ns in env.get("kv_namespaces", []):
        ns_id, binding = str(ns.get("id")), ns.get("binding")
        if ns_id not in namespaces:
            problems.append(
                f"the KV namespace {ns_id!r} ([env.{env_name}] kv_namespaces {binding}) is not in the "
                f"account: `npx wrangler kv namespace create {binding}` creates one; put its id in id"
            )
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 1 if problems else 0


def queues(env: dict) -> list[str]:
    """The environment's queue names, each once, in the order wrangler.toml gives them."""
    section = env.get("queues", {})
    names = []
    for consumer in section.get("consumers", []):
        names += [consumer.get("queue"), consumer.get("dead_letter_queue")]
    names += [p.get("queue") for p in section.get("producers", [])]
    return list(dict.fromkeys(n for n in names if n))


def listed_queues(text: str) -> set[str]:
    """The names in `wrangler queues list`'s table (a box of │-separated cells, a header first)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in ANSI.sub("", text).splitlines()
        if line.strip().startswith("│")
    ]
    if not rows:
        return set()
    if "name" not in rows[0]:
        raise ValueError(f"`wrangler queues list` answered a table without a name column:\n{text}")
    column = rows[0].index("name")
    return {row[column] for row in rows[1:] if len(row) > column}


def buckets(env: dict) -> list[str]:
    """The environment's R2 bucket names, each once."""
    return list(dict.fromkeys(b.get("bucket_name") for b in env.get("r2_buckets", []) if b.get("bucket_name")))


def listed_buckets(text: str) -> set[str]:
    """The names `wrangler r2 bucket list` prints (a `name:` line a bucket)."""
    return {
        m.group(1)
        for m in re.finditer(r"^\s*name:\s*(\S+)\s*$", ANSI.sub("", text), re.M)
    }


def required_secrets(env: dict) -> list[str]:
    """The names of .dev.vars.example (whoever adds a secret adds it there), and the webhook's."""
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".dev.vars.example").read_text(), re.M)
    if str(env.get("vars", {}).get("MERCHANT_WEBHOOK_URL", "")).strip():
        names.append("MERCHANT_WEBHOOK_SECRET")
    return list(dict.fromkeys(names))


def ledger_bindings(env: dict, env_name: str) -> list[str]:
    """DB and its shards DB_1 .. DB_{N-1}, each declared (predeploy-check.py says how to add one)."""
    value = str(env.get("vars", {}).get("LEDGER_SHARDS", "1")).strip()
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise ValueError(f"[env.{env_name}.vars] LEDGER_SHARDS: {value!r} is not a shard count")
    bindings = ["DB"] + [f"DB_{k}" for k in range(1, int(value))]
    declared = {d.get("binding") for d in env.get("d1_databases", [])}
    missing = [b for b in bindings if b not in declared]
    if missing:
        raise ValueError(f"[env.{env_name}] d1_databases: {', '.join(missing)} not declared (LEDGER_SHARDS = {value!r})")
    return bindings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="production")
    parser.add_argument(
        "command", choices=("check-ids", "missing-queues", "missing-buckets", "missing-secrets", "ledger-bindings", "base-url")
    )
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    with open(ROOT / "wrangler.toml", "rb") as f:
        env = tomllib.load(f).get("env", {}).get(args.env)
    if env is None:
        return fail(f"wrangler.toml has no [env.{args.env}]")
    try:
        if args.command == "check-ids":
            return check_ids(env, args.env, *args.files)
        if args.command == "missing-queues":
            shown = listed_queues(pathlib.Path(args.files[0]).read_text())
            print("\n".join(q for q in queues(env) if q not in shown))
        elif args.command == "missing-buckets":
            shown = listed_buckets(pathlib.Path(args.files[0]).read_text())
            print("\n".join(b for b in buckets(env) if b not in shown))
        elif args.command == "missing-secrets":
            shown = {str(s.get("name")) for s in read_json_list(args.files[0], "wrangler secret list")}
            print("\n".join(s for s in required_secrets(env) if s not in shown))
        elif args.command == "ledger-bindings":
            print("\n".join(ledger_bindings(env, args.env)))
        else:
            print(str(env.get("vars", {}).get("PUBLIC_BASE_URL", "")).rstrip("/"))
    except ValueError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
