"""The Celery side of bench/workers_bench.sh (Debian python3-celery 5, its Redis
broker). Two tasks, the same work the aetl workers do:

  fetch(url)      GET the URL, store (url, status) in SQLite (WAL, synchronous=NORMAL,
                  one connection per worker process, a commit per task)
  store(record)   INSERT one small record into PostgreSQL (psycopg2, one connection
                  per worker process, a commit per task)

Settings come from the environment: BENCH_BROKER (redis URL), BENCH_SQLITE (the
database file), BENCH_PG_DSN. Workers run with the gevent pool (Celery's advice
for I/O-bound tasks), so urllib is monkey-patched and a worker holds -c
requests in flight on one thread.

    celery -A celery_tasks worker -P gevent -c 500 --without-heartbeat --without-gossip --without-mingle
    python3 celery_tasks.py enqueue-fetch URLS.txt        # fetch.delay() for each line
    python3 celery_tasks.py enqueue-store RECORDS.jsonl   # store.delay() for each line
"""
import json
import os
import sqlite3
import sys
import urllib.request

from celery import Celery

app = Celery("bench", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, task_acks_late=True,
                broker_transport_options={"visibility_timeout": 3600})

_sqlite = None
_pg = None


def sqlite_db():
    global _sqlite
    if _sqlite is None:
        _sqlite = sqlite3.connect(os.environ["BENCH_SQLITE"], timeout=60, check_same_thread=False,
                                  isolation_level=None)
        _sqlite.execute("PRAGMA journal_mode=WAL")
        _sqlite.execute("PRAGMA synchronous=NORMAL")
        _sqlite.execute("CREATE TABLE IF NOT EXISTS fetched (url TEXT, status INTEGER)")
    return _sqlite


def pg_db():
    global _pg
    if _pg is None:
        import psycopg2
        _pg = psycopg2.connect(os.environ["BENCH_PG_DSN"])
    return _pg


@app.task(name="bench.fetch")  # named: enqueued from __main__, run from celery_tasks
def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    sqlite_db().execute("INSERT INTO fetched VALUES (?, ?)", (url, status))


@app.task(name="bench.store")
def store(record):
    c = pg_db()
    with c.cursor() as cur:
        cur.execute("INSERT INTO events (id, url, status, country) VALUES (%s, %s, %s, %s)",
                    (record["id"], record["url"], record["status"], record["user"]["country"]))
    c.commit()


if __name__ == "__main__":
    what, path = sys.argv[1], sys.argv[2]
    task = fetch if what == "enqueue-fetch" else store
    with open(path) as f, app.producer_or_acquire() as producer:
        for line in f:
            line = line.strip()
            if line:
                task.apply_async((line if what == "enqueue-fetch" else json.loads(line),), producer=producer)
