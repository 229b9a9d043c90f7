/* vps.c - the host side of VPS tasks that is not plain task handling: answering the SSH
 * proxy's "where is VPS <id>?" (ssh_proxy.c asks from its threads; the loop answers here,
 * with the 0.3 error texts of docs/ssh-proxy.md). */
#include "host/vps.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "host/api.h"

/* Copies the host part of URL ("http://HOST:PORT/..." or "http://[V6]:PORT") into OUT.
 * Returns 0, or -1 when there is none. */
static int url_host (const char *url, char *out, size_t n)
{
    const char *p = url ? strstr (url, "://") : NULL;
    if (!p)
        return -1;
    p += 3;
    size_t len;
    if (*p == '[') {
        p++;
        const char *end = strchr (p, ']');
        if (!end)
            return -1;
        len = (size_t)(end - p);
    } else {
        len = strcspn (p, ":/");
    }
    if (len == 0 || len >= n)
        return -1;
    memcpy (out, p, len);
    out[len] = '\0';
    return 0;
}

void vps_proxy_lookup (void *arg, const char *idtext, struct ssh_proxy_target *out)
{
    struct host *h = arg;
    uint64_t id;
    if (api_parse_id (idtext, &id) < 0) {
        snprintf (out->error, sizeof out->error, "Task %s not found.", idtext);
        return;
    }
    struct atask *a = active_find (h, id);
    struct task *t = a ? a->task : NULL, *owned = NULL;
    struct err e = { 0 };
    if (!t) {
        if (store_task_get (h->store, id, &owned, &e) < 0) {
            log_err ("ssh proxy: store: %s", e.text);
            snprintf (out->error, sizeof out->error, "Internal server error.");
            return;
        }
        t = owned;
    }
    if (!t) {
        snprintf (out->error, sizeof out->error, "Task %" PRIu64 " not found.", id);
        return;
    }
    struct node *n = t->node ? node_find (h, t->node) : NULL;
    if (strcmp (t->task_type, "vps") != 0)
        snprintf (out->error, sizeof out->error, "Task %" PRIu64 " is not a VPS task.", id);
    else if (t->status == TASK_LOST && (!n || !n->online))
        /* lost because its node stopped answering: say that rather than "not active" */
        snprintf (out->error, sizeof out->error, "Assigned node for VPS task %" PRIu64 " is "
                  "not online.", id);
    else if (t->status != TASK_RUNNING && t->status != TASK_PAUSED)
        snprintf (out->error, sizeof out->error, "VPS task %" PRIu64 " is not active (status: "
                  "%s).", id, task_status_name (t->status));
    else if (!t->node)
        snprintf (out->error, sizeof out->error, "VPS task %" PRIu64 " has no assigned node.",
                  id);
    else if (t->ssh_port <= 0)
        snprintf (out->error, sizeof out->error, "VPS task %" PRIu64 " has no SSH port "
                  "assigned.", id);
    else if (!n || !n->online)
        snprintf (out->error, sizeof out->error, "Assigned node for VPS task %" PRIu64 " is "
                  "not online.", id);
    else if (url_host (n->url, out->address, sizeof out->address) < 0)
        snprintf (out->error, sizeof out->error, "Error parsing runner URL for node %s.",
                  n->hostname);
    else {
        snprintf (out->node, sizeof out->node, "%s", n->hostname);
        out->port = t->ssh_port;
    }
    task_destroy (owned);
}
