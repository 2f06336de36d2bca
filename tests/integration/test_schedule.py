"""Scheduled pipelines: aetl run --every/--cron/--once and the schedule: block.

Each slot of a pipeline runs once however many schedulers reach it (two processes
on one state store, a retried cron line, two "hosts" sharing Redis); missed fires
run once or are skipped, as asked, and say so; a paused holder whose Redis lock
expired and was taken commits nothing more. Real redis-server, started by the tests.
"""
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import AETL, run_aetl

STARTS = re.compile(r"pipeline '(\S+)': slot (\S+): run starts")
HOST = socket.gethostname()


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def simple_pipeline(tmp_path, schedule="", sink="jsonl: {path: out.jsonl}"):
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    return write(tmp_path, "p.yaml", f"name: sched\nsource:\n  lines: {{paths: [in.jsonl]}}\nsink:\n  {sink}\n{schedule}")


def start(args, tmp_path, **kw):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    return subprocess.Popen([str(AETL), *map(str, args)], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, **kw)


def stop(proc, sig=signal.SIGTERM, timeout=30):
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_every_fires_at_each_slot_and_sigterm_between_fires_exits_0(tmp_path):
    p = simple_pipeline(tmp_path)
    proc = start(["run", "--every", "1s", p], tmp_path)
    time.sleep(3.5)
    code, err = stop(proc)
    assert code == 0, err
    slots = STARTS.findall(err)
    assert len(slots) >= 2, err
    assert len(set(slots)) == len(slots), err
    assert err.count("sink jsonl") == len(slots), "one summary per fire"
    assert "pipeline 'sched': stopped between fires" in err
    assert re.search(r"pipeline 'sched': every 1s, slots kept in the state store \S+; next fire at "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", err), err
    # the input was read once: later fires resumed from the checkpoint with nothing new
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_a_fire_that_cannot_start_is_logged_and_the_scheduler_goes_on(tmp_path):
    # A regression: a setup error in one fire (here a sink's missing directory) ended the scheduler.
    p = simple_pipeline(tmp_path, sink="jsonl: {path: outdir/out.jsonl}")
    proc = start(["run", "--every", "1s", p], tmp_path)
    time.sleep(2.5)
    (tmp_path / "outdir").mkdir()
    time.sleep(2)
    code, err = stop(proc)
    assert code == 0, err
    assert re.search(r"aetl: error: pipeline 'sched': slot \S+: outdir/out.jsonl: No such file or directory; "
                     r"the scheduler goes on", err), err
    assert len((tmp_path / "outdir/out.jsonl").read_text().splitlines()) == 2, err


def test_two_schedulers_on_one_state_store_run_each_slot_once(tmp_path):
    p = simple_pipeline(tmp_path)
    a = start(["run", "--every", "1s", p], tmp_path)
    b = start(["run", "--every", "1s", p], tmp_path)
    time.sleep(4.5)
    (ca, ea), (cb, eb) = stop(a), stop(b)
    assert ca == 0 and cb == 0, ea + eb
    slots = [s for _, s in STARTS.findall(ea)] + [s for _, s in STARTS.findall(eb)]
    assert len(slots) >= 3, ea + eb
    assert len(set(slots)) == len(slots), "a slot ran twice:\n" + ea + eb
    # whoever lost a slot said so
    said = re.findall(r"slot \S+ (?:was run already by|is being run by) " + re.escape(HOST) + r" pid \d+; nothing to do",
                      ea + eb)
    assert said, ea + eb
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_a_retried_once_in_the_same_slot_does_nothing_and_says_so(tmp_path):
    p = simple_pipeline(tmp_path)
    first = run_aetl(["run", "--once", "-q", "--cron", "0 0 1 1 *", p], cwd=tmp_path)
    assert first.code == 0, first.stderr
    assert "run starts" in first.stderr
    again = run_aetl(["run", "--once", "-q", "--cron", "0 0 1 1 *", p], cwd=tmp_path)
    assert again.code == 0, again.stderr
    slot = re.search(r"slot (\S+): run starts", first.stderr).group(1)
    pid = re.search(r"pid (\d+)", again.stderr)
    assert again.stderr == (f"aetl: pipeline 'sched': slot {slot} was run already by {HOST} pid {pid.group(1)}; "
                            "nothing to do\n")
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def claim_in_state_store(state, seconds_ago):
    """Writes a fire `seconds_ago` into the state store's book, as an earlier run would have."""
    con = sqlite3.connect(state)
    con.execute("CREATE TABLE IF NOT EXISTS aetl_schedule_slots (pipeline TEXT NOT NULL, slot INTEGER NOT NULL,"
                " holder TEXT NOT NULL, claimed_at TEXT NOT NULL DEFAULT '', PRIMARY KEY (pipeline, slot))")
    slot = (int(time.time()) - seconds_ago) // 3600 * 3600
    con.execute("INSERT INTO aetl_schedule_slots(pipeline, slot, holder) VALUES('sched', ?, 'earlier')", (slot,))
    con.commit()
    con.close()


@pytest.mark.parametrize("schedule,said", [
    ("schedule: {every: 1h}",
     r"3 fires missed \(the last at \S+, \S+ ago\); running once now \(misfire: run_once\)"),
    ("schedule: {every: 1h, misfire: skip}", r"3 fires missed \(the last at \S+, \S+ ago\); skipped \(misfire: skip\)"),
    ("schedule: {every: 1h, grace: 1ms}",
     r"3 fires missed \(the last at \S+, \S+ ago\); beyond the grace of 1ms, skipped"),
])
def test_missed_fires_after_downtime_run_once_or_are_skipped(tmp_path, schedule, said):
    p = simple_pipeline(tmp_path, schedule + "\n")
    state = tmp_path / "state.sqlite"
    claim_in_state_store(state, 3 * 3600)
    proc = start(["run", "-q", "--state", state, p], tmp_path)
    time.sleep(1.5)
    code, err = stop(proc)
    assert code == 0, err
    assert re.search("pipeline 'sched': " + said, err), err
    out = tmp_path / "out.jsonl"
    assert (out.exists() and len(out.read_text().splitlines()) == 2) == ("running once" in said)


def test_sigint_during_a_fire_stops_the_run_and_the_schedule(tmp_path):
    p = write(tmp_path, "p.yaml", "name: slow\nsource:\n  lines: {paths: ['-']}\nsink:\n  jsonl: {path: out.jsonl}\n")
    proc = start(["run", "--every", "1s", p], tmp_path, stdin=subprocess.PIPE)
    proc.stdin.write('{"id": 1}\n')
    proc.stdin.flush()
    deadline = time.time() + 10
    while time.time() < deadline and not (tmp_path / "out.jsonl").exists():
        time.sleep(0.05)
    time.sleep(0.8)  # the record is written at the end of its linger
    code, err = stop(proc, signal.SIGINT)
    assert code == 130, err
    assert "pipeline 'slow': slot" in err and ": interrupted" in err
    assert "stopped between fires" not in err
    assert (tmp_path / "out.jsonl").read_text() == '{"id": 1}\n'


@pytest.mark.parametrize("yaml,message", [
    ("schedule: {cron: '61 * * * *'}", "p.yaml:6:18: schedule: cron '61 * * * *': minute: 61 is out of range 0-59"),
    ("schedule: {cron: '* * * * *', timezone: Mars/Olympus}",
     "p.yaml:6:41: schedule: timezone: unknown zone 'Mars/Olympus' (an IANA name such as Europe/Berlin)"),
    ("schedule: {every: 1500ms}", "p.yaml:6:19: schedule: every: must be whole seconds, at least 1s"),
    ("schedule: {every: 1m, cron: '* * * * *'}", "p.yaml:6:11: schedule: give one of cron and every, not both"),
    ("schedule: {every: 1m, timezone: UTC}",
     "p.yaml:6:33: schedule: timezone: applies to cron only (every counts from the Unix epoch, UTC)"),
    ("schedule: {cron: '0 0 30 2 *'}", "p.yaml:6:18: schedule: cron '0 0 30 2 *' matches no time in the next 5 years"),
    ("schedule: {every: 1m, redis: 'redis://h:x'}",
     "p.yaml:6:30: schedule: redis: redis URL 'redis://h:x': the port must be a number from 1 to 65535"),
])
def test_a_bad_schedule_is_one_located_line_and_exit_2(tmp_path, yaml, message):
    p = simple_pipeline(tmp_path, yaml + "\n")
    res = run_aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines()[0] == str(tmp_path) + "/" + message


@pytest.mark.parametrize("args,message", [
    (["--once"], "aetl: --once: the pipeline has no schedule: (give --every or --cron)"),
    (["--every", "7x"], "aetl: --every: invalid duration '7x' (whole seconds, at least 1s: 30s, 15m, 1h)"),
    (["--every", "1m", "--cron", "* * * * *"], "aetl: --every and --cron: give one of them"),
    (["--cron", "* * *"],
     "aetl: --cron: cron '* * *': needs 5 fields (minute hour day-of-month month day-of-week), got 3"),
    (["--every", "1m", "--dry-run"], "aetl: --dry-run runs the pipeline once, now: leave out --every, --cron and --once"),
])
def test_bad_schedule_flags_are_one_line_and_exit_2(tmp_path, args, message):
    p = simple_pipeline(tmp_path)
    res = run_aetl(["run", *args, p], cwd=tmp_path)
    assert (res.code, res.stderr) == (2, message + "\n")
    assert not (tmp_path / "out.jsonl").exists()


def test_systemd_units_for_a_cron_schedule(tmp_path):
    p = simple_pipeline(tmp_path, "schedule: {cron: '*/15 8-18 * * mon-fri', timezone: Europe/Berlin, jitter: 30s}\n")
    res = run_aetl(["systemd", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    out = res.stdout.decode()
    exe = os.path.realpath(AETL)
    assert f"ExecStart={exe} run --once -q {tmp_path}/p.yaml\n" in out
    assert "OnCalendar=Mon..Fri *-*-* 08..18:00/15:00 Europe/Berlin\n" in out
    assert "Persistent=true\n" in out and "RandomizedDelaySec=30s\n" in out
    assert "Unit=aetl-sched.service\n" in out and "WantedBy=timers.target\n" in out
    both = run_aetl(["systemd", "--cron", "0 6 1 * mon", "-o", tmp_path / "units", "--user", p], cwd=tmp_path)
    assert both.code == 0, both.stderr
    timer = (tmp_path / "units" / "aetl-sched.timer").read_text()
    # cron: either day field matches, so one calendar line for each
    assert "OnCalendar=*-*-01 06:00:00 Europe/Berlin\nOnCalendar=Mon *-*-* 06:00:00 Europe/Berlin\n" in timer
    assert "WantedBy=default.target" in timer
    service = (tmp_path / "units" / "aetl-sched.service").read_text()
    assert "--cron \"0 6 1 * mon\"" in service


@pytest.mark.parametrize("every,calendar", [("15m", "*-*-* *:00/15:00 UTC"), ("10s", "*-*-* *:*:00/10 UTC"),
                                            ("6h", "*-*-* 00/6:00:00 UTC"), ("1d", "*-*-* 00:00:00 UTC")])
def test_systemd_units_for_every(tmp_path, every, calendar):
    p = simple_pipeline(tmp_path)
    res = run_aetl(["systemd", "--every", every, p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert f"OnCalendar={calendar}\n" in res.stdout.decode()


@pytest.mark.parametrize("cron,calendars", [
    # regressions: systemd refuses a weekday range from Sunday (its weeks start on Monday),
    # and a day field with a step kept only its `*`
    ("0 9 * * 0-2", ["Mon,Tue,Sun *-*-* 09:00:00 UTC"]),
    ("0 0 * * 5-7", ["Fri..Sun *-*-* 00:00:00 UTC"]),
    ("0 9 * * 0-6", ["*-*-* 09:00:00 UTC"]),
    ("0 12 */2 * *", ["*-*-01/2 12:00:00 UTC"]),
    ("0 12 */2 * mon", ["Mon *-*-01/2 12:00:00 UTC"]),
])
def test_systemd_calendars_of_day_fields(tmp_path, cron, calendars):
    p = simple_pipeline(tmp_path, "schedule: {cron: '* * * * *', timezone: UTC}\n")
    res = run_aetl(["systemd", "--cron", cron, p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    got = [l[len("OnCalendar="):] for l in res.stdout.decode().splitlines() if l.startswith("OnCalendar=")]
    assert got == calendars
    if shutil.which("systemd-analyze"):
        for c in got:
            check = subprocess.run(["systemd-analyze", "calendar", c], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr


def test_systemd_refuses_an_every_it_cannot_say(tmp_path):
    p = simple_pipeline(tmp_path)
    res = run_aetl(["systemd", "--every", "7m", p], cwd=tmp_path)
    assert (res.code, res.stderr) == (2, "aetl: every 7m: a systemd timer fires at calendar times, and the multiples "
                                         "of this do not divide a day evenly; use a cron expression\n")


# --- many hosts: slots and the run lock in Redis -------------------------------------------------


def test_two_hosts_sharing_redis_run_each_slot_once(tmp_path, redis):
    p = simple_pipeline(tmp_path, f"schedule: {{every: 1s, redis: '{redis.url}'}}\n")
    # two "hosts": each its own state store
    a = start(["run", "--state", tmp_path / "a.sqlite", p], tmp_path)
    b = start(["run", "--state", tmp_path / "b.sqlite", p], tmp_path)
    time.sleep(4.5)
    (ca, ea), (cb, eb) = stop(a), stop(b)
    assert ca == 0 and cb == 0, ea + eb
    slots = [s for _, s in STARTS.findall(ea)] + [s for _, s in STARTS.findall(eb)]
    assert len(slots) >= 3, ea + eb
    assert len(set(slots)) == len(slots), "a slot ran twice:\n" + ea + eb
    assert f"slots kept in redis 127.0.0.1:{redis.port}/0" in ea
    assert redis.cli("EXISTS", "aetl:schedule:sched:lock").strip() == "0", "the lock is released after each fire"
    last = int(redis.cli("GET", "aetl:schedule:sched:last"))
    assert abs(last - time.time()) < 5


def test_a_paused_holder_whose_lock_was_taken_commits_nothing_more(tmp_path, redis):
    db = tmp_path / "out.db"
    p = write(tmp_path, "p.yaml", f"""\
name: fenced
source:
  lines: {{paths: ['-']}}
sink:
  sqlite: {{path: {db}, table: t, exactly_once: true, batch: {{size: 1, linger: 10ms}}}}
schedule: {{every: 1s, redis: '{redis.url}', lock_ttl: 1s}}
""")

    def rows():
        con = sqlite3.connect(db)
        try:
            return sorted(r[0] for r in con.execute("SELECT id FROM t"))
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    a = start(["run", "--once", "-q", "--state", tmp_path / "a.sqlite", p], tmp_path, stdin=subprocess.PIPE)
    for i in range(1, 4):
        a.stdin.write(f'{{"id": {i}}}\n')
    a.stdin.flush()
    deadline = time.time() + 15
    while time.time() < deadline and len(rows()) < 3:
        time.sleep(0.05)
    assert rows() == [1, 2, 3]
    a.send_signal(signal.SIGSTOP)  # a holder that stands still past its lock's expiry
    time.sleep(2.5)
    b = start(["run", "--once", "-q", "--state", tmp_path / "b.sqlite", p], tmp_path, stdin=subprocess.PIPE)
    b.stdin.write('{"id": 100}\n')
    b.stdin.flush()
    while time.time() < deadline + 10 and 100 not in rows():
        time.sleep(0.05)
    assert 100 in rows()
    time.sleep(2.0)  # b holds the lock past its expiry: renewed
    assert redis.cli("GET", "aetl:schedule:fenced:lock").startswith(f"{HOST} pid {b.pid} ")
    a.send_signal(signal.SIGCONT)
    a.stdin.write('{"id": 4}\n')
    a.stdin.flush()
    a.stdin.close()
    code_a = a.wait(timeout=30)
    err_a = a.stderr.read()
    assert code_a == 75, err_a
    assert re.search(r"(lost the run lock|the run lock) in redis 127\.0\.0\.1:\d+/0 (\(|is no longer held \()"
                     r"[^)]*\); this run stops without committing more", err_a), err_a
    b.stdin.write('{"id": 101}\n')
    b.stdin.close()
    assert b.wait(timeout=30) == 0, b.stderr.read()
    assert rows() == [1, 2, 3, 100, 101]
