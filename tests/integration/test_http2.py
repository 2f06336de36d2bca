"""HTTP/2 over TLS against a real nginx on a loopback port: negotiated by ALPN
and multiplexed over the shared multi handle's connections."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import run_afetch

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def h2_nginx(tmp_path_factory, tls_files):
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (scripts/install-deps.sh test installs it)")
    cert, key = tls_files
    prefix = tmp_path_factory.mktemp("nginx")
    root = prefix / "www"
    root.mkdir()
    for i in range(100):
        (root / f"f{i}.txt").write_text(f"file {i}\n" * 20)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
  log_format conn '$connection $server_protocol $request_uri';
  access_log {prefix}/access.log conn;
  client_body_temp_path {prefix}/tmp_body; proxy_temp_path {prefix}/tmp_proxy;
  fastcgi_temp_path {prefix}/tmp_fcgi; uwsgi_temp_path {prefix}/tmp_uwsgi; scgi_temp_path {prefix}/tmp_scgi;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {root};
  }}
}}
""")
    subprocess.run([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield {"port": port, "prefix": prefix, "cert": cert}
    subprocess.run([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-s", "stop"])


def test_http2_is_negotiated_and_requests_share_connections(h2_nginx, write_urls):
    port = h2_nginx["port"]
    urls = write_urls([f"https://127.0.0.1:{port}/f{i}.txt" for i in range(100)])
    r = run_afetch([urls, "-q", "-j", "20", "--cacert", h2_nginx["cert"]])
    assert r.code == 0, r.stderr
    assert len(r.records) == 100
    assert all(x["http_version"] == "2" and x["ok"] for x in r.records)
    log = (h2_nginx["prefix"] / "access.log").read_text().splitlines()
    assert len(log) == 100 and all(" HTTP/2.0 " in line for line in log)
    connections = {line.split()[0] for line in log}
    assert len(connections) <= 3  # multiplexed, not one connection per request
