/* spawner.h - starts the executors' per-task shim processes from a small resident helper
 * (comm "hr-spawner") instead of forking the runner itself.
 *
 *   runner ──socketpair──> hr-spawner (forked once at start-up, single-threaded, small)
 *                             └─fork──> shim (runs the executor's handler)
 *
 * Why: a shim lives as long as its task. Forked from the runner, it shares the runner's
 * whole address space copy-on-write, so every page the runner writes afterwards faults
 * (with a TLB shootdown) once per live shim, and the shim's own fork of the task copies the
 * runner's page tables again. Forking from a process that stays small makes both cheap.
 *
 * A request carries a handler number (registered before spawner_start, so the helper knows
 * it), a byte message (written to a memfd) and up to SPAWN_MAX_FDS descriptors (SCM_RIGHTS;
 * -1 entries allowed). The helper forks, the child reads the message and calls the handler,
 * which never returns; the helper answers with the child's pid and a pidfd for it. When the
 * helper is not running (not started, or it died and could not be restarted), the runner
 * forks the child itself and calls the same handler: one code path for the shim either way.
 *
 * The helper dies with the runner (PR_SET_PDEATHSIG, and EOF on its socket); the shims it
 * started do not. */
#ifndef HR_RUNNER_SPAWNER_H
#define HR_RUNNER_SPAWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"
#include "runner/spawn_msg.h"

#define SPAWNER_COMM "hr-spawner"
#define SPAWN_MAX_FDS 8
#define SPAWN_MAX_HANDLERS 8

/* Runs in the new child: MSG (LEN bytes, owned by the handler) and FDS (NFDS entries, -1
 * where the request had -1). Must not return. */
typedef void (*spawn_handler) (char *msg, size_t len, const int *fds, int nfds);

/* Registers FN; returns its number for spawner_spawn, or -1 when the table is full. Call
 * before spawner_start (the helper only knows the handlers registered before it forked). */
int spawner_register (spawn_handler fn);

/* Forks the helper. KEEP_FD (or -1) stays open in it besides stdin/stdout/stderr (the log
 * file); every other descriptor is closed there. */
int spawner_start (int keep_fd, struct err *e);

/* Stops the helper (closes its socket, waits for it). Shims already started keep running. */
void spawner_stop (void);

/* The helper's pid, or -1 when it does not run. */
pid_t spawner_pid (void);

/* Starts a child running handler KIND with MSG and FDS. Returns the child's pid and stores a
 * pidfd for it in *PIDFD (-1 when none could be opened, errno saying why); -1 with E set on
 * failure. */
pid_t spawner_spawn (int kind, const void *msg, size_t len, const int *fds, int nfds,
                     int *pidfd, struct err *e);

#endif
