# The node agent (src/node): a real `idlegrid node` process against a test peer that
# plays the coordinator's side of the link with net.h (no coordinator logic).
if(IG_HAVE_CLI)
  if(NOT TARGET PkgConfig::CMOCKA)
    pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  endif()
  ig_unit_test(test_node_link SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_node_link.c
               LIBS ig_net ig_engine PkgConfig::CMOCKA LABELS "integration")
  add_dependencies(test_node_link idlegrid)
  set_tests_properties(test_node_link PROPERTIES TIMEOUT 300)
endif()
