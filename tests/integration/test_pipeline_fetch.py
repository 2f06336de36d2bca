"""The fetch stage against the real test HTTP server: templates, retries, dead letters, concurrency."""
import json

from test_pipeline_run import read_jsonl, write_jsonl


def fetch_pipeline(pipeline, server, fetch_yaml, extra="dead_letter: {jsonl: {path: dl.jsonl}}\n"):
    return pipeline(f"""name: f
source: {{lines: {{paths: [in.jsonl]}}}}
stages:
  - fetch:
{fetch_yaml}
sink: {{jsonl: {{path: out.jsonl}}}}
{extra}""".replace("BASE", server.base))


def test_url_template_headers_body_and_into(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "q": "a b/é"}, {"id": 2, "q": "x&y=z"}])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/headers?q={q}&n={id + 1}'
      method: POST
      headers: {X-Id: 'id-{id}'}
      body: '{{"id": {id}}}'
      into: echo
      ordered: true""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [1, 2]
    echo = out[0]["echo"]
    assert echo["status"] == 200 and echo["ok"] is True and echo["error"] is None and echo["attempts"] == 1
    assert echo["body"]["method"] == "POST"
    assert echo["body"]["path"] == "/headers?q=a%20b%2F%C3%A9&n=2"
    assert echo["body"]["body"] == '{"id": 1}'
    assert echo["body"]["headers"]["x-id"] == "id-1" or echo["body"]["headers"].get("X-Id") == "id-1"
    assert out[1]["echo"]["body"]["path"] == "/headers?q=x%26y%3Dz&n=3"


def test_retries_then_success_and_failures_to_the_dead_letter(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"k": "a", "code": 200}, {"k": "b", "code": 404}, {"k": "c", "code": 503}])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/retry/{k}?fails=1&status={if(code == 200, 503, code)}'
      retry: {max: 2, backoff: 10ms..50ms}""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert {r["k"] for r in out} == {"a", "c"}  # c: 503 once, then 200
    a = next(r for r in out if r["k"] == "a")
    assert a["response"]["attempts"] == 2 and a["response"]["body"] == "ok"
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert len(dl) == 1 and dl[0]["record"]["k"] == "b" and dl[0]["error"] == "HTTP 404" and dl[0]["attempts"] == 1
    paths = server.stats()["paths"]
    assert sum(n for path, n in paths.items() if path.startswith("/retry/b")) == 1  # 404 is not retried


def test_keep_failures_and_connection_errors(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"p": "status/500"}, {"p": "json"}])  # '/' in a value is encoded
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/{if(p == "json", "json", "status")}/{if(p == "json", "", 500)}'
      retry: 0
      keep_failures: true
      ordered: true""", extra="")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert out[0]["response"]["ok"] is False and out[0]["response"]["error"] == "HTTP 500"
    assert out[1]["response"]["status"] == 404  # /json/ is not a route: kept as a failure
    write_jsonl(tmp_path / "in.jsonl", [{"p": 1}])
    p = pipeline("""name: g
source: {lines: {paths: [in.jsonl]}}
stages: [{fetch: {url: 'http://127.0.0.1:9/x', retry: 0}}]
sink: {jsonl: {path: out2.jsonl}}
""")
    res = aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 1 and "fetch#1" in res.stderr


def test_concurrency_many_records(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"i": i} for i in range(300)])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/delay/20/{i}'
      concurrency: 50""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, timeout=60)
    assert res.code == 0, res.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert sorted(r["i"] for r in out) == list(range(300))
    assert server.stats()["total"] >= 300


def test_deadline_aborts_slow_fetches_and_a_rerun_does_them(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"i": i} for i in range(6)])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/delay/{if(i < 3, 10, 3000)}/{i}'
      concurrency: 6""")
    import time
    started = time.monotonic()
    res = aetl(["run", "-q", "--state", "s.db", "--deadline", "1s", p], cwd=tmp_path, timeout=30)
    assert res.code == 1
    assert time.monotonic() - started < 2.5
    first = {r["i"] for r in read_jsonl(tmp_path / "out.jsonl")}
    assert first == {0, 1, 2}
    p2 = fetch_pipeline(pipeline, server, """\
      url: 'BASE/delay/10/{i}'
      concurrency: 6""")
    res = aetl(["run", "-q", "--state", "s.db", p2], cwd=tmp_path, timeout=30)
    assert res.code == 0, res.stderr
    assert sorted(r["i"] for r in read_jsonl(tmp_path / "out.jsonl")) == list(range(6))


def test_ledger_fetches_each_request_once_and_transient_failures_again(aetl, afetch, pipeline, tmp_path, server,
                                                                        write_urls):
    write_jsonl(tmp_path / "in.jsonl", [{"r": "ok", "a": "a"}, {"r": "ok", "a": "b"}, {"r": "status", "a": 404},
                                        {"r": "status", "a": 503}])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/{r}/{a}?ledger=1'
      retry: 0
      keep_failures: true
      ledger: ledger.db""", extra="")
    first = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert first.code == 0, first.stderr
    assert sorted(r["response"]["status"] for r in read_jsonl(tmp_path / "out.jsonl")) == [200, 200, 404, 503]
    # From the start again: only the request that failed on something transient goes out.
    second = aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
    assert second.code == 0, second.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["a"], r["response"]["status"]) for r in out] == [(503, 503)]
    paths = server.stats()["paths"]
    assert {k: v for k, v in paths.items() if k.endswith("?ledger=1")} == {
        "/ok/a?ledger=1": 1, "/ok/b?ledger=1": 1, "/status/404?ledger=1": 1, "/status/503?ledger=1": 2}
    # The same file format as afetch --state: afetch skips what the pipeline fetched.
    urls = write_urls([server.url("/ok/a?ledger=1"), server.url("/ok/c?ledger=1")])
    res = afetch(["-q", "--state", str(tmp_path / "ledger.db"), str(urls)])
    assert res.code == 0, res.stderr
    assert [r["url"] for r in res.records] == [server.url("/ok/c?ledger=1")]
    assert server.stats()["paths"]["/ok/a?ledger=1"] == 1


def test_ledger_records_a_dead_lettered_failure_once_it_is_written(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"r": "ok", "a": "d"}, {"r": "status", "a": 410}, {"r": "status", "a": 500}])
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/{r}/{a}?dl=1'
      retry: 0
      ledger: ledger.db""")
    first = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert first.code == 0, first.stderr
    assert len(read_jsonl(tmp_path / "dl.jsonl")) == 2
    res = aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == []
    assert [r["record"]["a"] for r in read_jsonl(tmp_path / "dl.jsonl")] == [500]
    paths = server.stats()["paths"]
    assert (paths["/ok/d?dl=1"], paths["/status/410?dl=1"], paths["/status/500?dl=1"]) == (1, 1, 2)


def test_ledger_that_is_not_a_database_is_a_setup_error(aetl, pipeline, tmp_path, server):
    write_jsonl(tmp_path / "in.jsonl", [{"r": "ok", "a": "e"}])
    (tmp_path / "ledger.db").write_text("not a database, just text that is long enough to be looked at" * 20)
    p = fetch_pipeline(pipeline, server, """\
      url: 'BASE/{r}/{a}'
      ledger: ledger.db""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == "aetl: fetch#1: ledger: ledger.db: file is not a database\n"


def test_a_stage_after_fetch_passes_results_on_while_the_input_pauses(pipeline, tmp_path, server):
    """A regression: `select` after `fetch` (a stage on the pool behind another
    stage) held what it finished until the next batch came, so with a queue or a
    pipe that pauses the results waited for the end of the input."""
    import select as select_module
    import subprocess
    from conftest import AETL
    p = pipeline("""name: paused
source: {lines: {paths: ["-"]}}
stages:
  - fetch: {url: '{url}', into: http}
  - select: {url: url, status: http.status}
sink:
  jsonl: {path: "-", batch: {linger: 10ms}}
""")
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", str(tmp_path / "s.db"), str(p)], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write((json.dumps({"url": server.url("/ok/1")}) + "\n").encode())
        proc.stdin.flush()
        ready, _, _ = select_module.select([proc.stdout], [], [], 20)  # the input stays open meanwhile
        assert ready, "no result while the input was still open"
        assert json.loads(proc.stdout.readline()) == {"url": server.url("/ok/1"), "status": 200}
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()
