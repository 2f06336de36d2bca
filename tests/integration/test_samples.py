"""Every sample pipeline validates and runs offline from a copy of the repository's samples/."""
import json
import re
import sqlite3
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import AETL, ROOT, run_aetl, start_server, stop_server

SAMPLES = sorted((ROOT / "samples").glob("**/*.yaml"))


@pytest.fixture()
def workdir(tmp_path):
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    (tmp_path / "samples-out").mkdir()
    return tmp_path


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_validates(sample):
    res = run_aetl(["validate", sample])
    assert res.code == 0, res.stderr


def test_quick_start_pipeline(workdir):
    res = run_aetl(["run", "--state", "st.sqlite", "samples/pipeline.yaml"], cwd=workdir)
    assert res.code == 0, res.stderr
    import sqlite3
    rows = sqlite3.connect(workdir / "samples-out/errors.db").execute("SELECT count(*), min(status) FROM errors").fetchone()
    assert rows[0] > 0 and rows[1] >= 400
    dl = [json.loads(l) for l in (workdir / "samples-out/errors-failed.jsonl").read_text().splitlines()]
    assert len(dl) == 1 and dl[0]["line"] == 18
    # run again: the exactly-once sink's checkpoint covers the dead letter and the
    # records filtered out after its last batch, so nothing is read again
    res = run_aetl(["run", "--state", "st.sqlite", "samples/pipeline.yaml"], cwd=workdir)
    assert res.code == 0, res.stderr
    lines_row = next(l for l in res.stderr.splitlines() if l.startswith("lines "))
    assert lines_row.split()[1:3] == ["0", "0"], lines_row


@pytest.mark.parametrize("name", ["users-csv", "app-log-text", "archive-jq", "routed"])
def test_offline_samples_run(workdir, name):
    res = run_aetl(["run", "-q", "--state", "st.sqlite", f"samples/pipelines/{name}.yaml"], cwd=workdir)
    assert res.code == 0, res.stderr


def test_replay_sample(workdir):
    res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/replay.yaml"], cwd=workdir)
    assert res.code == 0, res.stderr
    dead = workdir / "samples-out/replay-failed.jsonl"
    assert len(dead.read_text().splitlines()) == 22
    res = run_aetl(["replay", "-q", "--state", "st.sqlite", "samples-out/replay-failed.jsonl",
                    "samples/pipelines/replay.yaml"], cwd=workdir, env={"MAX_KB": "1024"})
    assert res.code == 0, res.stderr
    assert [json.loads(l)["line"] for l in dead.read_text().splitlines()] == [18]  # the malformed line stays
    rows = sqlite3.connect(workdir / "samples-out/responses.db").execute(
        "SELECT count(*), count(DISTINCT id) FROM responses").fetchone()
    assert rows == (60, 60)


def test_fetch_sample_against_the_sample_site(workdir):
    site, port = serve_dir(workdir / "samples/site")
    try:
        res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/fetch-enrich.yaml"], cwd=workdir,
                       env={"SITE": f"http://127.0.0.1:{port}"})
        assert res.code == 0, res.stderr
        assert [r["page"] for r in res.records] == ["index.html", "data.json"]
        assert all(r["status"] == 200 for r in res.records)
        failed = (workdir / "samples-out/fetch-failed.jsonl").read_text()
        assert "missing.html" in failed and "HTTP 404" in failed
    finally:
        site.terminate()
        site.wait(timeout=10)


def test_gather_sample_against_the_sample_site(workdir):
    site, port = serve_dir(workdir / "samples/site")
    try:
        res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/gather-pages.yaml"], cwd=workdir,
                       env={"SITE": f"http://127.0.0.1:{port}"})
        assert res.code == 0, res.stderr
        got = sorted((r["page"], r["status"], r["site"]) for r in res.records)
        assert got == [("data.json", 200, "aetl"), ("index.html", 200, "aetl"), ("missing.html", 404, "aetl")]
        assert all(r["guide_bytes"] > 0 for r in res.records)
    finally:
        site.terminate()
        site.wait(timeout=10)


def test_api_pages_sample_against_the_tests_server(workdir):
    proc, port = start_server(workdir)
    try:
        env = {"API": f"http://127.0.0.1:{port}", "API_TOKEN": "demo"}
        res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/api-pages.yaml"], cwd=workdir, env=env)
        assert res.code == 0, res.stderr
        db = sqlite3.connect(workdir / "samples-out/api-items.db")
        assert db.execute("SELECT count(*), count(DISTINCT id), max(updated) FROM items").fetchone() == (250, 250, 250)
        again = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/api-pages.yaml"], cwd=workdir,
                         env=env)
        assert again.code == 0, again.stderr
        assert db.execute("SELECT count(*) FROM items").fetchone() == (250,)
    finally:
        stop_server(proc)


def serve_dir(directory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def test_url_source_streams_a_large_body_with_flat_memory(tmp_path):
    import os
    site = tmp_path / "site"
    site.mkdir()
    with open(site / "big.jsonl", "w") as f:
        for i in range(400000):  # ~40 MB
            f.write(json.dumps({"i": i, "pad": "z" * 80}) + "\n")
    proc, port = serve_dir(site)
    try:
        (tmp_path / "p.yaml").write_text(f"""
source: {{lines: {{url: 'http://127.0.0.1:{port}/big.jsonl'}}}}
stages: [{{filter: 'i % 1000 == 0'}}]
sink: {{jsonl: {{path: out.jsonl}}}}
""")
        # GNU time reports the peak RSS of aetl alone (a child forked from pytest would
        # inherit pytest's own high-water mark in ru_maxrss)
        run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", "rss.txt", str(AETL), "run", "-q", "--state",
                              "s.db", "p.yaml"], cwd=tmp_path, timeout=60)
        assert run.returncode == 0
        peak_kb = int((tmp_path / "rss.txt").read_text().split()[-1])
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 400
        assert peak_kb < 64 * 1024, f"peak RSS {peak_kb} KB for a 40 MB body"
        (tmp_path / "p2.yaml").write_text(f"""
source: {{lines: {{url: 'http://127.0.0.1:{port}/missing.jsonl'}}}}
sink: {{jsonl: {{path: out2.jsonl}}}}
""")
        res = run_aetl(["run", "-q", "--state", "s2.db", "p2.yaml"], cwd=tmp_path)
        assert res.code == 2 and f"http://127.0.0.1:{port}/missing.jsonl: HTTP 404" in res.stderr
        assert (tmp_path / "out2.jsonl").read_text() == ""
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_url_source_csv_with_a_multiline_record_a_long_line_and_steps(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    rows = ["id,note"] + [f'{i},"n{i}"' for i in range(1, 3000)]
    rows[10] = '10,"two\nlines"'
    rows[20] = "20," + "x" * 5000  # over max_line
    (site / "u.csv").write_text("\n".join(rows) + "\n")
    proc, port = serve_dir(site)
    try:
        (tmp_path / "p.yaml").write_text(f"""
source: {{lines: {{url: 'http://127.0.0.1:{port}/u.csv', format: csv, max_line: 1000}}}}
stages: [{{filter: 'id % 500 == 0 or id == 10'}}, {{select: {{id: id, note: note}}}}]
sink: {{jsonl: {{path: out.jsonl}}}}
dead_letter: {{jsonl: {{path: dl.jsonl}}}}
""")
        res = run_aetl(["run", "-q", "--state", "s.db", "p.yaml"], cwd=tmp_path)
        assert res.code == 0, res.stderr
        out = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert out == [{"id": 10, "note": "two\nlines"}] + [{"id": i, "note": f"n{i}"} for i in range(500, 3000, 500)]
        dl = [json.loads(l) for l in (tmp_path / "dl.jsonl").read_text().splitlines()]
        assert [(d["line"], d["stage"]) for d in dl] == [(22, "lines")] and "max_line" in dl[0]["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_scheduled_sample_runs_its_slot_once(workdir):
    first = run_aetl(["run", "--once", "-q", "--state", "st.sqlite", "samples/pipelines/scheduled.yaml"], cwd=workdir)
    assert first.code == 0, first.stderr
    slot = re.search(r"slot (\S+): run starts", first.stderr).group(1)
    rows = sqlite3.connect(workdir / "samples-out/server-errors.db").execute(
        "SELECT count(*), min(status) FROM server_errors").fetchone()
    assert rows[0] > 0 and rows[1] >= 500
    again = run_aetl(["run", "--once", "-q", "--state", "st.sqlite", "samples/pipelines/scheduled.yaml"], cwd=workdir)
    assert again.code == 0, again.stderr
    assert f"slot {slot} was run already by " in again.stderr and again.stderr.endswith("; nothing to do\n")


def test_websocket_sample_against_the_test_feed(workdir, ws_server):
    url = ws_server.url("/trades?n=1000&wait_subscribe=1")
    res = run_aetl(["run", "-q", "--state", "st.sqlite", "samples/pipelines/websocket-feed.yaml"], cwd=workdir,
                   env={"FEED": url})
    assert res.code == 0, res.stderr
    rows = sqlite3.connect(workdir / "samples-out/trades.db").execute(
        "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM trades").fetchone()
    assert rows == (1000, 1000, 1, 1000)
    assert ws_server.stats()["/trades?n=1000&wait_subscribe=1"]["received"] == [
        [1, '{"op": "subscribe", "channel": "trades"}']]
