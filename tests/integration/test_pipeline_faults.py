"""Pipelines under faults: aborted runs, resumed CSV files, escaped keys, more files than descriptors, a full disk, an abort during a sink backoff, SQL smuggled in column types."""
import json
import os
import resource
import signal
import sqlite3
import time

import pytest

from conftest import AETL

from test_pipeline_run import read_jsonl, simple, write_jsonl


def test_split_records_are_never_half_written_across_aborted_runs(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": i, "items": [1, 2, 3]} for i in range(30000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="  - jq: '.id as $i | .items[] | {id: $i, x: .}'",
               sink="jsonl: {path: out.jsonl, fsync: false, batch: {size: 2}}")
    for deadline in ("100ms", "200ms", "300ms"):
        res = aetl(["run", "-q", "--state", "s.db", "--deadline", deadline, p], cwd=tmp_path, timeout=60)
        cut_short = "deadline of" in res.stderr  # else the run finished within it
        assert res.code == (1 if cut_short else 0), res.stderr
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, timeout=120)
    assert res.code == 0, res.stderr
    out = [(r["id"], r["x"]) for r in read_jsonl(tmp_path / "out.jsonl")]
    assert len(out) == len(set(out)) == 90000


def test_a_resumed_csv_file_keeps_its_last_column(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"a": i, "b": f"v{i}"} for i in range(4)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="csv: {path: out.csv}")
    assert aetl(["run", "-q", "--state", "s.db", "--limit", "2", p], cwd=tmp_path).code == 0
    assert aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path).code == 0
    assert (tmp_path / "out.csv").read_bytes() == b"a,b\r\n0,v0\r\n1,v1\r\n2,v2\r\n3,v3\r\n"


def test_csv_columns_come_from_the_first_record_with_fields(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{}\n{"a":2,"b":"y"}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="csv: {path: out.csv}")
    assert aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path).code == 0
    assert (tmp_path / "out.csv").read_bytes() == b"a,b\r\n,\r\n2,y\r\n"


def test_keys_written_with_escapes_match(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"stra\\u00dfe": "x", "q\\"k": 1}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="""  - select: {copy: '$["straße"]', q: '$["q\\"k"]'}""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"copy": "x", "q": 1}]
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - set: {straße: upper(straße)}",
               sink="sqlite: {path: out.db, table: t}")
    res = aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert sqlite3.connect(tmp_path / "out.db").execute('SELECT "straße", "q""k" FROM t').fetchall() == [("X", 1)]


def test_a_duplicated_key_counts_once_and_hides_nothing(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a":1,"a":2,"b":3}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - set: {c: 'a + b', a: 'a * 10'}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.jsonl").read_text() == '{"a":10,"b":3,"c":4}\n'


def test_a_glob_with_more_files_than_open_descriptors(aetl, pipeline, tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    for i in range(300):
        (d / f"f{i:04}.jsonl").write_text(f'{{"i": {i}}}\n')
    p = simple(tmp_path, pipeline, '{lines: {paths: ["logs/*.jsonl"]}}')

    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, preexec_fn=few_fds)
    assert res.code == 0, res.stderr
    assert [r["i"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(300))


def in_small_tmpfs(tmp_path, script):
    """Runs a shell script in a private mount namespace with a 64 KiB tmpfs at ./full
    (unshare -rm: works without root where user namespaces are allowed)."""
    import shutil
    import subprocess
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    (tmp_path / "full").mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs full"], cwd=tmp_path,
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + probe.stderr.decode().strip())
    env = dict(os.environ, AETL=str(AETL), XDG_STATE_HOME=str(tmp_path / ".state"))
    return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs full && " + script],
                          cwd=tmp_path, capture_output=True, timeout=120, env=env)


def test_a_full_disk_keeps_the_checkpoint_and_a_rerun_succeeds_once_space_is_back(pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i, "pad": "y" * 100} for i in range(2000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink="jsonl: {path: full/out.jsonl, batch: {size: 100}, retry: {max: 2, backoff: 10ms..20ms}}")
    res = in_small_tmpfs(tmp_path, f"""
"$AETL" run -q --state s.db {p} 2> err1.txt; echo $? > rc1.txt
cp full/out.jsonl partial.jsonl
mount -o remount,size=10m full
"$AETL" run -q --state s.db {p} 2> err2.txt; echo $? > rc2.txt
cp full/out.jsonl out.jsonl""")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "rc1.txt").read_text().strip() == "1"
    err1 = (tmp_path / "err1.txt").read_text()
    assert "full/out.jsonl: No space left on device" in err1 and "retrying" in err1
    partial = read_jsonl(tmp_path / "partial.jsonl")
    assert 0 < len(partial) < 2000
    assert (tmp_path / "rc2.txt").read_text().strip() == "0", (tmp_path / "err2.txt").read_text()
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(2000))


def test_an_abort_cuts_a_sink_backoff_short(pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i, "pad": "y" * 100} for i in range(2000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink="jsonl: {path: full/out.jsonl, batch: {size: 100}, retry: {max: 5, backoff: 20s..20s}}")
    res = in_small_tmpfs(tmp_path, f"""
start=$(date +%s)
"$AETL" run -q --state s.db --deadline 1s {p} 2> err.txt; echo $? > rc.txt
echo $(( $(date +%s) - start )) > took.txt""")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "rc.txt").read_text().strip() == "1"
    assert int((tmp_path / "took.txt").read_text()) < 8, "waited out the 20 s backoff"


def test_column_types_cannot_smuggle_sql(aetl, pipeline, tmp_path):
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink='sqlite: {path: out.db, table: t, columns: {a: "INTEGER, b TEXT", c: "TEXT CHECK(0)", d: "NUMERIC(10,2)"}}')
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.count("not a column type") == 2
