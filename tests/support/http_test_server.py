#!/usr/bin/env python3
"""Programmable HTTP/1.1 test server for the afetch integration tests.

Standard library only. Listens on 127.0.0.1, supports keep-alive, and answers a
small set of endpoints whose behaviour is driven by the URL (see ROUTES below).

Usage:
    http_test_server.py [--port 0] [--port-file PATH] [--tls-cert C --tls-key K] [-v]

With --tls-cert/--tls-key the port serves HTTPS. Plain-HTTP requests on that
same port are still answered (the first byte of each connection is sniffed), so
control endpoints such as /__stats stay reachable with a plain HTTP client.

Requests whose path does not start with /__ are counted (by full request
target) as soon as they are received; /__stats reports the counts and /__reset
clears them together with the /retry state.
"""
import argparse
import asyncio
import email.utils
import gzip
import http
import json
import os
import re
import resource
import signal
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import zlib

HOST = "127.0.0.1"
BACKLOG = 2048
HEADER_LIMIT = 64 * 1024          # max size of request line + headers
MAX_BODY = 64 * 1024 * 1024       # max accepted request body
HUGE_CHUNK = 256 * 1024
TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
VERBOSE = False


def log(msg):
    """Print a diagnostic line to stderr when --verbose is on."""
    if VERBOSE:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Shared state
# --------------------------------------------------------------------------

class State:
    """Request counters and per-key /retry failure counts."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.total = 0
        self.paths = {}
        self.retries = {}
        self.times = []  # when each counted request arrived (Unix time), the first 100000
        self.in_flight = 0  # requests being answered (control endpoints aside)
        self.max_in_flight = 0
        self.limited = 0  # /limit requests being answered
        self.limit_ok = 0
        self.limit_rejected = 0
        self.pages_n = 100  # /pages items when the URL gives no n (set by /__pages_n/N)

    def count(self, target):
        self.total += 1
        self.paths[target] = self.paths.get(target, 0) + 1
        if len(self.times) < 100000:
            self.times.append(time.time())


STATE = State()


# --------------------------------------------------------------------------
# Request / response types
# --------------------------------------------------------------------------

class BadRequest(Exception):
    """Malformed HTTP request: answer 400 and close the connection."""

    def __init__(self, msg="bad request", status=400):
        super().__init__(msg)
        self.status = status


class BadParam(Exception):
    """Well-formed request with an unusable parameter: 400, keep-alive allowed."""


class Request:
    """One parsed HTTP request."""

    __slots__ = ("method", "target", "path", "query", "version", "headers",
                 "body", "keep_alive")

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers            # dict: lowercased name -> value
        self.body = b""
        split = urllib.parse.urlsplit(target)
        self.path = split.path or "/"
        self.query = {k: v[0] for k, v in
                      urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        else:
            self.keep_alive = "close" not in conn

    def qint(self, name, default, lo=0, hi=10 ** 12):
        """Integer query parameter within [lo, hi], or BadParam."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadParam(f"bad {name}") from None
        if not lo <= value <= hi:
            raise BadParam(f"{name} out of range")
        return value


class Response:
    """A complete in-memory response."""

    __slots__ = ("status", "body", "ctype", "headers")

    def __init__(self, status=200, body=b"ok", ctype="text/plain", headers=()):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.ctype = ctype
        self.headers = list(headers)


class Conn:
    """Per-connection objects handed to endpoint handlers."""

    __slots__ = ("reader", "writer", "sock")

    def __init__(self, reader, writer, sock):
        self.reader, self.writer, self.sock = reader, writer, sock


def reason(status):
    """Reason phrase for a status code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def head_bytes(status, headers):
    """Serialise a status line and header list."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(conn, req, resp, close=False):
    """Write a Response; HEAD and 204/304 get no body."""
    no_body = resp.status in (204, 304) or 100 <= resp.status < 200
    headers = [("Content-Type", resp.ctype)]
    if resp.status != 204 and not 100 <= resp.status < 200:
        headers.append(("Content-Length", str(len(resp.body))))
    headers += resp.headers
    if close:
        headers.append(("Connection", "close"))
    data = head_bytes(resp.status, headers)
    if not no_body and (req is None or req.method != "HEAD"):
        data += resp.body
    conn.writer.write(data)
    await conn.writer.drain()


async def send_head(conn, req, status, ctype, length, extra=()):
    """Write only the head of a response whose body the caller streams."""
    headers = [("Content-Type", ctype), ("Content-Length", str(length)), *extra]
    if not req.keep_alive:
        headers.append(("Connection", "close"))
    conn.writer.write(head_bytes(status, headers))
    await conn.writer.drain()


# --------------------------------------------------------------------------
# Endpoints. Each returns a Response; STREAMED after writing its own complete
# response (connection reusable); or None after closing/resetting it.
# --------------------------------------------------------------------------

STREAMED = object()


async def ep_ok(req, m, conn):
    """200 'ok', or size=N bytes of 'x'."""
    size = req.qint("size", None, hi=1 << 30)
    return Response(body=b"ok" if size is None else b"x" * size)


async def ep_status(req, m, conn):
    """Respond with the given status code."""
    code = int(m.group(1))
    if not 200 <= code <= 599:
        raise BadParam("status must be 200..599")
    return Response(code, f"status {code}")


async def ep_delay(req, m, conn):
    """Sleep the given milliseconds, then 200 'ok'."""
    await asyncio.sleep(int(m.group(1)) / 1000.0)
    return Response()


async def ep_retry(req, m, conn):
    """First `fails` requests per key fail with `status` (+ Retry-After)."""
    key = urllib.parse.unquote(m.group(1))
    fails = req.qint("fails", 1)
    status = req.qint("status", 503, lo=200, hi=599)
    seen = STATE.retries.get(key, 0)
    STATE.retries[key] = seen + 1
    if seen >= fails:
        return Response()
    headers = []
    ra = req.query.get("retry_after")
    if ra is not None:
        if ra.startswith("date:"):
            try:
                secs = float(ra[5:])
            except ValueError:
                raise BadParam("bad retry_after") from None
            ra = email.utils.formatdate(time.time() + secs, usegmt=True)
        elif "\r" in ra or "\n" in ra:
            raise BadParam("bad retry_after")
        headers.append(("Retry-After", ra))
    return Response(status, f"status {status}", headers=headers)


async def ep_reset(req, m, conn):
    """Promise 2*N bytes, send N, then reset the TCP connection."""
    n = req.qint("after", 100, hi=1 << 30)
    await send_head(conn, req, 200, "text/plain", 2 * n)
    if n:
        conn.writer.write(b"x" * n)
        await conn.writer.drain()
    await asyncio.sleep(0.05)  # let the bytes leave before the RST
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.writer.transport.abort()
    return None


async def ep_drip(req, m, conn):
    """Send `bytes` bytes one at a time, `interval_ms` apart."""
    n = req.qint("bytes", 10, hi=1 << 20)
    interval = req.qint("interval_ms", 100, hi=3_600_000) / 1000.0
    await send_head(conn, req, 200, "text/plain", n)
    if req.method == "HEAD":
        return STREAMED
    for i in range(n):
        if i:
            await asyncio.sleep(interval)
        conn.writer.write(b"x")
        await conn.writer.drain()
    return STREAMED


async def ep_redirect(req, m, conn):
    """302 chain: /redirect/n -> /redirect/n-1 ... -> 200 at 0."""
    n = int(m.group(1))
    if n == 0:
        return Response()
    return Response(302, "redirect", headers=[("Location", f"/redirect/{n - 1}")])


async def ep_redirect_loop(req, m, conn):
    """302 to itself forever."""
    return Response(302, "redirect", headers=[("Location", "/redirect-loop")])


async def ep_redirect_to(req, m, conn):
    """Redirect (default 302) to the url parameter verbatim."""
    url = req.query.get("url")
    if not url or "\r" in url or "\n" in url:
        raise BadParam("bad url")
    status = req.qint("status", 302, lo=300, hi=399)
    return Response(status, "redirect", headers=[("Location", url)])


async def ep_headers(req, m, conn):
    """Echo method, target, headers and body as JSON."""
    doc = {"method": req.method, "path": req.target, "headers": req.headers,
           "body": req.body.decode("utf-8", errors="replace")}
    return Response(body=json.dumps(doc), ctype="application/json")


async def ep_gzip(req, m, conn):
    """Repeated 'hello gzip\\n', gzip-encoded if the client accepts it."""
    n = req.qint("size", 10000, hi=1 << 28)
    unit = b"hello gzip\n"
    body = (unit * (n // len(unit) + 1))[:n]
    if "gzip" in req.headers.get("accept-encoding", "").lower():
        return Response(body=gzip.compress(body, mtime=0),
                        headers=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")])
    return Response(body=body, headers=[("Vary", "Accept-Encoding")])


async def ep_huge(req, m, conn):
    """Stream mb MiB of 'x' in 256 KiB chunks."""
    total = req.qint("mb", 1, hi=1 << 20) * 1048576
    await send_head(conn, req, 200, "application/octet-stream", total)
    if req.method == "HEAD":
        return STREAMED
    chunk = b"x" * HUGE_CHUNK
    left = total
    while left > 0:
        piece = chunk if left >= HUGE_CHUNK else chunk[:left]
        conn.writer.write(piece)
        await conn.writer.drain()
        left -= len(piece)
    return STREAMED


ZERO_MIB = bytes(1048576)
# Raw deflate of 1 MiB of zeros ending in a full flush: the same bytes every time,
# so a body of any size is these bytes repeated (about 1 KiB per MiB).
_packer = zlib.compressobj(9, zlib.DEFLATED, -15)
ZERO_MIB_DEFLATED = _packer.compress(ZERO_MIB) + _packer.flush(zlib.Z_FULL_FLUSH)
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
DEFLATE_END = b"\x03\x00"  # an empty final block


async def ep_gzip_bomb(req, m, conn):
    """mb MiB of zero bytes sent gzip-encoded whatever the client accepts,
    generated as it is sent (chunked, bounded memory)."""
    mb = req.qint("mb", 1024, hi=1 << 16)
    headers = [("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip"),
               ("Transfer-Encoding", "chunked")]
    if not req.keep_alive:
        headers.append(("Connection", "close"))
    conn.writer.write(head_bytes(200, headers))
    if req.method == "HEAD":
        await conn.writer.drain()
        return STREAMED

    def chunk(data):
        return b"%x\r\n%s\r\n" % (len(data), data)

    conn.writer.write(chunk(GZIP_HEADER))
    crc = 0
    for i in range(mb):
        crc = zlib.crc32(ZERO_MIB, crc)
        conn.writer.write(chunk(ZERO_MIB_DEFLATED))
        if i % 512 == 511:  # 512 MiB decoded per 530 KB sent: a client's one read holds a lot
            await conn.writer.drain()
    trailer = struct.pack("<II", crc, (mb << 20) & 0xFFFFFFFF)
    conn.writer.write(chunk(DEFLATE_END + trailer) + b"0\r\n\r\n")
    await conn.writer.drain()
    return STREAMED


async def ep_limit(req, m, conn):
    """A server that takes N requests at once: beyond N in flight (on /limit/N...)
    it answers 503 at once; within, it waits `ms` (default 50) and answers 200.
    With retry_after=S its 503s carry Retry-After: S."""
    limit = int(m.group(1))
    delay = req.qint("ms", 50, hi=60000)
    retry_after = req.qint("retry_after", None, hi=3600)
    if STATE.limited >= limit:
        STATE.limit_rejected += 1
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        return Response(503, "busy", headers=headers)
    STATE.limited += 1
    try:
        await asyncio.sleep(delay / 1000.0)
    finally:
        STATE.limited -= 1
    STATE.limit_ok += 1
    return Response()


async def ep_json(req, m, conn):
    """A fixed, valid JSON document."""
    return Response(body=b'{"hello":"world","n":[1,2,3]}', ctype="application/json")


async def ep_badjson(req, m, conn):
    """Invalid JSON labelled as JSON."""
    return Response(body=b"{not json", ctype="application/json")


def page_items(req, first, count):
    """Items first+1..first+count of /pages (ids from 1; `updated` is the id,
    `since` leaves out the ids up to it), at most n of them."""
    n = req.qint("n", STATE.pages_n)
    since = req.qint("since", 0)
    ids = [i for i in range(since + 1 + first, min(n, since + first + count) + 1)]
    return [{"id": i, "updated": i, "name": f"item {i}"} for i in ids]


async def ep_pages(req, m, conn):
    """A paginated JSON API in one of five styles (next_url, link, cursor, page,
    offset) over n items, per to a page; the page number (from 1) is `p` for
    next_url and link, otherwise found from the cursor/page/offset. Programmable
    per page: fail=P answers fail_status (500) fail_times times (always), throttle=P
    answers 429 with Retry-After: retry_after once, bad=P is not JSON, nopath=P has
    no items; auth=T wants `Authorization: Bearer T`, want_method=M (and
    want_body=B) that method and body; delay_ms slows every page. Broken APIs:
    loop=P makes page P name page 2 as the next (next_url, link, cursor),
    ignore=1 serves the first page whatever the page or offset asked for, and
    next_origin=O puts the next page's URL on origin O (next_url)."""
    style = m.group(1)
    per = req.qint("per", 10, lo=1)
    if style in ("next_url", "link"):
        page = req.qint("p", 1, lo=1)
    elif style == "cursor":
        raw = req.query.get("cursor", "")
        if raw and not raw.startswith("after-"):
            raise BadParam("bad cursor")
        page = int(raw[6:]) // per + 1 if raw else 1
    elif style == "page":
        page = req.qint("page", 1, lo=1)
    elif style == "offset":
        page = req.qint("offset", 0) // per + 1
    else:
        raise BadParam("unknown style")
    ignored = style in ("page", "offset") and req.qint("ignore", 0) == 1
    if ignored:
        page = 1
    delay = req.qint("delay_ms", 0)
    if delay:
        await asyncio.sleep(delay / 1000.0)
    want = req.query.get("auth")
    if want is not None and req.headers.get("authorization") != f"Bearer {want}":
        return Response(401, "unauthorized")
    want_method = req.query.get("want_method")
    if want_method is not None and (req.method != want_method or req.body != req.query.get("want_body", "").encode()):
        return Response(405, "wrong method or body")
    key = f"pages:{style}:{page}"
    if req.qint("throttle", 0) == page:
        seen = STATE.retries.get(key, 0)
        STATE.retries[key] = seen + 1
        if seen == 0:
            return Response(429, "slow down", headers=[("Retry-After", req.query.get("retry_after", "1"))])
    if req.qint("fail", 0) == page:
        seen = STATE.retries.get(key, 0)
        STATE.retries[key] = seen + 1
        if seen < req.qint("fail_times", 10 ** 9):
            return Response(req.qint("fail_status", 500, lo=200, hi=599), "server error")
    if req.qint("bad", 0) == page:
        return Response(body=b"<html>oops</html>", ctype="text/html")
    if req.qint("nopath", 0) == page:
        return Response(body=b'{"error": "no items today"}', ctype="application/json")
    first = req.qint("offset", 0) if style == "offset" and not ignored else (page - 1) * per
    items = page_items(req, first, per)
    n = req.qint("n", STATE.pages_n)
    since = req.qint("since", 0)
    more = since + page * per < n
    split = urllib.parse.urlsplit(req.target)
    query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    next_page = 2 if req.qint("loop", 0) == page else page + 1
    next_target = "?" + urllib.parse.urlencode([(k, v) for k, v in query if k != "p"] + [("p", str(next_page))])
    if req.query.get("next_origin"):
        next_target = req.query["next_origin"] + split.path + next_target
    headers = []
    if style == "next_url":
        doc = {"items": items, "next": next_target if more else None}
    elif style == "link":
        doc = {"items": items}
        if more:
            headers.append(("Link", f'<{split.path}{next_target}>; rel="next", </first>; rel="first"'))
    elif style == "cursor":
        last = ((next_page - 1) * per) if more else None
        doc = {"data": {"results": items}, "meta": {"next_cursor": f"after-{last}" if last else None}}
    else:
        doc = {"items": items}
    return Response(body=json.dumps(doc), ctype="application/json", headers=headers)


async def ep_stats(req, m, conn):
    """Request counters as JSON."""
    doc = {"total": STATE.total, "paths": STATE.paths, "times": STATE.times, "max_in_flight": STATE.max_in_flight,
           "limit_ok": STATE.limit_ok, "limit_rejected": STATE.limit_rejected}
    return Response(body=json.dumps(doc), ctype="application/json")


async def ep_pages_n(req, m, conn):
    """Sets how many items /pages has when its URL gives no n (an API that grows)."""
    STATE.pages_n = int(m.group(1))
    return Response()


async def ep_reset_state(req, m, conn):
    """Clear counters and retry state."""
    STATE.reset()
    return Response()


ROUTES = [(re.compile(p), h) for p, h in [
    (r"/ok(?:/.*)?", ep_ok),
    (r"/status/(\d{1,3})", ep_status),
    (r"/delay/(\d{1,9})(?:/.*)?", ep_delay),
    (r"/retry/([^/]+)", ep_retry),
    (r"/reset", ep_reset),
    (r"/drip", ep_drip),
    (r"/redirect/(\d{1,9})", ep_redirect),
    (r"/redirect-loop", ep_redirect_loop),
    (r"/redirect-to", ep_redirect_to),
    (r"/headers", ep_headers),
    (r"/gzip", ep_gzip),
    (r"/huge", ep_huge),
    (r"/gzip-bomb", ep_gzip_bomb),
    (r"/json", ep_json),
    (r"/limit/(\d{1,6})(?:/.*)?", ep_limit),
    (r"/badjson", ep_badjson),
    (r"/pages/([a-z_]+)(?:/bot[^/]*)?", ep_pages),
    (r"/__stats", ep_stats),
    (r"/__reset", ep_reset_state),
    (r"/__pages_n/(\d{1,9})", ep_pages_n),
]]


async def dispatch(req, conn):
    """Find the route for req.path and run it."""
    for pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path)
        if m:
            control = req.path.startswith("/__")
            if not control:
                STATE.in_flight += 1
                STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
            try:
                return await handler(req, m, conn)
            except BadParam as e:
                return Response(400, f"bad request: {e}")
            finally:
                if not control:
                    STATE.in_flight -= 1
    return Response(404, "not found")


# --------------------------------------------------------------------------
# HTTP/1.1 parsing and the connection loop
# --------------------------------------------------------------------------

async def read_head(reader):
    """Read request line + headers; None on clean EOF between requests."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("truncated request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large", 431) from None
    lines = raw.lstrip(b"\r\n").split(b"\r\n")[:-2]
    if not lines:
        raise BadRequest("empty request")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not TOKEN_RE.fullmatch(parts[0]) or not parts[1] \
            or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("bad request line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.fullmatch(name):
            raise BadRequest("bad header line")
        key = name.decode("ascii").lower()
        val = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {val}" if key in headers else val
    target = parts[1].decode("latin-1")
    if any(c <= " " or c == "\x7f" for c in target):
        raise BadRequest("bad target")
    return Request(parts[0].decode("ascii"), target, parts[2].decode("ascii"), headers)


async def read_chunked(reader):
    """Read a chunked request body (trailers are discarded)."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY:
            raise BadRequest("body too large", 413)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("bad chunk terminator")


async def read_body(req, conn):
    """Read the request body by Content-Length or chunked encoding."""
    te = req.headers.get("transfer-encoding")
    cl = req.headers.get("content-length")
    if te is None and cl is None:
        return b""
    if req.headers.get("expect", "").lower() == "100-continue":
        conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await conn.writer.drain()
    try:
        if te is not None:
            if te.lower() != "chunked":
                raise BadRequest("unsupported transfer-encoding", 501)
            return await read_chunked(conn.reader)
        values = {v.strip() for v in cl.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise BadRequest("bad content-length")
        length = int(values.pop())
        if length > MAX_BODY:
            raise BadRequest("body too large", 413)
        return await conn.reader.readexactly(length)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise BadRequest("truncated body") from None


async def serve_connection(conn):
    """Serve requests on one connection until close, EOF or error."""
    while True:
        try:
            req = await read_head(conn.reader)
            if req is None:
                return
            req.body = await read_body(req, conn)
        except BadRequest as e:
            log(f"400: {e}")
            await send(conn, None, Response(e.status, str(e) or "bad request"), close=True)
            return
        if not req.path.startswith("/__"):
            STATE.count(req.target)
        log(f"{req.method} {req.target}")
        try:
            resp = await dispatch(req, conn)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug in a handler must not kill the server
            log(f"500: {e!r}")
            await send(conn, req, Response(500, "internal error"), close=True)
            return
        if resp is None:                  # handler wrote and closed/reset
            return
        if isinstance(resp, Response):
            await send(conn, req, resp, close=not req.keep_alive)
        if not req.keep_alive:
            return


# --------------------------------------------------------------------------
# Accepting connections (with TLS sniffing) and the main loop
# --------------------------------------------------------------------------

async def first_byte(loop, sock, timeout=30.0):
    """Wait for data on sock and peek its first byte (b'' on EOF/timeout)."""
    fut = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, timeout)
        return sock.recv(1, socket.MSG_PEEK)
    except (asyncio.TimeoutError, OSError):
        return b""
    finally:
        loop.remove_reader(fd)


async def handle_socket(sock, ssl_ctx):
    """Wrap an accepted socket in asyncio streams (TLS if sniffed) and serve it."""
    loop = asyncio.get_running_loop()
    writer = None
    try:
        ctx = None
        if ssl_ctx is not None:
            b = await first_byte(loop, sock)
            if not b:
                sock.close()
                return
            ctx = ssl_ctx if b == b"\x16" else None   # 0x16 = TLS handshake record
        reader = asyncio.StreamReader(limit=HEADER_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, sock, ssl=ctx, ssl_handshake_timeout=30 if ctx else None)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await serve_connection(Conn(reader, writer, sock))
    except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError) as e:
        log(f"connection error: {e!r}")
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:
                pass
        else:
            sock.close()


def exception_handler(loop, context):
    """Keep the expected noise (resets, TLS failures) out of stderr."""
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, ssl.SSLError, OSError)):
        log(f"ignored: {exc!r}")
        return
    loop.default_exception_handler(context)


def raise_fd_limit():
    """Raise the soft open-files limit to the hard limit (many connections)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


def write_port_file(path, port):
    """Write the port atomically (PATH.tmp then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, path)


async def main(args):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(exception_handler)
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, args.port))
    lsock.listen(BACKLOG)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = set()

    async def accept_loop():
        while True:
            try:
                sock, _ = await loop.sock_accept(lsock)
            except OSError as e:          # e.g. EMFILE: back off briefly
                log(f"accept failed: {e!r}")
                await asyncio.sleep(0.05)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(handle_socket(sock, ssl_ctx))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    acceptor = loop.create_task(accept_loop())
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"PORT {port}", flush=True)

    await stop.wait()
    acceptor.cancel()
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(acceptor, *tasks, return_exceptions=True)
    lsock.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


if __name__ == "__main__":
    ARGS = parse_args()
    VERBOSE = ARGS.verbose
    raise_fd_limit()
    try:
        asyncio.run(main(ARGS))
    except KeyboardInterrupt:
        pass
    sys.exit(0)
