"""Fixtures for the integration tests: the built binary and real servers on 127.0.0.1.

The test HTTP server (tests/support/http_test_server.py) is started by these
fixtures on a free port and stopped at the end; nothing is started by hand.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "support" / "http_test_server.py"
AETL = Path(os.environ.get("AETL_BIN", ROOT / "build" / "aetl"))
AFETCH = AETL.parent / "afetch"


class TestServer:
    def __init__(self, proc, port, scheme="http"):
        self.proc = proc
        self.port = port
        self.scheme = scheme
        self.base = f"{scheme}://127.0.0.1:{port}"

    def url(self, path):
        return self.base + path

    def _get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return r.read()

    def stats(self):
        return json.loads(self._get("/__stats"))

    def reset(self):
        self._get("/__reset")


def start_server(tmp: Path, extra=()):
    port_file = tmp / f"port-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(SERVER), "--port", "0", "--port-file", str(port_file), *extra],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server of the module's own, in a private directory on a free loopback port."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from pg_server import PgServer
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mariadb():
    """A MariaDB server of the module's own, in a private directory on a free loopback port."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from mariadb_server import MariaDbServer
    server = MariaDbServer().start()
    yield server
    server.stop()


@pytest.fixture()
def redis():
    """A redis-server of the test's own on a free loopback port (tests/support/redis_server.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from redis_server import RedisServer
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def session_tmp():
    with tempfile.TemporaryDirectory(prefix="aetl-it-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def _server(session_tmp):
    proc, port = start_server(session_tmp)
    yield TestServer(proc, port)
    stop_server(proc)


@pytest.fixture()
def server(_server):
    """The shared plain-HTTP test server, its counters reset for each test."""
    _server.reset()
    return _server


@pytest.fixture(scope="session")
def tls_files(session_tmp):
    cert, key = session_tmp / "cert.pem", session_tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def tls_server(session_tmp, tls_files):
    cert, key = tls_files
    proc, port = start_server(session_tmp, ["--tls-cert", str(cert), "--tls-key", str(key)])
    srv = TestServer(proc, port, scheme="https")
    srv.cert = cert
    yield srv
    stop_server(proc)


class Run:
    def __init__(self, proc_result):
        self.code = proc_result.returncode
        self.stdout = proc_result.stdout
        self.stderr = proc_result.stderr.decode("utf-8", "replace")

    @property
    def lines(self):
        return [l for l in self.stdout.decode("utf-8").split("\n") if l]

    @property
    def records(self):
        return [json.loads(l) for l in self.lines]


def run_afetch(args, input_bytes=None, timeout=120, program=None, env=None):
    cmd = [str(program or AFETCH), *map(str, args)]
    full_env = dict(os.environ)
    full_env.pop("http_proxy", None)
    full_env.pop("HTTP_PROXY", None)
    if env:
        full_env.update(env)
    res = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout, env=full_env)
    return Run(res)


@pytest.fixture()
def afetch():
    return run_afetch


@pytest.fixture()
def write_urls(tmp_path):
    """Writes lines to a fresh file and returns its path."""
    counter = [0]

    def write(lines, name=None):
        counter[0] += 1
        path = tmp_path / (name or f"urls-{counter[0]}.txt")
        data = "".join(l + "\n" for l in lines)
        path.write_text(data)
        return path

    return write


def run_aetl(args, input_bytes=None, timeout=120, env=None, cwd=None, preexec_fn=None):
    """Runs `aetl ARGS...` and returns a Run."""
    full_env = dict(os.environ)
    full_env.pop("http_proxy", None)
    full_env.pop("HTTP_PROXY", None)
    full_env.setdefault("XDG_STATE_HOME", str(Path(cwd or ".") / ".state"))
    if env:
        full_env.update(env)
    res = subprocess.run([str(AETL), *map(str, args)], input=input_bytes, capture_output=True, timeout=timeout,
                         env=full_env, cwd=cwd, preexec_fn=preexec_fn)
    return Run(res)


@pytest.fixture()
def aetl():
    return run_aetl


def kill_rounds(tmp_path, pipeline_file, state, rng, rounds=20, pause=(0.01, 0.15)):
    """Runs the pipeline `rounds` times, each killed with SIGKILL after a random
    pause (unless it ended first), then once to the end. Returns how many were killed."""
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    killed = 0
    for _ in range(rounds):
        proc = subprocess.Popen([str(AETL), "run", "-q", "--state", str(state), str(pipeline_file)], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(*pause))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    final = run_aetl(["run", "-q", "--state", state, pipeline_file], cwd=tmp_path, timeout=120)
    assert final.code == 0, final.stderr
    return killed


@pytest.fixture()
def pipeline(tmp_path):
    """Writes a pipeline file into the test's directory; returns its path."""
    counter = [0]

    def write(text, name=None):
        counter[0] += 1
        path = tmp_path / (name or f"p{counter[0]}.yaml")
        path.write_text(text)
        return path

    return write


class WsServer:
    """tests/support/ws_test_server.py on a free loopback port: ws:// (or wss://
    with `tls_files`, a self-signed certificate made by the tests)."""

    def __init__(self, tmp: Path, tls=None):
        port_file = tmp / f"ws-port-{time.monotonic_ns()}"
        extra = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        self.proc = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests" / "support" / "ws_test_server.py"),
                                      "--port", "0", "--port-file", str(port_file), *extra], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("websocket test server did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.base = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def stats(self):
        import ssl
        ctx = ssl._create_unverified_context()
        scheme = "https" if self.base.startswith("wss") else "http"
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{self.port}/__stats", timeout=10, context=ctx) as r:
            return json.loads(r.read())

    def stop(self):
        stop_server(self.proc)


@pytest.fixture()
def ws_server(tmp_path):
    """A WebSocket test server of the test's own (plain ws://)."""
    s = WsServer(tmp_path)
    yield s
    s.stop()


@pytest.fixture()
def wss_server(tmp_path, tls_files):
    """The WebSocket test server over TLS, its certificate in `.cert` (self-signed: its own CA)."""
    s = WsServer(tmp_path, tls=tls_files)
    s.cert = tls_files[0]
    yield s
    s.stop()
