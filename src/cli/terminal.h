/* terminal.h - the client side of the host's WebSocket terminals, shared by
 * hakuriver.docker-shell, hakuriver.task connect and hakuriver.vps connect.
 *
 * On a terminal, stdin is put in raw mode for the session (every key, Ctrl-C and Ctrl-D
 * included, goes to the remote shell) and the window size follows SIGWINCH; otherwise stdin
 * is sent as typed input and its end as Ctrl-D. The terminal is restored on every exit. */
#ifndef HR_CLI_TERMINAL_H
#define HR_CLI_TERMINAL_H

#include <stdint.h>

#include "cli/cli.h"

/* Opens the WebSocket GET PATH on the host of CLI (cli_open must have succeeded: address,
 * port and API token come from its config) and runs the session until the remote shell ends.
 * PATH gets "?rows=R&cols=C" (or "&..." when it has a query) with the local size. WHAT names
 * the target in messages ("container 'env1'", "task 42"): "error: cannot open a shell in
 * WHAT on host H: DETAIL (HTTP 409)". Returns the exit status for the program: the remote
 * shell's status, 128+N after signal N (SIGTERM, SIGHUP...), or CLI_FAIL (1) when the host or
 * the target could not be reached or the session ended without a status. */
int cli_terminal_run (struct cli *cli, const char *path, const char *what);

/* Task connect: cli_terminal_run on GET /task/ID/terminal, a shell in the container of the
 * running Docker or VPS task ID, relayed through its runner (docs/terminal.md). KIND names it
 * in messages ("task", "VPS"). Call after cli_open. Returns as cli_terminal_run. */
int cli_terminal_connect (struct cli *cli, uint64_t id, const char *kind);

#endif
