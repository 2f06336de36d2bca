#!/usr/bin/python3
"""A programmable WebSocket server for the tests and benches (python3-websockets 10.4).

    ws_test_server.py --port 0 --port-file F [--tls-cert C --tls-key K]

What a connection gets is chosen by its URL's query; connections to the same
path and query share one feed (its next id, its drops), so a client that
connects again goes on where the feed stands:

    n=100            messages {"id": 1} .. {"id": n}, then (close=...) close or stay open
    rate=0           messages per second (0: as fast as the socket takes them)
    wait_subscribe=1 send nothing before the client's first message
    drop_after=K     drop the TCP connection (no close frame) after K messages on a connection,
    drops=1            this many times over the feed's life
    close=CODE       after the n messages, close with CODE (and reason=TEXT)
    silent=1         after the n messages, stop reading the socket: pings go unanswered
    oversize_at=J    message J carries a pad making it oversize_bytes long
    oversize_bytes=N
    format=json|text|binary|array   {"id": i} | "message i" | binary bytes | [i]
    hang=1           accept the TCP connection, never answer the handshake
    hang_after=K     likewise for every connection after the first K (a server gone quiet)
    status=404       answer the handshake with this HTTP status
    raw=1            (benches) write prebuilt frames straight to the socket, in chunks
    pad=0            bytes of padding in each message ("p" field)

GET /__stats (plain HTTP) returns {feed: {"connections": c, "received": [[conn, text], ...], "next_id": i,
"authorization": the last upgrade request's Authorization header or null}}.
"""
import argparse
import asyncio
import http
import json
import os
import signal
import ssl
import struct
import urllib.parse

import websockets
import websockets.legacy.server

FEEDS = {}


def feed_of(path):
    f = FEEDS.get(path)
    if f is None:
        f = FEEDS[path] = {"connections": 0, "received": [], "next_id": 1, "drops": 0, "authorization": None}
    return f


def params(path):
    q = urllib.parse.urlsplit(path).query
    return {k: v[-1] for k, v in urllib.parse.parse_qs(q).items()}


def message(i, fmt, pad, size=0):
    if fmt == "text":
        return f"message {i}"
    if fmt == "binary":
        return bytes([i % 256]) * 8
    if fmt == "array":
        return f"[{i}]"
    body = {"id": i, "sym": "ABC", "px": 101.25}
    if pad:
        body["p"] = "x" * pad
    text = json.dumps(body, separators=(",", ":"))
    if size > len(text):
        body["p"] = "x" * (size - len(text) - 7 + len(body.get("p", "")))
        text = json.dumps(body, separators=(",", ":"))
    return text


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = bytes([0x81, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x81, 127]) + struct.pack("!Q", n)
    return head + payload


async def process_request(path, headers):
    if path.startswith("/__stats"):
        return http.HTTPStatus.OK, [("Content-Type", "application/json")], json.dumps(FEEDS).encode()
    p = params(path)
    feed = feed_of(path)
    feed["authorization"] = headers.get("Authorization")
    if p.get("hang") or (p.get("hang_after") and feed["connections"] >= int(p["hang_after"])):
        feed["connections"] += 1
        await asyncio.sleep(3600)
    if p.get("status"):
        return http.HTTPStatus(int(p["status"])), [], b"refused by the test server\n"
    return None


async def handler(ws, path):
    p = params(path)
    feed = feed_of(path)
    feed["connections"] += 1
    conn = feed["connections"]

    async def record_incoming():
        try:
            async for m in ws:
                feed["received"].append([conn, m if isinstance(m, str) else m.hex()])
                subscribed.set()
        except websockets.ConnectionClosed:
            pass

    subscribed = asyncio.Event()
    reader = asyncio.ensure_future(record_incoming())
    try:
        if p.get("wait_subscribe"):
            await subscribed.wait()
        n = int(p.get("n", 100))
        rate = float(p.get("rate", 0))
        drop_after = int(p.get("drop_after", 0))
        drops = int(p.get("drops", 1))
        oversize_at = int(p.get("oversize_at", 0))
        oversize_bytes = int(p.get("oversize_bytes", 0))
        fmt = p.get("format", "json")
        pad = int(p.get("pad", 0))
        if p.get("raw"):
            await send_raw(ws, feed, n, pad)
        sent = 0
        while feed["next_id"] <= n:
            i = feed["next_id"]
            await ws.send(message(i, fmt, pad, oversize_bytes if i == oversize_at else 0))
            feed["next_id"] = i + 1
            sent += 1
            if drop_after and sent == drop_after and feed["drops"] < drops:
                feed["drops"] += 1
                ws.transport.abort()
                return
            if rate:
                await asyncio.sleep(1 / rate)
        if p.get("silent"):
            ws.transport.pause_reading()
            await asyncio.sleep(3600)
        elif p.get("close"):
            await ws.close(int(p["close"]), p.get("reason", ""))
        else:
            await ws.wait_closed()
    except websockets.ConnectionClosed:
        pass
    finally:
        reader.cancel()


async def send_raw(ws, feed, n, pad):
    chunk = 20000
    while feed["next_id"] <= n:
        first = feed["next_id"]
        last = min(n, first + chunk - 1)
        p = ',"p":"' + "x" * pad + '"' if pad else ""
        ws.transport.write(b"".join(frame(f'{{"id":{i},"sym":"ABC","px":101.25{p}}}'.encode())
                                    for i in range(first, last + 1)))
        feed["next_id"] = last + 1
        await ws.drain()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    ctx = None
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    stop = asyncio.get_running_loop().create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(handler, "127.0.0.1", a.port, ssl=ctx, process_request=process_request,
                                max_size=None, compression=None,
                                ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        if a.port_file:
            tmp = a.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(port))
            os.rename(tmp, a.port_file)
        await stop
    os._exit(0)  # connections left hanging (hang=1) do not hold the exit up


if __name__ == "__main__":
    asyncio.run(main())
