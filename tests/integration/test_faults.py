"""Each fault mode of the test server gives the documented record and exit code;
retries are counted by the server."""
from conftest import run_afetch

FAST = ["-q", "--retry-backoff", "10ms..200ms"]


def fetch_one(server, write_urls, path, *args):
    urls = write_urls([server.url(path)])
    r = run_afetch([urls, *FAST, *args])
    assert len(r.records) == 1, r.stderr
    return r, r.records[0]


def test_a_200_record_has_every_documented_field(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/ok?size=1024")
    assert r.code == 0
    assert list(rec) == ["url", "status", "ok", "final_url", "http_version", "content_type", "bytes",
                         "attempts", "time_ms", "path", "error"]
    for key in ["url", "status", "ok", "final_url", "http_version", "content_type", "bytes", "attempts",
                "time_ms", "path", "error"]:
        assert key in rec
    assert rec["status"] == 200 and rec["ok"] is True and rec["bytes"] == 1024 and rec["attempts"] == 1
    assert rec["http_version"] == "1.1" and rec["error"] is None and rec["path"] is None
    assert set(rec["time_ms"]) == {"total", "connect", "ttfb"}


def test_4xx_is_a_failure_without_retries(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/status/404", "--retry", "3")
    assert r.code == 1
    assert (rec["status"], rec["ok"], rec["attempts"], rec["error"]) == (404, False, 1, "HTTP 404")
    assert server.stats()["paths"]["/status/404"] == 1


def test_5xx_is_retried_and_the_server_counts_every_attempt(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/retry/a?fails=2&status=503", "--retry", "3")
    assert r.code == 0
    assert (rec["status"], rec["ok"], rec["attempts"]) == (200, True, 3)
    assert server.stats()["paths"]["/retry/a?fails=2&status=503"] == 3


def test_retries_run_out(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/status/500", "--retry", "2")
    assert r.code == 1
    assert (rec["status"], rec["attempts"], rec["error"]) == (500, 3, "HTTP 500")
    assert server.stats()["paths"]["/status/500"] == 3


def test_429_with_retry_after_seconds_is_honoured(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/retry/b?fails=1&status=429&retry_after=1", "--retry", "2",
                       "--retry-backoff", "10ms..5s")
    assert r.code == 0 and rec["attempts"] == 2
    assert server.stats()["paths"]["/retry/b?fails=1&status=429&retry_after=1"] == 2


def test_retry_after_as_http_date_is_honoured(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/retry/c?fails=1&status=503&retry_after=date:1", "--retry", "2",
                       "--retry-backoff", "10ms..5s")
    assert r.code == 0 and rec["attempts"] == 2


def test_retry_after_longer_than_the_backoff_maximum_gives_up_with_a_reason(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/retry/d?fails=5&status=429&retry_after=3600", "--retry", "3")
    assert r.code == 1 and rec["attempts"] == 1
    assert rec["error"] == ("HTTP 429; server asked to retry after 3600 s, longer than the backoff "
                            "maximum (200 ms)")


def test_connection_reset_mid_body_is_an_error_and_is_retried(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/reset?after=1000", "--retry", "1")
    assert r.code == 1
    assert rec["ok"] is False and rec["attempts"] == 2 and rec["error"]
    assert server.stats()["paths"]["/reset?after=1000"] == 2


def test_a_slow_drip_is_cut_off_by_the_low_speed_limit(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/drip?bytes=100&interval_ms=1500", "--retry", "0",
                       "--low-speed-time", "1s")
    assert r.code == 1
    assert rec["ok"] is False and "Operation too slow" in rec["error"]


def test_a_total_timeout_is_an_error_record(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/delay/3000", "--retry", "0", "--timeout", "300ms")
    assert r.code == 1 and rec["status"] is None and "timed out" in rec["error"]


def test_redirect_chain_is_followed_and_final_url_reported(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/redirect/3")
    assert r.code == 0
    assert rec["status"] == 200 and rec["final_url"] == server.url("/redirect/0")


def test_a_redirect_loop_stops_after_the_limit(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/redirect-loop", "--retry", "0")
    assert r.code == 1
    assert rec["ok"] is False and "Maximum (10) redirects followed" in rec["error"]
    assert server.stats()["paths"]["/redirect-loop"] == 11


def test_a_redirect_to_file_is_refused(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/redirect-to?url=file:///etc/passwd", "--retry", "0", "--body", "text")
    assert r.code == 1
    assert rec["ok"] is False and "body" not in rec
    assert "root:" not in str(rec)


def test_gzip_bodies_are_decoded(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/gzip?size=10000", "--body", "text")
    assert r.code == 0
    assert rec["bytes"] == 10000 and rec["body"].startswith("hello gzip\n")


def test_a_body_over_max_bytes_is_aborted(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/huge?mb=50", "--max-bytes", "1MiB", "--retry", "0")
    assert r.code == 1
    assert rec["ok"] is False and rec["error"] == "body larger than --max-bytes (1048576 bytes)"


def test_huge_bodies_stream_through(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/huge?mb=200")
    assert r.code == 0 and rec["bytes"] == 200 * 1048576


def test_connection_refused_is_retried_then_reported(write_urls):
    urls = write_urls(["http://127.0.0.1:9/"])
    r = run_afetch([urls, *FAST, "--retry", "2"])
    rec = r.records[0]
    assert r.code == 1 and rec["status"] is None and rec["attempts"] == 3
    assert "Failed to connect" in rec["error"] or "Couldn't connect" in rec["error"]


def test_body_json_embeds_a_parsed_object_and_reports_invalid_json(server, write_urls):
    urls = write_urls([server.url("/json"), server.url("/badjson")])
    r = run_afetch([urls, "-q", "--body", "json", "--ordered"])
    good, bad = r.records
    assert good["body"] == {"hello": "world", "n": [1, 2, 3]} and good["ok"] is True
    assert bad["ok"] is False and bad["body"] is None and bad["error"].startswith("body is not valid JSON")
    assert r.code == 1


def test_json_request_objects_set_method_headers_and_body(server, write_urls):
    import json
    urls = write_urls([
        json.dumps({"url": server.url("/headers"), "method": "PUT", "headers": {"X-Token": "t1"},
                    "body": "raw text", "id": {"row": 7}}),
        json.dumps({"url": server.url("/headers"), "body": {"a": 1}}),
    ])
    r = run_afetch([urls, "-q", "--body", "json", "--ordered", "-H", "X-Global: g"])
    first, second = r.records
    assert first["id"] == {"row": 7}
    assert first["body"]["method"] == "PUT" and first["body"]["body"] == "raw text"
    assert first["body"]["headers"]["x-token"] == "t1" and first["body"]["headers"]["x-global"] == "g"
    assert second["body"]["method"] == "POST" and json.loads(second["body"]["body"]) == {"a": 1}
    assert second["body"]["headers"]["content-type"] == "application/json"


def test_user_agent_and_accept_encoding_are_sent(server, write_urls):
    r, rec = fetch_one(server, write_urls, "/headers", "--body", "json")
    headers = rec["body"]["headers"]
    assert headers["user-agent"] == "afetch/0.1.0"
    assert "gzip" in headers["accept-encoding"]
