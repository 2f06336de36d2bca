"""Saving bodies with -o DIR: safe names, no writes outside DIR, no clobbering."""
import json
import os
import resource
import signal
import shutil
import subprocess
import time

from conftest import AFETCH, run_afetch


def all_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def test_bodies_are_saved_under_host_and_path(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url("/ok/a/b.txt?size=10"), server.url("/ok/"), server.url("/status/404")])
    r = run_afetch([urls, "-q", "-o", out, "--ordered"])
    assert r.code == 1
    host = f"127.0.0.1_{server.port}"
    paths = [x["path"] for x in r.records]
    assert paths == [f"{host}/ok/a/b.txt%3Fsize=10", f"{host}/ok/index.html", None]
    assert (out / paths[0]).read_bytes() == b"x" * 10
    assert all_files(out) == sorted(paths[:2])  # no partial files left, 404 not saved


def test_path_traversal_attempts_never_write_outside_the_directory(server, write_urls, tmp_path):
    out = tmp_path / "out"
    evil = [
        "/ok/../../../../../../tmp/evil1",
        "/ok/%2e%2e/%2e%2e/%2e%2e/evil2",
        "/ok/..%2f..%2f..%2fevil3",
        "/ok//..//..//evil4",
        "/ok/%2F..%2F..%2Fevil5",
        "/ok/.%00./evil6",
        "/ok/\\..\\..\\evil7",
        "/ok/a?x=/../../evil8",
    ]
    urls = write_urls([server.url(p) for p in evil])
    before = set(os.listdir(tmp_path))
    r = run_afetch([urls, "-q", "-o", out])
    assert set(os.listdir(tmp_path)) - before == {"out", urls.name} - before
    for rec in r.records:
        if rec.get("path"):
            full = os.path.realpath(out / rec["path"])
            assert full.startswith(str(out.resolve()) + os.sep)
            assert ".." not in rec["path"].split("/")
    for dirpath, dirs, files in os.walk(out):
        for name in dirs + files:
            assert name not in (".", "..") and "\x00" not in name
    assert not any(p.name.startswith("evil") for p in tmp_path.iterdir())


def test_a_symlink_planted_in_the_directory_is_not_followed(server, write_urls, tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    os.symlink(outside, out / f"127.0.0.1_{server.port}")
    urls = write_urls([server.url("/ok/target.txt")])
    r = run_afetch([urls, "-q", "-o", out])
    assert os.listdir(outside) == []
    path = r.records[0]["path"]
    assert path and not os.path.islink(out / path) and (out / path).is_file()


def test_existing_files_are_never_overwritten(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url("/ok/same.txt")])
    first = run_afetch([urls, "-q", "-o", out]).records[0]["path"]
    second = run_afetch([urls, "-q", "-o", out]).records[0]["path"]
    assert second == first + ".1"
    host = f"127.0.0.1_{server.port}"
    dup = write_urls([server.url("/ok/twice"), server.url("/ok/twice")])
    paths = sorted(x["path"] for x in run_afetch([dup, "-q", "-o", out]).records)
    assert paths == [f"{host}/ok/twice", f"{host}/ok/twice.1"]


def test_a_file_in_the_way_of_a_directory_gives_a_flat_name(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url("/ok/a")])
    run_afetch([urls, "-q", "-o", out])
    deeper = write_urls([server.url("/ok/a/b")])
    rec = run_afetch([deeper, "-q", "-o", out]).records[0]
    assert rec["ok"] and rec["path"] == f"127.0.0.1_{server.port}/ok/a%2Fb"


def test_large_bodies_are_saved_whole(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url(f"/huge?mb=20&n={i}") for i in range(3)])
    r = run_afetch([urls, "-q", "-o", out, "-j", "3"])
    assert r.code == 0
    for rec in r.records:
        assert os.path.getsize(out / rec["path"]) == 20 * 1048576 == rec["bytes"]


def test_an_unwritable_directory_is_a_usage_error(write_urls, tmp_path):
    urls = write_urls(["http://127.0.0.1:9/"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_afetch([urls, "-o", blocker / "sub"])
    assert r.code == 2 and r.stderr == f"afetch: {blocker}/sub: Not a directory\n"


def test_missing_parents_of_the_directory_are_created_as_mkdir_p_does(server, write_urls, tmp_path):
    urls = write_urls([server.url("/ok/deep")])
    out = tmp_path / "a" / "b" / "c"
    r = run_afetch([urls, "-q", "-o", out])
    assert r.code == 0
    assert (out / r.records[0]["path"]).read_bytes() == b"ok"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_afetch([urls, "-o", blocker / "b" / "c"])
    assert r.code == 2 and r.stderr == f"afetch: {blocker}/b: Not a directory\n"


def run_measured(args, tmp_path):
    """Runs afetch under /usr/bin/time (a small parent: a child's peak RSS counts its
    parent's at fork); returns (exit code, result records, stderr, peak RSS in MiB)."""
    peak = tmp_path / "peak-kib"
    r = run_afetch(["-f", "%M", "-o", peak, AFETCH, *args], program="/usr/bin/time")
    return r.code, r.records, r.stderr, int(peak.read_text().split()[-1]) / 1024


def test_a_compressed_body_past_max_bytes_stops_at_the_cap_with_flat_memory(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url("/gzip-bomb?mb=1024")])  # 1 GiB of zeros, 1 MiB on the wire
    code, records, err, peak_mib = run_measured([urls, "-q", "-o", out, "--max-bytes", "10MiB", "--retry", "0"], tmp_path)
    assert code == 1, err
    assert records[0]["error"] == "body larger than --max-bytes (10485760 bytes)"
    assert records[0]["path"] is None and records[0]["bytes"] <= 10485760
    assert peak_mib < 24  # about 16 MiB; 36 to 96 MiB before, as curl held what it decoded while paused
    assert all_files(out) == []


def test_a_compressed_body_without_a_cap_streams_to_disk_whole_with_flat_memory(server, write_urls, tmp_path):
    out = tmp_path / "out"
    urls = write_urls([server.url("/gzip-bomb?mb=256")])
    code, records, err, peak_mib = run_measured([urls, "-q", "-o", out], tmp_path)
    assert code == 0, err
    rec = records[0]
    assert rec["ok"] and rec["bytes"] == 256 << 20
    assert peak_mib < 24  # about 16 MiB (before: the transfer failed)
    zeros = bytes(1 << 20)
    with open(out / rec["path"], "rb") as f:
        for _ in range(256):
            assert f.read(1 << 20) == zeros
        assert f.read(1) == b""


def test_a_body_the_disk_refuses_is_left_for_the_next_state_run_not_failed_for_good(server, write_urls, tmp_path):
    def small_files():  # as a full disk: writes past 1 MiB fail (EFBIG, SIGXFSZ ignored)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out, state = tmp_path / "out", tmp_path / "state.db"
    urls = write_urls([server.url("/huge?mb=4")])
    args = [str(AFETCH), str(urls), "-q", "-o", str(out), "--state", str(state)]
    first = subprocess.run(args, capture_output=True, preexec_fn=small_files, timeout=60)
    assert first.returncode == 1
    rec = json.loads(first.stdout)
    assert rec["error"] == "saving body: File too large" and rec["path"] is None
    second = run_afetch(args[1:])
    assert second.code == 0 and second.records[0]["ok"]
    assert os.path.getsize(out / second.records[0]["path"]) == 4 << 20


def test_a_body_directory_removed_during_the_run_is_made_again(server, write_urls, tmp_path):
    # afetch keeps the directories it walked open; one removed behind its back is walked again
    urls = write_urls([server.url(f"/delay/300/x/{i}") for i in range(4)])
    out = tmp_path / "bodies"
    proc = subprocess.Popen([str(AFETCH), str(urls), "-q", "-j", "1", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    host_dir = None
    for _ in range(100):  # until the first body is saved
        time.sleep(0.05)
        found = list(out.glob("*/delay/300/x/0"))
        if found:
            host_dir = found[0].parents[3]
            break
    assert host_dir is not None
    shutil.rmtree(host_dir / "delay")
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    recs = [json.loads(l) for l in stdout.decode().splitlines()]
    assert all(r["ok"] for r in recs), recs
    assert sorted(p.name for p in host_dir.glob("delay/300/x/*")) == ["1", "2", "3"]
