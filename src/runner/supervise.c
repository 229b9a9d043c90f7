/* supervise.c - runner task lifecycle: run/kill/pause/resume commands, adoption, reaping,
 * and the updates (outbox entries) each transition produces */
#include "runner/runner.h"
#include "runner/terminal.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"

/* Which executor runs TASK (TaskInfo): `container_name` "NULL" = native, else Docker. */
static struct executor *executor_for (struct runner *r, json_t *task)
{
    json_t *c = json_object_get (task, "container_name");
    if (json_is_string (c) && strcmp (json_string_value (c), CONTAINER_NULL) == 0)
        return r->ex;
    return r->docker;
}

/* ---- updates ---------------------------------------------------------------------- */

#define REPORT_HOLD_S 0.02

/* Appends one update to the outbox (committed with the rest of this loop iteration).
 * EXIT_CODE NULL = JSON null; MESSAGE, STARTED_AT, COMPLETED_AT NULL or "" = null. */
static void report_port (struct runner *r, uint64_t task_id, int attempt, const char *status,
                         const int *exit_code, const char *message, const char *started_at,
                         const char *completed_at, int ssh_port)
{
    json_t *u = json_object ();
    if (ssh_port > 0)
        json_object_set_new (u, "ssh_port", json_integer (ssh_port));
    json_object_set_new (u, "task_id", json_integer ((json_int_t)task_id));
    json_object_set_new (u, "attempt", json_integer (attempt));
    json_object_set_new (u, "status", json_string (status));
    json_object_set_new (u, "exit_code", exit_code ? json_integer (*exit_code) : json_null ());
    json_object_set_new (u, "message",
                         message && *message ? json_string (message) : json_null ());
    json_object_set_new (u, "started_at",
                         started_at && *started_at ? json_string (started_at) : json_null ());
    json_object_set_new (u, "completed_at", completed_at && *completed_at
                                                ? json_string (completed_at)
                                                : json_null ());
    json_object_set_new (u, "node", json_string (r->hostname));
    json_object_set_new (u, "node_id", json_string (r->node_id));
    char *body = json_dumps (u, JSON_COMPACT);
    json_decref (u);
    if (!body) {
        /* Only invalid UTF-8 in MESSAGE can cause this; the executor's text is ours. */
        log_err ("task %" PRIu64 ".%d: cannot encode `%s` update", task_id, attempt, status);
        return;
    }
    struct err e = { 0 };
    if (state_outbox_append (r->state, body, NULL, &e) < 0) {
        log_err ("task %" PRIu64 ".%d: cannot queue `%s` update: %s", task_id, attempt, status,
                 e.text);
        free (body);
        return;
    }
    free (body);
    /* A start waits up to REPORT_HOLD_S for company: the end of a short task then travels
     * in the same request, one request and one host commit less per task. Any other report
     * goes at once and takes the waiting ones with it. */
    if (strcmp (status, ST_RUNNING) == 0 || strcmp (status, ST_PENDING) == 0) {
        if (!r->final_pending && r->report_hold_until == 0)
            r->report_hold_until = runner_now () + REPORT_HOLD_S;
    } else {
        r->final_pending = true;
        if (r->report_hold_until > 0 && r->update_at == r->report_hold_until)
            r->update_at = 0;
        r->report_hold_until = 0;
    }
    if (r->update_idle) {
        r->update_idle = false;
        r->update_at = 0;   /* sent after this iteration's commit (a backoff is kept) */
    }
}

static void report (struct runner *r, uint64_t task_id, int attempt, const char *status,
                    const int *exit_code, const char *message, const char *started_at,
                    const char *completed_at)
{
    report_port (r, task_id, attempt, status, exit_code, message, started_at, completed_at, 0);
}

/* ---- task list ---------------------------------------------------------------------- */

struct rtask *supervise_find (struct runner *r, uint64_t task_id, int attempt)
{
    for (struct rtask *t = r->tasks; t; t = t->next)
        if (t->et.task_id == task_id && (attempt < 0 || t->et.attempt == attempt))
            return t;
    return NULL;
}

static struct rtask *task_new (struct runner *r, uint64_t task_id, int attempt,
                               const char *status)
{
    struct rtask *t = xcalloc (1, sizeof *t);
    t->et.task_id = task_id;
    t->et.attempt = attempt;
    t->et.pidfd = -1;
    t->et.start_fd = -1;
    snprintf (t->status, sizeof t->status, "%s", status);
    t->next = r->tasks;
    r->tasks = t;
    r->ntasks++;
    return t;
}

static void enqueue (struct runner *r, struct rtask *t, json_t *task)
{
    t->pending_spec = json_incref (task);
    t->qnext = NULL;
    if (r->startq_tail)
        r->startq_tail->qnext = t;
    else
        r->startq_head = t;
    r->startq_tail = t;
}

static void dequeue (struct runner *r, struct rtask *t)
{
    struct rtask *prev = NULL;
    for (struct rtask *q = r->startq_head; q; prev = q, q = q->qnext) {
        if (q != t)
            continue;
        if (prev)
            prev->qnext = t->qnext;
        else
            r->startq_head = t->qnext;
        if (r->startq_tail == t)
            r->startq_tail = prev;
        t->qnext = NULL;
        break;
    }
    json_decref (t->pending_spec);
    t->pending_spec = NULL;
}

static void task_free (struct runner *r, struct rtask *t)
{
    for (struct rtask **p = &r->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            r->ntasks--;
            break;
        }
    if (t->pending_spec)
        dequeue (r, t);
    if (t->et.pidfd >= 0)
        close (t->et.pidfd);
    if (t->et.start_fd >= 0)
        close (t->et.start_fd);
    free (t);
}

/* Writes T's status, pid, cgroup and start time to its row. */
static void persist (struct runner *r, struct rtask *t)
{
    struct state_task st = { .task_id = t->et.task_id,
                             .attempt = t->et.attempt,
                             .shim_pid = t->et.shim_pid };
    snprintf (st.status, sizeof st.status, "%s", t->status);
    snprintf (st.cgroup, sizeof st.cgroup, "%s", t->et.cgroup);
    snprintf (st.started_at, sizeof st.started_at, "%s", t->started_at);
    struct err e = { 0 };
    if (state_task_update (r->state, &st, &e) < 0)
        log_err ("task %" PRIu64 ".%d: %s", t->et.task_id, t->et.attempt, e.text);
}

/* Reports a final status, forgets the task (same transaction) and frees T. */
static void finish (struct runner *r, struct rtask *t, const char *status, const int *exit_code,
                    const char *message)
{
    char now[32];
    runner_iso_now (now, sizeof now);
    report (r, t->et.task_id, t->et.attempt, status, exit_code, message, t->started_at, now);
    struct err e = { 0 };
    if (state_task_finish (r->state, t->et.task_id, t->et.attempt, &e) < 0)
        log_err ("task %" PRIu64 ".%d: %s", t->et.task_id, t->et.attempt, e.text);
    if (exit_code)
        log_info ("task %" PRIu64 ".%d: %s -> %s (exit code %d)", t->et.task_id, t->et.attempt,
                  t->status, status, *exit_code);
    else
        log_info ("task %" PRIu64 ".%d: %s -> %s", t->et.task_id, t->et.attempt, t->status,
                  status);
    task_free (r, t);
}

/* ---- TaskInfo -> exec_spec ---------------------------------------------------------- */

struct spec_buf {
    struct exec_spec spec;
    char **argv;
    char **env;
    char **mounts;
    int *gpus;
};

static void spec_buf_free (struct spec_buf *b)
{
    for (char **p = b->argv; p && *p; p++)
        free (*p);
    for (char **p = b->env; p && *p; p++)
        free (*p);
    for (char **p = b->mounts; p && *p; p++)
        free (*p);
    free (b->mounts);
    free (b->argv);
    free (b->env);
    free (b->gpus);
    memset (b, 0, sizeof *b);
}

/* Reads an optional non-negative integer field; NULL/absent gives DEF. Returns 0 or -1. */
static int opt_int (json_t *task, const char *key, int64_t def, int64_t max, int64_t *out,
                    struct err *e)
{
    json_t *v = json_object_get (task, key);
    if (!v || json_is_null (v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < 0 || json_integer_value (v) > max)
        return err_set (e, EINVAL, "`%s` must be an integer between 0 and %" PRId64, key, max);
    *out = json_integer_value (v);
    return 0;
}

static const char *opt_str (json_t *task, const char *key, const char *def)
{
    json_t *v = json_object_get (task, key);
    return json_is_string (v) ? json_string_value (v) : def;
}

/* Validates TaskInfo TASK and fills B (free with spec_buf_free). Returns 0 or -1. */
static int spec_from_taskinfo (struct runner *r, uint64_t task_id, int attempt, json_t *task,
                               struct spec_buf *b, struct err *e)
{
    memset (b, 0, sizeof *b);
    struct exec_spec *s = &b->spec;
    s->task_id = task_id;
    s->attempt = attempt;

    const char *command = opt_str (task, "command", NULL);
    if (!command || !*command)
        return err_set (e, EINVAL, "`command` must be a non-empty string");
    if (strcmp (opt_str (task, "task_type", "command"), "vps") == 0) {
        /* A VPS: `command` holds the authorized keys; the container runs sshd. */
        s->vps = true;
        s->ssh_keys = command;
        s->ready_timeout = r->conf.vps_ready_timeout;
        s->publish_ip = r->conf.vps_publish_address;
        command = "sshd";
    }
    json_t *args = json_object_get (task, "arguments");
    if (args && !json_is_null (args) && !json_is_array (args))
        return err_set (e, EINVAL, "`arguments` must be a list of strings");
    size_t nargs = json_is_array (args) ? json_array_size (args) : 0;
    b->argv = xcalloc (nargs + 2, sizeof *b->argv);
    b->argv[0] = xstrdup (command);
    for (size_t i = 0; i < nargs; i++) {
        json_t *a = json_array_get (args, i);
        if (!json_is_string (a))
            goto bad_args;
        b->argv[i + 1] = xstrdup (json_string_value (a));
    }

    json_t *env = json_object_get (task, "env_vars");
    if (env && !json_is_null (env) && !json_is_object (env))
        return err_set (e, EINVAL, "`env_vars` must be an object of strings");
    size_t nenv = json_is_object (env) ? json_object_size (env) : 0, i = 0;
    b->env = xcalloc (nenv + 1, sizeof *b->env);
    const char *key;
    json_t *val;
    if (nenv) {
        json_object_foreach (env, key, val)
        {
            if (!*key || strchr (key, '=') || !json_is_string (val))
                return err_set (e, EINVAL, "`env_vars`: invalid entry `%.64s`", key);
            b->env[i++] = xasprintf ("%s=%s", key, json_string_value (val));
        }
    }

    int64_t v;
    if (opt_int (task, "required_cores", 0, 1 << 20, &v, e) < 0)
        return -1;
    s->cores = (int)v;
    if (opt_int (task, "required_memory_bytes", 0, INT64_MAX, &v, e) < 0)
        return -1;
    s->memory_bytes = v;
    if (opt_int (task, "target_numa_node_id", -1, 4095, &v, e) < 0)
        return -1;
    s->numa = (int)v;

    json_t *gpus = json_object_get (task, "required_gpus");
    if (gpus && !json_is_null (gpus) && !json_is_array (gpus))
        return err_set (e, EINVAL, "`required_gpus` must be a list of GPU ids");
    size_t ngpus = json_is_array (gpus) ? json_array_size (gpus) : 0;
    b->gpus = xcalloc (ngpus ? ngpus : 1, sizeof *b->gpus);
    for (size_t g = 0; g < ngpus; g++) {
        json_t *id = json_array_get (gpus, g);
        if (!json_is_integer (id) || json_integer_value (id) < 0
            || json_integer_value (id) > 65535)
            return err_set (e, EINVAL, "`required_gpus` must be a list of GPU ids");
        b->gpus[g] = (int)json_integer_value (id);
    }

    s->argv = b->argv;
    s->env = b->env;
    s->gpus = ngpus ? b->gpus : NULL;
    s->ngpus = (int)ngpus;
    s->stdout_path = opt_str (task, "stdout_path", "");
    s->stderr_path = opt_str (task, "stderr_path", "");
    if (!*s->stdout_path)
        s->stdout_path = "/dev/null";
    if (!*s->stderr_path)
        s->stderr_path = "/dev/null";
    s->workdir = r->shared_data_dir;
    s->shared_dir = r->conf.shared_dir;
    s->local_temp_dir = r->conf.local_temp_dir;
    s->user = r->conf.runner_user && *r->conf.runner_user ? r->conf.runner_user : NULL;
    s->allow_root = r->conf.allow_root_tasks;

    /* Docker: an explicit `image` runs as is; otherwise the environment's image. */
    const char *image = opt_str (task, "image", NULL);
    const char *container = opt_str (task, "container_name", NULL);
    if (image && *image) {
        s->image = image;
    } else {
        s->image = opt_str (task, "docker_image_name", NULL);
        s->environment = container;
    }
    json_t *mounts = json_object_get (task, "docker_additional_mounts");
    if (mounts && !json_is_null (mounts) && !json_is_array (mounts))
        return err_set (e, EINVAL, "`docker_additional_mounts` must be a list of strings");
    size_t nm = json_is_array (mounts) ? json_array_size (mounts) : 0;
    b->mounts = xcalloc (nm + 1, sizeof *b->mounts);
    for (size_t m = 0; m < nm; m++) {
        json_t *mv = json_array_get (mounts, m);
        if (!json_is_string (mv))
            return err_set (e, EINVAL, "`docker_additional_mounts` must be a list of strings");
        b->mounts[m] = xstrdup (json_string_value (mv));
    }
    s->mounts = b->mounts;
    s->privileged = json_is_true (json_object_get (task, "docker_privileged"));
    return 0;
bad_args:
    return err_set (e, EINVAL, "`arguments` must be a list of strings");
}

/* Starts pending task T from TaskInfo TASK. On failure reports `failed` and frees T. */
static void start_task (struct runner *r, struct rtask *t, json_t *task)
{
    struct spec_buf b;
    struct err e = { 0 };
    struct exec_task et = { .task_id = t->et.task_id, .attempt = t->et.attempt, .pidfd = -1,
                            .start_fd = -1 };
    if (spec_from_taskinfo (r, t->et.task_id, t->et.attempt, task, &b, &e) < 0) {
        err_wrap (&e, "invalid task");
        goto error;
    }
    t->ex = executor_for (r, task);
    if (t->ex->ops->start (t->ex, &b.spec, &et, &e) < 0)
        goto error;
    bool b_vps = b.spec.vps;
    spec_buf_free (&b);
    t->et = et;
    snprintf (t->status, sizeof t->status, "%s", STATE_RUNNING);
    if (t->et.start_fd >= 0) {
        /* Docker: `pending` while the shim prepares the image and container; `running`
         * when it says the container started (supervise_started). */
        persist (r, t);
        report (r, t->et.task_id, t->et.attempt, ST_PENDING, NULL,
                b_vps ? "Starting the VPS container and waiting for its SSH server."
                      : "Preparing the container (image check or load).", NULL, NULL);
    } else {
        runner_iso_now (t->started_at, sizeof t->started_at);
        persist (r, t);
        report (r, t->et.task_id, t->et.attempt, ST_RUNNING, NULL, NULL, t->started_at, NULL);
    }
    char cmd[256];
    log_info ("task %" PRIu64 ".%d: starting -> running (%s, shim pid %d, %s %s): %s",
              t->et.task_id, t->et.attempt, t->ex->ops->name, (int)t->et.shim_pid,
              t->ex == r->ex ? "cgroup" : "container", t->et.cgroup,
              b_vps ? "VPS (sshd)" : log_escape (opt_str (task, "command", ""), cmd, sizeof cmd));
    return;
error:
    spec_buf_free (&b);
    log_err ("task %" PRIu64 ".%d: start failed: %s", t->et.task_id, t->et.attempt, e.text);
    char msg[600];
    snprintf (msg, sizeof msg, "Failed to start task: %s", e.text);
    finish (r, t, ST_FAILED, NULL, msg);
}

/* ---- commands ----------------------------------------------------------------------- */

/* Reads task_id (number or decimal string) and attempt (default 1) from OBJ. */
static int read_ids (json_t *obj, uint64_t *task_id, int *attempt, bool attempt_required)
{
    json_t *id = json_object_get (obj, "task_id");
    json_t *at = json_object_get (obj, "attempt");
    uint64_t v;
    if (json_is_integer (id) && json_integer_value (id) > 0) {
        v = (uint64_t)json_integer_value (id);
    } else if (json_is_string (id)) {
        const char *s = json_string_value (id);
        char *end;
        errno = 0;
        unsigned long long x = strtoull (s, &end, 10);
        if (errno || end == s || *end || x == 0 || x > INT64_MAX || *s == '-' || *s == '+')
            return -1;
        v = x;
    } else {
        return -1;
    }
    int a = attempt_required ? -1 : 1;
    if (json_is_integer (at) && json_integer_value (at) >= 0
        && json_integer_value (at) <= 1000000)
        a = (int)json_integer_value (at);
    else if (at && !json_is_null (at))
        return -1;
    *task_id = v;
    *attempt = a;
    return 0;
}

static void do_kill (struct runner *r, uint64_t task_id, int attempt, const char *why)
{
    struct rtask *t = supervise_find (r, task_id, attempt);
    struct err e = { 0 };
    if (!t) {
        log_debug ("task %" PRIu64 ".%d: kill (%s) for a task this runner does not run",
                   task_id, attempt, why);
        return;
    }
    if (strcmp (t->status, STATE_KILLING) == 0)
        return;
    if (t->pending_spec) {
        finish (r, t, ST_KILLED, NULL, "Killed by host request before it started.");
        return;
    }
    if (strcmp (t->status, STATE_PAUSED) == 0
        && t->ex->ops->resume (t->ex, &t->et, &e) < 0)
        log_warn ("task %" PRIu64 ".%d: resume before kill: %s", task_id, t->et.attempt,
                  e.text);
    log_info ("task %" PRIu64 ".%d: %s -> killing (%s; SIGKILL after %d s)", task_id,
              t->et.attempt, t->status, why, r->conf.kill_grace_seconds);
    snprintf (t->status, sizeof t->status, "%s", STATE_KILLING);
    persist (r, t);
    t->kill_deadline = runner_now () + r->conf.kill_grace_seconds;
    if (t->ex->ops->signal (t->ex, &t->et, SIGTERM, &e) < 0) {
        log_warn ("task %" PRIu64 ".%d: SIGTERM: %s; sending SIGKILL", task_id, t->et.attempt,
                  e.text);
        t->kill_deadline = runner_now ();
    }
}

static void do_pause (struct runner *r, uint64_t task_id, int attempt, bool pause)
{
    const char *op = pause ? "pause" : "resume";
    struct rtask *t = supervise_find (r, task_id, attempt);
    struct err e = { 0 };
    if (!t) {
        log_warn ("task %" PRIu64 ".%d: %s for a task this runner does not run", task_id,
                  attempt, op);
        return;
    }
    if (strcmp (t->status, STATE_KILLING) == 0 || t->pending_spec) {
        log_info ("task %" PRIu64 ".%d: %s ignored: the task is %s", task_id, t->et.attempt, op,
                  t->pending_spec ? "not started yet" : "being killed");
        return;
    }
    const char *want = pause ? STATE_PAUSED : STATE_RUNNING;
    if (strcmp (t->status, want) != 0) {
        int rc = pause ? t->ex->ops->pause (t->ex, &t->et, &e)
                       : t->ex->ops->resume (t->ex, &t->et, &e);
        if (rc < 0) {
            /* The task keeps its current state; the host hears nothing new. */
            log_err ("task %" PRIu64 ".%d: %s failed: %s", task_id, t->et.attempt, op, e.text);
            return;
        }
        log_info ("task %" PRIu64 ".%d: %s -> %s", task_id, t->et.attempt, t->status, want);
        snprintf (t->status, sizeof t->status, "%s", want);
        persist (r, t);
    }
    /* Reported again when already in that state: the host may have missed the first one. */
    report (r, t->et.task_id, t->et.attempt, pause ? ST_PAUSED : ST_RUNNING, NULL,
            pause ? "Task paused." : "Task resumed.", t->started_at, NULL);
}

void supervise_kill_list (struct runner *r, json_t *kill, const char *why)
{
    size_t i;
    json_t *k;
    if (!json_is_array (kill))
        return;
    json_array_foreach (kill, i, k)
    {
        uint64_t id;
        int attempt;
        if (read_ids (k, &id, &attempt, true) < 0) {
            log_warn ("ignoring malformed kill entry from the host (%s)", why);
            continue;
        }
        /* Attempt 0 (or none): whichever attempt this runner has. */
        do_kill (r, id, attempt > 0 ? attempt : -1, why);
    }
}

/* Phase 1 for one `run`: de-duplicates, refuses what cannot run, persists the task as
 * pending, or as starting when START_NOW (it is started in this loop iteration: one commit
 * instead of two). Returns the new task, or NULL when there is nothing to start. */
static struct rtask *accept_run (struct runner *r, json_t *task, bool start_now)
{
    uint64_t id;
    int attempt;
    struct err e = { 0 };
    if (!json_is_object (task) || read_ids (task, &id, &attempt, false) < 0) {
        log_err ("ignoring a run command without a valid task_id/attempt");
        return NULL;
    }
    int known = state_task_known (r->state, id, attempt, &e);
    if (known < 0) {
        log_err ("task %" PRIu64 ".%d: %s", id, attempt, e.text);
        return NULL;
    }
    if (known || supervise_find (r, id, attempt)) {
        log_debug ("task %" PRIu64 ".%d: run already received, ignored", id, attempt);
        return NULL;
    }
    const char *type = opt_str (task, "task_type", "command");
    bool vps = strcmp (type, "vps") == 0;
    if (vps && executor_for (r, task) != r->docker) {
        char now[32];
        runner_iso_now (now, sizeof now);
        report (r, id, attempt, ST_FAILED, NULL,
                "A VPS needs a Docker container; container_name NULL is not possible.", NULL,
                now);
        if (state_task_finish (r->state, id, attempt, &e) < 0)
            log_err ("task %" PRIu64 ".%d: %s", id, attempt, e.text);
        return NULL;
    }
    if (strcmp (type, "command") != 0 && !vps) {
        char tbuf[32];
        log_warn ("task %" PRIu64 ".%d: refused: task type `%s` is not supported", id, attempt,
                  log_escape (type, tbuf, sizeof tbuf));
        char now[32];
        runner_iso_now (now, sizeof now);
        report (r, id, attempt, ST_FAILED, NULL,
                "This runner runs command and VPS tasks only.", NULL, now);
        if (state_task_finish (r->state, id, attempt, &e) < 0)
            log_err ("task %" PRIu64 ".%d: %s", id, attempt, e.text);
        return NULL;
    }
    char *spec = json_dumps (task, JSON_COMPACT);
    struct state_task st = { .task_id = id, .attempt = attempt, .spec = spec };
    snprintf (st.status, sizeof st.status, "%s", start_now ? STATE_STARTING : STATE_PENDING);
    int rc = state_task_add (r->state, &st, &e);
    free (spec);
    if (rc != 0) {
        if (rc < 0)
            log_err ("task %" PRIu64 ".%d: %s", id, attempt, e.text);
        return NULL;
    }
    struct rtask *t = task_new (r, id, attempt, STATE_PENDING);
    t->ex = executor_for (r, task);
    t->start_recorded = start_now;
    return t;
}

void supervise_commands (struct runner *r, json_t *commands)
{
    size_t n = json_is_array (commands) ? json_array_size (commands) : 0;
    if (n == 0)
        return;
    struct rtask **pending = xcalloc (n, sizeof *pending);
    struct err e = { 0 };
    size_t i;
    json_t *cmd;

    /* Phase 1: every new run is durably recorded before anything starts, so a crash
     * after the fork cannot lose track of a task. One commit covers the whole batch. The
     * runs this iteration will start (the start queue is empty, up to START_BATCH) are
     * recorded `starting` at once: the commit before their fork is this one, and a crash
     * after it fails them rather than running them twice, as supervise_start_queued's own
     * commit would. */
    int nrun = 0;
    bool start_now = r->startq_head == NULL;
    json_array_foreach (commands, i, cmd)
    {
        const char *op = opt_str (cmd, "op", "");
        if (strcmp (op, "run") == 0
            && (pending[i] = accept_run (r, json_object_get (cmd, "task"),
                                         start_now && nrun < START_BATCH)))
            nrun++;
    }
    if (state_commit (r->state, &e) < 0) {
        /* Nothing was recorded: start nothing and do not acknowledge; the host resends. */
        log_err ("cannot persist %d new tasks, not starting them: %s", nrun, e.text);
        for (i = 0; i < n; i++)
            if (pending[i])
                task_free (r, pending[i]);
        free (pending);
        return;
    }

    /* Phase 2: apply the commands in order. */
    int64_t ack = r->ack;
    json_array_foreach (commands, i, cmd)
    {
        json_t *seq = json_object_get (cmd, "seq");
        const char *op = opt_str (cmd, "op", "");
        uint64_t id;
        int attempt;
        if (strcmp (op, "run") == 0) {
            if (pending[i])
                enqueue (r, pending[i], json_object_get (cmd, "task"));
        } else if (strcmp (op, "kill") == 0 || strcmp (op, "pause") == 0
                   || strcmp (op, "resume") == 0) {
            if (read_ids (cmd, &id, &attempt, false) < 0) {
                log_err ("ignoring a %s command without a valid task_id", op);
            } else {
                if (!json_object_get (cmd, "attempt") || attempt == 0)
                    attempt = -1;
                if (op[0] == 'k')
                    do_kill (r, id, attempt, "killed by the host");
                else
                    do_pause (r, id, attempt, op[0] == 'p');
            }
        } else if (strcmp (op, "term") == 0) {
            terminal_command (r, cmd); /* a thread dials the host back: never blocks */
        } else {
            char buf[64];
            log_warn ("ignoring unknown command `%s`", log_escape (op, buf, sizeof buf));
        }
        if (json_is_integer (seq) && json_integer_value (seq) > ack)
            ack = json_integer_value (seq);
    }
    free (pending);
    if (ack != r->ack) {
        r->ack = ack;
        if (state_meta_set_int (r->state, "ack", ack, &e) < 0)
            log_err ("%s", e.text);
    }
}

/* ---- reaping and adoption ------------------------------------------------------------ */

void supervise_started (struct runner *r, struct rtask *t)
{
    /* "s" (a task's container started) or "s <port>\n" (a VPS's SSH server answers), in
     * one write of the shim */
    char buf[32];
    ssize_t got;
    while ((got = read (t->et.start_fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
        ;
    if (got < 0 && errno == EAGAIN)
        return;
    close (t->et.start_fd);
    t->et.start_fd = -1;
    if (got < 1 || buf[0] != 's')
        return;   /* the shim ended before starting the container: reaping reports it */
    buf[got] = '\0';
    int port = got > 2 ? atoi (buf + 2) : 0;
    if (port > 0 && port < 65536)
        t->et.ssh_port = port;
    if (!t->started_at[0])
        runner_iso_now (t->started_at, sizeof t->started_at);
    persist (r, t);
    if (strcmp (t->status, STATE_RUNNING) == 0)
        report_port (r, t->et.task_id, t->et.attempt, ST_RUNNING, NULL,
                     t->et.ssh_port ? "VPS is reachable over SSH." : NULL, t->started_at, NULL,
                     t->et.ssh_port);
    log_debug ("task %" PRIu64 ".%d: container started%s", t->et.task_id, t->et.attempt,
               t->et.ssh_port ? " (SSH answers)" : "");
}

void supervise_reap (struct runner *r, struct rtask *t)
{
    if (t->et.start_fd >= 0)
        supervise_started (r, t);   /* a start the loop has not seen yet is reported first */
    struct exec_result res = { 0 };
    struct err e = { 0 };
    if (t->ex->ops->collect (t->ex, &t->et, &res, &e) < 0) {
        t->et.pidfd = -1; /* collect owns the pidfd whether it succeeds or not */
        log_err ("task %" PRIu64 ".%d: collect: %s", t->et.task_id, t->et.attempt, e.text);
        char msg[600];
        snprintf (msg, sizeof msg, "Runner could not collect the task's result: %s", e.text);
        finish (r, t, ST_FAILED, NULL, msg);
        return;
    }
    t->et.pidfd = -1;
    char msg[400];
    const char *status;
    if (res.oom_killed) {
        status = ST_KILLED_OOM;
        snprintf (msg, sizeof msg, "Killed by the OOM killer (memory limit reached)%s%s",
                  res.message[0] ? ": " : ".", res.message);
    } else if (strcmp (t->status, STATE_KILLING) == 0) {
        status = ST_KILLED;
        snprintf (msg, sizeof msg, "Killed by host request (exit code %d, signal %d).",
                  res.exit_code, res.term_signal);
    } else if (res.exit_code == 0 && res.term_signal == 0) {
        status = ST_COMPLETED;
        snprintf (msg, sizeof msg, "%s", res.message);
    } else {
        status = ST_FAILED;
        if (res.message[0])
            snprintf (msg, sizeof msg, "%s", res.message);
        else if (res.term_signal)
            snprintf (msg, sizeof msg, "Task killed by signal %d.", res.term_signal);
        else
            snprintf (msg, sizeof msg, "Task exited with code %d.", res.exit_code);
    }
    finish (r, t, status, &res.exit_code, msg);
}

void supervise_adopt_all (struct runner *r)
{
    struct state_task *v = NULL;
    size_t n = 0;
    struct err e = { 0 };
    if (state_task_list (r->state, &v, &n, &e) < 0) {
        log_err ("cannot read supervised tasks: %s", e.text);
        return;
    }
    int adopted = 0, ended = 0, restarted = 0, interrupted = 0;
    for (size_t i = 0; i < n; i++) {
        struct state_task *s = &v[i];
        struct rtask *t = task_new (r, s->task_id, s->attempt, s->status);
        snprintf (t->started_at, sizeof t->started_at, "%s", s->started_at);
        if (strcmp (s->status, STATE_STARTING) == 0
            || (s->shim_pid <= 0 && strcmp (s->status, STATE_PENDING) != 0)) {
            log_warn ("task %" PRIu64 ".%d: the runner stopped while starting it; not "
                      "starting it again", s->task_id, s->attempt);
            finish (r, t, ST_FAILED, NULL,
                    "The runner stopped while starting this task; it was not started again "
                    "to avoid running it twice.");
            interrupted++;
            continue;
        }
        if (strcmp (s->status, STATE_PENDING) == 0) {
            /* Recorded but never started (the runner stopped in between): start it now. */
            json_t *task = s->spec ? json_loads (s->spec, 0, NULL) : NULL;
            snprintf (t->status, sizeof t->status, "%s", STATE_PENDING);
            if (!task) {
                finish (r, t, ST_FAILED, NULL, "Runner restarted and lost the task's spec.");
                continue;
            }
            log_info ("task %" PRIu64 ".%d: was accepted but not started before the runner "
                      "stopped; starting it now", s->task_id, s->attempt);
            enqueue (r, t, task);
            json_decref (task);
            restarted++;
            continue;
        }
        t->et.shim_pid = s->shim_pid;
        snprintf (t->et.cgroup, sizeof t->et.cgroup, "%s", s->cgroup);
        e = (struct err){ 0 };
        json_t *task = s->spec ? json_loads (s->spec, 0, NULL) : NULL;
        t->ex = executor_for (r, task);
        struct spec_buf b = { 0 };
        struct err se = { 0 };
        bool have_spec = task && spec_from_taskinfo (r, s->task_id, s->attempt, task, &b, &se) == 0;
        int rc = t->ex->ops->adopt (t->ex, &t->et, have_spec ? &b.spec : NULL, &e);
        spec_buf_free (&b);
        json_decref (task);
        if (rc == 1) {
            adopted++;
            if (t->et.start_fd >= 0 && strcmp (t->status, STATE_PAUSED) == 0) {
                /* a VPS whose container had stopped (node reboot) was started again: it
                 * runs now, and says so once its SSH server answers */
                snprintf (t->status, sizeof t->status, "%s", STATE_RUNNING);
                persist (r, t);
            }
            log_info ("task %" PRIu64 ".%d: adopted (%s, shim pid %d)", s->task_id, s->attempt,
                      t->status, (int)t->et.shim_pid);
            if (strcmp (t->status, STATE_KILLING) == 0) {
                /* The kill was under way: restart its grace period. */
                t->kill_deadline = runner_now () + r->conf.kill_grace_seconds;
                if (t->ex->ops->signal (t->ex, &t->et, SIGTERM, &e) < 0)
                    t->kill_deadline = runner_now ();
            }
        } else if (rc == 0) {
            ended++;
            supervise_reap (r, t);
        } else {
            log_err ("task %" PRIu64 ".%d: cannot re-attach: %s", s->task_id, s->attempt,
                     e.text);
            char msg[600];
            snprintf (msg, sizeof msg, "Runner restarted and could not re-attach to the "
                      "task: %s", e.text);
            /* Do not leave an unsupervised task running behind the host's back. */
            struct err ke = { 0 };
            (void)t->ex->ops->signal (t->ex, &t->et, SIGKILL, &ke);
            t->et.pidfd = -1;
            finish (r, t, ST_FAILED, NULL, msg);
        }
    }
    state_task_list_free (v, n);
    if (n)
        log_info ("state: %zu task(s) found: %d still running, %d ended while the runner was "
                  "down, %d queued to start, %d interrupted while starting (failed)", n,
                  adopted, ended, restarted, interrupted);
}

static bool supervised (uint64_t task_id, int attempt, void *arg)
{
    return supervise_find (arg, task_id, attempt) != NULL;
}

void supervise_sweep_containers (struct runner *r)
{
    struct err e = { 0 };
    if (exec_docker_sweep (r->docker, supervised, r, &e) < 0)
        log_debug ("container sweep skipped: %s", e.text);
}

int supervise_start_queued (struct runner *r, int max)
{
    /* Mark the batch `starting` durably before forking: after a crash, a `pending` row was
     * certainly never started (start it), a `starting` row may have been (fail it rather
     * than risk running it twice). One commit per batch. */
    struct err e = { 0 };
    int n = 0, marked = 0;
    for (struct rtask *q = r->startq_head; q && n < max; q = q->qnext, n++) {
        if (q->start_recorded)
            continue;   /* recorded `starting` when it was accepted, and committed */
        marked++;
        if (state_task_set_status (r->state, q->et.task_id, q->et.attempt, STATE_STARTING, &e)
            < 0)
            log_err ("task %" PRIu64 ".%d: %s", q->et.task_id, q->et.attempt, e.text);
    }
    if (marked && state_commit (r->state, &e) < 0) {
        log_err ("cannot persist task starts, retrying: %s", e.text);
        return n;
    }
    for (int i = 0; i < n && r->startq_head; i++) {
        struct rtask *t = r->startq_head;
        json_t *task = json_incref (t->pending_spec);
        dequeue (r, t);
        snprintf (t->status, sizeof t->status, "%s", STATE_STARTING);
        start_task (r, t, task);
        json_decref (task);
    }
    int left = 0;
    for (struct rtask *q = r->startq_head; q; q = q->qnext)
        left++;
    return left;
}

void supervise_unstart_queued (struct runner *r)
{
    struct err e = { 0 };
    for (struct rtask *q = r->startq_head; q; q = q->qnext) {
        if (!q->start_recorded)
            continue;
        q->start_recorded = false;
        if (state_task_set_status (r->state, q->et.task_id, q->et.attempt, STATE_PENDING, &e)
            < 0)
            log_err ("task %" PRIu64 ".%d: %s", q->et.task_id, q->et.attempt, e.text);
    }
}

/* Without a pidfd: whether the shim has exited. Our own child stays a zombie (kill(0)
 * succeeds) until reaped, so try waitpid first; an adopted shim is not our child. */
static bool shim_gone (pid_t pid)
{
    pid_t w;
    while ((w = waitpid (pid, NULL, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (w == pid)
        return true;
    if (w < 0 && errno == ECHILD)
        return kill (pid, 0) < 0 && errno == ESRCH;
    return false;
}

double supervise_timers (struct runner *r, double now)
{
    double next = 0;
    struct rtask *t, *tn;
    for (t = r->tasks; t; t = tn) {
        tn = t->next;
        if (t->et.pidfd < 0 && t->et.shim_pid > 0 && shim_gone (t->et.shim_pid)) {
            /* No pidfd to watch (adopted without one): checked once a second. */
            supervise_reap (r, t);
            continue;
        }
        if (t->et.pidfd < 0 && t->et.shim_pid > 0 && (next == 0 || now + 1 < next))
            next = now + 1;
        if (t->kill_deadline > 0) {
            if (now >= t->kill_deadline) {
                struct err e = { 0 };
                if (!t->sigkill_sent)
                    log_info ("task %" PRIu64 ".%d: grace period over, sending SIGKILL",
                              t->et.task_id, t->et.attempt);
                if (t->ex->ops->signal (t->ex, &t->et, SIGKILL, &e) < 0 && !t->sigkill_sent)
                    log_err ("task %" PRIu64 ".%d: SIGKILL: %s", t->et.task_id, t->et.attempt,
                             e.text);
                t->sigkill_sent = true;
                /* Again every second until the shim reports the end: a task killed in the
                 * instant between its fork and joining its cgroup is caught next time. */
                t->kill_deadline = now + 1;
            }
            if (next == 0 || t->kill_deadline < next) {
                next = t->kill_deadline;
            }
        }
    }
    return next;
}
