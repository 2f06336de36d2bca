#!/usr/bin/env python3
"""The http source's bench peer: follows a paginated JSON API by its `next` field
(as `paginate: {next_url: next}` does) on one kept-alive connection and writes each
record of `items` as a JSON line. Standard library only.

    py_http_pages.py URL OUT.jsonl
"""
import http.client
import json
import sys
import urllib.parse


def main():
    url, out_path = sys.argv[1], sys.argv[2]
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    target = parts.path + ("?" + parts.query if parts.query else "")
    with open(out_path, "w") as out:
        while target:
            conn.request("GET", target)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                sys.exit(f"HTTP {resp.status} for {target}")
            page = json.loads(body)
            for item in page["items"]:
                out.write(json.dumps(item, separators=(",", ":")) + "\n")
            nxt = page.get("next")
            target = urllib.parse.urljoin(target, nxt) if nxt else None
    conn.close()


if __name__ == "__main__":
    main()
