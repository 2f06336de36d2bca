#!/usr/bin/env bash
# gather_bench.sh - several HTTP calls per record: aetl's gather stage against the
# same pattern written by hand in Python (asyncio.gather on aiohttp) and against
# three fetch stages one after the other, on a private nginx on 127.0.0.1 whose
# answers each take BENCH_DELAY seconds.
#
#   bench/gather_bench.sh
#
# Workload: BENCH_RECORDS records (default 2000), three GETs each to
# /delay/{a,b,c}/ID, at most BENCH_J calls in flight (default 300). Ideal time:
# records x 3 x delay / J (2000 x 3 x 0.1 / 300 = 2.0 s). Each tool runs
# BENCH_REPEAT times (default 3), the tools taking turns; the table gives medians
# of elapsed time, CPU seconds and peak RSS, and the ratios to aetl gather.
# For humans, not CI: traffic goes to 127.0.0.1 only, every run has a timeout.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
N=${BENCH_RECORDS:-2000}
J=${BENCH_J:-300}
DELAY=${BENCH_DELAY:-0.1}
REPEAT=${BENCH_REPEAT:-3}
PY=/usr/bin/python3
ECHO_SO=/usr/lib/nginx/modules/ngx_http_echo_module.so
log() { printf '%s\n' "$*" >&2; }

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -f "$ECHO_SO" ] || need+=(libnginx-mod-http-echo)
$PY -c 'import aiohttp' 2>/dev/null || need+=(python3-aiohttp)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { log "cannot install ${need[*]}"; exit 1; }
fi
[ -x "$AETL" ] || { log "no $AETL: build first (scripts/build.sh)"; exit 1; }

TMP=$(mktemp -d /tmp/aetl-gather-bench.XXXXXX)
chmod 755 "$TMP"
NGINX_PID=""
cleanup() { [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/ngx/logs"
cat >"$TMP/ngx/nginx.conf" <<CONF
load_module $ECHO_SO;
worker_processes 2;
daemon on;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$PORT reuseport backlog=4096;
    location /delay/ { default_type application/json; echo_sleep $DELAY; echo '{"v":1}'; }
  }
}
CONF
nginx -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" 2>"$TMP/ngx/start.err" || { cat "$TMP/ngx/start.err" >&2; exit 1; }
for _ in $(seq 50); do [ -s "$TMP/ngx/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$TMP/ngx/nginx.pid")
BASE="http://127.0.0.1:$PORT"
log "nginx on $BASE (answers take ${DELAY}s); $N records x 3 calls, $J in flight"

$PY -c "
import json
with open('$TMP/in.jsonl','w') as f:
    for i in range($N): f.write(json.dumps({'id': i}) + '\n')"

cat >"$TMP/gather.yaml" <<YAML
source: {lines: {paths: [$TMP/in.jsonl]}}
stages:
  - gather:
      concurrency: $J
      calls:
        - {into: user, url: '$BASE/delay/a/{id}'}
        - {into: orders, url: '$BASE/delay/b/{id}'}
        - {into: stock, url: '$BASE/delay/c/{id}'}
sink: {jsonl: {path: $TMP/out-gather.jsonl}}
YAML
cat >"$TMP/chain.yaml" <<YAML
source: {lines: {paths: [$TMP/in.jsonl]}}
stages:
  - fetch: {url: '$BASE/delay/a/{id}', into: user, concurrency: $((J / 3))}
  - fetch: {url: '$BASE/delay/b/{id}', into: orders, concurrency: $((J / 3))}
  - fetch: {url: '$BASE/delay/c/{id}', into: stock, concurrency: $((J / 3))}
sink: {jsonl: {path: $TMP/out-chain.jsonl}}
YAML

declare -A EL CPU RSS
run_tool() {  # run_tool NAME REP CMD...
  local name=$1 rep=$2; shift 2
  local tf="$TMP/time-$name-$rep"
  rm -f "$TMP"/out-*.jsonl "$TMP"/state-*
  /usr/bin/time -f '%e %M %U %S' -o "$tf" timeout -k 5 300 "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null
  local rc=$?
  read -r el rss u s <"$tf" 2>/dev/null || { el=NaN; rss=0; u=0; s=0; }
  local lines
  lines=$(cat "$TMP"/out-*.jsonl 2>/dev/null | wc -l)
  [ "$rc" -ne 0 ] || [ "$lines" -ne "$N" ] && log "  $name run $rep: exit $rc, $lines lines: $(head -c 300 "$TMP/stderr")"
  EL[$name]+="$el "
  CPU[$name]+="$(echo "$u + $s" | bc) "
  RSS[$name]+="$rss "
  log "  $name run $rep: ${el}s"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for rep in $(seq "$REPEAT"); do
  run_tool "aetl-gather" "$rep" "$AETL" run -q --state "$TMP/state-g" "$TMP/gather.yaml"
  run_tool "python-asyncio" "$rep" $PY "$HERE/py_gather.py" "$TMP/in.jsonl" "$TMP/out-py.jsonl" --base "$BASE" -j "$J"
  run_tool "aetl-3-fetches" "$rep" "$AETL" run -q --state "$TMP/state-c" "$TMP/chain.yaml"
done

ideal=$(echo "$N * 3 * $DELAY / $J" | bc -l)
printf '\n%s records x 3 calls of %ss, %s in flight (ideal %.2f s), medians of %s runs\n' "$N" "$DELAY" "$J" "$ideal" "$REPEAT"
printf '%-16s %9s %9s %10s %12s\n' tool seconds CPU-s "peak MiB" "vs gather"
g=$(echo "${EL[aetl-gather]}" | median)
for t in aetl-gather python-asyncio aetl-3-fetches; do
  el=$(echo "${EL[$t]}" | median); cpu=$(echo "${CPU[$t]}" | median); rss=$(echo "${RSS[$t]}" | median)
  printf '%-16s %9.2f %9.2f %10.1f %11.2fx\n' "$t" "$el" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$(echo "$el / $g" | bc -l)"
done
