#!/usr/bin/env bash
# Installs what `make bench` needs beyond scripts/deps.sh: llama.cpp, measured beside
# idlegrid on the same machine. It comes from the npm package node-llama-cpp, whose
# platform packages ship prebuilt llama.cpp CPU libraries (bench/llamacpp, pinned by
# its package-lock.json). Not part of `make test`: CI does not need it.
#
# Only the CPU builds are installed: --omit=optional leaves out node-llama-cpp's
# optional CUDA and Vulkan packages (about 600 MB); the x64 and arm64 CPU packages are
# listed in bench/llamacpp/package.json (as devDependencies, which --omit=optional
# keeps), and node-llama-cpp picks the one for this machine when it loads.
# --ignore-scripts skips node-llama-cpp's postinstall, which would try to download or
# build binaries; NODE_LLAMA_CPP_SKIP_DOWNLOAD says the same to any other path.
#
# `npm install` with the lock file rather than `npm ci`: the lock cannot list the
# optional packages the registry here does not carry (the Windows, macOS and riscv64
# builds), and `npm ci` refuses a lock that lacks any of a dependency's optional
# packages. With the lock present, `npm install --no-save` installs exactly the
# versions and integrity hashes it records and leaves it unchanged.
set -euo pipefail
cd "$(dirname "$0")/../bench/llamacpp"

command -v npm >/dev/null || { echo "bench-deps: npm is missing; run make deps" >&2; exit 1; }
if [ ! -d node_modules/node-llama-cpp ] || [ package-lock.json -nt node_modules ]; then
  echo "bench-deps: installing node-llama-cpp (llama.cpp CPU builds) in bench/llamacpp"
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --ignore-scripts --no-save \
    --no-audit --no-fund --loglevel=error
  touch node_modules
fi
