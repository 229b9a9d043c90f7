/* shim.h - what the native and Docker executors' per-task shim processes share: their name,
 * the liveness check a restarted runner uses, and small system-call helpers */
#ifndef HR_RUNNER_SHIM_H
#define HR_RUNNER_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SHIM_COMM "hr-shim"         /* comm of every shim process */

/* Whether PID is a live shim of ours (comm SHIM_COMM, not a zombie). A shim whose parent
 * died is a zombie until init reaps it, and without a reaping init it stays one: that
 * counts as gone. */
bool shim_is_ours (pid_t pid);
/* pidfd_open(2); -1 with errno on failure. */
int shim_pidfd_open (pid_t pid);
/* Writes all of BUF, retrying on EINTR; gives up silently on another error. Async-signal-safe
 * (used between fork and exec). */
void shim_write_all (int fd, const void *buf, size_t len);

/* Exit files whose results were collected, unlinked only once the runner has committed those
 * results (so that a crash in between cannot lose them). */
struct shim_exit_files {
    char **paths;
    size_t n;
};
/* Remembers a copy of PATH. */
void shim_exit_files_add (struct shim_exit_files *f, const char *path);
/* Unlinks and forgets every remembered file. */
void shim_exit_files_flush (struct shim_exit_files *f);
/* Flushes, then frees the list itself. */
void shim_exit_files_free (struct shim_exit_files *f);

#endif
