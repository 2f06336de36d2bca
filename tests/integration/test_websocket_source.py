"""The websocket source against tests/support/ws_test_server.py (python3-websockets),
plain and over TLS with a certificate the tests make: message order and receive
times, subscribe and resubscribe messages, reconnects after drops, an oversized
message, a server that never answers the handshake, close codes, and kill -9
rounds into an exactly-once SQLite sink (nothing doubled, the loss bounded as
man/aetl-pipeline.5 says)."""
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time

from conftest import AETL, run_aetl

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def ws_pipeline(tmp_path, url, extra="", sink="jsonl: {path: out.jsonl}", name="p.yaml"):
    """A pipeline reading the feed at `url` (a fresh state store per file name, see run())."""
    p = tmp_path / name
    p.write_text(f"""name: feed
source:
  websocket: {{url: "{url}"{", " + extra if extra else ""}}}
sink:
  {sink}
""")
    return p


def run(tmp_path, p, *args):
    return run_aetl(["run", "-q", "--state", f"{p.stem}.state", *args, p], cwd=tmp_path)


def records(tmp_path, name="out.jsonl"):
    return [json.loads(l) for l in (tmp_path / name).read_text().splitlines()]


def test_messages_come_in_order_each_with_its_receive_time(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/feed?n=500"), "max_messages: 500")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    recs = records(tmp_path)
    assert [x["id"] for x in recs] == list(range(1, 501))
    assert all(TIME.match(x["received_at"]) for x in recs)
    assert [x["received_at"] for x in recs] == sorted(x["received_at"] for x in recs)
    assert list(recs[0]) == ["received_at", "id", "sym", "px"]  # the time first, the message as sent


def test_subscribe_messages_are_sent_after_connecting(tmp_path, ws_server):
    url = ws_server.url("/feed?n=20&wait_subscribe=1")
    p = ws_pipeline(tmp_path, url, """send: ['{"op": "subscribe", "channel": "trades"}', '{"op": "ping"}'], """
                                   "max_messages: 20, time_field: ''")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in records(tmp_path)] == list(range(1, 21))
    assert "received_at" not in records(tmp_path)[0]
    feed = ws_server.stats()["/feed?n=20&wait_subscribe=1"]
    assert feed["received"] == [[1, '{"op": "subscribe", "channel": "trades"}'], [1, '{"op": "ping"}']]


def test_text_array_and_binary_messages_become_records_as_documented(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/t?n=2&format=text"), "max_messages: 2, time_field: ''", name="t.yaml")
    assert run(tmp_path, p).code == 0
    assert records(tmp_path) == [{"message": "message 1"}, {"message": "message 2"}]
    p = ws_pipeline(tmp_path, ws_server.url("/a?n=1&format=array"), "max_messages: 1, time_field: ''", name="a.yaml")
    assert run(tmp_path, p).code == 0
    assert records(tmp_path) == [{"message": "[1]"}]
    p = ws_pipeline(tmp_path, ws_server.url("/b?n=2&format=binary"), "max_messages: 2, time_field: ''", name="b.yaml")
    assert run(tmp_path, p).code == 0
    assert records(tmp_path) == [{"binary": "AQEBAQEBAQE="}, {"binary": "AgICAgICAgI="}]


def test_after_drops_it_connects_again_resubscribes_and_misses_nothing_the_server_sent(tmp_path, ws_server):
    path = "/feed?n=300&drop_after=100&drops=2&wait_subscribe=1&rate=2000"
    p = ws_pipeline(tmp_path, ws_server.url(path), """send: ['{"op": "subscribe"}'], resubscribe: ['{"op": "resume"}'], """
                                                   "max_messages: 300, reconnect: {max: 5, backoff: 10ms..50ms}")
    r = run_aetl(["run", "--state", "s.db", p], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in records(tmp_path)] == list(range(1, 301))
    port = ws_server.port
    warnings = [l for l in r.stderr.splitlines() if "connecting again" in l]
    assert len(warnings) == 2, r.stderr
    assert all(re.fullmatch(rf"aetl: warning: source websocket: ws://127\.0\.0\.1:{port}/feed: the connection was "
                            r"lost: .+; connecting again in \d+ ms \(try 1 of 5\)", w) for w in warnings), warnings
    feed = ws_server.stats()[path]
    assert feed["connections"] == 3
    assert feed["received"] == [[1, '{"op": "subscribe"}'], [2, '{"op": "resume"}'], [3, '{"op": "resume"}']]


def test_an_oversized_message_ends_the_run_after_writing_the_ones_before(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/big?n=10&oversize_at=5&oversize_bytes=5000"), "max_message: 1KiB")
    r = run(tmp_path, p)
    assert r.code == 1
    assert r.stderr == (f"aetl: error: source websocket: ws://127.0.0.1:{ws_server.port}/big: a message longer than "
                        "max_message (1024 bytes); the connection was closed with 1009 (message too big)\n")
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3, 4]


def test_a_server_that_never_answers_the_handshake_fails_the_start_with_exit_2(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/h?hang=1"), "connect_timeout: 500ms")
    r = run(tmp_path, p)
    assert r.code == 2
    assert r.stderr == (f"aetl: source websocket: ws://127.0.0.1:{ws_server.port}/h: no answer to the WebSocket "
                        "handshake within 500ms (connect_timeout)\n")


def test_a_refused_upgrade_and_a_closed_port_fail_the_start_with_exit_2(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/x?status=404"))
    r = run(tmp_path, p)
    assert r.code == 2
    assert r.stderr == (f"aetl: source websocket: ws://127.0.0.1:{ws_server.port}/x: the server answered the "
                        "WebSocket handshake with HTTP 404 Not Found\n")
    ws_server.stop()
    r = run(tmp_path, p)
    assert r.code == 2
    assert r.stderr == f"aetl: source websocket: ws://127.0.0.1:{ws_server.port}/x: Connection refused\n"


def test_a_policy_close_fails_the_run_after_writing_what_came(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/c?n=3&close=1008&reason=go+away"))
    r = run(tmp_path, p)
    assert r.code == 1
    assert r.stderr == (f"aetl: error: source websocket: ws://127.0.0.1:{ws_server.port}/c: the server closed the "
                        "connection with 1008 (policy violation): \"go away\"\n")
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3]


def test_a_normal_close_ends_the_run_with_on_close_end(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/c?n=3&close=1000"), "on_close: end")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    assert r.stderr == (f"aetl: source websocket: ws://127.0.0.1:{ws_server.port}/c: the server closed the "
                        "connection with 1000 (normal) (on_close: end)\n")
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3]


def test_going_away_reconnects_until_reconnect_max_connections_bring_nothing(tmp_path, ws_server):
    # the feed is over: each new connection is closed with 1001 at once
    p = ws_pipeline(tmp_path, ws_server.url("/c?n=3&close=1001"), "reconnect: {max: 2, backoff: 10ms..20ms}")
    r = run(tmp_path, p)
    assert r.code == 1
    port = ws_server.port
    closed = f"source websocket: ws://127.0.0.1:{port}/c: the server closed the connection with 1001 (going away)"
    again = f"aetl: source websocket: ws://127.0.0.1:{port}/c: connected again"
    assert r.stderr.splitlines() == [
        line for d, t in delays(r.stderr)
        for line in (f"aetl: warning: {closed}; connecting again in {d} ms (try {t} of 2)", again)] + [
        f"aetl: error: source websocket: ws://127.0.0.1:{port}/c: the server closed the connection with 1001 "
        "(going away) (gave up after 3 tries to connect again)"]
    assert [t for _, t in delays(r.stderr)] == ["1", "2"]
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3]
    assert ws_server.stats()["/c?n=3&close=1001"]["connections"] == 3


def test_a_server_that_stops_answering_pings_is_given_up_and_connected_again(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/quiet?n=3&silent=1"),
                    "ping_interval: 300ms, reconnect: {max: 1, backoff: 10ms..20ms}")
    r = run(tmp_path, p)
    assert r.code == 1
    port = ws_server.port
    lost = (f"source websocket: ws://127.0.0.1:{port}/quiet: no frame from the server for 600ms, a ping unanswered "
            "(ping_interval 300ms)")
    (d, _), = delays(r.stderr)
    assert r.stderr.splitlines() == [
        f"aetl: warning: {lost}; connecting again in {d} ms (try 1 of 1)",
        f"aetl: source websocket: ws://127.0.0.1:{port}/quiet: connected again",
        f"aetl: error: {lost} (gave up after 2 tries to connect again)"]
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3]
    assert ws_server.stats()["/quiet?n=3&silent=1"]["connections"] == 2


def delays(stderr):
    return re.findall(r"connecting again in (\d+) ms \(try (\d+) of", stderr)


def test_wss_with_the_private_ca_as_cacert(tmp_path, wss_server):
    p = ws_pipeline(tmp_path, wss_server.url("/s?n=50"), f"cacert: {wss_server.cert}, max_messages: 50")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in records(tmp_path)] == list(range(1, 51))


def test_wss_without_the_ca_is_refused_with_the_reason(tmp_path, wss_server):
    p = ws_pipeline(tmp_path, wss_server.url("/s?n=5"))
    r = run(tmp_path, p)
    assert r.code == 2
    assert r.stderr == (f"aetl: source websocket: wss://127.0.0.1:{wss_server.port}/s: SSL certificate problem: "
                        "self-signed certificate\n")
    p = ws_pipeline(tmp_path, wss_server.url("/s?n=5"), "insecure: true, max_messages: 5", name="i.yaml")
    r = run(tmp_path, p)
    assert r.code == 0
    assert r.stderr == "aetl: warning: source websocket: insecure: TLS certificates are not verified\n"


def test_bad_fields_are_reported_with_their_place(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text('name: feed\nsource:\n  websocket: {url: "http://x/feed", on_close: never, cacert: /nonexistent.pem}\n'
                 "sink:\n  jsonl: {path: out.jsonl}\n")
    r = run_aetl(["validate", p], cwd=tmp_path)
    assert r.code == 2
    assert f"{p}:3:20: source websocket: url: not a ws:// or wss:// URL" in r.stderr
    assert f"{p}:3:47: source websocket: on_close: must be one of reconnect, end, not 'never'" in r.stderr
    assert f"{p}:3:62: source websocket: cacert: /nonexistent.pem: cannot read" in r.stderr


def test_headers_are_sent_and_never_printed(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/x?status=403&token=s3cr3t"), 'headers: {Authorization: "Bearer ${TOKEN}"}')
    r = run_aetl(["run", "--state", "s.db", p], cwd=tmp_path, env={"TOKEN": "t0psecret"})
    assert r.code == 2
    assert "t0psecret" not in r.stderr and "s3cr3t" not in r.stderr
    assert f"ws://127.0.0.1:{ws_server.port}/x: the server answered" in r.stderr


def test_sigint_writes_everything_received_and_exits_130(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/live?n=100000&rate=500"))
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(p)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while (not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").stat().st_size == 0) \
            and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    ids = [x["id"] for x in records(tmp_path)]
    sent = ws_server.stats()["/live?n=100000&rate=500"]["next_id"] - 1
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 1
    assert sent - len(ids) <= 2, (sent, len(ids))  # at most what was still on the wire when it closed


def test_kill_9_rounds_into_an_exactly_once_sink_double_nothing_and_lose_at_most_the_window(tmp_path, ws_server):
    """The feed is live: what the server sent to a killed run is gone. The
    man page bounds what a kill loses: 5 x batch + 2 x the sink's batch.size
    (here 5 x 50 + 2 x 100), and the exactly-once sink never holds an id twice."""
    n = 15000
    path = f"/kill?n={n}&rate=3000&close=1000"
    db = tmp_path / "out.db"
    p = ws_pipeline(tmp_path, ws_server.url(path), "batch: 50, linger: 20ms, on_close: end",
                    sink=f"sqlite: {{path: {db}, table: t, exactly_once: true, batch: {{size: 100, linger: 20ms}}}}")
    rng = random.Random(14)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    killed = 0
    for _ in range(12):
        proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(p)], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    final = run(tmp_path, p)
    assert final.code == 0, final.stderr
    con = sqlite3.connect(db)
    ids = [json.loads(r[0])["id"] if isinstance(r[0], str) else r[0] for r in con.execute("SELECT id FROM t")]
    con.close()
    assert killed >= 8
    assert len(ids) == len(set(ids)), "an id was written twice"
    assert set(ids) <= set(range(1, n + 1))
    lost = n - len(ids)
    print(f"kill -9 rounds: {killed} killed, {lost} of {n} messages lost")
    assert lost <= killed * (5 * 50 + 2 * 100), (lost, killed)
    assert ws_server.stats()[path]["next_id"] == n + 1  # the whole feed was sent


def test_duration_ends_the_run_with_everything_received_written(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, ws_server.url("/d?n=100000&rate=200"), "duration: 700ms")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    assert r.stderr == ""
    ids = [x["id"] for x in records(tmp_path)]
    assert len(ids) >= 1 and ids == list(range(1, len(ids) + 1))


def test_a_rerun_numbers_on_and_appends_to_what_the_last_run_wrote(tmp_path, ws_server):
    # the feed goes on between the runs; what it sent to the first run after its
    # fifth message (before it saw the close) is gone
    p = ws_pipeline(tmp_path, ws_server.url("/r?n=1000&rate=200"), "max_messages: 5",
                    sink="jsonl: {path: out.jsonl}\ndead_letter:\n  jsonl: {path: dl.jsonl}")
    assert run(tmp_path, p).code == 0
    r = run(tmp_path, p)  # the same state store: resumed
    assert r.code == 0, r.stderr
    ids = [x["id"] for x in records(tmp_path)]
    assert ids[:5] == [1, 2, 3, 4, 5] and len(ids) == 10
    assert ids[5:] == list(range(ids[5], ids[5] + 5)) and ids[5] > 5
    con = sqlite3.connect(tmp_path / "p.state")
    marks = [json.loads(row[0]) for row in con.execute("SELECT checkpoint FROM aetl_checkpoints")]
    con.close()
    assert [m["name"] for m in marks[0]["inputs"]] == [f"websocket ws://127.0.0.1:{ws_server.port}/r"]
    assert marks[0]["inputs"][0]["line"] == 10  # numbered on: 6..10 in the second run


INTERRUPTED = "aetl: warning: interrupted: stopping; finishing work in flight (up to 5000 ms; again to abort)\n"


def sigint_when(proc, ready, what):
    """Sends SIGINT once ready() holds; returns (stderr, seconds from the signal to the exit)."""
    deadline = time.monotonic() + 20
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)
    time.sleep(0.2)  # well into the wait
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    return err.decode(), time.monotonic() - t0


def start(tmp_path, p, env=None):
    return subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(p)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"), **(env or {})))


def test_sigint_while_the_handshake_goes_unanswered_ends_the_run_at_once_with_exit_130(tmp_path, ws_server):
    # before, the connect ran on to connect_timeout: the grace period ran out,
    # then the hard stop ended the process ("did not stop in time")
    path = "/h?hang=1"
    p = ws_pipeline(tmp_path, ws_server.url(path), "connect_timeout: 30s")
    proc = start(tmp_path, p)
    err, took = sigint_when(proc, lambda: ws_server.stats().get(path, {}).get("connections") == 1, "connected")
    assert proc.returncode == 130, err
    assert err == INTERRUPTED
    assert took < 3, took


def test_sigint_while_connecting_again_to_a_server_gone_quiet_ends_the_run_with_everything_written(tmp_path, ws_server):
    path = "/q?n=5&close=1001&hang_after=1"
    p = ws_pipeline(tmp_path, ws_server.url(path), "connect_timeout: 30s, reconnect: {max: 3, backoff: 10ms..20ms}")
    proc = start(tmp_path, p)
    err, took = sigint_when(proc, lambda: ws_server.stats().get(path, {}).get("connections") == 2, "connected again")
    assert proc.returncode == 130, err
    (d, _), = delays(err)
    assert err == (f"aetl: warning: source websocket: ws://127.0.0.1:{ws_server.port}/q: the server closed the "
                   f"connection with 1001 (going away); connecting again in {d} ms (try 1 of 3)\n" + INTERRUPTED)
    assert took < 3, took
    assert [x["id"] for x in records(tmp_path)] == [1, 2, 3, 4, 5]


SLOW_LOOKUP = r'''
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* "slow-feed" takes 3 s to look up (after creating $SLOW_LOOKUP_MARK), then is 127.0.0.1. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
  int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) = dlsym(RTLD_NEXT, "getaddrinfo");
  if (node && strcmp(node, "slow-feed") == 0) {
    const char *mark = getenv("SLOW_LOOKUP_MARK");
    if (mark) fclose(fopen(mark, "w"));
    sleep(3);
    node = "127.0.0.1";
  }
  return real(node, service, hints, res);
}
'''


def slow_lookup_env(tmp_path):
    shim = tmp_path / "slow_lookup.so"
    (tmp_path / "slow_lookup.c").write_text(SLOW_LOOKUP)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(tmp_path / "slow_lookup.c"), "-ldl"], check=True)
    return {"LD_PRELOAD": str(shim), "SLOW_LOOKUP_MARK": str(tmp_path / "looking-up")}


def test_a_name_lookup_past_connect_timeout_fails_the_start_with_exit_2(tmp_path, ws_server):
    # before, the lookup was not timed: the run waited the 3 s, then connected
    p = ws_pipeline(tmp_path, f"ws://slow-feed:{ws_server.port}/f?n=3", "connect_timeout: 500ms, max_messages: 3")
    r = run_aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, env=slow_lookup_env(tmp_path))
    assert r.code == 2, r.stderr
    assert r.stderr == (f"aetl: source websocket: ws://slow-feed:{ws_server.port}/f: cannot resolve slow-feed: "
                        "no answer within 500ms (connect_timeout)\n")
    assert "/f?n=3" not in ws_server.stats()


def test_sigint_during_a_slow_name_lookup_ends_the_run_with_exit_130(tmp_path, ws_server):
    # the lookup itself cannot be stopped: the process ends when it returns (3 s), in time
    p = ws_pipeline(tmp_path, f"ws://slow-feed:{ws_server.port}/f?n=3", "connect_timeout: 30s")
    proc = start(tmp_path, p, env=slow_lookup_env(tmp_path))
    err, took = sigint_when(proc, (tmp_path / "looking-up").exists, "looked up")
    assert proc.returncode == 130, err
    assert err == INTERRUPTED
    assert took < 4, took
    assert "/f?n=3" not in ws_server.stats()


def test_a_user_and_password_in_the_url_go_as_basic_auth_and_are_never_printed(tmp_path, ws_server):
    p = ws_pipeline(tmp_path, f"ws://me:p%40ss@127.0.0.1:{ws_server.port}/a?n=2", "max_messages: 2")
    r = run(tmp_path, p)
    assert r.code == 0, r.stderr
    assert ws_server.stats()["/a?n=2"]["authorization"] == "Basic bWU6cEBzcw=="  # me:p@ss
    p = ws_pipeline(tmp_path, f"ws://me:p%40ss@127.0.0.1:{ws_server.port}/x?status=401", name="x.yaml")
    r = run(tmp_path, p)
    assert r.code == 2
    assert r.stderr == (f"aetl: source websocket: ws://me:***@127.0.0.1:{ws_server.port}/x: the server answered the "
                        "WebSocket handshake with HTTP 401 Unauthorized\n")
    # a header of its own wins
    p = ws_pipeline(tmp_path, f"ws://me:pw@127.0.0.1:{ws_server.port}/b?n=1",
                    'max_messages: 1, headers: {Authorization: "Bearer t"}', name="b.yaml")
    assert run(tmp_path, p).code == 0
    assert ws_server.stats()["/b?n=1"]["authorization"] == "Bearer t"


def test_a_sink_stalled_far_past_the_ping_interval_costs_the_connection_nothing(tmp_path, ws_server):
    # stdout is not read for 2 s: the sink blocks, the source stops reading
    # (backpressure). Before, Beast's idle timer ran on meanwhile: the source
    # gave the connection up as silent, connected again, and lost messages.
    n = 20000
    path = f"/stall?n={n}&pad=1000"
    p = ws_pipeline(tmp_path, ws_server.url(path), f"ping_interval: 200ms, batch: 10, max_messages: {n}",
                    sink="jsonl: {path: '-'}")
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(p)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state")))
    time.sleep(2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert err.decode() == ""
    assert [json.loads(l)["id"] for l in out.splitlines()] == list(range(1, n + 1))
    assert ws_server.stats()[path]["connections"] == 1
