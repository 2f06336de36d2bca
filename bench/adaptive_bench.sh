#!/usr/bin/env bash
# adaptive_bench.sh - a server that takes N requests at once and answers 503
# beyond (tests/support/http_test_server.py's /limit/N): afetch -j auto against a
# fixed -j 4N, the hand-tuned -j N, and curl --parallel with the same -j 4N and
# retries (curl waits 1 s between its retries, the least it can; a run
# that times out counts 120 s).
#
#   bench/adaptive_bench.sh
#
# Workload: BENCH_URLS URLs (default 600) to /limit/N (N = BENCH_LIMIT, default
# 8), each answer taking 30 ms; every tool retries a 503 up to 10 times. Each
# tool runs BENCH_REPEAT times (default 3), the tools taking turns; the table
# gives medians of elapsed time, the 503s the server sent, the URLs that failed
# in the end, and peak RSS. For humans, not CI: traffic to 127.0.0.1 only, every
# run has a timeout.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AFETCH=${AFETCH:-$ROOT/build/afetch}
COUNT=${BENCH_URLS:-600}
N=${BENCH_LIMIT:-8}
REPEAT=${BENCH_REPEAT:-3}
PY=/usr/bin/python3
log() { printf '%s\n' "$*" >&2; }
[ -x "$AFETCH" ] || { log "no $AFETCH: build first (scripts/build.sh)"; exit 1; }
command -v curl >/dev/null && [ -x /usr/bin/time ] || { log "needs curl and /usr/bin/time (apt-get install curl time)"; exit 1; }

TMP=$(mktemp -d /tmp/aetl-adaptive-bench.XXXXXX)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
$PY "$ROOT/tests/support/http_test_server.py" --port 0 --port-file "$TMP/port" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$TMP/port")"
for i in $(seq "$COUNT"); do echo "$BASE/limit/$N/$i?ms=30"; done >"$TMP/urls.txt"
sed 's/^/url = "/; s/$/"/' "$TMP/urls.txt" >"$TMP/curl.cfg"
log "test server on $BASE: takes $N at once, 503 beyond; $COUNT URLs, each answer 30 ms"

stat_of() { curl -s "$BASE/__stats" | $PY -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
declare -A EL REJ FAIL RSS
run_tool() {  # run_tool NAME REP CMD...
  local name=$1 rep=$2; shift 2
  curl -s "$BASE/__reset" >/dev/null
  /usr/bin/time -f '%e %M' -o "$TMP/time" timeout -k 5 120 "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  local rc=$? el rss ok
  read -r el rss < <(tail -n 1 "$TMP/time") 2>/dev/null || { el=NaN; rss=0; }  # after "Command exited with..."
  [ "$rc" -eq 124 ] && el=120
  ok=$(stat_of limit_ok)
  EL[$name]+="$el "
  REJ[$name]+="$(stat_of limit_rejected) "
  FAIL[$name]+="$((COUNT - ok)) "
  RSS[$name]+="$rss "
  log "  $name run $rep: ${el}s, exit $rc, $ok of $COUNT answered 200"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

J=$((4 * N))
RETRY=(--retry 10 --retry-backoff 20ms..200ms)
for rep in $(seq "$REPEAT"); do
  run_tool "afetch -j auto" "$rep" "$AFETCH" -q -j auto "${RETRY[@]}" "$TMP/urls.txt"
  run_tool "afetch -j $J" "$rep" "$AFETCH" -q -j "$J" "${RETRY[@]}" "$TMP/urls.txt"
  run_tool "afetch -j $N" "$rep" "$AFETCH" -q -j "$N" "${RETRY[@]}" "$TMP/urls.txt"
  run_tool "curl -Z $J" "$rep" curl -s -Z --parallel-max "$J" --retry 10 --retry-delay 1 -o /dev/null -K "$TMP/curl.cfg"
done

printf '\n%s URLs, server takes %s at once (503 beyond), 10 retries each; medians of %s runs\n' "$COUNT" "$N" "$REPEAT"
printf '%-16s %9s %8s %8s %10s %10s\n' tool seconds 503s failed "peak MiB" "vs auto"
a=$(echo "${EL[afetch -j auto]}" | median)
for t in "afetch -j auto" "afetch -j $J" "afetch -j $N" "curl -Z $J"; do
  el=$(echo "${EL[$t]}" | median)
  printf '%-16s %9.2f %8s %8s %10.1f %9.2fx\n' "$t" "$el" "$(echo "${REJ[$t]}" | median)" \
    "$(echo "${FAIL[$t]}" | median)" "$(echo "$(echo "${RSS[$t]}" | median) / 1024" | bc -l)" "$(echo "$el / $a" | bc -l)"
done
