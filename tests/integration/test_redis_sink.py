"""The redis sink (XADD into a stream) against a real redis-server started by the
tests (tests/support/redis_server.py: a temporary directory, a free port on
127.0.0.1, append-only), stopped at the end. Delivery is at-least-once: every
record reaches the stream, through kill -9 rounds and a server restart; a batch
retried after a lost connection may add some entries twice."""
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import AETL, kill_rounds, run_aetl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from redis_server import RedisServer, free_port  # noqa: E402


@pytest.fixture(scope="module")
def redis():
    server = RedisServer().start()
    yield server
    server.stop()


_streams = [0]


@pytest.fixture()
def stream():
    _streams[0] += 1
    return f"s{_streams[0]}"


def write_jsonl(path, n, start=0):
    path.write_text("".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(start, start + n)))


def pipeline(tmp_path, url, stream, extra="", path="in.jsonl", name="redistest"):
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: {name}
source: {{lines: {{paths: ["{path}"]}}}}
sink:
  redis: {{url: "{url}", stream: {stream}{", " + extra if extra else ""}}}
""")
    return p


def entries(server, stream, field="data"):
    """The stream's records, in stream order (XRANGE, 10,000 at a time)."""
    out = []
    start = "-"
    while True:
        raw = server.cli("XRANGE", stream, start, "+", "COUNT", "10000").splitlines()
        # --raw prints each entry as: id, field, value (one field per entry here)
        chunk = [raw[i:i + 3] for i in range(0, len(raw), 3)]
        if start != "-" and chunk:
            chunk = chunk[1:]  # the entry the range started at, seen already
        if not chunk:
            return out
        for entry_id, f, value in chunk:
            assert f == field
            out.append(json.loads(value))
        start = chunk[-1][0]


def test_each_record_becomes_one_entry_in_order(tmp_path, redis, stream):
    write_jsonl(tmp_path / "in.jsonl", 5000)
    r = run_aetl(["run", "-q", "--state", "s.db", pipeline(tmp_path, redis.url, stream)], cwd=tmp_path)
    assert r.code == 0, r.stderr
    got = entries(redis, stream)
    assert [e["id"] for e in got] == list(range(5000))
    assert got[7] == {"id": 7, "name": "n7"}


def test_field_maxlen_unix_socket_and_database(tmp_path, redis, stream):
    write_jsonl(tmp_path / "in.jsonl", 3000)
    url = f"unix:{redis.socket}?db=2"
    r = run_aetl(["run", "-q", "--state", "s.db", pipeline(tmp_path, url, stream, "field: payload, maxlen: 1000")],
                 cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert int(redis.cli("XLEN", stream)) == 0  # database 0 is untouched
    length = int(redis.cli("-n", "2", "XLEN", stream))
    assert 1000 <= length < 3000  # MAXLEN ~ trims whole nodes: about 1000
    last = redis.cli("-n", "2", "XREVRANGE", stream, "+", "-", "COUNT", "1").splitlines()
    assert last[1] == "payload" and json.loads(last[2])["id"] == 2999


@pytest.mark.parametrize("case", ["scheme", "port", "db", "refused", "wrongtype", "wrongpass"])
def test_bad_setup_is_one_line_and_exit_2(tmp_path, redis, stream, case):
    write_jsonl(tmp_path / "in.jsonl", 10)
    closed = free_port()
    url = {
        "scheme": "rediss://127.0.0.1:6379",
        "port": "redis://127.0.0.1:0/0",
        "db": "redis://127.0.0.1:6379/x",
        "refused": f"redis://127.0.0.1:{closed}/0",
        "wrongtype": redis.url,
        "wrongpass": f"redis://nobody:secret-pw@127.0.0.1:{redis.port}/0",
    }[case]
    if case == "wrongtype":
        redis.cli("SET", stream, "not a stream")
    p = pipeline(tmp_path, url, stream)
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    where = f"127.0.0.1:{redis.port}/0"
    col = 16
    expected = {
        "scheme": f"""{p}:4:{col}: sink redis: url: redis URL 'rediss://127.0.0.1:6379': expected redis://[user:password@]host[:port][/db] or unix:/path/to/socket (no TLS: rediss:// is not supported)
  redis: {{url: "rediss://127.0.0.1:6379", stream: {stream}}}
               ^
""",
        "port": f"""{p}:4:{col}: sink redis: url: redis URL 'redis://127.0.0.1:0/0': the port must be a number from 1 to 65535
  redis: {{url: "redis://127.0.0.1:0/0", stream: {stream}}}
               ^
""",
        "db": f"""{p}:4:{col}: sink redis: url: redis URL 'redis://127.0.0.1:6379/x': the database after the / must be a whole number
  redis: {{url: "redis://127.0.0.1:6379/x", stream: {stream}}}
               ^
""",
        "refused": f"aetl: redis 127.0.0.1:{closed}/0: Connection refused\n",
        "wrongtype": f"aetl: redis {where}: key '{stream}' holds a string, not a stream\n",
        "wrongpass": f"aetl: redis {where}: AUTH refused: WRONGPASS invalid username-password pair or user is disabled.\n",
    }[case]
    assert r.code == 2, r.stderr
    assert r.stderr == expected
    assert "secret-pw" not in r.stderr


def test_password_from_the_url_or_redischli_auth_never_printed(tmp_path, stream):
    server = RedisServer(password="s3cret-pw").start()
    try:
        write_jsonl(tmp_path / "in.jsonl", 100)
        bare = f"redis://127.0.0.1:{server.port}/0"
        r = run_aetl(["run", "-q", "--state", "s.db", pipeline(tmp_path, bare, stream)], cwd=tmp_path,
                     env={"REDISCLI_AUTH": ""})
        assert r.code == 2
        assert r.stderr == (f"aetl: redis 127.0.0.1:{server.port}/0: the server needs a password (in the URL or "
                            "REDISCLI_AUTH): NOAUTH Authentication required.\n")
        r = run_aetl(["run", "-q", "--state", "s.db", pipeline(tmp_path, bare, stream)], cwd=tmp_path,
                     env={"REDISCLI_AUTH": "s3cret-pw"})
        assert r.code == 0, r.stderr
        r = run_aetl(["run", "-q", "--state", "s2.db", pipeline(tmp_path, server.url, stream)], cwd=tmp_path,
                     env={"REDISCLI_AUTH": ""})
        assert r.code == 0, r.stderr
        assert int(server.cli("XLEN", stream)) == 200
        bad = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        r = run_aetl(["run", "-q", "--state", "s3.db", pipeline(tmp_path, bad, stream)], cwd=tmp_path)
        assert r.code == 2
        assert "wrong-pw" not in r.stderr and "s3cret" not in r.stderr
        assert r.stderr.startswith(f"aetl: redis 127.0.0.1:{server.port}/0: AUTH refused: WRONGPASS"), r.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_server_restart_mid_run_loses_nothing(tmp_path, stream, exactly_once):
    """Records come from a pipe for about two seconds; the server restarts in the
    middle; the sink reconnects and retries: every id is in the stream (with
    exactly_once, once: a batch whose script ran before the connection was cut
    finds its token and adds nothing again)."""
    server = RedisServer().start()
    try:
        n = 20000
        p = tmp_path / "p.yaml"
        p.write_text(f"""name: restart
source: {{lines: {{paths: ["-"]}}}}
sink:
  redis: {{url: "{server.url}", stream: {stream}, batch: {{size: 200, linger: 20ms}}{", exactly_once: true" if exactly_once else ""}}}
""")
        proc = subprocess.Popen([str(AETL), "run", "--state", str(tmp_path / "s.db"), str(p)], cwd=tmp_path,
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)

        def feed():
            for i in range(n):
                proc.stdin.write((json.dumps({"id": i}) + "\n").encode())
                if i % 500 == 499:
                    proc.stdin.flush()
                    time.sleep(0.05)
            proc.stdin.close()

        t = threading.Thread(target=feed)
        t.start()
        time.sleep(0.8)
        server.restart(down_for=0.5)
        t.join()
        proc.wait(timeout=120)
        err = proc.stderr.read().decode()
        assert proc.returncode == 0, err
        assert "retrying" in err, err  # the restart hit the run, and the sink came back
        ids = [e["id"] for e in entries(server, stream)]
        assert len(set(ids)) == n, f"{n - len(set(ids))} ids lost"
        assert len(ids) >= n
        if exactly_once:
            assert len(ids) == n, f"{len(ids) - n} ids doubled"
    finally:
        server.stop()


def test_kill_9_rounds_lose_nothing(tmp_path, redis, stream):
    n = 30000
    write_jsonl(tmp_path / "in.jsonl", n)
    p = pipeline(tmp_path, redis.url, stream, "batch: {size: 300, linger: 10ms}")
    killed = kill_rounds(tmp_path, p, tmp_path / "state.sqlite", random.Random(12), rounds=30, pause=(0.005, 0.08))
    ids = [e["id"] for e in entries(redis, stream)]
    assert killed > 0
    assert len(set(ids)) == n, f"{n - len(set(ids))} ids lost"
    assert len(ids) >= n  # at-least-once: a batch in flight at a kill may be added again


def test_the_sample_pushes_each_url_as_a_request(tmp_path, redis):
    root = Path(__file__).resolve().parents[2]
    sample = (root / "samples/pipelines/urls-to-redis.yaml").read_text()
    assert 'url: "redis://127.0.0.1:6379/0"' in sample
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples/urls.txt").write_text((root / "samples/urls.txt").read_text())
    p = tmp_path / "sample.yaml"
    p.write_text(sample.replace("redis://127.0.0.1:6379/0", redis.url))
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    urls = [l for l in (root / "samples/urls.txt").read_text().splitlines() if l and l[0] not in "#{"]
    assert len(urls) == 5
    assert [e["url"] for e in entries(redis, "afetch:requests")] == urls


def test_a_server_that_never_comes_back_ends_the_run_after_the_retry_budget(tmp_path, stream):
    server = RedisServer().start()
    try:
        p = tmp_path / "p.yaml"
        p.write_text(f"""name: gone
source: {{lines: {{paths: ["-"]}}}}
sink:
  redis: {{url: "{server.url}", stream: {stream}, batch: {{size: 1, linger: 1ms}}, retry: {{max: 2, backoff: 50ms..100ms}}}}
""")
        proc = subprocess.Popen([str(AETL), "run", "-q", "--state", str(tmp_path / "s.db"), str(p)], cwd=tmp_path,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc.stdin.write(b'{"id": 1}\n')
        proc.stdin.flush()
        deadline = time.time() + 20
        while time.time() < deadline and server.cli("XLEN", stream).strip() != "1":
            time.sleep(0.05)
        port = server.port
        server.stop()  # for good
        proc.stdin.write(b'{"id": 2}\n')
        proc.stdin.flush()
        proc.wait(timeout=60)
        err = proc.stderr.read().decode()
        assert proc.returncode == 1, err
        assert err.splitlines()[-1] == f"aetl: error: redis 127.0.0.1:{port}/0: Connection refused", err
        assert f"aetl: warning: redis stream {stream}: redis 127.0.0.1:{port}/0: Connection refused (attempt 1, retrying in " in err
    finally:
        server.stop()


def test_exactly_once_kill_9_rounds_add_nothing_twice(tmp_path, redis, stream):
    """With exactly_once the batch's XADDs and the checkpoint go in one script:
    30 kill -9 rounds at random moments, then a last run, and every record is in
    the stream exactly once, in order."""
    n = 20000
    write_jsonl(tmp_path / "in.jsonl", n)
    p = pipeline(tmp_path, redis.url, stream, "exactly_once: true, batch: {size: 200, linger: 5ms}", name=f"eo-{stream}")
    killed = kill_rounds(tmp_path, p, tmp_path / "state.sqlite", random.Random(5), rounds=30, pause=(0.005, 0.08))
    ids = [e["id"] for e in entries(redis, stream)]
    assert killed >= 5
    assert ids == list(range(n)), f"{len(ids) - len(set(ids))} doubled, {n - len(set(ids))} lost"
    assert redis.cli("HEXISTS", f"aetl:checkpoint:eo-{stream}", "checkpoint").strip() == "1"


def test_exactly_once_a_second_run_of_the_pipeline_is_stopped(tmp_path, redis, stream):
    """Another run (another state store, another host) that committed since this
    run read the checkpoint: this run's next batch is refused, exit 75."""
    name = f"eo-{stream}"
    p = pipeline(tmp_path, redis.url, stream, "exactly_once: true, batch: {size: 10, linger: 10ms}", name=name,
                 path="-")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    run = subprocess.Popen([str(AETL), "run", "-q", "--state", "a.db", str(p)], cwd=tmp_path, env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run.stdin.write("".join(json.dumps({"id": i}) + "\n" for i in range(10)).encode())
    run.stdin.flush()
    deadline = time.time() + 30
    while int(redis.cli("XLEN", stream)) < 10 and time.time() < deadline:
        time.sleep(0.02)
    redis.cli("HSET", f"aetl:checkpoint:{name}", "token", "another-run")  # another run committed
    run.stdin.write("".join(json.dumps({"id": i}) + "\n" for i in range(10, 20)).encode())
    run.stdin.close()
    err = run.stderr.read()
    run.wait(timeout=60)
    assert run.returncode == 75
    assert err.decode() == (f"aetl: error: redis stream {stream}: another run of pipeline '{name}' has committed "
                            "since this run read the checkpoint; this run stops without committing more\n")
    assert [e["id"] for e in entries(redis, stream)] == list(range(10))


def test_exactly_once_from_a_stream_to_a_stream_with_kill_9_rounds(tmp_path, redis, stream):
    """Workers copying stream A into stream B with exactly_once: the IDs of the
    entries added commit in the same script, so a worker killed between its add
    and its XACK adds nothing twice when the entry comes again."""
    n = 5000
    src = f"{stream}-in"
    redis.push(src, range(n))
    p = tmp_path / "w.yaml"
    p.write_text(f"""name: copy-{stream}
source:
  redis: {{url: "{redis.url}", stream: {src}, group: g, claim_idle: 1s, block: 100ms, count: 50, max_deliveries: 1000}}
sink:
  redis: {{url: "{redis.url}", stream: {stream}, exactly_once: true, batch: {{size: 100, linger: 10ms}}}}
""")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    rng = random.Random(9)
    for _ in range(30):
        w = subprocess.Popen([str(AETL), "run", "-q", str(p)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.2))
        w.kill()
        w.wait(timeout=30)
    text = p.read_text().replace("max_deliveries: 1000}", "max_deliveries: 1000, stop_when_idle: 1500ms}")
    p.write_text(text)
    r = run_aetl(["run", "-q", p], cwd=tmp_path, timeout=120)
    assert r.code == 0, r.stderr
    ids = [e["id"] for e in entries(redis, stream)]
    assert len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert len(ids) == n, f"{len(ids) - n} doubled"
    assert redis.pending(src, "g") == 0
