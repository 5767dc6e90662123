#!/usr/bin/env bash
# Installs every Debian package idlegrid builds, runs or tests with, and the npm
# packages of the client tests. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev                 # libFuzzer targets
  libevent-dev libjansson-dev libsqlite3-dev libsodium-dev libpq-dev libssl-dev libcurl4-openssl-dev
  libcmocka-dev
  jq                                       # bench/run.sh reads `idlegrid bench --json`
  sqlite3 postgresql curl procps openssl
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # ARM (NEON) build, run under qemu
  chromium chromium-driver                 # dashboard tests in a real browser
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the client tests; a machine that already has them (from any
# source) keeps its own, since Debian's npm package conflicts with a separately
# installed npm.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages for the client tests (the official openai client), pinned by the lock file.
if [ -f tests/client/package.json ]; then
  if [ ! -d tests/client/node_modules ] || [ tests/client/package-lock.json -nt tests/client/node_modules ]; then
    (cd tests/client && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
