# The grid (issue 4): coordinator unit tests, integration tests with real processes on
# loopback (node.js drivers in tests/integration, the official openai client in
# tests/client), and the HTTP/JSON request fuzz target.
if(IG_HAVE_CLI)
  # A deterministic node speaking the real node link (no model): failover and
  # fairness tests of the coordinator that do not depend on the engine.
  add_executable(ig_testpeer ${CMAKE_CURRENT_SOURCE_DIR}/integration/testpeer.c)
  target_link_libraries(ig_testpeer PRIVATE ig_net)

  ig_unit_test(test_coord_scheduler SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_coord_scheduler.c
               LIBS ig_coord)
  ig_unit_test(test_coord_request SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_coord_request.c
               LIBS ig_coord)
  ig_unit_test(test_coord_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_coord_store.c
               LIBS ig_coord)

  find_program(IG_NODEJS node)
  if(IG_NODEJS)
    # ig_grid_test(NAME SCRIPT [LABELS ...]) — a node.js driver that starts its own
    # grid (idlegrid serve/up/node, ig_testpeer) on free loopback ports.
    function(ig_grid_test name script)
      cmake_parse_arguments(T "" "TIMEOUT" "LABELS" ${ARGN})
      if(NOT T_LABELS)
        set(T_LABELS integration)
      endif()
      if(NOT T_TIMEOUT)
        set(T_TIMEOUT 180)
      endif()
      add_test(NAME ${name} COMMAND ${IG_NODEJS} ${script}
               WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
      set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
        ENVIRONMENT "IG_BIN=$<TARGET_FILE:idlegrid>;IG_TESTPEER=$<TARGET_FILE:ig_testpeer>;IG_MODELS=${IG_MODELS}")
    endfunction()
    file(GLOB IG_GRID_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.mjs)
    foreach(s ${IG_GRID_SCRIPTS})
      get_filename_component(n ${s} NAME_WE)
      ig_grid_test(grid_${n} ${s})
    endforeach()
    file(GLOB IG_CLIENT_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/client/test_*.mjs)
    foreach(s ${IG_CLIENT_SCRIPTS})
      get_filename_component(n ${s} NAME_WE)
      ig_grid_test(client_${n} ${s} LABELS "integration;client")
    endforeach()
  endif()
endif()

ig_fuzz_target(fuzz_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_http.c LIBS ig_coord
               SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds-http)
