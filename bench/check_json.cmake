# check_json.cmake — run by the test bench_json_reports_fields_consistent_with_model_shape
# (tests/bench.cmake): writes a tiny F32 llama model with `idlegrid model synth`, runs
# `idlegrid bench --json` on it, and checks the object: every required field present,
# speeds positive, bytes per token equal to what the model's shape says, the roofline
# fraction consistent with the other figures, the RSS figures coherent.
# Not a timing test: no speed threshold.
#   cmake -DIG_BIN=path/to/idlegrid -DWORK=scratch/dir -P check_json.cmake
cmake_minimum_required(VERSION 3.19)

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(model ${WORK}/tiny-f32.gguf)

# The shape, from which the expected byte counts follow.
set(vocab 512)
set(dim 64)
set(layers 2)
set(heads 4)
set(kv_heads 2)
set(ffn 128)
set(prompt 24)
set(gen 9)

execute_process(COMMAND ${IG_BIN} model synth ${model} --arch llama --vocab ${vocab}
                  --dim ${dim} --layers ${layers} --heads ${heads} --kv-heads ${kv_heads}
                  --ffn ${ffn} --type f32
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "model synth failed (${rc}): ${err}")
endif()

execute_process(COMMAND ${IG_BIN} bench -m ${model} --json --threads 1 --prompt ${prompt}
                  --gen ${gen} --repeat 2 --kv f32 --bw-mb 8 --bw-seconds 0
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bench failed (${rc}): ${err}")
endif()
string(JSON type ERROR_VARIABLE jerr TYPE "${out}")
if(jerr OR NOT type STREQUAL "OBJECT")
  message(FATAL_ERROR "bench --json did not print one JSON object: ${jerr}\n${out}")
endif()

function(get key outvar)
  string(JSON v ERROR_VARIABLE jerr GET "${out}" ${key})
  if(jerr)
    message(FATAL_ERROR "bench --json: field '${key}' missing: ${jerr}\n${out}")
  endif()
  set(${outvar} ${v} PARENT_SCOPE)
endfunction()

# Numbers come as JSON reals; CMake's math() is integer-only, so comparisons of reals
# go through a small awk call.
function(check_expr what expr)
  execute_process(COMMAND awk "BEGIN { exit !(${expr}) }" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bench --json: ${what} does not hold: ${expr}\n${out}")
  endif()
endfunction()

foreach(k prefill_tok_s decode_tok_s bytes_per_token bandwidth_gb_s roofline_fraction
          threads type kernels file_bytes peak_rss_bytes kv_cache_bytes rss_limit_bytes
          weight_bytes_per_token roofline_tok_s)
  get(${k} ${k})
endforeach()

check_expr("prefill speed is positive and finite" "${prefill_tok_s} > 0 && ${prefill_tok_s} < 1e9")
check_expr("decode speed is positive and finite" "${decode_tok_s} > 0 && ${decode_tok_s} < 1e9")
check_expr("bandwidth is plausible" "${bandwidth_gb_s} > 0.05 && ${bandwidth_gb_s} < 100000")
if(NOT threads EQUAL 1)
  message(FATAL_ERROR "threads is ${threads}, asked for 1")
endif()
if(NOT type STREQUAL "f32")
  message(FATAL_ERROR "type is '${type}', the model is f32")
endif()
if(kernels STREQUAL "")
  message(FATAL_ERROR "kernels is empty")
endif()
file(SIZE ${model} size)
if(NOT file_bytes EQUAL size)
  message(FATAL_ERROR "file_bytes ${file_bytes} but the file has ${size} bytes")
endif()

# Weights one token reads: per layer the 7 matrices and 2 norms, then the output norm,
# the whole output matrix and one embedding row; all F32.
math(EXPR head_dim "${dim} / ${heads}")
math(EXPR kv_dim "${kv_heads} * ${head_dim}")
math(EXPR per_layer "${dim} * ${dim} * 2 + ${dim} * ${kv_dim} * 2 + ${dim} * ${ffn} * 3 + 2 * ${dim}")
math(EXPR weights "4 * (${layers} * ${per_layer} + ${dim} + ${vocab} * ${dim} + ${dim})")
if(NOT weight_bytes_per_token EQUAL weights)
  message(FATAL_ERROR "weight_bytes_per_token ${weight_bytes_per_token}, the shape says ${weights}")
endif()
# Plus the F32 KV cache read at the mean context of a decode from empty: (gen + 1) / 2.
math(EXPR kv_pos "2 * ${layers} * ${kv_dim} * 4")
check_expr("bytes_per_token = weights + KV at the mean context"
           "${bytes_per_token} == ${weights} + ${kv_pos} * (${gen} + 1) / 2")
check_expr("roofline_tok_s = bandwidth / bytes_per_token"
           "(${roofline_tok_s} - ${bandwidth_gb_s} * 1e9 / ${bytes_per_token}) ^ 2 < (1e-4 * ${roofline_tok_s}) ^ 2")
check_expr("roofline_fraction = decode / roofline"
           "(${roofline_fraction} - ${decode_tok_s} / ${roofline_tok_s}) ^ 2 < (1e-4 * ${roofline_fraction}) ^ 2")

# The KV cache holds the longer of the two runs; the RSS limit is file + KV + 64 MiB.
math(EXPR kv_expected "${kv_pos} * ${prompt}")
if(NOT kv_cache_bytes EQUAL kv_expected)
  message(FATAL_ERROR "kv_cache_bytes ${kv_cache_bytes}, expected ${kv_expected}")
endif()
math(EXPR limit "${file_bytes} + ${kv_cache_bytes} + 67108864")
if(NOT rss_limit_bytes EQUAL limit)
  message(FATAL_ERROR "rss_limit_bytes ${rss_limit_bytes}, expected ${limit}")
endif()
# The process held at least the model file's touched pages; a tiny model fits easily.
check_expr("peak RSS is positive and within the limit" "${peak_rss_bytes} > 0 && ${peak_rss_bytes} <= ${limit}")

# A tied model reads its output matrix (the embedding table) once, not once plus a row.
set(tied ${WORK}/tiny-tied.gguf)
execute_process(COMMAND ${IG_BIN} model synth ${tied} --arch llama --vocab ${vocab}
                  --dim ${dim} --layers ${layers} --heads ${heads} --kv-heads ${kv_heads}
                  --ffn ${ffn} --type f32 --tied
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "model synth --tied failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${IG_BIN} bench -m ${tied} --json --threads 2 --prompt 4 --gen 3
                  --repeat 1 --bw-mb 4 --bw-seconds 0
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bench on the tied model failed (${rc}): ${err}")
endif()
get(weight_bytes_per_token tied_weights)
math(EXPR expected "4 * (${layers} * ${per_layer} + ${dim} + ${vocab} * ${dim})")
if(NOT tied_weights EQUAL expected)
  message(FATAL_ERROR "tied model: weight_bytes_per_token ${tied_weights}, the shape says ${expected}")
endif()
get(threads threads)
if(NOT threads EQUAL 2)
  message(FATAL_ERROR "tied model: threads is ${threads}, asked for 2")
endif()

message(STATUS "bench --json ok: prefill ${prefill_tok_s} tok/s, decode ${decode_tok_s} tok/s, ${bandwidth_gb_s} GB/s")
