# Kernels, block formats, quantizers, thread pool and matmul (src/engine/kernels*.c,
# quantize.c, pool.c). Engine-only: these also run cross-built for aarch64 under qemu.
ig_unit_test(test_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kernels.c
  LIBS ig_engine LABELS "unit;kernels")

# The kernel micro-benchmark (not a test): decode GB/s per type against the read
# bandwidth measured in the same run. `build/bench_kernels --help`.
add_executable(bench_kernels ${PROJECT_SOURCE_DIR}/bench/bench_kernels.c)
target_link_libraries(bench_kernels PRIVATE ig_engine)
