/* api_runner.c - the runner channel: register, heartbeat, long-poll, updates; health ring */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "host/api.h"

static const struct field_spec register_fields[] = {
    { "hostname", F_STR }, { "node_id", F_STR | F_NULL }, { "total_cores", F_INT },
    { "total_ram_bytes", F_INT | F_NULL }, { "runner_url", F_STR | F_NULL },
    { "numa_topology", F_OBJ | F_NULL }, { "gpu_info", F_ARR | F_NULL },
    { "tasks", F_ARR | F_NULL }, { NULL, 0 },
};

static const struct field_spec heartbeat_fields[] = {
    { "running_tasks", F_ARR | F_NULL }, { "killed_tasks", F_ARR | F_NULL },
    { "cpu_percent", F_NUM | F_NULL }, { "memory_percent", F_NUM | F_NULL },
    { "memory_used_bytes", F_INT | F_NULL }, { "memory_total_bytes", F_INT | F_NULL },
    { "current_avg_temp", F_NUM | F_NULL }, { "current_max_temp", F_NUM | F_NULL },
    { "gpu_info", F_ARR | F_NULL }, { "node_id", F_STR | F_NULL }, { NULL, 0 },
};

static const struct field_spec update_fields[] = {
    { "task_id", F_INT | F_STR }, { "attempt", F_INT | F_NULL }, { "status", F_STR },
    { "exit_code", F_INT | F_NULL }, { "message", F_STR | F_NULL },
    { "started_at", F_STR | F_NULL }, { "completed_at", F_STR | F_NULL },
    { "node", F_STR | F_NULL }, { "node_id", F_STR | F_NULL }, { "ssh_port", F_INT | F_NULL },
    { NULL, 0 },
};

static bool valid_hostname (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

static double num_or_nan (json_t *v)
{
    return json_is_number (v) ? json_number_value (v) : NAN;
}

static int64_t silence_limit (struct host *h)
{
    return (int64_t)h->conf->heartbeat_interval * h->conf->heartbeat_timeout_factor * 1000;
}

/* Marks the node alive; a node coming back makes the scheduler look again. */
static void node_seen (struct host *h, struct node *n)
{
    n->last_seen = now_ms ();
    if (!n->online) {
        n->online = true;
        log_info ("node %s is online", n->hostname);
        host_save_node (h, n);
        h->sched_dirty = true;
    }
}

static void add_kill (json_t *kill, uint64_t id, int attempt)
{
    json_array_append_new (kill, json_pack ("{s:I,s:i}", "task_id", (json_int_t)id, "attempt",
                                            attempt));
}

/* A task reported alive by the node it ran on after it was marked lost: take it back. */
static struct atask *revive (struct host *h, struct task *t, enum task_status st)
{
    struct atask *a = xcalloc (1, sizeof *a);
    a->task = t;
    a->delivered = true;
    a->state_since = now_ms ();
    enum task_status from = t->status;
    t->status = st;
    t->completed_at = 0;
    t->has_exit_code = false;
    task_set_str (&t->error_message, NULL);
    idmap_put (&h->active, t->id, a);
    sched_hold (h, a);
    log_info ("task %" PRIu64 ": %s -> %s (node %s came back with it)", t->id,
              task_status_name (from), task_status_name (st), t->node);
    host_save_task (h, t, false);
    return a;
}

/* Finds the task; when it is not active, loads it from the store (*owned set). */
static struct task *find_task (struct host *h, uint64_t id, struct atask **ap, bool *owned)
{
    *owned = false;
    *ap = active_find (h, id);
    if (*ap)
        return (*ap)->task;
    struct task *t = NULL;
    struct err e;
    if (store_task_get (h->store, id, &t, &e) < 0)
        log_err ("store: %s", e.text);
    *owned = t != NULL;
    return t;
}

static struct node *runner_node (struct host *h, struct http_req *req, const char *hostname,
                                 const char *node_id)
{
    struct node *n = node_find (h, hostname);
    if (!n) {
        http_reply_error (req, 404, "Node not registered");
        return NULL;
    }
    if (node_id && *node_id && *n->node_id && strcmp (node_id, n->node_id) != 0) {
        http_reply_error (req, 409, "Hostname %s is registered by another runner (node id "
                                    "%.8s...)", hostname, n->node_id);
        return NULL;
    }
    return n;
}

void api_register (struct host *h, struct http_req *req)
{
    json_t *body = api_body_object (req);
    json_t *kill = NULL;
    if (!body)
        return;
    if (api_check_fields (req, body, register_fields, false) < 0)
        goto out;
    const char *hostname = json_string_value (json_object_get (body, "hostname"));
    const char *node_id = json_string_value (json_object_get (body, "node_id"));
    json_int_t cores = json_integer_value (json_object_get (body, "total_cores"));
    if (!valid_hostname (hostname)) {
        http_reply_error (req, 422, "Invalid hostname");
        goto out;
    }
    if (cores < 1 || cores > 100000) {
        http_reply_error (req, 422, "total_cores must be between 1 and 100000");
        goto out;
    }
    struct node *n = node_find (h, hostname);
    if (n && n->online && *n->node_id && node_id && strcmp (n->node_id, node_id) != 0
        && now_ms () - n->last_seen <= silence_limit (h)) {
        log_warn ("node %s: refused a second runner claiming this hostname (node id %.8s...)",
                  hostname, node_id);
        http_reply_error (req, 409, "Hostname %s is already registered by another online "
                                    "runner (node id %.8s...); give this runner a distinct "
                                    "hostname (--hostname)", hostname, n->node_id);
        goto out;
    }
    if (!n)
        n = node_add (h, hostname);
    else if (node_id && *n->node_id && strcmp (n->node_id, node_id) != 0)
        log_warn ("node %s: a new runner identity replaces the silent one", hostname);
    task_set_str (&n->node_id, node_id ? node_id : "");
    task_set_str (&n->url, json_string_value (json_object_get (body, "runner_url")) ?: "");
    n->total_cores = (int)cores;
    n->memory_total = json_integer_value (json_object_get (body, "total_ram_bytes"));
    json_decref (n->numa);
    json_t *numa = json_object_get (body, "numa_topology");
    n->numa = json_is_object (numa) ? json_incref (numa) : NULL;
    json_t *gpus = json_object_get (body, "gpu_info");
    if (json_is_array (gpus)) {
        json_decref (n->gpus);
        n->gpus = json_incref (gpus);
    }
    n->online = false; /* node_seen logs and saves */
    node_seen (h, n);
    host_save_node (h, n);

    /* reconcile what the runner still supervises with what the host believes */
    kill = json_array ();
    struct idmap listed;
    idmap_init (&listed);
    json_t *tasks = json_object_get (body, "tasks"), *v;
    size_t i;
    json_array_foreach (tasks, i, v)
    {
        json_int_t id = json_integer_value (json_object_get (v, "task_id"));
        int attempt = (int)json_integer_value (json_object_get (v, "attempt"));
        const char *st = json_string_value (json_object_get (v, "status"));
        if (id <= 0)
            continue;
        idmap_put (&listed, (uint64_t)id, (void *)1);
        struct atask *a;
        bool owned;
        struct task *t = find_task (h, (uint64_t)id, &a, &owned);
        if (t && !a && t->status == TASK_LOST && t->node && strcmp (t->node, hostname) == 0
            && t->attempt == attempt) {
            enum task_status s = TASK_RUNNING;
            if (st && strcmp (st, ST_PAUSED) == 0)
                s = TASK_PAUSED;
            revive (h, t, s);
            continue;
        }
        if (!t || !a || a->kill_requested || !t->node || strcmp (t->node, hostname) != 0
            || t->attempt != attempt)
            add_kill (kill, (uint64_t)id, attempt);
        else
            a->delivered = true;
        if (owned)
            task_destroy (t);
    }
    size_t pos = 0;
    struct atask *a;
    struct atask **gone = NULL;
    size_t ngone = 0;
    while ((a = idmap_next (&h->active, &pos, NULL))) {
        if (!a->task->node || strcmp (a->task->node, hostname) != 0 || !a->holds)
            continue;
        if (idmap_get (&listed, a->task->id))
            continue;
        if (a->task->status == TASK_ASSIGNING && !a->kill_requested) {
            /* never (durably) received: send it again */
            bool queued = false;
            for (struct node_cmd *c = n->cmds; c; c = c->next)
                if (c->task_id == a->task->id && strcmp (c->op, "run") == 0)
                    queued = true;
            if (!queued)
                sched_send_run (h, a);
            continue;
        }
        gone = xreallocarray (gone, ngone + 1, sizeof *gone);
        gone[ngone++] = a;
    }
    for (size_t k = 0; k < ngone; k++) {
        a = gone[k];
        if (a->kill_requested) {
            a->kill_requested = false;
            sched_forget (h, a);
            continue;
        }
        a->task->has_exit_code = true;
        a->task->exit_code = -1;
        sched_finish (h, a, TASK_LOST, "Runner restarted and no longer has the task.");
    }
    free (gone);
    idmap_free (&listed);
    h->sched_dirty = true;
    char msg[300];
    snprintf (msg, sizeof msg, "Runner %s acknowledged.", hostname);
    http_reply_json (req, 200, json_pack ("{s:s,s:O}", "message", msg, "kill", kill));
out:
    json_decref (kill);
    json_decref (body);
}

void api_heartbeat (struct host *h, struct http_req *req, const char *hostname)
{
    json_t *body = api_body_object (req);
    if (!body)
        return;
    if (api_check_fields (req, body, heartbeat_fields, false) < 0)
        goto out;
    struct node *n = runner_node (h, req, hostname,
                                  json_string_value (json_object_get (body, "node_id")));
    if (!n)
        goto out;
    node_seen (h, n);
    n->cpu_percent = num_or_nan (json_object_get (body, "cpu_percent"));
    n->memory_percent = num_or_nan (json_object_get (body, "memory_percent"));
    n->temp_avg = num_or_nan (json_object_get (body, "current_avg_temp"));
    n->temp_max = num_or_nan (json_object_get (body, "current_max_temp"));
    json_t *mu = json_object_get (body, "memory_used_bytes");
    n->memory_used_bytes = json_is_integer (mu) ? json_integer_value (mu) : -1;
    json_t *gpus = json_object_get (body, "gpu_info");
    if (json_is_array (gpus)) {
        json_decref (n->gpus);
        n->gpus = json_incref (gpus);
    }
    json_t *running = json_object_get (body, "running_tasks");
    json_decref (n->running_reported);
    n->running_reported = json_is_array (running) ? json_incref (running) : json_array ();

    /* reconcile: tasks the runner runs that the host does not expect are killed (a final
     * state the runner missed), or revived (lost while the node was unreachable) */
    struct idmap seen;
    idmap_init (&seen);
    size_t i;
    json_t *v;
    json_array_foreach (n->running_reported, i, v)
    {
        json_int_t id = json_is_integer (v) ? json_integer_value (v) : 0;
        if (id <= 0)
            continue;
        idmap_put (&seen, (uint64_t)id, (void *)1);
        struct atask *a;
        bool owned;
        struct task *t = find_task (h, (uint64_t)id, &a, &owned);
        if (a && !a->kill_requested && a->task->node && strcmp (a->task->node, hostname) == 0) {
            a->task->suspicion = 0;
            continue;
        }
        if (t && !a && t->status == TASK_LOST && t->node && strcmp (t->node, hostname) == 0) {
            revive (h, t, TASK_RUNNING);
            continue;
        }
        if (!a || a->kill_requested || !t->node || strcmp (t->node, hostname) != 0)
            node_cmd_push (h, n, "kill", (uint64_t)id, json_pack ("{s:i}", "attempt", 0));
        if (owned)
            task_destroy (t);
    }
    /* tasks the host believes run there but the runner stopped reporting: 0.3's suspicion
     * count, applied to delivered tasks (a final update may still be in flight: 3 beats) */
    int64_t now = now_ms (), grace = 3LL * h->conf->heartbeat_interval * 1000;
    size_t pos = 0;
    struct atask *a, **gone = NULL;
    size_t ngone = 0;
    while ((a = idmap_next (&h->active, &pos, NULL))) {
        struct task *t = a->task;
        if (!t->node || strcmp (t->node, hostname) != 0 || !a->holds || a->kill_requested
            || !a->delivered || idmap_get (&seen, t->id) || now - a->state_since < grace)
            continue;
        if (t->status != TASK_RUNNING && t->status != TASK_PAUSED && t->status != TASK_PENDING)
            continue;
        if (++t->suspicion < 3)
            continue;
        gone = xreallocarray (gone, ngone + 1, sizeof *gone);
        gone[ngone++] = a;
    }
    for (size_t k = 0; k < ngone; k++) {
        gone[k]->task->has_exit_code = true;
        gone[k]->task->exit_code = -1;
        sched_finish (h, gone[k], TASK_LOST, "Runner stopped reporting the task.");
    }
    free (gone);
    idmap_free (&seen);
    http_reply_json (req, 200, json_pack ("{s:s}", "message", "Heartbeat received"));
out:
    json_decref (body);
}

#define MAX_CMDS_PER_REPLY 1000

static json_t *poll_reply (struct node *n)
{
    json_t *cmds = json_array ();
    int count = 0;
    for (struct node_cmd *c = n->cmds; c && count < MAX_CMDS_PER_REPLY; c = c->next, count++) {
        c->sent = true;
        json_array_append (cmds, c->body);
    }
    return json_pack ("{s:o}", "commands", cmds);
}

/* Adds the unsent commands of R's node to R's reply (see api_attach_commands). */
static void attach_commands (struct http_req *r)
{
    struct node *n = r->cmds_node;
    json_t *reply = r->cmds_reply;
    if (!n || !reply)
        return;
    r->cmds_node = NULL;
    r->cmds_reply = NULL;
    json_t *cmds = json_array ();
    int count = 0;
    /* Only what no reply carried yet: what a long-poll reply carries is resent by the next
     * poll until acknowledged, so nothing is lost if that reply was. */
    for (struct node_cmd *c = n->cmds; c && count < MAX_CMDS_PER_REPLY; c = c->next) {
        if (c->sent)
            continue;
        c->sent = true;
        json_array_append (cmds, c->body);
        count++;
    }
    if (count == 0) {
        json_decref (cmds);
        json_decref (reply);
        return;
    }
    json_object_set_new (reply, "commands", cmds);
    http_reply_json (r, 200, reply);
    /* delivered: the parked long-poll need not be answered for these */
    n->wake = false;
}

void api_attach_commands (struct host *h)
{
    for (struct http_req *r = h->deferred; r; r = r->next)
        attach_commands (r);
}

void api_poll (struct host *h, struct http_req *req, const char *hostname)
{
    const char *node_id = http_query (req, "node_id");
    struct node *n = runner_node (h, req, hostname, node_id);
    if (!n)
        return;
    const char *ack = http_query (req, "ack");
    if (ack)
        node_cmd_ack (h, n, strtoull (ack, NULL, 10));
    node_seen (h, n);
    if (n->poll) {
        /* a newer poll replaces an older one (its connection was probably lost) */
        struct http_req *old = n->poll;
        n->poll = NULL;
        old->poll_node = NULL;
        http_reply_json (old, 200, json_pack ("{s:[]}", "commands"));
        http_release (old);
    }
    if (n->cmds) {
        http_reply_json (req, 200, poll_reply (n));
        return;
    }
    const char *w = http_query (req, "wait");
    long wait = w ? strtol (w, NULL, 10) : 25;
    if (wait < 0)
        wait = 0;
    if (wait > 30)
        wait = 30;
    if (wait == 0) {
        http_reply_json (req, 200, json_pack ("{s:[]}", "commands"));
        return;
    }
    n->poll = req;
    n->poll_deadline = now_ms () + wait * 1000;
    req->poll_node = n;
}

void api_answer_polls (struct host *h, bool only_expired)
{
    int64_t now = now_ms ();
    for (struct node *n = h->nodes; n; n = n->next) {
        struct http_req *r = n->poll;
        if (!r)
            continue;
        bool expired = now >= n->poll_deadline;
        if (only_expired ? !expired : !(n->wake && n->cmds) && !expired)
            continue;
        n->poll = NULL;
        r->poll_node = NULL;
        http_reply_json (r, 200, poll_reply (n));
        http_release (r);
    }
    if (!only_expired)
        for (struct node *n = h->nodes; n; n = n->next)
            n->wake = false;
}

static const char *apply_update (struct host *h, struct node *n, json_t *u, json_t *kill)
{
    json_t *jid = json_object_get (u, "task_id");
    uint64_t id = 0;
    if (json_is_integer (jid) && json_integer_value (jid) > 0)
        id = (uint64_t)json_integer_value (jid);
    else if (json_is_string (jid))
        api_parse_id (json_string_value (jid), &id);
    if (!id)
        return "rejected";
    struct atask *a;
    bool owned;
    struct task *t = find_task (h, id, &a, &owned);
    json_t *ja = json_object_get (u, "attempt");
    int attempt = json_is_integer (ja) ? (int)json_integer_value (ja) : (t ? t->attempt : 1);
    const char *result = "accepted";
    if (!t) {
        add_kill (kill, id, attempt);
        return "unknown";
    }
    enum task_status st;
    const char *sname = json_string_value (json_object_get (u, "status"));
    if (!t->node || strcmp (t->node, n->hostname) != 0 || attempt > t->attempt) {
        add_kill (kill, id, attempt);
        result = "rejected";
        goto out;
    }
    if (attempt < t->attempt) {
        add_kill (kill, id, attempt);
        result = "stale";
        goto out;
    }
    if (!sname || task_status_parse (sname, &st) < 0 || st == TASK_QUEUED
        || st == TASK_ASSIGNING || st == TASK_LOST) {
        result = "rejected";
        goto out;
    }
    json_t *jx = json_object_get (u, "exit_code");
    const char *msg = json_string_value (json_object_get (u, "message"));
    int64_t started = 0, completed = 0;
    const char *s;
    if ((s = json_string_value (json_object_get (u, "started_at"))))
        iso_parse (s, &started);
    if ((s = json_string_value (json_object_get (u, "completed_at"))))
        iso_parse (s, &completed);

    if (task_status_is_final (t->status)) {
        if (t->status == TASK_LOST && !a && task_transition_allowed (TASK_LOST, st, ACTOR_RUNNER)) {
            a = revive (h, t, TASK_RUNNING);
            owned = false;
            /* fall through to apply the reported state */
        } else if (a && a->kill_requested && task_status_is_final (st)) {
            /* the runner confirms the kill: the process is gone, free its resources */
            if (json_is_integer (jx)) {
                t->has_exit_code = true;
                t->exit_code = (int)json_integer_value (jx);
            }
            host_save_task (h, t, false);
            a->kill_requested = false;
            sched_forget (h, a);
            return "accepted";
        } else {
            if (a && a->kill_requested)
                add_kill (kill, id, attempt);
            result = st == t->status ? "duplicate" : "rejected";
            goto out;
        }
    }
    if (!a) {
        result = "rejected";
        goto out;
    }
    /* A VPS reports the SSH port its container publishes with `running`; it may change
     * when the container was restarted (a node reboot). */
    json_t *jp = json_object_get (u, "ssh_port");
    bool port_changed = false;
    if (json_is_integer (jp) && json_integer_value (jp) > 0 && json_integer_value (jp) < 65536
        && strcmp (t->task_type, "vps") == 0 && t->ssh_port != (int)json_integer_value (jp)) {
        t->ssh_port = (int)json_integer_value (jp);
        port_changed = true;
    }
    if (st == t->status) {
        if (port_changed) {
            log_info ("task %" PRIu64 ": SSH port is now %d on node %s", t->id, t->ssh_port,
                      n->hostname);
            host_save_task (h, t, false);
        }
        result = "duplicate";
        goto out;
    }
    if (!task_transition_allowed (t->status, st, ACTOR_RUNNER)) {
        result = "rejected";
        goto out;
    }
    enum task_status from = t->status;
    t->status = st;
    if (json_is_integer (jx)) {
        t->has_exit_code = true;
        t->exit_code = (int)json_integer_value (jx);
    }
    if (msg || task_status_is_final (st))
        task_set_str (&t->error_message, msg);
    if (started && !t->started_at)
        t->started_at = started;
    if (st == TASK_RUNNING && !t->started_at)
        t->started_at = now_ms ();
    if (task_status_is_final (st))
        t->completed_at = completed ? completed : now_ms ();
    t->suspicion = 0;
    a->delivered = true;
    a->state_since = now_ms ();
    log_debug ("task %" PRIu64 ": %s -> %s on node %s", t->id, task_status_name (from),
               task_status_name (st), n->hostname);
    if (task_status_is_final (st)) {
        host_save_task (h, t, false);
        sched_forget (h, a);
    } else {
        host_save_task (h, t, false);
    }
    return "accepted";
out:
    if (owned)
        task_destroy (t);
    return result;
}

void api_update (struct host *h, struct http_req *req)
{
    json_t *body = api_body_object (req);
    json_t *kill = NULL, *results = NULL;
    if (!body)
        return;
    json_t *list = json_object_get (body, "updates");
    json_t *single = NULL;
    if (!list) {
        single = json_array ();
        json_array_append (single, body);
        list = single;
    } else if (!json_is_array (list)) {
        http_reply_error (req, 422, "Field 'updates' must be an array");
        goto out;
    }
    size_t i;
    json_t *u;
    json_array_foreach (list, i, u)
    {
        if (!json_is_object (u)) {
            http_reply_error (req, 422, "updates[%zu] must be an object", i);
            goto out;
        }
        if (api_check_fields (req, u, update_fields, false) < 0)
            goto out;
    }
    const char *hostname = json_string_value (json_object_get (body, "node"));
    const char *node_id = json_string_value (json_object_get (body, "node_id"));
    if (!hostname && json_array_size (list) > 0) {
        hostname = json_string_value (json_object_get (json_array_get (list, 0), "node"));
        node_id = json_string_value (json_object_get (json_array_get (list, 0), "node_id"));
    }
    if (!hostname) {
        http_reply_error (req, 422, "Field 'node' (the runner's hostname) is required");
        goto out;
    }
    struct node *n = runner_node (h, req, hostname, node_id);
    if (!n)
        goto out;
    node_seen (h, n);
    /* ?ack=N: a runner that takes commands in this reply (and acknowledges like a poll) */
    const char *ack = http_query (req, "ack");
    if (ack)
        node_cmd_ack (h, n, strtoull (ack, NULL, 10));
    kill = json_array ();
    results = json_array ();
    json_array_foreach (list, i, u)
    {
        const char *r = apply_update (h, n, u, kill);
        json_t *jid = json_object_get (u, "task_id");
        char idbuf[24] = "";
        if (json_is_integer (jid))
            snprintf (idbuf, sizeof idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value (jid));
        else if (json_is_string (jid))
            snprintf (idbuf, sizeof idbuf, "%s", json_string_value (jid));
        json_array_append_new (results, json_pack ("{s:s,s:s}", "task_id", idbuf, "result", r));
    }
    const char *msg = "Task status updated successfully.";
    if (single) {
        const char *r = json_string_value (json_object_get (json_array_get (results, 0), "result"));
        if (r && strcmp (r, "unknown") == 0)
            msg = "Task ID not recognized";
        else if (r && strcmp (r, "accepted") != 0 && strcmp (r, "duplicate") != 0)
            msg = "Task already in a final state";
    }
    json_t *reply = json_pack ("{s:s,s:O,s:O}", "message", msg, "results", results, "kill", kill);
    if (ack) {
        json_decref (req->cmds_reply);
        req->cmds_node = n;
        req->cmds_reply = json_incref (reply);
    }
    http_reply_json (req, 200, reply);
    /* Nothing written in this iteration: the reply goes out now, and every queued command
     * is committed already. Otherwise it waits for the commit and api_attach_commands. */
    if (ack && !h->in_txn)
        attach_commands (req);
out:
    json_decref (single);
    json_decref (kill);
    json_decref (results);
    json_decref (body);
}

/* ---- health: a 60-sample, one-per-second history (0.3 keys) ---- */

static json_t *num (double v)
{
    return isnan (v) ? json_null () : json_real (v);
}

void health_sample (struct host *h)
{
    char buf[32];
    json_t *nodes = json_array ();
    int total = 0, online = 0, cores = 0;
    int64_t memt = 0, memu = 0;
    double cpuw = 0, tavg = 0, tmax = 0;
    for (struct node *n = h->nodes; n; n = n->next) {
        total++;
        online += n->online;
        cores += n->total_cores;
        memt += n->memory_total;
        if (n->memory_used_bytes > 0)
            memu += n->memory_used_bytes;
        if (!isnan (n->cpu_percent))
            cpuw += n->cpu_percent * n->total_cores;
        if (!isnan (n->temp_avg) && n->temp_avg > tavg)
            tavg = n->temp_avg;
        if (!isnan (n->temp_max) && n->temp_max > tmax)
            tmax = n->temp_max;
        json_t *o = json_object ();
        json_object_set_new (o, "hostname", json_string (n->hostname));
        json_object_set_new (o, "status", json_string (n->online ? NODE_ONLINE : NODE_OFFLINE));
        json_object_set_new (o, "last_heartbeat", json_string (iso_time (n->last_seen, buf)));
        json_object_set_new (o, "cpu_percent", num (n->cpu_percent));
        json_object_set_new (o, "memory_percent", num (n->memory_percent));
        json_object_set_new (o, "memory_used_bytes", n->memory_used_bytes >= 0
                                                         ? json_integer (n->memory_used_bytes)
                                                         : json_null ());
        json_object_set_new (o, "memory_total_bytes", json_integer (n->memory_total));
        json_object_set_new (o, "total_cores", json_integer (n->total_cores));
        json_object_set_new (o, "numa_topology", n->numa ? json_incref (n->numa) : json_null ());
        json_object_set_new (o, "current_avg_temp", num (n->temp_avg));
        json_object_set_new (o, "current_max_temp", num (n->temp_max));
        json_object_set_new (o, "gpu_info", json_incref (n->gpus));
        json_array_append_new (nodes, o);
    }
    json_t *agg = json_object ();
    json_object_set_new (agg, "totalNodes", json_integer (total));
    json_object_set_new (agg, "onlineNodes", json_integer (online));
    json_object_set_new (agg, "totalCores", json_integer (cores));
    json_object_set_new (agg, "totalMemBytes", json_integer (memt));
    json_object_set_new (agg, "usedMemBytes", json_integer (memu));
    json_object_set_new (agg, "avgCpuPercent", json_real (cpuw / (cores > 1 ? cores : 1)));
    json_object_set_new (agg, "avgMemPercent",
                         json_real ((double)memu / (double)(memt > 1 ? memt : 1) * 100.0));
    json_object_set_new (agg, "maxAvgCpuTemp", json_real (tavg));
    json_object_set_new (agg, "maxMaxCpuTemp", json_real (tmax));
    json_object_set_new (agg, "lastUpdated", json_string (iso_time (now_ms (), buf)));
    struct health_ring *r = &h->health;
    int slot = (r->head + r->count) % 60;
    if (r->count == 60) {
        json_decref (r->samples[r->head]);
        slot = r->head;
        r->head = (r->head + 1) % 60;
    } else
        r->count++;
    r->samples[slot] = json_pack ("{s:o,s:o}", "nodes", nodes, "aggregate", agg);
}

void health_free (struct host *h)
{
    for (int i = 0; i < 60; i++) {
        json_decref (h->health.samples[i]);
        h->health.samples[i] = NULL;
    }
    h->health.count = h->health.head = 0;
}

void api_health (struct host *h, struct http_req *req)
{
    const char *host = http_query (req, "hostname");
    if (host && !node_find (h, host)) {
        char esc[300];
        return http_reply_error (req, 404, "Node '%s' not found",
                                 log_escape (host, esc, sizeof esc));
    }
    json_t *nodes = json_array (), *aggs = json_array ();
    struct health_ring *r = &h->health;
    for (int i = 0; i < r->count; i++) {
        json_t *s = r->samples[(r->head + i) % 60];
        json_t *ns = json_object_get (s, "nodes");
        if (host) {
            json_t *filtered = json_array ();
            size_t k;
            json_t *v;
            json_array_foreach (ns, k, v)
            {
                if (strcmp (json_string_value (json_object_get (v, "hostname")), host) == 0)
                    json_array_append (filtered, v);
            }
            json_array_append_new (nodes, filtered);
        } else
            json_array_append (nodes, ns);
        json_array_append (aggs, json_object_get (s, "aggregate"));
    }
    http_reply_json (req, 200, json_pack ("{s:o,s:o}", "nodes", nodes, "aggregate", aggs));
}
