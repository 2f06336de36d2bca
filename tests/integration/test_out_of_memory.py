"""Allocation failures injected at random (Debian's fiu-utils: libfiu's
`libc/mm/malloc` point fails malloc with ENOMEM): every run of `aetl run`,
`aetl validate` and afetch ends on its own, either done or with a clean one-line
error and a documented exit code, never SIGABRT and never a hang; a SIGTERM in
the middle always ends the process within the grace period plus its margin.
Bounded: a fixed number of runs, each with a time limit."""
import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from conftest import AETL, AFETCH

pytestmark = pytest.mark.skipif(shutil.which("fiu-run") is None, reason="fiu-utils is not installed")

RUNS = 12
PROBABILITIES = (0.0005, 0.0001)  # the first fails early in most runs; the second gets further in
LIMIT = 60          # seconds a run may take at most
GRACE_MS = 500
MARGIN = 3          # kHardStopMargin in engine/shutdown.h
CLEAN_ENDINGS = (
    "error: out of memory; stopped (what was committed is kept)",
    "did not stop in time; exiting now (what was committed is kept)",
)


def fiu(cmd, probability):
    return ["fiu-run", "-x", "-c", f"enable_random name=libc/mm/malloc,probability={probability}", *map(str, cmd)]


def run_injected(cmd, cwd, probability=0.0005, term_after=None):
    env = dict(os.environ, XDG_STATE_HOME=str(cwd / ".state"))
    env.pop("http_proxy", None)
    proc = subprocess.Popen(fiu(cmd, probability), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    limit = LIMIT
    if term_after is not None:
        time.sleep(term_after)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            limit = GRACE_MS / 1000 + MARGIN + 5  # slack for a loaded machine
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{cmd[:2]} did not end within {limit} s (hung)")
    code = proc.returncode
    if code == -signal.SIGTERM and term_after is not None:
        code = 130  # the signal came before the run set up its handlers: it ended, as by default
    return code, err.decode("utf-8", "replace")


def assert_clean(code, err, allowed):
    assert code >= 0, f"killed by signal {-code}: {err[-2000:]}"
    assert code in allowed, f"exit {code}: {err[-2000:]}"
    assert "terminate called" not in err, err[-2000:]
    last = err.rstrip("\n").split("\n")[-1]
    if ": error: out of memory" in last or "did not stop in time" in last:
        assert last.split(": ", 1)[1] in CLEAN_ENDINGS, last


@pytest.fixture()
def workdir(tmp_path, server):
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": i, "status": 200 + (i % 4) * 100, "name": f"n{i}"}) + "\n" for i in range(20000)))
    (tmp_path / "p.yaml").write_text("""name: oom
source: {lines: {paths: [in.jsonl]}}
stages:
  - filter: 'status != 300'
  - set: {tag: upper(name)}
sink:
  sqlite: {path: out.db, table: t, key: [id], batch: {size: 500, linger: 20ms}}
dead_letter:
  jsonl: {path: dl.jsonl}
""")
    (tmp_path / "urls.txt").write_text("".join(server.url(f"/ok/{i}") + "\n" for i in range(300)))
    return tmp_path


def test_aetl_run_ends_cleanly_whatever_allocation_fails(workdir):
    rng = random.Random(7)
    for i in range(RUNS):
        code, err = run_injected([AETL, "run", "-q", "--grace", f"{GRACE_MS}ms", "--state", "s.sqlite", "p.yaml"],
                                 workdir, probability=PROBABILITIES[i % 2], term_after=rng.choice([None, 0.05, 0.2]))
        assert_clean(code, err, (0, 1, 2, 130))
    # and the state survived: a run without injection finishes the job
    final = subprocess.run([AETL, "run", "-q", "--state", "s.sqlite", "p.yaml"], cwd=workdir, capture_output=True,
                           timeout=LIMIT)
    assert final.returncode == 0, final.stderr.decode()


def test_aetl_validate_ends_cleanly_whatever_allocation_fails(workdir):
    for _ in range(RUNS):
        code, err = run_injected([AETL, "validate", "p.yaml"], workdir, probability=0.002)
        assert_clean(code, err, (0, 1, 2))


def test_afetch_ends_cleanly_whatever_allocation_fails(workdir):
    rng = random.Random(8)
    for i in range(RUNS):
        code, err = run_injected([AFETCH, "-q", "-j", "16", "--grace", f"{GRACE_MS}ms", "--state", "f.db",
                                  "--output", "out.jsonl", "--append", "urls.txt"],
                                 workdir, probability=PROBABILITIES[i % 2], term_after=rng.choice([None, 0.05, 0.2]))
        assert_clean(code, err, (0, 1, 2, 130))
