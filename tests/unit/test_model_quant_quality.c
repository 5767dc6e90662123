/*
 * test_model_quant_quality.c — a quantized copy made by `idlegrid model quantize`
 * stays close to the original: over the held-out corpus (tokenized with BOS, first N
 * tokens, teacher-forced, every position) `idlegrid model compare` must report an
 * argmax agreement of at least MIN_AGREE and a mean KL(original || quantized) below
 * MAX_KL.
 *
 *   test_model_quant_quality IDLEGRID MODEL TYPE MIN_AGREE MAX_KL CORPUS OFFSET TOKENS OUT.gguf
 */
#include "test_model_run.h"

#include <jansson.h>

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: %s IDLEGRID MODEL TYPE MIN_AGREE MAX_KL CORPUS OFFSET TOKENS OUT\n", argv[0]);
        return 2;
    }
    char *bin = argv[1], *model = argv[2], *type = argv[3], *corpus = argv[6], *offset = argv[7],
         *tokens = argv[8], *out_path = argv[9];
    double min_agree = atof(argv[4]), max_kl = atof(argv[5]);
    int status;
    char *q_argv[] = {bin, "model", "quantize", model, out_path, type, NULL};
    char *out = run_capture(q_argv, &status, NULL, 0);
    free(out);
    if (status != 0) {
        fprintf(stderr, "model quantize %s failed (exit %d)\n", type, status);
        return 1;
    }
    char *c_argv[] = {bin, "model", "compare", model, out_path, "--text", corpus, "--offset", offset,
                      "--tokens", tokens, "--json", NULL};
    out = run_capture(c_argv, &status, NULL, 0);
    json_error_t jerr;
    json_t *r = out && status == 0 ? json_loads(out, 0, &jerr) : NULL;
    if (!r) {
        fprintf(stderr, "model compare failed (exit %d): %s\n", status, out ? out : "");
        free(out);
        return 1;
    }
    free(out);
    double agree = json_number_value(json_object_get(r, "argmax_agreement"));
    double kl = json_number_value(json_object_get(r, "mean_kl"));
    json_int_t positions = json_integer_value(json_object_get(r, "positions"));
    json_decref(r);
    printf("%s: %lld positions, argmax agreement %.2f %% (need >= %.2f %%), mean KL %.6f (need < %.6f)\n", type,
           (long long)positions, agree * 100, min_agree * 100, kl, max_kl);
    unlink(out_path);
    return positions == atoi(tokens) && agree >= min_agree && kl < max_kl ? 0 : 1;
}
