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

#endif
