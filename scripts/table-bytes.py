#!/usr/bin/env python3
"""The bytes each table of a SQLite database holds, its indexes counted with it.

usage: table-bytes.py DATABASE_FILE

Prints JSON: {"file": bytes of the file, "tables": {name: {"rows", "payload", "pages"}}}, where
payload is the bytes of the rows and index entries themselves (SQLite's dbstat) and pages the
bytes of the pages they occupy (payload, headers and free space on those pages).
"""

import json
import os
import sqlite3
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    owner = {
        name: (table or name)
        for name, table in db.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")
    }
    tables: dict[str, dict[str, int]] = {}
    for name, payload, pages in db.execute("SELECT name, SUM(payload), SUM(pgsize) FROM dbstat GROUP BY name"):
        t = tables.setdefault(owner.get(name, name), {"rows": 0, "payload": 0, "pages": 0})
        t["payload"] += payload or 0
        t["pages"] += pages or 0
    for name in list(tables):
        if name.startswith("sqlite_") or name == "_cf_METADATA":
            continue
        try:
            tables[name]["rows"] = db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
        except sqlite3.Error:
            pass
    print(json.dumps({"file": os.path.getsize(path), "tables": tables}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
