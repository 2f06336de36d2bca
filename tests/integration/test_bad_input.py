"""Malformed input: each bad line is an error record naming file and line, one
line on stderr, exit code 2, and every good line is still fetched."""
import os

from conftest import run_afetch


def test_malformed_lines_become_error_records_and_the_rest_flows(server, write_urls):
    lines = [
        server.url("/ok/a"),
        "not a url",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "127.0.0.1/no-scheme",
        '{"url": 5}',
        '{"url": "http://127.0.0.1/", "bogus": 1}',
        "{broken json",
        '{"method": "GET"}',
        '{"url": "' + server.url("/ok/b") + '", "headers": {"X-A": "1\\r\\nInjected: yes"}}',
        '{"url": "' + server.url("/ok/c") + '", "method": "G E T"}',
        "",
        "   # a comment",
        server.url("/ok/d"),
    ]
    urls = write_urls(lines, name="bad.txt")
    r = run_afetch([urls, "-q"])
    assert r.code == 2
    errors = {int(x["input"].split(":")[-1]): x["error"] for x in r.records if "input" in x}
    assert errors == {
        2: "URL contains a space (encode it as %20)",
        3: "unsupported scheme 'ftp' (only http and https)",
        4: "unsupported scheme 'file' (only http and https)",
        5: "URL has no scheme (expected http:// or https://)",
        6: '"url" must be a string',
        7: "unknown field 'bogus' (expected url, method, headers, body, id; put your own data in \"id\")",
        8: errors[8],
        9: 'missing "url"',
        10: "header contains CR, LF or NUL",
        11: "invalid HTTP method 'G E T'",
    }
    assert errors[8].startswith("invalid JSON")
    for x in r.records:
        if "input" in x:
            assert x["input"].startswith(str(urls) + ":") and x["ok"] is False and x["status"] is None
    ok = sorted(x["url"] for x in r.records if x["ok"])
    assert ok == [server.url("/ok/a"), server.url("/ok/d")]
    # one stderr line per bad input line, naming file and line
    err_lines = r.stderr.splitlines()
    assert len(err_lines) == 10
    assert err_lines[0] == f"afetch: error: {urls}:2: URL contains a space (encode it as %20)"
    assert server.stats()["total"] == 2


def test_binary_garbage_is_escaped_not_dropped(server, tmp_path):
    path = tmp_path / "garbage.bin"
    import random
    garbage = random.Random(1234).randbytes(4096).replace(b"\n", b"\x00")
    # starts with bytes that make it neither a comment, a blank nor a JSON object
    path.write_bytes(b"\xfe\xff" + garbage + b"\n" + server.url("/ok").encode() + b"\n")
    r = run_afetch([path, "-q"])
    assert r.code == 2
    recs = r.records  # every line parses as JSON
    assert len(recs) == 2
    assert sum(1 for x in recs if x["ok"]) == 1


def test_invalid_utf8_in_a_line_is_kept_as_escapes(tmp_path):
    path = tmp_path / "utf8.txt"
    path.write_bytes(b"http://127.0.0.1/caf\xe9 x\n")
    r = run_afetch([path, "-q"])
    assert r.code == 2
    assert b"\\udce9" in r.stdout
    assert r.records[0]["url"] == "http://127.0.0.1/caf\udce9 x"


def test_a_100_mb_line_without_newline_is_an_error_record_in_bounded_memory(server, tmp_path):
    path = tmp_path / "huge-line.txt"
    with open(path, "wb") as f:
        f.write((server.url("/ok/first") + "\n").encode())
        chunk = b"a" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
    r = run_afetch([path, "-q", "--max-line", "1MiB"], timeout=120)
    assert r.code == 2
    recs = r.records
    assert len(recs) == 2
    bad = [x for x in recs if "input" in x][0]
    assert bad["input"] == f"{path}:2" and bad["error"] == "line longer than the --max-line limit"
    assert len(bad["url"]) <= 64
    assert [x["ok"] for x in recs if "input" not in x] == [True]


def test_crlf_line_endings_are_accepted(server, tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes((server.url("/ok/1") + "\r\n" + server.url("/ok/2") + "\r\n").encode())
    r = run_afetch([path, "-q"])
    assert r.code == 0 and len(r.records) == 2


def test_cr_lf_and_nul_inside_urls_are_rejected_with_the_line_number(server, tmp_path):
    path = tmp_path / "inject.txt"
    path.write_bytes(
        server.url("/ok/a\rInjected: 1").encode() + b"\n" +
        server.url("/ok/b\x00c").encode() + b"\n" +
        b'{"url": "' + server.url("/ok/c\\r\\nInjected: 1").encode() + b'"}\n' +
        server.url("/ok/fine").encode() + b"\n")
    r = run_afetch([path, "-q"])
    assert r.code == 2
    errors = {x["input"]: x["error"] for x in r.records if "input" in x}
    assert errors == {f"{path}:1": "URL contains CR, LF or NUL", f"{path}:2": "URL contains CR, LF or NUL",
                      f"{path}:3": "URL contains CR, LF or NUL"}
    assert server.stats()["paths"] == {"/ok/fine": 1}


def test_an_output_that_cannot_be_written_fails_clearly_and_records_nothing(server, write_urls, tmp_path):
    urls = write_urls([server.url(f"/ok/{i}") for i in range(5)])
    state = tmp_path / "state.db"
    r = run_afetch([urls, "-q", "--output", "/dev/full", "--state", state])
    assert r.code == 1
    assert r.stderr == "afetch: error: /dev/full: No space left on device\n"
    again = run_afetch([urls, "-q", "--state", state])  # nothing was recorded as done
    assert again.code == 0 and len(again.records) == 5
