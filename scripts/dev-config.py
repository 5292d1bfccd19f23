#!/usr/bin/env python3
"""Writes the wrangler configuration `make dev` runs: the repository's wrangler.toml without its
[build] step (dev.sh builds once, before starting) and without its environments, with absolute
paths (the file lives under .wrangler/) and the local URLs of this run.

With LEDGER_SHARDS=N (an override, or [vars] of wrangler.toml) above 1, the ledger's other
databases are declared too: DB_1 .. DB_{N-1}, each a copy of DB's entry with its own name and
local id, so each gets a local database of its own (dev.sh migrates every one).

usage: dev-config.py OUT.json NAME=VALUE...   (each NAME=VALUE overrides a var)
"""

import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The worker refuses any other count (MAX_SHARDS in crates/core/src/shards.rs).
MAX_SHARDS = 128


def ledger_shards(value: object) -> int | None:
    """The shard count LEDGER_SHARDS gives, or None when it is not an integer 1..=MAX_SHARDS."""
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= MAX_SHARDS:
        return None
    return int(text)


def shard_database(db: dict, k: int) -> dict:
    """Shard k's entry: DB's, under its own binding, name and id. Locally the id only has to be
    distinct: it names the database's file in the local state."""
    return {
        **db,
        "binding": f"DB_{k}",
        "database_name": f"recurring-edge-shard-{k}",
        "database_id": f"00000000-0000-0000-0000-{k:012x}",
    }


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    with open(ROOT / "wrangler.toml", "rb") as f:
        config = tomllib.load(f)
    # Built once by dev.sh; with [build] wrangler would build again and rebuild on every change.
    config.pop("build", None)
    config.pop("env", None)
    config["main"] = str(ROOT / config["main"])
    if "assets" in config:
        config["assets"]["directory"] = str(ROOT / config["assets"]["directory"])
    for db in config.get("d1_databases", []):
        db["migrations_dir"] = str(ROOT / db.get("migrations_dir", "migrations"))
    variables = config.setdefault("vars", {})
    for pair in sys.argv[2:]:
        name, sep, value = pair.partition("=")
        if not sep:
            print(f"dev-config: expected NAME=VALUE, got {pair!r}", file=sys.stderr)
            return 2
        variables[name] = value
    shards = ledger_shards(variables.get("LEDGER_SHARDS", "1"))
    if shards is None:
        print(
            f"dev-config: LEDGER_SHARDS must be an integer from 1 to {MAX_SHARDS}, "
            f"not {variables['LEDGER_SHARDS']!r}",
            file=sys.stderr,
        )
        return 2
    databases = config.setdefault("d1_databases", [])
    main_db = next((db for db in databases if db.get("binding") == "DB"), None)
    if shards > 1 and main_db is None:
        print("dev-config: LEDGER_SHARDS needs the DB database in wrangler.toml", file=sys.stderr)
        return 2
    # A binding already declared (by hand, in wrangler.toml) is kept as it is.
    declared = {db.get("binding") for db in databases}
    for k in range(1, shards):
        if f"DB_{k}" not in declared:
            databases.append(shard_database(main_db, k))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
