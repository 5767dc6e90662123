#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — what `make bench` runs: builds the benchmark models of issue 3
# (llama, vocab 32000, dim 1024, 16 layers, 16 heads, 4 KV heads, FFN 2816, untied
# output, random weights) with `idlegrid model synth` (F16) and `idlegrid model
# quantize` (Q8_0, Q4_0, Q4_K_M), runs `idlegrid bench --json` on each, and writes
# docs/BENCHMARKS.md: idlegrid's figures beside llama.cpp's reference figures, the
# roofline fractions, the peak RSS check, the machine, and the command.
#
# The models are cached in BUILD_DIR/bench-models (they take minutes to make and do not
# change with the engine); IG_BENCH_FRESH=1 makes them again. A type the quantizer does
# not offer yet is reported as not available in the document, never given a number.
# bench/PROFILE.md (where the time goes, written from profiles by hand) is copied in.
#
# Knobs (environment): IG_BENCH_THREADS (2), IG_BENCH_PROMPT (313), IG_BENCH_GEN (128),
# IG_BENCH_REPEAT (5), IG_BENCH_TYPES ("q8_0 q4_0 q4_k_m"), IG_BENCH_OUT (docs/BENCHMARKS.md),
# IG_BENCH_GRID (1: also run bench/grid_bench.sh, the grid benchmarks of issue 4),
# IG_BENCH_LLAMACPP (1: also measure llama.cpp on this machine, see below),
# IG_BENCH_WRAP (a command each type's measurements run under, e.g. a CPU lock or
# `taskset`; empty by default).
#
# llama.cpp on this machine: the prebuilt CPU libraries of the npm package
# node-llama-cpp (bench/llamacpp, installed by scripts/bench-deps.sh, which `make bench`
# runs). For each type, right after `idlegrid bench` and with the same threads, prompt
# and generation lengths and repeats: llama.cpp's own llama-bench (compiled against
# those libraries by bench/llamacpp/build-llama-bench.sh) gives the reference figures;
# bench/llamacpp/bench.mjs measures the same through node-llama-cpp's API and takes
# llama.cpp's greedy tokens, which build/bench_greedy compares with idlegrid's on the
# same file (a check that both engines compute the same model; not timed).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --measure ]; then MEASURE_ONLY=$3; shift; else MEASURE_ONLY=""; fi
BUILD=${1:-build}
BIN=$BUILD/idlegrid
CACHE=$BUILD/bench-models
OUT=${IG_BENCH_OUT:-docs/BENCHMARKS.md}
THREADS=${IG_BENCH_THREADS:-2}
PROMPT=${IG_BENCH_PROMPT:-313}
GEN=${IG_BENCH_GEN:-128}
REPEAT=${IG_BENCH_REPEAT:-5}
read -r -a TYPES <<<"${IG_BENCH_TYPES:-q8_0 q4_0 q4_k_m}"
SHAPE=(--arch llama --vocab 32000 --dim 1024 --layers 16 --heads 16 --kv-heads 4 --ffn 2816
       --ctx 4096 --seed 1)

# llama.cpp on the issue's machine (2 cores, AVX-512, 30.8 GB/s read bandwidth), 2 threads.
REF_BW=30.8
declare -A REF_FILE=([q8_0]=262 [q4_0]=148 [q4_k_m]=154)
declare -A REF_DECODE=([q8_0]=98 [q4_0]=113 [q4_k_m]=82)
declare -A REF_PREFILL=([q8_0]=681 [q4_0]=831 [q4_k_m]=787)
declare -A LABEL=([q8_0]=Q8_0 [q4_0]=Q4_0 [q4_k_m]=Q4_K_M)

[ -x "$BIN" ] || { echo "bench: $BIN not found; build first (make build)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq is missing; run make deps" >&2; exit 1; }
mkdir -p "$CACHE"
log() { echo "bench: $*" >&2; }

# ---- models --------------------------------------------------------------------------
base=$CACHE/base-f16.gguf
key="synth ${SHAPE[*]} --type f16"
if [ "${IG_BENCH_FRESH:-0}" = 1 ] || [ ! -f "$base" ] || [ "$(cat "$base.key" 2>/dev/null)" != "$key" ]; then
  log "writing the F16 source model (random weights, 246 M parameters)..."
  rm -f "$CACHE"/*.gguf "$CACHE"/*.key
  "$BIN" model synth "$base.tmp" "${SHAPE[@]}" --type f16
  mv "$base.tmp" "$base"
  echo "$key" >"$base.key"
fi

declare -A UNAVAILABLE=()
for t in "${TYPES[@]}"; do
  m=$CACHE/bench-$t.gguf
  if [ ! -f "$m" ] || [ "$base" -nt "$m" ]; then
    log "quantizing to $t..."
    if ! "$BIN" model quantize "$base" "$m.tmp" "$t" 2>"$CACHE/$t.err"; then
      UNAVAILABLE[$t]="\`idlegrid model quantize ... $t\` failed: $(head -c 300 "$CACHE/$t.err" | tr '\n' ' ')"
      rm -f "$m.tmp"
      log "$t not available: ${UNAVAILABLE[$t]}"
      continue
    fi
    mv "$m.tmp" "$m"
  fi
done

# ---- measurements --------------------------------------------------------------------
LLAMACPP_DIR=bench/llamacpp
LB=$(cd "$BUILD" && pwd)/llamacpp/llama-bench
CHECK_GEN=16 # greedy tokens compared after the prompt

# One type's measurements under the same conditions: REPEAT rounds of one idlegrid run
# (`idlegrid bench --repeat 1`: its own warm-up, bandwidth probe and timed run) and one
# llama-bench run (its own warm-up and timed run), alternating, so that a change in the
# shared machine's speed (a VM with noisy neighbours) hits both engines alike; then
# llama.cpp through node-llama-cpp. The rounds are merged into $CACHE/$t.json (medians
# of the runs; the bandwidth and roofline from the median probe) and
# $t.llamabench.json (every run's samples), or the matching .err files.
measure_type() {
  local t=$1 model r
  model=$(cd "$CACHE" && pwd)/bench-$t.gguf
  rm -f "$CACHE/$t.json" "$CACHE/$t.llamabench.json" "$CACHE/$t.llamacpp.json" "$CACHE/$t".round-*.json
  log "measuring $t ($THREADS threads, prompt $PROMPT, gen $GEN, $REPEAT rounds of idlegrid then llama-bench)..."
  for r in $(seq "$REPEAT"); do
    "$BIN" bench -m "$model" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --repeat 1 --json \
      >"$CACHE/$t.round-$r.ig.json" 2>"$CACHE/$t.bench.err" || { rm -f "$CACHE/$t.round-$r.ig.json"; break; }
    [ -n "$LLAMACPP_BINS" ] || continue
    # llama-bench: pp (one batch: n_ubatch 512 >= the prompt) and tg; flash attention
    # left at llama.cpp's default (auto).
    (cd "$LLAMACPP_BINS" && "$LB" -m "$model" -t "$THREADS" -p "$PROMPT" -n "$GEN" \
      -b 512 -ub 512 -r 1 -o json) >"$CACHE/$t.round-$r.lb.json" 2>"$CACHE/$t.llamabench.err" ||
      rm -f "$CACHE/$t.round-$r.lb.json"
  done
  local ig=("$CACHE/$t".round-*.ig.json) lb=("$CACHE/$t".round-*.lb.json)
  if [ -f "${ig[0]}" ]; then
    jq -s 'def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      .[0] as $b | ([.[].bandwidth_gb_s] | median) as $bw | ([.[].decode_tok_s] | median) as $dec |
      $b + {repeat: length, prefill_runs_tok_s: [.[].prefill_tok_s], decode_runs_tok_s: [.[].decode_tok_s],
            bandwidth_runs_gb_s: [.[].bandwidth_gb_s], prefill_tok_s: ([.[].prefill_tok_s] | median),
            decode_tok_s: $dec, bandwidth_gb_s: $bw,
            roofline_tok_s: ($b.roofline_tok_s * $bw / $b.bandwidth_gb_s),
            roofline_fraction: ($dec / ($b.roofline_tok_s * $bw / $b.bandwidth_gb_s)),
            roofline_fraction_file: ($dec / ($b.decode_tok_s / $b.roofline_fraction_file * $bw / $b.bandwidth_gb_s)),
            peak_rss_bytes: ([.[].peak_rss_bytes] | max),
            rss_within_limit: (([.[].peak_rss_bytes] | max) <= $b.rss_limit_bytes)}' "${ig[@]}" >"$CACHE/$t.json"
    jq -r '"bench: \(.type): prefill \(.prefill_tok_s|floor) tok/s, decode \(.decode_tok_s*10|floor/10) tok/s, \(.roofline_fraction*1000|floor/10) % of the roofline"' "$CACHE/$t.json" >&2
  fi
  if [ -f "${lb[0]}" ]; then
    jq -s '.[0] as $b | [range(0; $b | length) as $k | $b[$k] +
      {samples_ts: [.[][$k].samples_ts[]], samples_ns: [.[][$k].samples_ns[]],
       avg_ts: ([.[][$k].samples_ts[]] | add / length)}]' "${lb[@]}" >"$CACHE/$t.llamabench.json"
    jq -r '"bench: llama-bench \(.[0].model_type): prefill \(.[] | select(.n_gen == 0) | .avg_ts | floor) tok/s, decode \(.[] | select(.n_prompt == 0) | .avg_ts * 10 | floor / 10) tok/s"' \
      "$CACHE/$t.llamabench.json" >&2 || true
  fi
  rm -f "$CACHE/$t".round-*.json
  [ -n "$LLAMACPP_BINS" ] || return 0
  if node "$LLAMACPP_DIR/bench.mjs" -m "$model" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" \
      --repeat "$REPEAT" --check-gen "$CHECK_GEN" >"$CACHE/$t.llamacpp.json.tmp" 2>"$CACHE/$t.llamacpp.err"; then
    mv "$CACHE/$t.llamacpp.json.tmp" "$CACHE/$t.llamacpp.json"
    jq -r '"bench: node-llama-cpp: prefill \(.prefill_tok_s|floor) tok/s, decode \(.decode_tok_s*10|floor/10) tok/s (\(.ggml_cpu_variant))"' \
      "$CACHE/$t.llamacpp.json" >&2
  fi
}

# llama.cpp is there when scripts/bench-deps.sh installed it; llama-bench is compiled
# once (cached in BUILD/llamacpp).
LLAMACPP_BINS=""
LLAMACPP_MISSING=""
if [ "${IG_BENCH_LLAMACPP:-1}" != 1 ]; then
  LLAMACPP_MISSING="not measured (IG_BENCH_LLAMACPP=${IG_BENCH_LLAMACPP})"
elif [ ! -d "$LLAMACPP_DIR/node_modules/node-llama-cpp" ]; then
  LLAMACPP_MISSING="not installed: run scripts/bench-deps.sh (make bench does)"
elif ! command -v node >/dev/null; then
  LLAMACPP_MISSING="node is missing: run make deps"
elif [ -n "$MEASURE_ONLY" ]; then
  LLAMACPP_BINS=$(cat "$BUILD/llamacpp/bins" 2>/dev/null || true)
elif LLAMACPP_BINS=$(bash "$LLAMACPP_DIR/build-llama-bench.sh" "$BUILD/llamacpp" 2>"$BUILD/llamacpp.err"); then
  echo "$LLAMACPP_BINS" >"$BUILD/llamacpp/bins"
else
  LLAMACPP_BINS=""
  LLAMACPP_MISSING="llama-bench did not build: $(tail -c 300 "$BUILD/llamacpp.err" | tr '\n' ' ')"
fi
[ -n "$LLAMACPP_MISSING" ] && log "llama.cpp: $LLAMACPP_MISSING"

if [ -n "$MEASURE_ONLY" ]; then
  measure_type "$MEASURE_ONLY"
  exit 0
fi

read -r -a WRAP <<<"${IG_BENCH_WRAP:-}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for t in "${TYPES[@]}"; do
  [ -n "${UNAVAILABLE[$t]:-}" ] && continue
  # Under IG_BENCH_WRAP each type's measurements run in a process of their own.
  "${WRAP[@]}" bash bench/run.sh --measure "$BUILD" "$t"
  if [ ! -f "$CACHE/$t.json" ]; then
    UNAVAILABLE[$t]="\`idlegrid bench\` failed: $(head -c 300 "$CACHE/$t.bench.err" | tr '\n' ' ')"
    log "$t: ${UNAVAILABLE[$t]}"
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The agreement check (not timed): idlegrid's greedy tokens on the same file, after the
# same prompt ids and from BOS alone, against llama.cpp's (from bench.mjs).
declare -A AGREE=()
for t in "${TYPES[@]}"; do
  lj=$CACHE/$t.llamacpp.json
  [ -f "$lj" ] && [ -f "$CACHE/$t.json" ] || continue
  for what in prompt bos; do
    if [ $what = prompt ]; then
      ids=$(jq -r '.prompt_ids | join(" ")' "$lj"); n=$CHECK_GEN; key=greedy_after_prompt
    else
      ids=$(jq -r '.prompt_ids[0]' "$lj"); n=$GEN; key=greedy_from_bos
    fi
    if ! echo "$ids" | "$BUILD/bench_greedy" -m "$CACHE/bench-$t.gguf" --gen "$n" --threads "$THREADS" \
        >"$CACHE/$t.greedy-$what.json" 2>"$CACHE/$t.greedy-$what.err"; then
      AGREE[$t.$what]="bench_greedy failed: $(head -c 200 "$CACHE/$t.greedy-$what.err" | tr '\n' ' ')"
      continue
    fi
    # Tokens equal up to the first difference; the gap between idlegrid's two best
    # logits there tells a near-tie (rounding differences decide it) from a real one.
    AGREE[$t.$what]=$(jq -rn --slurpfile ig "$CACHE/$t.greedy-$what.json" --slurpfile ll "$lj" --arg key "$key" '
      ($ig[0].tokens) as $a | ($ll[0][$key]) as $b |
      ([range(0; [$a, $b] | map(length) | min)] | map(select($a[.] != $b[.])) | first) as $d |
      if $d == null then "\($a | length) of \($a | length) equal"
      else "\($d) of \($a | length) equal, then a \(if $ig[0].top2_gap[$d] < 0.1 then "near-tie" else "DIFFERENCE" end) (idlegrid top-2 logit gap \($ig[0].top2_gap[$d] * 1000 | round / 1000))"
      end')
    log "$t: greedy after the $what: ${AGREE[$t.$what]}"
  done
done

# The grid benchmarks of issue 4 (gateway overhead, coordinator capacity): their own
# script writes a fragment, included below. IG_BENCH_GRID=0 skips them and keeps the
# grid section of the existing document (it names its own date and commit).
GRID_MD=$BUILD/bench-grid/grid.md
rm -f "$GRID_MD"
if [ "${IG_BENCH_GRID:-1}" = 1 ]; then
  bash bench/grid_bench.sh "$BUILD" || log "the grid benchmarks failed (see above)"
elif [ -f "$OUT" ] && grep -q '^## The grid (issue 4)' "$OUT"; then
  mkdir -p "$(dirname "$GRID_MD")"
  awk '/^## The grid \(issue 4\)/ { on = 1 } /^## Reproduce/ { on = 0 } on' "$OUT" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$GRID_MD"
  log "grid benchmarks skipped (IG_BENCH_GRID=0): keeping the grid section of $OUT"
fi

# ---- the document --------------------------------------------------------------------
j() { jq -r "$2" "$CACHE/$1.json"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
lj() { jq -r "$2" "$CACHE/$1.llamacpp.json"; }
# llama-bench's JSON: one object per test; the median of its runs' tok/s.
lb_median() { jq -r ".[] | select($2) | .samples_ts | sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end" "$CACHE/$1.llamabench.json"; }
lb_pp() { lb_median "$1" '.n_gen == 0'; }
lb_tg() { lb_median "$1" '.n_prompt == 0'; }
# A field of the first type's llama.cpp results (the same library for every type).
lj_any() { for t in "${TYPES[@]}"; do [ -f "$CACHE/$t.llamacpp.json" ] && { lj "$t" "$1"; return; }; done; echo "n/a"; }
lb_any() { for t in "${TYPES[@]}"; do [ -f "$CACHE/$t.llamabench.json" ] && { jq -r ".[0]$1" "$CACHE/$t.llamabench.json"; return; }; done; echo "n/a"; }
llama_why() {
  if [ -n "$LLAMACPP_MISSING" ]; then echo "$LLAMACPP_MISSING"
  elif [ -n "${UNAVAILABLE[$1]:-}" ]; then echo "no model"
  else echo "failed: $(tail -c 200 "$CACHE/$1.$2.err" 2>/dev/null | tr '\n|' '  ')"; fi
}

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ncpu=$(nproc)
flags=$(grep -m1 '^flags' /proc/cpuinfo)
simd=""
for f in sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 asimd sve; do
  grep -qw "$f" <<<"$flags" && simd+="$f "
done
missing512=$(grep -qw avx512f <<<"$flags" && echo "" || echo " (no AVX-512)")
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
# The highest cache level cpu0 reports (sysfs), its size and the CPUs sharing it.
llc="not reported"
for d in /sys/devices/system/cpu/cpu0/cache/index*; do
  [ -r "$d/level" ] && [ -r "$d/size" ] || continue
  [ "$(cat "$d/type" 2>/dev/null)" = Instruction ] && continue
  lv=$(cat "$d/level")
  if [ "$llc" = "not reported" ] || [ "$lv" -gt "${llc_level:-0}" ]; then
    llc_level=$lv
    kib=$(tr -d K <"$d/size")
    llc="L$lv, $(calc '%.0f' "$kib / 1024") MiB, shared by CPUs $(cat "$d/shared_cpu_list" 2>/dev/null || echo '?')"
  fi
done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git diff --quiet HEAD -- src 2>/dev/null && echo "" || echo " (with uncommitted changes)")
when=$(date -u '+%Y-%m-%d %H:%M UTC')
first=""
for t in "${TYPES[@]}"; do [ -f "$CACHE/$t.json" ] && [ -z "${UNAVAILABLE[$t]:-}" ] && { first=$t; break; }; done

mkdir -p "$(dirname "$OUT")"
{
cat <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh) on $when from commit \`$commit\`$dirty.
Do not edit by hand: run \`make bench\` again.

## What is measured

The benchmark model of issue 3: \`llama\` architecture, vocabulary 32000, dim 1024,
16 layers, 16 heads, 4 KV heads, FFN 2816, untied output (246 M parameters), random
weights, written by \`idlegrid model synth\` as F16 and re-encoded by
\`idlegrid model quantize\`. Each figure is the median of $REPEAT runs, $THREADS threads;
the runs alternate with llama-bench's (one \`idlegrid bench --repeat 1\`, one
\`llama-bench -r 1\`, $REPEAT times: each with its own warm-up run and, for idlegrid, its
own bandwidth probe), so that the shared machine's changes of speed hit both engines
alike:

- **prefill**: a $PROMPT-token prompt in one batched \`ig_ctx_decode\` from an empty cache;
- **decode**: $GEN tokens one at a time from an empty cache, each the argmax of the last
  logits (llama-bench's \`tg\` test);
- **bytes/token**: what one decoded token reads: every weight matrix (the output matrix
  whole), the norms, one embedding row, and the KV cache at the run's mean context
  ($(calc '%.1f' "($GEN + 1) / 2") positions);
- **bandwidth**: this machine's streaming-read bandwidth, measured in the same process
  right after the runs ($THREADS threads each reading its own part of a 512 MiB buffer,
  best of the passes made in one second);
- **roofline** = bandwidth / bytes per token: the decode speed at which the weights
  stream at full bandwidth. Two fractions are given: of the roofline above ("touched"),
  and of the roofline counting the whole file per token ("file"), which is how
  llama.cpp's "84 % of the roofline" for Q8_0 was computed (98 tok/s × 262 MB /
  30.8 GB/s); the file convention also counts the 32000-row embedding table that a
  token does not read, so it reads higher. The probe's buffer is larger than the
  last-level cache (below), so the bandwidth is memory's; where that cache is nearly as
  large as a model, part of the weights is still in it when the next token reads them,
  and decode can pass the roofline.

## The machine

| | |
|---|---|
| CPU | $cpu, $ncpu cores |
| SIMD | ${simd% }$missing512 |
| kernels used | $( [ -n "$first" ] && j "$first" .kernels || echo "n/a") |
| memory | $mem |
| last-level cache | $llc |
| read bandwidth | $( [ -n "$first" ] && calc '%.1f GB/s' "$(j "$first" .bandwidth_gb_s)" || echo "n/a") (measured in the first run; each run's own below) |
| load average | $load_before before, $load_after after (1, 5, 15 min) |

## llama.cpp on the issue's reference machine (from issue 3)

Measured on a machine of this project's kind: 2 cores, AVX-512, 30.8 GB/s, 2 threads.

| type | file | decode | decode, % of roofline (file) | decode, % of roofline (touched) | prefill ($PROMPT tokens) |
|---|---|---|---|---|---|
EOF
for t in q8_0 q4_0 q4_k_m; do
  rf="$(calc '%.1f' "${REF_DECODE[$t]} * ${REF_FILE[$t]} / ($REF_BW * 1000) * 100") %"
  [ "$t" = q8_0 ] && rf="84 % as published ($rf from the table)"
  if [ -f "$CACHE/$t.json" ]; then
    rt=$(calc '%.1f' "${REF_DECODE[$t]} * $(j "$t" .bytes_per_token) / ($REF_BW * 1e9) * 100")
  else
    rt="n/a"
  fi
  echo "| ${LABEL[$t]} | ${REF_FILE[$t]} MB | ${REF_DECODE[$t]} tok/s | $rf | $rt % | ${REF_PREFILL[$t]} tok/s |"
done
cat <<EOF

The "touched" fraction applies idlegrid's bytes per token for the same type (measured
below) to llama.cpp's speed; the file sizes agree within 1 %.

## idlegrid on this machine

| type | file | prefill | decode | bytes/token | bandwidth | roofline | decode, % of roofline (touched) | decode, % of roofline (file) |
|---|---|---|---|---|---|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  if [ -n "${UNAVAILABLE[$t]:-}" ] || [ ! -f "$CACHE/$t.json" ]; then
    echo "| ${LABEL[$t]} | not available: ${UNAVAILABLE[$t]:-no result} | | | | | | | |"
    continue
  fi
  echo "| ${LABEL[$t]} | $(calc '%.1f MB' "$(j "$t" .file_bytes) / 1e6") | $(calc '%.0f tok/s' "$(j "$t" .prefill_tok_s)") | $(calc '%.1f tok/s' "$(j "$t" .decode_tok_s)") | $(calc '%.1f MB' "$(j "$t" .bytes_per_token) / 1e6") | $(calc '%.1f GB/s' "$(j "$t" .bandwidth_gb_s)") | $(calc '%.1f tok/s' "$(j "$t" .roofline_tok_s)") | $(calc '%.1f %%' "$(j "$t" .roofline_fraction) * 100") | $(calc '%.1f %%' "$(j "$t" .roofline_fraction_file) * 100") |"
done
cat <<EOF

## llama.cpp on this machine

Measured in the same run, right after idlegrid for each type, with the same threads
($THREADS), prompt ($PROMPT tokens, one batch) and generation ($GEN tokens one at a time)
lengths, on the same files. llama.cpp is the prebuilt CPU build of the npm package
node-llama-cpp $(lj_any .node_llama_cpp) (llama.cpp $(lj_any .llama_cpp_release), commit \`$(lb_any .build_commit)\`);
ggml chose its **$(lj_any .ggml_cpu_variant)** CPU variant on this machine (\`$(lj_any .system_info | sed 's/ *|* *$//')\`).

- **llama-bench** (llama.cpp's own benchmark, compiled against that package's libraries
  by bench/llamacpp/build-llama-bench.sh): \`llama-bench -t $THREADS -p $PROMPT -n $GEN -b 512 -ub 512 -r 1\`
  $REPEAT times, each after an idlegrid run, each with its warm-up run; median of the
  $REPEAT runs' tok/s; flash attention and the KV cache
  type at llama.cpp's defaults (auto, f16; idlegrid's KV cache is f32). These are the
  figures idlegrid is judged against below.
- **via node-llama-cpp** (bench/llamacpp/bench.mjs: the addon's batch and decode calls,
  no sampling timed): the same libraries driven from JavaScript, a cross-check of the
  llama-bench figures rather than the reference. Unlike llama-bench, the addon attaches
  no persistent ggml thread pool (each \`llama_decode\` starts and joins its worker
  thread) and each call crosses from JavaScript to a libuv worker thread and back;
  "JS overhead" is the wall-clock time per decoded token beyond llama.cpp's own clock
  (\`llama_perf_context\`).

| type | llama-bench prefill | llama-bench decode | decode, % of roofline (touched) | via node-llama-cpp: prefill | decode | decode, llama.cpp's clock | JS overhead per token |
|---|---|---|---|---|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  if [ ! -f "$CACHE/$t.llamabench.json" ]; then
    echo "| ${LABEL[$t]} | not available: $(llama_why "$t" llamabench) | | | | | | |"
    continue
  fi
  row="| ${LABEL[$t]} | $(calc '%.0f tok/s' "$(lb_pp "$t")") | $(calc '%.1f tok/s' "$(lb_tg "$t")") | "
  if [ -f "$CACHE/$t.json" ]; then
    row+="$(calc '%.1f %%' "$(lb_tg "$t") / $(j "$t" .roofline_tok_s) * 100") | "
  else
    row+="n/a | "
  fi
  if [ -f "$CACHE/$t.llamacpp.json" ]; then
    row+="$(calc '%.0f tok/s' "$(lj "$t" .prefill_tok_s)") | $(calc '%.1f tok/s' "$(lj "$t" .decode_tok_s)") | $(lj "$t" 'if .decode_tok_s_internal then "\(.decode_tok_s_internal * 10 | round / 10) tok/s" else "n/a" end') | $(lj "$t" 'if .js_overhead_us_per_token then "\(.js_overhead_us_per_token | round) µs" else "n/a" end') |"
  else
    row+="not available: $(llama_why "$t" llamacpp) | | | |"
  fi
  echo "$row"
done
cat <<EOF

**Do both engines compute the same model?** With random weights the greedy tokens are
a sensitive check: a difference in the computation (tensor layout, RoPE, norms,
attention, quantization) changes them within a token or two. idlegrid
(build/bench_greedy, f32 KV cache) and llama.cpp (its greedy sampler, through
node-llama-cpp) continue the same token ids on the same file: after the $PROMPT-token
prompt (prefilled in one batch) for $CHECK_GEN tokens, and from BOS alone for $GEN tokens
(the decode benchmark's sequence). Tokens are compared up to the first difference;
where idlegrid's two best logits are within 0.1 of each other (a near-tie) the
engines' rounding decides, so a difference there is expected.

| type | after the prompt | from BOS |
|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  echo "| ${LABEL[$t]} | ${AGREE[$t.prompt]:-not checked} | ${AGREE[$t.bos]:-not checked} |"
done
cat <<EOF

## Against the goal

Goal (issue 3): decode ≥ 1.1× and prefill ≥ 1.0× llama.cpp "on the same model, the
same machine, the same thread count". **The same-machine comparison is the primary
judgement**: idlegrid against llama-bench, both measured in this run on these files
with $THREADS threads.

| type | llama.cpp prefill | idlegrid prefill | idlegrid / llama.cpp | prefill goal (≥ 1.0×) met | llama.cpp decode | idlegrid decode | idlegrid / llama.cpp | decode goal (≥ 1.1×) met |
|---|---|---|---|---|---|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  if [ ! -f "$CACHE/$t.json" ] || [ ! -f "$CACHE/$t.llamabench.json" ]; then
    echo "| ${LABEL[$t]} | $( [ -f "$CACHE/$t.llamabench.json" ] && calc '%.0f tok/s' "$(lb_pp "$t")" || echo "not available") | $( [ -f "$CACHE/$t.json" ] && calc '%.0f tok/s' "$(j "$t" .prefill_tok_s)" || echo "not available") | | | | | | |"
    continue
  fi
  lpp=$(lb_pp "$t"); ltg=$(lb_tg "$t"); ipp=$(j "$t" .prefill_tok_s); itg=$(j "$t" .decode_tok_s)
  echo "| ${LABEL[$t]} | $(calc '%.0f tok/s' "$lpp") | $(calc '%.0f tok/s' "$ipp") | $(calc '%.2f×' "$ipp / $lpp") | $(awk "BEGIN { print ($ipp >= $lpp) ? \"yes\" : \"no\" }") | $(calc '%.1f tok/s' "$ltg") | $(calc '%.1f tok/s' "$itg") | $(calc '%.2f×' "$itg / $ltg") | $(awk "BEGIN { print ($itg >= 1.1 * $ltg) ? \"yes\" : \"no\" }") |"
done
cat <<EOF

Secondary: against the issue's reference figures, from another machine (with AVX-512),
so only comparable through the roofline. Decode is judged by the roofline fraction
(same convention on both sides): the goal is 1.1 × llama.cpp's fraction there, turned
into tokens/s on this machine. Prefill is arithmetic-bound and shown raw beside the
reference.

| type | decode here | goal here (1.1 × llama.cpp's fraction × this roofline) | decode goal met | prefill here | llama.cpp prefill (AVX-512 machine) | prefill ratio |
|---|---|---|---|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  if [ -n "${UNAVAILABLE[$t]:-}" ] || [ ! -f "$CACHE/$t.json" ]; then
    echo "| ${LABEL[$t]} | not available | | | | ${REF_PREFILL[$t]} tok/s | |"
    continue
  fi
  dec=$(j "$t" .decode_tok_s)
  # llama.cpp's touched-bytes fraction times this machine's roofline, times 1.1.
  goal=$(calc '%.1f' "1.1 * ${REF_DECODE[$t]} * $(j "$t" .bytes_per_token) / ($REF_BW * 1e9) * $(j "$t" .roofline_tok_s)")
  met=$(awk "BEGIN { print ($dec >= $goal) ? \"yes\" : \"no\" }")
  echo "| ${LABEL[$t]} | $(calc '%.1f tok/s' "$dec") | $goal tok/s | $met | $(calc '%.0f tok/s' "$(j "$t" .prefill_tok_s)") | ${REF_PREFILL[$t]} tok/s | $(calc '%.2f×' "$(j "$t" .prefill_tok_s) / ${REF_PREFILL[$t]}") |"
done
cat <<EOF

## Resident memory

Claim: while generating, the process's resident memory stays within the model file +
the KV cache + 64 MiB (weights are mmapped, never copied). Peak RSS is the process's
\`ru_maxrss\` after all prefill and decode runs, before the bandwidth probe allocates
its buffer. KV cache: $(j "${first:-q8_0}" .kv_type 2>/dev/null || echo f32), for the longer of the two runs ($( [ "$PROMPT" -gt "$GEN" ] && echo "$PROMPT" || echo "$GEN") positions).

| type | peak RSS | file | KV cache | file + KV + 64 MiB | within |
|---|---|---|---|---|---|
EOF
for t in "${TYPES[@]}"; do
  if [ -n "${UNAVAILABLE[$t]:-}" ] || [ ! -f "$CACHE/$t.json" ]; then
    echo "| ${LABEL[$t]} | not available | | | | |"
    continue
  fi
  echo "| ${LABEL[$t]} | $(calc '%.1f MB' "$(j "$t" .peak_rss_bytes) / 1e6") | $(calc '%.1f MB' "$(j "$t" .file_bytes) / 1e6") | $(calc '%.1f MB' "$(j "$t" .kv_cache_bytes) / 1e6") | $(calc '%.1f MB' "$(j "$t" .rss_limit_bytes) / 1e6") | $(j "$t" 'if .rss_within_limit then "yes" else "NO" end') |"
done
cat <<EOF

## Every run

EOF
for t in "${TYPES[@]}"; do
  if [ -n "${UNAVAILABLE[$t]:-}" ] || [ ! -f "$CACHE/$t.json" ]; then
    echo "- ${LABEL[$t]}: not available — ${UNAVAILABLE[$t]:-no result}"
    continue
  fi
  echo "- ${LABEL[$t]}: prefill $(j "$t" '[.prefill_runs_tok_s[] | . * 10 | round / 10] | join(", ")') tok/s; decode $(j "$t" '[.decode_runs_tok_s[] | . * 10 | round / 10] | join(", ")') tok/s; bandwidth $(j "$t" '[(.bandwidth_runs_gb_s // [.bandwidth_gb_s])[] | . * 100 | round / 100] | join(", ")') GB/s (median $(calc '%.2f' "$(j "$t" .bandwidth_gb_s)"))"
done
for t in "${TYPES[@]}"; do
  if [ -f "$CACHE/$t.llamabench.json" ]; then
    echo "- ${LABEL[$t]}, llama-bench: prefill $(jq -r '[.[] | select(.n_gen == 0) | .samples_ts[] | . * 10 | round / 10] | join(", ")' "$CACHE/$t.llamabench.json") tok/s; decode $(jq -r '[.[] | select(.n_prompt == 0) | .samples_ts[] | . * 10 | round / 10] | join(", ")' "$CACHE/$t.llamabench.json") tok/s"
  fi
  if [ -f "$CACHE/$t.llamacpp.json" ]; then
    echo "- ${LABEL[$t]}, via node-llama-cpp: prefill $(lj "$t" '[.prefill_runs_tok_s[] | . * 10 | round / 10] | join(", ")') tok/s; decode $(lj "$t" '[.decode_runs_tok_s[] | . * 10 | round / 10] | join(", ")') tok/s; CPU time / wall time while decoding $(calc '%.2f' "$(lj "$t" .decode_cpu_per_wall)")"
  fi
done
if [ -f bench/PROFILE.md ]; then
  echo
  cat bench/PROFILE.md
fi
if [ -f "$GRID_MD" ]; then
  echo
  cat "$GRID_MD"
fi
cat <<EOF

## Reproduce

\`\`\`sh
make bench            # builds, makes the models once (cached in build/bench-models), measures, writes this file
IG_BENCH_FRESH=1 make bench   # also remakes the models
# one model by hand (make bench alternates single runs of the two engines instead):
./build/idlegrid model synth base.gguf ${SHAPE[*]} --type f16
./build/idlegrid model quantize base.gguf q8.gguf q8_0
./build/idlegrid bench -m q8.gguf --threads $THREADS --prompt $PROMPT --gen $GEN --repeat $REPEAT
# llama.cpp on the same file (after scripts/bench-deps.sh):
bash bench/llamacpp/build-llama-bench.sh build/llamacpp     # prints the libraries' directory
(cd "\$(cat build/llamacpp/bins)" && \$OLDPWD/build/llamacpp/llama-bench -m \$OLDPWD/q8.gguf -t $THREADS -p $PROMPT -n $GEN -b 512 -ub 512 -r $REPEAT)
node bench/llamacpp/bench.mjs -m q8.gguf --threads $THREADS --prompt $PROMPT --gen $GEN --repeat $REPEAT
\`\`\`

The numbers are only as quiet as the machine: the load average above says whether
anything else was running.
EOF
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
