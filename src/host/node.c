/* node.c - node registry, runner command queues and heartbeat timeouts */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "host/host.h"
#include "host/http.h"

struct node *node_find (struct host *h, const char *hostname)
{
    for (struct node *n = h->nodes; n; n = n->next)
        if (strcmp (n->hostname, hostname) == 0)
            return n;
    return NULL;
}

struct node *node_add (struct host *h, const char *hostname)
{
    struct node *n = xcalloc (1, sizeof *n);
    n->hostname = xstrdup (hostname);
    n->node_id = xstrdup ("");
    n->url = xstrdup ("");
    n->gpus = json_array ();
    n->cpu_percent = n->memory_percent = n->temp_avg = n->temp_max = NAN;
    n->memory_used_bytes = -1;
    /* command sequence numbers must grow across host restarts: runners acknowledge by seq */
    n->next_seq = (uint64_t)h->start_ms * 1000;
    struct node **p = &h->nodes;
    while (*p)
        p = &(*p)->next;
    *p = n;
    return n;
}

int node_gpu_count (const struct node *n)
{
    return n->gpus ? (int)json_array_size (n->gpus) : 0;
}

bool node_has_numa (const struct node *n, int id)
{
    char key[16];
    snprintf (key, sizeof key, "%d", id);
    return n->numa && json_object_get (n->numa, key) != NULL;
}

int node_numa_core_count (const struct node *n, int id)
{
    char key[16];
    snprintf (key, sizeof key, "%d", id);
    json_t *e = n->numa ? json_object_get (n->numa, key) : NULL;
    return e ? (int)json_array_size (json_object_get (e, "cores")) : 0;
}

void node_cmd_push (struct host *h, struct node *n, const char *op, uint64_t task_id,
                    json_t *extra)
{
    struct node_cmd *c = xcalloc (1, sizeof *c);
    c->seq = ++n->next_seq;
    c->task_id = task_id;
    snprintf (c->op, sizeof c->op, "%s", op);
    c->body = extra ? extra : json_object ();
    json_object_set_new (c->body, "seq", json_integer ((json_int_t)c->seq));
    json_object_set_new (c->body, "op", json_string (op));
    if (!json_object_get (c->body, "task_id"))
        json_object_set_new (c->body, "task_id", json_integer ((json_int_t)task_id));
    if (n->cmds_tail)
        n->cmds_tail->next = c;
    else
        n->cmds = c;
    n->cmds_tail = c;
    n->wake = true;
}

static void cmd_free (struct node_cmd *c)
{
    json_decref (c->body);
    free (c);
}

void node_cmd_ack (struct host *h, struct node *n, uint64_t ack)
{
    while (n->cmds && n->cmds->seq <= ack) {
        struct node_cmd *c = n->cmds;
        n->cmds = c->next;
        if (strcmp (c->op, "run") == 0) {
            struct atask *a = active_find (h, c->task_id);
            if (a)
                a->delivered = true;
        }
        cmd_free (c);
    }
    if (!n->cmds)
        n->cmds_tail = NULL;
}

bool node_cmd_cancel_run (struct node *n, uint64_t task_id)
{
    struct node_cmd **p = &n->cmds, *prev = NULL;
    while (*p) {
        struct node_cmd *c = *p;
        if (c->task_id == task_id && strcmp (c->op, "run") == 0 && !c->sent) {
            *p = c->next;
            if (n->cmds_tail == c)
                n->cmds_tail = prev;
            cmd_free (c);
            return true;
        }
        prev = c;
        p = &c->next;
    }
    return false;
}

void node_check_timeouts (struct host *h)
{
    int64_t now = now_ms ();
    int64_t limit = (int64_t)h->conf->heartbeat_interval * h->conf->heartbeat_timeout_factor
                    * 1000;
    for (struct node *n = h->nodes; n; n = n->next) {
        if (!n->online || now - n->last_seen <= limit)
            continue;
        n->online = false;
        log_warn ("node %s: no heartbeat for %lld s, marking offline", n->hostname,
                  (long long)((now - n->last_seen) / 1000));
        host_save_node (h, n);
        char why[300];
        snprintf (why, sizeof why, "Node %s went offline (heartbeat timeout).", n->hostname);
        sched_node_lost (h, n, why);
        /* commands for it stay queued: a run for a requeued task was cancelled above */
        h->sched_dirty = true;
    }
}

void node_free_all (struct host *h)
{
    struct node *n = h->nodes;
    while (n) {
        struct node *next = n->next;
        struct node_cmd *c = n->cmds;
        while (c) {
            struct node_cmd *cn = c->next;
            cmd_free (c);
            c = cn;
        }
        free (n->hostname);
        free (n->node_id);
        free (n->url);
        json_decref (n->numa);
        json_decref (n->gpus);
        json_decref (n->running_reported);
        free (n);
        n = next;
    }
    h->nodes = NULL;
}
