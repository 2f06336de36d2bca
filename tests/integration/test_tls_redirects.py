"""TLS verification, private CAs, and what may follow a redirect."""
import json

from conftest import run_afetch


def test_a_self_signed_server_is_refused_by_default(tls_server, write_urls):
    urls = write_urls([tls_server.url("/ok")])
    r = run_afetch([urls, "-q", "--retry", "0"])
    rec = r.records[0]
    assert r.code == 1 and rec["ok"] is False and rec["status"] is None
    assert "certificate" in rec["error"].lower()


def test_cacert_makes_the_private_ca_trusted(tls_server, write_urls):
    urls = write_urls([tls_server.url("/ok")])
    r = run_afetch([urls, "-q", "--cacert", tls_server.cert])
    rec = r.records[0]
    assert r.code == 0 and rec["ok"] is True and "insecure" not in rec


def test_insecure_is_marked_in_every_result_line(tls_server, write_urls):
    urls = write_urls([tls_server.url("/ok"), tls_server.url("/ok/2")])
    r = run_afetch([urls, "--insecure"])
    assert r.code == 0
    assert all(rec["insecure"] is True and rec["ok"] for rec in r.records)
    assert "--insecure: TLS certificates are not verified" in r.stderr


def test_credentials_do_not_follow_a_redirect_to_another_port(server, tls_server, write_urls, session_tmp):
    from conftest import start_server, stop_server
    proc, other_port = start_server(session_tmp)
    try:
        target = f"http://127.0.0.1:{other_port}/headers"
        req = {"url": server.url("/redirect-to?url=" + target),
               "headers": {"Authorization": "Bearer secret", "Cookie": "session=abc", "X-Plain": "kept"}}
        urls = write_urls([json.dumps(req)])
        r = run_afetch([urls, "-q", "--body", "json"])
        rec = r.records[0]
        assert rec["ok"] and rec["final_url"] == target
        headers = rec["body"]["headers"]
        assert "authorization" not in headers and "cookie" not in headers
        assert headers["x-plain"] == "kept"
    finally:
        stop_server(proc)


def test_credentials_are_kept_on_a_same_origin_redirect(server, write_urls):
    req = {"url": server.url("/redirect-to?url=/headers"), "headers": {"Authorization": "Bearer secret"}}
    urls = write_urls([json.dumps(req)])
    rec = run_afetch([urls, "-q", "--body", "json"]).records[0]
    assert rec["body"]["headers"]["authorization"] == "Bearer secret"


def test_https_to_http_redirect_drops_credentials(tls_server, server, write_urls):
    target = server.url("/headers")
    req = {"url": tls_server.url("/redirect-to?url=" + target), "headers": {"Authorization": "Bearer s"}}
    urls = write_urls([json.dumps(req)])
    rec = run_afetch([urls, "-q", "--body", "json", "--cacert", tls_server.cert]).records[0]
    assert rec["ok"] and "authorization" not in rec["body"]["headers"]
