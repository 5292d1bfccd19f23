#!/usr/bin/env python3
"""Writes the wrangler configuration `make dev` runs: the repository's wrangler.toml without its
[build] step (dev.sh builds once, before starting) and without its environments, with absolute
paths (the file lives under .wrangler/) and the local URLs of this run.

usage: dev-config.py OUT.json NAME=VALUE...   (each NAME=VALUE overrides a var)
"""

import json
import pathlib
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
