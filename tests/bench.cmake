# Benchmark support (src/cli/cmd_bench.c, src/engine/membw.c): `idlegrid bench --json`
# on a tiny synthetic model reports every field with values its shape predicts, and
# bad arguments are refused. Not timing tests; the real benchmark is `make bench`.
if(IG_HAVE_CLI)
  add_test(NAME bench_json_reports_fields_consistent_with_model_shape
    COMMAND ${CMAKE_COMMAND} -DIG_BIN=${IG_BIN} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/bench-json
            -P ${PROJECT_SOURCE_DIR}/bench/check_json.cmake)
  set_tests_properties(bench_json_reports_fields_consistent_with_model_shape PROPERTIES
    LABELS "integration;bench" TIMEOUT 120)

  add_test(NAME bench_refuses_zero_repeats COMMAND ${IG_BIN} bench -m x.gguf --repeat 0)
  set_tests_properties(bench_refuses_zero_repeats PROPERTIES LABELS "integration;bench"
    PASS_REGULAR_EXPRESSION "--repeat 0 is outside 1..100")
  add_test(NAME bench_requires_a_model COMMAND ${IG_BIN} bench --json)
  set_tests_properties(bench_requires_a_model PROPERTIES LABELS "integration;bench"
    PASS_REGULAR_EXPRESSION "-m MODEL is required")
endif()
