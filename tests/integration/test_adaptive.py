"""Adaptive concurrency (afetch -j auto, fetch/gather concurrency: auto) against a
server of the tests' own that answers 503 beyond N requests in flight
(/limit/N on tests/support/http_test_server.py)."""
import re

from conftest import run_aetl

N = 8


def limited_urls(write_urls, server, count, extra=""):
    return write_urls([server.url(f"/limit/{N}/{i}?ms=30{extra}") for i in range(count)])


def test_auto_settles_near_the_server_s_limit_where_a_fixed_j_errs_heavily(afetch, server, write_urls):
    urls = limited_urls(write_urls, server, 300)
    server.reset()
    auto = afetch([urls, "-j", "auto", "--retry", "10", "--retry-backoff", "20ms..200ms"])
    assert auto.code == 0, auto.stderr
    auto_stats = server.stats()
    server.reset()
    fixed = afetch([urls, "-q", "-j", str(4 * N), "--retry", "10", "--retry-backoff", "20ms..200ms"])
    fixed_stats = server.stats()
    assert len(auto.records) == 300 and all(r["status"] == 200 for r in auto.records)
    assert auto_stats["limit_ok"] == 300
    # the limit it ended at is near the server's
    summary = auto.stderr
    ended = re.search(r"-j auto ended at 127\.0\.0\.1:\d+ (\d+)", summary)
    assert ended, summary
    assert N // 2 <= int(ended.group(1)) <= 2 * N, summary
    # few 503s with auto; many with a fixed -j four times the server's limit
    assert auto_stats["limit_rejected"] < 100, auto_stats
    assert fixed_stats["limit_rejected"] > 3 * max(auto_stats["limit_rejected"], 10), (auto_stats, fixed_stats)
    assert auto_stats["max_in_flight"] <= 2 * N + 2


def test_a_pipeline_fetch_with_concurrency_auto_reports_each_host_s_limit(server, tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(100)))
    (tmp_path / "p.yaml").write_text(f"""\
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - fetch: {{url: '{server.url(f"/limit/{N}/")}{{i}}?ms=20', concurrency: auto, retry: {{max: 10, backoff: 20ms..200ms}}}}
sink: {{jsonl: {{path: out.jsonl}}}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "--metrics-out", "m.prom", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 100
    prom = (tmp_path / "m.prom").read_text()
    m = re.search(r'aetl_host_concurrency_limit\{pipeline="p",part="fetch#1",host="127\.0\.0\.1:\d+"\} (\d+)', prom)
    assert m, prom
    assert 1 <= int(m.group(1)) <= 2 * N


def test_retry_after_pauses_the_host(afetch, server, write_urls):
    # N=1: a second request in flight gets 503 with Retry-After: 1; the host then rests a second
    urls = write_urls([server.url(f"/limit/1/{i}?ms=10&retry_after=1") for i in range(6)])
    res = afetch([urls, "-q", "-j", "auto", "--retry", "5", "--retry-backoff", "10ms..3s"])
    assert res.code == 0, res.stderr
    st = server.stats()
    assert st["limit_ok"] == 6
    times = sorted(st["times"])
    # after the first 503 no request came for most of a second
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert st["limit_rejected"] == 0 or max(gaps) > 0.8, (st["limit_rejected"], gaps)


def test_a_bad_j_is_one_line_and_exit_2(afetch, write_urls, server):
    urls = write_urls([server.url("/ok")])
    res = afetch([urls, "-j", "lots"])
    assert (res.code, res.stderr) == (2, "afetch: --concurrency: expected a number or auto, got 'lots'\n")


def test_an_abort_ends_a_retry_after_pause(server, write_urls):
    # A regression: waiters of a host paused by Retry-After (here 120 s) went back to
    # waiting after the abort, and only a hard stop ended the run.
    import os
    import signal
    import subprocess
    import time
    from conftest import AFETCH
    urls = write_urls([server.url(f"/retry/k{i}?fails=100&status=429&retry_after=120") for i in range(40)])
    proc = subprocess.Popen([str(AFETCH), "-q", "-j", "auto", "--retry", "5", "--grace", "1s", str(urls)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    time.sleep(1.5)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - began
    assert proc.returncode == 130, err.decode()
    assert took < 30, (took, err.decode())  # the pause is 120 s
    assert "did not stop in time" not in err.decode()
