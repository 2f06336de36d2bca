"""Inputs and outputs that are not plain files, or change under the run: FIFOs, a
file named twice, a file removed after the start, a cut-short .gz, a write-only
output, stdout redirected to a file, a full disk."""
import gzip
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import AFETCH, run_afetch, run_aetl


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


def test_a_write_only_output_file_is_written(server):
    # as root every file is readable: then the run goes as nobody, in a directory of its own
    as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] if os.geteuid() == 0 else []
    work = tempfile.mkdtemp(prefix="aetl-wo-")
    try:
        os.chmod(work, 0o777)
        urls = os.path.join(work, "urls.txt")
        with open(urls, "w") as f:
            f.write(server.url("/ok/a") + "\n")
        os.chmod(urls, 0o644)
        out = os.path.join(work, "out.jsonl")
        with open(out, "w") as f:
            f.write('{"earlier":true}\n')
        if as_nobody:
            os.chown(out, 65534, 65534)
        os.chmod(out, 0o200)
        p = subprocess.run([*as_nobody, str(AFETCH), urls, "-q", "--output", out, "--append"], capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        os.chmod(out, 0o600)
        lines = open(out).read().splitlines()
        assert lines[0] == '{"earlier":true}'
        assert [json.loads(l).get("url") for l in lines[1:]] == [server.url("/ok/a")]
    finally:
        shutil.rmtree(work)


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


def test_csv_append_keeps_a_whole_last_row_and_cuts_a_torn_one(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"a":1,"b":2}\n')
    out = tmp_path / "out.csv"
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"source:\n  lines: {{paths: [{src}]}}\nsink:\n  csv: {{path: {out}, append: true}}\n")
    out.write_bytes(b"a,b\r\n7,8")
    r = run_aetl(["run", "-q", pipe], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert r.stderr == f"aetl: warning: {out}: its last line had no line break: added one before appending\n"
    assert out.read_bytes() == b"a,b\r\n7,8\n1,2\r\n"
    out.write_bytes(b"a,b\r\n7")
    r = run_aetl(["run", "-q", "--from-start", pipe], cwd=tmp_path)
    assert r.code == 0, r.stderr
    assert r.stderr == (f"aetl: warning: {out}: cut 1 byte of an unfinished last line "
                        "(an earlier run was killed while writing it)\n")
    assert out.read_bytes() == b"a,b\r\n1,2\r\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failed_write_prints_the_error_and_no_summary(server, write_urls):
    urls = write_urls([server.url("/ok/a")])
    r = run_afetch([urls, "--no-progress", "--output", "/dev/full"])
    assert r.code == 1
    assert r.stderr == "afetch: error: /dev/full: No space left on device\n"
