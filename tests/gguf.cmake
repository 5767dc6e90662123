# GGUF reader and writer (src/engine/gguf.c, gguf_write.c): round trips, corrupted
# files refused with the right message and offset, the bundled models and vocabularies,
# and a libFuzzer target on ig_gguf_open_buffer. Engine-only: also runs under qemu.
ig_unit_test(test_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gguf.c
  LIBS ig_engine LABELS "unit;gguf")

ig_fuzz_target(fuzz_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gguf.c
  LIBS ig_engine SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/gguf)

# `idlegrid model info` on broken copies of the edge model: each must exit non-zero
# with one line naming the defect and its byte offset. The copies are made by
# test_gguf --write-corrupt into the build tree before these tests run.
if(IG_HAVE_CLI)
  set(IG_GGUF_CORRUPT ${CMAKE_BINARY_DIR}/gguf-corrupt)
  add_test(NAME gguf_write_corrupt_models COMMAND test_gguf --write-corrupt ${IG_GGUF_CORRUPT}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(gguf_write_corrupt_models PROPERTIES FIXTURES_SETUP gguf_corrupt
    LABELS "integration;gguf" ENVIRONMENT "IG_MODELS=${IG_MODELS}")

  function(ig_gguf_cli_refuses name file regex)
    add_test(NAME ${name}
      COMMAND sh -c "out=$(\"$0\" model info \"$1\" 2>&1); rc=$?; printf '%s\\n' \"$out\"; [ $rc -ne 0 ] && [ \"$(printf '%s\\n' \"$out\" | wc -l)\" -eq 1 ] && printf '%s\\n' \"$out\" | grep -Eq \"$2\""
              ${IG_BIN} ${file} "${regex}")
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED gguf_corrupt LABELS "integration;gguf")
  endfunction()

  ig_gguf_cli_refuses(test_cli_model_info_refuses_truncated_file_naming_tensor_and_offset
    ${IG_GGUF_CORRUPT}/truncated.gguf
    "offset [0-9]+: tensor 'blk\\.0\\.ffn_down\\.weight'.* lies past the end of the [0-9]+-byte file")
  ig_gguf_cli_refuses(test_cli_model_info_refuses_wrong_magic_at_offset_0
    ${IG_GGUF_CORRUPT}/bad-magic.gguf "gguf: offset 0: bad magic 'GGML'.*not a GGUF file")
  ig_gguf_cli_refuses(test_cli_model_info_refuses_absurd_tensor_count_at_offset_8
    ${IG_GGUF_CORRUPT}/absurd-tensor-count.gguf
    "gguf: offset 8: tensor count 18446744073709551615 exceeds what a [0-9]+-byte file can hold")
  ig_gguf_cli_refuses(test_cli_model_info_refuses_unsupported_type_by_name
    ${IG_GGUF_CORRUPT}/iq2_xxs-tensor.gguf
    "offset [0-9]+: tensor 'blk\\.0\\.attn_q\\.weight' has type iq2_xxs \\(16\\), which idlegrid does not support")
  ig_gguf_cli_refuses(test_cli_model_info_refuses_non_utf8_key
    ${IG_GGUF_CORRUPT}/non-utf8-key.gguf "gguf: offset [0-9]+: key 1 is not valid UTF-8")
  ig_gguf_cli_refuses(test_cli_model_info_refuses_missing_file_naming_it
    ${IG_GGUF_CORRUPT}/no-such-model.gguf "no-such-model\\.gguf.*No such file")
endif()
