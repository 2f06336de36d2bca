"""The postgres sink against a real PostgreSQL server started by the tests
(tests/support/pg_server.py: initdb into a temporary directory, a free port on
127.0.0.1, password authentication), stopped at the end."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import AETL, kill_rounds, run_aetl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from pg_server import PASSWORD  # noqa: E402


_tables = [0]


@pytest.fixture()
def table(pg):
    _tables[0] += 1
    return f"t{_tables[0]}"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def pipeline(tmp_path, pg, table, sink_extra="", stages="", name="pgtest", dl=True, dsn=None):
    dsn = pg.dsn if dsn is None else dsn
    text = f"""name: {name}
source: {{lines: {{paths: [in.jsonl]}}}}
{"stages:" + chr(10) + stages if stages else ""}
sink:
  postgres: {{dsn: "{dsn}", table: {table}{", " + sink_extra if sink_extra else ""}}}
{"dead_letter: {jsonl: {path: dl.jsonl}}" if dl else ""}
"""
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def rows(pg, sql):
    out = pg.psql(sql).strip()
    return [line.split("|") for line in out.splitlines()] if out else []


def test_append_creates_the_table_from_the_first_record(pg, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [
        {"id": i, "name": f"n\t{i}\\x", "score": i / 2, "ok": i % 2 == 0, "tags": ["a", i], "none": None}
        for i in range(1, 2001)])
    p = pipeline(tmp_path, pg, table)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    types = rows(pg, f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}' "
                     "ORDER BY ordinal_position")
    assert types == [["id", "bigint"], ["name", "text"], ["score", "double precision"], ["ok", "boolean"],
                     ["tags", "jsonb"], ["none", "text"]]
    assert rows(pg, f"SELECT count(*), sum(id), count(none) FROM {table}") == [["2000", "2001000", "0"]]
    assert rows(pg, f"SELECT name, score, ok, tags FROM {table} WHERE id = 7") == [["n\t7\\x", "3.5", "f", '["a", 7]']]


def test_key_upserts_and_a_replay_changes_nothing(pg, table, tmp_path):
    recs = [{"id": i % 500, "v": i} for i in range(3000)]  # each id six times, the last wins
    write_jsonl(tmp_path / "in.jsonl", recs)
    p = pipeline(tmp_path, pg, table, "key: [id], batch: {size: 700}")
    for _ in range(2):
        res = run_aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        got = {int(a): int(b) for a, b in rows(pg, f"SELECT id, v FROM {table}")}
        assert got == {i: 2500 + i for i in range(500)}


def test_bad_rows_go_to_the_dead_letter_with_the_servers_message(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0))")
    recs = [{"id": i, "n": i} for i in range(1, 1001)]
    recs[99]["n"] = "lots"          # not an integer
    recs[499]["n"] = -1             # breaks the CHECK
    recs[899]["n"] = None           # breaks NOT NULL
    write_jsonl(tmp_path / "in.jsonl", recs)
    p = pipeline(tmp_path, pg, table, "columns: [id, n], batch: {size: 400}")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert rows(pg, f"SELECT count(*) FROM {table}") == [["997"]]
    dl = [json.loads(l) for l in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert [d["line"] for d in dl] == [100, 500, 900]
    assert 'invalid input syntax for type integer: "lots"' in dl[0]["error"]
    assert "check constraint" in dl[1]["error"]
    assert "not-null constraint" in dl[2]["error"] or "null value" in dl[2]["error"]
    assert all(d["stage"] == "sink postgres" for d in dl)


def test_auth_failure_missing_table_and_unreachable_server_are_one_line_errors(pg, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    bad_pw = pg.dsn.replace(PASSWORD, "wrong-secret")
    p = pipeline(tmp_path, pg, table, dsn=bad_pw)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2
    assert "password authentication failed" in res.stderr and "wrong-secret" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr

    p = pipeline(tmp_path, pg, "no_such_table", "create: false")
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2 and "does not exist (create: false)" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    p = pipeline(tmp_path, pg, table, dsn=f"host=127.0.0.1 port={closed} user=x password=y dbname=z")
    res = run_aetl(["run", "-q", "--state", "s3.db", p], cwd=tmp_path)
    assert res.code == 2 and "Connection refused" in res.stderr and "password=y" not in res.stderr, res.stderr


def test_the_password_comes_from_the_environment_and_is_never_printed(pg, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    dsn = pg.dsn.replace(f"password={PASSWORD}", "password=${PGPW}")
    p = pipeline(tmp_path, pg, table, dsn=dsn)
    res = run_aetl(["run", "--state", "s.db", p], cwd=tmp_path, env={"PGPW": PASSWORD})
    assert res.code == 0, res.stderr
    assert PASSWORD not in res.stderr
    assert rows(pg, f"SELECT id FROM {table}") == [["1"]]


@pytest.mark.parametrize("mode", ["exactly_once", "key"])
def test_sigkill_at_random_moments_loses_and_doubles_nothing(pg, table, tmp_path, mode):
    n = 400000
    write_jsonl(tmp_path / "in.jsonl", [{"id": i, "pad": "x" * 60} for i in range(1, n + 1)])
    extra = "exactly_once: true" if mode == "exactly_once" else "key: [id]"
    p = pipeline(tmp_path, pg, table, f"{extra}, batch: {{size: 1000, linger: 20ms}}",
                 stages="  - filter: 'id % 7 != 0'", name=f"crash-{mode}-{table}")
    killed = kill_rounds(tmp_path, p, "s.db", random.Random(11), pause=(0.02, 0.25))
    assert killed >= 10, "the runs were too quick to be killed: make the input bigger"
    expected = n - n // 7
    assert rows(pg, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(expected), str(expected)]]


def test_a_server_restart_in_the_middle_of_a_run_loses_and_doubles_nothing(pg, table, tmp_path):
    n = 300000
    write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(1, n + 1)])
    p = pipeline(tmp_path, pg, table, "exactly_once: true, batch: {size: 2000, linger: 20ms}",
                 stages="  - set: {slow: 'id * 2'}", name=f"restart-{table}")
    proc = subprocess.Popen([str(AETL), "run", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # restart once the first rows are in
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if int(rows(pg, f"SELECT count(*) FROM {table}")[0][0]) > 0:
                break
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    pg.restart()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert rows(pg, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(n), str(n)]]


def test_the_sample_runs_with_the_pg_variables(pg, tmp_path):
    import shutil
    from conftest import ROOT
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    (tmp_path / "samples-out").mkdir()
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "aetl", "PGPASSWORD": PASSWORD,
           "PGDATABASE": "postgres"}
    for _ in range(2):  # the second run finds everything done
        res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/access-postgres.yaml"], cwd=tmp_path,
                       env=env)
        assert res.code == 0, res.stderr
    def valid(line):
        try:
            return isinstance(json.loads(line), dict)
        except ValueError:
            return False
    lines = (tmp_path / "samples/data/access.jsonl").read_text().splitlines()
    n = sum(valid(l) for l in lines)
    assert rows(pg, "SELECT count(*), count(DISTINCT id) FROM access_log") == [[str(n), str(n)]]
    failed = (tmp_path / "samples-out/access-postgres-failed.jsonl").read_text().splitlines()
    assert len(failed) == len(lines) - n
    res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/postgres-export.yaml"], cwd=tmp_path,
                   env=env)
    assert res.code == 0, res.stderr
    out = [json.loads(l) for l in (tmp_path / "samples-out/server-errors.jsonl").read_text().splitlines()]
    expected = sorted(json.loads(l)["id"] for l in lines if valid(l) and json.loads(l)["status"] >= 500)
    assert [r["id"] for r in out] == expected and all(r["ts"].startswith("2026-11-23T") for r in out)
    assert rows(pg, "SELECT data_type FROM information_schema.columns WHERE table_name = 'access_log' "
                    "AND column_name = 'ts'") == [["timestamp with time zone"]]


def test_config_errors_point_at_the_key(tmp_path):
    (tmp_path / "p.yaml").write_text("""name: bad
source: {lines: {paths: [in.jsonl]}}
sink:
  postgres: {table: t, columns: {id: "bigint primary key"}, pool: {min: 3, max: 2}, key: [nope], colums: [x]}
""")
    res = run_aetl(["validate", "p.yaml"], cwd=tmp_path)
    assert res.code == 2
    err = res.stderr
    assert "p.yaml:4:" in err and "columns.id: not a column type" in err
    assert "pool: min is more than max" in err
    assert "key: 'nope' is not one of the columns" in err
    assert "colums" in err and "did you mean" in err.lower()


def source_pipeline(tmp_path, pg, query, sink="jsonl: {path: out.jsonl}", extra=""):
    p = tmp_path / "src.yaml"
    p.write_text(f"""name: pgsrc
source:
  postgres: {{dsn: "{pg.dsn}", query: "{query}"{extra}}}
sink: {{{sink}}}
""")
    return p


def test_source_streams_a_million_rows_with_flat_memory(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS h, g % 7 = 0 AS seven, "
            f"now() AS at, jsonb_build_object('k', g) AS j FROM generate_series(1, 1000000) g")
    p = source_pipeline(tmp_path, pg, f"SELECT id, h, seven, j FROM {table} ORDER BY id")
    run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", "rss.txt", str(AETL), "run", "-q", "--state", "s.db", p],
                         cwd=tmp_path, capture_output=True, timeout=120,
                         env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")))
    assert run.returncode == 0, run.stderr
    peak_kb = int((tmp_path / "rss.txt").read_text().split()[-1])
    n = 0
    with open(tmp_path / "out.jsonl") as f:
        for n, line in enumerate(f, 1):
            if n in (1, 7, 1000000):
                r = json.loads(line)
                assert r["id"] == n and r["seven"] == (n % 7 == 0) and r["j"] == {"k": n} and len(r["h"]) == 32
    assert n == 1000000
    assert peak_kb < 100 * 1024, f"peak RSS {peak_kb} KB for a million rows"


def test_source_escapes_limit_resume_and_a_bad_query(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} (id int, s text); INSERT INTO {table} VALUES "
            "(1, E'tab\\there'), (2, E'new\\nline'), (3, 'back\\slash'), (4, 'caf\u00e9 \"q\"'), (5, NULL)")
    p = source_pipeline(tmp_path, pg, f"SELECT * FROM {table} ORDER BY id")
    res = run_aetl(["run", "-q", "--state", "s.db", "--limit", "2", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    got = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert got == [{"id": 1, "s": "tab\there"}, {"id": 2, "s": "new\nline"}, {"id": 3, "s": "back\\slash"},
                   {"id": 4, "s": 'café "q"'}, {"id": 5, "s": None}]
    p = source_pipeline(tmp_path, pg, "SELECT * FROM no_such_table")
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2 and 'relation "no_such_table" does not exist' in res.stderr, res.stderr


def test_incremental_reads_only_rows_past_the_last_run(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} (id int PRIMARY KEY, v text, updated_at timestamptz); "
            f"INSERT INTO {table} SELECT g, 'a' || g, '2026-01-01'::timestamptz + g * interval '1 second' "
            "FROM generate_series(1, 100) g")
    p = source_pipeline(tmp_path, pg, f"SELECT id, v, updated_at FROM {table}",
                        extra=", incremental: {column: updated_at}")

    def run(*flags):
        res = run_aetl(["run", "-q", "--state", "s.db", *flags, p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        return [json.loads(l)["id"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]

    assert run() == list(range(1, 101))
    assert run() == list(range(1, 101))  # nothing new
    # later changes: 5 rows updated, 3 inserted
    pg.psql(f"UPDATE {table} SET v = 'b', updated_at = '2026-02-01' WHERE id IN (3, 30, 60, 61, 99); "
            f"INSERT INTO {table} VALUES (101, 'n', '2026-02-02'), (102, 'n', '2026-02-02'), (103, 'n', '2026-02-03')")
    got = run()
    assert got[:100] == list(range(1, 101)) and sorted(got[100:]) == [3, 30, 60, 61, 99, 101, 102, 103]
    # an interrupted window is read again whole by the next run (at least once),
    # whatever changed meanwhile: a row moved past the window comes in the next one
    pg.psql(f"INSERT INTO {table} SELECT g, 'c', '2026-03-01'::timestamptz + g * interval '1 second' "
            "FROM generate_series(200, 209) g")
    part = run("--limit", "4")
    assert part[108:] == [200, 201, 202, 203]
    pg.psql(f"UPDATE {table} SET updated_at = '2026-05-01' WHERE id = 205; "
            f"INSERT INTO {table} VALUES (300, 'late', '2026-04-01'), (150, 'old', '2026-03-01 00:03:25')")
    again = run()[112:]
    assert again == [150, 200, 201, 202, 203, 204, 206, 207, 208, 209] or \
        again == [200, 201, 202, 203, 204, 150, 206, 207, 208, 209], again
    assert run()[122:] == [300, 205]
    assert len(run()) == 124


def test_permission_denied_is_a_one_line_error(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} (id int); DROP ROLE IF EXISTS reader; "
            "CREATE ROLE reader LOGIN PASSWORD 'rpw'; REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    dsn = f"host=127.0.0.1 port={pg.port} user=reader password=rpw dbname=postgres"
    p = pipeline(tmp_path, pg, table, dsn=dsn)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2 and "permission denied: no INSERT on table" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    p = pipeline(tmp_path, pg, "not_there", dsn=dsn)
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2 and "cannot create table" in res.stderr, res.stderr


def test_source_survives_a_server_restart_while_reading(pg, table, tmp_path):
    n = 1500000
    pg.psql(f"CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, {n}) g")
    p = source_pipeline(tmp_path, pg, f"SELECT id, h FROM {table} ORDER BY id",
                        sink="jsonl: {path: out.jsonl, batch: {size: 20000, linger: 10ms}}", extra=", batch: 2000")
    proc = subprocess.Popen([str(AETL), "run", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
        time.sleep(0.01)
    pg.restart()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    ids = [json.loads(l)["id"] for l in out.read_text().splitlines()]
    assert len(ids) == n and ids == sorted(set(ids)), (len(ids), len(set(ids)))
    assert b"reading again from row" in err, err.decode()[-500:]


def test_json_columns_take_any_json_value(pg, table, tmp_path):
    pg.psql(f"CREATE TABLE {table} (id int, doc jsonb)")
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "doc": "plain"}, {"id": 2, "doc": True}, {"id": 3, "doc": [1, 2]},
                                        {"id": 4, "doc": {"a": "x\ty"}}, {"id": 5, "doc": 1.5}, {"id": 6}])
    p = pipeline(tmp_path, pg, table, "columns: [id, doc]")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert rows(pg, f"SELECT id, jsonb_typeof(doc), doc::text FROM {table} ORDER BY id") == [
        ["1", "string", '"plain"'], ["2", "boolean", "true"], ["3", "array", "[1, 2]"],
        ["4", "object", '{"a": "x\\ty"}'], ["5", "number", "1.5"], ["6", "", ""]]


def test_binary_copy_when_the_values_fit_and_text_when_they_do_not(pg, table, tmp_path):
    # Binary COPY (less for the server to parse) only where it sends what the text
    # would: a batch holding a value it cannot carry goes as text, so the server
    # judges every value the same way either way.
    pg.psql(f"CREATE TABLE {table} (id int, b bigint, c double precision, d boolean, e varchar(5), f smallint, "
            f"g text, h json)")
    log = os.path.join(pg.dir, "log")
    pg.psql("ALTER SYSTEM SET log_statement = 'all'")  # not in one transaction with the reload
    pg.psql("SELECT pg_reload_conf()")
    try:
        fit = [{"id": 1, "b": 2 ** 40, "c": 0.1, "d": True, "e": "añb", "f": -7, "g": "tab\there", "h": {"k": [1]}},
               {"id": 2, "b": -(2 ** 63), "c": 10, "d": False, "e": "", "f": 32767, "g": 'q"\\', "h": "s"},
               {"id": 3, "c": 1e300, "g": 12, "h": None}, {"id": 4.0, "b": 1000.0}]
        write_jsonl(tmp_path / "in.jsonl", fit)
        p = pipeline(tmp_path, pg, table, "columns: [id, b, c, d, e, f, g, h], batch: {size: 2}")
        res = run_aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        with open(log, errors="replace") as f:
            copies = [l for l in f if f"COPY {table}" in l.replace('"', "")]
        assert copies and all("FORMAT binary" in l for l in copies), copies
        want = [["1", "1099511627776", "0.1", "t", "añb", "-7", "tab\there", '{"k": [1]}'],
                ["2", "-9223372036854775808", "10", "f", "", "32767", 'q"\\', '"s"'],
                ["3", "", "1e+300", "", "", "", "12", ""], ["4", "1000", "", "", "", "", "", ""]]
        got = rows(pg, f"SELECT id, b, c, d, e, f, g, h FROM {table} ORDER BY id")
        assert got == want
        pg.psql(f"TRUNCATE {table}")
        # As text: strings for numbers and booleans (the server reads them), and
        # values the server refuses, which go to the dead letter with its message.
        mixed = [{"id": "4", "c": "1e3", "d": "yes"}, {"id": 5, "f": 70000}, {"id": 6, "e": "toolong"},
                 {"id": 7.5}, {"id": 8, "b": 2 ** 40}]
        write_jsonl(tmp_path / "in.jsonl", mixed)
        with open(tmp_path / "in.jsonl", "a") as f:
            f.write('{"id": 9, "c": 1e-400}\n')  # reads as 0, but float8in refuses it: the text goes
        res = run_aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        assert rows(pg, f"SELECT id, b, c, d FROM {table} ORDER BY id") == [
            ["4", "", "1000", "t"], ["8", "1099511627776", "", ""]]
        dl = [json.loads(l) for l in (tmp_path / "dl.jsonl").read_text().splitlines()]
        assert [d["line"] for d in dl] == [2, 3, 4, 6]
        assert "out of range for type double precision" in dl[3]["error"]
        assert "out of range for type smallint" in dl[0]["error"]
        assert "too long for type character varying(5)" in dl[1]["error"]
        assert 'invalid input syntax for type integer: "7.5"' in dl[2]["error"]
    finally:
        pg.psql("ALTER SYSTEM RESET log_statement")
        pg.psql("SELECT pg_reload_conf()")


def test_a_connection_string_libpq_cannot_read_is_not_echoed(pg, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    p = pipeline(tmp_path, pg, table, dsn="postgresql://u:pw%zzsecret@127.0.0.1/db")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2 and "cannot be read" in res.stderr and "secret" not in res.stderr, res.stderr


def test_host_names_and_several_hosts(pg, table, tmp_path):
    # Names are looked up off the loop and every address is tried, as libpq would.
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dsn = f"host=localhost,localhost port={closed},{pg.port} user=aetl password={PASSWORD} dbname=postgres"
    p = pipeline(tmp_path, pg, table, dsn=dsn)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert rows(pg, f"SELECT id FROM {table}") == [["1"]]
    p = pipeline(tmp_path, pg, table, dsn="host=no-such-host.invalid user=x password=y dbname=z")
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2 and "no-such-host.invalid" in res.stderr and "password" not in res.stderr, res.stderr


def test_two_runs_with_different_state_files_never_double_an_exactly_once_table(pg, table, tmp_path, server):
    # The first run is slowed by a rate-limited fetch stage; the second, given its
    # own state file, starts while the first is half way. Whichever commits second
    # finds the checkpoint moved, rolls back and stops with 75; the other finishes.
    n = 120
    write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(1, n + 1)])
    name = f"race-{table}"
    p = pipeline(tmp_path, pg, table, "exactly_once: true, batch: {size: 10, linger: 50ms}", name=name, dl=False,
                 stages=f"  - fetch: {{url: '{server.url('/ok/')}{{id}}', rate: '${{RATE}}', into: r}}\n"
                        "  - select: {id: id}")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"), RATE="40/s")
    first = subprocess.Popen([str(AETL), "run", "-q", "--state", "a.sqlite", str(p)], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (rows(pg, f"SELECT to_regclass('{table}') IS NOT NULL") == [["t"]] and
               int(rows(pg, f"SELECT count(*) FROM {table}")[0][0]) >= 10):
        assert time.monotonic() < deadline, "the first run committed nothing"
        time.sleep(0.05)
    second = run_aetl(["run", "-q", "--state", "b.sqlite", p], cwd=tmp_path, env={"RATE": "100000/s"})
    _, first_err = first.communicate(timeout=60)
    outcomes = {first.returncode: first_err.decode(), second.code: second.stderr}
    assert sorted(outcomes) == [0, 75], outcomes
    assert outcomes[75].splitlines()[-1] == (
        f"aetl: error: postgres {table}: another run of pipeline '{name}' has committed since this run read "
        "the checkpoint; this run stops without committing more")
    assert rows(pg, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(n), str(n)]]
