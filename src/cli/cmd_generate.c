/* cmd_generate.c — placeholder until implemented. */
#include "cli.h"
int ig_cmd_generate(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
int ig_cmd_score(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
