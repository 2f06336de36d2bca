"""The `http` source: a paginated JSON API read page after page from the tests'
own server (tests/support/http_test_server.py, /pages/STYLE), with each way of
paginating, a 429 with Retry-After, pages that fail, resume at the page a run
stopped on, and kill -9 rounds into an exactly-once sink (no record twice)."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
import urllib.parse

import pytest

from conftest import AETL, kill_rounds, run_aetl

PAGINATE = {
    "next_url": "records: items, paginate: {next_url: next}",
    "link": "records: items, paginate: {link: true}",
    "cursor": "records: 'data.results[*]', paginate: {cursor: meta.next_cursor}",
    "page": "records: items, paginate: {page: true}",
    "offset": "records: items, paginate: {offset: true}",
}


def pipeline_text(url, style, sink="jsonl: {path: out.jsonl}", extra=""):
    return f"""
name: http-{style}
source:
  http: {{url: '{url}', {PAGINATE[style]}{extra}}}
sink:
  {sink}
"""


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def page_requests(server):
    """Requests per page target (control endpoints aside)."""
    return {t: n for t, n in server.stats()["paths"].items() if t.startswith("/pages/")}


@pytest.mark.parametrize("style", sorted(PAGINATE))
def test_each_pagination_style_reads_every_record_once_in_order(server, pipeline, tmp_path, style):
    p = pipeline(pipeline_text(server.url(f"/pages/{style}?n=95&per=10"), style))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 0 and r.stderr == "", r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 96))
    requests = page_requests(server)
    # ten pages, and for page and offset numbers the empty page that ends them
    assert len(requests) == (11 if style in ("page", "offset") else 10)
    assert set(requests.values()) == {1}, requests


def test_a_429_with_retry_after_mid_way_is_waited_for_and_the_page_read_once_it_answers(server, pipeline, tmp_path):
    url = server.url("/pages/next_url?n=50&per=10&throttle=3&retry_after=1")
    p = pipeline(pipeline_text(url, "next_url", extra=", retry: {max: 2, backoff: 10ms..5s}"))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 51))
    requests = page_requests(server)
    third = [n for t, n in requests.items() if t.endswith("&p=3")]
    assert third == [2] and sum(requests.values()) == 6


def test_a_failing_page_stops_the_run_with_exit_1_and_the_next_run_starts_at_it(server, pipeline, tmp_path):
    url = server.url("/pages/page?n=95&per=10&fail=4&fail_times=2")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, "page", sink=sink, extra=", retry: {max: 1, backoff: 10ms..20ms}"))
    first = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert first.code == 1
    assert first.stderr == f"aetl: error: source http: page 4 ({url}&page=4): HTTP 500 after 2 attempts\n"
    db = sqlite3.connect(tmp_path / "out.db")
    assert [r[0] for r in db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 31))
    again = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert again.code == 0, again.stderr
    ids = [r[0] for r in db.execute("SELECT id FROM t ORDER BY id")]
    assert ids == list(range(1, 96))
    requests = page_requests(server)
    pages = {int(urllib.parse.parse_qs(urllib.parse.urlsplit(t).query)["page"][0]): n for t, n in requests.items()}
    # pages 1-3 once; page 4 twice in the first run, once in the second; then 5-10 and the empty 11th once
    assert pages == {**{i: 1 for i in range(1, 12)}, 4: 3}


@pytest.mark.parametrize("what, cause", [
    ("bad", "not JSON (The JSON document has an improper structure: missing or superfluous commas, "
            "braces, missing keys, etc.)"),
    ("nopath", "no `data.results[*]` in the response"),
])
def test_a_page_that_is_not_json_or_lacks_the_records_path_says_which_and_why(server, pipeline, tmp_path, what,
                                                                              cause):
    url = server.url(f"/pages/cursor?n=50&per=10&{what}=2")
    p = pipeline(pipeline_text(url, "cursor"))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 1
    assert r.stderr == f"aetl: error: source http: page 2 ({url}&cursor=after-10): {cause}\n"
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 11))


def test_headers_come_from_the_environment_and_are_never_printed(server, pipeline, tmp_path):
    token = "t0k3n-s3cr3t"
    url = server.url(f"/pages/link?n=30&per=10&auth={token}")
    p = pipeline(pipeline_text(url, "link", extra=", headers: {Authorization: 'Bearer ${API_TOKEN}'}"))
    ok = run_aetl(["run", "--log-level", "debug", p], cwd=tmp_path, env={"API_TOKEN": token})
    assert ok.code == 0, ok.stderr
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 30
    bad = run_aetl(["run", "-q", "--state", tmp_path / "other.db", p], cwd=tmp_path, env={"API_TOKEN": "wrong-one"})
    assert bad.code == 1
    assert bad.stderr == f"aetl: error: source http: page 1 ({url}): HTTP 401\n"
    assert "wrong-one" not in bad.stderr


def test_incremental_sends_the_largest_value_read_and_reads_only_what_is_new(server, pipeline, tmp_path):
    server._get("/__pages_n/40")
    url = server.url("/pages/offset?per=10")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, "offset", sink=sink, extra=", incremental: {field: updated, param: since}"))
    assert run_aetl(["run", "-q", p], cwd=tmp_path).code == 0
    server._get("/__pages_n/65")
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    db = sqlite3.connect(tmp_path / "out.db")
    ids = [x[0] for x in db.execute("SELECT id FROM t")]
    assert sorted(ids) == list(range(1, 66))
    asked = [t for t in page_requests(server) if "since=" in t]
    assert asked and all("since=40" in t for t in asked)
    third = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert third.code == 0 and db.execute("SELECT count(*) FROM t").fetchone()[0] == 65


def test_a_finished_run_leaves_its_last_page_and_the_next_reads_what_was_added_to_it(server, pipeline, tmp_path):
    server._get("/__pages_n/25")
    url = server.url("/pages/next_url?per=10")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, "next_url", sink=sink))
    assert run_aetl(["run", "-q", p], cwd=tmp_path).code == 0
    server._get("/__pages_n/42")
    assert run_aetl(["run", "-q", p], cwd=tmp_path).code == 0
    db = sqlite3.connect(tmp_path / "out.db")
    ids = [x[0] for x in db.execute("SELECT id FROM t")]
    assert sorted(ids) == list(range(1, 43))


def test_kill_9_rounds_into_an_exactly_once_sink_write_every_record_once(server, tmp_path):
    url = server.url("/pages/cursor?n=3000&per=20&delay_ms=10")
    p = tmp_path / "p.yaml"
    p.write_text(pipeline_text(url, "cursor", sink="sqlite: {path: out.db, table: t, columns: {id: INTEGER}, "
                                                   "exactly_once: true, batch: {size: 50, linger: 20ms}}"))
    killed = kill_rounds(tmp_path, p, tmp_path / "state.sqlite", random.Random(14), rounds=12, pause=(0.05, 0.4))
    assert killed >= 3, f"only {killed} runs were killed: make the API slower"
    db = sqlite3.connect(tmp_path / "out.db")
    count, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone()
    assert (count, distinct) == (3000, 3000)
    # each run starts at the page it was on: a killed run reads again at most the
    # pages whose records were not committed yet (a run reading from the first
    # page each time would make well over 150 x 2 requests)
    requests = page_requests(server)
    print("page requests", sum(requests.values()), "for 150 pages,", killed, "killed")
    assert len(requests) == 150 and sum(requests.values()) <= 150 + 13 * 10


@pytest.mark.parametrize("source, column, message", [
    ("{url: 'http://x/', paginate: {link: true, page: true}}", 38,
     "source http: paginate: give one of next_url, link, cursor, page, offset (not link and page)"),
    ("{url: 'http://x/', paginate: {max_pages: 3}}", 38,
     "source http: paginate: give one of next_url, link, cursor, page, offset"),
    ("{url: 'ftp://x/', records: items}", 15, "source http: url: unsupported scheme 'ftp' (only http and https)"),
    ("{url: 'http://x/', records: 'items[0]'}", 37,
     "source http: records: 'items[0]' is not a path of keys separated by dots (items, data.results[*])"),
    ("{url: 'http://x/', paginate: {next_url: next, param: p}}", 62,
     "source http: paginate.param: only with cursor, page or offset"),
    ("{url: 'http://x/', paginate: {cursor: c, start: 2}}", 38,
     "source http: paginate.start: only with page or offset"),
    ("{url: 'http://x/', incremental: {field: updated}}", 41,
     "source http: missing required key 'incremental.param'"),
])
def test_bad_configurations_are_refused_by_validate_with_exit_2(pipeline, source, column, message):
    p = pipeline(f"name: bad\nsource:\n  http: {source}\nsink:\n  jsonl: {{path: out.jsonl}}\n")
    r = run_aetl(["validate", p])
    assert r.code == 2
    assert r.stderr.splitlines()[0] == f"{p}:3:{column}: {message}"


def test_a_url_holding_a_value_from_the_environment_is_shown_as_written_with_the_variable(server, pipeline,
                                                                                        tmp_path):
    written = server.url("/pages/page?n=95&per=10&fail=2&key=${API_KEY}")
    p = pipeline(pipeline_text(written, "page", extra=", retry: 0"))
    r = run_aetl(["run", "-q", p], cwd=tmp_path, env={"API_KEY": "k3y-s3cr3t"})
    assert r.code == 1
    assert r.stderr == f"aetl: error: source http: page 2 ({written}&page=2): HTTP 500\n"
    assert b"k3y-s3cr3t" not in b"".join(f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())


def test_a_token_in_the_url_path_is_never_shown_nor_stored_and_rotating_it_keeps_the_checkpoint(server, pipeline,
                                                                                               tmp_path):
    written = server.url("/pages/next_url/bot${TOK}?n=35&per=10&fail=3&fail_times=1")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(written, "next_url", sink=sink, extra=", retry: 0"))
    first = run_aetl(["run", "-q", p], cwd=tmp_path, env={"TOK": "123:old-t0k3n"})
    assert first.code == 1
    # page 3's URL came from the server, the token expanded in it: shown as ${TOK}
    assert first.stderr == f"aetl: error: source http: page 3 ({written}&p=3): HTTP 500\n"
    stored = b"".join(f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert b"old-t0k3n" not in stored and b"old%2Dt0k3n" not in stored
    again = run_aetl(["run", "-q", p], cwd=tmp_path, env={"TOK": "123:new-t0k3n"})
    assert again.code == 0, again.stderr
    db = sqlite3.connect(tmp_path / "out.db")
    assert [x[0] for x in db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 36))
    requests = page_requests(server)
    # the rerun went on at page 3 with the new token, not from page 1 under another name
    assert not [t for t in requests if "new-t0k3n" in t and "&p=" not in t]
    assert [n for t, n in requests.items() if "new-t0k3n" in t and t.endswith("&p=3")] == [1]


@pytest.mark.parametrize("style, message", [
    ("next_url", "the next page's URL is page 2's: the API's pages go round in a loop"),
    ("link", "the next page's URL is page 2's: the API's pages go round in a loop"),
    ("cursor", "the next cursor is page 2's: the API's pages go round in a loop"),
])
def test_pages_that_go_round_in_a_loop_fail_the_run_once_every_page_was_written_once(server, pipeline, tmp_path,
                                                                                    style, message):
    url = server.url(f"/pages/{style}?n=95&per=10&loop=4")
    p = pipeline(pipeline_text(url, style))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 1
    page4 = {"next_url": url + "&p=4", "link": url + "&p=4", "cursor": url + "&cursor=after-30"}[style]
    assert r.stderr == f"aetl: error: source http: page 4 ({page4}): {message}\n"
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 41))
    assert set(page_requests(server).values()) == {1}
    # the next run reads page 4 again (its records handled) and finds the loop again
    again = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert again.code == 1 and again.stderr == r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 41))


@pytest.mark.parametrize("style", ["page", "offset"])
def test_an_api_that_ignores_the_page_number_fails_at_the_second_page_without_duplicates(server, pipeline, tmp_path,
                                                                                         style):
    url = server.url(f"/pages/{style}?n=95&per=10&ignore=1")
    p = pipeline(pipeline_text(url, style))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 1
    second = url + ("&page=2" if style == "page" else "&offset=10")
    assert r.stderr == (f"aetl: error: source http: page 2 ({second}): the same records as page 1: "
                        f"does the API ignore `{style}`?\n")
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 11))
    again = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert again.code == 1 and again.stderr == r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 11))


def test_headers_are_not_sent_to_a_next_page_on_another_origin(server, pipeline, tmp_path):
    port = server.url("/").split(":")[2].split("/")[0]
    other = f"http://localhost:{port}"
    url = server.url(f"/pages/next_url?n=30&per=10&next_origin={urllib.parse.quote(other, safe='')}")
    p = pipeline(pipeline_text(url, "next_url", extra=", headers: {Authorization: 'Bearer ${API_TOKEN}'}"))
    r = run_aetl(["run", "-q", p], cwd=tmp_path, env={"API_TOKEN": "t0k3n"})
    assert r.code == 1
    assert r.stderr == (f"aetl: error: source http: page 1 ({url}): the next page is on {other}, not on url's "
                        f"origin (http://127.0.0.1:{port}): the headers are sent to url's origin only\n")
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 11))
    assert len(page_requests(server)) == 1
    # without headers there is nothing to keep from the other origin: it is followed
    plain = pipeline(pipeline_text(url, "next_url", sink="jsonl: {path: plain.jsonl}"))
    ok = run_aetl(["run", "-q", "--state", tmp_path / "plain.db", plain], cwd=tmp_path)
    assert ok.code == 0, ok.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "plain.jsonl")] == list(range(1, 31))


@pytest.mark.parametrize("style", ["page", "offset"])
def test_records_that_later_fill_the_last_page_are_read_by_the_next_run(server, pipeline, tmp_path, style):
    server._get("/__pages_n/25")
    url = server.url(f"/pages/{style}?per=10")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, style, sink=sink))
    assert run_aetl(["run", "-q", p], cwd=tmp_path).code == 0
    server._get("/__pages_n/40")
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    db = sqlite3.connect(tmp_path / "out.db")
    assert [x[0] for x in db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 41))
    third = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert third.code == 0 and db.execute("SELECT count(*) FROM t").fetchone()[0] == 40


def test_ctrl_c_during_a_retry_after_wait_ends_the_run_at_once_and_the_next_reads_that_page(server, pipeline,
                                                                                           tmp_path):
    url = server.url("/pages/next_url?n=50&per=10&throttle=3&retry_after=30")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, "next_url", sink=sink, extra=", retry: {max: 2, backoff: 10ms..60s}"))
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    proc = subprocess.Popen([str(AETL), "run", "-q", "--grace", "20s", str(p)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not [t for t in page_requests(server) if t.endswith("&p=3")] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # in the Retry-After wait now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 3, "the stop waited for the Retry-After or the grace period"
    assert proc.returncode == 130, err.decode()
    db = sqlite3.connect(tmp_path / "out.db")
    assert [x[0] for x in db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 21))
    again = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert [x[0] for x in db.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 51))
    assert [n for t, n in page_requests(server).items() if t.endswith("&p=3")] == [2]


def test_max_pages_ends_a_run_early_and_the_next_goes_on_from_there(server, pipeline, tmp_path):
    url = server.url("/pages/cursor?n=95&per=10")
    sink = "sqlite: {path: out.db, table: t, columns: {id: INTEGER}, exactly_once: true}"
    p = pipeline(pipeline_text(url, "cursor", sink=sink).replace("{cursor: meta.next_cursor}",
                                                                 "{cursor: meta.next_cursor, max_pages: 4}"))
    db = sqlite3.connect(tmp_path / "out.db")
    counts = []
    said = "aetl: source http: stopped after max_pages (4); the next run goes on from page {}\n"
    for expected in (said.format(5), said.format(9), ""):
        r = run_aetl(["run", "-q", p], cwd=tmp_path)
        assert r.code == 0 and r.stderr == expected, r.stderr
        counts.append(db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone())
    assert counts == [(40, 40), (80, 80), (95, 95)]
    assert set(page_requests(server).values()) == {1}


def test_post_sends_its_body_with_every_page(server, pipeline, tmp_path):
    url = server.url("/pages/offset?n=25&per=10&want_method=POST&want_body=%7B%22q%22%3A1%7D")
    p = pipeline(pipeline_text(url, "offset", extra=", method: POST, body: '{\"q\":1}'"))
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out.jsonl")] == list(range(1, 26))
    # and a GET is refused by the same URL: the method was the one configured
    get = pipeline(pipeline_text(url, "offset"))
    assert run_aetl(["run", "-q", "--state", tmp_path / "get.db", get], cwd=tmp_path).code == 1
