/* test_sched.c - the host scheduler: submission order, no-delay backfill, targets, the
 * accounting rule, node loss (lost vs requeue) and batch throttles, against a real SQLite store */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/host.h"
#include "tap.h"

static struct host H;
static struct conf C;
static uint64_t next_id = 1000;

static struct node *online_node (const char *name, int cores, int64_t mem)
{
    struct node *n = node_add (&H, name);
    n->total_cores = cores;
    n->memory_total = mem;
    n->online = true;
    return n;
}

/* Submits a task the way api_task.c does: insert, then enqueue. */
static struct task *submit (int cores, int64_t mem, const char *target, int retries)
{
    struct task *t = task_create ();
    t->id = next_id++;
    task_set_str (&t->command, "true");
    task_set_str (&t->container, "NULL");
    t->cores = cores;
    t->memory_bytes = mem;
    t->retries_left = retries;
    t->submitted_at = now_ms ();
    if (target) {
        task_set_str (&t->target, target);
        char host[64];
        snprintf (host, sizeof host, "%s", target);
        char *colon = strchr (host, ':');
        if (colon) {
            *colon = '\0';
            t->numa = atoi (colon + 1);
        }
        task_set_str (&t->node, host);
    }
    host_save_task (&H, t, true);
    sched_enqueue (&H, t);
    return t;
}

/* Submits a task of throttled batch BATCH (at most MAX of it running) targeted at TARGET. */
static struct task *submit_batch (int cores, const char *target, uint64_t batch, int max)
{
    struct task *t = task_create ();
    t->id = next_id++;
    t->batch_id = batch;
    t->max_running = max;
    task_set_str (&t->command, "true");
    task_set_str (&t->container, "NULL");
    t->cores = cores;
    t->submitted_at = now_ms ();
    task_set_str (&t->target, target);
    task_set_str (&t->node, target);
    host_save_task (&H, t, true);
    sched_enqueue (&H, t);
    return t;
}

static const char *st (const struct task *t)
{
    return task_status_name (t->status);
}

static void finish (struct task *t, enum task_status s)
{
    struct atask *a = active_find (&H, t->id);
    sched_finish (&H, a, s, NULL);
}

/* Statuses are read back through the active map (finished tasks are freed). */
static const char *status_of (uint64_t id)
{
    struct atask *a = active_find (&H, id);
    return a ? task_status_name (a->task->status) : "(final)";
}

static void commit (void)
{
    struct err e = { 0 };
    if (H.in_txn) {
        ok (store_commit (H.store, &e) == 0, "commit %s", e.text);
        H.in_txn = false;
    }
}

int main (void)
{
    char dir[] = "/tmp/test_sched.XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char db[128];
    snprintf (db, sizeof db, "%s/host.db", dir);
    log_init ("test_sched", LOG_LEVEL_ERR);
    conf_init_defaults (&C);
    struct err e = { 0 };
    H.conf = &C;
    H.start_ms = now_ms ();
    idmap_init (&H.active);
    H.store = store_open (db, &e);
    ok (H.store != NULL, "store opens: %s", e.text);

    /* ---- one node with 2 cores: order and fit ---- */
    struct node *n1 = online_node ("n1", 2, 8000000000LL);
    struct task *t1 = submit (2, 0, NULL, 0);
    struct task *t2 = submit (1, 0, NULL, 0);
    struct task *t3 = submit (0, 0, NULL, 0);
    sched_pass (&H);
    commit ();
    is_str (st (t1), "assigning", "first task placed");
    is_str (st (t2), "queued", "second waits: the node is full");
    is_str (st (t3), "assigning", "--cores 0 reserves nothing and runs on a full node");
    is_int (n1->cores_used, 2, "cores_used counts the placed task");
    is_str (n1->cmds ? n1->cmds->op : "", "run", "a run command is queued for the runner");

    /* paused keeps its cores */
    t1->status = TASK_PAUSED;
    sched_pass (&H);
    is_str (st (t2), "queued", "a paused task keeps its cores");

    uint64_t id2 = t2->id;
    finish (t1, TASK_COMPLETED);
    is_int (n1->cores_used, 0, "a final task releases its cores");
    ok (H.sched_dirty, "releasing marks the scheduler dirty");
    sched_pass (&H);
    is_str (status_of (id2), "assigning", "the waiting task starts once cores free up");
    finish (t2, TASK_COMPLETED);
    finish (t3, TASK_COMPLETED);

    /* ---- no-delay: a small later task may not take what a big earlier one waits for ---- */
    struct task *r1 = submit (1, 0, NULL, 0);
    sched_pass (&H);
    struct task *big = submit (2, 0, NULL, 0);
    struct task *small = submit (1, 0, NULL, 0);
    uint64_t big_id = big->id, small_id = small->id;
    sched_pass (&H);
    is_str (st (r1), "assigning", "one core in use");
    is_str (status_of (big_id), "queued", "the 2-core task waits for the busy core");
    is_str (status_of (small_id), "queued", "the 1-core task may not jump it (would delay it)");
    finish (r1, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (big_id), "assigning", "the big task starts first");
    is_str (status_of (small_id), "queued", "the small one still waits");
    finish (active_find (&H, big_id)->task, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (small_id), "assigning", "then the small one runs");
    finish (active_find (&H, small_id)->task, TASK_COMPLETED);

    /* ---- backfill that cannot delay: another node has room ---- */
    struct node *n2 = online_node ("n2", 2, 8000000000LL);
    struct task *b1 = submit (2, 0, "n1", 0);
    sched_pass (&H);
    struct task *b2 = submit (2, 0, "n1", 0);
    struct task *b3 = submit (1, 0, NULL, 0);
    uint64_t b2_id = b2->id;
    sched_pass (&H);
    is_str (st (b1), "assigning", "targeted task placed on n1");
    is_str (status_of (b2_id), "queued", "second n1 task waits for n1");
    is_str (st (b3), "assigning", "a later auto-placed task uses n2 (does not delay n1's queue)");
    is_str (b3->node, "n2", "on n2");
    is_int (n2->cores_used, 1, "n2 accounts for it");

    /* memory is accounted too */
    struct task *m1 = submit (0, 7000000000LL, "n2", 0);
    struct task *m2 = submit (0, 2000000000LL, "n2", 0);
    uint64_t m2_id = m2->id;
    sched_pass (&H);
    is_str (st (m1), "assigning", "7 GB fits on n2");
    is_str (status_of (m2_id), "queued", "2 GB more does not (8 GB node)");

    /* ---- node loss: lost without retries, requeued with them ---- */
    struct task *keep = submit (1, 0, "n2", 0);
    (void)keep;
    finish (m1, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (m2_id), "assigning", "memory freed: the 2 GB task starts");
    struct task *rq = submit (0, 0, "n2", 0);
    sched_pass (&H);
    /* an auto-placed task with retries on n2 */
    finish (b1, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (b2_id), "assigning", "n1 frees: the queued n1 task starts");
    uint64_t b3_id = b3->id, rq_id = rq->id;
    b3->retries_left = 1;
    n2->online = false;
    sched_node_lost (&H, n2, "Node n2 went offline");
    is_str (status_of (b3_id), "queued", "a task with retries is requeued");
    struct atask *ab3 = active_find (&H, b3_id);
    is_int (ab3 ? ab3->task->attempt : 0, 2, "as attempt 2");
    ok (ab3 && ab3->task->node == NULL, "with no node");
    is_str (status_of (rq_id), "(final)", "a task without retries is final (lost)");
    is_int (n2->cores_used, 0, "the lost node holds nothing any more");
    struct task *back = NULL;
    ok (store_task_get (H.store, rq_id, &back, &e) == 0 && back != NULL, "lost task stored");
    if (back)
        is_str (task_status_name (back->status), "lost", "stored as lost");
    task_destroy (back);
    sched_pass (&H);
    is_str (status_of (b3_id), "queued", "n1 is full (2-core task): the requeued task waits");
    finish (active_find (&H, b2_id)->task, TASK_COMPLETED);
    sched_pass (&H);
    ab3 = active_find (&H, b3_id);
    is_str (ab3 ? ab3->task->node : "", "n1", "and then runs elsewhere");
    commit ();

    /* ---- kill waits for the runner: resources held until confirmed ---- */
    struct atask *k = active_find (&H, b3_id);
    k->kill_requested = true;
    sched_finish (&H, k, TASK_KILLED, "Killed by user");
    is_int (n1->cores_used, 1, "a killed task keeps its core until the runner confirms");
    k = active_find (&H, b3_id);
    ok (k != NULL, "and stays in memory meanwhile");
    if (k)
        sched_forget (&H, k);
    is_int (n1->cores_used, 0, "confirmation releases it");
    commit ();

    /* ---- a throttled batch (sweep --max-running 2) ---- */
    struct node *n3 = online_node ("n3", 8, 0);
    struct task *sw[5];
    uint64_t swid[5];
    for (int i = 0; i < 5; i++) {
        sw[i] = submit_batch (1, "n3", 777, 2);
        swid[i] = sw[i]->id;
    }
    struct task *other = submit_batch (6, "n3", 0, 0);
    uint64_t other_id = other->id;
    sched_pass (&H);
    is_str (status_of (swid[0]), "assigning", "throttled batch: the first task starts");
    is_str (status_of (swid[1]), "assigning", "and the second");
    is_str (status_of (swid[2]), "queued", "the third waits for the throttle, not for cores");
    is_str (status_of (swid[4]), "queued", "and so do the others");
    is_int (sched_batch_holding (&H, 777), 2, "two of the batch hold resources");
    is_str (status_of (other_id), "assigning",
            "a later unrelated task is not held up: waiting batch tasks reserve nothing");
    is_int (n3->cores_used, 8, "n3: 2 batch cores + 6");
    finish (active_find (&H, other_id)->task, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (swid[2]), "queued", "freed cores do not lift the throttle");
    active_find (&H, swid[0])->task->status = TASK_RUNNING;
    finish (active_find (&H, swid[0])->task, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (swid[2]), "assigning", "a finished batch task lets the next one start");
    is_str (status_of (swid[3]), "queued", "only one");
    is_int (sched_batch_holding (&H, 777), 2, "still two holding");
    /* a killed task counts until its runner confirms (the accounting rule) */
    struct atask *ka = active_find (&H, swid[1]);
    ka->kill_requested = true;
    sched_finish (&H, ka, TASK_KILLED, "Killed by user");
    sched_pass (&H);
    is_str (status_of (swid[3]), "queued", "a killed, unconfirmed task still counts");
    sched_forget (&H, active_find (&H, swid[1]));
    sched_pass (&H);
    is_str (status_of (swid[3]), "assigning", "its confirmation frees the slot");
    /* node loss requeues one: it counts as queued again, not holding */
    active_find (&H, swid[2])->task->retries_left = 1;
    n3->online = false;
    sched_node_lost (&H, n3, "Node n3 went offline");
    is_int (sched_batch_holding (&H, 777), 0, "nothing of the batch holds on a lost node");
    is_str (status_of (swid[2]), "queued", "the task with retries is queued again");
    n3->online = true;
    sched_pass (&H);
    is_int (sched_batch_holding (&H, 777), 2, "back online: two of the batch run again");
    for (int i = 0; i < 5; i++) {
        struct atask *x = active_find (&H, swid[i]);
        if (x)
            sched_finish (&H, x, TASK_KILLED, NULL);
    }
    is_int (sched_batch_holding (&H, 777), 0, "a batch with nothing left holds nothing");
    ok (H.batches.count == 0 && H.batches.cap == 0, "and its bookkeeping is freed");

    /* the throttle after a restart: restored tasks carry it */
    struct task *rr = submit_batch (1, "n3", 888, 1);
    struct task *rq2 = submit_batch (1, "n3", 888, 1);
    uint64_t rr_id = rr->id, rq2_id = rq2->id;
    struct task *rr_copy = task_copy (rr), *rq2_copy = task_copy (rq2);
    sched_forget (&H, active_find (&H, rr_id));
    sched_forget (&H, active_find (&H, rq2_id));
    ok (H.batches.cap == 0, "forgetting both frees the batch entry");
    rr_copy->status = TASK_RUNNING;
    sched_restore (&H, rr_copy);
    sched_restore (&H, rq2_copy);
    is_int (sched_batch_holding (&H, 888), 1, "a restored running task counts");
    sched_pass (&H);
    is_str (status_of (rq2_id), "queued", "so the restored queued one keeps waiting (max 1)");
    finish (active_find (&H, rr_id)->task, TASK_COMPLETED);
    sched_pass (&H);
    is_str (status_of (rq2_id), "assigning", "until the running one ends");
    commit ();
    /* sched_free releases whatever is left (teardown) */
    sched_free (&H);
    ok (H.batches.cap == 0, "sched_free empties the map");

    /* cleanup */
    size_t pos = 0;
    struct atask *a;
    while ((a = idmap_next (&H.active, &pos, NULL))) {
        sched_forget (&H, a);
        pos = 0;
    }
    sched_free (&H);
    node_free_all (&H);
    idmap_free (&H.active);
    store_close (H.store);
    conf_free (&C);
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd) != 0)
        diag ("could not remove %s", dir);
    return done_testing ();
}
