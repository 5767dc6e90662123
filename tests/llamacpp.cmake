# llama.cpp beside idlegrid in `make bench` (bench/llamacpp, bench/run.sh): not tests.
# bench_greedy is idlegrid's side of the agreement check (greedy tokens from given ids).
add_executable(bench_greedy ${PROJECT_SOURCE_DIR}/bench/bench_greedy.c)
target_link_libraries(bench_greedy PRIVATE ig_engine)
