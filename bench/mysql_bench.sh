#!/usr/bin/env bash
# mysql_bench.sh - aetl's mysql sink against the mariadb client's LOAD DATA LOCAL
# INFILE and python3-pymysql's executemany, on one generated JSON Lines input,
# against a throwaway MariaDB server (tests/support/mariadb_server.py).
#
#   bench/mysql_bench.sh                        # 2,000,000 records (a few minutes)
#   BENCH_RECORDS=200000 bench/mysql_bench.sh   # quick look
#
# Environment:
#   AETL=path               aetl binary (default: build/aetl beside bench/)
#   BENCH_RECORDS=2000000   records
#   BENCH_DIR=/tmp/aetl-bench  work dir: cached input and CSV
#   BENCH_REPEAT=3          runs of each tool, alternated (A B C A B C ...)
#
# Workload M1 append: every tool gets a fresh InnoDB table
#   events (id BIGINT, url TEXT, status INT, country VARCHAR(2))
#   aetl      aetl run (JSON Lines parsed, multi-row INSERTs, one transaction per batch)
#   load      mariadb -e "LOAD DATA LOCAL INFILE 'events.csv'" (the CSV made beforehand,
#             not timed: no JSON parsing at all)
#   pymysql   json.loads per line, executemany of INSERT in batches of 20000, a commit each
# Workload M2 read: the table back out
#   aetl      aetl run (mysql source → jsonl file)
#   mariadb   mariadb --batch -e "SELECT ..." > file (tab-separated, no JSON)
# Checks: after each append run the table's count and a checksum over its rows are
# the same for every tool. Rows give the median elapsed time (rows/s from it) and
# the median peak RSS; the "vs" lines are ratios of medians.
# Aim (issue 14): M1 aetl >= 0.9x LOAD DATA's rows/s, with JSON parsing included.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
AETL=${AETL:-$ROOT/build/aetl}
N=${BENCH_RECORDS:-2000000}
W=${BENCH_DIR:-/tmp/aetl-bench}
REPEAT=${BENCH_REPEAT:-3}
PY=/usr/bin/python3

log() { printf '%s\n' "$*" >&2; }
[ -x "$AETL" ] || { log "no aetl at $AETL (build first)"; exit 0; }
[ -x /usr/sbin/mariadbd ] || { log "no mariadb-server (scripts/install-deps.sh test)"; exit 0; }
$PY -c 'import pymysql' 2>/dev/null || { log "no python3-pymysql (scripts/install-deps.sh test)"; exit 0; }

mkdir -p "$W" || exit 0
RUN=$(mktemp -d "$W/myrun.XXXXXX") || exit 0
chmod 755 "$RUN"
INPUT=$W/events-${N}rec.jsonl
CSV=$W/events-${N}rec.my.csv
if [ ! -s "$INPUT" ] || [ "$(wc -l <"$INPUT")" != "$N" ]; then
  log "input: generating $N records into $INPUT"
  $PY "$HERE/gen_events.py" --records "$N" --out "$INPUT" >/dev/null || { log "gen_events.py failed"; exit 0; }
  rm -f "$CSV"
fi
if [ ! -s "$CSV" ] || [ "$CSV" -ot "$INPUT" ]; then
  log "input: the CSV for LOAD DATA"
  $PY -c '
import csv, json, sys
w = csv.writer(sys.stdout, lineterminator="\n")
for line in sys.stdin.buffer:
    r = json.loads(line); u = r.get("user") or {}
    c = u.get("country")
    w.writerow([r.get("id"), r.get("url"), r.get("status"), "\\N" if c is None else c])
' <"$INPUT" >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"
fi

coproc DB { exec $PY "$ROOT/tests/support/mariadb_server.py"; }
read -r URL <&"${DB[0]}" || { log "the MariaDB server did not start"; exit 0; }
DB_STDIN=${DB[1]}
cleanup() { exec {DB_STDIN}>&- 2>/dev/null; wait "$DB_PID" 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
PORT=${URL##*:}; PORT=${PORT%%/*}
my() { mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u aetl -paetl-test-pw --local-infile=1 -N -B aetl "$@"; }
fresh() { my -e "DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS aetl_checkpoints;
  CREATE TABLE events (id BIGINT, url TEXT, status INT, country VARCHAR(2)) ENGINE=InnoDB"; }
digest() { my -e "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, url, status, IFNULL(country, '')))) FROM events"; }

cat >"$RUN/m1.yaml" <<EOF
name: bench-m1
source: {lines: {paths: ["$INPUT"]}}
stages:
  - select: {id: id, url: url, status: status, country: user.country}
sink:
  mysql: {url: "$URL", table: events, columns: [id, url, status, country]}
EOF
cat >"$RUN/m2.yaml" <<EOF
name: bench-m2
source: {mysql: {url: "$URL", query: "SELECT id, url, status, country FROM events"}}
sink: {jsonl: {path: "$RUN/m2.jsonl"}}
EOF
cat >"$RUN/pymysql_load.py" <<'EOF'
import json, sys
import pymysql
port, path = int(sys.argv[1]), sys.argv[2]
c = pymysql.connect(host="127.0.0.1", port=port, user="aetl", password="aetl-test-pw", database="aetl")
sql = "INSERT INTO events (id, url, status, country) VALUES (%s, %s, %s, %s)"
rows = []
with c.cursor() as cur, open(path, "rb") as f:
    for line in f:
        r = json.loads(line)
        rows.append((r.get("id"), r.get("url"), r.get("status"), (r.get("user") or {}).get("country")))
        if len(rows) == 20000:
            cur.executemany(sql, rows); c.commit(); rows = []
    if rows:
        cur.executemany(sql, rows); c.commit()
EOF

declare -A EL RSS
run_one() {  # KEY CMD...
  local key=$1; shift
  /usr/bin/time -f '%e %M' -o "$RUN/time" "$@" >/dev/null 2>"$RUN/err" || { log "$key failed: $(head -c 300 "$RUN/err")"; return 1; }
  read -r el rss <"$RUN/time"
  EL[$key]="${EL[$key]:-} $el"; RSS[$key]="${RSS[$key]:-} $rss"
}
median() { printf '%s\n' $1 | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
report() {  # KEY
  local el rss; el=$(median "${EL[$1]}"); rss=$(median "${RSS[$1]}")
  awk -v k="$1" -v e="$el" -v r="$rss" -v n="$N" 'BEGIN { printf "  %-12s %8.2f s  %10.0f rows/s  peak %6.1f MiB\n", k, e, n / e, r / 1024 }'
}
ratio() {  # A B
  awk -v a="$(median "${EL[$1]}")" -v b="$(median "${EL[$2]}")" -v x="$1" -v y="$2" 'BEGIN { printf "  %s vs %s: %.2fx the rows/s\n", x, y, b / a }'
}

REF=""
check() {  # KEY
  local d; d=$(digest)
  if [ -z "$REF" ]; then REF=$d; elif [ "$d" != "$REF" ]; then log "$1: table differs ($d vs $REF)"; fi
}
log "M1 append: $N records, $REPEAT rounds (aetl, LOAD DATA, pymysql alternated)"
for ((i = 1; i <= REPEAT; i++)); do
  fresh; rm -f "$RUN"/m1.state*; run_one aetl "$AETL" run -q --state "$RUN/m1.state" "$RUN/m1.yaml" && check aetl
  fresh; run_one load mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u aetl -paetl-test-pw --local-infile=1 aetl \
    -e "LOAD DATA LOCAL INFILE '$CSV' INTO TABLE events CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\n' (id, url, status, @c) SET country = NULLIF(@c, '\\\\N')" && check load
  fresh; run_one pymysql $PY "$RUN/pymysql_load.py" "$PORT" "$INPUT" && check pymysql
done
log "M2 read: the table back out"
for ((i = 1; i <= REPEAT; i++)); do
  rm -f "$RUN"/m2.state*; run_one aetl_read "$AETL" run -q --state "$RUN/m2.state" "$RUN/m2.yaml"
  run_one mariadb_read mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u aetl -paetl-test-pw -N -B --quick aetl \
    -e "SELECT id, url, status, country FROM events"
done

echo "mysql_bench: $N records, medians of $REPEAT runs (MariaDB $(mariadbd --version | awk '{print $3}'))"
echo "M1 append"
for k in aetl load pymysql; do report $k; done
ratio aetl load; ratio aetl pymysql
echo "M2 read"
for k in aetl_read mariadb_read; do report $k; done
ratio aetl_read mariadb_read
