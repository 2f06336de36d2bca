#!/usr/bin/python3
"""Python peer for bench/gather_bench.sh: the API-aggregator pattern written by hand.

For each JSON line of IN (a record with "id"), three GETs at once with
asyncio.gather on one aiohttp ClientSession (at most N calls in flight, one
asyncio.Semaphore), each response body parsed as JSON when it is JSON and put
in its own field; the record is written to OUT as one JSON line. Prints
"records=<n> failed=<n>". Run with Debian's /usr/bin/python3 (python3-aiohttp).
"""
import argparse
import asyncio
import json

import aiohttp


async def call(session, sem, url):
    async with sem:
        async with session.get(url) as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return {"status": resp.status, "ok": 200 <= resp.status < 300, "body": body}


async def one(session, sem, base, rec, out, counts):
    try:
        a, b, c = await asyncio.gather(
            call(session, sem, f"{base}/delay/a/{rec['id']}"),
            call(session, sem, f"{base}/delay/b/{rec['id']}"),
            call(session, sem, f"{base}/delay/c/{rec['id']}"))
        rec.update(user=a, orders=b, stock=c)
        out.write(json.dumps(rec) + "\n")
        counts[0] += 1
    except Exception:
        counts[1] += 1


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--base", required=True)
    ap.add_argument("-j", type=int, default=300)
    a = ap.parse_args()
    sem = asyncio.Semaphore(a.j)
    counts = [0, 0]
    conn = aiohttp.TCPConnector(limit=a.j)
    async with aiohttp.ClientSession(connector=conn) as session:
        with open(a.input) as f, open(a.output, "w") as out:
            records = [json.loads(l) for l in f]
            # records in flight bounded too: as many as calls in flight
            pending = set()
            for rec in records:
                if len(pending) >= a.j:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.add(asyncio.ensure_future(one(session, sem, a.base, rec, out, counts)))
            if pending:
                await asyncio.wait(pending)
    print(f"records={counts[0]} failed={counts[1]}")


asyncio.run(main())
