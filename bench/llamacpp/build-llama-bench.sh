#!/usr/bin/env bash
# bench/llamacpp/build-llama-bench.sh OUT_DIR — builds llama.cpp's own benchmark tool,
# llama-bench, against the prebuilt llama.cpp libraries of the node-llama-cpp platform
# package (bench/llamacpp/node_modules, installed by scripts/bench-deps.sh), into
# OUT_DIR/llama-bench. Prints the path of the directory holding the libraries (run
# llama-bench from there: ggml looks for its CPU variants, libggml-cpu-*.so, beside the
# executable and in the current directory).
#
# Why not only node-llama-cpp's API (bench.mjs): llama-bench is llama.cpp's own
# measurement, the one the issue's reference figures come from. It keeps one ggml
# threadpool for the whole run (as llama-cli and llama-server do); node-llama-cpp's
# addon attaches none, so each llama_decode starts and joins its worker threads, and
# each call crosses from JavaScript to a libuv worker. The reference is llama-bench;
# bench.mjs is the cross-check and the source of llama.cpp's greedy tokens.
#
# The source is the one node-llama-cpp ships for building from source (llama/
# gitRelease.bundle, a git bundle of the same llama.cpp release as its binaries), so
# nothing is downloaded. Only llama-bench's two files are compiled; the libraries
# (libllama, libllama-common, libggml, libggml-base) are the package's own.
set -euo pipefail
OUT=${1:?usage: build-llama-bench.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")"
NLC=node_modules/node-llama-cpp
case "$(uname -m)" in
  x86_64) PLAT=linux-x64 ;;
  aarch64 | arm64) PLAT=linux-arm64 ;;
  *) echo "build-llama-bench: no node-llama-cpp build for $(uname -m)" >&2; exit 1 ;;
esac
BINS=$PWD/node_modules/@node-llama-cpp/$PLAT/bins/$PLAT
BUNDLE=$NLC/llama/gitRelease.bundle
[ -d "$BINS" ] && [ -f "$BUNDLE" ] || {
  echo "build-llama-bench: $BINS or $BUNDLE missing; run scripts/bench-deps.sh" >&2; exit 1; }
command -v g++ >/dev/null || { echo "build-llama-bench: g++ missing; run make deps" >&2; exit 1; }

stamp="$(sha256sum "$BUNDLE" | cut -c1-16) $PLAT"
if [ -x "$OUT/llama-bench" ] && [ "$(cat "$OUT/llama-bench.key" 2>/dev/null)" = "$stamp" ]; then
  echo "$BINS"
  exit 0
fi

echo "build-llama-bench: compiling llama-bench against $BINS" >&2
src=$OUT/llama.cpp-src
rm -rf "$src"
git clone -q "$BUNDLE" "$src" 2>/dev/null
# The libraries as the package names them (libllama.vX.Y.Z.so, or libllama.so).
libs=()
for l in libllama-common libllama libggml libggml-base; do
  for f in "$BINS/$l.so" "$BINS/$l".v*.so; do
    [ -f "$f" ] && { libs+=("-l:$(basename "$f")"); break; }
  done
done
g++ -O2 -DNDEBUG -std=c++17 -I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/vendor" \
    "$src/tools/llama-bench/llama-bench.cpp" "$src/tools/llama-bench/main.cpp" \
    -o "$OUT/llama-bench.tmp" -L"$BINS" "${libs[@]}" -Wl,-rpath,"$BINS" -lpthread
mv "$OUT/llama-bench.tmp" "$OUT/llama-bench"
(cd "$src" && git log -1 --format=%H) >"$OUT/llama-bench.source"
rm -rf "$src"
echo "$stamp" >"$OUT/llama-bench.key"
echo "$BINS"
