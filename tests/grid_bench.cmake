# The grid benchmarks of issue 4 (bench/grid_bench.sh, run by `make bench`): not tests.
# grid_load is the buyer side (concurrent SSE streams through the coordinator, libevent),
# grid_engine the engine-alone side of the gateway-overhead comparison, wake_cost the
# machine's cost of one loopback send that wakes a process on another CPU.
if(IG_HAVE_CLI)
  pkg_check_modules(IG_GRID_LOAD_EVENT REQUIRED IMPORTED_TARGET libevent)
  add_executable(grid_load ${PROJECT_SOURCE_DIR}/bench/grid_load.c)
  target_link_libraries(grid_load PRIVATE PkgConfig::IG_GRID_LOAD_EVENT m)
  add_executable(grid_engine ${PROJECT_SOURCE_DIR}/bench/grid_engine.c)
  target_link_libraries(grid_engine PRIVATE ig_engine)
  add_executable(wake_cost ${PROJECT_SOURCE_DIR}/bench/wake_cost.c)
endif()
