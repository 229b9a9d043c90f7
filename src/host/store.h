/* store.h - durable state of the host behind an ops-free interface (SQLite WAL today;
 * PostgreSQL later behind the same functions). Never prints, never exits.
 *
 * Transactions: the host opens one transaction per loop iteration (store_begin), makes
 * its writes, and commits (store_commit) before any reply that reports them is sent. */
#ifndef HR_HOST_STORE_H
#define HR_HOST_STORE_H

#include <stdint.h>

#include "common/err.h"
#include "host/task.h"

struct store;

struct node_row {
    char *hostname;
    char *node_id;               /* stable runner identity */
    char *url;                   /* informational (0.3 runner_url) */
    int total_cores;
    int64_t memory_total_bytes;
    char *status;                /* "online" | "offline" */
    int64_t last_heartbeat;      /* ms since epoch */
    char *numa_json;             /* JSON object or NULL */
    char *gpu_json;              /* JSON array or NULL */
};

struct task_filter {
    const char *status;          /* NULL = any; may be a comma-separated list */
    const char *node;            /* NULL = any */
    const char *task_type;       /* NULL = any ("command" for /tasks by default) */
    uint64_t batch_id;           /* 0 = any */
    uint64_t before_id;          /* keyset paging: only ids < before_id; 0 = from newest */
    int64_t offset;              /* used only when before_id is 0 */
    int limit;                   /* > 0 */
};

/* Opens (creating if needed) the database at PATH, sets WAL mode, runs migrations up to
 * the current schema version. Returns NULL on error with e set. */
struct store *store_open (const char *path, struct err *e);
/* Finalizes statements and closes. Accepts NULL. */
void store_close (struct store *st);
/* Returns the schema version stored in the database. */
int store_schema_version (struct store *st);

/* Starts a transaction if none is open. Returns 0 or -1. */
int store_begin (struct store *st, struct err *e);
/* Commits the open transaction, if any. Returns 0 or -1 (then the transaction is rolled back). */
int store_commit (struct store *st, struct err *e);
/* Rolls the open transaction back, if any. */
void store_rollback (struct store *st);

/* Inserts a new task row. Returns 0, or -1 (e.g. duplicate id). */
int store_task_insert (struct store *st, const struct task *task, struct err *e);
/* Writes every mutable field of TASK (status, node, target, numa, exit code, error, times,
 * attempt, retries_left, suspicion). Returns 0 or -1 (ENOENT when the row is missing). */
int store_task_update (struct store *st, const struct task *task, struct err *e);
/* Loads one task. Returns 0 with *out set (caller destroys), or 0 with *out NULL when the
 * id is unknown, or -1 on a database error. */
int store_task_get (struct store *st, uint64_t id, struct task **out, struct err *e);
/* Lists tasks newest first (by id) matching FILTER. Returns 0 with *out an array of *n
 * tasks (caller destroys each and frees the array), or -1. */
int store_task_list (struct store *st, const struct task_filter *filter,
                     struct task ***out, int *n, struct err *e);
/* Calls CB for every task that is not final (queued..paused, in id order) and for lost
 * tasks completed within the last LOST_WINDOW_MS. CB takes ownership of the task.
 * Returns 0 or -1. */
int store_task_load_active (struct store *st, int64_t lost_window_ms,
                            int (*cb) (struct task *task, void *arg), void *arg,
                            struct err *e);
/* Largest task id in the store, 0 when empty. */
uint64_t store_task_max_id (struct store *st);

/* Inserts or replaces the node row keyed by hostname. Returns 0 or -1. */
int store_node_upsert (struct store *st, const struct node_row *node, struct err *e);
/* Calls CB for each node row (CB takes ownership; free with node_row_free). */
int store_node_load_all (struct store *st, int (*cb) (struct node_row *node, void *arg),
                         void *arg, struct err *e);
void node_row_free (struct node_row *node);

#endif
