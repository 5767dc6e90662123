# The node link (src/net): frame codec, messages, keys; connections over loopback.
if(NOT TARGET PkgConfig::CMOCKA)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
ig_unit_test(test_net_codec SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_net_codec.c LIBS ig_net PkgConfig::CMOCKA)
ig_fuzz_target(fuzz_frames SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_frames.c LIBS ig_net
               SEEDS ${PROJECT_SOURCE_DIR}/tests/fuzz/seeds/frames)
ig_unit_test(test_net_conn SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_net_conn.c LIBS ig_net PkgConfig::CMOCKA)
