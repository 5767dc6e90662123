# Tokenizers (src/engine/tokenizer.c, unicode.c, unicode_data.c) and `idlegrid tokenize`.
# The conformance vectors run in-process and, where the binary exists, through the
# real command (one process per input); the unit tests need only the engine.
# test_tokenizer also runs cross-built for aarch64 under qemu (label arm: char is
# unsigned there, which byte handling must not depend on).
ig_unit_test(test_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tokenizer.c
  LIBS ig_engine LABELS "unit;tokenizer;arm")

set(IG_TOKENIZER_ENV "IG_TEST_DATA=${IG_TEST_DATA};IG_MODELS=${IG_MODELS}")
foreach(v llama2-spm gpt2 llama3)
  string(REPLACE "-" "_" name ${v})
  set(cli_arg "")
  if(IG_HAVE_CLI)
    set(cli_arg ${IG_BIN})
  endif()
  add_test(NAME tokenizer_conformance_${name}
    COMMAND test_tokenizer conformance ${IG_TEST_DATA}/tokenizers/vocab-${v}.gguf ${cli_arg}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(tokenizer_conformance_${name} PROPERTIES LABELS "unit;tokenizer"
    ENVIRONMENT "${IG_TOKENIZER_ENV}")
endforeach()

if(IG_HAVE_CLI)
  add_test(NAME tokenizer_cli_help_and_bad_usage
    COMMAND test_tokenizer cli-usage ${IG_BIN} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(tokenizer_cli_help_and_bad_usage PROPERTIES LABELS "unit;tokenizer"
    ENVIRONMENT "${IG_TOKENIZER_ENV}")
endif()

# Llama 3's load time is a speed figure, not a test: `test_tokenizer load-time` prints
# it (bench/run.sh records it); CTest does not time anything.

# libFuzzer: any bytes tokenize losslessly and detokenize to valid UTF-8.
ig_fuzz_target(fuzz_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_tokenizer.c
  LIBS ig_engine SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/tokenizer)
if(TARGET fuzz_tokenizer)
  target_compile_definitions(fuzz_tokenizer PRIVATE IG_TOKENIZER_DATA="${IG_TEST_DATA}/tokenizers")
endif()
