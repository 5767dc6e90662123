#!/bin/sh
# The engine's commands refuse bad input with a non-zero exit and a one-line reason:
# a missing model file, an unknown flag, a bad value, a missing argument.
#   model_cli_errors.sh IDLEGRID MODEL
bin=$1
model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

expect_error() { # expect_error DESCRIPTION ARGS...
    what=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$status" -eq 0 ] || [ "$lines" -ne 1 ] || [ -s "$tmp/out" ]; then
        echo "FAIL: $what: exit $status, $lines stderr lines, stdout $(wc -c <"$tmp/out") bytes"
        cat "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok: $what: $(cat "$tmp/err")"
    fi
}

expect_error "generate, missing model file" generate -m "$tmp/nope.gguf" -p hi
expect_error "generate, unknown flag" generate -m "$model" -p hi --bogus 1
expect_error "generate, bad integer" generate -m "$model" -p hi -n many
expect_error "generate, bad temperature" generate -m "$model" -p hi --temp -1
expect_error "generate, bad top-p" generate -m "$model" -p hi --top-p 1.5
expect_error "generate, no prompt" generate -m "$model"
expect_error "generate, flag without value" generate -m "$model" -p
expect_error "generate, bad kernel set" generate -m "$model" -p hi --kernels vax
expect_error "score, missing model file" score -m "$tmp/nope.gguf" -p hi --top 5
expect_error "score, bad top" score -m "$model" -p hi --top 500
expect_error "score, file that is not GGUF" score -m "$0" -p hi
expect_error "model info, missing file" model info "$tmp/nope.gguf"
expect_error "model info, no argument" model info
expect_error "model, unknown subcommand" model frobnicate
expect_error "model quantize, unknown type" model quantize "$model" "$tmp/q.gguf" q3_x
expect_error "model quantize, missing input" model quantize "$tmp/nope.gguf" "$tmp/q.gguf" q8_0
expect_error "model synth, unknown arch" model synth "$tmp/s.gguf" --arch gpt9
expect_error "model synth, bad shape" model synth "$tmp/s.gguf" --arch llama --dim 30 --heads 4
expect_error "model compare, missing text" model compare "$model" "$model" --text "$tmp/none.txt"

# and --help works everywhere, exit 0
for cmd in "generate" "score" "model info" "model synth" "model quantize" "model compare" "model"; do
    # shellcheck disable=SC2086
    if ! "$bin" $cmd --help >/dev/null 2>&1; then
        echo "FAIL: $cmd --help"
        fails=$((fails + 1))
    fi
done
[ "$fails" -eq 0 ] && echo "all CLI error cases pass"
exit "$fails"
