/* store_bench.c - times the SQLite store at 1,000,000 tasks: bulk insert, keyset pages, filters.
 *
 * Build and run (not part of `make check`; takes about a minute, most of it the inserts):
 *   make build/libhost.a build/libcommon.a
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -Isrc bench/store_bench.c build/libhost.a \
 *      build/libcommon.a -lsqlite3 -o build/store_bench && build/store_bench [DIR [ROWS]]
 * or, without the libraries:
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -Isrc bench/store_bench.c src/host/store_sqlite.c \
 *      src/host/task.c src/common/{err,xalloc,log}.c -lsqlite3 -o build/store_bench
 * DIR (default: a new directory under /tmp, removed at the end) keeps the database when
 * given, for EXPLAIN QUERY PLAN with the sqlite3 shell. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "host/store.h"

#define BATCH 1000          /* tasks per transaction, as a busy host loop iteration */
#define NODES 50
#define REPEAT 200          /* runs of each query; the median is reported */

static const uint64_t ID_BASE = 7530375621982027776ULL; /* a real snowflake */

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Task i of n: ids 4096 apart (a snowflake's sequence bits); batches of 10; 5% vps; the last
 * 2000 are active (queued/running), 0.1% lost, 1% failed, the rest completed. */
static struct task *make_task (long i, long n)
{
    static char node[NODES][16];
    struct task *t = task_create ();
    t->id = ID_BASE + (uint64_t)i * 4096;
    t->batch_id = ID_BASE + (uint64_t)(i - i % 10) * 4096;
    if (i % 20 == 0)
        strcpy (t->task_type, "vps");
    t->command = xstrdup ("python3");
    task_set_str (&t->arguments_json, "[\"train.py\",\"--epochs\",\"10\"]");
    task_set_str (&t->env_json, "{\"CUDA_VISIBLE_DEVICES\":\"0\"}");
    t->cores = 4;
    t->memory_bytes = 8LL << 30;
    t->submitted_at = 1700000000000 + i * 10;
    if (!node[0][0])
        for (int k = 0; k < NODES; k++)
            snprintf (node[k], sizeof node[k], "node%02d", k);
    if (i >= n - 2000) {
        t->status = i % 2 ? TASK_RUNNING : TASK_QUEUED;
    } else if (i % 1000 == 7) {
        t->status = TASK_LOST;
    } else if (i % 100 == 3) {
        t->status = TASK_FAILED;
    } else {
        t->status = TASK_COMPLETED;
    }
    if (t->status != TASK_QUEUED) {
        t->node = xstrdup (node[i % NODES]);
        t->started_at = t->submitted_at + 5;
    }
    if (task_status_is_final (t->status)) {
        t->completed_at = t->submitted_at + 60000;
        t->has_exit_code = true;
        t->exit_code = t->status == TASK_COMPLETED ? 0 : 1;
    }
    t->stdout_path = xasprintf ("/shared/task_outputs/%" PRIu64 ".out", t->id);
    t->stderr_path = xasprintf ("/shared/task_errors/%" PRIu64 ".err", t->id);
    return t;
}

/* Runs the listing REPEAT times; prints the median and the row count. */
static void time_list (struct store *st, const char *name, const struct task_filter *f)
{
    double t[REPEAT];
    int rows = 0;
    for (int r = 0; r < REPEAT; r++) {
        struct task **out;
        int n;
        struct err e;
        double t0 = now_s ();
        if (store_task_list (st, f, &out, &n, &e) < 0) {
            fprintf (stderr, "%s: %s\n", name, e.text);
            exit (1);
        }
        t[r] = now_s () - t0;
        rows = n;
        for (int i = 0; i < n; i++)
            task_destroy (out[i]);
        free (out);
    }
    qsort (t, REPEAT, sizeof t[0], cmp_double);
    printf ("  %-52s %4d rows  median %8.1f us  max %8.1f us\n", name, rows, t[REPEAT / 2] * 1e6,
            t[REPEAT - 1] * 1e6);
}

static int count_cb (struct task *t, void *arg)
{
    (*(int *)arg)++;
    task_destroy (t);
    return 0;
}

int main (int argc, char **argv)
{
    char dir[256], path[300];
    long n = argc > 2 ? atol (argv[2]) : 1000000;
    bool keep = argc > 1;
    struct err e;
    if (keep)
        snprintf (dir, sizeof dir, "%s", argv[1]);
    else {
        snprintf (dir, sizeof dir, "/tmp/store_bench.XXXXXX");
        if (!mkdtemp (dir)) {
            perror ("mkdtemp");
            return 1;
        }
    }
    snprintf (path, sizeof path, "%s/bench.db", dir);
    struct store *st = store_open (path, &e);
    if (!st) {
        fprintf (stderr, "%s\n", e.text);
        return 1;
    }
    if (store_task_max_id (st) == 0) {
        double t0 = now_s (), worst = 0;
        for (long i = 0; i < n; i += BATCH) {
            double b0 = now_s ();
            if (store_begin (st, &e) < 0)
                goto fail;
            for (long j = i; j < i + BATCH && j < n; j++) {
                struct task *t = make_task (j, n);
                int rc = store_task_insert (st, t, &e);
                task_destroy (t);
                if (rc < 0)
                    goto fail;
            }
            if (store_commit (st, &e) < 0)
                goto fail;
            if (now_s () - b0 > worst)
                worst = now_s () - b0;
        }
        double el = now_s () - t0;
        printf ("insert %ld tasks, %d per transaction (synchronous=FULL): %.1f s, %.0f rows/s,"
                " %.2f ms per commit batch (worst %.1f ms)\n",
                n, BATCH, el, (double)n / el, el / ((double)n / BATCH) * 1e3, worst * 1e3);
    }
    uint64_t max = store_task_max_id (st);
    uint64_t mid = ID_BASE + (uint64_t)(n / 2) * 4096;
    printf ("queries over %ld tasks (median of %d runs):\n", n, REPEAT);

    struct task_filter f = { .limit = 100 };
    time_list (st, "newest page, no filter", &f);
    f.before_id = mid;
    time_list (st, "keyset page (before = middle id)", &f);
    f.before_id = ID_BASE + 4096 * 50;
    time_list (st, "keyset page (before = near the oldest)", &f);
    f = (struct task_filter){ .limit = 100, .task_type = "command" };
    time_list (st, "type=command page (GET /tasks default)", &f);
    f.before_id = mid;
    time_list (st, "type=command keyset page (middle)", &f);
    f = (struct task_filter){ .limit = 100, .task_type = "vps", .before_id = mid };
    time_list (st, "type=vps keyset page (middle)", &f);
    f = (struct task_filter){ .limit = 100, .status = "running", .task_type = "command" };
    time_list (st, "status=running, type=command", &f);
    f = (struct task_filter){ .limit = 100, .status = "failed" };
    time_list (st, "status=failed page", &f);
    f.before_id = mid;
    time_list (st, "status=failed keyset page (middle)", &f);
    f = (struct task_filter){ .limit = 100, .status = "completed,failed", .before_id = mid };
    time_list (st, "status=completed,failed keyset page (middle)", &f);
    f = (struct task_filter){ .limit = 100, .status = "queued,running,paused" };
    time_list (st, "status=queued,running,paused page", &f);
    f = (struct task_filter){ .limit = 100, .node = "node07", .before_id = mid };
    time_list (st, "node=node07 keyset page (middle)", &f);
    f = (struct task_filter){ .limit = 100, .node = "node07", .status = "running" };
    time_list (st, "node=node07, status=running", &f);
    f = (struct task_filter){ .limit = 100, .batch_id = mid };
    time_list (st, "batch lookup (10 tasks)", &f);
    f = (struct task_filter){ .limit = 100, .offset = 1000 };
    time_list (st, "offset 1000 page (offset costs O(offset))", &f);
    f = (struct task_filter){ .limit = 100, .offset = n / 2 };
    time_list (st, "offset n/2 page (offset costs O(offset))", &f);

    double t0 = now_s ();
    int count = 0;
    if (store_task_load_active (st, 3600 * 1000, count_cb, &count, &e) < 0)
        goto fail;
    printf ("  %-52s %4d rows  %8.1f ms\n", "load_active (startup)", count, (now_s () - t0) * 1e3);
    t0 = now_s ();
    for (int i = 0; i < 10000; i++) {
        struct task *t;
        store_task_get (st, max - (uint64_t)(i * 97 % (n / 2)) * 4096, &t, &e);
        task_destroy (t);
    }
    printf ("  %-52s %8.1f us each\n", "get by id (10000 random)", (now_s () - t0) / 10000 * 1e6);
    store_close (st);
    if (!keep) {
        char cmd[400];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system (cmd) != 0)
            fprintf (stderr, "could not remove %s\n", dir);
    }
    return 0;
fail:
    fprintf (stderr, "%s\n", e.text);
    store_close (st);
    return 1;
}
