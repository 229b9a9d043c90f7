/* host.h - the host's one context (struct host), nodes, in-memory active tasks and the
 * functions the API files, the scheduler and main share. Everything runs on one thread. */
#ifndef HR_HOST_HOST_H
#define HR_HOST_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/err.h"
#include "host/idmap.h"
#include "host/snowflake.h"
#include "host/store.h"
#include "host/task.h"

struct http_req;
struct docker_worker;

/* A command queued for a runner, delivered by its long-poll until acknowledged. */
struct node_cmd {
    uint64_t seq;
    uint64_t task_id;
    char op[8];                /* "run" | "kill" | "pause" | "resume" */
    bool sent;                 /* included in at least one poll reply */
    json_t *body;              /* the whole command object, including seq */
    struct node_cmd *next;
};

#define HOST_MAX_GPUS 64

struct node {
    char *hostname;
    char *node_id;
    char *url;
    int total_cores;
    int64_t memory_total;
    bool online;
    int64_t last_seen;         /* ms: last heartbeat, poll or update from this runner */
    json_t *numa;              /* object {"0": {"cores": [...], "memory_bytes": n}} or NULL */
    json_t *gpus;              /* array of GPUInfo objects (never NULL) */
    /* resources held by tasks (assigning..paused) */
    int cores_used;
    int64_t memory_used;
    uint64_t gpus_used;        /* bitmask of GPU ids */
    int ntasks;                /* tasks holding resources here */
    /* latest health values (NAN = null) */
    double cpu_percent, memory_percent, temp_avg, temp_max;
    int64_t memory_used_bytes;
    json_t *running_reported;  /* last heartbeat's running_tasks */
    /* runner channel */
    struct node_cmd *cmds, *cmds_tail;
    uint64_t next_seq;
    struct http_req *poll;     /* suspended long-poll, or NULL */
    int64_t poll_deadline;     /* ms */
    bool wake;                 /* answer the poll after this iteration's commit */
    /* scheduler scratch, valid during one pass */
    int sched_cores;
    int64_t sched_mem;
    uint64_t sched_gpus;
    struct node *next;
};

/* Per active task bookkeeping beside the record itself. */
struct atask {
    struct task *task;
    bool holds;                /* resources counted on task->node */
    bool delivered;            /* the runner acknowledged a poll reply containing the run */
    bool kill_requested;       /* killed by the user; waiting for the runner to confirm */
    int64_t state_since;       /* ms, for suspicion checks */
    struct atask *qprev, *qnext; /* queue links while queued */
};

struct health_ring {
    json_t *samples[60];       /* each {"nodes": [...], "aggregate": {...}} */
    int head, count;
};

struct host {
    struct conf *conf;
    struct store *store;
    struct snowflake ids;
    struct node *nodes;
    struct idmap active;       /* task id -> struct atask* */
    struct atask *queue_head, *queue_tail;
    int queued_zero_need;      /* queued tasks needing no cores/memory/GPUs */
    struct idmap batches;      /* batch id -> struct batch_limit* for throttled batches with
                                  queued or holding tasks (sched.c); empty = not allocated */
    bool sched_dirty;          /* run a scheduling pass before sleeping */
    bool in_txn;               /* a store transaction is open in this iteration */
    bool store_failed;         /* the last commit failed: replies become 500 */
    struct http_req *deferred; /* replies waiting for the commit */
    struct health_ring health;
    int64_t start_ms;
    struct err last_err;
    struct docker_worker *docker; /* /docker/ operations (docker_worker.c); NULL if it failed */
};

/* ---- time ---- */
int64_t now_ms (void);
/* Formats ms since epoch as 0.3's ISO local time into BUF (>= 32 bytes). */
char *iso_time (int64_t ms, char *buf);
/* Parses ISO local time (with or without fraction); returns 0 and *out ms, or -1. */
int iso_parse (const char *s, int64_t *out);

/* ---- store glue (main.c) ---- */
/* Opens this iteration's transaction if needed. Returns 0 or -1. */
int host_txn (struct host *h, struct err *e);
/* Persists a task (insert when NEW). Logs and marks the store failed on error. */
int host_save_task (struct host *h, const struct task *t, bool is_new);
int host_save_node (struct host *h, struct node *n);

/* ---- nodes (node.c) ---- */
struct node *node_find (struct host *h, const char *hostname);
struct node *node_add (struct host *h, const char *hostname);
/* Number of GPUs the node reports. */
int node_gpu_count (const struct node *n);
/* Whether the node's topology has NUMA id ID. */
bool node_has_numa (const struct node *n, int id);
int node_numa_core_count (const struct node *n, int id);
/* Queues a command for the runner and marks the node to be woken after the commit. */
void node_cmd_push (struct host *h, struct node *n, const char *op, uint64_t task_id,
                    json_t *extra);
/* Drops every command with seq <= ACK. */
void node_cmd_ack (struct host *h, struct node *n, uint64_t ack);
/* Removes a not-yet-sent run command for TASK_ID; returns true if one was removed. */
bool node_cmd_cancel_run (struct node *n, uint64_t task_id);
/* Periodic: marks silent nodes offline and handles their tasks. */
void node_check_timeouts (struct host *h);
void node_free_all (struct host *h);

/* ---- scheduler and task lifecycle (sched.c) ---- */
/* Adds a new task (status queued) to the active set and the queue. */
void sched_enqueue (struct host *h, struct task *t);
/* One pass over the queue in submission order (see sched.c for the no-delay rule). */
void sched_pass (struct host *h);
/* Moves T to FINAL status, releasing its resources and dropping it from memory unless a
 * runner confirmation is still awaited. */
void sched_finish (struct host *h, struct atask *a, enum task_status st, const char *msg);
/* Takes resources for A on its node. */
void sched_hold (struct host *h, struct atask *a);
void sched_release (struct host *h, struct atask *a);
/* Removes A from memory (after it is final and confirmed). */
void sched_forget (struct host *h, struct atask *a);
/* Node N was lost: requeue (retries) or mark lost every task holding resources there. */
void sched_node_lost (struct host *h, struct node *n, const char *why);
/* Queues the run command for an assigning task. */
void sched_send_run (struct host *h, struct atask *a);
struct atask *active_find (struct host *h, uint64_t id);
/* Restores an active task loaded from the store at start-up. */
void sched_restore (struct host *h, struct task *t);
/* Tasks of throttled batch BATCH that hold resources now (0 when unknown or unthrottled). */
int sched_batch_holding (struct host *h, uint64_t batch);
/* Frees the scheduler's own bookkeeping (batch throttles); call at teardown. */
void sched_free (struct host *h);

/* ---- JSON views (json_out.c) ---- */
json_t *task_to_json (const struct task *t);
json_t *node_to_json (struct host *h, const struct node *n);
json_t *task_info_json (struct host *h, const struct task *t);

/* ---- health (api_node.c) ---- */
void health_sample (struct host *h);
void health_free (struct host *h);

#endif
