"""`aetl replay DEADLETTER PIPELINE`: dead-lettered records through the pipeline
again, each from where it failed (a bad input line, a stage, a sink's refused
row); what now succeeds leaves the file, which is rewritten at once; the rest
stays with its new error and the attempts added up. Real SQLite files; a jq
stage that fails while FAIL=1; a trigger that refuses ids listed in a table."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

from conftest import AETL, run_aetl


def write_lines(path, lines):
    path.write_text("".join(l + "\n" for l in lines))


def read_jsonl(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l]


def sql(db, query, *args):
    con = sqlite3.connect(db)
    try:
        rows = con.execute(query, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def blocking_table(db, blocked):
    """Table t, whose trigger refuses the ids in table `blocked`."""
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE blocked (id INTEGER);
        CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.id IN (SELECT id FROM blocked)
        BEGIN SELECT RAISE(ABORT, 'id is blocked'); END;""")
    con.executemany("INSERT INTO blocked VALUES (?)", [(i,) for i in blocked])
    con.commit()
    con.close()


PIPELINE = """\
name: rp
source: {lines: {paths: [in.jsonl]}}
stages:
  - jq: 'if .id % 3 == 0 and env.FAIL == "1" then error("multiple of three") else . end'
sink: {sqlite: {path: out.db, table: t, columns: [id, v]}}
dead_letter: {jsonl: {path: dl.jsonl}}
"""


def first_run(tmp_path):
    """Ids 1..9 with line 2 not JSON, 3/6/9 failing in jq, 5 refused by the sink."""
    lines = [json.dumps({"id": i, "v": str(i)}) for i in range(1, 10)]
    lines[1] = '{"id": 2, "v": "2"'  # not JSON: its closing brace is missing
    write_lines(tmp_path / "in.jsonl", lines)
    blocking_table(tmp_path / "out.db", [5])
    (tmp_path / "p.yaml").write_text(PIPELINE)
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env={"FAIL": "1"})
    assert res.code == 0, res.stderr
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert [(e["line"], e["stage"]) for e in dl] == [(2, "lines"), (3, "jq#1"), (6, "jq#1"), (9, "jq#1"),
                                                     (5, "sink sqlite")]
    assert sql(tmp_path / "out.db", "SELECT id FROM t ORDER BY id") == [(1,), (4,), (7,), (8,)]


def mend_bad_line(path):
    """As an editor saves: a new file moved over the old one."""
    entries = path.read_text().splitlines()
    e = json.loads(entries[0])
    e["record"] = e["record"] + "}"
    entries[0] = json.dumps(e)
    write_lines(path.with_suffix(".new"), entries)
    os.rename(path.with_suffix(".new"), path)


def test_every_cause_replays_from_where_it_failed_and_leaves_the_file(tmp_path):
    first_run(tmp_path)
    mend_bad_line(tmp_path / "dl.jsonl")
    sql(tmp_path / "out.db", "DELETE FROM blocked")
    before = os.stat(tmp_path / "dl.jsonl").st_ino
    res = run_aetl(["replay", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert sql(tmp_path / "out.db", "SELECT id, v FROM t ORDER BY id") == [(i, str(i)) for i in range(1, 10)]
    assert (tmp_path / "dl.jsonl").read_text() == ""
    assert os.stat(tmp_path / "dl.jsonl").st_ino != before, "replaced by a rename, not rewritten in place"
    assert "aetl: dl.jsonl: replaying 4 entries from jq#1" in res.stderr.splitlines()
    assert "aetl: dl.jsonl: replaying 1 entry into sink sqlite" in res.stderr.splitlines()
    assert res.stderr.splitlines()[-1] == ("aetl: dl.jsonl: 5 entries: 5 replayed, 5 handled now, "
                                           "0 failed again, 0 not replayable; the file was rewritten")
    assert not list(tmp_path.glob("dl.jsonl.*")), "no temporary file left beside it"


def test_what_fails_again_stays_in_order_with_its_attempts_added(tmp_path):
    first_run(tmp_path)
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env={"FAIL": "1"})
    assert res.code == 1, res.stderr
    dl = read_jsonl(tmp_path / "dl.jsonl")
    # line 2 is still not JSON: kept as it was; the others failed again
    assert [(e["line"], e["stage"], e["attempts"]) for e in dl] == [
        (2, "lines", 1), (3, "jq#1", 2), (6, "jq#1", 2), (9, "jq#1", 2), (5, "sink sqlite", 2)]
    assert dl[1] == {"error": "jq: multiple of three", "stage": "jq#1", "input": "in.jsonl", "line": 3,
                     "attempts": 2, "record": {"id": 3, "v": "3"}}
    assert dl[4]["error"] == "id is blocked"
    assert res.stderr.splitlines()[-1] == ("aetl: dl.jsonl: 5 entries: 4 replayed, 0 handled now, "
                                           "4 failed again, 1 not replayable; the file was rewritten")
    # then the failures are mended: only those go
    sql(tmp_path / "out.db", "DELETE FROM blocked")
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert [e["line"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [2]
    assert sql(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id) FROM t") == [(8, 8)]


def test_the_pipeline_appends_to_the_rewritten_dead_letter_and_leaves_a_killed_runs_tail_to_its_next_run(tmp_path):
    first_run(tmp_path)
    sql(tmp_path / "out.db", "DELETE FROM blocked")
    # What a run killed after writing to the dead letter and before its checkpoint leaves behind:
    tail = json.dumps({"error": "x", "stage": "jq#1", "input": "in.jsonl", "line": 99, "attempts": 1,
                       "record": {"id": 99}})
    with open(tmp_path / "dl.jsonl", "a") as f:
        f.write(tail + "\n")
    res = run_aetl(["replay", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env={"FAIL": "1"})
    assert res.code == 1, res.stderr
    assert (f"aetl: dl.jsonl: its last {len(tail) + 1} bytes are not in the pipeline's checkpoint (a run was killed): "
            "left out; the pipeline's next run writes those entries again") in res.stderr.splitlines()
    assert [e["line"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [2, 3, 6, 9]
    assert sql(tmp_path / "out.db", "SELECT id FROM t WHERE id = 99") == []
    # the replay recorded the rewritten file in the pipeline's checkpoint: the next run appends to it
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write('{"id": 12, "v": "12"}\n{"id": 13, "v": "13"}\n')
    res = run_aetl(["run", "--no-progress", "--state", "s.db", "p.yaml"], cwd=tmp_path, env={"FAIL": "1"})
    assert res.code == 0, res.stderr
    assert "dl.jsonl:" not in res.stderr
    assert [e["line"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [2, 3, 6, 9, 10]
    assert sql(tmp_path / "out.db", "SELECT count(*) FROM t WHERE id = 13") == [(1,)]


JSONL_PIPELINE = """\
name: files
source: {lines: {paths: [in.jsonl]}}
stages:
  - jq: 'if .id % 3 == 0 and env.FAIL == "1" then error("multiple of three") else . end'
sink: {jsonl: {path: out.jsonl}}
dead_letter: {jsonl: {path: dl.jsonl}}
"""


def test_records_replayed_into_a_file_sink_stay_when_the_pipeline_runs_again(tmp_path):
    # A regression: the next run cut out.jsonl back to the length in its checkpoint,
    # and the replayed records were in neither file.
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i}) for i in range(1, 7)])
    (tmp_path / "p.yaml").write_text(JSONL_PIPELINE)
    env = {"FAIL": "1"}
    assert run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env=env).code == 0
    # several replays in a row (the dead letter's inode numbers come round again),
    # the pipeline running in between
    for _ in range(3):
        res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env=env)
        assert res.code == 1, res.stderr
    for n in (7, 8, 9):
        with open(tmp_path / "in.jsonl", "a") as f:
            f.write(json.dumps({"id": n}) + "\n")
        res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env=env)
        assert res.code == 0, res.stderr
        res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env=env)
        assert res.code == 1, res.stderr
    assert [e["record"]["id"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [3, 6, 9]
    assert [e["attempts"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [7, 7, 2]
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write(json.dumps({"id": 10}) + "\n")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out.jsonl")) == list(range(1, 11))
    assert (tmp_path / "dl.jsonl").read_text() == ""


def test_an_exactly_once_sink_holding_the_checkpoint_records_the_rewritten_dead_letter(tmp_path):
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i, "v": str(i)}) for i in range(1, 7)])
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("columns: [id, v]", "columns: [id, v], exactly_once: true"))
    blocking_table(tmp_path / "out.db", [])
    env = {"FAIL": "1"}
    assert run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env=env).code == 0
    for n in (7, 8, 9):
        assert run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env=env).code == 1
        with open(tmp_path / "in.jsonl", "a") as f:
            f.write(json.dumps({"id": n, "v": str(n)}) + "\n")
        res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env=env)
        assert res.code == 0, res.stderr
    assert [e["record"]["id"] for e in read_jsonl(tmp_path / "dl.jsonl")] == [3, 6, 9]
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path).code == 0
    assert sql(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id) FROM t") == [(9, 9)]
    assert (tmp_path / "dl.jsonl").read_text() == ""


def test_a_replay_killed_after_its_commit_is_finished_by_the_next_run(tmp_path):
    """The rewrite is committed by the pipeline's checkpoint; a replay killed before
    its rename leaves DL.replay-tmp, which the next run puts in place."""
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i}) for i in range(1, 7)])
    (tmp_path / "p.yaml").write_text(JSONL_PIPELINE)
    assert run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env={"FAIL": "1"}).code == 0
    before = (tmp_path / "dl.jsonl").read_text()
    # replay for real, then put the old file back as if the rename had not happened
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    os.rename(tmp_path / "dl.jsonl", tmp_path / "dl.jsonl.replay-tmp")
    (tmp_path / "dl.jsonl").write_text(before)
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write(json.dumps({"id": 7}) + "\n")
    res = run_aetl(["run", "--no-progress", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert ("aetl: dl.jsonl: an aetl replay was killed after recording its rewrite of this file: put in place"
            in res.stderr.splitlines())
    assert (tmp_path / "dl.jsonl").read_text() == ""
    assert not (tmp_path / "dl.jsonl.replay-tmp").exists()
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out.jsonl")) == list(range(1, 8))


def test_a_queue_pipelines_own_dead_letter_is_refused(tmp_path):
    (tmp_path / "p.yaml").write_text("""\
name: w
source: {redis: {url: 'redis://127.0.0.1:1/0', stream: jobs, group: g}}
sink: {jsonl: {path: out.jsonl}}
dead_letter: {jsonl: {path: dl.jsonl}}
""")
    write_lines(tmp_path / "dl.jsonl", [])
    res = run_aetl(["replay", "dl.jsonl", "p.yaml"], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == ("aetl: dl.jsonl: the dead letter of pipeline 'w', whose workers keep it open (it reads a "
                          "queue): stop them, move the file aside (mv), and replay the moved file\n")


def test_dry_run_prints_and_changes_nothing(tmp_path):
    first_run(tmp_path)
    before = (tmp_path / "dl.jsonl").read_bytes()
    res = run_aetl(["replay", "--dry-run", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path,
                   env={"FAIL": "1"})
    assert res.code == 1
    assert (tmp_path / "dl.jsonl").read_bytes() == before
    assert [json.loads(l)["id"] for l in res.stdout.splitlines()] == [5]  # the refused row, printed instead
    again = [json.loads(l) for l in res.stderr.splitlines() if l.startswith("{")]
    assert [(e["line"], e["attempts"]) for e in again] == [(3, 2), (6, 2), (9, 2)]
    assert sql(tmp_path / "out.db", "SELECT count(*) FROM t") == [(4,)]


def test_a_refused_row_of_one_sink_goes_back_to_that_sink_alone(tmp_path):
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i, "v": str(i)}) for i in range(1, 21)])
    blocking_table(tmp_path / "out.db", [4, 17])
    (tmp_path / "p.yaml").write_text("""\
name: two
source: {lines: {paths: [in.jsonl]}}
sinks:
  db: {sqlite: {path: out.db, table: t, columns: [id, v], exactly_once: true}}
  archive: {jsonl: {path: archive.jsonl}}
dead_letter: {jsonl: {path: dl.jsonl}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert [(e["line"], e["stage"]) for e in read_jsonl(tmp_path / "dl.jsonl")] == [(4, "sink db"), (17, "sink db")]
    sql(tmp_path / "out.db", "DELETE FROM blocked")
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert sql(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id) FROM t") == [(20, 20)]
    assert len((tmp_path / "archive.jsonl").read_text().splitlines()) == 20, "the archive did not get them twice"
    assert (tmp_path / "dl.jsonl").read_text() == ""


def test_a_dead_letter_changed_in_place_is_refused(tmp_path):
    first_run(tmp_path)
    text = (tmp_path / "dl.jsonl").read_text()
    with open(tmp_path / "dl.jsonl", "r+") as f:  # the same file, its first line made longer
        f.write(text.replace('"attempts":1', '"attempts": 1', 1))
    changed = (tmp_path / "dl.jsonl").read_text()
    res = run_aetl(["replay", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == (f"aetl: dl.jsonl: changed in place since the pipeline's last checkpoint (its {len(text)} "
                          "bytes there do not end a line): save the file under another name and move it over\n")
    assert (tmp_path / "dl.jsonl").read_text() == changed


def test_bad_dead_letter_files_are_exit_2_with_the_line(tmp_path):
    (tmp_path / "p.yaml").write_text(PIPELINE)
    write_lines(tmp_path / "in.jsonl", [])
    cases = [
        ('{"error": "x", "stage": "jq#1", "record": {"id": 1}}\n[1]\n', "bad.jsonl:2: not a dead-letter entry: not a JSON object"),
        ('{"error": "x", "stage": "jq#1"}\n', 'bad.jsonl:1: not a dead-letter entry: no "record"'),
        ('{"stage": "jq#1", "record": {}}\n', 'bad.jsonl:1: not a dead-letter entry: no "error" string'),
    ]
    for text, message in cases:
        (tmp_path / "bad.jsonl").write_text(text)
        res = run_aetl(["replay", "bad.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
        assert res.code == 2
        assert res.stderr == f"aetl: {message}\n"
        assert (tmp_path / "bad.jsonl").read_text() == text
    res = run_aetl(["replay", "none.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert (res.code, res.stderr) == (2, "aetl: none.jsonl: No such file or directory\n")


def test_entries_of_steps_the_pipeline_no_longer_has_are_kept(tmp_path):
    (tmp_path / "p.yaml").write_text(PIPELINE)
    write_lines(tmp_path / "in.jsonl", [])
    blocking_table(tmp_path / "out.db", [])
    entries = [json.dumps({"error": "x", "stage": "fetch#4", "input": "in.jsonl", "line": 1, "attempts": 3,
                           "record": {"id": 1}}),
               json.dumps({"error": "x", "stage": "jq#1", "input": "in.jsonl", "line": 2, "attempts": 1,
                           "record": {"id": 2}})]
    write_lines(tmp_path / "old.jsonl", entries)
    res = run_aetl(["replay", "-q", "old.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "old.jsonl").read_text() == entries[0] + "\n"
    assert sql(tmp_path / "out.db", "SELECT id FROM t") == [(2,)]


def test_a_running_pipeline_makes_replay_exit_75(tmp_path):
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("paths: [in.jsonl]", "paths: ['-']"))
    blocking_table(tmp_path / "out.db", [])
    write_lines(tmp_path / "dl.jsonl", [])
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "s.db.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        res = run_aetl(["replay", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
        assert res.code == 75
        assert res.stderr == (f"aetl: pipeline 'rp' is running (pid {proc.pid} holds s.db.lock); "
                              "--wait waits for it\n")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()


def test_sigkill_rounds_of_a_replay_lose_nothing_and_a_key_doubles_nothing(tmp_path):
    """The file is the old one or the new one, never half; replayed again after a kill,
    the records are written again (at least once): with `key:`, an upsert."""
    n = 3000
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i, "v": "x" * 200}) for i in range(1, n + 1)])
    sql(tmp_path / "out.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("columns: [id, v]", "columns: [id, v], key: [id], batch: {size: 100}")
                                     .replace("% 3 == 0", "% 2 == 0"))
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env={"FAIL": "1"})
    assert res.code == 0, res.stderr
    original = (tmp_path / "dl.jsonl").read_text()
    assert len(original.splitlines()) == n // 2
    rng = random.Random(13)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    killed = 0
    for _ in range(8):
        proc = subprocess.Popen([str(AETL), "replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.01, 0.1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate(timeout=60)
        text = (tmp_path / "dl.jsonl").read_text()
        assert text in (original, ""), "the dead letter is the old file or the new one"
        if text == "":
            break
    final = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path)
    assert final.code == 0, final.stderr
    assert (tmp_path / "dl.jsonl").read_text() == ""
    assert sql(tmp_path / "out.db", "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [(n, n, 1, n)]
    assert killed >= 1
    assert not list(tmp_path.glob("dl.jsonl.*"))


def test_an_interrupted_replay_takes_out_what_it_handled_and_doubles_nothing(server, tmp_path):
    write_lines(tmp_path / "in.jsonl", [json.dumps({"id": i}) for i in range(1, 201)])
    (tmp_path / "p.yaml").write_text(f"""\
name: slow
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - fetch: {{url: '{server.url("")}/${{CALL}}/{{id}}', into: r, concurrency: 4, retry: {{max: 0}}}}
sink: {{jsonl: {{path: out.jsonl}}}}
dead_letter: {{jsonl: {{path: dl.jsonl}}}}
""")
    res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path, env={"CALL": "status/500"})
    assert res.code == 0, res.stderr
    assert len(read_jsonl(tmp_path / "dl.jsonl")) == 200
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"), CALL="delay/100")
    proc = subprocess.Popen([str(AETL), "replay", "--no-progress", "dl.jsonl", "p.yaml", "--state", "s.db"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    out = [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")]
    left = [e["record"]["id"] for e in read_jsonl(tmp_path / "dl.jsonl")]
    assert 0 < len(out) < 200
    assert sorted(out + left) == list(range(1, 201)), "each record is either written or still in the file"
    last = err.decode().splitlines()[-1]
    assert last == (f"aetl: dl.jsonl: 200 entries; the replay was interrupted: {len(out)} handled now, 0 failed again, "
                    f"{len(left)} left as they were; the file was rewritten")
    res = run_aetl(["replay", "-q", "dl.jsonl", "p.yaml", "--state", "s.db"], cwd=tmp_path, env={"CALL": "delay/1"})
    assert res.code == 0, res.stderr
    out = [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")]
    assert (len(out), len(set(out))) == (200, 200)
    assert (tmp_path / "dl.jsonl").read_text() == ""
