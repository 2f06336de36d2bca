"""Errors a person can act on: keys an SQLite table cannot hold apart, a state
store on a full disk, a checkpoint that could not be saved. Each message is
compared whole, and nothing is written or lost."""
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import AETL, run_aetl


def test_keys_that_differ_only_in_case_are_one_line_error_before_anything_is_written(tmp_path, pipeline):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "Id": 2, "x": 3}\n{"id": 4, "Id": 5, "x": 6}\n')
    p = pipeline("""name: clash
source: {lines: {paths: [in.jsonl]}}
sink: {sqlite: {path: out.db, table: t}}
""")
    r = run_aetl(["run", "-q", p], cwd=tmp_path)
    assert r.code == 2
    assert r.stderr == ("aetl: sqlite out.db: the first record's keys 'id' and 'Id' would be one column (SQLite "
                        "column names ignore case); rename one with select:, or list columns:\n")
    with sqlite3.connect(tmp_path / "out.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone() == (0,)


def test_declared_columns_that_differ_only_in_case_fail_validation(tmp_path, pipeline):
    p = pipeline("""name: clash
source: {lines: {paths: [in.jsonl]}}
sink:
  sqlite: {path: out.db, table: t, columns: {id: INTEGER, ID: TEXT}}
""")
    r = run_aetl(["validate", p], cwd=tmp_path)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"{p}:4:45: sink sqlite: columns: 'id' and 'ID' would be one column (SQLite column names ignore case)")


def in_full_tmpfs(tmp_path, script, free_kib=16):
    """Runs `script` (sh) in a private mount namespace with tmp_path/full a 1 MiB
    tmpfs filled up but for `free_kib`, so writes there soon fail with ENOSPC.
    Needs root."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private tmpfs")
    (tmp_path / "full").mkdir(exist_ok=True)
    wrapper = ("set -e; mount -t tmpfs -o size=1m tmpfs full; "
               f"dd if=/dev/zero of=full/filler bs=1k count={1024 - free_kib} 2>/dev/null || true; " + script)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"), AETL=str(AETL))
    return subprocess.run(["unshare", "-m", "sh", "-c", wrapper], cwd=tmp_path, env=env, capture_output=True,
                          timeout=120)


def test_a_state_store_on_a_full_disk_says_why(tmp_path, pipeline):
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    pipeline("""name: full
source: {lines: {paths: [in.jsonl]}}
sink: {jsonl: {path: out.jsonl}}
""", name="p.yaml")
    # Room for the file but not for its WAL: SQLite says "disk I/O error", the system ENOSPC.
    r = in_full_tmpfs(tmp_path, '"$AETL" run -q --state full/st.sqlite p.yaml')
    assert r.returncode == 2
    assert r.stderr.decode() == ("aetl: full/st.sqlite: not a usable state store: disk I/O error "
                                 "(No space left on device)\n")
    # No room at all: SQLite's own words are clear.
    r = in_full_tmpfs(tmp_path, '"$AETL" run -q --state full/st.sqlite p.yaml', free_kib=0)
    assert r.returncode == 2
    assert r.stderr.decode() == "aetl: full/st.sqlite: not a usable state store: database or disk is full\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_the_summary_says_when_the_checkpoint_could_not_be_saved(tmp_path, pipeline):
    import re
    import time
    p = pipeline("""name: unsaved
source: {lines: {paths: ["-"]}}
sink: {jsonl: {path: out.jsonl}}
""")
    state = tmp_path / "st.sqlite"
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    proc = subprocess.Popen([str(AETL), "run", "--no-progress", "--state", str(state), str(p)], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:  # the store is open once the start checkpoint is in it
        try:
            with sqlite3.connect(state, timeout=1) as db:
                if db.execute("SELECT count(*) FROM aetl_checkpoints").fetchone()[0]:
                    break
        except sqlite3.OperationalError:
            pass
        assert time.monotonic() < deadline, "the run did not open its state store"
        time.sleep(0.05)
    blocker = sqlite3.connect(state, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every save waits its 10 s busy timeout, then fails
    try:
        _, err = proc.communicate(b'{"id": 1}\n', timeout=120)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    lines = err.decode().splitlines()
    assert proc.returncode == 1
    assert f"aetl: error: {state}: cannot save the checkpoint: database is locked" in lines
    assert re.fullmatch(rf"[0-9.]+s, the checkpoint could not be saved in {re.escape(str(state))}", lines[-1]), lines
    assert (tmp_path / "out.jsonl").read_text() == '{"id": 1}\n'


def test_exactly_once_on_the_dead_letter_is_refused(tmp_path, pipeline):
    # It would store a second checkpoint under the pipeline's name, over the main sink's.
    p = pipeline("""name: dl
source: {lines: {paths: [in.jsonl]}}
sink: {sqlite: {path: out.db, table: t, exactly_once: true}}
dead_letter:
  sqlite: {path: out.db, table: failed, exactly_once: true}
""")
    r = run_aetl(["validate", p], cwd=tmp_path)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"{p}:5:55: dead_letter sqlite: exactly_once: is for the main sink only (the checkpoint it keeps covers the "
        "dead letter too)")


def test_exactly_once_on_the_dead_letter_is_refused_however_true_is_spelled(tmp_path, pipeline):
    # A regression: only the text "true" was refused; "yes" (a boolean too) slipped through.
    p = pipeline("""name: dl
source: {lines: {paths: [in.jsonl]}}
sink: {jsonl: {path: out.jsonl}}
dead_letter:
  postgres: {table: failed, exactly_once: yes}
""")
    r = run_aetl(["validate", p], cwd=tmp_path)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"{p}:5:43: dead_letter postgres: exactly_once: is for the main sink only (the checkpoint it keeps covers "
        "the dead letter too)")


def test_the_summary_names_the_exactly_once_sink_that_holds_the_checkpoint(tmp_path, pipeline):
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    p = pipeline("""name: eo
source: {lines: {paths: [in.jsonl]}}
sink: {sqlite: {path: out.db, table: t, exactly_once: true}}
""")
    r = run_aetl(["run", "--no-progress", "--state", "st.sqlite", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert r.stderr.splitlines()[-1].endswith("s, checkpoint in sqlite out.db")
