/* terminal.h - task connect on the runner: the "term" command opens a shell in a supervised
 * task's container and dials the host back with it (docs/terminal.md). */
#ifndef HR_RUNNER_TERMINAL_H
#define HR_RUNNER_TERMINAL_H

#include <jansson.h>

struct runner;

/* Handles one "term" command from the poll ({"task_id","attempt","session","rows","cols"}):
 * checks that this runner supervises that attempt in a started container and starts a
 * detached thread that dials GET /runner/terminal/SESSION and relays the shell, or, when the
 * task does not qualify, only sends the reason as an error message. A session id seen before
 * is ignored (a command may be delivered twice). Never blocks. */
void terminal_command (struct runner *r, json_t *cmd);

/* Asks every open session to end (an error message, close 1001, the shell hung up) and waits
 * for them, at most about 3 s. Call once the loop has stopped. */
void terminal_shutdown (void);

#endif
