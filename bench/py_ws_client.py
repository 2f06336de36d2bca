#!/usr/bin/python3
"""The peer of bench/websocket_bench.sh: a python3-websockets client doing what the
websocket source does with each message (parse the JSON, add the receive time
first, write one JSON line), until the server closes or N messages came.

    py_ws_client.py URL OUT.jsonl N
"""
import asyncio
import datetime
import json
import os
import sys

import websockets


async def main(url, out, n):
    count = 0
    with open(out, "w") as f:
        async with websockets.connect(url, max_size=16 << 20, compression=None, ping_interval=20) as ws:
            try:
                async for m in ws:
                    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    try:
                        obj = json.loads(m)
                    except ValueError:
                        obj = None
                    rec = {"received_at": now, **obj} if isinstance(obj, dict) else {"received_at": now, "message": m}
                    f.write(json.dumps(rec, separators=(",", ":")) + "\n")
                    count += 1
                    if count == n:
                        break
            except websockets.ConnectionClosedOK:
                pass
        f.flush()
        os.fsync(f.fileno())
    if count != n:
        sys.exit(f"got {count} of {n} messages")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
