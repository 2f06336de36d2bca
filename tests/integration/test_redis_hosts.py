"""Workers as separate hosts: each runs in a network namespace of its own and
reaches redis-server over a virtual link (veth), as a worker on another machine
would. Kill -9 rounds on one host while the other works, and a network
partition (the link taken down past claim_idle, then back): every entry ends up
in the exactly-once SQLite table once, and nothing is left pending. Skipped,
with the reason, where network namespaces cannot be made (no root, no
CAP_NET_ADMIN, no ip(8))."""
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AETL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from redis_server import RedisServer  # noqa: E402


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


class Host:
    """A network namespace linked to this one by a veth pair: 10.77.K.2 in the
    namespace, 10.77.K.1 here."""

    def __init__(self, k):
        tag = f"{os.getpid() % 100000}-{k}"
        self.ns = f"aetl-h{tag}"
        self.link = f"ah{tag}"      # this side (at most 15 characters)
        self.peer = f"ap{tag}"      # the namespace's side
        self.here = f"10.77.{k}.1"
        self.there = f"10.77.{k}.2"

    def make(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", self.peer)
        sh("ip", "link", "set", self.peer, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.here}/24", "dev", self.link)
        sh("ip", "link", "set", self.link, "up")
        sh("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{self.there}/24", "dev", self.peer)
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", self.peer, "up")
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")

    def partition(self, down):
        sh("ip", "link", "set", self.link, "down" if down else "up")

    def remove(self):
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.fixture()
def hosts():
    if not shutil.which("ip"):
        pytest.skip("network namespaces: ip(8) not found (iproute2)")
    made = []
    try:
        for k in (1, 2):
            h = Host(k)
            made.append(h)
            h.make()
    except subprocess.CalledProcessError as e:
        for h in made:
            h.remove()
        pytest.skip(f"network namespaces cannot be made here: {' '.join(e.cmd)}: {e.stderr.strip()}")
    yield made
    for h in made:
        h.remove()


@pytest.fixture()
def redis(hosts):
    server = RedisServer(also_bind=[h.here for h in hosts]).start()
    yield server
    server.stop()


def worker_yaml(tmp_path, host, server, name, extra=""):
    p = tmp_path / name
    p.write_text(f"""name: worker
source:
  redis: {{url: "redis://{host.here}:{server.port}/0", stream: jobs, group: g, claim_idle: 1s, block: 200ms,
           count: 50, max_deliveries: 1000, timeout: 1s{", " + extra if extra else ""}}}
sink:
  sqlite: {{path: {tmp_path}/out.db, table: t, exactly_once: true, batch: {{size: 100, linger: 20ms}}}}
dead_letter:
  jsonl: {{path: {tmp_path}/dl.jsonl, append: true}}
""")
    return p


def start_on(host, tmp_path, pipeline, *flags):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    return subprocess.Popen(["ip", "netns", "exec", host.ns, str(AETL), "run", "-q", *flags, str(pipeline)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rows(db):
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t")]
    finally:
        con.close()


def test_a_host_killed_again_and_again_loses_and_doubles_nothing(tmp_path, hosts, redis):
    n = 4000
    redis.push("jobs", range(n))
    a, b = hosts
    pa = worker_yaml(tmp_path, a, redis, "a.yaml")
    pb = worker_yaml(tmp_path, b, redis, "b.yaml", extra="stop_when_idle: 3s")
    wb = start_on(b, tmp_path, pb)
    rng = random.Random(7)
    for _ in range(10):
        wa = start_on(a, tmp_path, pa)
        time.sleep(rng.uniform(0.1, 0.3))
        wa.send_signal(signal.SIGKILL)
        wa.wait(timeout=30)
    _, err = wb.communicate(timeout=120)
    assert wb.returncode == 0, err.decode()
    ids = rows(tmp_path / "out.db")
    assert len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert len(ids) == n, f"{len(ids) - n} doubled"
    assert redis.pending("jobs", "g") == 0


def test_a_partitioned_host_loses_its_entries_to_the_other_and_doubles_nothing(tmp_path, hosts, redis):
    n = 3000
    redis.push("jobs", range(n))
    a, b = hosts
    pa = worker_yaml(tmp_path, a, redis, "a.yaml", extra="stop_when_idle: 2s")
    pb = worker_yaml(tmp_path, b, redis, "b.yaml", extra="stop_when_idle: 4s")
    wa = start_on(a, tmp_path, pa)
    held = 0
    for _ in range(50):  # until a is cut off while it holds entries it has not acknowledged
        deadline = time.time() + 30
        while redis.pending("jobs", "g") == 0 and time.time() < deadline:
            time.sleep(0.01)
        a.partition(down=True)
        time.sleep(0.05)
        held = redis.pending("jobs", "g")
        if held:
            break
        a.partition(down=False)
    assert held > 0, "a never held entries when cut off"
    try:
        wb = start_on(b, tmp_path, pb, "--metrics-out", str(tmp_path / "b.prom"))
        time.sleep(3)  # past claim_idle: b takes a's entries over
    finally:
        a.partition(down=False)
    _, err = wb.communicate(timeout=120)
    assert wb.returncode == 0, err.decode()
    _, err = wa.communicate(timeout=120)
    assert wa.returncode == 0, err.decode()
    assert "connecting again" in err.decode()  # a did lose the server for a while
    claimed = re.search(r'part="redis",event="claimed"\} (\d+)', (tmp_path / "b.prom").read_text())
    assert claimed and int(claimed.group(1)) > 0, "b took nothing over"
    ids = rows(tmp_path / "out.db")
    assert len(set(ids)) == n, f"{n - len(set(ids))} lost"
    assert len(ids) == n, f"{len(ids) - n} doubled"
    assert redis.pending("jobs", "g") == 0


def test_a_host_name_with_an_address_where_nothing_listens_is_tried_at_its_next(tmp_path, hosts, redis):
    """A name with two addresses, the first one refusing connections (the
    namespace's own, where no server listens): the worker connects at the second
    (a name may have an IPv6 address the server does not listen on). The name is
    given to the namespace only (/etc/netns/NAME/hosts, which `ip netns exec`
    puts in place of /etc/hosts)."""
    a = hosts[0]
    etc = Path("/etc/netns") / a.ns
    etc.mkdir(parents=True, exist_ok=True)
    try:
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{a.there} queue-host\n{a.here} queue-host\n")
        order = subprocess.run(["ip", "netns", "exec", a.ns, "getent", "ahostsv4", "queue-host"], capture_output=True,
                               text=True).stdout.split()
        if not order or order[0] != a.there:
            pytest.skip(f"the resolver does not give the refusing address first here: {order[:1]}")
        redis.push("jobs", range(50))
        p = tmp_path / "w.yaml"
        p.write_text(f"""name: worker
source:
  redis: {{url: "redis://queue-host:{redis.port}/0", stream: jobs, group: g, block: 100ms, stop_when_idle: 1s}}
sink:
  sqlite: {{path: {tmp_path}/out.db, table: t, exactly_once: true}}
""")
        w = start_on(a, tmp_path, p)
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err.decode()
        assert sorted(rows(tmp_path / "out.db")) == list(range(50))
    finally:
        shutil.rmtree(etc, ignore_errors=True)
