"""Workers of a Redis Streams group into an exactly-once SQL sink (sqlite,
postgres, mysql): the IDs of the entries a batch writes commit in its transaction, so
an entry delivered again (a worker killed between COMMIT and XACK, a paused
worker whose entries another took over) writes nothing twice. Real
redis-server, PostgreSQL and MariaDB, started by the tests. Oracle: the unique ids of
the entries pushed, counted and counted distinct in the table at the end, and
XPENDING empty. Workers on one host share no state file (a queue source keeps
none), so they are started without --state."""
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import AETL, run_aetl



_tables = [0]


class Sqlite:
    def __init__(self, tmp_path):
        self.db = tmp_path / "out.db"

    def sink(self, extra=""):
        return f"sqlite: {{path: {self.db}, table: t, exactly_once: true, batch: {{size: 100, linger: 20ms}}{extra}}}"

    def rows(self, columns="id"):
        con = sqlite3.connect(self.db)
        try:
            return [r if len(r) > 1 else r[0] for r in con.execute(f"SELECT {columns} FROM t")]
        finally:
            con.close()

    def kept_ids(self):
        con = sqlite3.connect(self.db)
        try:
            return con.execute("SELECT count(*) FROM aetl_deliveries").fetchone()[0]
        finally:
            con.close()


class Postgres:
    def __init__(self, pg):
        _tables[0] += 1
        self.pg = pg
        self.table = f"eo{_tables[0]}"
        self.pipeline = f"worker{_tables[0]}"

    def sink(self, extra=""):
        return (f'postgres: {{dsn: "{self.pg.dsn}", table: {self.table}, exactly_once: true, '
                f"batch: {{size: 100, linger: 20ms}}{extra}}}")

    def rows(self, columns="id"):
        out = self.pg.psql(f"SELECT {columns} FROM {self.table}")
        return [tuple(int(v) for v in l.split("|")) if "|" in l else int(l) for l in out.split()]

    def kept_ids(self):
        return int(self.pg.psql(f"SELECT count(*) FROM aetl_deliveries WHERE pipeline = '{self.pipeline}'"))


class Mysql:
    def __init__(self, db):
        _tables[0] += 1
        self.db = db
        self.table = f"eo{_tables[0]}"
        self.pipeline = f"worker{_tables[0]}"

    def sink(self, extra=""):
        return (f'mysql: {{url: "{self.db.url}", table: {self.table}, exactly_once: true, '
                f"batch: {{size: 100, linger: 20ms}}{extra}}}")

    def rows(self, columns="id"):
        out = self.db.rows(f"SELECT {columns} FROM {self.table}")
        return [tuple(int(v) for v in r) if len(r) > 1 else int(r[0]) for r in out]

    def kept_ids(self):
        return int(self.db.rows(f"SELECT count(*) FROM aetl_deliveries WHERE pipeline = '{self.pipeline}'")[0][0])


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        t = Sqlite(tmp_path)
        t.pipeline = "worker"
        return t
    if request.param == "mysql":
        return Mysql(request.getfixturevalue("mariadb"))
    return Postgres(request.getfixturevalue("pg"))


def worker_yaml(tmp_path, server, target, name="w.yaml", extra="", stages="", sink_extra=""):
    p = tmp_path / name
    p.write_text(f"""name: {target.pipeline}
source:
  redis: {{url: "{server.url}", stream: jobs, group: g, claim_idle: 1s, block: 200ms{", " + extra if extra else ""}}}
{stages}sink:
  {target.sink(sink_extra)}
dead_letter:
  jsonl: {{path: {tmp_path}/dl.jsonl, append: true}}
""")
    return p


def start_worker(tmp_path, pipeline):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    return subprocess.Popen([str(AETL), "run", "-q", str(pipeline)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def drain(tmp_path, server, target, **kw):
    """One more worker, to the end of the stream; returns its run."""
    p = worker_yaml(tmp_path, server, target, name="drain.yaml",
                    extra="count: 50, max_deliveries: 1000, stop_when_idle: 1500ms", **kw)
    r = run_aetl(["run", str(p)], cwd=tmp_path, timeout=120)
    assert r.code == 0, r.stderr
    return r


def deliver_twice(tmp_path, redis, target, n):
    """n entries drained, the group set back to the start (every entry is
    delivered again), drained again: each is written once, and the second run
    says it skipped them."""
    redis.push("jobs", range(n))
    drain(tmp_path, redis, target)
    assert redis.cli("XGROUP", "SETID", "jobs", "g", "0").strip() == "OK"
    r = drain(tmp_path, redis, target)
    assert sorted(target.rows()) == list(range(n))
    assert "committed by an earlier delivery, not written again" in r.stderr
    assert redis.pending("jobs", "g") == 0


def test_kill_9_rounds_among_three_workers_write_every_entry_exactly_once(tmp_path, redis, target):
    """Three workers into one table with no key (a second write would be a
    second row); one at a time is killed with SIGKILL at a random moment and
    started again, 30 times; the entries it held are claimed by the others.
    Workers killed between their COMMIT and their XACK leave entries whose rows
    are in: their next delivery writes nothing."""
    n = 6000
    redis.push("jobs", range(n))
    p = worker_yaml(tmp_path, redis, target, extra="count: 50, max_deliveries: 1000")
    rng = random.Random(12)
    workers = [start_worker(tmp_path, p) for _ in range(3)]
    deadline = time.time() + 90
    for _ in range(30):
        time.sleep(rng.uniform(0.05, 0.25))
        i = rng.randrange(3)
        workers[i].send_signal(signal.SIGKILL)
        workers[i].wait(timeout=30)
        workers[i] = start_worker(tmp_path, p)
        assert time.time() < deadline, "the rounds took too long"
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode in (0, 130, -signal.SIGTERM), err.decode()
    drain(tmp_path, redis, target)
    ids = target.rows()
    assert len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert len(ids) == n, f"{len(ids) - n} doubled"
    assert target.kept_ids() == n
    assert redis.pending("jobs", "g") == 0
    assert not (tmp_path / "dl.jsonl").exists() or (tmp_path / "dl.jsonl").read_text() == ""


def test_entries_delivered_again_after_their_commit_write_nothing(tmp_path, redis, target):
    """The crash between COMMIT and XACK, made certain: the group is set back
    to the start of the stream (XGROUP SETID 0), so every entry is delivered
    again; none is written again, and the run says so."""
    deliver_twice(tmp_path, redis, target, 500)


def test_entries_delivered_again_into_a_table_with_a_primary_key_are_not_dead_lettered(tmp_path, redis, pg):
    """New entries (not claimed) are written without looking their IDs up first;
    when the group was set back and the table's primary key refuses the rows an
    earlier delivery wrote, the batch is made again, looked up: those records
    are skipped as delivered before, not sent to the dead letter as refused."""
    target = Postgres(pg)
    pg.psql(f"CREATE TABLE {target.table} (id bigint PRIMARY KEY)")
    deliver_twice(tmp_path, redis, target, 300)
    assert not (tmp_path / "dl.jsonl").exists() or (tmp_path / "dl.jsonl").read_text() == ""
    assert target.kept_ids() == 300


@pytest.mark.parametrize("key", [False, True])
def test_entries_delivered_again_while_the_worker_holds_them_are_not_in_the_pipeline_twice(tmp_path, redis, pg, key):
    """The group is set back (XGROUP SETID 0) while the worker holds every entry
    in a sink batch still gathering: the next read brings them again; they are
    not handed on a second time (a batch holding an ID twice could never keep
    its IDs; with a primary key the second copies would be dead-lettered)."""
    target = Postgres(pg)
    if key:
        pg.psql(f"CREATE TABLE {target.table} (id bigint PRIMARY KEY)")
    redis.push("jobs", range(300))
    p = tmp_path / "w.yaml"
    p.write_text(f"""name: {target.pipeline}
source:
  redis: {{url: "{redis.url}", stream: jobs, group: g, block: 100ms, count: 50, stop_when_idle: 2s}}
sink:
  postgres: {{dsn: "{pg.dsn}", table: {target.table}, exactly_once: true, batch: {{size: 100000, linger: 2s}}}}
dead_letter:
  jsonl: {{path: {tmp_path}/dl.jsonl, append: true}}
""")
    w = start_worker(tmp_path, p)
    deadline = time.time() + 30
    while redis.pending("jobs", "g") < 300 and time.time() < deadline:
        time.sleep(0.02)
    assert redis.cli("XGROUP", "SETID", "jobs", "g", "0").strip() == "OK"
    _, err = w.communicate(timeout=60)
    assert w.returncode == 0, err.decode()
    ids = target.rows()
    assert sorted(ids) == list(range(300)), f"{len(ids)} rows, {len(set(ids))} distinct"
    assert not (tmp_path / "dl.jsonl").exists() or (tmp_path / "dl.jsonl").read_text() == ""
    assert redis.pending("jobs", "g") == 0


def test_records_split_from_one_entry_are_each_written_once(tmp_path, redis, target):
    """A jq stage makes two records of each entry: each has its own ID (the
    entry's, then the entry's with #2), so both are written, once."""
    redis.push("jobs", range(300))
    stages = "stages:\n  - jq: '.id as $i | ({id: $i, k: 1}, {id: $i, k: 2})'\n"
    drain(tmp_path, redis, target, stages=stages)
    redis.cli("XGROUP", "SETID", "jobs", "g", "0")
    drain(tmp_path, redis, target, stages=stages)
    rows = target.rows("id, k")
    assert sorted(rows) == sorted((i, k) for i in range(300) for k in (1, 2))


def test_a_paused_worker_writes_nothing_its_successor_wrote(tmp_path, redis, pg):
    """Worker a is stopped (SIGSTOP) while it holds entries; b claims them after
    claim_idle and writes them; a is resumed and goes on with the batch it held:
    its rows for entries b committed are not written. (PostgreSQL: a stopped
    inside its transaction has it ended by the server after 15 s. SQLite is left
    out: a writer stopped inside its transaction holds the file's lock, and the
    others wait for it.)"""
    target = Postgres(pg)
    n = 2000
    redis.push("jobs", range(n))
    pa = worker_yaml(tmp_path, redis, target, name="a.yaml", extra="count: 20")
    a = start_worker(tmp_path, pa)
    held = 0
    for _ in range(100):  # stopped while it holds entries it has not acknowledged
        deadline = time.time() + 30
        while redis.pending("jobs", "g") == 0 and time.time() < deadline:
            time.sleep(0.002)
        a.send_signal(signal.SIGSTOP)
        held = redis.pending("jobs", "g")
        if held:
            break
        a.send_signal(signal.SIGCONT)
    pb = worker_yaml(tmp_path, redis, target, name="b.yaml", extra="count: 20, stop_when_idle: 3s")
    b = start_worker(tmp_path, pb)
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err.decode()
    assert redis.pending("jobs", "g") == 0  # a is still stopped: b took over what a held
    a.send_signal(signal.SIGCONT)
    time.sleep(1.0)
    a.send_signal(signal.SIGTERM)
    _, err = a.communicate(timeout=60)
    assert a.returncode in (0, 130), err.decode()
    ids = target.rows()
    assert held > 0, "the paused worker held nothing"
    assert len(set(ids)) == n and len(ids) == n, f"{len(ids) - len(set(ids))} doubled"


def test_a_refused_record_is_dead_lettered_and_judged_again_when_delivered_again(tmp_path, redis):
    """A row the table refuses goes to the dead letter and its ID is not kept:
    delivered again, it is judged again (and refused again), while the others
    are not written twice."""
    target = Sqlite(tmp_path)
    target.pipeline = "worker"
    con = sqlite3.connect(target.db)
    con.execute("CREATE TABLE t (id INTEGER CHECK (id <> 7))")
    con.commit()
    con.close()
    redis.push("jobs", range(20))
    drain(tmp_path, redis, target)
    redis.cli("XGROUP", "SETID", "jobs", "g", "0")
    drain(tmp_path, redis, target)
    assert sorted(target.rows()) == [i for i in range(20) if i != 7]
    dead = (tmp_path / "dl.jsonl").read_text().splitlines()
    assert len(dead) == 2 and all('"id": 7' in l or '"id":7' in l for l in dead), dead
    assert target.kept_ids() == 19


def test_split_records_fetched_out_of_order_are_each_written_once(tmp_path, redis, server):
    """jq splits each entry into two requests, and an unordered fetch lets them
    come back in any order, mixed with other entries' parts: each part keeps its
    own number, so all are written, and a second delivery writes none again."""
    n = 40
    lines = "".join(
        f'XADD jobs * data "{{\\"id\\": {i}, \\"urls\\": [\\"{server.url(f"/delay/{(i * 7) % 40}/{i}")}\\", '
        f'\\"{server.url(f"/ok/{i}")}\\"]}}"\n' for i in range(n))
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port)], input=lines, text=True, check=True,
                   capture_output=True)
    target = Sqlite(tmp_path)
    target.pipeline = "worker"
    stages = ("stages:\n  - jq: '.id as $i | .urls | to_entries[] | {id: $i, k: .key, u: .value}'\n"
              "  - fetch: {url: '{u}', concurrency: 16, into: http}\n  - select: {id: id, k: k, status: http.status}\n")
    drain(tmp_path, redis, target, stages=stages)
    redis.cli("XGROUP", "SETID", "jobs", "g", "0")
    drain(tmp_path, redis, target, stages=stages)
    assert sorted(target.rows("id, k")) == sorted((i, k) for i in range(n) for k in (0, 1))


def test_a_split_part_failing_with_no_dead_letter_leaves_the_entry_pending_and_the_rest_written(tmp_path, redis, server):
    lines = "".join(
        f'XADD jobs * data "{{\\"id\\": {i}, \\"urls\\": [\\"{server.url("/status/404")}\\", '
        f'\\"{server.url(f"/delay/100/{i}")}\\"]}}"\n' for i in range(5))
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port)], input=lines, text=True, check=True,
                   capture_output=True)
    target = Sqlite(tmp_path)
    p = tmp_path / "w.yaml"
    p.write_text(f"""name: worker
source:
  redis: {{url: "{redis.url}", stream: jobs, group: g, claim_idle: 60s, block: 100ms, stop_when_idle: 500ms}}
stages:
  - jq: '.id as $i | .urls | to_entries[] | {{id: $i, k: .key, u: .value}}'
  - fetch: {{url: '{{u}}', retry: 0, ordered: true, into: http}}
  - select: {{id: id, k: k}}
sink:
  {target.sink()}
""")
    r = run_aetl(["run", p], cwd=tmp_path, timeout=60)
    assert r.code == 1, r.stderr
    assert "no entry" not in r.stderr and "no entry ID" not in r.stderr
    assert sorted(target.rows("id, k")) == [(i, 1) for i in range(5)]
    assert redis.pending("jobs", "g") == 5  # left for another delivery (the 404 parts failed)


def test_postgres_workers_started_together_all_make_their_tables(tmp_path, redis, pg):
    target = Postgres(pg)
    redis.push("jobs", range(200))
    p = worker_yaml(tmp_path, redis, target, extra="stop_when_idle: 1s")
    pg.psql("DROP TABLE IF EXISTS aetl_deliveries")
    workers = [start_worker(tmp_path, p) for _ in range(6)]
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err.decode()
    assert sorted(target.rows()) == list(range(200))


def test_a_split_of_a_split_gives_every_part_its_own_id(tmp_path, redis, target):
    """Two jq stages that both split: the parts (first of the first, second of
    the second) and (second of the first, first of the second) must not share an
    ID, or one would be taken for a redelivery and never written."""
    lines = "".join(f'XADD jobs * data "{{\\"id\\": {i}, \\"xs\\": [1, 2]}}"\n' for i in range(20))
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port)], input=lines, text=True, check=True,
                   capture_output=True)
    stages = ("stages:\n  - jq: '.id as $i | .xs[] | {id: $i, x: .}'\n"
              "  - jq: '(. + {k: 0}), (. + {k: 1})'\n  - select: {id: id, k: x}\n")
    drain(tmp_path, redis, target, stages=stages)
    redis.cli("XGROUP", "SETID", "jobs", "g", "0")
    drain(tmp_path, redis, target, stages=stages)
    assert sorted(target.rows()) == sorted([i for i in range(20) for _ in range(4)])


def test_postgres_restarts_mid_run_write_every_entry_once(tmp_path, redis, pg):
    """The server is restarted three times while a worker writes (each time once
    more rows are in, and not all): batches cut off (before, during or after
    their COMMIT) are made again, their IDs looked up, so each entry is written
    once."""
    target = Postgres(pg)
    n = 50000
    redis.push("jobs", range(n))
    p = worker_yaml(tmp_path, redis, target, extra="count: 100, stop_when_idle: 3s")
    w = start_worker(tmp_path, p)

    def written():
        try:
            return int(pg.psql(f"SELECT count(*) FROM {target.table}"))
        except subprocess.CalledProcessError:  # not made yet, or the server restarting
            return 0

    restarts, last = 0, 0
    deadline = time.time() + 60
    while restarts < 3 and w.poll() is None and time.time() < deadline:
        now = written()
        if last < now < n:
            pg.restart()
            restarts += 1
            last = written()
        time.sleep(0.05)
    _, err = w.communicate(timeout=120)
    assert w.returncode == 0, err.decode()
    assert restarts == 3, f"{restarts} restarts while the worker wrote (it was too quick)"
    assert "retrying" in err.decode(), err.decode()  # the restarts hit the sink, and it went on
    ids = target.rows()
    assert len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert len(ids) == n, f"{len(ids) - n} doubled"
    assert target.kept_ids() == n
    assert redis.pending("jobs", "g") == 0
