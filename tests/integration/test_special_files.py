"""Inputs and outputs that are not plain files, or change under the run: FIFOs, a
file named twice, a file removed after the start, a cut-short .gz, a write-only
output, stdout redirected to a file, a full disk."""
import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import AETL, AFETCH, run_afetch, run_aetl


def urls_of(run):
    return [r["url"] for r in run.records]


def test_a_file_named_twice_is_read_twice_as_cat_would(server, write_urls):
    urls = write_urls([server.url("/ok/a"), server.url("/ok/b")])
    r = run_afetch([urls, urls, "-q"])
    assert r.code == 0, r.stderr
    assert sorted(urls_of(r)) == sorted([server.url("/ok/a"), server.url("/ok/b")] * 2)


def test_a_fifo_input_is_read_once_and_its_writer_keeps_going(server, tmp_path):
    fifo = tmp_path / "urls.fifo"
    os.mkfifo(fifo)
    n = 300
    lines = "".join(server.url(f"/ok/{i}") + "\n" for i in range(n)).encode()

    def write():
        with open(fifo, "wb") as f:
            for i in range(0, len(lines), 997):  # in pieces, while afetch reads
                f.write(lines[i:i + 997])
                f.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    r = run_afetch([fifo, "-q", "-j", "8"], timeout=60)
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert r.code == 0, r.stderr
    assert sorted(urls_of(r)) == sorted(server.url(f"/ok/{i}") for i in range(n))


def test_an_input_removed_after_the_start_is_still_read(server, write_urls, tmp_path):
    slow = write_urls([server.url(f"/delay/300/{i}") for i in range(2)])
    later = write_urls([server.url(f"/ok/{i}") for i in range(5)])
    proc = subprocess.Popen([str(AFETCH), slow, later, "-q", "-j", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(0.2)  # afetch is on the first file
    os.unlink(later)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = [json.loads(l)["url"] for l in out.decode().splitlines()]
    assert sorted(got) == sorted([server.url(f"/delay/300/{i}") for i in range(2)] +
                                 [server.url(f"/ok/{i}") for i in range(5)])


def test_a_cut_short_gzip_input_is_an_error_naming_it(server, tmp_path):
    whole = gzip.compress("".join(server.url(f"/ok/{i}") + "\n" for i in range(2000)).encode())
    gz = tmp_path / "urls.txt.gz"
    gz.write_bytes(whole[: len(whole) // 2])
    r = run_afetch([gz, "-q"])
    assert r.code == 1
    assert r.stderr.splitlines()[-1] == (
        f"afetch: error: {gz}: unexpected end of the gzip stream (the file is cut short)")
    # the run stops there (an input error aborts it): what is written is whole lines
    assert len(r.records) < 2000


def test_a_cut_short_gzip_input_of_a_pipeline_is_an_error_naming_it(tmp_path):
    whole = gzip.compress("".join(json.dumps({"id": i}) + "\n" for i in range(20000)).encode())
    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out.jsonl"
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"source:\n  lines: {{paths: [{gz}]}}\nsink:\n  jsonl: {out}\n")
    r = run_aetl(["run", "-q", pipe], cwd=tmp_path)
    assert r.code == 1
    assert r.stderr.splitlines()[-1] == (
        f"aetl: error: {gz}: unexpected end of the gzip stream (the file is cut short)")


def test_a_fifo_output_gets_every_line(server, write_urls, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    urls = write_urls([server.url(f"/ok/{i}") for i in range(500)])
    got = []

    def read():
        with open(fifo, "rb") as f:
            got.append(f.read())

    reader = threading.Thread(target=read)
    reader.start()
    r = run_afetch([urls, "-q", "--output", fifo], timeout=60)
    reader.join(timeout=30)
    assert r.code == 0, r.stderr
    lines = got[0].decode().splitlines()
    assert sorted(json.loads(l)["url"] for l in lines) == sorted(server.url(f"/ok/{i}") for i in range(500))


@contextlib.contextmanager
def as_another_user():
    """Yields (prefix, directory): a command prefix that runs as `nobody` when we are
    root (root reads any file, whatever its mode) and a fresh directory it may use."""
    prefix = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] if os.geteuid() == 0 else []
    work = tempfile.mkdtemp(prefix="aetl-user-")
    try:
        os.chmod(work, 0o777)
        yield prefix, work
    finally:
        shutil.rmtree(work)


def write_only_file(path, text, owner_is_nobody):
    with open(path, "w") as f:
        f.write(text)
    if owner_is_nobody:
        os.chown(path, 65534, 65534)
    os.chmod(path, 0o200)


def test_a_write_only_output_file_is_written(server):
    with as_another_user() as (prefix, work):
        urls = os.path.join(work, "urls.txt")
        with open(urls, "w") as f:
            f.write(server.url("/ok/a") + "\n")
        os.chmod(urls, 0o644)
        out = os.path.join(work, "out.jsonl")
        write_only_file(out, '{"earlier":true}\n', bool(prefix))
        p = subprocess.run([*prefix, str(AFETCH), urls, "-q", "--output", out, "--append"], capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        os.chmod(out, 0o600)
        lines = open(out).read().splitlines()
        assert lines[0] == '{"earlier":true}'
        assert [json.loads(l).get("url") for l in lines[1:]] == [server.url("/ok/a")]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_state_with_stdout_redirected_to_a_file_syncs_each_batch(server, write_urls, tmp_path):
    urls = write_urls([server.url(f"/ok/{i}") for i in range(3)])
    out = tmp_path / "out.jsonl"
    trace = tmp_path / "trace"
    with open(out, "wb") as f:
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=fdatasync,fsync", "-o", str(trace), str(AFETCH),
                            str(urls), "-q", "--state", str(tmp_path / "s.db")], stdout=f, stderr=subprocess.PIPE,
                           timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(out.read_text().splitlines()) == 3
    assert "fdatasync(1)" in trace.read_text()


def test_a_complete_last_line_without_a_line_break_is_kept_when_appending(server, write_urls, tmp_path):
    urls = write_urls([server.url("/ok/a")])
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"url":"http://x/a","ok":true}')
    r = run_afetch([urls, "-q", "--output", out, "--append"])
    assert r.code == 0
    assert r.stderr == f"afetch: warning: {out}: its last line had no line break: added one before appending\n"
    lines = out.read_text().splitlines()
    assert lines[0] == '{"url":"http://x/a","ok":true}'
    assert [json.loads(l)["url"] for l in lines[1:]] == [server.url("/ok/a")]


def csv_pipeline(tmp_path, out):
    src = tmp_path / "in.jsonl"
    src.write_text('{"a":1,"b":2}\n')
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"source:\n  lines: {{paths: [{src}]}}\nsink:\n  csv: {{path: {out}, append: true}}\n")
    return pipe


@pytest.mark.parametrize("before,kept,cut", [
    (b"a,b\r\n12,34", b"a,b\r\n", 5),        # a row cut inside its last field (was 12,345)
    (b"b,a", b"", 3),                          # a header cut short, or whole: no line break
    (b'x,y\r\n1,"p\nq"', b'x,y\r\n1,"p\n', 2),  # (a quoted line break: cut at the last one)
])
def test_csv_append_cuts_whatever_follows_the_last_line_break(tmp_path, before, kept, cut):
    out = tmp_path / "out.csv"
    out.write_bytes(before)
    r = run_aetl(["run", "-q", csv_pipeline(tmp_path, out)], cwd=tmp_path)
    assert r.stderr == (f"aetl: warning: {out}: cut {cut} byte{'s' if cut > 1 else ''} of an unfinished last line "
                        "(an earlier run was killed while writing it)\n")
    if kept == b"a,b\r\n" or kept == b"":
        assert r.code == 0, r.stderr
        assert out.read_bytes() == (kept or b"a,b\r\n") + b"1,2\r\n"


def test_csv_append_to_a_file_it_cannot_read_is_refused():
    with as_another_user() as (prefix, work):
        out = os.path.join(work, "out.csv")
        write_only_file(out, "a,b\r\n7,8\r\n", bool(prefix))
        pipe = csv_pipeline(Path(work), out)
        for f in (pipe, Path(work) / "in.jsonl"):
            os.chmod(f, 0o644)
        p = subprocess.run([*prefix, str(AETL), "run", "-q", "--state", os.path.join(work, "s.db"), str(pipe)],
                           capture_output=True, timeout=60, cwd=work)
        assert p.returncode == 2, p.stderr
        assert p.stderr.decode() == f"aetl: {out}: cannot read it, and appending needs its header row\n"
        os.chmod(out, 0o600)
        assert open(out, "rb").read() == b"a,b\r\n7,8\r\n"


def test_a_fifo_output_without_a_reader_stops_at_the_first_sigint(server, write_urls, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    urls = write_urls([server.url("/ok/a")])
    proc = subprocess.Popen([str(AFETCH), str(urls), "-q", "--output", str(fifo)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert err.decode() == ("afetch: warning: interrupted: stopping; finishing work in flight "
                            "(up to 5000 ms; again to abort)\n")


def test_a_checkpoint_interval_of_zero_does_not_spin_while_waiting_for_input(tmp_path):
    pipe = tmp_path / "p.yaml"
    pipe.write_text("source:\n  lines: {paths: [\"-\"]}\nsink:\n  jsonl: out.jsonl\n"
                    "settings: {checkpoint_interval: 0s}\n")
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(pipe)], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    before = cpu_seconds(proc.pid)
    time.sleep(1.5)
    used = cpu_seconds(proc.pid) - before
    proc.stdin.write(b'{"a":1}\n')
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert used < 0.5, f"{used:.2f} CPU seconds in 1.5 s of waiting"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failed_write_prints_the_error_and_no_summary(server, write_urls):
    urls = write_urls([server.url("/ok/a")])
    r = run_afetch([urls, "--no-progress", "--output", "/dev/full"])
    assert r.code == 1
    assert r.stderr == "afetch: error: /dev/full: No space left on device\n"


def test_more_inputs_than_open_files_allowed_are_read(server, tmp_path):
    import resource
    names = []
    for i in range(300):
        f = tmp_path / f"u{i:03}.txt"
        f.write_text(server.url(f"/ok/{i}") + "\n")
        names.append(str(f))

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    p = subprocess.run([str(AFETCH), *names, "-q", "-j", "8"], capture_output=True, timeout=60, preexec_fn=few_files)
    assert p.returncode == 0, p.stderr
    got = [json.loads(l)["url"] for l in p.stdout.decode().splitlines()]
    assert sorted(got) == sorted(server.url(f"/ok/{i}") for i in range(300))
