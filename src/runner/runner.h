/* runner.h - the runner daemon's one context (struct runner), shared by main.c and supervise.c */
#ifndef HR_RUNNER_RUNNER_H
#define HR_RUNNER_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/conf.h"
#include "runner/channel.h"
#include "runner/exec.h"
#include "runner/state.h"
#include "runner/sysinfo.h"

/* Where the runner stands with the host (docs/protocol.md start-up order). */
enum runner_phase {
    RUNNER_FLUSH = 0,  /* sending the outbox left by the previous life */
    RUNNER_REGISTER,   /* POST /register until 200 */
    RUNNER_ONLINE,     /* long poll + heartbeats */
};

/* A task this runner supervises (mirrors its row in the state tasks table). */
/* Starts per loop iteration: at ~2 ms per fork + cgroup setup this bounds the time other
 * events (exits, replies) wait behind a large batch of runs to ~0.1 s. */
#define START_BATCH 64

struct rtask {
    struct exec_task et;         /* task_id, attempt, shim_pid, pidfd, cgroup */
    struct executor *ex;         /* r->ex (native) or r->docker */
    char status[16];             /* STATE_* */
    char started_at[32];         /* ISO local time, "" before start */
    double kill_deadline;        /* monotonic time of the SIGKILL escalation, 0 = none */
    bool sigkill_sent;
    json_t *pending_spec;        /* TaskInfo while waiting in the start queue, else NULL */
    bool start_recorded;         /* queued, and already recorded `starting` (supervise.c) */
    struct rtask *next;
    struct rtask *qnext;         /* start queue link */
};

struct runner {
    struct conf conf;
    char hostname[256];
    char node_id[33];
    char *state_dir;
    char *shared_data_dir;
    char *host_url;

    struct state *state;
    struct executor *ex;         /* native tasks (--container NULL) */
    struct executor *docker;     /* Docker tasks */
    struct channel *ch;
    struct channel_req *poll_req, *update_req, *hb_req, *reg_req;

    enum runner_phase phase;
    struct rtask *tasks;         /* supervised tasks, newest first */
    int ntasks;
    struct rtask *startq_head, *startq_tail; /* persisted as pending, not started yet */
    int64_t ack;                 /* highest command seq processed (persisted as meta "ack") */

    /* Outbox sending. */
    int64_t update_upto;         /* last outbox seq carried by the update in flight */
    size_t update_batch_max;     /* 500; halved while the host rejects a batch as invalid */
    size_t update_count;         /* entries in the update in flight */

    /* Timers (monotonic seconds) and backoffs. */
    double poll_at, poll_backoff;
    double update_at, update_backoff;
    bool update_idle;              /* the outbox was found empty: wait for report() */
    /* Reports of starts wait until report_hold_until for the task's end to go along (see
     * report_port); any other report (final_pending) lifts the wait. */
    double report_hold_until;
    bool final_pending;
    double register_at, register_backoff;
    double heartbeat_at;

    struct sysinfo_cpu_sample cpu_prev;
    bool have_cpu_prev;
    bool stop;
};

/* Monotonic clock in seconds. */
double runner_now (void);
/* Current local time as "%Y-%m-%dT%H:%M:%S.%06ld" into BUF (>= 32 bytes). Returns BUF. */
char *runner_iso_now (char *buf, size_t size);

/* supervise.c: task lifecycle. Each writes through r->state (committed by the loop). */

/* Re-attaches to every task of the state table (start-up). Ended ones are reported. */
void supervise_adopt_all (struct runner *r);
/* Removes task containers of this node that no supervised task owns (after adoption). */
void supervise_sweep_containers (struct runner *r);
/* Handles one poll reply body: persists new runs (committed) and queues them for
 * supervise_start_queued(), applies every other command in order and advances r->ack. */
void supervise_commands (struct runner *r, json_t *commands);
/* Kills the tasks listed in a host reply's "kill" array ([{"task_id","attempt"}]). */
void supervise_kill_list (struct runner *r, json_t *kill, const char *why);
/* A task's start_fd became readable: the container started; report `running`. */
void supervise_started (struct runner *r, struct rtask *t);
/* A task's pidfd became readable (or its shim vanished): collect and report. */
void supervise_reap (struct runner *r, struct rtask *t);
/* Escalates kills whose grace period ran out. Returns the next deadline (0 = none). */
double supervise_timers (struct runner *r, double now);
/* Starts up to MAX queued tasks. Returns how many are still queued. */
int supervise_start_queued (struct runner *r, int max);
/* The runner stops before starting its queue: tasks recorded `starting` by
 * supervise_commands go back to `pending`, so that the next start runs them. */
void supervise_unstart_queued (struct runner *r);
/* Finds a supervised task, NULL if none. */
struct rtask *supervise_find (struct runner *r, uint64_t task_id, int attempt);

#endif
