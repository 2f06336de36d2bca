#!/usr/bin/env bash
# http_source_bench.sh - the `http` source (a paginated JSON API into JSON Lines)
# against a Python client doing the same pagination (bench/py_http_pages.py:
# http.client on one kept-alive connection, json, one line per record), on a
# private nginx serving the pages as static files on 127.0.0.1.
#
#   bench/http_source_bench.sh
#
# Workload: BENCH_PAGES pages (default 2000) of BENCH_PER records (default 100),
# each page naming the next in its `next` field: 200,000 records of ~120 bytes.
# The tools take turns (A B A B ...), BENCH_REPEAT times each (default 5); the
# table gives medians of elapsed time, CPU seconds and peak RSS, and the ratio of
# each median to aetl's. For humans, not CI: traffic goes to 127.0.0.1 only, every
# run has a timeout.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
PAGES=${BENCH_PAGES:-2000}
PER=${BENCH_PER:-100}
REPEAT=${BENCH_REPEAT:-5}
PY=/usr/bin/python3
log() { printf '%s\n' "$*" >&2; }

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { log "cannot install ${need[*]}"; exit 1; }
fi
[ -x "$AETL" ] || { log "no $AETL: build first (scripts/build.sh)"; exit 1; }

TMP=$(mktemp -d /tmp/aetl-http-source-bench.XXXXXX)
chmod 755 "$TMP"
NGINX_PID=""
cleanup() { [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

mkdir -p "$TMP/www/api" "$TMP/ngx/logs"
$PY - "$TMP/www/api" "$PAGES" "$PER" <<'PY'
import json, sys
root, pages, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for p in range(1, pages + 1):
    items = [{"id": (p - 1) * per + i, "name": f"item {(p - 1) * per + i}", "updated_at": "2026-12-07T10:00:00Z",
              "price": 12.5, "tags": ["a", "b"]} for i in range(1, per + 1)]
    doc = {"items": items, "next": f"page-{p + 1}.json" if p < pages else None}
    with open(f"{root}/page-{p}.json", "w") as f:
        json.dump(doc, f)
PY
N=$((PAGES * PER))

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/ngx/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  types { application/json json; }
  server { listen 127.0.0.1:$PORT; root $TMP/www; }
}
CONF
nginx -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" 2>"$TMP/ngx/start.err" || { cat "$TMP/ngx/start.err" >&2; exit 1; }
for _ in $(seq 50); do [ -s "$TMP/ngx/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$TMP/ngx/nginx.pid")
URL="http://127.0.0.1:$PORT/api/page-1.json"
log "nginx on 127.0.0.1:$PORT: $PAGES pages x $PER records ($N records)"

cat >"$TMP/pages.yaml" <<YAML
name: http-source-bench
source: {http: {url: '$URL', records: items, paginate: {next_url: next}}}
sink: {jsonl: {path: $TMP/out-aetl.jsonl}}
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
  if [ "$rc" -ne 0 ] || [ "$lines" -ne "$N" ]; then log "  $name run $rep: exit $rc, $lines lines: $(head -c 300 "$TMP/stderr")"; fi
  EL[$name]+="$el "
  CPU[$name]+="$(echo "$u + $s" | bc) "
  RSS[$name]+="$rss "
  log "  $name run $rep: ${el}s"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for rep in $(seq "$REPEAT"); do
  run_tool "aetl-http" "$rep" "$AETL" run -q --state "$TMP/state-a" "$TMP/pages.yaml"
  run_tool "python-http.client" "$rep" $PY "$HERE/py_http_pages.py" "$URL" "$TMP/out-py.jsonl"
done

printf '\n%s pages x %s records, medians of %s runs (A B A B)\n' "$PAGES" "$PER" "$REPEAT"
printf '%-20s %9s %9s %10s %12s\n' tool seconds CPU-s "peak MiB" "time vs aetl"
base=$(echo "${EL[aetl-http]}" | median)
for name in aetl-http python-http.client; do
  el=$(echo "${EL[$name]}" | median)
  cpu=$(echo "${CPU[$name]}" | median)
  rss=$(echo "${RSS[$name]}" | median)
  printf '%-20s %9.2f %9.2f %10.1f %11.2fx\n' "$name" "$el" "$cpu" "$(echo "$rss / 1024" | bc -l)" \
    "$(echo "$el / $base" | bc -l)"
done
