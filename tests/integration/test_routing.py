"""Several sinks (`sinks:`) and the `route` stage.

A record goes to every sink, or to the sinks of the case it matches; its input
position is acknowledged only once every sink it went to has committed it, and an
exactly-once sink keeps its own checkpoint, so kill -9 rounds leave each sink with
exactly its records. Real PostgreSQL, started by the tests."""
import json
import random
import sqlite3

import pytest

from conftest import kill_rounds, run_aetl

_tables = [0]


def write_input(path, n, pad=""):
    with open(path, "w") as f:
        for i in range(1, n + 1):
            f.write(json.dumps({"id": i, "status": 500 if i % 10 == 0 else (404 if i % 10 == 1 else 200), "pad": pad})
                    + "\n")


def sqlite_rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_records_go_to_every_sink_or_where_their_case_sends_them(tmp_path):
    write_input(tmp_path / "in.jsonl", 1000)
    (tmp_path / "p.yaml").write_text("""\
name: routed
source: {lines: {paths: [in.jsonl]}}
stages:
  - route:
      mode: all
      cases:
        - {name: errors, when: 'status >= 500', to: [alerts, archive]}
        - {name: missing, when: 'status == 404', to: [archive, notfound]}
        - {name: all, to: archive}
sinks:
  alerts: {sqlite: {path: out.db, table: alerts}}
  notfound: {jsonl: {path: notfound.jsonl}}
  archive: {jsonl: {path: archive.jsonl}}
""")
    res = run_aetl(["run", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert sqlite_rows(tmp_path / "out.db", "SELECT count(*), min(status) FROM alerts") == [(100, 500)]
    assert len((tmp_path / "notfound.jsonl").read_text().splitlines()) == 100
    archive = [json.loads(l)["id"] for l in (tmp_path / "archive.jsonl").read_text().splitlines()]
    assert sorted(archive) == list(range(1, 1001)), "mode all: a record goes once to a sink two cases name"
    assert "sink alerts" in res.stderr and "sink archive" in res.stderr and "route#1" in res.stderr
    # a rerun resumes with nothing left
    again = run_aetl(["run", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert again.code == 0 and len((tmp_path / "archive.jsonl").read_text().splitlines()) == 1000


def test_without_a_route_every_record_goes_to_every_sink(tmp_path):
    write_input(tmp_path / "in.jsonl", 500)
    (tmp_path / "p.yaml").write_text("""\
source: {lines: {paths: [in.jsonl]}}
sinks:
  a: {jsonl: {path: a.jsonl}}
  b: {csv: {path: b.csv, columns: [id, status]}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 500
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 501


@pytest.mark.parametrize("unmatched,code,out,dead", [
    ("error", 1, 100, 0),      # no dead letter: the unmatched records fail, the run exits 1
    ("drop", 0, 100, 0),
])
def test_unmatched_records_fail_by_default_or_are_dropped(tmp_path, unmatched, code, out, dead):
    write_input(tmp_path / "in.jsonl", 1000)
    (tmp_path / "p.yaml").write_text(f"""\
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - route:
      unmatched: {unmatched}
      cases: [{{when: 'status >= 500', to: alerts}}]
sinks:
  alerts: {{jsonl: {{path: alerts.jsonl}}}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == code, res.stderr
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == out
    if unmatched == "error":
        assert "in.jsonl:1: route#1: no case matched" in res.stderr


def test_unmatched_records_to_the_dead_letter(tmp_path):
    write_input(tmp_path / "in.jsonl", 100)
    (tmp_path / "p.yaml").write_text("""\
source: {lines: {paths: [in.jsonl]}}
stages:
  - route: {unmatched: dead_letter, cases: [{when: 'status >= 500', to: alerts}]}
sinks:
  alerts: {jsonl: {path: alerts.jsonl}}
dead_letter: {jsonl: {path: failed.jsonl}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    failed = [json.loads(l) for l in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert len(failed) == 90 and {f["error"] for f in failed} == {"no case matched"}
    assert {f["stage"] for f in failed} == {"route#1"}


@pytest.mark.parametrize("text,message", [
    ("stages: [{route: {cases: [{to: alrts}]}}]\nsinks: {alerts: {jsonl: {path: a.jsonl}}}",
     "p.yaml:2:32: stage 1 (route): no sink named 'alrts' (did you mean 'alerts'?)"),
    ("stages: [{route: {cases: [{to: x}]}}, {filter: 'true'}]\nsink: {jsonl: {path: a.jsonl}}",
     "p.yaml:2:10: stage 1 (route): must be the last stage (its records go to the sinks)"),
    ("stages: [{route: {unmatched: dead_letter, cases: [{to: sink}]}}]\nsink: {jsonl: {path: a.jsonl}}",
     "p.yaml:2:30: stage 1 (route): unmatched: dead_letter needs a dead_letter sink in the pipeline"),
    ("sinks: {dead_letter: {jsonl: {path: a.jsonl}}}",
     "p.yaml:2:9: the pipeline: sinks: 'dead_letter' cannot name a sink (letters, digits, _ and -; not dead_letter)"),
    ("sink: {jsonl: {path: a.jsonl}}\nsinks: {a: {jsonl: {path: a.jsonl}}}",
     "p.yaml:3:8: the pipeline: give sink or sinks, not both"),
    ("stages: [{route: {cases: [{when: 'status >', to: a}]}}]\nsinks: {a: {jsonl: {path: a.jsonl}}}",
     "p.yaml:2:43: stage 1 (route): cases.when: expected a value at the end of the expression"),
])
def test_bad_routes_and_sinks_are_located_lines_and_exit_2(tmp_path, text, message):
    (tmp_path / "p.yaml").write_text("source: {lines: {paths: [in.jsonl]}}\n" + text + "\n")
    res = run_aetl(["validate", "p.yaml"], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines()[0] == message


_pg_tables = [0]


@pytest.mark.parametrize("pause", [(0.02, 0.3)])
def test_sigkill_rounds_with_two_exactly_once_sinks_behind_a_route(pg, tmp_path, pause):
    """SQLite gets the 5xx and 404 records, PostgreSQL the 5xx and the 200s: each
    holds exactly its own records after 20 kill -9 rounds and a last run."""
    _pg_tables[0] += 1
    table = f"routed{_pg_tables[0]}"
    n = 300000
    write_input(tmp_path / "in.jsonl", n, pad="x" * 40)
    (tmp_path / "p.yaml").write_text(f"""\
name: routed-crash-{table}
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - select: {{id: id, status: status}}
  - route:
      mode: all
      cases:
        - {{when: 'status >= 500', to: [lite, pg]}}
        - {{when: 'status == 404', to: lite}}
        - {{when: 'status == 200', to: pg}}
sinks:
  lite: {{sqlite: {{path: out.db, table: t, exactly_once: true, batch: {{size: 2000, linger: 20ms}}}}}}
  pg: {{postgres: {{dsn: "{pg.dsn}", table: {table}, exactly_once: true, batch: {{size: 5000, linger: 20ms}}}}}}
""")
    killed = kill_rounds(tmp_path, tmp_path / "p.yaml", "s.db", random.Random(13), pause=pause)
    assert killed >= 10, "the runs were too quick to be killed: make the input bigger"
    lite = sqlite_rows(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id) FROM t")
    expect_lite = n // 10 * 2
    assert lite == [(expect_lite, expect_lite)]
    assert sqlite_rows(tmp_path / "out.db", "SELECT count(*) FROM t WHERE status NOT IN (404, 500)") == [(0,)]
    out = pg.psql(f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE status = 404) FROM {table}").strip()
    expect_pg = n - n // 10
    assert out == f"{expect_pg}|{expect_pg}|0"
    # each sink keeps its own checkpoint under PIPELINE/NAME
    names = [r[0] for r in sqlite_rows(tmp_path / "out.db", "SELECT pipeline FROM aetl_checkpoints")]
    assert names == [f"routed-crash-{table}/lite"]


def test_sigkill_rounds_with_a_fast_and_a_slow_file_sink(tmp_path):
    """A regression: the checkpoint recorded the fast sink's length, which covered
    records beyond the position the slow sink held it to; a resumed run wrote those
    again. Each file sink now skips, on a replay, what it holds (its own marks)."""
    n = 300000
    write_input(tmp_path / "in.jsonl", n, pad="x" * 40)
    (tmp_path / "p.yaml").write_text("""\
name: two-files
settings: {checkpoint_interval: 50ms}
source: {lines: {paths: [in.jsonl]}}
stages:
  - route:
      mode: all
      cases:
        - {when: 'status >= 500', to: [fast, slow]}
        - {to: fast}
sinks:
  fast: {jsonl: {path: fast.jsonl, batch: {size: 1000}}}
  slow: {csv: {path: slow.csv, columns: [id, status], batch: {size: 5000, linger: 30s}}}
""")
    killed = kill_rounds(tmp_path, tmp_path / "p.yaml", "s.db", random.Random(7), rounds=12, pause=(0.05, 0.25))
    assert killed >= 4, "the runs were too quick to be killed: make the input bigger"
    fast = [json.loads(l)["id"] for l in (tmp_path / "fast.jsonl").read_text().splitlines()]
    assert (len(fast), len(set(fast))) == (n, n)
    slow = [int(l.split(",")[0]) for l in (tmp_path / "slow.csv").read_text().splitlines()[1:]]
    assert (len(slow), len(set(slow))) == (n // 10, n // 10)


def test_dry_run_of_several_sinks_writes_whole_lines(tmp_path):
    # A regression: the sinks' batches went to stdout in pieces, in turn, cutting lines.
    write_input(tmp_path / "in.jsonl", 60000, pad="x" * 300)
    (tmp_path / "p.yaml").write_text("""\
name: dry
source: {lines: {paths: [in.jsonl]}}
sinks:
  a: {jsonl: {path: a.jsonl}}
  b: {jsonl: {path: b.jsonl}}
  c: {jsonl: {path: c.jsonl}}
""")
    res = run_aetl(["run", "-q", "--dry-run", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    ids = [json.loads(l)["id"] for l in res.stdout.splitlines()]
    assert len(ids) == 180000 and set(ids) == set(range(1, 60001))
