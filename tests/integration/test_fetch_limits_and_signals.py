"""afetch at its limits: --max-bytes with -o, a deadline under a rate limit, a second signal while stdout is not read, an output path that cannot be opened, a tiny --max-line."""
import json
import os
import signal
import subprocess
import time

from conftest import AFETCH, run_afetch


def test_a_saved_body_over_max_bytes_fails_and_leaves_no_file(server, write_urls, tmp_path):
    # gzip makes curl hold decoded data while the file writer has paused the transfer
    out = tmp_path / "out"
    urls = write_urls([server.url(f"/gzip?size=3000000&i={i}") for i in range(5)])
    r = run_afetch([urls, "-q", "-o", out, "--max-bytes", "1000000", "--retry", "0"])
    assert r.code == 1
    for rec in r.records:
        assert rec["ok"] is False and rec["path"] is None
        assert rec["error"] == "body larger than --max-bytes (1000000 bytes)"
    files = [f for _, _, fs in os.walk(out) for f in fs]
    assert files == []


def test_a_deadline_ends_a_rate_limited_run_on_time(server, write_urls):
    urls = write_urls([server.url(f"/ok/{i}") for i in range(10)])
    t0 = time.monotonic()
    r = run_afetch([urls, "-q", "--rate", "1/s", "-j", "10", "--deadline", "1s"])
    assert time.monotonic() - t0 < 4
    assert r.code == 1 and 1 <= len(r.records) < 10


def test_a_second_signal_ends_the_run_even_when_stdout_is_not_read(server, write_urls):
    urls = write_urls([server.url(f"/ok?size=2000&i={i}") for i in range(3000)])
    proc = subprocess.Popen([str(AFETCH), "-q", "-j", "8", str(urls)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(1.5)  # the pipe (64 KiB) is full long before this: nobody reads it
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130
    err = proc.stderr.read().decode()
    assert "grace period over" not in err


def test_an_output_path_that_cannot_be_opened_names_the_real_cause():
    r = run_afetch(["--output", "/nonexistent/dir/out.jsonl", "-"], input_bytes=b"")
    assert r.code == 2
    assert r.stderr == "afetch: /nonexistent/dir/out.jsonl: No such file or directory\n"


def test_a_tiny_max_line_does_not_pad_the_reported_line(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes(b"http://a.b/12\n")
    r = run_afetch([path, "-q", "--max-line", "12"])
    rec = r.records[0]
    assert rec["error"] == "line longer than the --max-line limit"
    assert rec["url"] == "http://a.b/12" and "\x00" not in rec["url"]
