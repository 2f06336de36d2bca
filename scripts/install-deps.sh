#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs, only those missing.
#   scripts/install-deps.sh build   # compilers and libraries
#   scripts/install-deps.sh test    # build + what the test suite runs
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build ccache pkg-config
  libcurl4-openssl-dev libcli11-dev libsimdjson-dev libspdlog-dev libfmt-dev
  catch2 libboost1.81-dev libsqlite3-dev libyaml-cpp-dev libre2-dev libjq-dev zlib1g-dev libpq-dev libhiredis-dev libssl-dev libhowardhinnant-date-dev tzdata python3)
test_pkgs=(python3-pytest openssl curl sqlite3 procps nginx-light time postgresql fiu-utils util-linux strace redis-server iproute2 python3-websockets)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
