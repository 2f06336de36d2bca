"""A throwaway MariaDB server for the tests, on 127.0.0.1.

mariadb-install-db into a temporary directory, mariadbd on a free loopback port
with its Unix socket in the same directory (run as the `mysql` user when the
tests run as root), a user with a password over TCP. Stopped and removed by
stop(). Also runnable by hand:

    python3 tests/support/mariadb_server.py   # starts one, prints its URL, stops on Enter or EOF
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER = "aetl"
PASSWORD = "aetl-test-pw"
DATABASE = "aetl"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDbServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="aetl-mariadb-")
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "sock")
        self.port = free_port()
        self.user = []
        self.proc = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mysql")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.user = ["--user=mysql"]
        self.url = f"mysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self):
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", *self.user,
                        "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
                       check=True, capture_output=True, text=True)
        self._start_server()
        self.sql(f"CREATE DATABASE {DATABASE}; CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
                 f"GRANT ALL ON *.* TO '{USER}'@'%'", database="")
        return self

    def _start_server(self, extra=()):
        log = open(os.path.join(self.dir, "log"), "ab")
        # Small buffers and no durability waits: a test server, started and dropped often.
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data}", *self.user,
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
             f"--pid-file={os.path.join(self.dir, 'pid')}", "--skip-name-resolve", "--skip-log-bin",
             "--innodb-buffer-pool-size=128M", "--innodb-log-file-size=256M", "--innodb-flush-log-at-trx-commit=2",
             "--max-connections=100", "--local-infile=1", *extra],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd did not start: " + open(os.path.join(self.dir, "log")).read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                if subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"],
                                  capture_output=True).returncode == 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not answer within 60 s")

    def restart(self):
        """A restart: every client connection is cut."""
        self.stop_server()
        self._start_server()

    def stop_server(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def sql(self, sql, database=DATABASE):
        """Runs SQL through the mariadb client as root over the socket; rows as tab-separated lines."""
        args = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", sql]
        if database:
            args.insert(-2, f"--database={database}")
        res = subprocess.run(args, check=True, capture_output=True, text=True)
        return res.stdout

    def rows(self, sql):
        out = self.sql(sql).rstrip("\n")
        return [line.split("\t") for line in out.split("\n")] if out else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a kill stops the server too (the finally below)
    server = MariaDbServer().start()
    print(server.url, flush=True)
    try:
        sys.stdin.readline()  # Enter, or the end of standard input, stops it
    finally:
        server.stop()
