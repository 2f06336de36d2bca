#!/usr/bin/env bash
# Quick start, offline: installs what is missing, builds, serves samples/site on
# 127.0.0.1 and fetches samples/urls.txt with afetch (bodies saved under
# samples-out/, resume state in samples-out/state.db).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
scripts/build.sh --target aetl

port=18765
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
/usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 --directory samples/site >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

rm -rf samples-out && mkdir -p samples-out
sed "s/127.0.0.1:18765/127.0.0.1:$port/" samples/urls.txt > samples-out/urls.txt
set +e
./build/afetch samples-out/urls.txt -j 8 -o samples-out/bodies --state samples-out/state.db \
  --output samples-out/results.jsonl
status=$?
set -e
echo "--- samples-out/results.jsonl (exit status $status: the sample holds a 404 and a bad line on purpose, so 2)"
cat samples-out/results.jsonl
echo "--- saved bodies"
find samples-out/bodies -type f | sort
