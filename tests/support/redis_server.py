"""A throwaway Redis server for the tests, on 127.0.0.1 (Debian's redis-server).

A temporary directory for its data (append-only file on, fsync every second), a
free port, no password unless asked (requirepass), a Unix socket in the same
directory. Stopped and removed by stop(). Also runnable by hand:

    python3 tests/support/redis_server.py      # starts one, prints its URL, stops on Enter or EOF
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, password=None, appendonly=True, also_bind=()):
        """also_bind: more addresses to listen on (the host's ends of the tests'
        virtual links; protected mode is then off, as for any server reached
        from other hosts)."""
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="aetl-redis-")
        self.port = free_port()
        self.password = password
        self.appendonly = appendonly
        self.also_bind = list(also_bind)
        self.socket = os.path.join(self.dir, "redis.sock")
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", *self.also_bind, "--dir", self.dir,
                "--unixsocket", self.socket, "--unixsocketperm", "700", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "log")]
        if self.password:
            args += ["--requirepass", self.password]
        if self.also_bind:
            args += ["--protected-mode", "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.cli("PING").strip() in ("PONG", ):
                    return self
            except subprocess.CalledProcessError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: " + open(os.path.join(self.dir, "log")).read()[-2000:])
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 20 s")

    def push(self, stream, ids, field="data"):
        """XADDs one entry per id ({"id": i}) through redis-cli's pipe mode."""
        lines = "".join(f'XADD {stream} * {field} "{{\\"id\\": {i}}}"\n' for i in ids)
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)], input=lines, text=True, check=True,
                       capture_output=True, env=self._env())

    def pending(self, stream, group):
        """How many entries the group has delivered and not acknowledged."""
        out = self.cli("XPENDING", stream, group)
        return 0 if out.startswith("NOGROUP") else int(out.splitlines()[0])

    def cli(self, *args):
        """Runs one command through redis-cli; returns its output (raw, one value per line)."""
        res = subprocess.run(["redis-cli", "--raw", "-h", "127.0.0.1", "-p", str(self.port), *map(str, args)],
                             check=True, capture_output=True, text=True, env=self._env(), timeout=30)
        if res.stdout.startswith("NOAUTH") or res.stdout.startswith("ERR"):
            raise subprocess.CalledProcessError(1, args, res.stdout)
        return res.stdout

    def _env(self):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return env

    def restart(self, down_for=0.0):
        """Stops the server (it writes its append-only file) and starts it again on
        the same port and data: every client connection is cut."""
        self.proc.terminate()
        self.proc.wait(timeout=30)
        time.sleep(down_for)
        return self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    server = RedisServer().start()
    print(server.url, flush=True)
    try:
        sys.stdin.readline()  # Enter, or the end of standard input, stops it
    finally:
        server.stop()
