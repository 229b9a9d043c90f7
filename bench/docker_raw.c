/* docker_raw.c - the baseline for the Docker benchmark: the same trivial containers run
 * straight through the Docker Engine API (create, start, wait, remove), no HakuRiver.
 *
 *   hr-docker-raw serial   -n N -i IMAGE -b HOST_DIR -H HELPER -D DIR [-s SPACING_MS]
 *       N containers one after another (with -s: one create every SPACING_MS), each running HELPER DIR (the stamp probe, seen inside
 *       the container through the bind mount HOST_DIR:/shared); prints the p50/p95 of
 *       create-call -> process start (from the probe's stamp) and of the whole lifecycle.
 *   hr-docker-raw makespan -n N -c CONCURRENCY -i IMAGE -b HOST_DIR
 *       N containers running `true`, CONCURRENCY at a time; prints the makespan.
 * Containers get what a HakuRiver task gets: 1 CPU, host network, SYS_NICE, /shared and
 * /local_temp binds. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/docker_api.h"

static struct {
    int n, conc, spacing_ms;
    const char *image, *bind, *helper, *dir;
} O = { .n = 20, .conc = 2 };

static double now_real (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct (double *v, int n, double p)
{
    if (n == 0)
        return 0;
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* One container: create (named NAME), start, wait, remove. *started = after start returned. */
static int lifecycle (struct docker *d, const char *name, json_t *cmd, json_t *env,
                      double *started)
{
    struct err e = { 0 };
    char binds0[4200], binds1[4200], path[512];
    snprintf (binds0, sizeof binds0, "%s:/shared", O.bind);
    snprintf (binds1, sizeof binds1, "%s:/local_temp", O.bind);
    json_t *body = json_pack ("{s:s, s:O, s:O, s:s, s:{s:[s,s], s:s, s:I, s:[s]}}", "Image",
                              O.image, "Cmd", cmd, "Env", env, "WorkingDir", "/shared",
                              "HostConfig", "Binds", binds0, binds1, "NetworkMode", "host",
                              "NanoCpus", (json_int_t)1000000000, "CapAdd", "SYS_NICE");
    snprintf (path, sizeof path, "/containers/create?name=%s", name);
    int code = docker_request (d, "POST", path, body, NULL, 60000, &e);
    json_decref (body);
    if (code != 201) {
        fprintf (stderr, "create: %d %s\n", code, e.text);
        return -1;
    }
    snprintf (path, sizeof path, "/containers/%s/start", name);
    code = docker_request (d, "POST", path, NULL, NULL, 60000, &e);
    *started = now_real ();
    if (code != 204) {
        fprintf (stderr, "start: %d %s\n", code, e.text);
        return -1;
    }
    snprintf (path, sizeof path, "/containers/%s/wait", name);
    docker_request (d, "POST", path, NULL, NULL, 0, &e);
    snprintf (path, sizeof path, "/containers/%s?force=1&v=1", name);
    docker_request (d, "DELETE", path, NULL, NULL, 60000, &e);
    return 0;
}

static int cmd_serial (void)
{
    struct err e = { 0 };
    struct docker *d = docker_open (NULL, &e);
    if (!d || !O.helper || !O.dir) {
        fprintf (stderr, "serial needs -H HELPER -D DIR (%s)\n", e.text);
        return 1;
    }
    double *lat = calloc ((size_t)O.n, sizeof *lat), *life = calloc ((size_t)O.n, sizeof *life);
    int n = 0;
    double next = now_real ();
    for (int i = 0; i < O.n; i++) {
        /* -s: one create every SPACING ms, the cadence hr-load uses for HakuRiver's submits
         * (an engine left idle between starts is slower than one kept busy) */
        double wait = next - now_real ();
        if (O.spacing_ms > 0 && wait > 0) {
            struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
            nanosleep (&ts, NULL);
        }
        next += O.spacing_ms / 1000.0;
        char name[64], envv[64], hostdir[4200];
        snprintf (name, sizeof name, "hr-bench-raw-%d-%d", (int)getpid (), i);
        snprintf (envv, sizeof envv, "HAKURIVER_TASK_ID=raw%d", i);
        json_t *cmd = json_pack ("[s,s]", O.helper, O.dir);
        json_t *env = json_pack ("[s]", envv);
        double t0 = now_real (), started;
        int rc = lifecycle (d, name, cmd, env, &started);
        double t1 = now_real ();
        json_decref (cmd);
        json_decref (env);
        if (rc < 0)
            continue;
        /* the probe's stamp: O.dir inside = <bind>/<dir without /shared/> outside */
        const char *rel = strncmp (O.dir, "/shared/", 8) == 0 ? O.dir + 8 : O.dir;
        snprintf (hostdir, sizeof hostdir, "%s/%s/raw%d", O.bind, rel, i);
        FILE *f = fopen (hostdir, "r");
        double st = 0;
        if (f) {
            if (fscanf (f, "%lf", &st) != 1)
                st = 0;
            fclose (f);
        }
        if (st > 0) {
            lat[n] = (st - t0) * 1000;
            life[n] = (t1 - t0) * 1000;
            n++;
        }
    }
    qsort (lat, (size_t)n, sizeof *lat, cmp_double);
    qsort (life, (size_t)n, sizeof *life, cmp_double);
    printf ("raw_serial n=%d start_p50_ms=%.1f start_p95_ms=%.1f lifecycle_p50_ms=%.1f "
            "lifecycle_p95_ms=%.1f\n", n, pct (lat, n, 0.5), pct (lat, n, 0.95),
            pct (life, n, 0.5), pct (life, n, 0.95));
    free (lat);
    free (life);
    docker_close (d);
    return n == O.n ? 0 : 1;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int next_i, done, failed;

static void *worker (void *arg)
{
    (void)arg;
    struct err e = { 0 };
    struct docker *d = docker_open (NULL, &e);
    if (!d)
        return NULL;
    for (;;) {
        pthread_mutex_lock (&lock);
        int i = next_i < O.n ? next_i++ : -1;
        pthread_mutex_unlock (&lock);
        if (i < 0)
            break;
        char name[64];
        snprintf (name, sizeof name, "hr-bench-raw-%d-m%d", (int)getpid (), i);
        json_t *cmd = json_pack ("[s]", "true"), *env = json_array ();
        double started;
        int rc = lifecycle (d, name, cmd, env, &started);
        json_decref (cmd);
        json_decref (env);
        pthread_mutex_lock (&lock);
        if (rc < 0)
            failed++;
        else
            done++;
        pthread_mutex_unlock (&lock);
    }
    docker_close (d);
    return NULL;
}

static int cmd_makespan (void)
{
    pthread_t *th = calloc ((size_t)O.conc, sizeof *th);
    double t0 = now_real ();
    for (int i = 0; i < O.conc; i++)
        pthread_create (&th[i], NULL, worker, NULL);
    for (int i = 0; i < O.conc; i++)
        pthread_join (th[i], NULL);
    double t = now_real () - t0;
    printf ("raw_makespan n=%d concurrency=%d done=%d failed=%d makespan_s=%.2f "
            "throughput_per_s=%.2f\n", O.n, O.conc, done, failed, t, done / t);
    free (th);
    return failed ? 1 : 0;
}

int main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: hr-docker-raw serial|makespan -n N -c CONC -i IMAGE -b HOST_DIR "
                         "[-H HELPER -D DIR] [-s SPACING_MS]\n");
        return 2;
    }
    const char *cmd = argv[1];
    optind = 2;
    int c;
    while ((c = getopt (argc, argv, "n:c:i:b:H:D:s:")) != -1) {
        switch (c) {
        case 'n': O.n = atoi (optarg); break;
        case 'c': O.conc = atoi (optarg); break;
        case 'i': O.image = optarg; break;
        case 'b': O.bind = optarg; break;
        case 'H': O.helper = optarg; break;
        case 'D': O.dir = optarg; break;
        case 's': O.spacing_ms = atoi (optarg); break;
        default: return 2;
        }
    }
    if (!O.image || !O.bind || O.n < 1 || O.conc < 1)
        return 2;
    if (strcmp (cmd, "serial") == 0)
        return cmd_serial ();
    if (strcmp (cmd, "makespan") == 0)
        return cmd_makespan ();
    return 2;
}
