/* cmd_node.c — placeholder until implemented. */
#include "cli.h"
int ig_cmd_node(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
