/* sched.c - the queue, placement and the resource accounting rule.
 *
 * One rule everywhere: a task holds its cores, memory and GPUs on its node from assignment
 * until it is final (assigning, pending, running and paused all hold; a killed task holds
 * until its runner confirms the process is gone).
 *
 * Queue order is submission order. A later task may start ahead of an earlier waiting one
 * only if that cannot delay it: each waiting task reserves, on the node where it will run
 * (its target, or the online node with the most free capacity that can ever hold it), the
 * free resources it still lacks, and later tasks may only use what remains beyond those
 * reservations. Without runtime estimates this is the no-delay form of backfill.
 *
 * A batch may be throttled (max_running, from `submit --sweep --max-running N`): at most N of
 * its tasks hold resources at once. A queued task of a saturated batch is passed over without
 * reserving anything, so it never holds up the tasks behind it. "Holding" is the accounting
 * rule above, so a killed task counts until its runner confirms that the process is gone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "host/host.h"

struct atask *active_find (struct host *h, uint64_t id)
{
    return idmap_get (&h->active, id);
}

static uint64_t gpu_mask (const struct task *t)
{
    uint64_t m = 0;
    json_t *a = json_loads (t->gpus_json ? t->gpus_json : "[]", 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v)
    {
        json_int_t g = json_integer_value (v);
        if (g >= 0 && g < HOST_MAX_GPUS)
            m |= 1ULL << g;
    }
    json_decref (a);
    return m;
}

static bool needs_nothing (const struct task *t)
{
    return t->cores == 0 && t->memory_bytes == 0 && strcmp (t->gpus_json, "[]") == 0;
}

/* A throttled batch with tasks in the queue or holding resources. */
struct batch_limit {
    int max_running;
    int holding;   /* tasks of the batch holding resources */
    int queued;    /* tasks of the batch in the queue */
};

static bool throttled (const struct task *t)
{
    return t->batch_id != 0 && t->max_running > 0;
}

static struct batch_limit *batch_find (struct host *h, uint64_t batch)
{
    return h->batches.cap ? idmap_get (&h->batches, batch) : NULL;
}

/* Adds DHOLD and DQUEUED to T's batch counts, creating the entry on first use and freeing
 * it when nothing of the batch is queued or holding any more. */
static void batch_count (struct host *h, const struct task *t, int dhold, int dqueued)
{
    if (!throttled (t))
        return;
    struct batch_limit *b = batch_find (h, t->batch_id);
    if (!b) {
        if (dhold < 0 || dqueued < 0)
            return; /* NEVER: nothing was counted for this batch */
        if (!h->batches.cap)
            idmap_init (&h->batches);
        b = xcalloc (1, sizeof *b);
        idmap_put (&h->batches, t->batch_id, b);
    }
    b->max_running = t->max_running;
    b->holding += dhold;
    b->queued += dqueued;
    if (b->holding <= 0 && b->queued <= 0) {
        idmap_del (&h->batches, t->batch_id);
        free (b);
        if (h->batches.count == 0)
            idmap_free (&h->batches);
    }
}

/* Whether T's batch already has its maximum of tasks holding resources. */
static bool batch_full (struct host *h, const struct task *t)
{
    if (!throttled (t))
        return false;
    struct batch_limit *b = batch_find (h, t->batch_id);
    return b && b->holding >= b->max_running;
}

int sched_batch_holding (struct host *h, uint64_t batch)
{
    struct batch_limit *b = batch_find (h, batch);
    return b ? b->holding : 0;
}

void sched_free (struct host *h)
{
    size_t pos = 0;
    struct batch_limit *b;
    while ((b = idmap_next (&h->batches, &pos, NULL)))
        free (b);
    idmap_free (&h->batches);
}

static void queue_unlink (struct host *h, struct atask *a)
{
    if (a->qprev)
        a->qprev->qnext = a->qnext;
    else if (h->queue_head == a)
        h->queue_head = a->qnext;
    if (a->qnext)
        a->qnext->qprev = a->qprev;
    else if (h->queue_tail == a)
        h->queue_tail = a->qprev;
    a->qprev = a->qnext = NULL;
    if (needs_nothing (a->task))
        h->queued_zero_need--;
    batch_count (h, a->task, 0, -1);
}

static void queue_append (struct host *h, struct atask *a)
{
    a->qnext = NULL;
    a->qprev = h->queue_tail;
    if (h->queue_tail)
        h->queue_tail->qnext = a;
    else
        h->queue_head = a;
    h->queue_tail = a;
    if (needs_nothing (a->task))
        h->queued_zero_need++;
    batch_count (h, a->task, 0, 1);
}

/* Requeued tasks keep their place by id (they were submitted earlier). */
static void queue_insert_sorted (struct host *h, struct atask *a)
{
    struct atask *p = h->queue_tail;
    while (p && p->task->id > a->task->id)
        p = p->qprev;
    if (!p) {
        a->qprev = NULL;
        a->qnext = h->queue_head;
        if (h->queue_head)
            h->queue_head->qprev = a;
        else
            h->queue_tail = a;
        h->queue_head = a;
    } else {
        a->qprev = p;
        a->qnext = p->qnext;
        if (p->qnext)
            p->qnext->qprev = a;
        else
            h->queue_tail = a;
        p->qnext = a;
    }
    if (needs_nothing (a->task))
        h->queued_zero_need++;
    batch_count (h, a->task, 0, 1);
}

void sched_enqueue (struct host *h, struct task *t)
{
    struct atask *a = xcalloc (1, sizeof *a);
    a->task = t;
    a->state_since = now_ms ();
    idmap_put (&h->active, t->id, a);
    queue_append (h, a);
    h->sched_dirty = true;
}

void sched_hold (struct host *h, struct atask *a)
{
    struct node *n = a->task->node ? node_find (h, a->task->node) : NULL;
    if (!n || a->holds)
        return;
    n->cores_used += a->task->cores;
    n->memory_used += a->task->memory_bytes;
    n->gpus_used |= gpu_mask (a->task);
    n->ntasks++;
    a->holds = true;
    batch_count (h, a->task, 1, 0);
}

void sched_release (struct host *h, struct atask *a)
{
    if (!a->holds)
        return;
    struct node *n = a->task->node ? node_find (h, a->task->node) : NULL;
    a->holds = false;
    batch_count (h, a->task, -1, 0);
    h->sched_dirty = true; /* freed resources or a throttle slot */
    if (!n)
        return;
    n->cores_used -= a->task->cores;
    n->memory_used -= a->task->memory_bytes;
    n->gpus_used &= ~gpu_mask (a->task);
    n->ntasks--;
}

void sched_forget (struct host *h, struct atask *a)
{
    sched_release (h, a);
    if (a->task->status == TASK_QUEUED || a->qprev || a->qnext || h->queue_head == a)
        if (a->qprev || a->qnext || h->queue_head == a)
            queue_unlink (h, a);
    idmap_del (&h->active, a->task->id);
    task_destroy (a->task);
    free (a);
}

void sched_send_run (struct host *h, struct atask *a)
{
    struct node *n = node_find (h, a->task->node);
    if (!n)
        return;
    json_t *extra = json_pack ("{s:o}", "task", task_info_json (h, a->task));
    node_cmd_push (h, n, "run", a->task->id, extra);
}

static void log_transition (const struct task *t, enum task_status from)
{
    log_info ("task %llu: %s -> %s%s%s", (unsigned long long)t->id, task_status_name (from),
              task_status_name (t->status), t->node ? " on node " : "", t->node ? t->node : "");
}

void sched_finish (struct host *h, struct atask *a, enum task_status st, const char *msg)
{
    struct task *t = a->task;
    enum task_status from = t->status;
    t->status = st;
    if (msg)
        task_set_str (&t->error_message, msg);
    if (!t->completed_at)
        t->completed_at = now_ms ();
    if (a->qprev || a->qnext || h->queue_head == a)
        queue_unlink (h, a);
    log_transition (t, from);
    host_save_task (h, t, false);
    if (a->kill_requested && a->holds)
        return; /* resources stay held until the runner confirms */
    sched_forget (h, a);
}

static bool fits (const struct node *n, const struct task *t, uint64_t gmask)
{
    if (t->cores > n->sched_cores)
        return false;
    if (t->memory_bytes > 0 && t->memory_bytes > n->sched_mem)
        return false;
    if (gmask & ~n->sched_gpus)
        return false;
    return true;
}

static bool could_ever_fit (const struct node *n, const struct task *t)
{
    if (t->cores > n->total_cores)
        return false;
    if (t->memory_bytes > 0 && n->memory_total > 0 && t->memory_bytes > n->memory_total)
        return false;
    return true;
}

static void reserve (struct node *n, const struct task *t, uint64_t gmask)
{
    n->sched_cores -= t->cores < n->sched_cores ? t->cores : n->sched_cores;
    if (t->memory_bytes > 0)
        n->sched_mem -= t->memory_bytes < n->sched_mem ? t->memory_bytes : n->sched_mem;
    n->sched_gpus &= ~gmask;
}

static void assign (struct host *h, struct atask *a, struct node *n)
{
    struct task *t = a->task;
    enum task_status from = t->status;
    queue_unlink (h, a);
    task_set_str (&t->node, n->hostname);
    t->status = TASK_ASSIGNING;
    t->suspicion = 0;
    a->delivered = false;
    a->state_since = now_ms ();
    sched_hold (h, a);
    log_transition (t, from);
    host_save_task (h, t, false);
    sched_send_run (h, a);
}

void sched_pass (struct host *h)
{
    h->sched_dirty = false;
    int free_nodes = 0;
    for (struct node *n = h->nodes; n; n = n->next) {
        if (!n->online) {
            n->sched_cores = 0;
            n->sched_mem = 0;
            n->sched_gpus = 0;
            continue;
        }
        n->sched_cores = n->total_cores - n->cores_used;
        n->sched_mem = n->memory_total > 0 ? n->memory_total - n->memory_used : INT64_MAX / 2;
        int ng = node_gpu_count (n);
        uint64_t all = ng >= 64 ? ~0ULL : ((1ULL << ng) - 1);
        n->sched_gpus = all & ~n->gpus_used;
        if (n->sched_cores > 0)
            free_nodes++;
    }
    struct atask *a = h->queue_head;
    while (a) {
        struct atask *next = a->qnext;
        struct task *t = a->task;
        if (free_nodes == 0 && h->queued_zero_need == 0)
            break; /* nothing left that any waiting task could use */
        if (batch_full (h, t)) {
            a = next; /* throttled: it neither runs nor reserves */
            continue;
        }
        uint64_t gmask = gpu_mask (t);
        struct node *chosen = NULL, *reserve_on = NULL;
        if (t->target) {
            struct node *n = node_find (h, t->node ? t->node : "");
            if (!n) {
                char host[256];
                snprintf (host, sizeof host, "%s", t->target);
                char *colon = strchr (host, ':');
                if (colon)
                    *colon = '\0';
                n = node_find (h, host);
            }
            if (n && n->online) {
                if (fits (n, t, gmask))
                    chosen = n;
                else
                    reserve_on = n;
            }
        } else {
            /* best fit, as 0.3: the online node with the fewest free cores that fits */
            for (struct node *n = h->nodes; n; n = n->next) {
                if (!n->online || !fits (n, t, gmask))
                    continue;
                if (!chosen || n->sched_cores < chosen->sched_cores)
                    chosen = n;
            }
            if (!chosen)
                for (struct node *n = h->nodes; n; n = n->next)
                    if (n->online && could_ever_fit (n, t)
                        && (!reserve_on || n->sched_cores > reserve_on->sched_cores))
                        reserve_on = n;
        }
        if (chosen) {
            int before = chosen->sched_cores;
            chosen->sched_cores -= t->cores;
            if (t->memory_bytes > 0)
                chosen->sched_mem -= t->memory_bytes;
            chosen->sched_gpus &= ~gmask;
            if (before > 0 && chosen->sched_cores <= 0)
                free_nodes--;
            assign (h, a, chosen);
        } else if (reserve_on) {
            int before = reserve_on->sched_cores;
            reserve (reserve_on, t, gmask);
            if (before > 0 && reserve_on->sched_cores <= 0)
                free_nodes--;
        }
        a = next;
    }
}

void sched_node_lost (struct host *h, struct node *n, const char *why)
{
    size_t pos = 0;
    struct atask *a;
    struct atask **victims = NULL;
    size_t nv = 0;
    while ((a = idmap_next (&h->active, &pos, NULL))) {
        if (!a->task->node || strcmp (a->task->node, n->hostname) != 0 || !a->holds)
            continue;
        victims = xreallocarray (victims, nv + 1, sizeof *victims);
        victims[nv++] = a;
    }
    for (size_t i = 0; i < nv; i++) {
        a = victims[i];
        struct task *t = a->task;
        if (a->kill_requested) {
            /* the user already killed it: nothing to requeue, stop waiting for the runner */
            a->kill_requested = false;
            sched_forget (h, a);
            continue;
        }
        /* cancel a run that was never sent */
        node_cmd_cancel_run (n, t->id);
        if (t->retries_left > 0) {
            enum task_status from = t->status;
            sched_release (h, a);
            t->retries_left--;
            t->attempt++;
            t->ssh_port = 0;   /* a VPS gets a new container, and port, elsewhere */
            t->status = TASK_QUEUED;
            char msg[512];
            snprintf (msg, sizeof msg, "%s; requeued as attempt %d", why, t->attempt);
            task_set_str (&t->error_message, msg);
            task_set_str (&t->node, NULL);
            t->started_at = 0;
            t->has_exit_code = false;
            a->delivered = false;
            log_transition (t, from);
            host_save_task (h, t, false);
            queue_insert_sorted (h, a);
            h->sched_dirty = true;
        } else {
            t->has_exit_code = true;
            t->exit_code = -1;
            sched_finish (h, a, TASK_LOST, why);
        }
    }
    free (victims);
}

void sched_restore (struct host *h, struct task *t)
{
    struct atask *a = xcalloc (1, sizeof *a);
    a->task = t;
    a->state_since = now_ms ();
    if (t->status == TASK_LOST) {
        /* recently lost: kept only so that its node coming back can revive it */
        task_destroy (t);
        free (a);
        return;
    }
    idmap_put (&h->active, t->id, a);
    if (t->status == TASK_QUEUED) {
        queue_append (h, a);
        h->sched_dirty = true;
        return;
    }
    sched_hold (h, a);
    a->delivered = t->status != TASK_ASSIGNING;
    if (t->status == TASK_ASSIGNING)
        sched_send_run (h, a); /* the runner ignores a run it already has */
}
