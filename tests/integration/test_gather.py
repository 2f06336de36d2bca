"""The gather stage: several HTTP calls per record at once, against the tests' own
HTTP server (its /__stats counts the requests it answered at the same time)."""
import json

import pytest

from conftest import run_aetl


def write_records(path, n):
    path.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(1, n + 1)))


def run(tmp_path, stages, n=1, dl=True, extra_args=()):
    write_records(tmp_path / "in.jsonl", n)
    (tmp_path / "p.yaml").write_text(
        "source: {lines: {paths: [in.jsonl]}}\nstages:\n" + stages + "sink: {jsonl: {path: out.jsonl}}\n" +
        ("dead_letter: {jsonl: {path: failed.jsonl}}\n" if dl else ""))
    res = run_aetl(["run", "-q", "--state", "s.db", *extra_args, "p.yaml"], cwd=tmp_path)
    out = tmp_path / "out.jsonl"
    records = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
    failed_file = tmp_path / "failed.jsonl"
    failed = [json.loads(l) for l in failed_file.read_text().splitlines()] if failed_file.exists() else []
    return res, records, failed


def test_the_calls_of_a_record_are_made_at_the_same_time(server, tmp_path):
    base = server.url("")
    res, records, _ = run(tmp_path, f"""\
  - gather:
      calls:
        - {{into: a, url: '{base}/delay/300/a?id={{id}}'}}
        - {{into: b, url: '{base}/delay/300/b?id={{id}}'}}
        - {{into: c, url: '{base}/delay/300/c?id={{id}}'}}
""")
    assert res.code == 0, res.stderr
    assert len(records) == 1
    r = records[0]
    assert [r[k]["status"] for k in "abc"] == [200, 200, 200]
    assert all(r[k]["ok"] and r[k]["body"] == "ok" and r[k]["attempts"] == 1 for k in "abc")
    # the server answered the three at once: they were not made one after the other
    assert server.stats()["max_in_flight"] == 3


def test_the_calls_share_the_stage_s_concurrency(server, tmp_path):
    base = server.url("")
    res, records, _ = run(tmp_path, f"""\
  - gather:
      concurrency: 4
      calls:
        - {{into: a, url: '{base}/delay/50/a?id={{id}}'}}
        - {{into: b, url: '{base}/delay/50/b?id={{id}}'}}
        - {{into: c, url: '{base}/delay/50/c?id={{id}}'}}
""", n=20)
    assert res.code == 0, res.stderr
    assert sorted(r["id"] for r in records) == list(range(1, 21))
    st = server.stats()
    assert st["total"] == 60
    assert 3 <= st["max_in_flight"] <= 4


def test_a_later_call_uses_an_earlier_one_s_result(server, tmp_path):
    base = server.url("")
    res, records, _ = run(tmp_path, f"""\
  - gather:
      calls:
        - {{into: doc, url: '{base}/json'}}
        - {{into: slow, url: '{base}/delay/100/x'}}
        - {{into: next, url: '{base}/delay/10/{{doc.body.hello}}', after: [doc]}}
""")
    assert res.code == 0, res.stderr
    r = records[0]
    assert r["doc"]["body"] == {"hello": "world", "n": [1, 2, 3]}
    assert r["next"]["ok"] is True
    assert server.stats()["paths"].get("/delay/10/world") == 1


def test_an_optional_call_that_fails_leaves_ok_false_and_the_record_goes_on(server, tmp_path):
    base = server.url("")
    res, records, failed = run(tmp_path, f"""\
  - gather:
      retry: 0
      calls:
        - {{into: good, url: '{base}/ok'}}
        - {{into: extra, url: '{base}/status/500', required: false}}
        - {{into: more, url: '{base}/ok?from={{extra.status}}', after: [extra], required: false}}
""")
    assert res.code == 0, res.stderr
    assert failed == []
    r = records[0]
    assert r["good"]["ok"] is True
    assert (r["extra"]["ok"], r["extra"]["status"], r["extra"]["error"]) == (False, 500, "HTTP 500")
    assert r["more"] == {"status": 0, "ok": False, "body": None, "error": "not made: 'extra' failed", "attempts": 0,
                         "time_ms": 0.0}


def test_a_required_call_that_fails_sends_the_record_to_the_dead_letter(server, tmp_path):
    base = server.url("")
    res, records, failed = run(tmp_path, f"""\
  - gather:
      retry: 1
      calls:
        - {{into: good, url: '{base}/ok'}}
        - {{into: bad, url: '{base}/status/503'}}
""", n=3)
    assert res.code == 0, res.stderr
    assert records == []
    assert len(failed) == 3
    assert {f["error"] for f in failed} == {"bad: HTTP 503"}
    assert {f["stage"] for f in failed} == {"gather#1"} and {f["attempts"] for f in failed} == {2}
    # the record in the dead letter carries what came back, the failed call too
    assert failed[0]["record"]["good"]["ok"] is True and failed[0]["record"]["bad"]["status"] == 503


@pytest.mark.parametrize("calls,message", [
    ("[{into: a, url: 'http://x/'}, {into: b, url: 'http://x/', after: [c]}]",
     "p.yaml:4:87: stage 1 (gather): calls.after: no call before this one has into: 'c'"),
    ("[{into: a, url: 'http://x/'}, {into: a, url: 'http://y/'}]",
     "p.yaml:4:58: stage 1 (gather): calls.into: 'a' is used by two calls"),
    ("[{url: 'http://x/'}]", "p.yaml:4:22: stage 1 (gather): missing required key 'calls.into'"),
    ("[]", "p.yaml:4:21: stage 1 (gather): calls: must be a list of 1 to 64 calls {into, url, ...}, not a list"),
])
def test_bad_gathers_are_located_lines_and_exit_2(tmp_path, calls, message):
    (tmp_path / "p.yaml").write_text(
        f"source: {{lines: {{paths: [in.jsonl]}}}}\nsink: {{jsonl: {{path: o.jsonl}}}}\nstages:\n  - gather: {{calls: {calls}}}\n")
    res = run_aetl(["validate", "p.yaml"], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines()[0] == message
