"""A rate shared by a fleet: three afetch workers (separate processes) with
--rate 20/s --share-rate api keep to 20 requests a second together, counted by
the HTTP test server as requests arrive; without --share-rate each keeps its own
20/s (three times as many). The bucket lives in a real redis-server started by
the test, moved on by a Lua script on the server's clock. The pipeline fetch
stage's share_rate is checked at validation."""
import subprocess

from conftest import AFETCH, run_aetl, run_afetch


def busiest_second(times):
    """The most requests that arrived within any one second."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def run_fleet(tmp_path, redis, server, n, *flags):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("".join(f"{server.url(f'/ok/{i}')}\n" for i in range(n)))
    assert run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs]).code == 0
    server.reset()
    workers = [subprocess.Popen([str(AFETCH), "-q", "--redis", redis.url, "--from-stream", "jobs", "-j", "4",
                                 "--stop-when-idle", "1s", "--rate", "20/s", *flags],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    stats = server.stats()
    assert stats["total"] == n
    return stats["times"]


def test_three_workers_sharing_a_rate_keep_to_it_together(tmp_path, redis, server):
    times = run_fleet(tmp_path, redis, server, 90, "--share-rate", "api")
    busiest = busiest_second(times)
    assert busiest <= 22, f"{busiest} requests in one second (shared rate 20/s)"
    assert max(times) - min(times) >= 3.5  # 90 at 20/s: about 4.5 s
    assert redis.cli("EXISTS", "aetl:rate:api").strip() == "1"


def test_without_sharing_each_worker_keeps_its_own_rate(tmp_path, redis, server):
    times = run_fleet(tmp_path, redis, server, 90)
    assert busiest_second(times) >= 35  # three workers at 20/s each


def test_share_rate_needs_a_rate(tmp_path):
    r = run_afetch(["--share-rate", "api", "http://127.0.0.1:1/"])
    assert (r.code, r.stderr) == (2, "afetch: --share-rate needs --rate (the rate to share)\n")
    p = tmp_path / "p.yaml"
    p.write_text("source: {lines: {paths: [in.jsonl]}}\nstages:\n  - fetch: {url: 'http://x/{id}', "
                 "share_rate: {key: api}}\nsink: {jsonl: {path: out.jsonl}}\n")
    r = run_aetl(["validate", p])
    assert r.code == 2
    assert r.stderr.splitlines()[0] == f"{p}:3:47: stage 1 (fetch): share_rate: needs rate: (the rate to share)"
