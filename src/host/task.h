/* task.h - the task record and its state machine (one transition table, in task.c) */
#ifndef HR_HOST_TASK_H
#define HR_HOST_TASK_H

#include <stdbool.h>
#include <stdint.h>

enum task_status {
    TASK_QUEUED = 0,   /* waiting for resources (new: 0.3 answered 503) */
    TASK_ASSIGNING,    /* placed on a node, resources held, not yet confirmed by the runner */
    TASK_PENDING,      /* runner accepted it and is preparing it */
    TASK_RUNNING,
    TASK_PAUSED,       /* frozen; keeps its resources */
    TASK_COMPLETED,    /* exit code 0 */
    TASK_FAILED,
    TASK_KILLED,
    TASK_KILLED_OOM,
    TASK_LOST,         /* node went offline while it ran; revived if the same attempt reports */
    TASK_STATUS_COUNT
};

struct task {
    uint64_t id;                 /* snowflake */
    uint64_t batch_id;           /* 0 = none */
    int max_running;             /* batch throttle: at most this many tasks of the batch hold
                                    a node at once (sched.c); 0 = no limit */
    char task_type[8];           /* "command" | "vps" */
    char *command;
    char *arguments_json;        /* JSON array text, e.g. ["a","b"] */
    char *env_json;              /* JSON object text, e.g. {"K":"V"} */
    int cores;                   /* 0 = no reservation, no limit */
    int64_t memory_bytes;        /* 0 = no reservation, no limit */
    char *gpus_json;             /* JSON array of GPU ids, "[]" when none */
    enum task_status status;
    char *node;                  /* assigned hostname, NULL when none */
    char *target;                /* requested "host[:numa]", NULL = auto placement */
    int numa;                    /* target NUMA node, -1 = none */
    char *container;             /* environment name, "NULL" = native */
    char *docker_json;           /* {"image","mounts","privileged"} given at submit, or NULL */
    char *stdout_path;
    char *stderr_path;
    bool has_exit_code;
    int exit_code;
    char *error_message;         /* NULL when none */
    int64_t submitted_at;        /* ms since epoch */
    int64_t started_at;          /* 0 = null */
    int64_t completed_at;        /* 0 = null */
    int attempt;                 /* 1 on first placement; +1 on each requeue */
    int retries_left;            /* requeues still allowed on node loss */
    int suspicion;               /* assignment_suspicion_count (0.3 field) */
    int ssh_port;                /* VPS: SSH port published on its node; 0 = none */
};

/* Allocates a zeroed task with numa = -1, attempt = 1 and empty JSON fields. */
struct task *task_create (void);
/* Frees the task and every string it owns. Accepts NULL. */
void task_destroy (struct task *task);
/* Returns a deep copy; caller destroys. */
struct task *task_copy (const struct task *task);

/* Status names are the 0.3 strings. Returns NULL for an out-of-range value. */
const char *task_status_name (enum task_status st);
/* Returns 0 and sets *out, or -1 when NAME is not a status. */
int task_status_parse (const char *name, enum task_status *out);
/* Final states are sticky: completed, failed, killed, killed_oom, lost. */
bool task_status_is_final (enum task_status st);
/* Whether the task holds node resources in this state (assigning..paused). */
bool task_status_holds_resources (enum task_status st);

/* The transition table. Returns true when FROM -> TO is allowed for the given actor. */
enum task_actor { ACTOR_HOST, ACTOR_RUNNER };
bool task_transition_allowed (enum task_status from, enum task_status to, enum task_actor actor);

/* Replaces *field with a copy of VALUE (NULL allowed). */
void task_set_str (char **field, const char *value);

#endif
