/*
 * test_model_bundled.c — the bundled models reproduce their reference outputs
 * through the real command line, for every case in MODEL.expected.json as written:
 *   `idlegrid generate -m MODEL -p PROMPT --temp 0 -n N` prints exactly "greedy", and
 *   with `--stop S` (S a piece of that text) exactly what comes before S;
 *   `idlegrid score -m MODEL -p PROMPT --top 5` lists the "top5" ids in order with
 *   log-probabilities within the tolerance (2e-3 by default).
 *
 *   test_model_bundled IDLEGRID MODEL.gguf EXPECTED.json [TOLERANCE] [extra flags...]
 */
#include "test_model_run.h"

#include <jansson.h>
#include <math.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s IDLEGRID MODEL EXPECTED [TOL] [FLAGS...]\n", argv[0]);
        return 2;
    }
    const char *bin = argv[1], *model = argv[2], *expected = argv[3];
    double tol = argc > 4 ? atof(argv[4]) : 2e-3;
    json_error_t jerr;
    json_t *root = json_load_file(expected, 0, &jerr);
    if (!root) {
        fprintf(stderr, "%s: %s (line %d)\n", expected, jerr.text, jerr.line);
        return 1;
    }
    int failures = 0, stop_checks = 0;
    double worst = 0.0;
    size_t ci;
    json_t *cs;
    json_array_foreach(json_object_get(root, "cases"), ci, cs) {
        const char *prompt = json_string_value(json_object_get(cs, "prompt"));
        const char *greedy = json_string_value(json_object_get(cs, "greedy"));
        json_int_t n = json_integer_value(json_object_get(cs, "n"));
        if (!prompt || !greedy || n <= 0) {
            fprintf(stderr, "case %zu: malformed\n", ci);
            return 1;
        }
        char n_str[32];
        snprintf(n_str, sizeof n_str, "%lld", (long long)n);

        /* generate --temp 0 */
        char *gen_argv[32] = {(char *)bin, "generate", "-m", (char *)model, "-p", (char *)prompt,
                              "--temp", "0", "-n", n_str};
        int k = 10;
        for (int i = 5; i < argc && k < 28; i++) /* room for --stop S NULL */
            gen_argv[k++] = argv[i];
        gen_argv[k] = NULL;
        int status;
        size_t len;
        char *out = run_capture(gen_argv, &status, &len, 0);
        if (!out || status != 0 || len != strlen(greedy) || memcmp(out, greedy, len) != 0) {
            fprintf(stderr, "case %zu (%s): generate exit %d\n  got:      \"%s\"\n  expected: \"%s\"\n",
                    ci, prompt, status, out ? out : "", greedy);
            failures++;
        }
        free(out);

        /* --stop: a piece of the greedy text ends the output right before its first occurrence */
        size_t glen = strlen(greedy);
        if (glen >= 16) {
            char stop[8];
            size_t at = glen / 2;
            while (at < glen && ((unsigned char)greedy[at] & 0xC0) == 0x80)
                at++; /* start on a character boundary */
            snprintf(stop, sizeof stop, "%.5s", greedy + at);
            while (strlen(stop) && ((unsigned char)stop[strlen(stop) - 1] & 0x80))
                stop[strlen(stop) - 1] = '\0'; /* and end on one (ASCII) */
            if (strlen(stop) >= 2) {
                size_t want = (size_t)(strstr(greedy, stop) - greedy);
                gen_argv[k] = "--stop";
                gen_argv[k + 1] = stop;
                gen_argv[k + 2] = NULL;
                out = run_capture(gen_argv, &status, &len, 0);
                stop_checks++;
                if (!out || status != 0 || len != want || memcmp(out, greedy, want) != 0) {
                    fprintf(stderr, "case %zu (%s): --stop \"%s\": got \"%s\", expected the first %zu bytes\n", ci,
                            prompt, stop, out ? out : "", want);
                    failures++;
                }
                free(out);
                gen_argv[k] = NULL;
            }
        }

        /* score --top 5 */
        char *score_argv[32] = {(char *)bin, "score", "-m", (char *)model, "-p", (char *)prompt, "--top", "5"};
        k = 8;
        for (int i = 5; i < argc && k < 30; i++)
            score_argv[k++] = argv[i];
        score_argv[k] = NULL;
        out = run_capture(score_argv, &status, &len, 0);
        json_t *got = out && status == 0 ? json_loads(out, 0, &jerr) : NULL;
        if (!got) {
            fprintf(stderr, "case %zu (%s): score exit %d, output not JSON: %s\n", ci, prompt, status,
                    out ? out : "");
            failures++;
            free(out);
            continue;
        }
        free(out);
        if (!json_equal(json_object_get(got, "prompt_tokens"), json_object_get(cs, "prompt_ids"))) {
            fprintf(stderr, "case %zu (%s): prompt tokens differ from prompt_ids\n", ci, prompt);
            failures++;
        }
        json_t *want_top = json_object_get(cs, "top5"), *got_top = json_object_get(got, "top");
        if (json_array_size(got_top) != json_array_size(want_top)) {
            fprintf(stderr, "case %zu: %zu candidates, expected %zu\n", ci, json_array_size(got_top),
                    json_array_size(want_top));
            failures++;
        }
        for (size_t i = 0; i < json_array_size(want_top) && i < json_array_size(got_top); i++) {
            json_t *w = json_array_get(want_top, i), *g = json_array_get(got_top, i);
            json_int_t wid = json_integer_value(json_object_get(w, "id"));
            json_int_t gid = json_integer_value(json_object_get(g, "id"));
            double d = fabs(json_number_value(json_object_get(w, "logprob")) -
                            json_number_value(json_object_get(g, "logprob")));
            if (d > worst)
                worst = d;
            if (wid != gid || d > tol) {
                fprintf(stderr, "case %zu (%s) rank %zu: got id %lld logprob %.6f, expected id %lld logprob %.6f\n",
                        ci, prompt, i, (long long)gid, json_number_value(json_object_get(g, "logprob")),
                        (long long)wid, json_number_value(json_object_get(w, "logprob")));
                failures++;
            }
        }
        json_decref(got);
    }
    printf("%s: %zu cases (%d with --stop), %d failures, largest top-5 logprob difference %.2e (tolerance %.1e)\n", model,
           json_array_size(json_object_get(root, "cases")), stop_checks, failures, worst, tol);
    json_decref(root);
    return failures ? 1 : 0;
}
