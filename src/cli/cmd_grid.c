/* cmd_grid.c — placeholder until implemented: split into cmd_serve.c, cmd_up.c,
 * cmd_keys.c (coordinator side) and cmd_node.c (node side). */
#include "cli.h"
int ig_cmd_serve(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
int ig_cmd_up(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
int ig_cmd_keys(int argc, char **argv) { (void)argc; ig_cli_fail("%s: not implemented yet", argv[0]); return 1; }
