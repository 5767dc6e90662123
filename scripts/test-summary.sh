#!/usr/bin/env bash
# scripts/test-summary.sh BUILD_DIR... — adds up the CTest runs of `make test` (each
# build tree's ctest.log: plain, ASan+UBSan, fuzz, aarch64 under qemu) into one closing
# line. Fails when a log is missing or reports a failure.
set -euo pipefail
passed=0 failed=0
for dir in "$@"; do
  log=$dir/ctest.log
  [ -f "$log" ] || { echo "test-summary: $log is missing: that pass did not run" >&2; exit 1; }
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  [ -n "$line" ] || { echo "test-summary: no CTest summary in $log" >&2; exit 1; }
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  n=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  echo "  $dir: $((n - f)) passed, $f failed"
  passed=$((passed + n - f))
  failed=$((failed + f))
done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
