/* load.c - load generator for the host API: submit throughput, makespan, latency, pages, drain.
 *
 * Build (bench/run.sh does this):
 *   cc -O2 -std=gnu11 -D_GNU_SOURCE bench/load.c -lcurl -ljansson -lpthread -o build/hr-load
 *
 * Every subcommand takes --url http://127.0.0.1:PORT and --token API_TOKEN and prints one
 * line of `key=value` pairs on stdout (bench/run.sh parses them); diagnostics go to stderr.
 *
 *   submit   -c CLIENTS -d SECONDS -n MAX     CLIENTS threads, each with its own keep-alive
 *                                             handle, post trivial tasks until SECONDS or MAX
 *   makespan -c CLIENTS -n TASKS [-p PID,...] submit TASKS trivial tasks, wait until none is
 *                                             active; CPU time of the PIDs over that window
 *   latency  -n TASKS -s SPACING_MS -D DIR -H HELPER
 *                                             sequential submits of HELPER DIR; HELPER writes
 *                                             its start time to DIR/<task id>
 *   pages    -n PAGES                         GET /tasks pages (keyset paging) and filters
 *   drain    -d SECONDS                       waits until no task is active
 * Submitted tasks ask for --cores N cores (default 1).
 * Exit status: 0 when the run itself worked (a slow figure is not an error), 1 otherwise. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ACTIVE_FILTER "status=queued,assigning,pending,running,paused"
/* The trivial task; required_cores is --cores (default 1, see bench/README.md). */
static char trivial_task[512];

struct opts {
    const char *url, *token, *dir, *helper, *pids;
    int clients, count, spacing_ms, cores;
    const char *image;        /* Docker image for the tasks (--image); NULL = native */
    const char *task_dir, *task_helper; /* DIR and HELPER as the task sees them (containers) */
    double duration;
};

static struct opts O = {
    .cores = 1, .clients = 8, .count = 1000, .spacing_ms = 20, .duration = 5,
};

/* ---- small helpers -------------------------------------------------------------------- */

static double now_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_real (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms (double ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
                           .tv_nsec = (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6) };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct (const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* ---- HTTP client ---------------------------------------------------------------------- */

struct client {
    CURL *curl;
    struct curl_slist *hdrs;
    char *body;
    size_t len, cap;
    char next_before[32];
};

static size_t on_body (char *p, size_t sz, size_t nm, void *arg)
{
    struct client *c = arg;
    size_t n = sz * nm;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *b = realloc (c->body, cap);
        if (!b)
            return 0;
        c->body = b;
        c->cap = cap;
    }
    memcpy (c->body + c->len, p, n);
    c->len += n;
    c->body[c->len] = '\0';
    return n;
}

static size_t on_header (char *p, size_t sz, size_t nm, void *arg)
{
    struct client *c = arg;
    size_t n = sz * nm;
    static const char name[] = "X-Next-Before:";
    if (n > sizeof name && strncasecmp (p, name, sizeof name - 1) == 0) {
        size_t i = sizeof name - 1, j = 0;
        while (i < n && p[i] == ' ')
            i++;
        while (i < n && p[i] >= '0' && p[i] <= '9' && j + 1 < sizeof c->next_before)
            c->next_before[j++] = p[i++];
        c->next_before[j] = '\0';
    }
    return n;
}

static void client_init (struct client *c)
{
    memset (c, 0, sizeof *c);
    c->curl = curl_easy_init ();
    char auth[512];
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", O.token);
    c->hdrs = curl_slist_append (NULL, auth);
    c->hdrs = curl_slist_append (c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append (c->hdrs, "Expect:");
    curl_easy_setopt (c->curl, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt (c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt (c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt (c->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt (c->curl, CURLOPT_HEADERDATA, c);
    curl_easy_setopt (c->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c->curl, CURLOPT_TIMEOUT, 30L);
}

static void client_free (struct client *c)
{
    curl_easy_cleanup (c->curl);
    curl_slist_free_all (c->hdrs);
    free (c->body);
}

/* One request; body NULL = GET. Returns the HTTP status, or -1 on a transport error. */
static long client_do (struct client *c, const char *path, const char *body)
{
    char url[1024];
    snprintf (url, sizeof url, "%s%s", O.url, path);
    c->len = 0;
    if (c->body)
        c->body[0] = '\0';
    c->next_before[0] = '\0';
    curl_easy_setopt (c->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt (c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt (c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen (body));
    } else
        curl_easy_setopt (c->curl, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl_easy_perform (c->curl);
    if (rc != CURLE_OK) {
        fprintf (stderr, "hr-load: %s: %s\n", path, curl_easy_strerror (rc));
        return -1;
    }
    long code = 0;
    curl_easy_getinfo (c->curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

/* The first task id of a submit reply ({"task_ids": ["123", ...]}), or 0. A plain scan: the
 * submit benchmark should spend its client CPU on requests, not on JSON parsing. */
static uint64_t reply_task_id (const char *body)
{
    const char *p = body ? strstr (body, "\"task_ids\"") : NULL;
    if (!p || !(p = strchr (p, '[')))
        return 0;
    p++;
    while (*p == ' ' || *p == '"')
        p++;
    return strtoull (p, NULL, 10);
}

/* Submits BODY; returns the task id or 0 (an error is printed once per distinct code). */
static uint64_t submit_one (struct client *c, const char *body, long *code_out)
{
    long code = client_do (c, "/submit", body);
    if (code_out)
        *code_out = code;
    if (code != 200 && code != 202)
        return 0;
    return reply_task_id (c->body);
}

/* Active tasks right now (0 or 1 with limit=1: only "any left?" matters), or -1 on error. */
static int any_active (struct client *c)
{
    long code = client_do (c, "/tasks?" ACTIVE_FILTER "&limit=1", NULL);
    if (code != 200 || !c->body)
        return -1;
    json_t *a = json_loads (c->body, 0, NULL);
    int n = json_is_array (a) ? (int)json_array_size (a) : -1;
    json_decref (a);
    return n;
}

/* Sum of utime+stime (seconds) of the comma-separated PIDS; children are not counted.
 * EACH (may be NULL) gets the time of each of the first MAX_PIDS pids, in order; *N (may be
 * NULL) how many were read; *CHILDREN (may be NULL) the sum of their reaped children's
 * cutime+cstime (the runner's: its task shims, with the tasks they reaped). */
#define MAX_PIDS 8
static double cpu_of (const char *pids, double *each, int *n_out, double *children)
{
    double total = 0, kids = 0;
    int k = 0;
    long hz = sysconf (_SC_CLK_TCK);
    char *copy = strdup (pids ? pids : ""), *save = NULL;
    for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save)) {
        char path[64], buf[2048];
        snprintf (path, sizeof path, "/proc/%s/stat", t);
        FILE *f = fopen (path, "r");
        if (!f)
            continue;
        size_t n = fread (buf, 1, sizeof buf - 1, f);
        fclose (f);
        buf[n] = '\0';
        char *p = strrchr (buf, ')'); /* comm may hold spaces */
        unsigned long ut = 0, st = 0;
        long cut = 0, cst = 0;
        if (p && sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
                         &ut, &st, &cut, &cst) == 4) {
            total += (double)(ut + st) / hz;
            kids += (double)(cut + cst) / hz;
            if (each && k < MAX_PIDS)
                each[k] = (double)(ut + st) / hz;
            k++;
        }
    }
    free (copy);
    if (n_out)
        *n_out = k;
    if (children)
        *children = kids;
    return total;
}

/* ---- submit: throughput --------------------------------------------------------------- */

struct shared {
    atomic_int claimed, ok, errors;
    double deadline;
    uint64_t *ids;             /* makespan: every id, by claim index */
    atomic_long first_code;    /* first non-2xx code seen, for the report */
};

static void *submit_worker (void *arg)
{
    struct shared *s = arg;
    struct client c;
    client_init (&c);
    for (;;) {
        int i = atomic_fetch_add (&s->claimed, 1);
        if (i >= O.count || (s->deadline > 0 && now_mono () >= s->deadline))
            break;
        long code;
        uint64_t id = submit_one (&c, trivial_task, &code);
        if (id) {
            atomic_fetch_add (&s->ok, 1);
            if (s->ids)
                s->ids[i] = id;
        } else {
            long zero = 0;
            if (atomic_fetch_add (&s->errors, 1) < 5)
                fprintf (stderr, "hr-load: submit: HTTP %ld: %.200s\n", code,
                         c.body ? c.body : "");
            atomic_compare_exchange_strong (&s->first_code, &zero, code);
        }
    }
    client_free (&c);
    return NULL;
}

/* Runs O.clients submit threads until DEADLINE (0 = none) or O.count claims. */
static double run_submitters (struct shared *s, double seconds)
{
    pthread_t th[256];
    int n = O.clients < 1 ? 1 : O.clients > 256 ? 256 : O.clients;
    double t0 = now_mono ();
    s->deadline = seconds > 0 ? t0 + seconds : 0;
    for (int i = 0; i < n; i++)
        pthread_create (&th[i], NULL, submit_worker, s);
    for (int i = 0; i < n; i++)
        pthread_join (th[i], NULL);
    return now_mono () - t0;
}

static int cmd_submit (void)
{
    struct shared s = { 0 };
    double el = run_submitters (&s, O.duration);
    printf ("ok=%d errors=%d elapsed=%.3f rate=%.0f clients=%d first_error_code=%ld\n",
            (int)s.ok, (int)s.errors, el, s.ok / el, O.clients, (long)s.first_code);
    return s.ok > 0 ? 0 : 1;
}

/* ---- makespan ------------------------------------------------------------------------- */

/* Counts the final statuses of IDS by paging /tasks (newest first) down past the lowest id. */
static int count_statuses (struct client *c, uint64_t *ids, int n, int *completed, int *other,
                           char *other_status, size_t other_len)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] && ids[i] < lo)
            lo = ids[i];
        if (ids[i] > hi)
            hi = ids[i];
    }
    *completed = *other = 0;
    char path[256], before[32];
    snprintf (before, sizeof before, "%" PRIu64, hi + 1);
    for (;;) {
        snprintf (path, sizeof path, "/tasks?limit=1000&before=%s", before);
        if (client_do (c, path, NULL) != 200)
            return -1;
        json_t *a = json_loads (c->body, 0, NULL);
        if (!json_is_array (a)) {
            json_decref (a);
            return -1;
        }
        size_t k;
        json_t *t;
        uint64_t last = 0;
        json_array_foreach (a, k, t) {
            const char *id = json_string_value (json_object_get (t, "task_id"));
            const char *st = json_string_value (json_object_get (t, "status"));
            uint64_t v = id ? strtoull (id, NULL, 10) : 0;
            last = v;
            if (v < lo || v > hi || !st)
                continue;
            if (strcmp (st, "completed") == 0)
                (*completed)++;
            else {
                (*other)++;
                snprintf (other_status, other_len, "%s", st);
            }
        }
        size_t got = json_array_size (a);
        json_decref (a);
        if (got == 0 || last <= lo || !c->next_before[0])
            break;
        snprintf (before, sizeof before, "%s", c->next_before);
    }
    return 0;
}

static int cmd_makespan (void)
{
    struct shared s = { 0 };
    s.ids = calloc ((size_t)O.count, sizeof *s.ids);
    struct client c;
    client_init (&c);
    double each0[MAX_PIDS] = { 0 }, each1[MAX_PIDS] = { 0 }, kids0 = 0, kids1 = 0;
    int npids = 0;
    double cpu0 = cpu_of (O.pids, each0, NULL, &kids0);
    double t0 = now_mono ();
    double sub_el = run_submitters (&s, 0);
    int polls = 0, left = 1;
    double limit = t0 + (O.duration > 120 ? O.duration : 120);
    while (now_mono () < limit) {
        left = any_active (&c);
        polls++;
        if (left == 0)
            break;
        /* 20 ms: at most 1% of the 2.5 s target late, and few enough GETs (about 50 a
         * second, ~0.1 ms of host CPU each) that they barely count in the CPU figure */
        sleep_ms (20);
    }
    double el = now_mono () - t0;
    double cpu1 = cpu_of (O.pids, each1, &npids, &kids1);
    char split[256] = "";
    size_t off = 0;
    for (int i = 0; i < npids && i < MAX_PIDS && off < sizeof split; i++)
        off += (size_t)snprintf (split + off, sizeof split - off, "%s%.2f", off ? "," : "",
                                 each1[i] - each0[i]);
    int done = 0, other = 0;
    char other_st[32] = "-";
    int rc = count_statuses (&c, s.ids, O.count, &done, &other, other_st, sizeof other_st);
    printf ("tasks=%d submitted=%d errors=%d submit_s=%.3f makespan_s=%.3f completed=%d "
            "not_completed=%d other_status=%s polls=%d cpu_s=%.2f cpu_per_1000=%.3f cpu_by_pid_s=%s "
            "children_cpu_s=%.2f timed_out=%d\n",
            O.count, (int)s.ok, (int)s.errors, sub_el, el, done, other, other_st, polls,
            cpu1 - cpu0, (cpu1 - cpu0) * 1000.0 / (O.count ? O.count : 1),
            split[0] ? split : "-", kids1 - kids0, left != 0);
    client_free (&c);
    free (s.ids);
    return rc == 0 && left == 0 && s.ok == O.count ? 0 : 1;
}

/* ---- latency -------------------------------------------------------------------------- */

static int cmd_latency (void)
{
    if (!O.dir || !O.helper) {
        fprintf (stderr, "hr-load: latency needs -D DIR and -H HELPER\n");
        return 1;
    }
    struct client c;
    client_init (&c);
    uint64_t *ids = calloc ((size_t)O.count, sizeof *ids);
    double *sent = calloc ((size_t)O.count, sizeof *sent);
    double *rtt = calloc ((size_t)O.count, sizeof *rtt);
    double *lat = calloc ((size_t)O.count, sizeof *lat);
    char body[2048], where[600];
    if (O.image)
        snprintf (where, sizeof where, "\"image\":\"%s\"", O.image);
    else
        snprintf (where, sizeof where, "\"container_name\":\"NULL\"");
    snprintf (body, sizeof body,
              "{\"command\":\"%s\",\"arguments\":[\"%s\"],%s,\"required_cores\":%d}",
              O.task_helper ? O.task_helper : O.helper, O.task_dir ? O.task_dir : O.dir, where,
              O.cores);
    int errors = 0;
    double next = now_mono ();
    for (int i = 0; i < O.count; i++) {
        double wait = next - now_mono ();
        if (wait > 0)
            sleep_ms (wait * 1000);
        next += O.spacing_ms / 1000.0;
        double m0 = now_mono ();
        sent[i] = now_real ();
        long code;
        ids[i] = submit_one (&c, body, &code);
        rtt[i] = now_mono () - m0;
        if (!ids[i] && errors++ < 5)
            fprintf (stderr, "hr-load: latency submit: HTTP %ld: %.200s\n", code,
                     c.body ? c.body : "");
    }
    /* collect the start stamps */
    int n = 0, missing = 0;
    double limit = now_mono () + 30;
    for (int i = 0; i < O.count; i++) {
        if (!ids[i])
            continue;
        char path[4096];
        snprintf (path, sizeof path, "%s/%" PRIu64, O.dir, ids[i]);
        double start = 0;
        for (;;) {
            FILE *f = fopen (path, "r");
            if (f) {
                int got = fscanf (f, "%lf", &start);
                fclose (f);
                if (got == 1 && start > 0)
                    break;
            }
            if (now_mono () > limit) {
                start = 0;
                break;
            }
            sleep_ms (10);
        }
        if (start > 0)
            lat[n++] = (start - sent[i]) * 1000;
        else
            missing++;
    }
    qsort (lat, (size_t)n, sizeof *lat, cmp_double);
    qsort (rtt, (size_t)O.count, sizeof *rtt, cmp_double);
    printf ("tasks=%d measured=%d missing=%d errors=%d p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f "
            "max_ms=%.2f min_ms=%.2f submit_rtt_p50_ms=%.2f submit_rtt_p95_ms=%.2f\n",
            O.count, n, missing, errors, pct (lat, n, 50), pct (lat, n, 95), pct (lat, n, 99),
            n ? lat[n - 1] : 0, n ? lat[0] : 0, pct (rtt, O.count, 50) * 1000,
            pct (rtt, O.count, 95) * 1000);
    client_free (&c);
    free (ids);
    free (sent);
    free (rtt);
    free (lat);
    return n > 0 && missing == 0 && errors == 0 ? 0 : 1;
}

/* ---- pages ---------------------------------------------------------------------------- */

/* Times REPEAT GETs of PATH; writes p50/max in ms. Returns the rows of the last reply or -1. */
static int time_get (struct client *c, const char *path, int repeat, double *p50, double *max)
{
    double *v = calloc ((size_t)repeat, sizeof *v);
    int rows = -1;
    for (int i = 0; i < repeat; i++) {
        double t0 = now_mono ();
        long code = client_do (c, path, NULL);
        v[i] = (now_mono () - t0) * 1000;
        if (code != 200) {
            fprintf (stderr, "hr-load: GET %s: HTTP %ld\n", path, code);
            free (v);
            return -1;
        }
    }
    json_t *a = json_loads (c->body, 0, NULL);
    rows = json_is_array (a) ? (int)json_array_size (a) : -1;
    json_decref (a);
    qsort (v, (size_t)repeat, sizeof *v, cmp_double);
    *p50 = pct (v, repeat, 50);
    *max = v[repeat - 1];
    free (v);
    return rows;
}

static int cmd_pages (void)
{
    struct client c;
    client_init (&c);
    /* keyset walk: O.count pages of 100 from the newest */
    double *v = calloc ((size_t)O.count, sizeof *v);
    char path[256] = "/tasks?limit=100";
    int pages = 0, rows = 0;
    for (; pages < O.count; pages++) {
        double t0 = now_mono ();
        long code = client_do (&c, path, NULL);
        v[pages] = (now_mono () - t0) * 1000;
        if (code != 200) {
            fprintf (stderr, "hr-load: GET %s: HTTP %ld\n", path, code);
            break;
        }
        json_t *a = json_loads (c.body, 0, NULL);
        rows += json_is_array (a) ? (int)json_array_size (a) : 0;
        json_decref (a);
        if (!c.next_before[0]) {
            pages++;
            break;
        }
        snprintf (path, sizeof path, "/tasks?limit=100&before=%s", c.next_before);
    }
    qsort (v, (size_t)pages, sizeof *v, cmp_double);
    double f50 = 0, fmax = 0, c50 = 0, cmax = 0, b50 = 0, bmax = 0, o50 = 0, omax = 0;
    int r1 = time_get (&c, "/tasks?limit=100", 50, &f50, &fmax);
    int r2 = time_get (&c, "/tasks?status=completed&limit=100", 50, &c50, &cmax);
    int r3 = time_get (&c, "/tasks?limit=1000", 20, &b50, &bmax);
    /* offset paging deep into the history: the slow path that keyset paging avoids */
    int r4 = time_get (&c, "/tasks?limit=100&offset=90000", 5, &o50, &omax);
    printf ("pages=%d rows=%d page_p50_ms=%.2f page_p95_ms=%.2f page_max_ms=%.2f "
            "first_p50_ms=%.2f completed_p50_ms=%.2f limit1000_p50_ms=%.2f "
            "offset90000_p50_ms=%.2f rows_first=%d rows_completed=%d rows_1000=%d "
            "rows_offset=%d\n",
            pages, rows, pct (v, pages, 50), pct (v, pages, 95), pages ? v[pages - 1] : 0,
            f50, c50, b50, o50, r1, r2, r3, r4);
    free (v);
    client_free (&c);
    return pages > 0 && r1 >= 0 && r2 >= 0 && r3 >= 0 ? 0 : 1;
}

/* ---- drain ---------------------------------------------------------------------------- */

static int cmd_drain (void)
{
    struct client c;
    client_init (&c);
    double t0 = now_mono (), limit = t0 + O.duration;
    int left = -1;
    while (now_mono () < limit) {
        left = any_active (&c);
        if (left == 0)
            break;
        sleep_ms (50);
    }
    printf ("drained=%d waited_s=%.2f\n", left == 0, now_mono () - t0);
    client_free (&c);
    return left == 0 ? 0 : 1;
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hr-load submit|makespan|latency|pages|drain --url URL --token TOKEN\n"
             "       [-c CLIENTS] [-d SECONDS] [-n COUNT] [-s SPACING_MS] [-D DIR]\n"
             "       [-H HELPER] [-p PID,PID] [-C|--cores N (required_cores, default 1)]\n"
             "       [--image REF (Docker tasks)] [--task-dir DIR] [--task-helper PATH]\n"
             "       (--task-*: DIR and HELPER as the task sees them, e.g. under /shared)\n");
}

int main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },   { "token", required_argument, NULL, 't' },
        { "clients", required_argument, NULL, 'c' }, { "duration", required_argument, NULL, 'd' },
        { "count", required_argument, NULL, 'n' }, { "spacing", required_argument, NULL, 's' },
        { "dir", required_argument, NULL, 'D' },   { "helper", required_argument, NULL, 'H' },
        { "pids", required_argument, NULL, 'p' },  { "cores", required_argument, NULL, 'C' },
        { "image", required_argument, NULL, 'I' }, { "task-dir", required_argument, NULL, 'T' },
        { "task-helper", required_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2) {
        usage (stderr);
        return 2;
    }
    const char *cmd = argv[1];
    int c;
    optind = 2;
    while ((c = getopt_long (argc, argv, "u:t:c:d:n:s:D:H:p:C:I:T:P:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': O.url = optarg; break;
        case 't': O.token = optarg; break;
        case 'c': O.clients = atoi (optarg); break;
        case 'd': O.duration = atof (optarg); break;
        case 'n': O.count = atoi (optarg); break;
        case 's': O.spacing_ms = atoi (optarg); break;
        case 'D': O.dir = optarg; break;
        case 'H': O.helper = optarg; break;
        case 'p': O.pids = optarg; break;
        case 'C': O.cores = atoi (optarg); break;
        case 'I': O.image = optarg; break;
        case 'T': O.task_dir = optarg; break;
        case 'P': O.task_helper = optarg; break;
        case 'h': usage (stdout); return 0;
        default: usage (stderr); return 2;
        }
    }
    if (!O.url || !O.token || O.count < 1) {
        usage (stderr);
        return 2;
    }
    if (O.image)
        snprintf (trivial_task, sizeof trivial_task,
                  "{\"command\":\"true\",\"image\":\"%s\",\"required_cores\":%d}", O.image,
                  O.cores);
    else
        snprintf (trivial_task, sizeof trivial_task,
                  "{\"command\":\"true\",\"container_name\":\"NULL\",\"required_cores\":%d}",
                  O.cores);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp (cmd, "submit") == 0)
        rc = cmd_submit ();
    else if (strcmp (cmd, "makespan") == 0)
        rc = cmd_makespan ();
    else if (strcmp (cmd, "latency") == 0)
        rc = cmd_latency ();
    else if (strcmp (cmd, "pages") == 0)
        rc = cmd_pages ();
    else if (strcmp (cmd, "drain") == 0)
        rc = cmd_drain ();
    else {
        usage (stderr);
        rc = 2;
    }
    curl_global_cleanup ();
    return rc;
}
