#!/usr/bin/env bash
# postgres_bench.sh - aetl's postgres sink against psql \copy and python3 asyncpg,
# on one generated JSON Lines input, against a throwaway PostgreSQL server.
#
#   bench/postgres_bench.sh                        # 2,000,000 records (a few minutes)
#   BENCH_RECORDS=200000 bench/postgres_bench.sh   # quick look
#
# Environment:
#   AETL=path                 aetl binary (default: build/aetl beside bench/)
#   BENCH_RECORDS=2000000     records (a multiple of 20000)
#   BENCH_DIR=/tmp/aetl-bench work dir: cached input and CSV
#   BENCH_REPEAT=3            runs of each tool per workload, alternated (A B A B ...)
#   BENCH_TOOLS="aetl psql asyncpg"
#   BENCH_NO_INSTALL=1        do not apt-get install missing peers
#
# Server: tests/support/pg_server.py (initdb into a temporary directory as the
# postgres user when run as root, 127.0.0.1, a free port, default settings:
# synchronous_commit on), stopped at the end. Every run gets a fresh table
# events (id bigint, url text, status int, country text); P2's has PRIMARY KEY (id).
#
# Workloads (the records of bench/gen_events.py, country = user.country):
#   P1 append   aetl      aetl run bench/p1.yaml (COPY, one transaction per batch)
#               psql      psql -c "\copy events FROM CSV" (the CSV prepared beforehand, not timed)
#               asyncpg   bench/py_asyncpg.py copy (json.loads, copy_records_to_table)
#   P2 upsert   aetl      aetl run bench/p2.yaml (COPY into a staging table, INSERT ... ON CONFLICT)
#               asyncpg   bench/py_asyncpg.py executemany (INSERT ... ON CONFLICT, executemany)
#   P3 read     aetl      aetl run bench/p3.yaml (postgres source → jsonl file)
#               psql      psql -c "COPY (SELECT row_to_json(e) FROM events e) TO STDOUT" > file
# Checks, after every run: every tool's table holds the same rows (count and an
# md5 over them; P3: the lines written), and every run of a tool the same as its first.
#
# For each workload the tools run in rounds, one run of each per round
# (aetl psql asyncpg aetl psql asyncpg ...), BENCH_REPEAT rounds, so a slow minute
# on the shared machine hits all of them; aetl's state is removed before each of
# its runs. Rows give the median elapsed time (rows/s from it), the fastest and
# slowest run, and the median peak RSS and CPU; the "vs" lines are ratios of
# medians. A tool whose run fails is not run again in that workload.
# Aims (issue 4): P1 aetl >= 90% of psql \copy's rows/s; P2 aetl >= 2x asyncpg executemany;
# P3 aetl >= 90% of psql COPY TO STDOUT into a file.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
N=${BENCH_RECORDS:-2000000}
W=${BENCH_DIR:-/tmp/aetl-bench}
REPEAT=${BENCH_REPEAT:-3}
TOOLS=${BENCH_TOOLS:-"aetl psql asyncpg"}
PY=/usr/bin/python3

log() { printf '%s\n' "$*" >&2; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }
case $N in ''|*[!0-9]*) log "BENCH_RECORDS must be a number"; exit 0 ;; esac
case $REPEAT in ''|*[!0-9]*|0) REPEAT=3 ;; esac

# ---------------------------------------------------------------- peers
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
$PY -c 'import asyncpg' 2>/dev/null || need+=(python3-asyncpg)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  if [ -n "${BENCH_NO_INSTALL:-}" ]; then
    log "missing (not installing, BENCH_NO_INSTALL set): ${need[*]}"
  else
    sudo=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
    log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || log "could not install all of: ${need[*]}"
  fi
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { log "no PostgreSQL server binaries"; exit 0; }
if has aetl "$TOOLS" && [ ! -x "$AETL" ]; then log "no aetl at $AETL (build first)"; exit 0; fi

mkdir -p "$W" || exit 0
RUN=$(mktemp -d "$W/pgrun.XXXXXX") || exit 0
cp "$AETL" "$RUN/aetl" 2>/dev/null && AETL=$RUN/aetl

# ---------------------------------------------------------------- input
INPUT=$W/events-${N}rec.jsonl
CSV=$W/events-${N}rec.csv
if [ ! -s "$INPUT" ] || [ "$(wc -l <"$INPUT")" != "$N" ] || [ "$INPUT" -ot "$HERE/gen_events.py" ]; then
  log "input: generating $N records into $INPUT"
  $PY "$HERE/gen_events.py" --records "$N" --out "$INPUT" >/dev/null || { log "gen_events.py failed"; exit 0; }
  rm -f "$CSV"
fi
if [ ! -s "$CSV" ] || [ "$CSV" -ot "$INPUT" ]; then
  log "input: the CSV for psql \\copy"
  $PY -c '
import csv, json, sys
w = csv.writer(sys.stdout, lineterminator="\n")
for line in sys.stdin.buffer:
    r = json.loads(line); u = r.get("user") or {}
    w.writerow([r.get("id"), r.get("url"), r.get("status"), u.get("country")])
' <"$INPUT" >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"
fi
IN_MB=$(awk -v b="$(stat -c %s "$INPUT")" 'BEGIN { printf "%.1f", b / 1048576 }')

# ---------------------------------------------------------------- server
coproc PG { exec $PY "$ROOT/tests/support/pg_server.py"; }
read -r DSN <&"${PG[0]}" || { log "the PostgreSQL server did not start"; exit 0; }
PG_STDIN=${PG[1]}
cleanup() {
  exec {PG_STDIN}>&- 2>/dev/null   # pg_server.py stops the server when its stdin closes
  wait "$PG_PID" 2>/dev/null
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PGPASSWORD=${DSN##*password=}; PGPASSWORD=${PGPASSWORD%% *}
PGPORT=${DSN#*port=}; PGPORT=${PGPORT%% *}
psql_() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U aetl -d postgres "$@"; }
fresh_table() {  # WORKLOAD
  [ "$1" = P3 ] && return 0  # reads the table loaded before it
  local pk=""; [ "$1" = P2 ] && pk=", PRIMARY KEY (id)"
  psql_ -c "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS aetl_checkpoints; CREATE TABLE events (id bigint, url text, status int, country text$pk)" 2>/dev/null
}
digest() { psql_ -c "SELECT count(*) || ' ' || md5(string_agg(id || '|' || url || '|' || status || '|' || coalesce(country, ''), ',' ORDER BY id)) FROM events"; }

# ---------------------------------------------------------------- runs
# Results: R[<workload>_<tool>_<field>]; els, rsss, cpus collect one value per
# ok run (space-separated).
declare -A R
median() {  # numbers (space-separated) -> their median ("" if none)
  # shellcheck disable=SC2086  # split the list into one number a line
  printf '%s\n' $1 | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minmax() {  # ELAPSED-LIST -> "lo-hi" seconds over the runs
  # shellcheck disable=SC2086  # split the list into one number a line
  printf '%s\n' $1 | awk 'NF { if (lo == "" || $1 < lo) lo = $1; if (hi == "" || $1 > hi) hi = $1 }
    END { if (lo == "") print "-"; else printf "%.2f-%.2f", lo, hi }'
}
# med KEY FIELD -> the median of its ok runs ("" unless its status is ok)
med() { [ "${R[${1}_status]:-}" = ok ] && median "${R[${1}_${2}s]:-}"; }

measure() {  # KEY ROUND CMD... (stdin from $IN_FOR): one run on a fresh table, then its checks
  local key=$1 rep=$2; shift 2
  local w=${key%%_*} tf=$RUN/time.out el rss u s d rc
  fresh_table "$w"
  [ "${key#*_}" = aetl ] && rm -rf "$RUN/$w.state" "$RUN/$w.state-wal" "$RUN/$w.state-shm" "$RUN/$w.state-journal"
  sync; cat "$INPUT" >/dev/null
  /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" <"${IN_FOR:-/dev/null}" >"$RUN/$key.out" 2>"$RUN/$key.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    local in_run=""; [ "$REPEAT" -gt 1 ] && in_run=" in run $rep"
    R[${key}_status]="failed (exit $rc$in_run: $(head -c 200 "$RUN/$key.err" | tr '\n' ' '))"
    rm -f "$RUN/p3.jsonl" "$RUN/p3.psql"
    return
  fi
  read -r el rss u s < <(tail -n 1 "$tf")
  R[${key}_els]="${R[${key}_els]:-} $el"
  R[${key}_rsss]="${R[${key}_rsss]:-} $rss"
  R[${key}_cpus]="${R[${key}_cpus]:-} $(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')"
  if [ "$w" = P3 ]; then
    d="$(cat "$RUN/p3.jsonl" "$RUN/p3.psql" 2>/dev/null | wc -l) lines"; R[${key}_lines]=$d
  else
    d=$(digest); R[${key}_digest]=$d
  fi
  rm -f "$RUN/p3.jsonl" "$RUN/p3.psql"
  # every run must give what the tool's first run gave
  if [ -z "${R[${key}_first]:-}" ]; then R[${key}_first]=$d
  elif [ "$d" != "${R[${key}_first]}" ] && [ -z "${R[${key}_vary]:-}" ]; then
    R[${key}_vary]="run $rep: ${d%% *} rows, rows DIFFER from its run 1"
  fi
  R[${key}_status]=ok
  log "  $w / ${key#*_} / run $rep: $el s"
}

export BENCH_INPUT=$INPUT BENCH_DSN=$DSN BENCH_OUT=$RUN/p3.jsonl
for w in P1 P2 P3; do
  log "$w"
  if [ "$w" = P3 ]; then
    fresh_table P1
    psql_ -c "\\copy events FROM '$CSV' WITH (FORMAT csv)" && psql_ -c "VACUUM ANALYZE events" >/dev/null
  fi
  # rounds: every tool once per round, BENCH_REPEAT rounds (A B C A B C ...)
  for rep in $(seq 1 "$REPEAT"); do
    for tool in $TOOLS; do
      key=${w}_$tool
      [ "${R[${key}_status]:-ok}" = ok ] || continue   # failed before: not run again
      case $w/$tool in
        */aetl) IN_FOR="" measure "$key" "$rep" "$AETL" run -q --state "$RUN/$w.state" --from-start "$HERE/$(echo $w | tr P p).yaml" ;;
        P1/psql) IN_FOR="" measure "$key" "$rep" psql -X -q -h 127.0.0.1 -p "$PGPORT" -U aetl -d postgres -c "\\copy events FROM '$CSV' WITH (FORMAT csv)" ;;
        P1/asyncpg) IN_FOR=$INPUT measure "$key" "$rep" $PY "$HERE/py_asyncpg.py" copy "$DSN" ;;
        P2/asyncpg) IN_FOR=$INPUT measure "$key" "$rep" $PY "$HERE/py_asyncpg.py" executemany "$DSN" ;;
        P3/psql) IN_FOR="" measure "$key" "$rep" bash -c "psql -X -q -h 127.0.0.1 -p $PGPORT -U aetl -d postgres -c 'COPY (SELECT row_to_json(e) FROM events e) TO STDOUT' >'$RUN/p3.psql'" ;;
        *) continue ;;
      esac
      [ "${R[${key}_status]}" = ok ] || log "  $w / $tool / run $rep: ${R[${key}_status]}"
    done
  done
done

# ---------------------------------------------------------------- report
echo
echo "postgres_bench: $(nproc) cores, $(uname -r), $N records ($IN_MB MiB JSONL), PostgreSQL $(psql_ -c 'SHOW server_version')"
echo "Each tool ran $REPEAT time(s) per workload, the tools taking turns; elapsed, RSS and CPU are medians,"
echo "rows/s = records / median elapsed, 'runs s' the fastest and slowest run's elapsed."
ROWF='%-3s %-8s %9s %10s %13s %8s %8s  %s\n'
printf "$ROWF" wl tool "elapsed s" "rows/s" "runs s" "RSS MB" "CPU s" "status / checks"
for w in P1 P2 P3; do
  ref=""
  for tool in $TOOLS; do
    key=${w}_$tool
    [ -n "${R[${key}_status]:-}" ] || continue
    d=${R[${key}_digest]:-}
    [ "$w" = P3 ] && d=${R[${key}_lines]:-}
    check=""
    if [ -n "$d" ]; then
      [ "${d%% *}" = "$N" ] && check="$N rows" || check="ROWS: ${d%% *}"
      if [ -z "$ref" ]; then ref=$d; else [ "$d" = "$ref" ] && check="$check, same rows" || check="$check, rows DIFFER"; fi
      [ -n "${R[${key}_vary]:-}" ] && check="$check; ${R[${key}_vary]}"
    fi
    el=$(med "$key" el); rss=$(med "$key" rss); cpu=$(med "$key" cpu)
    printf "$ROWF" "$w" "$tool" "$(awk -v e="$el" 'BEGIN { if (e == "") print "-"; else printf "%.2f", e }')" \
      "$(awk -v n="$N" -v e="$el" 'BEGIN { if (e == "" || e == 0) print "-"; else printf "%.0f", n / e }')" \
      "$(minmax "${R[${key}_els]:-}")" \
      "$(awk -v k="$rss" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }')" \
      "$(awk -v c="$cpu" 'BEGIN { if (c == "") print "-"; else printf "%.2f", c }')" "${R[${key}_status]} ${check:+($check)}"
  done
done
ratio() {  # AETL-KEY PEER-KEY -> aetl rows/s over the peer's, from the median elapsed times
  awk -v a="$(med "$1" el)" -v b="$(med "$2" el)" 'BEGIN { if (a == "" || b == "" || a == 0) print "-"; else printf "%.2f", b / a }'
}
echo
echo "  P1 aetl rows/s vs psql \\copy (medians): $(ratio P1_aetl P1_psql)x (aim >= 0.90)"
echo "  P2 aetl rows/s vs asyncpg executemany (medians): $(ratio P2_aetl P2_asyncpg)x (aim >= 2)"
echo "  P3 aetl rows/s vs psql COPY TO STDOUT (medians): $(ratio P3_aetl P3_psql)x (aim >= 0.90)"
echo
echo "commands (input \$IN = $INPUT):"
echo "  P1 aetl:    BENCH_INPUT=\$IN BENCH_DSN=... aetl run --state p1.state --from-start bench/p1.yaml"
echo "  P1 psql:    psql -c \"\\copy events FROM '$CSV' WITH (FORMAT csv)\""
echo "  P1 asyncpg: python3 bench/py_asyncpg.py copy DSN <\$IN"
echo "  P2 aetl:    BENCH_INPUT=\$IN BENCH_DSN=... aetl run --state p2.state --from-start bench/p2.yaml"
echo "  P2 asyncpg: python3 bench/py_asyncpg.py executemany DSN <\$IN"
echo "  P3 aetl:    BENCH_DSN=... BENCH_OUT=out.jsonl aetl run --state p3.state --from-start bench/p3.yaml"
echo "  P3 psql:    psql -c 'COPY (SELECT row_to_json(e) FROM events e) TO STDOUT' >out.jsonl"
