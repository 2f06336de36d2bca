#!/usr/bin/env bash
# workers_bench.sh - workers sharing a Redis queue: aetl (the redis source) against
# Celery 5 (Debian python3-celery, its Redis broker, the gevent pool), with 1, 2
# and 4 worker processes, on one machine, against a private redis-server, nginx
# and PostgreSQL on 127.0.0.1.
#
#   bench/workers_bench.sh                                   # as the issue asks (long)
#   BENCH_TASKS=20000 BENCH_RECORDS=200000 bench/workers_bench.sh   # a shorter look
#
# Environment:
#   AETL=path                  aetl binary (default: build/aetl beside bench/)
#   BENCH_TASKS=100000         (a): tasks
#   BENCH_CELERY_TASKS=        (a) for Celery (default: BENCH_TASKS)
#   BENCH_RECORDS=1000000      (b): records (a multiple of 20000)
#   BENCH_CELERY_RECORDS=20000 (b) for Celery: a commit per task; its rate is from these
#   BENCH_WORKERS="1 2 4"      worker processes per fleet
#   BENCH_CONCURRENCY=500      requests in flight per worker in (a) (aetl fetch
#                              concurrency, Celery -c with -P gevent)
#   BENCH_REPEAT=2             runs of each fleet, the tools taking turns (A B A B)
#   BENCH_TOOLS="aetl celery"
#   BENCH_WORKLOADS="a b"
#   BENCH_DIR=/tmp/aetl-workers-bench
#   BENCH_NO_INSTALL=1         do not apt-get install missing peers
#
# Workloads:
#   (a) fetch   each task GETs http://127.0.0.1/delay/N (nginx echo_sleep 50 ms) and
#               stores (url, status) in SQLite (WAL, synchronous=NORMAL).
#               aetl: afetch --push fills the stream (not timed); each worker is
#                 aetl run bench/workers_fetch.yaml: redis source → fetch → sqlite
#                 (exactly_once: each entry's ID commits with its row).
#               celery: fetch.delay() for every URL beforehand (not timed); workers
#                 celery -A celery_tasks worker -P gevent -c CONC (acks_late).
#   (b) store   each record (bench/gen_events.py) becomes a row (id, url, status,
#               country) in PostgreSQL.
#               aetl: an aetl run fills the stream (not timed); workers are aetl run
#                 bench/workers_store.yaml: redis source → select → postgres
#                 (exactly_once: delivery IDs in each batch's transaction).
#               file: one aetl run reading the same records from the JSONL file into
#                 the same table, exactly_once (the ceiling the workers aim at: 80%).
#               celery: store.delay(record) for each (BENCH_CELERY_RECORDS of them),
#                 psycopg2 INSERT + commit per task.
# Time: from the workers' start until the sink holds every row, then the workers
# are stopped (SIGTERM) and the rows counted. Polled every 100 ms in (a) (rows in
# SQLite) and for the aetl workers of (b) (the stream's group: every entry read
# and acknowledged, which a worker does only after the entry's commit); Celery's
# (b) every 500 ms (count(*) of its rows); the file run of (b) until it ends. A
# count(*) over a table growing to a million rows every 500 ms took a tenth of
# the server's CPU from the runs it measured.
# Peak RSS: per worker process (/usr/bin/time), the largest of the fleet, median
# over the runs. CPU seconds: of the whole fleet (/usr/bin/time, user + system),
# and of redis-server and of PostgreSQL (all its processes) over the same span;
# medians. Printed: tasks/s, tasks/s per worker, scaling against one worker, peak
# RSS, CPU, and aetl/celery ratios of the medians.
# Aims (issue 12): (a) aetl >= 10x Celery's tasks/s per worker; (b) the aetl
# workers >= 80% of the one aetl process reading the file.
# For people, not CI: exit 0 even when a run fails (its row says so).
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
AFETCH=$(dirname "$AETL")/afetch
TASKS=${BENCH_TASKS:-100000}
CELERY_TASKS=${BENCH_CELERY_TASKS:-$TASKS}
RECORDS=${BENCH_RECORDS:-1000000}
CELERY_RECORDS=${BENCH_CELERY_RECORDS:-20000}
WORKERS=${BENCH_WORKERS:-"1 2 4"}
CONC=${BENCH_CONCURRENCY:-500}
REPEAT=${BENCH_REPEAT:-2}
TOOLS=${BENCH_TOOLS:-"aetl celery"}
WORKLOADS=${BENCH_WORKLOADS:-"a b"}
W=${BENCH_DIR:-/tmp/aetl-workers-bench}
PY=/usr/bin/python3

log() { printf '%s\n' "$*" >&2; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- peers
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] || need+=(libnginx-mod-http-echo)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/time ] || need+=(time)
$PY -c 'import celery, gevent, redis, psycopg2' 2>/dev/null || need+=(python3-celery python3-gevent python3-redis python3-psycopg2)
if [ ${#need[@]} -gt 0 ]; then
  if [ -n "${BENCH_NO_INSTALL:-}" ]; then log "missing: ${need[*]}"; exit 0; fi
  log "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 || { log "apt-get failed"; exit 0; }
fi
[ -x "$AETL" ] || { log "no aetl at $AETL (scripts/build.sh)"; exit 0; }
ulimit -n 65536 2>/dev/null || true

mkdir -p "$W"
RUN=$(mktemp -d "$W/run.XXXXXX")
chmod 755 "$RUN"
INPUT=$W/events-$RECORDS.jsonl
if [ ! -s "$INPUT" ]; then
  log "generating $RECORDS records"
  $PY "$HERE/gen_events.py" --records "$RECORDS" --out "$INPUT" >/dev/null || { log "gen_events.py failed"; exit 0; }
fi
head -n "$CELERY_RECORDS" "$INPUT" >"$RUN/celery-records.jsonl"

# ---------------------------------------------------------------- servers
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --dir "$RUN" \
  --logfile "$RUN/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
export BENCH_REDIS=redis://127.0.0.1:$RPORT/0 BENCH_BROKER=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -p "$RPORT" "$@"; }

NPORT=$(free_port)
mkdir -p "$RUN/nginx/tmp"
cat >"$RUN/nginx/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT backlog=4096;
    location /delay/ { default_type text/plain; echo_sleep 0.05; echo ok; }
  }
}
NGINX
nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" 2>"$RUN/nginx/start.err" || { log "nginx: $(cat "$RUN/nginx/start.err")"; exit 0; }

coproc PG { exec $PY "$ROOT/tests/support/pg_server.py"; }
read -r DSN <&"${PG[0]}" || { log "the PostgreSQL server did not start"; exit 0; }
PG_STDIN=${PG[1]}
export PGPASSWORD=${DSN##*password=}; PGPASSWORD=${PGPASSWORD%% *}
PGPORT=${DSN#*port=}; PGPORT=${PGPORT%% *}
export BENCH_DSN=$DSN BENCH_PG_DSN=$DSN
psql_() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U aetl -d postgres "$@"; }

cleanup() {
  exec {PG_STDIN}>&- 2>/dev/null  # pg_server.py stops the server when its stdin closes (or on SIGTERM)
  jobs -p | xargs -r kill 2>/dev/null
  [ -s "$RUN/nginx/nginx.pid" ] && kill "$(cat "$RUN/nginx/nginx.pid")" 2>/dev/null
  kill "$REDIS_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 50); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done

seq 1 "$TASKS" | awk -v p="$NPORT" '{ print "http://127.0.0.1:" p "/delay/" $1 }' >"$RUN/urls.txt"
head -n "$CELERY_TASKS" "$RUN/urls.txt" >"$RUN/celery-urls.txt"

# ---------------------------------------------------------------- one fleet
declare -A R
median() { printf '%s\n' $1 | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
HZ=$(getconf CLK_TCK)
ticks() {  # PID... -> CPU ticks of the processes and of their children that ended
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null) && t=$((t + ${v:-0}))
  done
  echo "$t"
}

rows() {  # WORKLOAD -> rows in its sink
  case $1 in
    a) sqlite3 "$RUN/fetched.db" "SELECT count(*) FROM fetched" 2>/dev/null || echo 0 ;;
    b) psql_ -c "SELECT count(*) FROM events" 2>/dev/null || echo 0 ;;
  esac
}

progress() {  # WORKLOAD TOOL -> how many are done (cheap to ask while the workers run)
  case $1/$2 in
    b/aetl)  # every entry read and acknowledged (after its commit): the stream's group says so
      rcli XINFO GROUPS events 2>/dev/null | awk '$0 == "pending" { getline; p = $0 } $0 == "entries-read" { getline; r = $0 }
        END { print (r == "" ? 0 : r - p) }' ;;
    *) rows "$1" ;;
  esac
}

prepare() {  # WORKLOAD TOOL: a fresh queue and sink, filled (not timed)
  rcli FLUSHALL >/dev/null
  rm -f "$RUN"/fetched.db*
  case $1 in
    a) sqlite3 "$RUN/fetched.db" "PRAGMA journal_mode=WAL; CREATE TABLE fetched (url TEXT, status INTEGER)" >/dev/null ;;
    b) psql_ -c "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS aetl_deliveries; DROP TABLE IF EXISTS aetl_checkpoints;
                CREATE TABLE events (id bigint, url text, status int, country text)" ;;
  esac
  case $1/$2 in
    a/aetl) "$AFETCH" -q --redis "$BENCH_REDIS" --push jobs "$RUN/urls.txt" ;;
    b/aetl) BENCH_INPUT=$INPUT "$AETL" run -q --state "$RUN/push.state" --from-start "$HERE/workers_push.yaml" ;;
    a/celery) BENCH_SQLITE=$RUN/fetched.db $PY "$HERE/celery_tasks.py" enqueue-fetch "$RUN/celery-urls.txt" ;;
    b/celery) $PY "$HERE/celery_tasks.py" enqueue-store "$RUN/celery-records.jsonl" ;;
  esac
}

fleet() {  # WORKLOAD TOOL WORKERS ROUND: one timed run
  local w=$1 tool=$2 n=$3 rep=$4 key="$1_$2_$3" want pids=() i t0 t1 el rss cpu
  case $w/$tool in
    a/celery) want=$CELERY_TASKS ;; b/celery) want=$CELERY_RECORDS ;; a/*) want=$TASKS ;; b/*) want=$RECORDS ;;
  esac
  prepare "$w" "$tool" || { R[${key}_status]="failed (filling the queue)"; return; }
  local redis0 pg0; redis0=$(ticks "$REDIS_PID"); pg0=$(ticks $(pgrep -x postgres))
  t0=$(now)
  for i in $(seq 1 "$n"); do
    case $w/$tool in
      a/aetl) /usr/bin/time -f "%M %U %S" -o "$RUN/rss.$i" env BENCH_SQLITE=$RUN/fetched.db BENCH_CONC=$CONC \
                "$AETL" run -q "$HERE/workers_fetch.yaml" >/dev/null 2>"$RUN/err.$i" & ;;
      b/aetl) /usr/bin/time -f "%M %U %S" -o "$RUN/rss.$i" "$AETL" run -q "$HERE/workers_store.yaml" >/dev/null 2>"$RUN/err.$i" & ;;
      b/file) /usr/bin/time -f "%M %U %S" -o "$RUN/rss.$i" env BENCH_INPUT=$INPUT "$AETL" run -q --state "$RUN/file.state" \
                --from-start "$HERE/workers_file.yaml" >/dev/null 2>"$RUN/err.$i" & ;;
      a/celery|b/celery)
        (cd "$HERE" && exec /usr/bin/time -f "%M %U %S" -o "$RUN/rss.$i" env BENCH_SQLITE="$RUN/fetched.db" \
           $PY -m celery -A celery_tasks worker -P gevent -c "$CONC" -n "w$i@%h" --without-heartbeat \
           --without-gossip --without-mingle --loglevel WARNING) >/dev/null 2>"$RUN/err.$i" & ;;
    esac
    pids+=($!)
  done
  local deadline=$(( $(date +%s) + 3600 )) got=0 last=-1 stalled_at
  stalled_at=$(date +%s)
  while :; do
    if [ "$w/$tool" = b/file ]; then wait "${pids[0]}"; got=$(rows b); break; fi  # one run: until it ends
    got=$(progress "$w" "$tool")
    [ "${got:-0}" -ge "$want" ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then break; fi
    if [ "$got" != "$last" ]; then last=$got; stalled_at=$(date +%s)
    elif [ $(( $(date +%s) - stalled_at )) -gt 60 ]; then break; fi   # no progress for a minute
    local alive=0; for i in "${pids[@]}"; do kill -0 "$i" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || break
    if [ "$w/$tool" = b/celery ]; then sleep 0.5; else sleep 0.1; fi
  done
  t1=$(now)
  # the workers, not /usr/bin/time around them (it writes their peak RSS as they end)
  for i in "${pids[@]}"; do pkill -TERM -P "$i" 2>/dev/null; done
  wait "${pids[@]}" 2>/dev/null
  sleep 0.3  # the workers' server sessions end (and their CPU time is counted)
  local redis_cpu pg_cpu
  redis_cpu=$(( $(ticks "$REDIS_PID") - redis0 )); pg_cpu=$(( $(ticks $(pgrep -x postgres)) - pg0 ))
  [ "$w/$tool" = b/aetl ] && got=$(rows b)  # the rows themselves, counted once the workers are done
  if [ "${got:-0}" -lt "$want" ]; then
    R[${key}_status]="failed ($got of $want rows: $(head -c 200 "$RUN/err.1" | tr '\n' ' '))"
    return
  fi
  [ "${got}" -gt "$want" ] && R[${key}_note]="$((got - want)) rows too many"
  el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  rss=$(cat "$RUN"/rss.* 2>/dev/null | grep -E '^[0-9]+ ' | awk '{ print $1 }' | sort -n | tail -1)
  cpu=$(cat "$RUN"/rss.* 2>/dev/null | grep -E '^[0-9]+ ' | awk '{ s += $2 + $3 } END { printf "%.1f", s }')
  rm -f "$RUN"/rss.*
  R[${key}_cpus]="${R[${key}_cpus]:-} $cpu"
  R[${key}_rcpus]="${R[${key}_rcpus]:-} $(awk -v t="$redis_cpu" -v h="$HZ" 'BEGIN { printf "%.1f", t / h }')"
  R[${key}_pcpus]="${R[${key}_pcpus]:-} $(awk -v t="$pg_cpu" -v h="$HZ" 'BEGIN { printf "%.1f", t / h }')"
  R[${key}_els]="${R[${key}_els]:-} $el"
  R[${key}_rsss]="${R[${key}_rsss]:-} ${rss:-0}"
  R[${key}_status]=ok
  R[${key}_want]=$want
  log "  ($w) $tool x$n / run $rep: $want in $el s, peak RSS ${rss:-?} KiB"
}

for w in $WORKLOADS; do
  log "workload ($w)"
  for n in $WORKERS; do
    for rep in $(seq 1 "$REPEAT"); do
      for tool in $TOOLS; do
        fleet "$w" "$tool" "$n" "$rep"
      done
      [ "$w" = b ] && has aetl "$TOOLS" && [ "$n" = "$(echo $WORKERS | awk '{print $1}')" ] && fleet b file 1 "$rep"
    done
  done
done

# ---------------------------------------------------------------- report
rate() {  # KEY -> tasks/s from the median elapsed
  local el; el=$(median "${R[${1}_els]:-}")
  [ -n "$el" ] && awk -v n="${R[${1}_want]}" -v e="$el" 'BEGIN { printf "%.0f", n / e }'
}
echo
echo "workers_bench: $(nproc) cores, $(uname -r); redis $(redis-server --version | awk '{print $3}'), Celery $($PY -c 'import celery; print(celery.__version__)'), PostgreSQL $(psql_ -c 'SHOW server_version')"
echo "(a) fetch: $TASKS tasks (Celery $CELERY_TASKS), 50 ms each, concurrency $CONC per worker, into SQLite"
echo "(b) store: $RECORDS records (Celery $CELERY_RECORDS) into PostgreSQL"
echo "Each fleet ran $REPEAT time(s), the tools taking turns; medians."
printf '%-4s %-7s %7s %10s %10s %12s %8s %12s %s\n' wl tool workers elapsed tasks/s "per worker" scaling "peak RSS MiB" \
  "  CPU s: workers redis postgres"
for w in a b; do
  for tool in $TOOLS file; do
    base=""
    for n in $WORKERS; do
      key=${w}_${tool}_$n
      [ -n "${R[${key}_status]:-}" ] || continue
      if [ "${R[${key}_status]}" != ok ]; then printf '%-4s %-7s %7s  %s\n' "($w)" "$tool" "$n" "${R[${key}_status]}"; continue; fi
      r=$(rate "$key"); [ -z "$base" ] && base=$r
      printf '%-4s %-7s %7s %9ss %10s %12s %7sx %12s %15s %5s %8s %s\n' "($w)" "$tool" "$n" "$(median "${R[${key}_els]}")" "$r" \
        "$(awk -v r="$r" -v n="$n" 'BEGIN { printf "%.0f", r / n }')" "$(awk -v r="$r" -v b="$base" 'BEGIN { printf "%.2f", r / b }')" \
        "$(awk -v k="$(median "${R[${key}_rsss]}")" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(median "${R[${key}_cpus]}")" "$(median "${R[${key}_rcpus]}")" "$(median "${R[${key}_pcpus]}")" "${R[${key}_note]:-}"
    done
  done
done
echo
for w in a b; do
  for n in $WORKERS; do
    a=${w}_aetl_$n c=${w}_celery_$n
    if [ "${R[${a}_status]:-}" = ok ] && [ "${R[${c}_status]:-}" = ok ]; then
      echo "($w) $n worker(s): aetl/celery tasks/s per worker = $(awk -v x="$(rate "$a")" -v y="$(rate "$c")" 'BEGIN { printf "%.1f", x / y }')x"
    fi
  done
done
f=b_file_1
for n in $WORKERS; do
  a=b_aetl_$n
  if [ "${R[${a}_status]:-}" = ok ] && [ "${R[${f}_status]:-}" = ok ]; then
    echo "(b) $n aetl worker(s) from the stream / one aetl run from the file = $(awk -v x="$(rate "$a")" -v y="$(rate "$f")" 'BEGIN { printf "%.0f", 100 * x / y }')%"
  fi
done
