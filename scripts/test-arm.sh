#!/usr/bin/env bash
# The engine cross-built for aarch64 (NEON kernels) with Debian's gcc-aarch64-linux-gnu,
# its engine tests run under qemu-user (CTest's emulator hook, see
# cmake/aarch64-linux-gnu.cmake). Fails loudly on any build or test failure and
# ends with CTest's summary. Called by `make test-arm` (and so by `make test`).
#
# Tests run: those labelled "kernels" (and any engine test an area labels "arm").
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_ARM=${BUILD_ARM:-build-arm}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
LABELS=${ARM_TEST_LABELS:-kernels|arm}

fail() { echo "test-arm: FAILED: $*" >&2; exit 1; }

for tool in aarch64-linux-gnu-gcc qemu-aarch64 cmake ctest; do
  command -v "$tool" >/dev/null || fail "$tool not found (run: bash scripts/deps.sh)"
done
[ -d /usr/aarch64-linux-gnu/lib ] || fail "/usr/aarch64-linux-gnu missing (libc6-dev-arm64-cross)"

cmake -S . -B "$BUILD_ARM" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
  -DIG_ENGINE_ONLY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || fail "configure"

# Build only the tests that run here (others link layers the engine-only build lacks).
mapfile -t tests < <(cd "$BUILD_ARM" && ctest -N -L "$LABELS" | sed -n 's/^ *Test *#[0-9]*: //p')
((${#tests[@]})) || fail "no tests labelled '$LABELS'"
cmake --build "$BUILD_ARM" -j"$JOBS" --target ig_engine "${tests[@]}" || fail "build"

# Prove the binaries really are aarch64 and the NEON set is what they run.
file_out=$(od -An -tx1 -j18 -N2 "$BUILD_ARM/${tests[0]}" | tr -d ' ')
[ "$file_out" = "b700" ] || fail "${tests[0]} is not an aarch64 ELF (e_machine $file_out)"

cd "$BUILD_ARM"
if ! ctest --output-on-failure -j"$JOBS" -L "$LABELS" 2>&1 | tee ctest.log; then
  fail "ctest under qemu-aarch64 (see the output above)"
fi
echo "test-arm: aarch64 tests passed under qemu-aarch64: ${tests[*]}"
