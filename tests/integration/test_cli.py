"""The command line: names, help, version, usage errors, exit codes, Unix manners."""
import re
import subprocess

from conftest import AETL, AFETCH, run_afetch


def test_afetch_is_the_same_binary_as_aetl_fetch(server, write_urls):
    urls = write_urls([server.url("/ok")])
    a = run_afetch([urls, "-q"])
    b = run_afetch(["fetch", urls, "-q"], program=AETL)
    assert a.code == b.code == 0
    assert [r["status"] for r in a.records] == [r["status"] for r in b.records] == [200]
    assert AFETCH.is_symlink()


def test_help_and_version_go_to_stdout_and_exit_0():
    for prog, args, words in [(AFETCH, ["--help"], [b"--concurrency", b"--state", b"--wait"]),
                              (AETL, ["--help"], [b"fetch", b"run", b"validate"]),
                              (AETL, ["fetch", "--help"], [b"--concurrency", b"--state", b"--wait"])]:
        r = run_afetch(args, program=prog)
        assert r.code == 0
        assert r.stderr == ""
        for word in words:
            assert word in r.stdout, (args, word)
    v = run_afetch(["--version"])
    assert v.code == 0 and v.stdout.strip() == b"0.1.0"


def test_unknown_flag_is_a_usage_error_on_one_line():
    r = run_afetch(["--no-such-flag"])
    assert r.code == 2
    assert r.stdout == b""
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("afetch: ") and "--no-such-flag" in r.stderr


def test_aetl_without_subcommand_is_a_usage_error():
    r = run_afetch([], program=AETL)
    assert r.code == 2


def test_missing_input_file_fails_before_fetching_anything(server, write_urls):
    urls = write_urls([server.url("/ok")])
    r = run_afetch([urls, "/nonexistent/urls.txt"])
    assert r.code == 2
    assert r.stderr == "afetch: /nonexistent/urls.txt: No such file or directory\n"
    assert r.stdout == b""
    assert server.stats()["total"] == 0


def test_bad_flag_values_are_usage_errors():
    cases = [
        (["--rate", "fast"], "afetch: --rate: invalid rate 'fast' (examples: 50/s, 600/m)\n"),
        (["--retry-backoff", "5s..1s"], "afetch: --retry-backoff: expected MIN..MAX such as 250ms..30s, got '5s..1s'\n"),
        (["--body", "xml"], "afetch: --body: expected none, text or json, got 'xml'\n"),
        (["--timeout", "soon"], "afetch: --timeout: invalid duration 'soon' (examples: 250ms, 10s, 2m)\n"),
        (["-H", "Bad Header"], "afetch: --header 'Bad Header': header must look like 'Name: value'\n"),
        (["-j", "0"], "afetch: --concurrency must be at least 1\n"),
        (["--append"], "afetch: --append needs --output FILE\n"),
        (["--log-level", "loud"], "afetch: --log-level: unknown level 'loud' (expected trace, debug, info, warn, error or off)\n"),
    ]
    for args, message in cases:
        r = run_afetch(args, input_bytes=b"")
        assert (r.code, r.stderr) == (2, message), args


def test_empty_input_writes_nothing_and_succeeds():
    r = run_afetch(["-q", "-"], input_bytes=b"")
    assert r.code == 0 and r.stdout == b""


def test_stdin_is_read_with_dash_and_by_default(server):
    data = (server.url("/ok/1") + "\n" + server.url("/ok/2")).encode()  # no final newline
    for args in (["-q", "-"], ["-q"]):
        r = run_afetch(args, input_bytes=data)
        assert r.code == 0
        assert sorted(x["url"] for x in r.records) == [server.url("/ok/1"), server.url("/ok/2")]


def test_output_file_and_append(server, write_urls, tmp_path):
    urls = write_urls([server.url("/ok")])
    out = tmp_path / "results.jsonl"
    assert run_afetch([urls, "-q", "--output", out]).code == 0
    assert run_afetch([urls, "-q", "--output", out, "--append"]).code == 0
    assert len(out.read_text().splitlines()) == 2
    assert run_afetch([urls, "-q", "--output", out]).code == 0
    assert len(out.read_text().splitlines()) == 1


def test_closed_pipe_ends_the_run_quietly(server, write_urls):
    urls = write_urls([server.url(f"/delay/20/{i}") for i in range(300)])
    p = subprocess.run(f"'{AFETCH}' -j 4 '{urls}' | head -1", shell=True, capture_output=True, timeout=60)
    assert p.returncode == 0
    assert len(p.stdout.splitlines()) == 1
    assert p.stderr == b""
    assert server.stats()["total"] < 300  # it stopped early


def test_summary_goes_to_stderr_and_quiet_silences_it(server, write_urls):
    urls = write_urls([server.url("/ok"), server.url("/status/404")])
    r = run_afetch([urls])
    assert r.code == 1
    assert "2 fetched" in r.stderr and "1 ok, 1 failed" in r.stderr and "4xx 1" in r.stderr
    assert "latency ms: p50" in r.stderr
    q = run_afetch([urls, "-q"])
    assert q.stderr == "" and q.code == 1


def test_json_log_format_escapes_messages(write_urls):
    urls = write_urls(['http://bad host/"x"'])
    r = run_afetch([urls, "-q", "--log-format", "json"])
    import json
    entry = json.loads(r.stderr.splitlines()[0])
    assert entry["level"] == "error" and entry["program"] == "afetch"
    assert entry["msg"].endswith(":1: URL contains a space (encode it as %20)")


def test_the_man_page_documents_every_flag():
    import re
    from conftest import ROOT
    help_text = run_afetch(["--help"]).stdout.decode()
    flags = set(re.findall(r"(--[a-z][a-z-]+)", help_text))
    man = (ROOT / "man" / "afetch.1").read_text().replace("\\-", "-")
    missing = sorted(f for f in flags if f not in man)
    assert missing == []
    assert len(flags) > 25


def test_a_directory_or_stdin_twice_is_a_usage_error(tmp_path):
    r = run_afetch([tmp_path])
    assert (r.code, r.stderr) == (2, f"afetch: {tmp_path}: is a directory\n")
    r = run_afetch(["-", "-"], input_bytes=b"")
    assert (r.code, r.stderr) == (2, "afetch: -: standard input named more than once\n")


def run_on_a_terminal(args, cwd=None, stdin=b""):
    """Runs a command with stderr on a pseudo-terminal (progress is drawn there);
    returns (exit code, what the terminal showed)."""
    import os
    import pty
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=terminal, cwd=cwd,
                            env={**os.environ, "XDG_STATE_HOME": str(cwd or ".")})
    os.close(terminal)
    proc.stdin.write(stdin)
    proc.stdin.close()
    import select
    import time
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other side closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    # The terminal closes as the process exits, a moment before it can be reaped.
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("still running after 60 s; the terminal showed: " + shown.decode(errors="replace")[-500:])
    return code, shown.decode(errors="replace")


def test_progress_on_a_terminal_is_cleared_at_the_end(tmp_path, server):
    # The progress line is drawn on a terminal and erased at the end (a regression:
    # erasing it once recursed forever and crashed every run on a terminal).
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n":{i}}}\n' for i in range(50000)))
    (tmp_path / "p.yaml").write_text("name: t\nsource: {lines: {paths: [in.jsonl]}}\n"
                                     "stages: [{filter: 'n % 2 == 0'}]\nsink: {jsonl: {path: out.jsonl}}\n")
    code, shown = run_on_a_terminal([str(AETL), "run", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert code == 0, shown
    assert "sink jsonl" in shown and "25000" in shown
    urls = "".join(server.url(f"/ok/{i}") + "\n" for i in range(20)).encode()
    code, shown = run_on_a_terminal([str(AFETCH), "-"], cwd=tmp_path, stdin=urls)
    assert code == 0, shown


def test_each_header_flag_takes_one_value_so_the_next_word_is_an_input_as_in_curl(server, write_urls):
    urls = write_urls([server.url("/headers")])
    for prog, args in [(AFETCH, []), (AETL, ["fetch"])]:
        r = run_afetch([*args, "-H", "X-A: b", "-H", "X-C: d", urls, "-q", "--body", "json"], program=prog)
        assert (r.code, r.stderr) == (0, "")
        sent = r.records[0]["body"]["headers"]
        assert (sent["x-a"], sent["x-c"]) == ("b", "d")
    r = run_afetch(["-H", "X-A: b", urls, "-H", "X-C: d", "-q", "--body", "json", "--header=X-E: f"])
    assert r.code == 0 and {"x-a", "x-c", "x-e"} <= set(r.records[0]["body"]["headers"])


def test_aetl_run_progress_shows_percent_and_eta_for_files_only(tmp_path, server):
    # 40 records, each fetched after 50 ms, one at a time: about 2 s, so the
    # progress line is drawn several times with the input's size known.
    delay = server.url("/delay/50")
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n":{i}}}\n' for i in range(40)))
    (tmp_path / "p.yaml").write_text(
        "name: t\nsource: {lines: {paths: [in.jsonl]}}\n"
        f"stages: [{{fetch: {{url: '{delay}?n={{n}}', concurrency: 1}}}}]\n"
        "sink: {jsonl: {path: out.jsonl}}\n")
    code, shown = run_on_a_terminal([str(AETL), "run", "--state", "s.db", "p.yaml"], cwd=tmp_path)
    assert code == 0, shown
    assert re.search(r"\d+%  ETA \d+s", shown), shown
    # stdin: its size is not known, so neither percent nor ETA
    (tmp_path / "q.yaml").write_text(
        "name: q\nsource: {lines: {paths: ['-']}}\n"
        f"stages: [{{fetch: {{url: '{delay}?n={{n}}', concurrency: 1}}}}]\n"
        "sink: {jsonl: {path: out2.jsonl}}\n")
    code, shown = run_on_a_terminal([str(AETL), "run", "--state", "s.db", "q.yaml"], cwd=tmp_path,
                                    stdin=(tmp_path / "in.jsonl").read_bytes())
    assert code == 0, shown
    assert "sink jsonl" in shown and "%" not in shown and "ETA" not in shown
