#!/usr/bin/env bash
# websocket_bench.sh - the websocket source against a Python websockets client on
# the same feed: BENCH_MESSAGES (default 1,000,000) small JSON messages
# ({"id":N,"sym":"ABC","px":101.25}) from tests/support/ws_test_server.py (raw
# frames written in chunks, as fast as the client takes them; then a close 1000),
# each turned into a JSON line with its receive time in a file.
#
#   bench/websocket_bench.sh
#
#   A: aetl run: websocket {on_close: end} -> jsonl (fsync'd per batch)
#   B: bench/py_ws_client.py (python3-websockets 10.4: json.loads, the time added,
#      json.dumps, one fsync at the end)
# The tools take turns (A B A B ...), BENCH_REPEAT times each (default 3), each
# run on a fresh feed of its own on the same server; the table gives medians of
# elapsed time, messages/s, CPU seconds and peak RSS, and A's messages/s over B's.
# The server shares the machine's cores with the client, so both are partly bound
# by it. For humans, not CI: 127.0.0.1 only, every run has a timeout.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
N=${BENCH_MESSAGES:-1000000}
REPEAT=${BENCH_REPEAT:-3}
PY=/usr/bin/python3
log() { printf '%s\n' "$*" >&2; }

$PY -c 'import websockets' 2>/dev/null || { log "needs python3-websockets (scripts/install-deps.sh test)"; exit 1; }
[ -x /usr/bin/time ] || { log "needs /usr/bin/time (apt-get install time)"; exit 1; }
[ -x "$AETL" ] || { log "no $AETL: build first (scripts/build.sh)"; exit 1; }

TMP=$(mktemp -d /tmp/aetl-ws-bench.XXXXXX)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

$PY "$ROOT/tests/support/ws_test_server.py" --port 0 --port-file "$TMP/port" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { log "the WebSocket test server did not start"; exit 1; }
BASE="ws://127.0.0.1:$(cat "$TMP/port")"
log "feed server on $BASE; $N messages per run, $REPEAT runs per tool, taking turns"

declare -A EL CPU RSS
run_tool() {  # run_tool NAME REP CMD...
  local name=$1 rep=$2; shift 2
  local tf="$TMP/time-$name-$rep"
  rm -f "$TMP/out.jsonl" "$TMP"/state-*
  /usr/bin/time -f '%e %M %U %S' -o "$tf" timeout -k 5 600 "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
  local rc=$?
  read -r el rss u s <"$tf" 2>/dev/null || { el=NaN; rss=0; u=0; s=0; }
  local lines
  lines=$(wc -l <"$TMP/out.jsonl" 2>/dev/null || echo 0)
  if [ "$rc" -ne 0 ] || [ "$lines" -ne "$N" ]; then
    log "  $name run $rep: exit $rc, $lines lines: $(head -c 300 "$TMP/stderr")"
    el=NaN
  fi
  EL[$name]+="$el "
  CPU[$name]+="$(echo "$u + $s" | bc) "
  RSS[$name]+="$rss "
  log "  $name run $rep: ${el}s, peak $((rss / 1024)) MiB"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for rep in $(seq "$REPEAT"); do
  cat >"$TMP/p.yaml" <<YAML
name: ws-bench
source:
  websocket: {url: "$BASE/aetl-$rep?n=$N&raw=1&close=1000", on_close: end, batch: 1000}
sink:
  jsonl: {path: $TMP/out.jsonl}
YAML
  run_tool "aetl-websocket" "$rep" "$AETL" run -q --state "$TMP/state-a" "$TMP/p.yaml"
  run_tool "python-websockets" "$rep" $PY "$HERE/py_ws_client.py" "$BASE/py-$rep?n=$N&raw=1&close=1000" "$TMP/out.jsonl" "$N"
done

printf '\n%s small JSON messages into JSON lines, medians of %s runs (A B A B)\n' "$N" "$REPEAT"
printf '%-18s %9s %12s %9s %10s %10s\n' tool seconds "messages/s" CPU-s "peak MiB" "msg/s vs B"
base_el=$(echo "${EL[python-websockets]}" | median)
for name in aetl-websocket python-websockets; do
  el=$(echo "${EL[$name]}" | median)
  cpu=$(echo "${CPU[$name]}" | median)
  rss=$(echo "${RSS[$name]}" | median)
  rate=$(echo "$N / $el" | bc -l 2>/dev/null || echo NaN)
  ratio=$(echo "$base_el / $el" | bc -l 2>/dev/null || echo NaN)
  printf '%-18s %9.2f %12.0f %9.2f %10.1f %9.2fx\n' "$name" "$el" "$rate" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$ratio"
done
