#!/usr/bin/env python3
"""py_filter.py - E1 of pipeline_bench.sh in plain Python: the peer a script writer reaches for.

    python3 bench/py_filter.py <events.jsonl >out.jsonl

Keeps records with status >= 400 and writes {"id","url","status","country"=user.country}
as compact JSON, one per line, in input order. json.loads/json.dumps, line by line,
standard library only. Blank lines are skipped; a missing field is written as null.
"""
import json
import sys


def main():
    loads = json.loads
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    out = sys.stdout.write
    for line in sys.stdin.buffer:
        if line.isspace():
            continue
        r = loads(line)
        st = r.get("status")
        if isinstance(st, (int, float)) and not isinstance(st, bool) and st >= 400:
            user = r.get("user")
            out(dumps({
                "id": r.get("id"),
                "url": r.get("url"),
                "status": st,
                "country": user.get("country") if isinstance(user, dict) else None,
            }))
            out("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
