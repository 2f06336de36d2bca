"""The redis source (a consumer-group worker) against a real redis-server
started by the tests. Workers are separate processes; an entry is acknowledged
only once its record is handled for good, entries of dead or paused workers are
claimed by the others, a poison entry reaches the dead letter after
max_deliveries, and a server restart loses nothing. Oracle: the unique ids of
the entries pushed, counted (and counted distinct) in the sink at the end, and
XPENDING empty."""
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from conftest import AETL, run_aetl


def push(server, stream, ids, field="data"):
    server.push(stream, ids, field)


def pending(server, stream, group):
    return server.pending(stream, group)


def worker_yaml(tmp_path, server, sink, name="w.yaml", extra=""):
    p = tmp_path / name
    p.write_text(f"""name: worker
source:
  redis: {{url: "{server.url}", stream: jobs, group: g, claim_idle: 1s, block: 200ms{", " + extra if extra else ""}}}
sink:
  {sink}
dead_letter:
  jsonl: {{path: {tmp_path}/dl.jsonl, append: true}}
""")
    return p


def start_worker(tmp_path, pipeline, n):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    return subprocess.Popen([str(AETL), "run", "-q", "--state", str(tmp_path / f"w{n}.state"), str(pipeline)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def table_ids(db):
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t")]
    finally:
        con.close()


def test_a_worker_takes_every_entry_once_and_acknowledges_it(tmp_path, redis):
    push(redis, "jobs", range(3000))
    redis.cli("XADD", "jobs", "*", "data", "not json")
    redis.cli("XADD", "jobs", "*", "other", "x")
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}", extra="stop_when_idle: 500ms")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    ids = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert ids == list(range(3000))
    dl = [json.loads(l) for l in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert [d["error"].split(": ", 1)[1] for d in dl] == ["field 'data': not a JSON object", "no field 'data'"]
    assert all(d["error"].startswith("stream jobs entry ") and d["stage"] == "source redis" for d in dl)
    assert pending(redis, "jobs", "g") == 0
    # a second worker finds nothing new and ends
    r = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 0  # a fresh run truncates; nothing came


def test_bad_setup_is_one_line_and_exit_2(tmp_path, redis):
    redis.cli("SET", "jobs", "a string")
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 2
    assert r.stderr == f"aetl: source redis: 127.0.0.1:{redis.port}/0: key 'jobs' holds a string, not a stream\n"


def test_kill_9_rounds_among_three_workers_lose_and_double_nothing(tmp_path, redis):
    """Three workers into one SQLite table (upserted by id); one at a time is
    killed with SIGKILL at a random moment and started again, 30 times. Its
    entries are claimed by the others after claim_idle. At the end a last worker
    drains what is left: every id once in the table, nothing pending."""
    n = 6000
    push(redis, "jobs", range(n))
    db = tmp_path / "out.db"
    sink = f"sqlite: {{path: {db}, table: t, key: [id], batch: {{size: 200, linger: 20ms}}}}"
    # every restart claims what the killed ones held: deliveries pile up, and
    # the poison limit is tested on its own
    p = worker_yaml(tmp_path, redis, sink, extra="count: 50, max_deliveries: 1000")
    rng = random.Random(21)
    workers = [start_worker(tmp_path, p, i) for i in range(3)]
    killed = 0
    deadline = time.time() + 60
    for _ in range(30):
        time.sleep(rng.uniform(0.05, 0.25))
        i = rng.randrange(3)
        workers[i].send_signal(signal.SIGKILL)
        workers[i].wait(timeout=30)
        killed += 1
        workers[i] = start_worker(tmp_path, p, i)
        assert time.time() < deadline, "the rounds took too long"
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode in (0, 130, -signal.SIGTERM), err.decode()  # -15: before its handlers were set
    last = worker_yaml(tmp_path, redis, sink, name="last.yaml", extra="count: 50, max_deliveries: 1000, stop_when_idle: 1500ms")
    r = run_aetl(["run", "-q", "--state", "last.state", last], cwd=tmp_path, timeout=120)
    assert r.code == 0, r.stderr
    ids = table_ids(db)
    assert killed == 30
    assert len(ids) == n and len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert pending(redis, "jobs", "g") == 0
    assert not (tmp_path / "dl.jsonl").exists() or (tmp_path / "dl.jsonl").read_text() == ""


def test_a_paused_worker_loses_its_entries_to_the_others_and_doubles_nothing(tmp_path, redis):
    n = 20000
    push(redis, "jobs", range(n))
    # the paused worker writes into its own file, the other into another: together
    # they hold each id at least once; with the claims, ids written twice are only
    # those the paused one had already written before its pause
    pa = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/a.jsonl}}", name="a.yaml", extra="count: 20")
    pb = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/b.jsonl}}", name="b.yaml",
                     extra="count: 20, stop_when_idle: 3s")
    a = start_worker(tmp_path, pa, "a")
    held = 0
    for _ in range(100):  # stopped in the middle: while it holds entries it has not acknowledged
        deadline = time.time() + 30
        while pending(redis, "jobs", "g") == 0 and time.time() < deadline:
            time.sleep(0.002)
        a.send_signal(signal.SIGSTOP)
        held = pending(redis, "jobs", "g")
        if held:
            break
        a.send_signal(signal.SIGCONT)
    assert held > 0, "the paused worker held nothing"
    b = start_worker(tmp_path, pb, "b")
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err.decode()
    assert pending(redis, "jobs", "g") == 0  # a is still stopped: b took over what a held
    a.send_signal(signal.SIGCONT)
    time.sleep(0.5)
    a.send_signal(signal.SIGTERM)
    _, err = a.communicate(timeout=60)
    assert a.returncode in (0, 130), err.decode()
    ids_a = [json.loads(l)["id"] for l in (tmp_path / "a.jsonl").read_text().splitlines()]
    ids_b = [json.loads(l)["id"] for l in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert set(ids_a) | set(ids_b) == set(range(n))
    assert pending(redis, "jobs", "g") == 0


def test_a_poison_entry_goes_to_the_dead_letter_after_max_deliveries(tmp_path, redis):
    push(redis, "jobs", range(10))
    redis.cli("XGROUP", "CREATE", "jobs", "g", "0")
    # a consumer that keeps dying on entry 3: read by "ghost", delivered 3 times
    first = redis.cli("XREADGROUP", "GROUP", "g", "ghost", "COUNT", "4", "STREAMS", "jobs", ">").splitlines()
    poison_id = [l for l in first if "-" in l and l[0].isdigit()][3]
    for _ in range(2):
        redis.cli("XCLAIM", "jobs", "g", "ghost", "0", poison_id)
    time.sleep(1.1)  # idle past claim_idle
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}",
                    extra="max_deliveries: 3, stop_when_idle: 1500ms")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    ids = sorted(json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines())
    assert ids == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    dl = [json.loads(l) for l in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert len(dl) == 1
    assert dl[0]["error"] == f"stream jobs entry {poison_id}: delivered 4 times (max_deliveries 3)"
    assert dl[0]["record"] == {"id": 3}
    assert pending(redis, "jobs", "g") == 0


def test_a_server_restart_mid_run_loses_nothing(tmp_path, redis):
    n = 4000
    push(redis, "jobs", range(n))
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl, batch: {{size: 100, linger: 10ms}}}}",
                    extra="count: 20, stop_when_idle: 2s")
    w = subprocess.Popen([str(AETL), "run", "--state", str(tmp_path / "s.db"), str(p)], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    redis.restart(down_for=0.5)
    _, err = w.communicate(timeout=120)
    assert w.returncode == 0, err.decode()
    assert "connecting again" in err.decode(), err.decode()  # the restart hit the worker, and it came back
    ids = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert set(ids) == set(range(n)), f"{n - len(set(ids))} lost"
    assert pending(redis, "jobs", "g") == 0


def test_sigterm_finishes_what_is_in_flight_and_leaves_the_rest(tmp_path, redis):
    n = 100000
    push(redis, "jobs", range(n))
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl, batch: {{size: 100, linger: 10ms}}}}",
                    extra="count: 10")
    w = start_worker(tmp_path, p, 0)
    out = tmp_path / "out.jsonl"
    deadline = time.time() + 30
    while (not out.exists() or out.stat().st_size == 0) and time.time() < deadline:
        time.sleep(0.02)
    w.send_signal(signal.SIGTERM)
    _, err = w.communicate(timeout=60)
    assert w.returncode == 130, err.decode()
    ids = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert 0 < len(ids) < n
    assert pending(redis, "jobs", "g") == 0  # what it read, it wrote and acknowledged
    # the rest is still there for the others
    info = redis.cli("XINFO", "GROUPS", "jobs").splitlines()
    lag = int(info[info.index("lag") + 1]) if "lag" in info else None
    assert lag == n - len(ids)


def test_the_worker_sample_fetches_what_the_producer_sample_pushed(tmp_path, redis, server):
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples-out").mkdir()
    (tmp_path / "samples/urls.txt").write_text(f"# two URLs\n{server.url('/ok/1')}\n{server.url('/status/404')}\n")
    for name in ("urls-to-redis.yaml", "redis-worker.yaml"):
        text = (root / "samples/pipelines" / name).read_text()
        assert 'url: "redis://127.0.0.1:6379/0"' in text
        (tmp_path / name).write_text(text.replace("redis://127.0.0.1:6379/0", redis.url).replace("stop_when_idle: 5s",
                                                                                                "stop_when_idle: 1s"))
    r = run_aetl(["run", "-q", "--state", "p.state", "urls-to-redis.yaml"], cwd=tmp_path)
    assert r.code == 0, r.stderr
    r = run_aetl(["run", "-q", "redis-worker.yaml"], cwd=tmp_path)
    assert r.code == 0, r.stderr
    con = sqlite3.connect(tmp_path / "samples-out/fetched.db")
    got = [{"url": u, "status": s} for u, s in con.execute("SELECT url, status FROM fetched")]
    con.close()
    failed = [json.loads(l) for l in (tmp_path / "samples-out/fetched-failed.jsonl").read_text().splitlines()]
    assert got == [{"url": server.url("/ok/1"), "status": 200}]
    assert [f["record"]["url"] for f in failed] == [server.url("/status/404")]
    assert pending(redis, "afetch:requests", "fetchers") == 0


def test_a_busy_worker_keeps_its_entries_past_claim_idle(tmp_path, redis, server):
    """Each record takes 2.5 s (a slow URL) against a claim_idle of 1 s: the worker
    renews its claim while it works, so a second worker claims nothing."""
    urls = [server.url(f"/delay/2500/{i}") for i in range(4)]
    lines = "".join(f'XADD jobs * data "{{\\"url\\": \\"{u}\\"}}"\n' for u in urls)
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port)], input=lines, text=True, check=True,
                   capture_output=True)
    stages = "stages:\n  - fetch: {url: '{url}', into: http, concurrency: 8}\n  - select: {url: url, status: http.status}\n"
    for name, extra in (("a", "count: 10"), ("b", "count: 10, stop_when_idle: 1s")):
        text = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/{name}.jsonl}}", name=f"{name}.yaml",
                           extra=extra).read_text()
        (tmp_path / f"{name}.yaml").write_text(text.replace("sink:", stages + "sink:"))
    a = start_worker(tmp_path, tmp_path / "a.yaml", "a")
    deadline = time.time() + 20
    while pending(redis, "jobs", "g") < 4 and time.time() < deadline:  # a has taken all four
        time.sleep(0.05)
    b = start_worker(tmp_path, tmp_path / "b.yaml", "b")
    _, err = b.communicate(timeout=60)  # ends once a acknowledged everything
    assert b.returncode == 0, err.decode()
    a.send_signal(signal.SIGTERM)
    _, err = a.communicate(timeout=60)
    assert a.returncode in (0, 130), err.decode()
    got_a = [json.loads(l)["url"] for l in (tmp_path / "a.jsonl").read_text().splitlines()]
    got_b = (tmp_path / "b.jsonl").read_text()
    assert sorted(got_a) == sorted(urls)
    assert got_b == ""
    assert pending(redis, "jobs", "g") == 0


def test_entries_read_ahead_while_the_pipeline_is_full_are_kept_too(tmp_path, redis):
    """Worker a's sink is blocked (another process holds its SQLite file's write
    lock for 3 s), so its pipeline fills and its next read's entries wait to be
    passed on: a renews them as it does the ones it holds, so worker b, idle,
    claims none of them, and no entry is written by both."""
    n = 60
    redis.push("jobs", range(n))
    db = tmp_path / "a.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("CREATE TABLE t (id INTEGER)")
    # retried for long enough: the lock below may outlast SQLite's 5 s busy timeout on a loaded machine
    pa = worker_yaml(tmp_path, redis, f"sqlite: {{path: {db}, table: t, batch: {{size: 5, linger: 10ms}}, "
                     "retry: {max: 20, backoff: 200ms..1s}}",
                     name="a.yaml", extra="count: 5, stop_when_idle: 1s")
    pb = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/b.jsonl}}", name="b.yaml",
                     extra="count: 5, stop_when_idle: 1s")
    a = start_worker(tmp_path, pa, "a")
    deadline = time.time() + 20
    while pending(redis, "jobs", "g") == 0 and time.time() < deadline:
        time.sleep(0.01)
    con.execute("BEGIN EXCLUSIVE")  # a's next write waits (SQLite's 5 s busy timeout)
    deadline = time.time() + 20
    while pending(redis, "jobs", "g") < 20 and time.time() < deadline:
        time.sleep(0.02)
    b = start_worker(tmp_path, pb, "b")
    time.sleep(3)  # past claim_idle (1 s) while a is blocked
    con.execute("COMMIT")
    con.close()
    for w in (a, b):
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    got_a = table_ids(db)
    got_b = [json.loads(l)["id"] for l in (tmp_path / "b.jsonl").read_text().splitlines()] \
        if (tmp_path / "b.jsonl").exists() else []
    assert sorted(got_a + got_b) == list(range(n)), f"written twice: {sorted(set(got_a) & set(got_b))}"
    assert pending(redis, "jobs", "g") == 0


def test_a_worker_restarted_under_its_name_takes_its_old_entries_once_and_new_ones_too(tmp_path, redis):
    """A regression: a worker with a fixed consumer name that still owned pending
    entries read them again and again and never read new ones."""
    push(redis, "jobs", range(300))
    redis.cli("XGROUP", "CREATE", "jobs", "g", "0")
    redis.cli("XREADGROUP", "GROUP", "g", "w1", "COUNT", "300", "STREAMS", "jobs", ">")  # w1 "dies" holding them
    push(redis, "jobs", range(300, 400))  # new entries meanwhile
    time.sleep(1.1)  # idle past claim_idle
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}",
                    extra="consumer: w1, count: 10, stop_when_idle: 1500ms")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    ids = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(ids) == list(range(400))
    assert pending(redis, "jobs", "g") == 0


def test_with_no_dead_letter_a_bad_entry_stays_pending_and_the_run_ends(tmp_path, redis):
    push(redis, "jobs", [1])
    redis.cli("XADD", "jobs", "*", "data", "not json")
    push(redis, "jobs", [2])
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: nodl
source:
  redis: {{url: "{redis.url}", stream: jobs, group: g, claim_idle: 10s, block: 200ms, stop_when_idle: 500ms}}
sink:
  jsonl: {{path: {tmp_path}/out.jsonl}}
""")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, timeout=60)
    assert r.code == 1, r.stderr  # a record failed with no dead letter
    assert [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()] == [1, 2]
    assert pending(redis, "jobs", "g") == 1  # left for a later claim, not acknowledged


def test_limit_holds_for_claimed_entries_too(tmp_path, redis):
    push(redis, "jobs", range(50))
    redis.cli("XGROUP", "CREATE", "jobs", "g", "0")
    redis.cli("XREADGROUP", "GROUP", "g", "dead", "COUNT", "50", "STREAMS", "jobs", ">")
    time.sleep(1.1)
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}", extra="count: 7, stop_when_idle: 500ms")
    r = run_aetl(["run", "-q", "--state", "s.db", "--limit", "10", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 10


def test_a_server_that_never_comes_back_ends_the_run_with_one_line(tmp_path, redis):
    redis.push("jobs", range(10))
    p = worker_yaml(tmp_path, redis, f"jsonl: {{path: {tmp_path}/out.jsonl}}",
                    extra="retry: {max: 2, backoff: 100ms..200ms}")
    w = start_worker(tmp_path, p, "x")
    deadline = time.time() + 30
    while pending(redis, "jobs", "g") + 0 == 0 and not (tmp_path / "out.jsonl").exists() and time.time() < deadline:
        time.sleep(0.02)
    redis.proc.kill()  # gone for good
    redis.proc.wait(timeout=30)
    _, err = w.communicate(timeout=60)
    assert w.returncode == 1
    last = err.decode().splitlines()[-1]
    assert re.fullmatch(rf"aetl: error: source redis: redis 127\.0\.0\.1:{redis.port}/0: Connection refused "
                        r"\(gave up after 3 tries in \d+ s\)", last), last
    assert [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()] == list(range(10))


SLOW_LOOKUP = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
/* "slow-queue" takes 3 s to look up, then is 127.0.0.1; other names as usual. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
  int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) = dlsym(RTLD_NEXT, "getaddrinfo");
  if (node && strcmp(node, "slow-queue") == 0) { sleep(3); node = "127.0.0.1"; }
  return real(node, service, hints, res);
}
'''


def test_a_host_name_lookup_past_the_timeout_ends_the_try(tmp_path, redis):
    """The host name's lookup takes 3 s (getaddrinfo slowed by a preloaded
    shim), the source's timeout is 500 ms and no retry is allowed: the run ends
    with the lookup's message, exit 2 (before, the connect waited for the lookup,
    then went on as if in time)."""
    shim = tmp_path / "slow_lookup.so"
    (tmp_path / "slow_lookup.c").write_text(SLOW_LOOKUP)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(tmp_path / "slow_lookup.c"), "-ldl"], check=True)
    push(redis, "jobs", range(3))
    p = tmp_path / "w.yaml"
    p.write_text(f"""name: w
source:
  redis: {{url: "redis://slow-queue:{redis.port}/0", stream: jobs, group: g, stop_when_idle: 500ms, timeout: 500ms,
           retry: {{max: 0}}}}
sink:
  jsonl: {{path: {tmp_path}/out.jsonl}}
""")
    r = run_aetl(["run", str(p)], cwd=tmp_path, env=dict(os.environ, LD_PRELOAD=str(shim)))
    assert r.code == 2, r.stderr
    assert r.stderr == (f"aetl: source redis: redis slow-queue:{redis.port}/0: cannot resolve 'slow-queue': "
                        "no answer in time\n")
