/* task.c - the task record and the one transition table of the task state machine */
#include "host/task.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static const char *status_names[TASK_STATUS_COUNT] = {
    [TASK_QUEUED] = "queued",       [TASK_ASSIGNING] = "assigning",
    [TASK_PENDING] = "pending",     [TASK_RUNNING] = "running",
    [TASK_PAUSED] = "paused",       [TASK_COMPLETED] = "completed",
    [TASK_FAILED] = "failed",       [TASK_KILLED] = "killed",
    [TASK_KILLED_OOM] = "killed_oom", [TASK_LOST] = "lost",
};

struct task *task_create (void)
{
    struct task *t = xcalloc (1, sizeof *t);
    strcpy (t->task_type, "command");
    t->arguments_json = xstrdup ("[]");
    t->env_json = xstrdup ("{}");
    t->gpus_json = xstrdup ("[]");
    t->numa = -1;
    t->attempt = 1;
    t->cores = 1;
    return t;
}

void task_destroy (struct task *t)
{
    if (!t)
        return;
    free (t->command);
    free (t->arguments_json);
    free (t->env_json);
    free (t->gpus_json);
    free (t->node);
    free (t->target);
    free (t->container);
    free (t->docker_json);
    free (t->stdout_path);
    free (t->stderr_path);
    free (t->error_message);
    free (t);
}

static char *dup_or_null (const char *s)
{
    return s ? xstrdup (s) : NULL;
}

struct task *task_copy (const struct task *src)
{
    struct task *t = xmalloc (sizeof *t);
    *t = *src;
    t->command = dup_or_null (src->command);
    t->arguments_json = dup_or_null (src->arguments_json);
    t->env_json = dup_or_null (src->env_json);
    t->gpus_json = dup_or_null (src->gpus_json);
    t->node = dup_or_null (src->node);
    t->target = dup_or_null (src->target);
    t->container = dup_or_null (src->container);
    t->docker_json = dup_or_null (src->docker_json);
    t->stdout_path = dup_or_null (src->stdout_path);
    t->stderr_path = dup_or_null (src->stderr_path);
    t->error_message = dup_or_null (src->error_message);
    return t;
}

void task_set_str (char **field, const char *value)
{
    free (*field);
    *field = dup_or_null (value);
}

const char *task_status_name (enum task_status st)
{
    if ((int)st < 0 || st >= TASK_STATUS_COUNT)
        return NULL;
    return status_names[st];
}

int task_status_parse (const char *name, enum task_status *out)
{
    for (int i = 0; i < TASK_STATUS_COUNT; i++)
        if (strcmp (status_names[i], name) == 0) {
            *out = (enum task_status)i;
            return 0;
        }
    return -1;
}

bool task_status_is_final (enum task_status st)
{
    return st == TASK_COMPLETED || st == TASK_FAILED || st == TASK_KILLED
           || st == TASK_KILLED_OOM || st == TASK_LOST;
}

bool task_status_holds_resources (enum task_status st)
{
    return st == TASK_ASSIGNING || st == TASK_PENDING || st == TASK_RUNNING
           || st == TASK_PAUSED;
}

/* Rows: from; columns: to. H = host may make it, R = runner report may make it.
 * Final states are sticky; the only way out of one is a runner report reviving a `lost`
 * task (same attempt, same node: the node came back and the task was still alive or had
 * finished meanwhile). Requeue (lost/assigning -> queued) is a host action on node loss. */
#define H 1
#define R 2
static const unsigned char transitions[TASK_STATUS_COUNT][TASK_STATUS_COUNT] = {
    /*               QUE ASG PEN RUN   PAU   COM FAIL  KIL   OOM LOST */
    [TASK_QUEUED]    = { 0, H, 0, 0, 0, 0, H, H, 0, 0 },
    [TASK_ASSIGNING] = { H, 0, R, R, R, R, H | R, H | R, R, H },
    [TASK_PENDING]   = { H, 0, 0, R, R, R, H | R, H | R, R, H },
    [TASK_RUNNING]   = { H, 0, 0, 0, R, R, H | R, H | R, R, H },
    [TASK_PAUSED]    = { H, 0, 0, R, 0, R, H | R, H | R, R, H },
    [TASK_COMPLETED] = { 0 },
    [TASK_FAILED]    = { 0 },
    [TASK_KILLED]    = { 0 },
    [TASK_KILLED_OOM] = { 0 },
    [TASK_LOST]      = { H, 0, R, R, R, R, R, R, R, 0 },
};
#undef H
#undef R

bool task_transition_allowed (enum task_status from, enum task_status to,
                              enum task_actor actor)
{
    if ((int)from < 0 || from >= TASK_STATUS_COUNT || (int)to < 0 || to >= TASK_STATUS_COUNT)
        return false;
    unsigned char bit = actor == ACTOR_HOST ? 1 : 2;
    return (transitions[from][to] & bit) != 0;
}
