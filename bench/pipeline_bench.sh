#!/usr/bin/env bash
# pipeline_bench.sh - compare `aetl run` pipelines with jq, miller, python3 and
# sqlite3 .import (and a hand-written simdjson program as the ceiling) on one
# generated JSONL file.
#
#   bench/pipeline_bench.sh                    # 1 GiB input, everything (several minutes)
#   BENCH_MB=50 bench/pipeline_bench.sh        # quick look
#   BENCH_TOOLS="simdjson jq mlr python sqlite3" bench/pipeline_bench.sh   # peers only
#
# Environment:
#   AETL=path                  aetl binary (default: build/aetl beside bench/)
#   BENCH_MB=1024              input size in MiB (generated once, then reused)
#   BENCH_DIR=/tmp/aetl-bench  work dir: cached input, CSV, simdjson_baseline, runs
#   BENCH_TIMEOUT=600          seconds allowed to each tool run
#   BENCH_REPEAT=3             runs of each tool per workload, alternated (A B A B ...)
#   BENCH_TOOLS="aetl simdjson jq mlr python sqlite3"   which tools to run
#   BENCH_WORKLOADS="E1 E2"                              which workloads to run
#   BENCH_SQLITE_JOURNAL=WAL   journal_mode of the sqlite3 and python rows of E2
#                              (synchronous=NORMAL with WAL, as aetl's state db)
#   BENCH_PYTHON=/usr/bin/python3
#   BENCH_NO_INSTALL=1         do not apt-get install missing peers
#   BENCH_KEEP=1               keep the outputs and databases of the last run
#
# Input: bench/gen_events.py writes BENCH_MB MiB of deterministic access-log
# records (~290 bytes each, ~15% with status >= 400, some \" and \u00e9 escapes)
# to $BENCH_DIR/events-<MB>mb.jsonl, reused while the size and the generator are
# unchanged. It is read once (cat >/dev/null) before every timed run, so every
# tool reads from the page cache.
#
# Workloads:
#   E1  keep status >= 400, project id, url, status, country (= user.country) to
#       JSONL in input order.
#         aetl      aetl run --state S --from-start bench/e1.yaml   (BENCH_INPUT, BENCH_OUT)
#         simdjson  bench/simdjson_baseline.cpp (simdjson On-Demand, the ceiling)
#         jq        jq -c 'select(.status >= 400) | {id, url, status, country: .user.country}'
#         mlr       mlr --ijsonl --ojsonl filter then put then cut
#         python    bench/py_filter.py (json.loads / json.dumps loop)
#       Checks: every output has as many lines as the generator counted; the first
#       1000 lines, normalised with `jq -c .`, equal jq's for the head of the
#       input; aetl's whole output, normalised, equals simdjson_baseline's.
#   E2  every record, the same four columns, into a fresh SQLite table "events"
#       in a fresh database file.
#         aetl      aetl run --state S --from-start bench/e2.yaml   (BENCH_INPUT, BENCH_DB)
#         sqlite3   .import --csv of a CSV prepared beforehand (untimed) by
#                   simdjson_baseline --csv, into a table created first
#         python    bench/py_sqlite.py (json.loads, one executemany, one transaction)
#       Checks: SELECT count(*) of every database, and a digest of its rows
#       (ORDER BY id) against the sqlite3 .import table's.
#
# For each workload the tools run in rounds, one run of each per round
# (aetl simdjson jq ... aetl simdjson jq ...), BENCH_REPEAT rounds, so a slow
# minute on the shared machine hits all of them. Rows give the median elapsed
# time (MB/s and rec/s from it), the fastest and slowest run, and the median CPU
# and peak RSS; time/aetl, RSS/aetl and the summary lines under each workload
# (simdjson ceiling, speed-up over jq, E2 rows/s against sqlite3 .import) are
# ratios of medians. The checks run after every run (E1's aetl-against-simdjson
# comparison after every round in which both ran); a tool whose run fails is not
# run again in that workload, and its row says "failed".
#
# For humans, not CI: the exit code is 0 even when a tool fails (its row says
# "failed"). Figures are noisy on a small, shared machine.

set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
MB=${BENCH_MB:-1024}
W=${BENCH_DIR:-/tmp/aetl-bench}
TOOL_TIMEOUT=${BENCH_TIMEOUT:-600}
REPEAT=${BENCH_REPEAT:-3}
TOOLS=${BENCH_TOOLS:-"aetl simdjson jq mlr python sqlite3"}
WORKLOADS=${BENCH_WORKLOADS:-"E1 E2"}
JOURNAL=${BENCH_SQLITE_JOURNAL:-WAL}
PY=${BENCH_PYTHON:-/usr/bin/python3}
SAMPLE=1000

E1_TOOLS="aetl simdjson jq mlr python"
E2_TOOLS="aetl sqlite3 python"
JQ_E1='select(.status >= 400) | {id, url, status, country: .user.country}'
MLR_E1=(mlr --ijsonl --ojsonl filter '$status >= 400' 'then' put '$country = $user["country"]'
        'then' cut -o -f 'id,url,status,country')
CREATE_SQL='CREATE TABLE events (id INTEGER, url TEXT, status INTEGER, country TEXT);'

log() { printf '%s\n' "$*" >&2; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }   # has WORD "LIST"

case $MB in ''|*[!0-9.]*) log "BENCH_MB must be a number (MiB), not '$MB'"; exit 0 ;; esac
case $REPEAT in ''|*[!0-9]*|0) REPEAT=3 ;; esac
case $JOURNAL in WAL|wal|DELETE|delete|TRUNCATE|truncate|PERSIST|persist|MEMORY|memory|OFF|off) ;;
  *) log "BENCH_SQLITE_JOURNAL=$JOURNAL: not a journal mode, using WAL"; JOURNAL=WAL ;; esac

# ---------------------------------------------------------------- peers
install_peers() {
  local need=()
  command -v jq >/dev/null 2>&1 || need+=(jq)
  command -v mlr >/dev/null 2>&1 || need+=(miller)
  command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
  [ -x "$PY" ] || need+=(python3)
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  [ -f /usr/include/simdjson.h ] || need+=(libsimdjson-dev)
  [ -x /usr/bin/time ] || need+=(time)
  command -v timeout >/dev/null 2>&1 || need+=(coreutils)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ -n "${BENCH_NO_INSTALL:-}" ]; then
    log "missing (not installing, BENCH_NO_INSTALL set): ${need[*]}"; return 0
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  log "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  if ! $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; then
    local p
    for p in "${need[@]}"; do
      $sudo apt-get install -y -qq "$p" >/dev/null 2>&1 || log "could not install $p"
    done
  fi
}

install_peers
for t in /usr/bin/time timeout; do
  command -v "$t" >/dev/null 2>&1 || { log "required tool missing: $t"; exit 0; }
done
[ -x "$PY" ] || { log "no python3 at $PY (it writes the input)"; exit 0; }

mkdir -p "$W" || { log "cannot create $W"; exit 0; }
RUN=$(mktemp -d "$W/run.XXXXXX") || exit 0
cleanup() {
  if [ -n "${BENCH_KEEP:-}" ]; then log "outputs kept in $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A R     # R[<workload>_<tool>_<field>]
NOTES=()

# ---------------------------------------------------------------- input
INPUT=$W/events-${MB}mb.jsonl
META=$INPUT.meta
GEN_SUM=$(sha1sum "$HERE/gen_events.py" | cut -c1-40)
meta() { awk -v k="$1" '$1 == k { print $2 }' "$META" 2>/dev/null; }
if [ -f "$INPUT" ] && [ "$(meta gen)" = "$GEN_SUM" ] && [ "$(meta mb)" = "$MB" ] &&
   [ "$(meta bytes)" = "$(stat -c %s "$INPUT")" ]; then
  log "input: reusing $INPUT"
else
  rm -f "$INPUT" "$META" "$W/events-${MB}mb.csv"
  log "input: generating $MB MiB into $INPUT"
  t0=$(date +%s.%N)
  line=$("$PY" "$HERE/gen_events.py" --mb "$MB" --out "$INPUT") ||
    { log "gen_events.py failed"; exit 0; }
  t1=$(date +%s.%N)
  # "records N errors M bytes B"
  set -- $line
  printf 'mb %s\ngen %s\nrecords %s\nerrors %s\nbytes %s\n' "$MB" "$GEN_SUM" "$2" "$4" "$6" >"$META"
  log "input: $2 records, $4 with status >= 400, $6 bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
fi
RECORDS=$(meta records); ERRORS=$(meta errors); BYTES=$(meta bytes)
IN_MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')

# ---------------------------------------------------------------- simdjson_baseline
SB=$W/simdjson_baseline
SB_FLAGS=""
build_baseline() {
  if [ -x "$SB" ] && [ "$SB" -nt "$HERE/simdjson_baseline.cpp" ] && [ -s "$SB.flags" ]; then
    SB_FLAGS=$(cat "$SB.flags"); return 0
  fi
  rm -f "$SB" "$SB.flags"
  local f
  for f in "-O3 -march=native" "-O2"; do
    # shellcheck disable=SC2086
    if g++ $f -std=c++17 -o "$SB" "$HERE/simdjson_baseline.cpp" -lsimdjson 2>"$RUN/sb_build.err"; then
      SB_FLAGS=$f; echo "$f" >"$SB.flags"; return 0
    fi
  done
  NOTES+=("simdjson_baseline did not compile: $(head -n 3 "$RUN/sb_build.err" | tr '\n' ' ' | cut -c1-300)")
  return 1
}
SB_OK=""
if { has E1 "$WORKLOADS" && has simdjson "$TOOLS"; } || { has E2 "$WORKLOADS" && has sqlite3 "$TOOLS"; } ||
   { has E1 "$WORKLOADS" && has aetl "$TOOLS"; }; then
  build_baseline && SB_OK=1
fi

# ---------------------------------------------------------------- aetl
# Run a private copy: the build tree may be relinked while we run
# (bounded retry: a copy taken mid-link does not run).
AETL_SRC=$AETL
AETL_OK=""
AETL_DESC="not run (not in BENCH_TOOLS)"
if has aetl "$TOOLS"; then
  AETL_DESC="missing ($AETL_SRC)"
  if [ -x "$AETL_SRC" ]; then
    for _ in $(seq 1 15); do
      cp "$AETL_SRC" "$RUN/aetl" 2>/dev/null && "$RUN/aetl" --version >/dev/null 2>&1 && { AETL_OK=1; break; }
      sleep 2
    done
    if [ -n "$AETL_OK" ]; then
      AETL=$RUN/aetl
      AETL_DESC="$("$AETL" --version 2>/dev/null | head -n 1) ($AETL_SRC, built $(date -r "$(readlink -f "$AETL_SRC")" '+%F %T' 2>/dev/null))"
    else
      AETL_DESC="does not run ($AETL_SRC)"
    fi
  fi
fi

# ---------------------------------------------------------------- measuring
warm() { cat "$INPUT" >/dev/null; }

# measure STDIN STDOUT STDERR TIMEOUT CMD... -> sets EL RSS CPU RC
measure() {
  local in=$1 out=$2 err=$3 to=$4; shift 4
  local tf=$RUN/time.out u s
  rm -f "$tf"
  /usr/bin/time -f '%e %M %U %S' -o "$tf" timeout -k 10 "$to" "$@" <"$in" >"$out" 2>"$err"
  RC=$?
  EL=""; RSS=""; CPU=""
  # GNU time reports the child's exit status; timeout gives 124/137 when it fires
  [ -s "$tf" ] && read -r EL RSS u s < <(tail -n 1 "$tf") &&
    CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
}

rm_db() { rm -f "$1" "$1-wal" "$1-shm" "$1-journal"; }

# set_cmd WORKLOAD TOOL OUT -> CMD (array), CMD_IN (stdin), CMD_OUT (stdout file)
set_cmd() {
  local w=$1 tool=$2 out=$3
  CMD_IN=/dev/null; CMD_OUT=$out
  case $w/$tool in
    E1/aetl)
      CMD_OUT=$RUN/$w.aetl.stdout
      CMD=(env "BENCH_INPUT=$INPUT" "BENCH_OUT=$out" "$AETL" run --state "$RUN/e1.state" --from-start "$HERE/e1.yaml") ;;
    E1/simdjson) CMD=("$SB" "$INPUT") ;;
    E1/jq) CMD=(jq -c "$JQ_E1" "$INPUT") ;;
    E1/mlr) CMD=("${MLR_E1[@]}" "$INPUT") ;;
    E1/python) CMD=("$PY" "$HERE/py_filter.py"); CMD_IN=$INPUT ;;
    E2/aetl)
      CMD_OUT=$RUN/$w.aetl.stdout
      CMD=(env "BENCH_INPUT=$INPUT" "BENCH_DB=$out" "$AETL" run --state "$RUN/e2.state" --from-start "$HERE/e2.yaml") ;;
    E2/sqlite3)
      CMD_OUT=$RUN/$w.sqlite3.stdout
      CMD=(sqlite3 -batch -bail "$out" "PRAGMA journal_mode=$JOURNAL;" 'PRAGMA synchronous=NORMAL;'
           "$CREATE_SQL" ".import --csv $CSV events") ;;
    E2/python)
      CMD_OUT=$RUN/$w.python.stdout
      CMD=("$PY" "$HERE/py_sqlite.py" "$out" events); CMD_IN=$INPUT ;;
  esac
}

# E1 checks: line count, and the first $SAMPLE lines normalised against jq's
REF_SAMPLE=$RUN/E1.ref_sample
e1_check() {  # OUT -> CHECK text; returns 1 when something is off
  local out=$1 lines bad=0
  lines=$(wc -l <"$out")
  R[${KEY}_lines]=$lines
  if [ "$lines" = "$ERRORS" ]; then CHECK="$lines lines ok"
  else CHECK="WRONG: $lines lines, expected $ERRORS"; bad=1; fi
  if [ -s "$REF_SAMPLE" ]; then
    if head -n "$SAMPLE" "$out" | jq -c . 2>/dev/null | cmp -s - "$REF_SAMPLE"; then
      CHECK="$CHECK, first $SAMPLE = jq's"
    else
      CHECK="$CHECK, first $SAMPLE DIFFER from jq's (normalised)"; bad=1
      NOTES+=("$TOOL E1: first differing line (normalised) vs jq: $(head -n "$SAMPLE" "$out" | jq -c . 2>&1 |
        diff - "$REF_SAMPLE" | head -n 4 | tr '\n' ' ' | cut -c1-300)")
    fi
  fi
  return $bad
}

# E2 checks: count(*), and a digest of the rows against the sqlite3 .import table's
DIGEST_SQL='SELECT id, url, status, country, typeof(id), typeof(status) FROM events ORDER BY id;'
e2_check() {  # DB -> CHECK text
  local db=$1 n dig bad=0
  n=$(sqlite3 -batch "$db" 'SELECT count(*) FROM events;' 2>"$RUN/count.err")
  R[${KEY}_rows]=$n
  if [ "$n" = "$RECORDS" ]; then CHECK="$n rows ok"
  else CHECK="WRONG: ${n:-no} rows ($(head -c 120 "$RUN/count.err")), expected $RECORDS"; bad=1; fi
  [ -n "$n" ] || return 1
  dig=$(sqlite3 -batch "$db" "$DIGEST_SQL" 2>/dev/null | md5sum | cut -c1-32)
  # the first run's digest is the tool's; a later run's rows must equal them
  if [ -z "${R[${KEY}_digest]:-}" ]; then R[${KEY}_digest]=$dig
  elif [ "$dig" != "${R[${KEY}_digest]}" ]; then CHECK="$CHECK, rows DIFFER from its first run's"; bad=1; fi
  return $bad
}

median() {  # numbers (space-separated) -> their median ("" if none)
  # shellcheck disable=SC2086  # split the list into one number a line
  printf '%s\n' $1 | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run_one WORKLOAD TOOL ROUND: one timed run, then its checks. Results:
# R[<workload>_<tool>_<field>]; els, cpus, rsss collect one value per ok run
# (space-separated); a failed run sets status (and el_f, rss_f, cpu_f) and the
# tool is not run again in this workload.
run_one() {
  local w=$1 tool=$2 rep=$3 out st=""
  KEY=${w}_$tool; TOOL=$tool
  case $w in E1) out=$RUN/$KEY.jsonl ;; E2) out=$RUN/$KEY.db ;; esac
  log "  $w / $tool / run $rep"
  rm -f "$out"; rm_db "$out"; rm -rf "$RUN/e1.state" "$RUN/e2.state"
  rm_db "$RUN/e1.state"; rm_db "$RUN/e2.state"
  set_cmd "$w" "$tool" "$out"
  sync
  warm
  measure "$CMD_IN" "$CMD_OUT" "$RUN/$KEY.err" "$TOOL_TIMEOUT" "${CMD[@]}"
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then st="failed (timeout ${TOOL_TIMEOUT}s)"
  elif [ "$RC" != 0 ] || [ -z "$EL" ]; then st="failed (exit $RC)"; fi
  if [ -n "$st" ]; then
    [ "$REPEAT" -gt 1 ] && st="$st in run $rep"
    R[${KEY}_status]=$st; R[${KEY}_el_f]=$EL; R[${KEY}_rss_f]=$RSS; R[${KEY}_cpu_f]=$CPU
    local e=$RUN/$KEY.err
    [ -s "$e" ] || e=$CMD_OUT
    [ -s "$e" ] && NOTES+=("$tool $w: $st: $(head -n 3 "$e" | tr '\n' ' ' | cut -c1-300)")
    return
  fi
  R[${KEY}_els]="${R[${KEY}_els]:-} $EL"
  R[${KEY}_rsss]="${R[${KEY}_rsss]:-} $RSS"
  R[${KEY}_cpus]="${R[${KEY}_cpus]:-} $CPU"
  R[${KEY}_round]=$rep
  R[${KEY}_status]=ok
  CHECK=""
  local bad=0
  case $w in
    E1) e1_check "$out" || bad=1 ;;
    E2) e2_check "$out" || bad=1 ;;
  esac
  # the check text of the last run, or of the first run whose checks failed
  if [ "$bad" = 1 ]; then
    if [ -z "${R[${KEY}_bad]:-}" ]; then
      R[${KEY}_bad]=1; R[${KEY}_check]=$CHECK
      [ "$REPEAT" -gt 1 ] && R[${KEY}_check]="$CHECK (run $rep)"
    fi
  elif [ -z "${R[${KEY}_bad]:-}" ]; then
    R[${KEY}_check]=$CHECK
  fi
  [ "$w" = E2 ] && [ -z "${BENCH_KEEP:-}" ] && rm_db "$out"   # its digest is taken
}

# E1, after a round in which aetl and simdjson_baseline both ran: their whole
# outputs, normalised, hold the same records in the same order.
e1_compare() {  # ROUND
  local rep=$1
  [ "${R[E1_aetl_round]:-}" = "$rep" ] && [ "${R[E1_simdjson_round]:-}" = "$rep" ] || return 0
  R[E1_cmp_rounds]=$(( ${R[E1_cmp_rounds]:-0} + 1 ))
  if jq -c . "$RUN/E1_aetl.jsonl" >"$RUN/a.norm" 2>/dev/null &&
     jq -c . "$RUN/E1_simdjson.jsonl" >"$RUN/s.norm" 2>/dev/null && cmp -s "$RUN/a.norm" "$RUN/s.norm"; then
    :
  elif [ -z "${R[E1_cmp_bad]:-}" ]; then
    R[E1_cmp_bad]="DIFFERS from simdjson's in run $rep (normalised: $(cmp "$RUN/a.norm" "$RUN/s.norm" 2>&1 | head -n 1 | sed 's/.* differ: //; s/.*EOF on [^ ]*\/\(.\)\.norm.*/EOF on \1/' | cut -c1-60))"
  fi
  rm -f "$RUN/a.norm" "$RUN/s.norm"
}

# ---------------------------------------------------------------- run
log "input: $INPUT ($IN_MB MiB, $RECORDS records, $ERRORS with status >= 400)"
for w in $WORKLOADS; do
  case $w in
    E1) wtools=$E1_TOOLS ;;
    E2) wtools=$E2_TOOLS ;;
    *) log "unknown workload $w (E1, E2)"; continue ;;
  esac
  log "$w"
  if [ "$w" = E1 ] && command -v jq >/dev/null 2>&1; then
    # reference for the sample check: jq on the head of the input
    head -n $((SAMPLE * 20)) "$INPUT" | jq -c "$JQ_E1" | head -n "$SAMPLE" >"$REF_SAMPLE"
  fi
  if [ "$w" = E2 ] && has sqlite3 "$TOOLS"; then
    CSV=$W/events-${MB}mb.csv
    if [ -s "$CSV" ] && [ "$CSV" -nt "$INPUT" ] && [ "$(wc -l <"$CSV")" = "$RECORDS" ]; then
      CSV_HOW="reused $CSV"
    else
      t0=$(date +%s.%N)
      rm -f "$CSV"
      if [ -n "$SB_OK" ] && "$SB" --csv "$INPUT" >"$CSV.tmp" 2>"$RUN/csv.err"; then
        CSV_HOW="simdjson_baseline --csv"
      else
        CSV_HOW="python csv module (simdjson_baseline unavailable)"
        "$PY" -c '
import csv, json, sys
w = csv.writer(sys.stdout, lineterminator="\n")
for line in sys.stdin.buffer:
    if line.isspace(): continue
    r = json.loads(line); u = r.get("user") or {}
    w.writerow([r.get("id"), r.get("url"), r.get("status"), u.get("country")])
' <"$INPUT" >"$CSV.tmp"
      fi
      mv "$CSV.tmp" "$CSV"
      t1=$(date +%s.%N)
      CSV_HOW="$CSV_HOW in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
    fi
    R[E2_csv_mb]=$(awk -v b="$(stat -c %s "$CSV")" 'BEGIN { printf "%.1f", b / 1048576 }')
  fi
  runnable=""
  for tool in $TOOLS; do
    has "$tool" "$wtools" || continue
    KEY=${w}_$tool
    case $tool in
      aetl) [ -n "$AETL_OK" ] || { R[${KEY}_status]="failed (aetl $AETL_DESC)"; continue; } ;;
      simdjson) [ -n "$SB_OK" ] || { R[${KEY}_status]="failed (did not compile)"; continue; } ;;
      python) ;;
      *) command -v "$tool" >/dev/null 2>&1 || { R[${KEY}_status]="failed (not installed)"; continue; } ;;
    esac
    runnable="$runnable $tool"
  done
  # rounds: every tool once per round, BENCH_REPEAT rounds (A B C A B C ...)
  for rep in $(seq 1 "$REPEAT"); do
    for tool in $runnable; do
      [ "${R[${w}_${tool}_status]:-ok}" = ok ] || continue   # failed before: not run again
      run_one "$w" "$tool" "$rep"
    done
    [ "$w" = E1 ] && e1_compare "$rep"
  done
  if [ "$w" = E1 ] && [ -n "${R[E1_cmp_rounds]:-}" ]; then
    if [ -n "${R[E1_cmp_bad]:-}" ]; then
      R[E1_aetl_check]="${R[E1_aetl_check]}, ${R[E1_cmp_bad]}"; R[E1_aetl_bad]=1
    else
      R[E1_aetl_check]="${R[E1_aetl_check]}, all = simdjson's"
      [ "${R[E1_cmp_rounds]}" -gt 1 ] && R[E1_aetl_check]="${R[E1_aetl_check]} (${R[E1_cmp_rounds]} runs)"
    fi
  fi
  if [ "$w" = E2 ]; then
    ref=""; reft=""
    for t in sqlite3 python aetl; do
      [ -n "${R[E2_${t}_digest]:-}" ] && { ref=${R[E2_${t}_digest]}; reft=$t; break; }
    done
    for t in $E2_TOOLS; do
      d=${R[E2_${t}_digest]:-}
      [ -n "$d" ] && [ "$t" != "$reft" ] || continue
      if [ "$d" = "$ref" ]; then R[E2_${t}_check]="${R[E2_${t}_check]}, rows = $reft's"
      else R[E2_${t}_check]="${R[E2_${t}_check]}, rows DIFFER from $reft's"; R[E2_${t}_bad]=1; fi
    done
  fi
  [ -z "${BENCH_KEEP:-}" ] && rm -f "$RUN"/E1_*.jsonl
done

# ---------------------------------------------------------------- report
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "") print "-"; else printf f, v }'; }
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf f, a / b }'; }
minmax() {  # ELAPSED-LIST -> "lo-hi" seconds over the runs
  # shellcheck disable=SC2086  # split the list into one number a line
  printf '%s\n' $1 | awk 'NF { if (lo == "" || $1 < lo) lo = $1; if (hi == "" || $1 > hi) hi = $1 }
    END { if (lo == "") print "-"; else printf "%.2f-%.2f", lo, hi }'
}
# med WORKLOAD_TOOL FIELD -> the median of its ok runs ("" unless its status is ok)
med() { [ "${R[${1}_status]:-}" = ok ] && median "${R[${1}_${2}s]:-}"; }

echo
echo "pipeline_bench: $(nproc) cores, $(uname -r), input $IN_MB MiB, $RECORDS records ($ERRORS with status >= 400)"
echo "aetl $AETL_DESC"
echo "jq $(jq --version 2>/dev/null | sed 's/^jq-//')   $(mlr --version 2>/dev/null)   sqlite3 $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)   python $("$PY" -c 'import sys; print(sys.version.split()[0])')   simdjson $(dpkg-query -W -f '${Version}' libsimdjson-dev 2>/dev/null) (g++ ${SB_FLAGS:-?})"
echo "Each tool ran $REPEAT time(s) per workload, the tools taking turns; elapsed, RSS and CPU are medians,"
echo "MB/s and rec/s = input size / median elapsed, 'runs s' the fastest and slowest run's elapsed."
echo "MB = MiB. CPU s: user+sys. time/aetl > 1: the tool took longer than aetl (ratios of medians)."
echo
ROWF='%-3s %-9s %9s %8s %10s %13s %8s %8s %10s %9s  %s\n'
HDR=$(printf "$ROWF" wl tool "elapsed s" "MB/s" "rec/s" "runs s" "RSS MB" "CPU s" "time/aetl" "RSS/aetl" "status / checks")
echo "$HDR"
echo "$HDR" | sed 's/./-/g'
for w in $WORKLOADS; do
  case $w in
    E1) wtools=$E1_TOOLS; echo "# E1: status >= 400 -> {id, url, status, country: user.country} as JSONL" ;;
    E2) wtools=$E2_TOOLS; echo "# E2: all records -> id, url, status, country into a fresh SQLite table (journal_mode=$JOURNAL, synchronous=NORMAL for the peers)" ;;
    *) continue ;;
  esac
  a_el=$(med "${w}_aetl" el); a_rss=$(med "${w}_aetl" rss)
  for tool in $TOOLS; do
    has "$tool" "$wtools" || continue
    k=${w}_$tool
    st=${R[${k}_status]:-"not run"}
    name=$tool
    [ "$tool" = python ] && name=python3
    if [ "$st" != ok ]; then
      # the figures of the failed run
      printf "$ROWF" "$w" "$name" "$(fmt "${R[${k}_el_f]:-}" '%.2f')" - - - "$(div "${R[${k}_rss_f]:-}" 1024 '%.1f')" \
        "$(fmt "${R[${k}_cpu_f]:-}" '%.2f')" - - "$st"
      continue
    fi
    el=$(med "$k" el); rss=$(med "$k" rss); cpu=$(med "$k" cpu)
    printf "$ROWF" "$w" "$name" "$(fmt "$el" '%.2f')" "$(div "$IN_MB" "$el" '%.1f')" \
      "$(div "$RECORDS" "$el" '%.0f')" "$(minmax "${R[${k}_els]:-}")" "$(div "$rss" 1024 '%.1f')" "$(fmt "$cpu" '%.2f')" \
      "$(div "$el" "$a_el" '%.2f')" "$(div "$rss" "$a_rss" '%.2f')" \
      "$([ -n "${R[${k}_bad]:-}" ] && echo "WRONG OUTPUT" || echo ok): ${R[${k}_check]:-}"
  done
  if [ "$w" = E1 ]; then
    s_el=$(med E1_simdjson el); j_el=$(med E1_jq el)
    [ -z "$a_el" ] && echo "  (aetl did not run successfully: no aetl figures)"
    echo "  aetl as % of the simdjson ceiling (simdjson time / aetl time): $(div "$(awk -v s="$s_el" 'BEGIN { if (s != "") print s * 100 }')" "$a_el" '%.1f%%')"
    echo "  aetl speed-up over jq (jq time / aetl time): $(div "$j_el" "$a_el" '%.1fx')"
  fi
  if [ "$w" = E2 ]; then
    a_rows=""; s_rows=""
    [ -n "$a_el" ] && a_rows=$(div "${R[E2_aetl_rows]:-}" "$a_el" '%.0f')
    [ "${R[E2_sqlite3_status]:-}" = ok ] && s_rows=$(div "${R[E2_sqlite3_rows]:-}" "$(med E2_sqlite3 el)" '%.0f')
    [ "$s_rows" = - ] && s_rows=""
    [ "$a_rows" = - ] && a_rows=""
    [ -z "$a_el" ] && echo "  (aetl did not run successfully: no aetl figures)"
    echo "  rows/s (medians): aetl $(fmt "$a_rows" '%.0f') vs sqlite3 .import $(fmt "$s_rows" '%.0f') (aetl/.import: $(div "$a_rows" "$s_rows" '%.2f'))"
    has sqlite3 "$TOOLS" && echo "  sqlite3 .import reads a ${R[E2_csv_mb]:-?} MiB CSV prepared beforehand, untimed: ${CSV_HOW:-?}; its time is the import alone"
  fi
done
if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "notes:"
  printf '  %s\n' "${NOTES[@]}"
fi
echo
echo "commands (input \$IN = $INPUT):"
has E1 "$WORKLOADS" && {
  echo "  E1 aetl:     BENCH_INPUT=\$IN BENCH_OUT=out.jsonl aetl run --state e1.state --from-start bench/e1.yaml"
  echo "  E1 simdjson: simdjson_baseline \$IN >out.jsonl"
  echo "  E1 jq:       jq -c '$JQ_E1' \$IN >out.jsonl"
  echo "  E1 mlr:      ${MLR_E1[*]:0:4} '${MLR_E1[4]}' then put '${MLR_E1[7]}' then cut -o -f id,url,status,country \$IN >out.jsonl"
  echo "  E1 python3:  python3 bench/py_filter.py <\$IN >out.jsonl"
}
has E2 "$WORKLOADS" && {
  echo "  E2 aetl:     BENCH_INPUT=\$IN BENCH_DB=out.db aetl run --state e2.state --from-start bench/e2.yaml"
  echo "  E2 sqlite3:  sqlite3 -batch -bail out.db 'PRAGMA journal_mode=$JOURNAL;' 'PRAGMA synchronous=NORMAL;' '$CREATE_SQL' '.import --csv \$CSV events'"
  echo "  E2 python3:  python3 bench/py_sqlite.py out.db events <\$IN"
}
exit 0
