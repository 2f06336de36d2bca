#!/usr/bin/env python3
"""The python3 asyncpg peer of bench/postgres_bench.sh: JSON Lines from stdin into
events(id, url, status, country) in one transaction.

    py_asyncpg.py copy DSN          # copy_records_to_table (COPY, binary)
    py_asyncpg.py executemany DSN   # INSERT ... ON CONFLICT (id) DO UPDATE, executemany

Records are parsed with json.loads and sent in slices of 10000 to keep memory flat.
"""
import asyncio
import json
import sys

SLICE = 10000
UPSERT = ("INSERT INTO events (id, url, status, country) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, status = EXCLUDED.status, country = EXCLUDED.country")


def rows():
    out = []
    for line in sys.stdin.buffer:
        if line.isspace():
            continue
        r = json.loads(line)
        out.append((r.get("id"), r.get("url"), r.get("status"), (r.get("user") or {}).get("country")))
        if len(out) == SLICE:
            yield out
            out = []
    if out:
        yield out


def connect_args(dsn):
    """asyncpg takes URIs; a libpq key=value string becomes keyword arguments."""
    if "://" in dsn:
        return {"dsn": dsn}
    names = {"host": "host", "port": "port", "user": "user", "password": "password", "dbname": "database"}
    args = {}
    for part in dsn.split():
        k, _, v = part.partition("=")
        if k in names:
            args[names[k]] = int(v) if k == "port" else v
    return args


async def main(mode, dsn):
    import asyncpg
    conn = await asyncpg.connect(**connect_args(dsn))
    async with conn.transaction():
        for part in rows():
            if mode == "copy":
                await conn.copy_records_to_table("events", records=part, columns=["id", "url", "status", "country"])
            else:
                await conn.executemany(UPSERT, part)
    await conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("copy", "executemany"):
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
