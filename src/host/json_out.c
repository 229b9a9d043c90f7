/* json_out.c - JSON views of tasks and nodes with 0.3 keys, and the time format */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/proto.h"
#include "host/host.h"

int64_t now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *iso_time (int64_t ms, char *buf)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r (&s, &tm);
    size_t n = strftime (buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + n, 32 - n, ".%06d", (int)(ms % 1000) * 1000);
    return buf;
}

int iso_parse (const char *s, int64_t *out)
{
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *p = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        p = strptime (s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!p)
        return -1;
    long frac_us = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 6) {
                frac_us = frac_us * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 6)
            frac_us *= 10;
    }
    tm.tm_isdst = -1;
    time_t t = mktime (&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t * 1000 + frac_us / 1000;
    return 0;
}

static json_t *time_or_null (int64_t ms)
{
    char buf[32];
    return ms ? json_string (iso_time (ms, buf)) : json_null ();
}

static json_t *id_str (uint64_t id)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%" PRIu64, id);
    return json_string (buf);
}

static json_t *parse_or (const char *text, json_t *fallback)
{
    json_t *v = text ? json_loads (text, 0, NULL) : NULL;
    if (!v)
        return fallback;
    json_decref (fallback);
    return v;
}

json_t *task_to_json (const struct task *t)
{
    json_t *o = json_object ();
    char unit[64];
    snprintf (unit, sizeof unit, "hakuriver-task-%" PRIu64 ".scope", t->id);
    json_object_set_new (o, "task_id", id_str (t->id));
    json_object_set_new (o, "batch_id", t->batch_id ? id_str (t->batch_id) : json_null ());
    json_object_set_new (o, "command", json_string (t->command ? t->command : ""));
    json_object_set_new (o, "arguments", parse_or (t->arguments_json, json_array ()));
    json_object_set_new (o, "env_vars", parse_or (t->env_json, json_object ()));
    json_object_set_new (o, "required_cores", json_integer (t->cores));
    json_object_set_new (o, "required_gpus", parse_or (t->gpus_json, json_array ()));
    json_object_set_new (o, "required_memory_bytes",
                         t->memory_bytes ? json_integer (t->memory_bytes) : json_null ());
    json_object_set_new (o, "status", json_string (task_status_name (t->status)));
    json_object_set_new (o, "assigned_node", t->node ? json_string (t->node) : json_null ());
    json_object_set_new (o, "target_numa_node_id",
                         t->numa >= 0 ? json_integer (t->numa) : json_null ());
    json_object_set_new (o, "stdout_path", json_string (t->stdout_path ? t->stdout_path : ""));
    json_object_set_new (o, "stderr_path", json_string (t->stderr_path ? t->stderr_path : ""));
    json_object_set_new (o, "exit_code",
                         t->has_exit_code ? json_integer (t->exit_code) : json_null ());
    json_object_set_new (o, "error_message",
                         t->error_message ? json_string (t->error_message) : json_null ());
    json_object_set_new (o, "submitted_at", time_or_null (t->submitted_at));
    json_object_set_new (o, "started_at", time_or_null (t->started_at));
    json_object_set_new (o, "completed_at", time_or_null (t->completed_at));
    json_object_set_new (o, "systemd_unit_name", json_string (unit));
    json_object_set_new (o, "assignment_suspicion_count", json_integer (t->suspicion));
    json_object_set_new (o, "task_type", json_string (t->task_type));
    json_object_set_new (o, "container_name",
                         t->container ? json_string (t->container) : json_null ());
    json_t *dopt = t->docker_json ? json_loads (t->docker_json, 0, NULL) : NULL;
    json_object_set_new (o, "image", json_incref (json_object_get (dopt, "image")
                                                      ? json_object_get (dopt, "image")
                                                      : json_null ()));
    json_decref (dopt);
    json_object_set_new (o, "attempt", json_integer (t->attempt));
    json_object_set_new (o, "retries", json_integer (t->retries_left));
    json_object_set_new (o, "target", t->target ? json_string (t->target) : json_null ());
    json_object_set_new (o, "max_running",
                         t->max_running > 0 ? json_integer (t->max_running) : json_null ());
    json_object_set_new (o, "ssh_port", t->ssh_port > 0 ? json_integer (t->ssh_port)
                                                        : json_null ());
    return o;
}

json_t *task_info_json (struct host *h, const struct task *t)
{
    const char *cont = t->container ? t->container : h->conf->default_container_name;
    char image[300];
    if (strcmp (cont, CONTAINER_NULL) == 0)
        snprintf (image, sizeof image, "%s", "");
    else {
        snprintf (image, sizeof image, "hakuriver/%s:base", cont);
        for (char *p = image; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    /* Per-task Docker options (submit's image, additional_mounts, privileged). Mounts
     * given with the task replace the configured ones, as in 0.3. */
    json_t *dopt = t->docker_json ? json_loads (t->docker_json, 0, NULL) : NULL;
    const char *direct = json_string_value (json_object_get (dopt, "image"));
    json_t *mounts = json_object_get (dopt, "mounts");
    if (json_is_array (mounts)) {
        json_incref (mounts);
    } else {
        mounts = json_array ();
        for (char **m = h->conf->additional_mounts; m && *m; m++)
            json_array_append_new (mounts, json_string (*m));
    }
    bool privileged = h->conf->tasks_privileged || json_is_true (json_object_get (dopt, "privileged"));
    if (direct)
        snprintf (image, sizeof image, "%s", direct);
    json_t *o = json_object ();
    json_object_set_new (o, "task_id", json_integer ((json_int_t)t->id));
    json_object_set_new (o, "attempt", json_integer (t->attempt));
    json_object_set_new (o, "task_type", json_string (t->task_type));
    json_object_set_new (o, "command", json_string (t->command ? t->command : ""));
    json_object_set_new (o, "arguments", parse_or (t->arguments_json, json_array ()));
    json_object_set_new (o, "env_vars", parse_or (t->env_json, json_object ()));
    json_object_set_new (o, "required_cores", json_integer (t->cores));
    json_object_set_new (o, "required_gpus", parse_or (t->gpus_json, json_array ()));
    json_object_set_new (o, "stdout_path", json_string (t->stdout_path ? t->stdout_path : ""));
    json_object_set_new (o, "stderr_path", json_string (t->stderr_path ? t->stderr_path : ""));
    json_object_set_new (o, "required_memory_bytes",
                         t->memory_bytes ? json_integer (t->memory_bytes) : json_null ());
    json_object_set_new (o, "target_numa_node_id",
                         t->numa >= 0 ? json_integer (t->numa) : json_null ());
    json_object_set_new (o, "container_name", json_string (cont));
    json_object_set_new (o, "docker_image_name", json_string (image));
    json_object_set_new (o, "image", direct ? json_string (direct) : json_null ());
    json_object_set_new (o, "docker_privileged", json_boolean (privileged));
    json_object_set_new (o, "docker_additional_mounts", mounts);
    json_decref (dopt);
    return o;
}

static json_t *num_or_null (double v)
{
    return isnan (v) ? json_null () : json_real (v);
}

json_t *node_to_json (struct host *h, const struct node *n)
{
    char buf[32];
    json_t *o = json_object ();
    json_object_set_new (o, "hostname", json_string (n->hostname));
    json_object_set_new (o, "url", json_string (n->url));
    json_object_set_new (o, "total_cores", json_integer (n->total_cores));
    if (n->online) {
        json_object_set_new (o, "cores_in_use", json_integer (n->cores_used));
        json_object_set_new (o, "available_cores", json_integer (n->total_cores - n->cores_used));
    } else {
        json_object_set_new (o, "cores_in_use", json_string ("N/A"));
        json_object_set_new (o, "available_cores", json_integer (0));
    }
    json_object_set_new (o, "status", json_string (n->online ? NODE_ONLINE : NODE_OFFLINE));
    json_object_set_new (o, "last_heartbeat", time_or_null (n->last_seen));
    json_object_set_new (o, "numa_topology", n->numa ? json_incref (n->numa) : json_null ());
    json_object_set_new (o, "gpu_info", json_incref (n->gpus));
    json_object_set_new (o, "memory_total_bytes", json_integer (n->memory_total));
    json_object_set_new (o, "memory_in_use_bytes", json_integer (n->memory_used));
    json_object_set_new (o, "node_id", json_string (n->node_id));
    json_object_set_new (o, "running_tasks", json_integer (n->ntasks));
    json_object_set_new (o, "cpu_percent", num_or_null (n->cpu_percent));
    json_object_set_new (o, "memory_percent", num_or_null (n->memory_percent));
    (void)buf;
    return o;
}
