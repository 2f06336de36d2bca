"""Two runs of one pipeline (or two afetch with one --state) at once: the second
exits 75 at once naming the holder, or waits with --wait; an exactly-once sink
whose checkpoint another run moved (different state stores, one database) stops
the run that lost the race, committing nothing more. Nothing lost, nothing doubled.

The first run is kept slow by a fetch stage with a rate limit against the test
HTTP server, so the overlap is certain without timing assertions."""
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import AETL, AFETCH, run_aetl, run_afetch

N = 120


def write_pipeline(tmp_path, server, name="overlap", sink_path="out.db"):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(1, N + 1)))
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: {name}
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - fetch: {{url: '{server.url("/ok/")}{{id}}', rate: '${{RATE:-40/s}}', concurrency: 4, into: r}}
  - select: {{id: id}}
sink:
  sqlite: {{path: {sink_path}, table: t, exactly_once: true, batch: {{size: 10, linger: 50ms}}}}
""")
    return p


def start(tmp_path, args, rate="40/s", program=AETL):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"), RATE=rate)
    env.pop("http_proxy", None)
    return subprocess.Popen([str(program), *map(str, args)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(cond, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def holds_lock(lock_file, pid):
    return lock_file.exists() and lock_file.read_text() == f"{pid}\n"


def committed_rows(db_path):
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT count(*) FROM t").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def count_distinct(db_path):
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone()


def test_a_second_run_of_the_same_pipeline_exits_75_naming_the_holder(tmp_path, server):
    p = write_pipeline(tmp_path, server)
    state = tmp_path / "st.sqlite"
    first = start(tmp_path, ["run", "-q", "--state", state, p])
    wait_for(lambda: holds_lock(tmp_path / "st.sqlite.lock", first.pid), "the first run's lock")
    second = run_aetl(["run", "-q", "--state", state, p], cwd=tmp_path, env={"RATE": "100000/s"})
    assert second.code == 75
    assert second.stderr == (f"aetl: pipeline 'overlap' is already running (pid {first.pid} holds "
                             f"{state}.lock); --wait waits for it\n")
    # --wait: starts once the first is done, resumes from its checkpoint, finds nothing left
    waiting = start(tmp_path, ["run", "-q", "--wait", "--state", state, p], rate="100000/s")
    assert first.wait(timeout=60) == 0, first.stderr.read().decode()
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err.decode()
    assert count_distinct(tmp_path / "out.db") == (N, N)
    assert server.stats()["total"] == N  # the waiting run fetched nothing again


def test_a_killed_run_leaves_no_stale_lock(tmp_path, server):
    p = write_pipeline(tmp_path, server)
    state = tmp_path / "st.sqlite"
    first = start(tmp_path, ["run", "-q", "--state", state, p])
    wait_for(lambda: committed_rows(tmp_path / "out.db") >= 10, "a first commit")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    rerun = run_aetl(["run", "-q", "--state", state, p], cwd=tmp_path, env={"RATE": "100000/s"})
    assert rerun.code == 0, rerun.stderr
    assert count_distinct(tmp_path / "out.db") == (N, N)


def test_a_paused_run_that_another_state_store_overtook_stops_without_committing(tmp_path, server):
    p = write_pipeline(tmp_path, server)
    first = start(tmp_path, ["run", "-q", "--state", "a.sqlite", p])
    wait_for(lambda: committed_rows(tmp_path / "out.db") >= 10, "a first commit")
    # Pause it between transactions (never while it holds the database's write lock).
    for _ in range(50):
        first.send_signal(signal.SIGSTOP)
        try:
            with sqlite3.connect(tmp_path / "out.db", timeout=0.2) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            break
        except sqlite3.OperationalError:
            first.send_signal(signal.SIGCONT)
            time.sleep(0.03)
    else:
        pytest.fail("could not pause the first run between transactions")
    second = run_aetl(["run", "-q", "--state", "b.sqlite", p], cwd=tmp_path, env={"RATE": "100000/s"})
    assert second.code == 0, second.stderr
    assert count_distinct(tmp_path / "out.db") == (N, N)
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 75
    assert err.decode().splitlines()[-1] == (
        "aetl: error: sqlite out.db: another run of pipeline 'overlap' has committed since this run read "
        "the checkpoint; this run stops without committing more")
    assert count_distinct(tmp_path / "out.db") == (N, N)


def test_a_second_afetch_with_the_same_state_exits_75_and_wait_waits(tmp_path, server, write_urls):
    urls = write_urls([server.url(f"/delay/300/{i}") for i in range(8)])
    state = tmp_path / "s.db"
    first = start(tmp_path, ["-q", "-j", "2", "--state", state, urls], program=AFETCH)
    wait_for(lambda: holds_lock(tmp_path / "s.db.lock", first.pid), "the first afetch's lock")
    second = run_afetch(["-q", "--state", state, urls])
    assert second.code == 75
    assert second.stderr == f"afetch: --state {state} is in use by another afetch (pid {first.pid}); --wait waits for it\n"
    assert second.stdout == b""
    waiting = run_afetch(["-q", "--wait", "--state", state, urls])
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert len(out.splitlines()) == 8
    assert waiting.code == 0, waiting.stderr
    assert waiting.stdout == b""  # every URL was done by the first
    assert server.stats()["total"] == 8
