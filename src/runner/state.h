/* state.h - the runner's durable state: supervised tasks, the update outbox, identity.
 *
 * One SQLite file (<state_dir>/runner-state.db, WAL, synchronous=NORMAL). Writes open a
 * transaction lazily; state_commit() commits everything since the last commit at once.
 * A commit survives a crash or kill -9 of the runner (it is in the WAL, in the kernel's
 * page cache) but is flushed to the disk only by state_sync(), which the runner calls at
 * most a second after a commit: a power loss of the node, which ends its tasks too, loses
 * at most that last second of reports (the host then marks those tasks lost, or requeues
 * them). An fsync per commit cost two fsyncs on the path of every task start. */
#ifndef HR_RUNNER_STATE_H
#define HR_RUNNER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Task statuses kept in the tasks table (not all are wire statuses). */
#define STATE_PENDING "pending"   /* persisted, not started yet */
#define STATE_STARTING "starting" /* being started: may or may not have forked */
#define STATE_RUNNING "running"
#define STATE_PAUSED  "paused"
#define STATE_KILLING "killing"   /* SIGTERM sent on the host's request; reported as killed */

struct state;

struct state_task {
    uint64_t task_id;
    int attempt;
    char status[16];          /* STATE_* */
    pid_t shim_pid;           /* 0 until started */
    char cgroup[256];
    char *spec;               /* TaskInfo JSON text as received; owned, may be NULL */
    char started_at[32];      /* ISO local time, "" until started */
};

struct state_outbox_entry {
    int64_t seq;
    char *body;               /* one update as JSON text; owned */
};

/* Opens (creating if needed) the database at PATH. Returns NULL on error. */
struct state *state_open (const char *path, struct err *e);
/* Rolls back uncommitted writes and closes. Accepts NULL; preserves errno. */
void state_close (struct state *st);
/* Commits the open transaction, if any. Returns 0, 1 when it was kept open because it only
 * dropped acknowledged outbox entries (committed with the next writes, or after a second),
 * or -1 (the writes are then lost). */
int state_commit (struct state *st, struct err *e);
/* Commits the open transaction, if any, whatever it holds. Returns 0 or -1. */
int state_flush (struct state *st, struct err *e);
/* Whether commits happened since the last state_sync. */
bool state_unsynced (const struct state *st);
/* Flushes every commit so far to the disk (WAL checkpoint with fsyncs). Returns 0 or -1. */
int state_sync (struct state *st, struct err *e);

/* Inserts T (spec copied). Returns 0 when inserted, 1 when (task_id, attempt) already
 * exists (row unchanged), -1 on error. */
int state_task_add (struct state *st, const struct state_task *t, struct err *e);
/* Rewrites status, shim_pid, cgroup and started_at of T's row (spec untouched).
 * Returns 0, or -1 (code ENOENT when there is no such row). */
int state_task_update (struct state *st, const struct state_task *t, struct err *e);
/* Sets only the status. Returns 0, or -1 (ENOENT when absent). */
int state_task_set_status (struct state *st, uint64_t task_id, int attempt, const char *status,
                           struct err *e);
/* Fetches one task into *OUT (caller frees with state_task_clear). Returns 1 found, 0 not
 * found (*OUT untouched), -1 error. */
int state_task_get (struct state *st, uint64_t task_id, int attempt, struct state_task *out,
                    struct err *e);
/* Deletes the row (absent is fine). Returns 0 or -1. */
int state_task_remove (struct state *st, uint64_t task_id, int attempt, struct err *e);
/* Deletes the row and remembers (task_id, attempt) as finished, so that a redelivered
 * `run` is not started again. Returns 0 or -1. */
int state_task_finish (struct state *st, uint64_t task_id, int attempt, struct err *e);
/* Returns 1 when (task_id, attempt) is supervised or finished, 0 if unknown, -1 on error. */
int state_task_known (struct state *st, uint64_t task_id, int attempt, struct err *e);
/* All tasks, oldest first. *OUT is a new array (free with state_task_list_free). Returns 0
 * or -1. */
int state_task_list (struct state *st, struct state_task **out, size_t *n, struct err *e);
void state_task_clear (struct state_task *t);
void state_task_list_free (struct state_task *v, size_t n);

/* Appends one update (JSON text). *SEQ (may be NULL) gets its sequence number. Returns 0 or -1. */
int state_outbox_append (struct state *st, const char *body, int64_t *seq, struct err *e);
/* The MAX oldest entries. *OUT is a new array (free with state_outbox_free), *N may be 0.
 * Returns 0 or -1. */
int state_outbox_peek (struct state *st, size_t max, struct state_outbox_entry **out, size_t *n,
                       struct err *e);
void state_outbox_free (struct state_outbox_entry *v, size_t n);
/* Deletes every entry with seq <= SEQ. Returns 0 or -1. */
int state_outbox_delete_upto (struct state *st, int64_t seq, struct err *e);
/* Number of entries, or -1 on error. */
int64_t state_outbox_count (struct state *st, struct err *e);

/* Small key/integer store (e.g. "ack"). get returns 1 found, 0 absent (*OUT untouched), -1. */
int state_meta_get_int (struct state *st, const char *key, int64_t *out, struct err *e);
int state_meta_set_int (struct state *st, const char *key, int64_t value, struct err *e);

/* Reads DIR/node-id, creating it (32 random hex digits, mode 0600) on first use. A file
 * that exists but does not hold 32 hex digits is an error, never silently replaced.
 * OUT must hold 33 bytes. Returns 0 or -1. */
int state_node_id (const char *dir, char *out, struct err *e);

#endif
