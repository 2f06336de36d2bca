#!/usr/bin/env bash
# fetch_bench.sh - compare afetch with curl --parallel, wget2, aria2c and
# python3-aiohttp (and wrk as a ceiling) against a private nginx on 127.0.0.1.
#
#   bench/fetch_bench.sh            # everything (a few minutes)
#
# Environment:
#   AFETCH=path                 afetch binary (default: build/afetch beside bench/)
#   BENCH_TIMEOUT=300           seconds allowed to each tool run
#   BENCH_SKIP_MILLION=1        skip the 1,000,000-URL peak-RSS run of afetch
#   BENCH_MILLION_TIMEOUT=1200  seconds allowed to that run
#   BENCH_TOOLS="afetch curl wget2 aria2c aiohttp"   which tools to run
#   BENCH_WORKLOADS="F1 F1save F2 F2save F3"         which workloads to run
#   BENCH_NGINX_WORKERS="1 2"   nginx worker_processes settings, one block of rows each
#   BENCH_REPEAT=3              runs of each tool per workload, alternated (A B A B ...)
#   BENCH_NO_INSTALL=1          do not apt-get install missing peers
#
# Workloads (every tool gets the same URL list):
#   F1      20,000 x 1 KiB, concurrency 64, bodies discarded (afetch: result lines to stdout)
#   F1save  the same, bodies saved to a directory on disk (afetch -o DIR; curl and
#           wget2 one file per URL in one directory)
#   F2      100 x 10 MiB, concurrency 8, bodies discarded
#   F2save  100 x 10 MiB, concurrency 8, bodies saved to a directory on disk
#   F3      5,000 responses delayed 200 ms each, concurrency 500 (ideal 2.0 s)
# plus wrk -c 64 -t 1 -d 5s on one small URL (the F1 ceiling, requests/s only).
#
# nginx is started once per BENCH_NGINX_WORKERS value; for each workload every tool
# runs BENCH_REPEAT times, the tools taking turns (afetch curl ... afetch curl ...),
# so a slow minute on the shared machine hits all of them. Rows give the median
# elapsed time (req/s from it) and the median CPU and RSS; "vs afetch" lines give
# afetch's req/s over each peer's, from the medians of the same run.
#
# Traffic goes to 127.0.0.1 only; every run has a timeout. For humans, not CI:
# the exit code is 0 even when a peer fails (its row says "failed").
# Figures are noisy on a small, shared machine: nginx and the client share the
# same cores.

set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
AFETCH=${AFETCH:-$ROOT/build/afetch}
TOOL_TIMEOUT=${BENCH_TIMEOUT:-300}
MILLION_TIMEOUT=${BENCH_MILLION_TIMEOUT:-1200}
TOOLS=${BENCH_TOOLS:-"afetch curl wget2 aria2c aiohttp"}
WORKLOADS=${BENCH_WORKLOADS:-"F1 F1save F2 F2save F3"}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-"1 2"}
REPEAT=${BENCH_REPEAT:-3}
PY=/usr/bin/python3
ECHO_SO=/usr/lib/nginx/modules/ngx_http_echo_module.so

F1_N=20000; F1_J=64; F1_SIZE=1024
F2_N=100;   F2_J=8;  F2_SIZE=$((10 * 1024 * 1024))
F3_N=5000;  F3_J=500; F3_DELAY=0.2
CURL_PARALLEL_CAP=300   # curl clamps --parallel-max to 300

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- peers
install_peers() {
  local need=()
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  [ -f "$ECHO_SO" ] || need+=(libnginx-mod-http-echo)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v aria2c >/dev/null 2>&1 || need+=(aria2)
  command -v wget2 >/dev/null 2>&1 || need+=(wget2)
  [ -x "$PY" ] && "$PY" -c 'import aiohttp' >/dev/null 2>&1 || need+=(python3-aiohttp)
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
    # nginx-light is a transitional package on newer Debian; fall back to nginx,
    # and install what can be installed one by one.
    local p
    for p in "${need[@]}"; do
      $sudo apt-get install -y -qq "$p" >/dev/null 2>&1 ||
        { [ "$p" = nginx-light ] && $sudo apt-get install -y -qq nginx >/dev/null 2>&1; } ||
        log "could not install $p"
    done
  fi
}

install_peers
if [ ! -x "$AFETCH" ]; then
  log "afetch missing at $AFETCH: building"
  ninja -C "$ROOT/build" aetl >&2 || true
fi
[ -x "$AFETCH" ] || { log "no afetch binary at $AFETCH"; exit 0; }
for t in nginx /usr/bin/time timeout; do
  command -v "$t" >/dev/null 2>&1 || { log "required tool missing: $t"; exit 0; }
done
[ -f "$ECHO_SO" ] || log "warning: $ECHO_SO missing: F3 (delayed responses) will fail"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- temp dirs, cleanup
TMP=$(mktemp -d /tmp/fetch_bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/fetch_bench.XXXXXX 2>/dev/null || mktemp -d /tmp/fetch_bench_shm.XXXXXX)
chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
# Run a private copy of afetch: the build tree may be rebuilt while we run.
# (bounded retry: a copy taken mid-link does not run)
AFETCH_SRC=$AFETCH
for i in $(seq 1 30); do
  cp "$AFETCH_SRC" "$TMP/afetch" 2>/dev/null && "$TMP/afetch" --version >/dev/null 2>&1 && break
  sleep 2
done
AFETCH=$TMP/afetch
AFETCH_STAMP=$(date -r "$(readlink -f "$AFETCH_SRC")" '+%F %T' 2>/dev/null)
NGINX_PID=""

stop_nginx() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID" 2>/dev/null
    local i
    for i in $(seq 1 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null
  fi
  NGINX_PID=""
}
cleanup() {
  stop_nginx
  rm -rf "$TMP" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- content
DATA=$TMP/www
mkdir -p "$DATA/small" "$DATA/big"
head -c "$F1_SIZE" /dev/urandom >"$DATA/small/file0.txt"
for i in $(seq 1 999); do ln "$DATA/small/file0.txt" "$DATA/small/file$i.txt"; done
head -c "$F2_SIZE" /dev/urandom >"$DATA/big/file0.bin"
for i in $(seq 1 $((F2_N - 1))); do ln "$DATA/big/file0.bin" "$DATA/big/file$i.bin"; done

# ---------------------------------------------------------------- nginx
PORT=""; BASE=""; NGX=""
L=$TMP/lists
mkdir -p "$L"

# start_nginx WORKERS: a fresh nginx with that many worker processes on a free
# port; sets BASE and writes the URL lists for it.
start_nginx() {
  local nw=$1 i ready=""
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  NGX=$TMP/nginx-$nw
  mkdir -p "$NGX/tmp"
  {
    [ -f "$ECHO_SO" ] && echo "load_module $ECHO_SO;"
    cat <<NGINXCONF
worker_processes $nw;
worker_rlimit_nofile $(ulimit -n);
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
daemon on;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 120s;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    root $DATA;
    location = /__status { stub_status; }
NGINXCONF
    [ -f "$ECHO_SO" ] && echo "    location /delay/ { default_type text/plain; echo_sleep $F3_DELAY; echo ok; }"
    echo "  }"
    echo "}"
  } >"$NGX/nginx.conf"

  if ! nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" 2>"$NGX/start.err"; then
    # -e needs nginx >= 1.19.5; retry without it
    nginx -p "$NGX" -c "$NGX/nginx.conf" 2>>"$NGX/start.err" || {
      log "nginx failed to start:"; cat "$NGX/start.err" >&2; return 1; }
  fi
  for i in $(seq 1 50); do [ -s "$NGX/nginx.pid" ] && break; sleep 0.1; done
  NGINX_PID=$(cat "$NGX/nginx.pid" 2>/dev/null)
  BASE=http://127.0.0.1:$PORT
  for i in $(seq 1 50); do
    curl -sf -o /dev/null "$BASE/small/file0.txt" && { ready=1; break; }
    sleep 0.1
  done
  [ -n "$ready" ] || { log "nginx does not answer on $BASE"; cat "$NGX/error.log" >&2; return 1; }
  log "nginx (pid $NGINX_PID, $nw worker(s)) on $BASE; temp dir $TMP"
  mk_list F1 "$F1_N" 'b "/small/file" (i % 1000) ".txt?i=" i'
  mk_list F2 "$F2_N" 'b "/big/file" i ".bin"'
  mk_list F3 "$F3_N" 'b "/delay/r?i=" i'
}

# ---------------------------------------------------------------- URL lists
# mk_list NAME N URL-awk-expression: NAME.list, NAME.curl (discard), NAME.aria2
mk_list() {
  local name=$1 n=$2 expr=$3
  awk -v n="$n" -v b="$BASE" "BEGIN { for (i = 0; i < n; i++) print $expr }" >"$L/$name.list"
  awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$L/$name.list" >"$L/$name.curl"
  awk '{ printf "%s\n  out=f%d\n", $0, NR - 1 }' "$L/$name.list" >"$L/$name.aria2"
}

# ---------------------------------------------------------------- measuring
# Results: R[<key>_<field>], key = <nginx workers>_<workload>_<tool>; the fields
# els, cpus, rsss collect one value per run (space-separated).
declare -A R
NOTES=()
NW=""   # nginx workers of the block being run

# nginx's own counters (stub_status): "accepted-connections requests"
srv_stat() {
  curl -s --max-time 5 "$BASE/__status" | awk 'NR == 3 { print $1, $3 }'
}

# measure OUTFILE ERRFILE TIMEOUT CMD... -> sets EL RSS CPU RC CONNS REQS
# CONNS/REQS: TCP connections nginx accepted and requests it handled meanwhile.
measure() {
  local out=$1 err=$2 to=$3; shift 3
  local tf=$TMP/time.out a1 r1 a2 r2 u s
  rm -f "$tf"
  read -r a1 r1 < <(srv_stat)
  /usr/bin/time -f '%e %M %U %S' -o "$tf" timeout -k 10 "$to" "$@" >"$out" 2>"$err" </dev/null
  RC=$?
  read -r a2 r2 < <(srv_stat)
  EL=""; RSS=""; CPU=""; CONNS=""; REQS=""
  # GNU time reports the child's exit status; timeout gives 124/137 when it fires
  [ -s "$tf" ] && read -r EL RSS u s < <(tail -n 1 "$tf") && CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
  if [ -n "${a1:-}" ] && [ -n "${a2:-}" ]; then
    CONNS=$((a2 - a1 - 1)); REQS=$((r2 - r1 - 1))   # minus the second status request
  fi
}

count_files() {  # DIR SIZE -> number of regular files of exactly SIZE bytes
  find "$1" -type f -size "${2}c" 2>/dev/null | wc -l
}

median() {  # numbers (space-separated) -> their median ("" if none)
  printf '%s\n' $1 | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run_one() {  # WORKLOAD TOOL RUN-NUMBER
  local w=$1 tool=$2 rep=$3 n j size list save="" dir out err cmd=() ok="?" check=""
  case $w in
    F1) n=$F1_N; j=$F1_J; size=$F1_SIZE; list=F1 ;;
    F1save) n=$F1_N; j=$F1_J; size=$F1_SIZE; list=F1; save=1 ;;
    F2) n=$F2_N; j=$F2_J; size=$F2_SIZE; list=F2 ;;
    F2save) n=$F2_N; j=$F2_J; size=$F2_SIZE; list=F2; save=1 ;;
    F3) n=$F3_N; j=$F3_J; size=3; list=F3 ;;
  esac
  local key=${NW}_${w}_$tool
  out=$TMP/$key.out; err=$TMP/$key.err
  if [ -n "$save" ]; then dir=$TMP/save_$tool; else dir=$SHM/discard_$tool; fi
  rm -rf "$dir"
  case $tool in
    afetch)
      cmd=("$AFETCH" -q --retry 0 -j "$j")
      [ -n "$save" ] && cmd+=(-o "$dir")
      cmd+=("$L/$list.list") ;;
    curl)
      local cj=$j cfg=$L/$list.curl
      [ "$cj" -gt "$CURL_PARALLEL_CAP" ] && cj=$CURL_PARALLEL_CAP
      if [ -n "$save" ]; then
        # one file per URL in one directory (what --output-dir with -O would do,
        # were the URLs' last segments unique)
        mkdir -p "$dir"
        cfg=$TMP/$key.curl
        awk -v d="$dir" '{ printf "url = \"%s\"\noutput = \"%s/file%d.bin\"\n", $0, d, NR - 1 }' \
          "$L/$list.list" >"$cfg"
      fi
      cmd=(curl -sS --parallel --parallel-max "$cj" -w '%{http_code}\n' -K "$cfg") ;;
    wget2)
      cmd=(wget2 -q --no-robots --max-threads="$j" --tries=1 -i "$L/$list.list")
      if [ -n "$save" ]; then cmd+=(-nd -P "$dir"); else cmd+=(-O /dev/null); fi ;;
    aria2c)
      mkdir -p "$dir"
      cmd=(aria2c -q -i "$L/$list.aria2" -j "$j" -x1 -s1 -d "$dir" --allow-overwrite=true
           --auto-file-renaming=false --file-allocation=none --max-tries=1
           --summary-interval=0 --download-result=hide) ;;
    aiohttp)
      cmd=("$PY" "$HERE/aiohttp_fetch.py" -j "$j")
      [ -n "$save" ] && cmd+=(-o "$dir")
      cmd+=("$L/$list.list") ;;
  esac
  log "  nginx $NW / $w / $tool / run $rep ..."
  sync
  measure "$out" "$err" "$TOOL_TIMEOUT" "${cmd[@]}"

  # How many responses were complete and successful, where the tool tells.
  case $tool in
    afetch)
      ok=$(grep -c '"ok":true' "$out")
      local lines; lines=$(wc -l <"$out")
      R[${key}_lines]=$lines
      if [ "$ok" -ne "$lines" ] || [ "$lines" -ne "$n" ]; then
        NOTES+=("afetch $w (nginx $NW): $lines result lines, $ok with \"ok\":true (expected $n); first other line:")
        NOTES+=("    $(grep -v '"ok":true' "$out" | head -n 1 | cut -c1-300)")
      fi
      if [ -s "$err" ]; then
        NOTES+=("afetch $w (nginx $NW) stderr: $(head -n 3 "$err" | tr '\n' ' ' | cut -c1-300)")
      fi ;;
    curl) ok=$(grep -c '^200$' "$out") ;;
    aiohttp) ok=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' "$out" | tail -n 1); ok=${ok:-0} ;;
    aria2c|wget2)
      if [ -n "$save" ] || [ "$tool" = aria2c ]; then ok=$(count_files "$dir" "$size")
      elif [ "$RC" = 0 ]; then ok="rc0"; else ok="?"; fi ;;
  esac
  if [ -n "$save" ] && [ "$tool" != aria2c ] && [ "$tool" != wget2 ]; then
    check=$(count_files "$dir" "$size")   # files of the right size on disk
    R[${key}_files]=$check
    [ "$check" -ne "$n" ] && ok="$ok(files:$check)"
  fi
  rm -rf "$dir"

  local status=ok
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then status="failed (timeout ${TOOL_TIMEOUT}s)"
  elif [ "$RC" != 0 ]; then status="failed (exit $RC)"
  elif [ "$ok" != "$n" ] && [ "$ok" != rc0 ]; then status="failed (ok $ok/$n)"
  fi
  if [ "$status" != ok ] && [ -s "$err" ]; then
    NOTES+=("$tool $w (nginx $NW): $status: $(head -n 2 "$err" | tr '\n' ' ' | cut -c1-240)")
  fi
  if [ -n "$REQS" ] && [ "$REQS" -ne "$n" ]; then
    NOTES+=("$tool $w (nginx $NW): nginx handled $REQS requests for $n URLs")
  fi
  # a tool that failed once keeps its first failure; medians are of the ok runs
  if [ "$status" = ok ]; then
    R[${key}_els]="${R[${key}_els]:-} $EL"
    R[${key}_cpus]="${R[${key}_cpus]:-} $CPU"
    R[${key}_rsss]="${R[${key}_rsss]:-} $RSS"
    R[${key}_conns]=$CONNS
    [ -z "${R[${key}_status]:-}" ] && R[${key}_status]=ok
  else
    [ "${R[${key}_status]:-ok}" = ok ] && R[${key}_status]=$status
  fi
  R[${key}_ok]=$ok; R[${key}_n]=$n; R[${key}_size]=$size; R[${key}_j]=$j
  [ "$tool" = curl ] && [ "$j" -gt "$CURL_PARALLEL_CAP" ] && R[${key}_j]="$CURL_PARALLEL_CAP*"
}

# ---------------------------------------------------------------- run
MILLION=""
run_million() {
  log "afetch over 1,000,000 URLs (BENCH_SKIP_MILLION=1 skips this)"
  awk -v b="$BASE" 'BEGIN { for (i = 0; i < 1000000; i++) print b "/small/file" (i % 1000) ".txt?i=" i }' \
    >"$L/million.list"
  local tf=$TMP/million.time ma1 mr1 ma2 mr2 M_RC M_CONNS M_EL M_RSS M_OK
  read -r ma1 mr1 < <(srv_stat)
  # Result lines are counted by grep in the pipe rather than kept: the run's own
  # memory is what is measured (GNU time wraps afetch only).
  /usr/bin/time -f '%e %M' -o "$tf" timeout -k 10 "$MILLION_TIMEOUT" \
    "$AFETCH" -q --retry 0 -j 64 "$L/million.list" 2>"$TMP/million.err" </dev/null |
    grep -c '"ok":true' >"$TMP/million.ok"
  M_RC=${PIPESTATUS[0]}
  read -r ma2 mr2 < <(srv_stat)
  M_CONNS=$(( ${ma2:-0} - ${ma1:-0} - 1 ))
  read -r M_EL M_RSS < <(tail -n 1 "$tf" 2>/dev/null)
  M_OK=$(cat "$TMP/million.ok")
  MILLION="${M_EL:-?} ${M_RSS:-0} $M_RC $M_OK $M_CONNS $NW"
  rm -f "$L/million.list"
}

NGINX_ERRORS=()
first_block=1
for NW in $NGINX_WORKERS; do
  if ! start_nginx "$NW"; then
    R[${NW}_nginx]=failed; stop_nginx; continue
  fi
  for w in $WORKLOADS; do
    log "$w (nginx $NW worker(s))"
    for rep in $(seq 1 "$REPEAT"); do
      for tool in $TOOLS; do
        if [ "$tool" != afetch ] && [ "$tool" != aiohttp ] && ! command -v "$tool" >/dev/null 2>&1; then
          R[${NW}_${w}_${tool}_status]="failed (not installed)"; continue
        fi
        run_one "$w" "$tool" "$rep"
      done
    done
  done
  if command -v wrk >/dev/null 2>&1; then
    log "wrk ceiling (nginx $NW worker(s))"
    timeout -k 5 30 wrk -c "$F1_J" -t 1 -d 5s "$BASE/small/file0.txt" >"$TMP/wrk.out" 2>&1
    R[${NW}_wrk]=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out")
  fi
  if [ -n "$first_block" ] && [ -z "${BENCH_SKIP_MILLION:-}" ]; then run_million; fi
  first_block=""
  if [ -s "$NGX/error.log" ]; then
    NGINX_ERRORS+=("nginx ($NW worker(s)) error.log: $(grep -c . "$NGX/error.log") lines, first: $(head -n 1 "$NGX/error.log" | cut -c1-200)")
  fi
  stop_nginx
done

# ---------------------------------------------------------------- report
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "" ) print "-"; else printf f, v }'; }
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf f, a / b }'; }
minmax_rps() {  # N ELAPSED-LIST -> "lo-hi" req/s over the runs
  printf '%s\n' $2 | awk -v n="$1" 'NF && $1 > 0 { r = n / $1; if (lo == "" || r < lo) lo = r; if (hi == "" || r > hi) hi = r }
    END { if (lo == "") print "-"; else printf "%.0f-%.0f", lo, hi }'
}

echo
echo "fetch_bench: $(nproc) cores, $(uname -r), nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1 with worker_processes: $NGINX_WORKERS"
echo "afetch $("$AFETCH" --version 2>/dev/null | head -n 1) ($AFETCH_SRC, built $AFETCH_STAMP)"
echo "curl $(curl --version | awk 'NR==1{print $2}')   wget2 $(wget2 --version 2>/dev/null | awk 'NR==1{print $3}')   aria2 $(aria2c --version 2>/dev/null | awk 'NR==1{print $3}')   aiohttp $("$PY" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null)"
echo "Each tool ran $REPEAT time(s) per workload, the tools taking turns; elapsed, CPU and RSS are medians,"
echo "req/s = URLs / median elapsed, 'req/s runs' the slowest and fastest run."
echo "MB = MiB (2^20 bytes). CPU s: user+sys of the client. conns: TCP connections nginx accepted (last run)."
echo "time/afetch > 1: the peer took longer than afetch. RSS/afetch > 1: the peer used more memory."
ROWF='%-7s %-8s %5s %9s %8s %13s %6s %8s %7s %7s %11s %10s  %s\n'
SUMMARY=()
for NW in $NGINX_WORKERS; do
  echo
  echo "=== nginx $NW worker(s)"
  if [ "${R[${NW}_nginx]:-}" = failed ]; then echo "nginx did not start"; continue; fi
  HDR=$(printf "$ROWF" \
    workload tool conc "elapsed s" "req/s" "req/s runs" "MB/s" "RSS MB" "CPU s" "conns" "time/afetch" "RSS/afetch" "status / notes")
  echo "$HDR"
  echo "$HDR" | sed 's/./-/g'
  for w in $WORKLOADS; do
    case $w in
      F1) desc="F1: $F1_N x 1 KiB, conc $F1_J, discard" ;;
      F1save) desc="F1save: $F1_N x 1 KiB, conc $F1_J, saved to disk" ;;
      F2) desc="F2: $F2_N x 10 MiB, conc $F2_J, discard" ;;
      F2save) desc="F2save: $F2_N x 10 MiB, conc $F2_J, saved to disk" ;;
      F3) desc="F3: $F3_N x 200 ms delayed, conc $F3_J (ideal 2.0 s)" ;;
    esac
    echo "# $desc (nginx $NW worker(s))"
    a=${NW}_${w}_afetch
    a_el=$(median "${R[${a}_els]:-}"); a_rss=$(median "${R[${a}_rsss]:-}")
    [ "${R[${a}_status]:-}" = ok ] || { a_el=""; a_rss=""; }
    a_rps=$(div "${R[${a}_n]:-}" "$a_el" '%.0f')
    vs=""
    for tool in $TOOLS; do
      k=${NW}_${w}_$tool
      st=${R[${k}_status]:-"not run"}
      el=$(median "${R[${k}_els]:-}"); rss=$(median "${R[${k}_rsss]:-}"); cpu=$(median "${R[${k}_cpus]:-}")
      n=${R[${k}_n]:-0}; size=${R[${k}_size]:-0}
      j=${R[${k}_j]:-}
      if [ "$st" != ok ]; then
        printf "$ROWF" "$w" "$tool" "$j" \
          "$(fmt "$el" '%.2f')" - - - "$(div "$rss" 1024 '%.1f')" "$(fmt "$cpu" '%.2f')" \
          "${R[${k}_conns]:--}" - - "$st"
        continue
      fi
      rps=$(div "$n" "$el" '%.0f')
      mbs=-; [ "$w" = F2 ] || [ "$w" = F2save ] && mbs=$(div "$(awk -v n="$n" -v s="$size" 'BEGIN{print n*s/1048576}')" "$el" '%.1f')
      note=""
      [ "${R[${k}_ok]}" = rc0 ] && note="(success by exit code only)"
      if [ "$w" = F3 ]; then
        note="$(div "$el" 2.0 '%.2f')x ideal $note"
        [ "$tool" = curl ] && [ "$F3_J" -gt "$CURL_PARALLEL_CAP" ] &&
          note="$note; curl caps --parallel-max at $CURL_PARALLEL_CAP: its own ideal is $(awk -v n="$F3_N" -v c="$CURL_PARALLEL_CAP" -v d="$F3_DELAY" 'BEGIN{x=n/c; if (x>int(x)) x=int(x)+1; printf "%.1f", x*d}') s"
      fi
      printf "$ROWF" "$w" "$tool" "$j" \
        "$(fmt "$el" '%.2f')" "$rps" "$(minmax_rps "$n" "${R[${k}_els]:-}")" "$mbs" "$(div "$rss" 1024 '%.1f')" \
        "$(fmt "$cpu" '%.2f')" "${R[${k}_conns]:--}" \
        "$(div "$el" "$a_el" '%.2f')" "$(div "$rss" "$a_rss" '%.2f')" "ok $note"
      if [ "$tool" != afetch ] && [ "$a_rps" != - ] && [ "$rps" != - ]; then
        vs="$vs  $tool $(div "$a_rps" "$rps" '%.2f')x"
      fi
    done
    [ -n "$vs" ] && echo "  afetch req/s vs (medians):$vs"
    case $w in
      F1|F1save)
        c=${NW}_${w}_curl
        c_el=$(median "${R[${c}_els]:-}"); [ "${R[${c}_status]:-}" = ok ] || c_el=""
        goal=1.5; [ "$w" = F1save ] && goal=1.0
        SUMMARY+=("$w, nginx $NW worker(s): afetch $a_rps req/s, curl --parallel $(div "${R[${c}_n]:-}" "$c_el" '%.0f') req/s: $(div "$c_el" "$a_el" '%.2f')x (aim: at least ${goal}x)") ;;
    esac
    if [ "$w" = F1 ]; then
      wrk_rps=${R[${NW}_wrk]:-}
      if [ -n "$wrk_rps" ]; then
        echo "  F1 ceiling: wrk -c $F1_J -t 1 -d 5s on one URL: $(fmt "$wrk_rps" '%.0f') req/s; afetch/wrk: $(div "$a_rps" "$wrk_rps" '%.2f')"
      else
        echo "  F1 ceiling: wrk failed or missing"
      fi
    fi
  done
done
echo
if [ ${#SUMMARY[@]} -gt 0 ]; then
  echo "afetch against curl --parallel (same run, medians):"
  printf '  %s\n' "${SUMMARY[@]}"
  echo
fi
if [ -n "$MILLION" ]; then
  read -r m_el m_rss m_rc m_ok m_conns m_nw <<<"$MILLION"
  m_st="ok"; [ "$m_rc" != 0 ] && m_st="failed (exit $m_rc)"
  [ "$m_ok" != 1000000 ] && m_st="$m_st, \"ok\":true lines: $m_ok/1000000"
  echo "peak RSS of afetch on a 1,000,000-line URL list (-j 64, 1 KiB each, results to a pipe, nginx $m_nw worker(s)): $(div "$m_rss" 1024 '%.1f') MB, elapsed $(fmt "$m_el" '%.1f') s ($(div 1000000 "$m_el" '%.0f') req/s, $m_conns TCP connections); $m_st"
  [ -s "$TMP/million.err" ] && NOTES+=("afetch million stderr: $(head -n 3 "$TMP/million.err" | tr '\n' ' ' | cut -c1-300)")
else
  echo "peak RSS of afetch on a 1,000,000-line URL list: skipped (BENCH_SKIP_MILLION set)"
fi
NOTES+=(${NGINX_ERRORS[@]+"${NGINX_ERRORS[@]}"})
if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "notes:"
  printf '  %s\n' "${NOTES[@]}"
fi
echo
echo "curl: --parallel-max is capped at $CURL_PARALLEL_CAP by curl, so its F3 row runs at 300, not $F3_J."
echo "aria2c has no discard mode: in discard workloads it writes to tmpfs ($(dirname "$SHM")), deleted after each run."
echo "Saved bodies (F1save, F2save) go to $(dirname "$TMP") ($(stat -f -c %T "$(dirname "$TMP")" 2>/dev/null)), deleted after each run."
exit 0
