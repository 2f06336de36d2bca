#!/usr/bin/env python3
"""gen_events.py - write deterministic JSONL access-log events for pipeline_bench.sh.

    bench/gen_events.py --mb 1024 --out /tmp/aetl-bench/events.jsonl [--seed 42]

One record per line, about 250-300 bytes, for example

  {"id":123,"ts":"2026-11-23T10:00:00.123Z","method":"GET","url":"https://shop.example.com/p/4711?ref=mail",
   "status":404,"bytes":5120,"latency_ms":12.5,"user":{"id":77,"country":"DE","agent":"Mozilla/5.0 ..."},
   "tags":["a","b"]}

(on one line). About 15% of the records have status >= 400. Now and then a string
holds an escape (\\" or \\u00e9) or raw UTF-8, in the projected "url" too.

Speed: rendering every record with json.dumps is too slow for a gigabyte, so a
seeded pool of pre-rendered record bodies is built first and each line is
'{"id":<n>,"ts":"<day+minute>' + body-head + <status> + body-tail: id runs 1, 2, 3...,
the status is drawn per record (independently of the body), the minute of the
timestamp advances every 1000 records. Output is written in large chunks.
The same --mb and --seed always give the same bytes.

Prints "records N errors M bytes B" on stdout (errors = records with status >= 400).
The file is written to OUT.tmp and renamed when complete.
"""
import argparse
import json
import os
import random
import sys

POOL = 4096          # pre-rendered record bodies
CHUNK = 20000        # records per write

# (status, weight): 400 and up weigh 15 of 100
STATUS_WEIGHTS = [
    (200, 68.0), (201, 4.0), (204, 3.0), (301, 2.0), (302, 4.0), (304, 4.0),
    (400, 2.0), (401, 1.5), (403, 1.5), (404, 6.0), (429, 1.0),
    (500, 1.5), (502, 1.0), (503, 1.5),
]

HOSTS = ["shop.example.com", "api.example.com", "www.example.org", "cdn.example.net",
         "blog.example.com", "m.shop.example.com"]
COUNTRIES = ["DE", "US", "FR", "GB", "NL", "SE", "PL", "IT", "ES", "JP", "BR", "IN",
             "CA", "AU", "CH", "AT"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
    "Wget/1.21.3",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    'Mozilla/5.0 (compatible; "QuotedBot"/1.0; +https://bot.example.com/a\u00e9)',
]
TAGS = ["a", "b", "c", "mobile", "bot", "promo", "ab-test", "caf\u00e9", "new"]
REFS = ["mail", "ads", "social", "direct", "partner"]
WORDS = ["red shoes", "caf\u00e9", "M\u00fcnchen", "laptop", "\"best\" deals", "winter jacket",
         "na\u00efve", "usb-c cable", "tv", "garden"]
METHODS = ["GET"] * 8 + ["POST", "POST", "PUT", "DELETE", "HEAD"]


def make_url(r):
    host = r.choice(HOSTS)
    k = r.random()
    if k < 0.45:
        path = "/p/%d?ref=%s" % (r.randrange(1, 100000), r.choice(REFS))
    elif k < 0.65:
        # The query text goes through json.dumps below: a '"' becomes \" and with
        # ensure_ascii an e-acute becomes \u00e9. Raw UTF-8 (no \u escape) in 1 of 4.
        path = "/search?q=%s&page=%d" % (r.choice(WORDS).replace(" ", "+"), r.randrange(1, 20))
    elif k < 0.85:
        path = "/api/v1/orders/%d/items?limit=%d" % (r.randrange(1, 10 ** 7), r.choice([10, 50, 100]))
    else:
        path = "/static/assets/%08x/app.%s" % (r.getrandbits(32), r.choice(["js", "css", "png", "woff2"]))
    return "https://" + host + path


def make_body(r):
    """Return (head, tail): '<ss.mmm>Z",...,"status":' and ',"bytes":...}\\n'."""
    ascii_only = r.random() < 0.75
    dump = lambda v: json.dumps(v, ensure_ascii=ascii_only, separators=(",", ":"))
    head = '%02d.%03dZ","method":%s,"url":%s,"status":' % (
        r.randrange(60), r.randrange(1000), dump(r.choice(METHODS)), dump(make_url(r)))
    user = {"id": r.randrange(1, 200000), "country": r.choice(COUNTRIES), "agent": r.choice(AGENTS)}
    tags = r.sample(TAGS, r.choice([0, 1, 1, 2, 2, 3]))
    lat = round(r.lognormvariate(3.0, 1.0), r.choice([1, 2, 3]))
    tail = ',"bytes":%d,"latency_ms":%s,"user":%s,"tags":%s}\n' % (
        r.choice([0, 512, 1024, 5120, r.randrange(100, 2_000_000)]), repr(lat), dump(user), dump(tags))
    return head, tail


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=1024, help="size in MiB (stops at the first chunk past it)")
    ap.add_argument("--records", type=int, default=0, help="stop after this many records instead (a multiple of 20000)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    r = random.Random(a.seed)
    bodies = [make_body(r) for _ in range(POOL)]
    heads = [b[0] for b in bodies]
    tails = [b[1] for b in bodies]
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    err_set = {s for s in statuses if s >= 400}

    target = int(a.mb * 1024 * 1024)
    tmp = a.out + ".tmp"
    written = 0
    n = 0
    errors = 0
    minute = 0
    with open(tmp, "wb", buffering=0) as f:
        while (n < a.records) if a.records else (written < target):
            idx = r.choices(range(POOL), k=CHUNK)
            st = r.choices(statuses, weights=weights, k=CHUNK)
            errors += sum(1 for s in st if s in err_set)
            parts = []
            for j in range(0, CHUNK, 1000):
                # minute-resolution prefix shared by 1000 consecutive records
                day, rem = divmod(minute, 1440)
                pre = "2026-11-%02dT%02d:%02d:" % (23 + day % 7, rem // 60, rem % 60)
                minute += 1
                base = n + j + 1
                parts.append("".join([
                    '{"id":%d,"ts":"%s%s%d%s' % (base + k, pre, heads[i], s, tails[i])
                    for k, (i, s) in enumerate(zip(idx[j:j + 1000], st[j:j + 1000]))
                ]))
            data = "".join(parts).encode("utf-8")
            f.write(data)
            written += len(data)
            n += CHUNK
    os.replace(tmp, a.out)
    print("records %d errors %d bytes %d" % (n, errors, written))


if __name__ == "__main__":
    sys.exit(main())
