"""afetch on Redis Streams: --push turns request lines into stream entries (the
producer, one command from the shell), --from-stream makes afetch a worker of a
consumer group (results to stdout, --output or --to-stream). Several workers,
as separate processes, share one URL frontier: each request is fetched once,
and after kill -9 of a worker its requests are taken over. Real redis-server and
the HTTP test server, both on 127.0.0.1."""
import json
import signal
import subprocess
import time

import pytest

from conftest import AFETCH, run_afetch


def entries(redis, stream):
    """The data fields of the stream's entries, parsed."""
    out = redis.cli("XRANGE", stream, "-", "+").splitlines()
    return [json.loads(out[i + 2]) for i in range(0, len(out), 3)]


def start_worker(redis, out, *extra):
    return subprocess.Popen([str(AFETCH), "-q", "--redis", redis.url, "--from-stream", "jobs", "--claim-idle", "1s",
                             "--output", str(out), "--append", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_push_makes_each_request_line_an_entry_with_the_flags_applied(tmp_path, redis, server):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text(f"{server.url('/ok/1')}\n# a comment\n\n"
                    f'{{"url": "{server.url("/headers")}", "method": "PUT", "body": {{"a": 1}}, "id": 7}}\n')
    r = run_afetch(["-q", "--redis", redis.url, "--push", "jobs", "-H", "X-Trace: t1", reqs])
    assert r.code == 0, r.stderr
    assert r.stdout == b""
    assert entries(redis, "jobs") == [
        {"url": server.url("/ok/1"), "method": "GET", "headers": {"X-Trace": "t1"}},
        {"url": server.url("/headers"), "method": "PUT",
         "headers": {"X-Trace": "t1", "Content-Type": "application/json"}, "body": '{"a":1}', "id": 7},
    ]


def test_push_reads_stdin_and_says_what_it_pushed(redis, server):
    lines = "".join(f"{server.url(f'/ok/{i}')}\n" for i in range(5)).encode()
    r = run_afetch(["--no-progress", "--redis", redis.url, "--push", "jobs", "-"], input_bytes=lines)
    assert r.code == 0, r.stderr
    assert r.stderr.startswith("pushed 5 requests into stream jobs in ")
    assert len(entries(redis, "jobs")) == 5


def test_push_reports_a_bad_line_with_its_place_and_exits_2(tmp_path, redis, server):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text(f"{server.url('/ok/1')}\nftp://example.org/x\n{server.url('/ok/2')}\n")
    r = run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs])
    assert r.code == 2
    assert r.stderr == f"afetch: warning: {reqs}:2: push: unsupported scheme 'ftp' (only http and https)\n"
    assert [e["url"] for e in entries(redis, "jobs")] == [server.url("/ok/1"), server.url("/ok/2")]


def test_a_worker_fetches_what_was_pushed_and_acknowledges_it(tmp_path, redis, server):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("".join(f"{server.url(f'/ok/{i}')}\n" for i in range(20)) + server.url("/status/404") + "\n")
    assert run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs]).code == 0
    r = run_afetch(["-q", "--redis", redis.url, "--from-stream", "jobs", "--stop-when-idle", "500ms"])
    assert r.code == 1  # the 404
    got = sorted((x["url"], x["status"]) for x in r.records)
    assert got == sorted([(server.url(f"/ok/{i}"), 200) for i in range(20)] + [(server.url("/status/404"), 404)])
    assert redis.pending("jobs", "afetch") == 0


def test_three_workers_share_the_frontier_and_fetch_each_url_once(tmp_path, redis, server):
    n = 300
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("".join(f"{server.url(f'/delay/20/{i}')}\n" for i in range(n)))
    redis.cli("XGROUP", "CREATE", "jobs", "afetch", "$", "MKSTREAM")
    outs = [tmp_path / f"w{i}.jsonl" for i in range(3)]
    workers = [start_worker(redis, out, "-j", "8", "--stop-when-idle", "3s") for out in outs]
    time.sleep(1.0)  # all three wait for work (blocked in XREADGROUP)
    assert run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs]).code == 0
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    per_worker = [[json.loads(l)["url"] for l in o.read_text().splitlines()] for o in outs]
    urls = [u for ws in per_worker for u in ws]
    assert sorted(urls) == sorted(server.url(f"/delay/20/{i}") for i in range(n))
    assert all(len(ws) > 0 for ws in per_worker), [len(ws) for ws in per_worker]
    counts = server.stats()["paths"]
    assert sum(counts.values()) == n and set(counts.values()) == {1}
    assert redis.pending("jobs", "afetch") == 0


def test_a_killed_workers_requests_are_taken_over(tmp_path, redis, server):
    n = 200
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("".join(f"{server.url(f'/delay/50/{i}')}\n" for i in range(n)))
    assert run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs]).code == 0
    a = start_worker(redis, tmp_path / "a.jsonl", "-j", "16")
    deadline = time.time() + 30
    while redis.pending("jobs", "afetch") == 0 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    a.send_signal(signal.SIGKILL)  # with requests in flight, unacknowledged
    a.wait(timeout=30)
    held = redis.pending("jobs", "afetch")
    b = start_worker(redis, tmp_path / "b.jsonl", "-j", "16", "--stop-when-idle", "2s")
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err.decode()
    urls = set()
    for name in ("a.jsonl", "b.jsonl"):
        p = tmp_path / name
        if p.exists():
            urls |= {json.loads(l)["url"] for l in p.read_text().splitlines() if l.endswith("}")}
    assert held > 0
    assert urls == {server.url(f"/delay/50/{i}") for i in range(n)}
    assert redis.pending("jobs", "afetch") == 0


def test_a_worker_adds_its_results_to_another_stream(tmp_path, redis, server):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("".join(f"{server.url(f'/ok/{i}')}\n" for i in range(10)))
    assert run_afetch(["-q", "--redis", redis.url, "--push", "jobs", reqs]).code == 0
    r = run_afetch(["-q", "--redis", redis.url, "--from-stream", "jobs", "--to-stream", "results",
                    "--stop-when-idle", "500ms"])
    assert r.code == 0, r.stderr
    assert r.stdout == b""
    results = entries(redis, "results")
    assert sorted(x["url"] for x in results) == sorted(server.url(f"/ok/{i}") for i in range(10))
    assert all(x["status"] == 200 for x in results)


@pytest.mark.parametrize("args,message", [
    (["--push", "jobs", "--from-stream", "jobs"], "--push and --from-stream: a run pushes or works, not both"),
    (["--to-stream", "out"], "--to-stream needs --from-stream"),
    (["--from-stream", "jobs", "urls.txt"], "--from-stream: the requests come from the stream, not from input files"),
    (["--from-stream", "jobs", "--state", "s.db"],
     "--state: a worker keeps no state (the stream's consumer group is its state)"),
    (["--from-stream", "jobs", "--to-stream", "r", "--output", "o.jsonl"], "--to-stream and --output: choose one"),
    (["--push", "jobs", "--output", "o.jsonl"], "--output: --push writes no result lines"),
    (["--from-stream", "jobs", "--max-deliveries", "0"], "--max-deliveries must be at least 1"),
    (["--from-stream", "jobs", "--claim-idle", "soon"],
     "--claim-idle: invalid duration 'soon' (examples: 250ms, 10s, 2m)"),
    (["--push", "jobs", "--redis", "redis://h:0/0"],
     "--redis: redis URL 'redis://h:0/0': the port must be a number from 1 to 65535"),
])
def test_bad_stream_flags_are_one_line_and_exit_2(args, message):
    r = run_afetch(args)
    assert r.code == 2
    assert r.stderr == f"afetch: {message}\n"


def test_an_unreachable_server_is_one_line_and_exit_2(tmp_path):
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("http://127.0.0.1:1/\n")
    r = run_afetch(["--redis", "redis://127.0.0.1:1/0", "--push", "jobs", reqs])
    assert r.code == 2
    assert r.stderr.count("\n") == 1 and "127.0.0.1:1" in r.stderr, r.stderr


def test_a_pushed_get_with_a_body_stays_a_get(tmp_path, redis, server):
    r = run_afetch(["-q", "--redis", redis.url, "--push", "jobs", "-X", "GET", "-d", "q=1", "-"],
                   input_bytes=(server.url("/headers") + "\n").encode())
    assert r.code == 0, r.stderr
    assert entries(redis, "jobs")[0]["method"] == "GET"
    r = run_afetch(["-q", "--redis", redis.url, "--from-stream", "jobs", "--body", "json", "--stop-when-idle", "300ms"])
    assert r.code == 0, r.stderr
    (result,) = r.records
    assert result["body"]["method"] == "GET" and result["body"]["body"] == "q=1"
