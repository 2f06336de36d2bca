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
#   BENCH_REPEAT=1            runs per tool and workload; the fastest is shown
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
# Checks: every tool's table holds the same rows (count and an md5 over them).
# Aims (issue 4): P1 aetl >= 90% of psql \copy's rows/s; P2 aetl >= 2x asyncpg executemany;
# P3 aetl >= 90% of psql COPY TO STDOUT into a file.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
N=${BENCH_RECORDS:-2000000}
W=${BENCH_DIR:-/tmp/aetl-bench}
REPEAT=${BENCH_REPEAT:-1}
TOOLS=${BENCH_TOOLS:-"aetl psql asyncpg"}
PY=/usr/bin/python3

log() { printf '%s\n' "$*" >&2; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }
case $N in ''|*[!0-9]*) log "BENCH_RECORDS must be a number"; exit 0 ;; esac
case $REPEAT in ''|*[!0-9]*|0) REPEAT=1 ;; esac

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
declare -A R
measure() {  # KEY CMD... (stdin from $IN_FOR)
  local key=$1; shift
  local tf=$RUN/time.out best="" i el rss u s
  for i in $(seq 1 "$REPEAT"); do
    fresh_table "${key%%_*}"
    sync; cat "$INPUT" >/dev/null
    /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" <"${IN_FOR:-/dev/null}" >"$RUN/$key.out" 2>"$RUN/$key.err"
    local rc=$?
    if [ $rc -ne 0 ]; then R[${key}_status]="failed (exit $rc: $(head -c 200 "$RUN/$key.err" | tr '\n' ' '))"; return; fi
    read -r el rss u s < <(tail -n 1 "$tf")
    if [ -z "$best" ] || awk -v a="$el" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$el; R[${key}_el]=$el; R[${key}_rss]=$rss; R[${key}_cpu]=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
      R[${key}_digest]=$(digest)
      [ "${key%%_*}" = P3 ] && R[${key}_lines]="$(cat "$RUN/p3.jsonl" "$RUN/p3.psql" 2>/dev/null | wc -l) lines"
      rm -f "$RUN/p3.jsonl" "$RUN/p3.psql"
    fi
  done
  R[${key}_status]=ok
}

export BENCH_INPUT=$INPUT BENCH_DSN=$DSN BENCH_OUT=$RUN/p3.jsonl
for w in P1 P2 P3; do
  log "$w"
  if [ "$w" = P3 ]; then
    fresh_table P1
    psql_ -c "\\copy events FROM '$CSV' WITH (FORMAT csv)" && psql_ -c "VACUUM ANALYZE events" >/dev/null
  fi
  for tool in $TOOLS; do
    key=${w}_$tool
    case $w/$tool in
      */aetl) IN_FOR="" measure "$key" "$AETL" run -q --state "$RUN/$w.state" --from-start "$HERE/$(echo $w | tr P p).yaml" ;;
      P1/psql) IN_FOR="" measure "$key" psql -X -q -h 127.0.0.1 -p "$PGPORT" -U aetl -d postgres -c "\\copy events FROM '$CSV' WITH (FORMAT csv)" ;;
      P1/asyncpg) IN_FOR=$INPUT measure "$key" $PY "$HERE/py_asyncpg.py" copy "$DSN" ;;
      P2/asyncpg) IN_FOR=$INPUT measure "$key" $PY "$HERE/py_asyncpg.py" executemany "$DSN" ;;
      P3/psql) IN_FOR="" measure "$key" bash -c "psql -X -q -h 127.0.0.1 -p $PGPORT -U aetl -d postgres -c 'COPY (SELECT row_to_json(e) FROM events e) TO STDOUT' >'$RUN/p3.psql'" ;;
      *) continue ;;
    esac
    log "  $tool: ${R[${key}_el]:-} s ${R[${key}_status]}"
  done
done

# ---------------------------------------------------------------- report
echo
echo "postgres_bench: $(nproc) cores, $(uname -r), $N records ($IN_MB MiB JSONL), PostgreSQL $(psql_ -c 'SHOW server_version'), best of $REPEAT"
ROWF='%-3s %-8s %9s %10s %8s %8s  %s\n'
printf "$ROWF" wl tool "elapsed s" "rows/s" "RSS MB" "CPU s" "status / checks"
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
    fi
    printf "$ROWF" "$w" "$tool" "${R[${key}_el]:--}" \
      "$(awk -v n="$N" -v e="${R[${key}_el]:-}" 'BEGIN { if (e == "" || e == 0) print "-"; else printf "%.0f", n / e }')" \
      "$(awk -v k="${R[${key}_rss]:-}" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }')" \
      "${R[${key}_cpu]:--}" "${R[${key}_status]} ${check:+($check)}"
  done
done
ratio() { awk -v a="${R[$1]:-}" -v b="${R[$2]:-}" 'BEGIN { if (a == "" || b == "" || a == 0) print "-"; else printf "%.2f", b / a }'; }
echo
echo "  P1 aetl rows/s vs psql \\copy: $(ratio P1_aetl_el P1_psql_el)x (aim >= 0.90)"
echo "  P2 aetl rows/s vs asyncpg executemany: $(ratio P2_aetl_el P2_asyncpg_el)x (aim >= 2)"
echo "  P3 aetl rows/s vs psql COPY TO STDOUT: $(ratio P3_aetl_el P3_psql_el)x (aim >= 0.90)"
echo
echo "commands (input \$IN = $INPUT):"
echo "  P1 aetl:    BENCH_INPUT=\$IN BENCH_DSN=... aetl run --state p1.state --from-start bench/p1.yaml"
echo "  P1 psql:    psql -c \"\\copy events FROM '$CSV' WITH (FORMAT csv)\""
echo "  P1 asyncpg: python3 bench/py_asyncpg.py copy DSN <\$IN"
echo "  P2 aetl:    BENCH_INPUT=\$IN BENCH_DSN=... aetl run --state p2.state --from-start bench/p2.yaml"
echo "  P2 asyncpg: python3 bench/py_asyncpg.py executemany DSN <\$IN"
echo "  P3 aetl:    BENCH_DSN=... BENCH_OUT=out.jsonl aetl run --state p3.state --from-start bench/p3.yaml"
echo "  P3 psql:    psql -c 'COPY (SELECT row_to_json(e) FROM events e) TO STDOUT' >out.jsonl"
