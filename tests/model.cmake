# The model, forward pass, sampler and generation loop (src/engine/model.c, forward.c,
# sample.c, generate.c, synth.c, quantize_model.c) and their command lines
# (src/cli/cmd_generate.c, cmd_model.c).

# Engine-only, on synthetic models of both architectures (tied and untied, GQA and not,
# every weight type): one executable, one CTest entry per behaviour.
add_executable(test_model_synth ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model_synth.c)
target_include_directories(test_model_synth PRIVATE ${PROJECT_SOURCE_DIR}/src/engine)
target_link_libraries(test_model_synth PRIVATE ig_engine)
target_compile_options(test_model_synth PRIVATE -fno-tree-vectorize)
# Behaviours that also run in the aarch64 cross-build under qemu (label "arm"):
# scripts/test-arm.sh builds tests by name, so each is its own target running one group.
function(ig_model_arm_test name group)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model_synth.c)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src/engine)
  target_link_libraries(${name} PRIVATE ig_engine)
  # gcc 12's aarch64 vectorizer hits an internal error on this file; the test needs no SIMD.
  target_compile_options(${name} PRIVATE -fno-tree-vectorize)
  add_test(NAME ${name} COMMAND ${name} ${group} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "unit;model;arm" TIMEOUT 600
    ENVIRONMENT "IG_TEST_DATA=${IG_TEST_DATA};IG_MODELS=${IG_MODELS};IG_BUILD=${CMAKE_BINARY_DIR}")
endfunction()
# The fast kernels equal the scalar reference on full forward passes.
ig_model_arm_test(model_fast_kernels_equal_scalar_reference_on_full_forward kernels)
# Batched prefill equals one token at a time, bit for bit (what resuming a job on another
# node relies on).
ig_model_arm_test(model_batched_prefill_equals_one_token_at_a_time_bit_for_bit batch)

foreach(g "sampler;model_sampler_draw_is_a_pure_function_of_seed_and_position"
          "cache;model_truncated_kv_cache_continues_like_a_full_pass"
          "generation;model_score_equals_generation_logprobs_and_seeded_resume_is_identical"
          "chat;model_chat_templates_use_control_tokens_and_never_parse_content")
  list(GET g 0 group)
  list(GET g 1 name)
  add_test(NAME ${name} COMMAND test_model_synth ${group} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "unit;model" TIMEOUT 300
    ENVIRONMENT "IG_TEST_DATA=${IG_TEST_DATA};IG_MODELS=${IG_MODELS};IG_BUILD=${CMAKE_BINARY_DIR}")
endforeach()

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

if(IG_HAVE_CLI)
  # `model synth` of both architectures, tied and untied, GQA and not, several types
  # and a copied gpt2 vocabulary: `model info --json` reports exactly what was asked.
  add_test(NAME model_synth_writes_the_shapes_info_reports
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/scripts/model_synth_info.sh ${IG_BIN}
            ${IG_TEST_DATA}/tokenizers/vocab-gpt2.gguf)
  set_tests_properties(model_synth_writes_the_shapes_info_reports PROPERTIES LABELS "integration;model" TIMEOUT 300)
endif()
