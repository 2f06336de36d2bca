"""Volume and limits: one line per input line, counts that match the server's."""
import json
import sqlite3
import time

from conftest import AFETCH, run_afetch


def test_10000_urls_at_concurrency_100_give_exactly_one_well_formed_line_each(server, write_urls):
    n = 10_000
    urls = write_urls([server.url(f"/ok/{i}") for i in range(n)])
    r = run_afetch([urls, "-q", "-j", "100"], timeout=300)
    assert r.code == 0, r.stderr
    lines = r.lines
    assert len(lines) == n
    seen = set()
    for line in lines:
        rec = json.loads(line)
        assert rec["ok"] is True and rec["status"] == 200 and rec["attempts"] == 1
        seen.add(rec["url"])
    assert len(seen) == n
    stats = server.stats()
    assert stats["total"] == n
    assert all(stats["paths"][f"/ok/{i}"] == 1 for i in range(n))


def test_ordered_output_follows_input_order(server, write_urls):
    # later lines answer faster: completion order would be reversed
    paths = [f"/delay/{200 - i * 10}/{i}" for i in range(20)]
    urls = write_urls([server.url(p) for p in paths])
    r = run_afetch([urls, "-q", "-j", "8", "--ordered"])
    assert [x["url"] for x in r.records] == [server.url(p) for p in paths]
    u = run_afetch([urls, "-q", "-j", "20"])
    assert [x["url"] for x in u.records] != [server.url(p) for p in paths]


def test_concurrency_limit_bounds_the_time_of_delayed_requests(server, write_urls):
    # 20 requests of 300 ms at -j 4 need at least 5 rounds: a sanity bound, not a timing test
    urls = write_urls([server.url(f"/delay/300/{i}") for i in range(20)])
    t0 = time.monotonic()
    r = run_afetch([urls, "-q", "-j", "4"])
    assert r.code == 0 and len(r.records) == 20
    assert time.monotonic() - t0 >= 1.5


def test_rate_limit_spaces_request_starts(server, write_urls):
    urls = write_urls([server.url(f"/ok/{i}") for i in range(11)])
    t0 = time.monotonic()
    r = run_afetch([urls, "-q", "--rate", "20/s"])
    assert r.code == 0 and len(r.records) == 11
    assert time.monotonic() - t0 >= 0.45  # 10 intervals of 50 ms at least


def test_deadline_cuts_the_run_short_with_exit_1(server, write_urls):
    urls = write_urls([server.url(f"/delay/400/{i}") for i in range(40)])
    r = run_afetch([urls, "-j", "2", "--deadline", "1s"])
    assert r.code == 1
    assert 0 < len(r.records) < 40
    assert "deadline of 1000 ms reached" in r.stderr
    assert all(x["ok"] for x in r.records)


def test_with_64_file_descriptors_500_transfers_are_lowered_and_3000_bodies_all_saved(server, write_urls, tmp_path):
    n = 3000
    urls = write_urls([server.url(f"/ok/{i}") for i in range(n)])
    state = tmp_path / "s.db"
    r = run_afetch(["--nofile=64:64", AFETCH, urls, "-q", "-j", "500", "-o", tmp_path / "b", "--state", state],
                   program="/usr/bin/prlimit", timeout=300)
    assert r.code == 0, r.stderr[:2000]
    assert r.stderr == "afetch: warning: only 64 file descriptors allowed (ulimit -n): " \
                       "--concurrency lowered from 500 to 7\n"
    assert len(r.records) == n and all(x["ok"] and x["path"] for x in r.records)
    db = sqlite3.connect(state)
    assert db.execute("SELECT outcome, count(*) FROM afetch_done GROUP BY outcome").fetchall() == [("ok", n)]
    db.close()
