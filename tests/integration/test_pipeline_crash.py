"""Crash safety: a file → sink pipeline killed with SIGKILL at random moments, rerun
each time; at the end the output holds exactly the expected records, none lost,
none doubled. Bounded: a fixed number of rounds, each kill within a second."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import AETL, kill_rounds, run_aetl

ROUNDS = 20
RECORDS = 300000


def make_input(path):
    with open(path, "w") as f:
        for i in range(1, RECORDS + 1):
            f.write(json.dumps({"id": i, "status": 200 + (i % 5) * 100, "name": f"n{i}", "pad": "x" * 80}) + "\n")
    # ids kept by the filter: status != 300, i.e. i % 5 != 1
    return {i for i in range(1, RECORDS + 1) if i % 5 != 1}


@pytest.mark.parametrize("mode", ["key", "exactly_once"])
def test_sqlite_survives_sigkill(tmp_path, mode):
    expected = make_input(tmp_path / "in.jsonl")
    extra = "key: [id]" if mode == "key" else "exactly_once: true"
    p = tmp_path / "p.yaml"
    p.write_text(f"""
name: crash-{mode}
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - filter: 'status != 300'
  - set: {{tag: upper(name)}}
sink:
  sqlite: {{path: out.db, table: t, columns: {{id: INTEGER, name: TEXT, tag: TEXT}}, {extra}, batch: {{size: 700, linger: 50ms}}}}
""")
    killed = kill_rounds(tmp_path, p, tmp_path / "state.sqlite", random.Random(3 if mode == "key" else 4))
    assert killed >= 10, "the runs were too quick to be killed: make the input bigger"
    db = sqlite3.connect(tmp_path / "out.db")
    ids = [r[0] for r in db.execute("SELECT id FROM t")]
    assert len(ids) == len(set(ids)), "doubled rows"
    assert set(ids) == expected, f"lost {len(expected - set(ids))} rows"


def test_jsonl_file_survives_sigkill(tmp_path):
    expected = make_input(tmp_path / "in.jsonl")
    p = tmp_path / "p.yaml"
    p.write_text("""
name: crash-jsonl
source: {lines: {paths: [in.jsonl]}}
stages:
  - filter: 'status != 300'
  - select: {id: id}
sink:
  jsonl: {path: out.jsonl, batch: {size: 900, linger: 50ms}}
""")
    killed = kill_rounds(tmp_path, p, tmp_path / "state.sqlite", random.Random(5))
    assert killed >= 10
    ids = [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)), "doubled lines"
    assert set(ids) == expected
    assert ids == sorted(ids), "the file is not in input order"
