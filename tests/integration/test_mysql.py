"""The mysql sink and source against a real MariaDB server started by the tests
(tests/support/mariadb_server.py: mariadb-install-db into a temporary directory,
a free port on 127.0.0.1, password authentication), stopped at the end."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AETL, ROOT, kill_rounds, run_aetl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from mariadb_server import PASSWORD, USER  # noqa: E402

_tables = [0]


@pytest.fixture()
def table(mariadb):
    _tables[0] += 1
    return f"t{_tables[0]}"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def pipeline(tmp_path, db, table, sink_extra="", stages="", name="mytest", dl=True, url=None):
    url = db.url if url is None else url
    text = f"""name: {name}
source: {{lines: {{paths: [in.jsonl]}}}}
{"stages:" + chr(10) + stages if stages else ""}
sink:
  mysql: {{url: "{url}", table: {table}{", " + sink_extra if sink_extra else ""}}}
{"dead_letter: {jsonl: {path: dl.jsonl}}" if dl else ""}
"""
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def source_pipeline(tmp_path, db, spec, name="mysrc", extra=""):
    p = tmp_path / "src.yaml"
    p.write_text(f"""name: {name}
source:
  mysql: {{url: "{db.url}", {spec}}}
{extra}
sink:
  jsonl: {{path: out.jsonl}}
""")
    return p


def test_append_creates_the_table_from_the_first_record(mariadb, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [
        {"id": i, "name": f"n\t{i}\\x'\"", "score": i / 2, "ok": i % 2 == 0, "tags": ["a", i], "none": None}
        for i in range(1, 2001)])
    p = pipeline(tmp_path, mariadb, table)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    types = mariadb.rows(f"SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_NAME = '{table}' "
                         "ORDER BY ORDINAL_POSITION")
    assert types == [["id", "bigint"], ["name", "text"], ["score", "double"], ["ok", "tinyint"],
                     ["tags", "longtext"], ["none", "text"]]
    assert mariadb.rows(f"SELECT count(*), sum(id), count(`none`) FROM {table}") == [["2000", "2001000", "0"]]
    assert mariadb.rows(f"SELECT HEX(name), score, ok, tags FROM {table} WHERE id = 7") == [
        ["n\t7\\x'\"".encode().hex().upper(), "3.5", "0", '["a", 7]']]


@pytest.mark.parametrize("load", ["true", "false"])
def test_key_upserts_and_a_replay_changes_nothing(mariadb, table, tmp_path, load):
    recs = [{"id": i % 500, "v": i} for i in range(3000)]  # each id six times, the last wins
    write_jsonl(tmp_path / "in.jsonl", recs)
    p = pipeline(tmp_path, mariadb, table, f"key: [id], load_data: {load}, batch: {{size: 700}}")
    for _ in range(2):
        res = run_aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        got = {int(a): int(b) for a, b in mariadb.rows(f"SELECT id, v FROM {table}")}
        assert got == {i: 2500 + i for i in range(500)}


@pytest.mark.parametrize("load", ["true", "false"])
def test_bad_rows_go_to_the_dead_letter_with_the_servers_message(mariadb, table, tmp_path, load):
    mariadb.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL CHECK (n >= 0), s VARCHAR(5))")
    recs = [{"id": i, "n": i, "s": "ok"} for i in range(1, 1001)]
    recs[99]["n"] = "lots"          # not an integer
    recs[499]["n"] = -1             # breaks the CHECK
    recs[899]["n"] = None           # breaks NOT NULL
    recs[949]["s"] = "too long"     # longer than VARCHAR(5): refused, not cut
    write_jsonl(tmp_path / "in.jsonl", recs)
    p = pipeline(tmp_path, mariadb, table, f"columns: [id, n, s], load_data: {load}, batch: {{size: 400}}")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert mariadb.rows(f"SELECT count(*) FROM {table}") == [["996"]]
    dl = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert [d["line"] for d in dl] == [100, 500, 900, 950]
    assert [d["error"] for d in dl] == [
        "Incorrect integer value: 'lots' for column `aetl`.`" + table + "`.`n` at row 1",
        f"CONSTRAINT `{table}.n` failed for `aetl`.`{table}`",
        "Column 'n' cannot be null",
        "Data too long for column 's' at row 1",
    ]
    assert all(d["stage"] == "sink mysql" for d in dl)


def test_a_server_that_refuses_load_data_local_gets_insert_statements(mariadb, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": i, "s": f"v{i}"} for i in range(1, 5001)])
    p = pipeline(tmp_path, mariadb, table, "batch: {size: 1000}")
    mariadb.sql("SET GLOBAL local_infile = 0")
    try:
        res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    finally:
        mariadb.sql("SET GLOBAL local_infile = 1")
    assert res.code == 0, res.stderr
    assert res.stderr == (f"aetl: warning: mysql {table}: the server refuses LOAD DATA LOCAL (The used command is not "
                          "allowed because the MariaDB server or client has disabled the local infile capability): "
                          "sending INSERT statements instead\n")
    assert mariadb.rows(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [["5000", "5000"]]


def test_auth_failure_missing_table_and_unreachable_server_are_one_line_errors(mariadb, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    bad_pw = mariadb.url.replace(PASSWORD, "wrong-secret")
    p = pipeline(tmp_path, mariadb, table, url=bad_pw)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == (f"aetl: mysql 127.0.0.1:{mariadb.port}/aetl: Access denied for user '{USER}'@'127.0.0.1' "
                          "(using password: YES)\n")

    p = pipeline(tmp_path, mariadb, "no_such_table", "create: false")
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == "aetl: mysql no_such_table: table `no_such_table` does not exist (create: false)\n"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    p = pipeline(tmp_path, mariadb, table, url=f"mysql://x:secret-y@127.0.0.1:{closed}/z")
    res = run_aetl(["run", "-q", "--state", "s3.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == f"aetl: mysql 127.0.0.1:{closed}/z: Can't connect to server on '127.0.0.1' (111)\n"

    p = pipeline(tmp_path, mariadb, table, url=f"mysql://{USER}:{PASSWORD}@127.0.0.1:{mariadb.port}")
    res = run_aetl(["run", "-q", "--state", "s4.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == (f"aetl: mysql {table}: no database: name one in the url (mysql://host/shop) or in the "
                          f"table (shop.{table})\n")


def test_config_errors_point_at_the_key(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("""source: {lines: {paths: [in.jsonl]}}
sink:
  mysql: {url: "postgres://x@y/z", table: t, pool: {min: 3, max: 2}}
""")
    res = run_aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines() == [
        f"{p}:3:16: sink mysql: url: the url must start with mysql:// or mariadb://",
        '  mysql: {url: "postgres://x@y/z", table: t, pool: {min: 3, max: 2}}',
        "               ^",
        f"{p}:3:52: sink mysql: pool: min is more than max",
        '  mysql: {url: "postgres://x@y/z", table: t, pool: {min: 3, max: 2}}',
        "                                                   ^",
    ]
    p.write_text("""source:
  mysql: {url: "mysql://u:secret-p@h:99999/d", query: "SELECT 1", table: t}
sink: {jsonl: {path: out.jsonl}}
""")
    res = run_aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines() == [  # the password is not echoed
        f"{p}:2:10: source mysql: give query or table, not both",
        '  mysql: {url: "mysql://u:********@h:99999/d", query: "SELECT 1", table: t}',
        "         ^",
        f"{p}:2:16: source mysql: url: the url's port is not a number from 1 to 65535",
        '  mysql: {url: "mysql://u:********@h:99999/d", query: "SELECT 1", table: t}',
        "               ^",
    ]


def test_the_password_comes_from_the_environment_and_is_never_printed(mariadb, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    url = f"mysql://{USER}@127.0.0.1:{mariadb.port}/aetl"
    p = pipeline(tmp_path, mariadb, table, url=url)
    res = run_aetl(["run", "--state", "s.db", p], cwd=tmp_path, env={"MYSQL_PWD": PASSWORD})
    assert res.code == 0, res.stderr
    assert PASSWORD not in res.stderr
    assert mariadb.rows(f"SELECT id FROM {table}") == [["1"]]


@pytest.mark.parametrize("mode", ["exactly_once", "key"])
def test_sigkill_at_random_moments_loses_and_doubles_nothing(mariadb, table, tmp_path, mode):
    n = 300000
    write_jsonl(tmp_path / "in.jsonl", [{"id": i, "pad": "x" * 60} for i in range(1, n + 1)])
    extra = "exactly_once: true" if mode == "exactly_once" else "key: [id]"
    if mode == "exactly_once":  # a unique key would hide a double: the table has none
        mariadb.sql(f"CREATE TABLE {table} (id BIGINT NOT NULL, pad TEXT) ENGINE=InnoDB")
    p = pipeline(tmp_path, mariadb, table, f"{extra}, batch: {{size: 1000, linger: 20ms}}",
                 stages="  - filter: 'id % 7 != 0'", name=f"crash-{mode}-{table}")
    killed = kill_rounds(tmp_path, p, "s.db", random.Random(11), pause=(0.02, 0.25))
    assert killed >= 10, "the runs were too quick to be killed: make the input bigger"
    expected = n - n // 7
    assert mariadb.rows(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(expected), str(expected)]]


def test_a_server_restart_in_the_middle_of_a_run_loses_and_doubles_nothing(mariadb, table, tmp_path):
    n = 300000
    write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(1, n + 1)])
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT NOT NULL, slow BIGINT) ENGINE=InnoDB")
    p = pipeline(tmp_path, mariadb, table, "exactly_once: true, batch: {size: 2000, linger: 20ms}",
                 stages="  - set: {slow: 'id * 2'}", name=f"restart-{table}")
    proc = subprocess.Popen([str(AETL), "run", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # restart once the first rows are in
        if int(mariadb.rows(f"SELECT count(*) FROM {table}")[0][0]) > 0:
            break
        time.sleep(0.05)
    mariadb.restart()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    assert mariadb.rows(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(n), str(n)]]


def test_ctrl_c_with_a_paused_server_ends_the_run_and_a_rerun_loses_and_doubles_nothing(mariadb, table, tmp_path):
    """A write waiting on a stopped server is aborted after the grace period, and
    the connections are closed without waiting for it (no hard stop needed)."""
    n = 200000
    write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(1, n + 1)])
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT NOT NULL) ENGINE=InnoDB")
    p = pipeline(tmp_path, mariadb, table, "exactly_once: true, batch: {size: 2000, linger: 20ms}, "
                 "pool: {min: 2, max: 2}", stages="  - set: {x: 'id * 2'}", name=f"paused-{table}")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    proc = subprocess.Popen([str(AETL), "run", "-q", "--grace", "1s", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(mariadb.rows(f"SELECT count(*) FROM {table}")[0][0]) == 0:
            time.sleep(0.02)
        mariadb.pause()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        mariadb.resume()
    assert proc.returncode == 130, err.decode()
    assert b"did not stop in time" not in err, err.decode()
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, timeout=180)
    assert res.code == 0, res.stderr
    assert mariadb.rows(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [[str(n), str(n)]]


def test_source_streams_a_million_rows_with_flat_memory(mariadb, table, tmp_path):
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, pad VARCHAR(100)) ENGINE=InnoDB;"
                f"INSERT INTO {table} SELECT seq, REPEAT('p', 80) FROM seq_1_to_1000000")
    p = source_pipeline(tmp_path, mariadb, f"query: \"SELECT id, pad FROM {table} ORDER BY id\"")
    res = subprocess.run(["/usr/bin/time", "-f", "%M", str(AETL), "run", "-q", "--state", "s.db", str(p)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    peak_kb = int(res.stderr.strip().splitlines()[-1])
    assert peak_kb < 200 * 1024, f"peak RSS {peak_kb} kB"
    n = 0
    with open(tmp_path / "out.jsonl") as f:
        for n, line in enumerate(f, 1):
            if n in (1, 1000000):
                assert json.loads(line) == {"id": n, "pad": "p" * 80}
    assert n == 1000000


def test_source_types_limit_resume_and_a_bad_query(mariadb, table, tmp_path):
    mariadb.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, price DECIMAL(10,2), name TEXT, doc JSON, "
                f"at DATETIME, raw VARBINARY(8), f DOUBLE);"
                f"INSERT INTO {table} VALUES (1, 12.30, 'tab\\there \"q\"', '{{\"a\": [1, 2]}}', "
                f"'2026-12-07 10:11:12', 0x61FF, 1.5), (2, NULL, NULL, NULL, NULL, NULL, NULL)")
    p = source_pipeline(tmp_path, mariadb, f"table: {table}")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"id": 1, "price": 12.3, "name": 'tab\there "q"', "doc": {"a": [1, 2]},
                                    "at": "2026-12-07 10:11:12", "raw": "a\udcff", "f": 1.5}
    assert '"price":12.30' in lines[0]  # every digit as the server wrote it
    assert json.loads(lines[1]) == {"id": 2, "price": None, "name": None, "doc": None, "at": None, "raw": None,
                                    "f": None}

    p = source_pipeline(tmp_path, mariadb, "query: \"SELECT nope FROM nowhere\"", name="bad")
    res = run_aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == "aetl: source mysql: Table 'aetl.nowhere' doesn't exist\n"


def test_source_resumes_after_sigkill_without_losing_or_doubling(mariadb, table, tmp_path):
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY) ENGINE=InnoDB;"
                f"INSERT INTO {table} SELECT seq FROM seq_1_to_600000")
    db = tmp_path / "out.db"
    p = tmp_path / "src.yaml"
    p.write_text(f"""name: mysrc-kill
source:
  mysql: {{url: "{mariadb.url}", query: "SELECT id FROM {table} ORDER BY id", batch: 1000}}
sink:
  sqlite: {{path: {db}, table: ids, exactly_once: true, batch: {{size: 1000, linger: 10ms}}}}
""")
    killed = kill_rounds(tmp_path, p, "s.db", random.Random(5), rounds=12, pause=(0.03, 0.25))
    assert killed >= 5, "the runs were too quick to be killed: make the table bigger"
    out = subprocess.run(["sqlite3", str(db), "SELECT count(*), count(DISTINCT id) FROM ids"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "600000|600000"


def test_incremental_reads_only_rows_past_the_last_run(mariadb, table, tmp_path):
    mariadb.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v TEXT, updated_at DATETIME);"
                f"INSERT INTO {table} SELECT seq, CONCAT('a', seq), '2026-01-01' + INTERVAL seq SECOND "
                "FROM seq_1_to_100")
    spec = f"query: \"SELECT id, v, updated_at FROM {table}\", incremental: {{column: updated_at}}"
    p = source_pipeline(tmp_path, mariadb, spec, name="incr")

    def run(*flags):
        res = run_aetl(["run", "-q", "--state", "s.db", *flags, p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        return [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]

    assert run() == list(range(1, 101))
    assert run() == list(range(1, 101))  # nothing new
    mariadb.sql(f"UPDATE {table} SET v = 'b', updated_at = '2026-02-01' WHERE id IN (3, 30, 60, 61, 99); "
                f"INSERT INTO {table} VALUES (101, 'n', '2026-02-02'), (102, 'n', '2026-02-02'), "
                "(103, 'n', '2026-02-03')")
    got = run()
    assert got[:100] == list(range(1, 101)) and sorted(got[100:]) == [3, 30, 60, 61, 99, 101, 102, 103]
    # an interrupted window is read again whole by the next run (at least once)
    mariadb.sql(f"INSERT INTO {table} SELECT seq, 'c', '2026-03-01' + INTERVAL seq SECOND FROM seq_200_to_209")
    part = run("--limit", "4")
    assert part[108:] == [200, 201, 202, 203]
    mariadb.sql(f"UPDATE {table} SET updated_at = '2026-05-01' WHERE id = 205; "
                f"INSERT INTO {table} VALUES (300, 'late', '2026-04-01'), (150, 'old', '2026-03-01 00:03:25')")
    again = run()[112:]
    assert again == [150, 200, 201, 202, 203, 204, 206, 207, 208, 209] or \
        again == [200, 201, 202, 203, 204, 150, 206, 207, 208, 209], again
    assert run()[122:] == [300, 205]
    assert len(run()) == 124


def test_source_survives_a_server_restart_while_reading(mariadb, table, tmp_path):
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY) ENGINE=InnoDB;"
                f"INSERT INTO {table} SELECT seq FROM seq_1_to_300000")
    db = tmp_path / "out.db"
    p = tmp_path / "src.yaml"
    p.write_text(f"""name: mysrc-restart
source:
  mysql: {{url: "{mariadb.url}", query: "SELECT id FROM {table} ORDER BY id", batch: 500}}
stages:
  - set: {{x: 'id * 2'}}
sink:
  sqlite: {{path: {db}, table: ids, batch: {{size: 500, linger: 10ms}}}}
""")
    proc = subprocess.Popen([str(AETL), "run", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    mariadb.restart()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    out = subprocess.run(["sqlite3", str(db), "SELECT count(*), count(DISTINCT id) FROM ids"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "300000|300000"


def test_source_reads_again_the_rows_of_a_batch_cut_by_a_killed_connection(mariadb, table, tmp_path):
    """A regression: rows fetched into a batch that a lost connection cut short
    were counted as read and never came again."""
    n = 400000
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB;"
                f"INSERT INTO {table} SELECT seq, REPEAT('p', 150) FROM seq_1_to_{n}")
    db = tmp_path / "out.db"
    p = tmp_path / "src.yaml"
    p.write_text(f"""name: mysrc-killconn
source:
  mysql: {{url: "{mariadb.url}", query: "SELECT id, pad FROM {table} ORDER BY id", batch: 5000}}
stages:
  - select: {{id: id}}
sink:
  sqlite: {{path: {db}, table: ids, batch: {{size: 5000, linger: 10ms}}}}
""")
    proc = subprocess.Popen([str(AETL), "run", "--state", "s.db", str(p)], cwd=tmp_path,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = False
    deadline = time.monotonic() + 30
    while not killed and time.monotonic() < deadline and proc.poll() is None:
        ids = mariadb.rows(f"SELECT id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT id, pad FROM {table}%'")
        if ids:
            time.sleep(0.2)
            subprocess.run(["mariadb", "--no-defaults", f"--socket={mariadb.socket}", "-uroot", "-e",
                            f"KILL CONNECTION {ids[0][0]}"], capture_output=True)
            killed = True
        time.sleep(0.01)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    assert killed
    out = subprocess.run(["sqlite3", str(db), "SELECT count(*), count(DISTINCT id) FROM ids"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"{n}|{n}"


def test_a_server_asking_for_a_local_file_gets_none(mariadb, table, tmp_path):
    """LOAD DATA LOCAL is answered only with a batch of the sink's: a query (or a
    rogue server) asking for a file of the client's gets nothing."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    mariadb.sql(f"CREATE TABLE {table} (line TEXT)")
    p = source_pipeline(tmp_path, mariadb, f"query: \"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE {table}\"")
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == "aetl: source mysql: LOAD DATA LOCAL refused: aetl sends no files\n"
    assert mariadb.rows(f"SELECT count(*) FROM {table}") == [["0"]]


def test_key_upserts_with_a_url_that_names_no_database(mariadb, table, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": i % 3, "v": i} for i in range(6)])
    url = f"mysql://{USER}:{PASSWORD}@127.0.0.1:{mariadb.port}"
    p = pipeline(tmp_path, mariadb, f"aetl.{table}", "key: [id]", url=url)
    res = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert mariadb.rows(f"SELECT id, v FROM {table} ORDER BY id") == [["0", "3"], ["1", "4"], ["2", "5"]]


def test_an_incremental_read_cut_short_does_not_read_the_rest_of_its_window(mariadb, table, tmp_path):
    """A regression: --limit during an incremental window read the whole rest of
    the result before ending its snapshot. Measured by what the server sent."""
    mariadb.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB;"
                f"INSERT INTO {table} SELECT seq, REPEAT('p', 200) FROM seq_1_to_300000")
    spec = f"query: \"SELECT id, pad FROM {table}\", incremental: {{column: id}}"
    p = source_pipeline(tmp_path, mariadb, spec, name="incr-limit")

    def sent():
        return int(mariadb.rows("SHOW GLOBAL STATUS LIKE 'Bytes_sent'")[0][1])

    before = sent()
    res = run_aetl(["run", "-q", "--state", "s.db", "--limit", "10", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 10
    assert sent() - before < 20 * 1024 * 1024  # the window is 60 MB


def test_the_sample_runs(mariadb, tmp_path):
    import shutil
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    (tmp_path / "samples-out").mkdir()
    env = {"MYSQL_HOST": "127.0.0.1", "MYSQL_TCP_PORT": str(mariadb.port), "MYSQL_PWD": PASSWORD,
           "MYSQL_USER": USER, "MYSQL_DATABASE": "aetl"}
    res = run_aetl(["run", "-q", "--state", "s.db", "samples/pipelines/access-mysql.yaml"], cwd=tmp_path, env=env)
    assert res.code == 0, res.stderr
    expected = 0
    for line in (ROOT / "samples/data/access.jsonl").read_text().splitlines():
        try:
            expected += json.loads(line)["status"] >= 400
        except ValueError:
            pass  # the sample's one malformed line goes to the dead letter
    assert mariadb.rows("SELECT count(*), count(DISTINCT id) FROM access_errors") == [[str(expected)] * 2]
    res = run_aetl(["run", "-q", "--state", "s.db", "--from-start", "samples/pipelines/access-mysql.yaml"],
                   cwd=tmp_path, env=env)
    assert res.code == 0, res.stderr
    assert mariadb.rows("SELECT count(*) FROM access_errors") == [[str(expected)]]
