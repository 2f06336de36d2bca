"""Passwords in URLs (http://user:password@host/) never reach result lines, logs,
error messages or the --state file: they are shown as user:***@."""
import sqlite3

from conftest import run_afetch

SECRET = "s3cr3t-Pa55"


def with_password(url):
    return url.replace("http://", f"http://user:{SECRET}@", 1)


def state_bytes(state):
    return b"".join(p.read_bytes() for p in state.parent.glob(state.name + "*"))


def test_a_password_in_a_url_is_masked_in_output_and_never_stored(server, write_urls, tmp_path):
    ok = with_password(server.url("/ok/a"))
    refused = f"http://user:{SECRET}@127.0.0.1:9/x"
    # the redirect's Location carries the password; the first URL only its %-escapes
    target = with_password(server.url("/ok/b"))
    redirected = server.url("/redirect-to?url=" + "".join("%%%02X" % ord(c) for c in target))
    bad_line = '{"url": "http://user:%s@127.0.0.1/", "nope": 1}' % SECRET
    urls = write_urls([ok, refused, redirected, bad_line])
    state = tmp_path / "state.db"
    r = run_afetch([urls, "--state", state, "--retry", "0", "--ordered", "--log-level", "debug"])
    assert r.code == 2
    for text in (r.stdout.decode(), r.stderr):
        assert SECRET not in text
    recs = r.records
    masked = ok.replace(SECRET, "***")
    assert (recs[0]["url"], recs[0]["final_url"], recs[0]["ok"]) == (masked, masked, True)
    assert recs[1]["url"] == "http://user:***@127.0.0.1:9/x" and not recs[1]["ok"]
    assert recs[2]["final_url"] == server.url("/ok/b").replace("http://", "http://user:***@")
    assert recs[3]["url"] == bad_line.replace(SECRET, "***")
    assert SECRET.encode() not in state_bytes(state)

    again = run_afetch([urls, "-q", "--state", state, "--retry", "0"])
    # done ones are found under their secret-free keys; the refused one is tried again
    assert sorted(x["url"] for x in again.records) == sorted(["http://user:***@127.0.0.1:9/x",
                                                              bad_line.replace(SECRET, "***")])
    assert SECRET.encode() not in state_bytes(state)


def test_a_state_file_of_an_older_version_still_resumes_and_loses_its_passwords(server, write_urls, tmp_path):
    url = with_password(server.url("/ok/old"))
    state = tmp_path / "old.db"
    db = sqlite3.connect(state)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE afetch_done (key TEXT PRIMARY KEY, outcome TEXT NOT NULL,"
               " finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))) WITHOUT ROWID")
    db.execute("INSERT INTO afetch_done(key, outcome) VALUES (?, 'ok')", ("GET " + url,))
    db.commit()
    db.close()
    assert SECRET.encode() in state_bytes(state)
    urls = write_urls([url])
    r = run_afetch([urls, "--state", state])
    assert r.code == 0 and r.records == [] and "1 skipped" in r.stderr
    assert server.stats()["total"] == 0
    assert SECRET.encode() not in state_bytes(state)
