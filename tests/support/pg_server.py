"""A throwaway PostgreSQL server for the tests, on 127.0.0.1.

initdb into a temporary directory (as the unprivileged `postgres` user when the
tests run as root, since PostgreSQL refuses to run as root), a free port,
password (SCRAM) authentication over TCP, the Unix socket in the same directory.
Stopped and removed by stop(). Also runnable by hand:

    python3 tests/support/pg_server.py      # starts one, prints its DSN, stops on Enter or EOF
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

USER = "aetl"
PASSWORD = "aetl-test-pw"


def bindir():
    """The newest installed server's bin directory (pg_config may be the client's)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return os.path.dirname(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix="aetl-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dsn = f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname=postgres"
        self.url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, **kw):
        return subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True, **kw)

    def start(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.as_user:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", USER, "--pwfile", pwfile, "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        self._start_server()
        return self

    def _start_server(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=50"
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-o", opts,
                  "-w", "-t", "60", "start")

    def restart(self):
        """A fast restart: every client connection is cut."""
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        self._start_server()

    def stop_server(self):
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def psql(self, sql):
        """Runs SQL through psql (over the Unix socket); returns its output, rows as a|b lines."""
        res = subprocess.run([f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-h", self.dir, "-p", str(self.port), "-U", USER, "-d", "postgres", "-c", sql],
                             check=True, capture_output=True, text=True)
        return res.stdout

    def stop(self):
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a kill stops the server too (the finally below)
    server = PgServer().start()
    print(server.dsn, flush=True)
    try:
        sys.stdin.readline()  # Enter, or the end of standard input, stops it
    finally:
        server.stop()
