#!/usr/bin/env python3
"""py_sqlite.py - E2 of pipeline_bench.sh in plain Python.

    python3 bench/py_sqlite.py DB [TABLE] <events.jsonl

Creates TABLE (default "events") with columns id, url, status, country in the
SQLite database DB and inserts one row per JSONL record (country = user.country)
with json.loads and one executemany in a single transaction. Pragmas as for the
sqlite3 .import row: journal_mode=WAL, synchronous=NORMAL. Prints the row count
on stderr.
"""
import json
import sqlite3
import sys


def rows(stream):
    loads = json.loads
    for line in stream:
        if line.isspace():
            continue
        r = loads(line)
        user = r.get("user")
        yield (r.get("id"), r.get("url"), r.get("status"),
               user.get("country") if isinstance(user, dict) else None)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().split("\n")[2].strip())
    db = sys.argv[1]
    table = sys.argv[2] if len(sys.argv) == 3 else "events"
    con = sqlite3.connect(db, isolation_level=None)  # explicit BEGIN/COMMIT below
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute('CREATE TABLE "%s" (id INTEGER, url TEXT, status INTEGER, country TEXT)' % table)
    con.execute("BEGIN")
    cur = con.executemany('INSERT INTO "%s" VALUES (?, ?, ?, ?)' % table, rows(sys.stdin.buffer))
    n = cur.rowcount
    con.execute("COMMIT")
    con.close()
    print("py_sqlite: %d rows" % n, file=sys.stderr)


if __name__ == "__main__":
    main()
