# GGUF reader and writer (src/engine/gguf.c, gguf_write.c): round trips, corrupted
# files refused with the right message and offset, the bundled models and vocabularies,
# and a libFuzzer target on ig_gguf_open_buffer. Engine-only: also runs under qemu.
ig_unit_test(test_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gguf.c
  LIBS ig_engine LABELS "unit;gguf")

ig_fuzz_target(fuzz_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gguf.c
  LIBS ig_engine SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/gguf)
