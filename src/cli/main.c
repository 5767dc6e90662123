/*
 * main.c — idlegrid's entry point: dispatches to a subcommand.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand COMMANDS[] = {
    {"up", ig_cmd_up, "run a whole grid on this machine: coordinator, edge and cloud nodes"},
    {"serve", ig_cmd_serve, "run the coordinator: buyer API, node link, scheduler, store"},
    {"node", ig_cmd_node, "run a node agent that serves jobs on this device's engine"},
    {"generate", ig_cmd_generate, "continue a prompt with a model (the engine alone)"},
    {"tokenize", ig_cmd_tokenize, "print the token ids of the text on stdin"},
    {"score", ig_cmd_score, "print the most likely next tokens after a prompt, as JSON"},
    {"bench", ig_cmd_bench, "measure prefill and decode speed against memory bandwidth"},
    {"model", ig_cmd_model, "inspect, synthesise and quantize GGUF models"},
    {"keys", ig_cmd_keys, "create, list and revoke buyer API keys"},
    {"nodes", ig_cmd_nodes, "node enrolment: create one-time enrolment tokens"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: idlegrid COMMAND [options]   (idlegrid COMMAND --help for more)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0)
            return COMMANDS[i].run(argc - 1, argv + 1);
    ig_cli_fail("unknown command '%s' (see 'idlegrid --help')", argv[1]);
    return 2;
}
