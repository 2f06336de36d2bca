"""`aetl queue STREAM`: a Redis stream's state, as text and as JSON, against a
real redis-server started by the test; and a worker's event counters in
--metrics-out (entries read, acked, claimed, dead-lettered)."""
import json
import re

from conftest import run_aetl


def fill(redis):
    """jobs: 5 entries; group g: c1 holds 2 (one delivered twice), c2 holds 1, 2 not delivered."""
    redis.push("jobs", range(5))
    redis.cli("XGROUP", "CREATE", "jobs", "g", "0")
    redis.cli("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "jobs", ">")
    redis.cli("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "jobs", ">")
    first = redis.cli("XRANGE", "jobs", "-", "+", "COUNT", "1").splitlines()[0]
    redis.cli("XCLAIM", "jobs", "g", "c1", "0", first)  # a second delivery
    redis.cli("XADD", "jobs:dead", "*", "data", "{}")
    return first


def test_text_shows_length_groups_pending_lag_and_consumers(redis):
    first = fill(redis)
    r = run_aetl(["queue", "--redis", redis.url, "--dead-letter", "jobs:dead", "jobs"])
    assert r.code == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert re.fullmatch(rf"stream jobs: 5 entries, first {first}, last \d+-\d+", lines[0])
    assert lines[1] == "dead letters: 1 in jobs:dead"
    assert re.fullmatch(r"group g: 3 pending, lag 2, last delivered \d+-\d+, 2 consumers", lines[2])
    assert re.fullmatch(rf"  oldest pending {first}: [\d.]+ m?s old, held by c1 \(idle [\d.]+ m?s\), delivered 2 times",
                        lines[3]), lines[3]
    assert re.fullmatch(r"  consumer c1: 2 pending, idle [\d.]+ m?s", lines[4])
    assert re.fullmatch(r"  consumer c2: 1 pending, idle [\d.]+ m?s", lines[5])
    assert len(lines) == 6


def test_json_is_one_object_for_scripts(redis):
    first = fill(redis)
    r = run_aetl(["queue", "--redis", redis.url, "--json", "--dead-letter", "jobs:dead", "jobs"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stream"] == "jobs" and doc["length"] == 5 and doc["first_id"] == first
    assert doc["dead_letter"] == {"stream": "jobs:dead", "length": 1}
    (g,) = doc["groups"]
    assert (g["name"], g["pending"], g["lag"]) == ("g", 3, 2)
    assert g["oldest_pending"]["id"] == first
    assert g["oldest_pending"]["consumer"] == "c1" and g["oldest_pending"]["deliveries"] == 2
    assert g["oldest_pending"]["age_ms"] >= 0 and g["oldest_pending"]["idle_ms"] >= 0
    assert [(c["name"], c["pending"]) for c in g["consumers"]] == [("c1", 2), ("c2", 1)]


def test_an_empty_stream_with_no_group(redis):
    redis.cli("XADD", "jobs", "*", "data", "{}")
    redis.cli("XTRIM", "jobs", "MAXLEN", "0")
    r = run_aetl(["queue", "--redis", redis.url, "--json", "jobs"])
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout) == {"stream": "jobs", "length": 0, "first_id": None, "last_id": None, "groups": []}
    r = run_aetl(["queue", "--redis", redis.url, "jobs"])
    assert r.stdout.decode() == "stream jobs: 0 entries\nno consumer groups\n"


def test_a_missing_stream_is_exit_1_and_a_wrong_key_exit_2(redis):
    r = run_aetl(["queue", "--redis", redis.url, "nope"])
    assert (r.code, r.stderr) == (1, f"aetl: error: 127.0.0.1:{redis.port}/0: no stream 'nope'\n")
    redis.cli("SET", "k", "v")
    r = run_aetl(["queue", "--redis", redis.url, "k"])
    assert (r.code, r.stderr) == (2, f"aetl: 127.0.0.1:{redis.port}/0: key 'k' holds a string, not a stream\n")
    r = run_aetl(["queue", "--redis", "redis://127.0.0.1:1/0", "jobs"])
    assert r.code == 2 and r.stderr.count("\n") == 1 and "127.0.0.1:1" in r.stderr
    r = run_aetl(["queue", "--redis", "redis://:secret@h:x/0", "jobs"])
    assert r.code == 2 and "secret" not in r.stderr


def test_a_workers_metrics_count_entries_read_acked_and_dead_lettered(tmp_path, redis):
    redis.push("jobs", range(50))
    redis.cli("XADD", "jobs", "*", "data", "not json")
    p = tmp_path / "w.yaml"
    p.write_text(f"""name: worker
source:
  redis: {{url: "{redis.url}", stream: jobs, group: g, block: 100ms, stop_when_idle: 300ms}}
sink:
  jsonl: {{path: {tmp_path}/out.jsonl}}
dead_letter:
  jsonl: {{path: {tmp_path}/dl.jsonl}}
""")
    r = run_aetl(["run", "-q", "--metrics-out", tmp_path / "m.prom", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    text = (tmp_path / "m.prom").read_text()
    events = dict(re.findall(r'aetl_part_events_total\{pipeline="worker",part="redis",event="(\w+)"\} (\d+)', text))
    assert events == {"read": "51", "acked": "51", "dead_lettered": "1"}
