/* cmd_tokenize.c — placeholder until implemented. */
#include "cli.h"
int ig_cmd_tokenize(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
