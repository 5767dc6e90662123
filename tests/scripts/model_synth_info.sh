#!/bin/sh
# `idlegrid model synth` writes the model asked for: `model info --json` reports the
# architecture, shapes, tying and weight type requested and exactly the parameter count
# those shapes imply; `generate` runs on it; `model quantize` re-encodes it.
#   model_synth_info.sh IDLEGRID GPT2_VOCAB.gguf
bin=$1
gpt2=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

check() { # check ARCH TIED(0|1) HEADS KV_HEADS TYPE [--tokenizer-from F]
    arch=$1 tied=$2 heads=$3 kv=$4 type=$5
    shift 5
    dim=64 layers=2 ffn=96 vocab=300
    out="$tmp/$arch-$tied-$kv-$type.gguf"
    tied_flag=""
    [ "$tied" = 1 ] && tied_flag="--tied"
    if ! "$bin" model synth "$out" --arch "$arch" --vocab $vocab --dim $dim --layers $layers --heads "$heads" \
        --kv-heads "$kv" --ffn $ffn --type "$type" $tied_flag "$@"; then
        fail "synth $arch tied=$tied kv=$kv $type"
        return
    fi
    info=$("$bin" model info "$out" --json) || { fail "info $out"; return; }
    n_vocab=$(echo "$info" | jq .n_vocab)
    kvd=$((dim / heads * kv))
    per_layer=$((2 * dim + dim * dim + 2 * dim * kvd + dim * dim + 3 * dim * ffn))
    [ "$arch" = qwen2 ] && per_layer=$((per_layer + dim + 2 * kvd))
    want=$((n_vocab * dim + layers * per_layer + dim))
    [ "$tied" = 0 ] && want=$((want + n_vocab * dim))
    got=$(echo "$info" | jq -r '[.architecture, .n_embd, .n_layer, .n_head, .n_head_kv, .n_ff, .tied_output, .main_type, .n_params] | map(tostring) | join(" ")')
    tied_json=false
    [ "$tied" = 1 ] && tied_json=true
    expect="$arch $dim $layers $heads $kv $ffn $tied_json $type $want"
    if [ "$got" != "$expect" ]; then
        fail "info of $arch tied=$tied kv=$kv $type: got '$got', expected '$expect'"
    else
        echo "ok: $expect"
    fi
    text=$("$bin" generate -m "$out" -p "hello" -n 8 --temp 0) || fail "generate on $out"
    [ -n "$text" ] || echo "note: $out generated empty text"
}

check llama 0 4 4 f32
check llama 1 4 2 f16
check qwen2 0 4 2 q8_0
check qwen2 1 8 1 f32 --tokenizer-from "$gpt2"
check llama 0 4 2 bf16 --tokenizer-from "$gpt2"

# the gpt2 vocabulary is carried over
tok=$("$bin" model info "$tmp/qwen2-1-1-f32.gguf" --json | jq -r .tokenizer.model)
[ "$tok" = gpt2 ] || fail "tokenizer of the qwen2 model is '$tok', expected gpt2"

# quantize re-encodes it: q8_0 weights, the same parameter count
"$bin" model quantize "$tmp/llama-0-4-f32.gguf" "$tmp/q.gguf" q8_0 || fail "quantize"
a=$("$bin" model info "$tmp/llama-0-4-f32.gguf" --json | jq .n_params)
b=$("$bin" model info "$tmp/q.gguf" --json | jq -r '"\(.n_params) \(.main_type)"')
[ "$b" = "$a q8_0" ] || fail "quantized info: '$b', expected '$a q8_0'"

[ "$fails" -eq 0 ] && echo "all synth/info cases pass"
exit "$fails"
