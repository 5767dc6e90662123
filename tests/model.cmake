# The model, forward pass, sampler and generation loop (src/engine/model.c, forward.c,
# sample.c, generate.c, synth.c, quantize_model.c) and their command lines
# (src/cli/cmd_generate.c, cmd_model.c).

# Engine-only: synthetic models of both architectures, fast kernels vs the scalar
# reference, score vs generation log-probs, seeded and resumed generation, stop strings.
ig_unit_test(test_model_synth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model_synth.c
  LIBS ig_engine LABELS "unit;model")
set_tests_properties(test_model_synth PROPERTIES TIMEOUT 300)

if(IG_HAVE_CLI)
  pkg_check_modules(IG_TEST_JANSSON REQUIRED IMPORTED_TARGET jansson)

  # The bundled models reproduce models/*.expected.json through `generate` and `score`.
  add_executable(test_model_bundled ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model_bundled.c)
  target_link_libraries(test_model_bundled PRIVATE PkgConfig::IG_TEST_JANSSON m)
  foreach(m edge cloud)
    add_test(NAME model_${m}_generate_and_score_match_expected_outputs
      COMMAND test_model_bundled ${IG_BIN} ${IG_MODELS}/${m}.gguf ${IG_MODELS}/${m}.expected.json 2e-3)
    set_tests_properties(model_${m}_generate_and_score_match_expected_outputs
      PROPERTIES LABELS "integration;model" TIMEOUT 300)
  endforeach()
  # An F16 KV cache stays inside the same tolerance.
  add_test(NAME model_cloud_f16_kv_cache_matches_expected_outputs
    COMMAND test_model_bundled ${IG_BIN} ${IG_MODELS}/cloud.gguf ${IG_MODELS}/cloud.expected.json 2e-3 --kv-type f16)
  set_tests_properties(model_cloud_f16_kv_cache_matches_expected_outputs
    PROPERTIES LABELS "integration;model" TIMEOUT 300)

  # Quantized copies of the cloud model agree with F32 over 256 held-out positions
  # (thresholds: issue 2 for Q8_0; llama.cpp's own figures for Q4_0 and Q4_K_M).
  add_executable(test_model_quant_quality ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model_quant_quality.c)
  target_link_libraries(test_model_quant_quality PRIVATE PkgConfig::IG_TEST_JANSSON)
  foreach(q "q8_0;0.99;0.001" "q4_k_m;0.953;0.0028" "q4_0;0.777;0.091")
    list(GET q 0 type)
    list(GET q 1 agree)
    list(GET q 2 kl)
    add_test(NAME model_cloud_${type}_agrees_with_f32_on_held_out_text
      COMMAND test_model_quant_quality ${IG_BIN} ${IG_MODELS}/cloud.gguf ${type} ${agree} ${kl}
              ${IG_TEST_DATA}/corpus/tinyshakespeare.txt 1008233 256
              ${CMAKE_CURRENT_BINARY_DIR}/cloud-${type}.gguf)
    set_tests_properties(model_cloud_${type}_agrees_with_f32_on_held_out_text
      PROPERTIES LABELS "integration;model" TIMEOUT 300)
  endforeach()

  # Bad input on the command line: non-zero exit, one line of reason.
  add_test(NAME model_cli_rejects_bad_input_with_one_line_reason
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/scripts/model_cli_errors.sh ${IG_BIN} ${IG_MODELS}/edge.gguf)
  set_tests_properties(model_cli_rejects_bad_input_with_one_line_reason PROPERTIES LABELS "integration;model")
endif()
