#!/usr/bin/python3
"""aiohttp peer for bench/fetch_bench.sh.

Fetches every URL in LIST (one per line) with one ClientSession and
TCPConnector(limit=N), at most N in flight (asyncio.Semaphore(N)).  Bodies are
read in 64 KiB chunks and discarded, or written to OUT_DIR/<line number>.
Prints "ok=<count> failed=<count>" on stdout; exit code 0 iff every URL gave 2xx.
Run with Debian's /usr/bin/python3 (python3-aiohttp).
"""
import argparse
import asyncio
import os
import sys

import aiohttp

CHUNK = 1 << 16


async def fetch_one(session, sem, url, path, counts):
    async with sem:
        try:
            async with session.get(url) as resp:
                if path is None:
                    async for _ in resp.content.iter_chunked(CHUNK):
                        pass
                else:
                    # Plain blocking writes: the bench is about the HTTP client,
                    # and a thread hop per chunk would cost more than the write.
                    with open(path, "wb") as f:
                        async for chunk in resp.content.iter_chunked(CHUNK):
                            f.write(chunk)
                if 200 <= resp.status < 300:
                    counts[0] += 1
                else:
                    counts[1] += 1
        except Exception as e:  # noqa: BLE001 - count every failure, keep going
            counts[1] += 1
            if counts[1] <= 5:
                print(f"error: {url}: {e!r}", file=sys.stderr)


async def main_async(urls, n, out_dir):
    sem = asyncio.Semaphore(n)
    counts = [0, 0]
    connector = aiohttp.TCPConnector(limit=n, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     auto_decompress=False) as session:
        # Keep at most ~4*N tasks alive so a long list does not become a huge
        # set of pending coroutines (that would measure asyncio, not aiohttp).
        pending = set()
        for i, url in enumerate(urls):
            path = None if out_dir is None else os.path.join(out_dir, str(i))
            pending.add(asyncio.ensure_future(fetch_one(session, sem, url, path, counts)))
            if len(pending) >= 4 * n:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending)
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("list")
    ap.add_argument("-j", type=int, default=32)
    ap.add_argument("-o", dest="out_dir", default=None)
    a = ap.parse_args()
    with open(a.list) as f:
        urls = [line.strip() for line in f if line.strip()]
    if a.out_dir:
        os.makedirs(a.out_dir, exist_ok=True)
    ok, failed = asyncio.run(main_async(urls, a.j, a.out_dir))
    print(f"ok={ok} failed={failed}")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
