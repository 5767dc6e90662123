# idlegrid — the two commands: `make run` (install, build, start the grid) and
# `make test` (install, build, run the suite, then again under ASan+UBSan, then fuzz).
BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_FUZZ  ?= build-fuzz
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60

# bash with pipefail: each CTest run is tee'd to ctest.log in its build tree, and the
# pipeline still fails when CTest does.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all deps bench-deps build run test test-fast test-asan test-fuzz test-arm bench clean

all: build

deps:
	@bash scripts/deps.sh

# llama.cpp for `make bench` only (npm: node-llama-cpp's CPU builds); not for `make test`.
bench-deps: deps
	@bash scripts/bench-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: deps build
	./$(BUILD)/idlegrid up

# The whole suite: plain build, then the sanitizer build, then the fuzzers.
test: deps
	$(MAKE) test-fast
	$(MAKE) test-asan
	$(MAKE) test-fuzz
	$(MAKE) test-arm
	@bash scripts/test-summary.sh $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) build-arm

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE fuzz 2>&1 | tee ctest.log

test-asan:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIG_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -LE "fuzz|nosan" 2>&1 | tee ctest.log

test-fuzz:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIG_FUZZ=ON
	cmake --build $(BUILD_FUZZ) -j$(JOBS)
	cd $(BUILD_FUZZ) && IG_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -j$(JOBS) -L fuzz 2>&1 | tee ctest.log

# The engine cross-built for aarch64 (NEON kernels), its tests run under qemu-user.
test-arm:
	@bash scripts/test-arm.sh

bench: bench-deps build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) build-arm
