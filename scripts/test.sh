#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the unit tests
# (ctest) and the integration tests (pytest against real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
scripts/build.sh
(cd build && ctest --output-on-failure)
AETL_BIN="$PWD/build/aetl" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/integration "$@"  # -rs: why a test was skipped
