# Kernels, block formats, quantizers, thread pool and matmul (src/engine/kernels*.c,
# quantize.c, pool.c). Engine-only: these also run cross-built for aarch64 under qemu.
ig_unit_test(test_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kernels.c
  LIBS ig_engine LABELS "unit;kernels")
