#!/usr/bin/env bash
# Quick start, offline: installs what is missing, builds, and runs the sample
# pipeline (samples/pipeline.yaml: JSON Lines → filter/select/set → SQLite), then
# shows what it produced. The state store goes to samples-out/ as well.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
scripts/build.sh --target aetl

rm -rf samples-out && mkdir -p samples-out
./build/aetl validate samples/pipeline.yaml
./build/aetl run --state samples-out/state.sqlite samples/pipeline.yaml
echo "--- samples-out/errors.db, table errors:"
/usr/bin/python3 - <<'PY'
import sqlite3
db = sqlite3.connect("samples-out/errors.db")
cur = db.execute("SELECT * FROM errors ORDER BY id")
print(" | ".join(d[0] for d in cur.description))
for row in cur:
    print(" | ".join(str(v) for v in row))
PY
echo "--- samples-out/errors-failed.jsonl (the dead letter: a truncated input line):"
cat samples-out/errors-failed.jsonl
echo "--- run again: resumes from the checkpoint, nothing new to do:"
./build/aetl run --state samples-out/state.sqlite samples/pipeline.yaml
