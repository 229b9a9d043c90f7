/* main.c - the runner daemon: argv -> conf -> state -> executor -> adopt -> loop (libcurl multi) */
#include "runner/runner.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"
#include "runner/numa.h"
#include "runner/spawner.h"
#include "runner/terminal.h"

#define POLL_WAIT_S        25      /* long-poll wait sent to the host (it caps at 30) */
#define BACKOFF_MIN_S      0.5
#define BACKOFF_MAX_S      10.0
#define CONFLICT_RETRY_S   30.0    /* 409 on register: someone else holds our hostname */
#define UPDATE_BATCH_MAX   500     /* outbox entries per POST /update */
#define UPDATE_TIMEOUT_MS  30000L
#define REGISTER_TIMEOUT_MS 15000L
#define HEARTBEAT_TIMEOUT_MS 10000L
/* Longest sleep of the loop, a safety bound only: every event has a descriptor (signalfd,
 * start pipes, pidfds, curl's sockets) or a timer computed by sleep_ms(). Until channel_run()
 * collected the transfers that finish inside curl_multi_perform, a reply that arrived while
 * its request was being sent went unnoticed until this timeout, then 50 ms: it cost about a
 * quarter of all task turnarounds 50 ms each. */
#define MAX_SLEEP_MS       1000
/* Commits reach the disk at most this long after they were made (state.h). */
#define STATE_SYNC_S       1.0

double runner_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *runner_iso_now (char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char base[24];
    clock_gettime (CLOCK_REALTIME, &ts);
    localtime_r (&ts.tv_sec, &tm);
    strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%06ld", base, ts.tv_nsec / 1000);
    return buf;
}

/* After a commit: each executor may drop what it kept for the results just committed. */
static void executors_committed (struct runner *r)
{
    if (r->ex->ops->committed)
        r->ex->ops->committed (r->ex);
    if (r->docker && r->docker->ops->committed)
        r->docker->ops->committed (r->docker);
}

static double backoff_next (double *b)
{
    *b = *b > 0 ? *b * 2 : BACKOFF_MIN_S;
    if (*b > BACKOFF_MAX_S)
        *b = BACKOFF_MAX_S;
    return *b;
}

/* mkdir -p with MODE for created components. Returns 0 or -1 (errno set). */
static int mkdir_p (const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf (buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir (buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (buf, mode) < 0 && errno != EEXIST)
        return -1;
    struct stat sb;
    if (stat (buf, &sb) < 0)
        return -1;
    if (!S_ISDIR (sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Extracts {"detail": "..."} from an error reply for logging (escaped, shortened). */
static const char *reply_detail (struct channel_req *req, char *buf, size_t size)
{
    json_t *j = json_loads (channel_req_body (req), 0, NULL);
    const char *d = json_string_value (json_object_get (j, "detail"));
    log_escape (d ? d : channel_req_body (req), buf, (unsigned)size);
    json_decref (j);
    return buf;
}

static void log_failure (struct runner *r, struct channel_req *req, double retry_in)
{
    char detail[256];
    long status = channel_req_status (req);
    if (status == 401)
        log_err ("%s: the host rejected our token (401): check [auth] join_token / "
                 "HAKURIVER_JOIN_TOKEN; retrying in %.1f s", channel_req_name (req), retry_in);
    else if (status)
        log_warn ("%s: host answered %ld: %s; retrying in %.1f s", channel_req_name (req),
                  status, reply_detail (req, detail, sizeof detail), retry_in);
    else
        log_warn ("%s: %s: %s; retrying in %.1f s", channel_req_name (req), r->host_url,
                  channel_req_error (req), retry_in);
}

/* ---- request bodies ------------------------------------------------------------------- */

static json_t *task_ids_json (struct runner *r, bool with_status)
{
    json_t *a = json_array ();
    for (struct rtask *t = r->tasks; t; t = t->next) {
        if (!with_status) {
            json_array_append_new (a, json_integer ((json_int_t)t->et.task_id));
            continue;
        }
        const char *st = strcmp (t->status, STATE_PAUSED) == 0    ? ST_PAUSED
                         : strcmp (t->status, STATE_PENDING) == 0 ? ST_PENDING
                                                                  : ST_RUNNING;
        json_array_append_new (a, json_pack ("{s:I, s:i, s:s}", "task_id",
                                             (json_int_t)t->et.task_id, "attempt",
                                             t->et.attempt, "status", st));
    }
    return a;
}

static char *register_body (struct runner *r)
{
    struct sysinfo_mem mem = { 0 };
    struct err e = { 0 };
    if (sysinfo_read_meminfo (NULL, &mem, &e) < 0)
        log_warn ("%s", e.text);
    char *url = xasprintf ("http://%s:%d", r->conf.runner_address, r->conf.runner_port);
    json_t *b = json_object ();
    json_object_set_new (b, "hostname", json_string (r->hostname));
    json_object_set_new (b, "node_id", json_string (r->node_id));
    json_object_set_new (b, "total_cores", json_integer (sysinfo_cpu_count ()));
    json_object_set_new (b, "total_ram_bytes", json_integer (mem.total_bytes));
    json_object_set_new (b, "runner_url", json_string (url));
    struct numa_topology topo = { 0 };
    if (numa_topology_read (NULL, &topo, &e) < 0)
        log_warn ("NUMA topology: %s", e.text);
    json_object_set_new (b, "numa_topology", numa_topology_json (&topo));
    numa_topology_clear (&topo);
    json_object_set_new (b, "gpu_info", json_array ());
    json_object_set_new (b, "tasks", task_ids_json (r, true));
    char *s = json_dumps (b, JSON_COMPACT);
    json_decref (b);
    free (url);
    return s;
}

static char *heartbeat_body (struct runner *r)
{
    struct sysinfo_mem mem = { 0 };
    struct sysinfo_cpu_sample cpu;
    struct err e = { 0 };
    json_t *b = json_object ();
    json_object_set_new (b, "running_tasks", task_ids_json (r, false));
    json_object_set_new (b, "killed_tasks", json_array ());
    json_t *cpu_pct = json_null ();
    if (sysinfo_read_stat (NULL, &cpu, &e) == 0) {
        double p = r->have_cpu_prev ? sysinfo_cpu_percent (&r->cpu_prev, &cpu) : -1;
        if (p >= 0)
            cpu_pct = json_real (p);
        r->cpu_prev = cpu;
        r->have_cpu_prev = true;
    }
    json_object_set_new (b, "cpu_percent", cpu_pct);
    if (sysinfo_read_meminfo (NULL, &mem, &e) == 0) {
        json_object_set_new (b, "memory_percent", json_real (mem.percent));
        json_object_set_new (b, "memory_used_bytes", json_integer (mem.used_bytes));
        json_object_set_new (b, "memory_total_bytes", json_integer (mem.total_bytes));
    } else {
        json_object_set_new (b, "memory_percent", json_null ());
        json_object_set_new (b, "memory_used_bytes", json_null ());
        json_object_set_new (b, "memory_total_bytes", json_null ());
    }
    double avg, max;
    bool temps = sysinfo_temperatures (NULL, &avg, &max) > 0;
    json_object_set_new (b, "current_avg_temp", temps ? json_real (avg) : json_null ());
    json_object_set_new (b, "current_max_temp", temps ? json_real (max) : json_null ());
    json_object_set_new (b, "gpu_info", json_array ());
    json_object_set_new (b, "node_id", json_string (r->node_id));
    char *s = json_dumps (b, JSON_COMPACT);
    json_decref (b);
    return s;
}

/* ---- request completions ----------------------------------------------------------------- */

static void need_register (struct runner *r, const char *why)
{
    if (r->phase != RUNNER_ONLINE)
        return;
    log_warn ("%s; registering again", why);
    r->phase = RUNNER_REGISTER;
    r->register_at = runner_now ();
    r->register_backoff = 0;
}

static void register_done_cb (struct channel_req *req, void *arg)
{
    struct runner *r = arg;
    long status = channel_req_status (req);
    double now = runner_now ();
    if (status == 200) {
        json_t *j = json_loads (channel_req_body (req), 0, NULL);
        log_info ("registered with %s as %s (node_id %s), %d task(s) supervised", r->host_url,
                  r->hostname, r->node_id, r->ntasks);
        r->phase = RUNNER_ONLINE;
        r->register_backoff = 0;
        r->poll_at = now;
        r->poll_backoff = 0;
        r->heartbeat_at = now;
        r->update_at = now;
        r->update_backoff = 0;
        supervise_kill_list (r, json_object_get (j, "kill"), "the host no longer wants it");
        json_decref (j);
        return;
    }
    if (status == 409) {
        char detail[256];
        log_err ("register: 409: hostname `%s` is held by another online runner with a "
                 "different node_id (%s); retrying in %.0f s", r->hostname,
                 reply_detail (req, detail, sizeof detail), CONFLICT_RETRY_S);
        r->register_at = now + CONFLICT_RETRY_S;
        return;
    }
    double d = backoff_next (&r->register_backoff);
    log_failure (r, req, d);
    r->register_at = now + d;
}

static void poll_done_cb (struct channel_req *req, void *arg)
{
    struct runner *r = arg;
    long status = channel_req_status (req);
    double now = runner_now ();
    if (status == 200) {
        json_error_t jerr;
        json_t *j = json_loads (channel_req_body (req), 0, &jerr);
        json_t *cmds = json_object_get (j, "commands");
        if (!json_is_array (cmds)) {
            log_err ("poll: malformed reply from the host (%s)", j ? "no commands" : jerr.text);
            r->poll_at = now + backoff_next (&r->poll_backoff);
        } else {
            if (json_array_size (cmds))
                log_debug ("poll: %zu command(s)", json_array_size (cmds));
            supervise_commands (r, cmds);
            r->poll_backoff = 0;
            r->poll_at = now;
        }
        json_decref (j);
        return;
    }
    if (status == 404) {
        need_register (r, "poll: the host does not know this runner (404)");
        return;
    }
    if (status == 409) {
        char detail[256];
        log_err ("poll: node_id mismatch (409): %s", reply_detail (req, detail, sizeof detail));
        need_register (r, "poll: node_id mismatch");
        return;
    }
    double d = backoff_next (&r->poll_backoff);
    log_failure (r, req, d);
    r->poll_at = now + d;
}

static void heartbeat_done_cb (struct channel_req *req, void *arg)
{
    struct runner *r = arg;
    long status = channel_req_status (req);
    if (status == 200)
        return;
    if (status == 404) {
        need_register (r, "heartbeat: the host does not know this runner (404)");
        return;
    }
    if (status == 409) {
        need_register (r, "heartbeat: node_id mismatch (409)");
        return;
    }
    /* Next heartbeat at its normal time. */
    log_failure (r, req, r->heartbeat_at - runner_now ());
}

static void update_done_cb (struct channel_req *req, void *arg)
{
    struct runner *r = arg;
    long status = channel_req_status (req);
    double now = runner_now ();
    struct err e = { 0 };
    if (status == 200) {
        /* Acknowledged = committed on the host: only now may the entries go. */
        if (state_outbox_delete_upto (r->state, r->update_upto, &e) < 0)
            log_err ("%s", e.text);
        log_debug ("update: %zu sent in %.3f s", r->update_count, channel_req_elapsed (req));
        r->update_backoff = 0;
        r->update_at = now;
        r->update_batch_max = UPDATE_BATCH_MAX;
        json_t *j = json_loads (channel_req_body (req), 0, NULL);
        json_t *results = json_object_get (j, "results"), *res;
        size_t i;
        json_array_foreach (results, i, res)
        {
            const char *rv = json_string_value (json_object_get (res, "result"));
            if (rv && strcmp (rv, "rejected") == 0) {
                char id[32];
                log_warn ("update: the host rejected the update for task %s",
                          log_escape (json_string_value (json_object_get (res, "task_id")), id,
                                      sizeof id));
            }
        }
        supervise_kill_list (r, json_object_get (j, "kill"), "stale attempt");
        json_t *cmds = json_object_get (j, "commands");
        if (json_is_array (cmds) && json_array_size (cmds)) {
            log_debug ("update: %zu command(s) with the reply", json_array_size (cmds));
            supervise_commands (r, cmds);
        }
        json_decref (j);
        return;
    }
    if (status == 404 || status == 409) {
        /* The host does not know this node (yet): updates wait for the registration. */
        if (r->phase == RUNNER_FLUSH) {
            log_info ("update: the host does not know this runner yet; registering first");
            r->phase = RUNNER_REGISTER;
            r->register_at = now;
        } else {
            need_register (r, status == 404 ? "update: the host does not know this runner (404)"
                                            : "update: node_id mismatch (409)");
        }
        r->update_at = now + backoff_next (&r->update_backoff);
        return;
    }
    if (status == 400 || status == 413 || status == 422) {
        char detail[256];
        reply_detail (req, detail, sizeof detail);
        if (r->update_count > 1) {
            /* Narrow down to the entry the host cannot take instead of blocking forever. */
            r->update_batch_max = r->update_count / 2;
            log_warn ("update: host answered %ld (%s); retrying with batches of %zu", status,
                      detail, r->update_batch_max);
            r->update_at = now;
        } else {
            log_err ("update: host answered %ld (%s) to a single update; dropping it", status,
                     detail);
            if (state_outbox_delete_upto (r->state, r->update_upto, &e) < 0)
                log_err ("%s", e.text);
            r->update_at = now;
        }
        return;
    }
    double d = backoff_next (&r->update_backoff);
    log_failure (r, req, d);
    r->update_at = now + d;
}

/* ---- the loop --------------------------------------------------------------------------- */

static void start_update (struct runner *r)
{
    struct state_outbox_entry *v = NULL;
    size_t n = 0;
    struct err e = { 0 };
    double now = runner_now ();
    if (!r->final_pending && r->report_hold_until > now) {
        r->update_at = r->report_hold_until; /* starts only: wait for company (report_port) */
        return;
    }
    r->report_hold_until = 0;
    r->final_pending = false;
    if (state_outbox_peek (r->state, r->update_batch_max, &v, &n, &e) < 0) {
        log_err ("%s", e.text);
        r->update_at = runner_now () + 1;
        return;
    }
    if (n == 0) {
        state_outbox_free (v, n);
        /* Nothing to send: sleep until report() queues something. */
        r->update_idle = true;
        r->update_at = runner_now () + 3600;
        if (r->phase == RUNNER_FLUSH) {
            r->phase = RUNNER_REGISTER;
            r->register_at = runner_now ();
        }
        return;
    }
    size_t len = 16;
    for (size_t i = 0; i < n; i++)
        len += strlen (v[i].body) + 1;
    char *body = xmalloc (len);
    char *p = stpcpy (body, "{\"updates\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p = stpcpy (p, v[i].body);
    }
    stpcpy (p, "]}");
    r->update_upto = v[n - 1].seq;
    r->update_count = n;
    state_outbox_free (v, n);
    /* ?ack=: the host acknowledges our commands as on a poll and may answer with new ones
     * (the next task, typically) instead of answering the long-poll */
    char *path = xasprintf ("%s?ack=%" PRId64, PATH_UPDATE, r->ack);
    if (channel_req_start (r->update_req, "POST", path, body, UPDATE_TIMEOUT_MS, &e) < 0) {
        log_err ("%s", e.text);
        r->update_at = runner_now () + backoff_next (&r->update_backoff);
    }
    free (path);
}

/* Starts every request whose time has come. */
static void kick (struct runner *r, double now)
{
    struct err e = { 0 };
    if (!channel_req_busy (r->update_req) && now >= r->update_at)
        start_update (r);
    if (r->phase == RUNNER_REGISTER && !channel_req_busy (r->reg_req) && now >= r->register_at) {
        if (channel_req_start (r->reg_req, "POST", PATH_REGISTER, register_body (r),
                               REGISTER_TIMEOUT_MS, &e) < 0) {
            log_err ("%s", e.text);
            r->register_at = now + backoff_next (&r->register_backoff);
        }
    }
    if (r->phase != RUNNER_ONLINE)
        return;
    if (!channel_req_busy (r->poll_req) && now >= r->poll_at) {
        char *host = channel_escape (r->ch, r->hostname);
        char *path = xasprintf ("%s%s?node_id=%s&ack=%" PRId64 "&wait=%d", PATH_RUNNER_POLL,
                                host, r->node_id, r->ack, POLL_WAIT_S);
        if (channel_req_start (r->poll_req, "GET", path, NULL, (POLL_WAIT_S + 15) * 1000L, &e)
            < 0) {
            log_err ("%s", e.text);
            r->poll_at = now + backoff_next (&r->poll_backoff);
        }
        free (path);
        free (host);
    }
    if (!channel_req_busy (r->hb_req) && now >= r->heartbeat_at) {
        char *host = channel_escape (r->ch, r->hostname);
        char *path = xasprintf ("%s%s", PATH_HEARTBEAT, host);
        r->heartbeat_at = now + r->conf.heartbeat_interval;
        if (channel_req_start (r->hb_req, "PUT", path, heartbeat_body (r), HEARTBEAT_TIMEOUT_MS,
                               &e) < 0)
            log_err ("%s", e.text);
        free (path);
        free (host);
    }
}

/* Milliseconds until the earliest of our own timers (curl shortens it for its own). */
static int sleep_ms (struct runner *r, double now, double next_task_timer)
{
    double next = now + MAX_SLEEP_MS / 1000.0;
    if (next_task_timer > 0 && next_task_timer < next)
        next = next_task_timer;
    if (!channel_req_busy (r->update_req) && r->update_at < next)
        next = r->update_at;
    if (r->phase == RUNNER_REGISTER && !channel_req_busy (r->reg_req) && r->register_at < next)
        next = r->register_at;
    if (r->phase == RUNNER_ONLINE) {
        if (!channel_req_busy (r->poll_req) && r->poll_at < next)
            next = r->poll_at;
        if (!channel_req_busy (r->hb_req) && r->heartbeat_at < next)
            next = r->heartbeat_at;
    }
    double ms = (next - now) * 1000.0;
    return ms <= 0 ? 0 : (int)ms + 1;
}

static void handle_signals (struct runner *r, int sigfd)
{
    struct signalfd_siginfo si;
    while (read (sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            log_info ("received %s: stopping; tasks keep running under their shims and are "
                      "adopted on the next start", strsignal ((int)si.ssi_signo));
            r->stop = true;
            break;
        case SIGHUP:
            if (r->conf.runner_log_file && *r->conf.runner_log_file) {
                if (log_open_file (r->conf.runner_log_file) < 0)
                    log_err ("cannot reopen log file `%s`: %s", r->conf.runner_log_file,
                             strerror (errno));
                else
                    log_info ("SIGHUP: log file reopened");
            }
            break;
        default:
            /* SIGCHLD: the shim's pidfd tells us the same thing; nothing to do. */
            break;
        }
    }
}

static int run_loop (struct runner *r, int sigfd)
{
    struct curl_waitfd *fds = NULL;
    struct rtask **owners = NULL;
    size_t cap = 0;
    struct err e = { 0 };
    double next_task_timer = 0, sync_at = 0;
    while (!r->stop) {
        /* Everything decided in the last iteration is committed before any request leaves
         * (a kill -9 of the runner loses none of it; the disk gets it within STATE_SYNC_S). */
        int crc = state_commit (r->state, &e);
        if (crc < 0)
            log_err ("%s", e.text);
        else if (crc == 0)
            executors_committed (r);
        double now = runner_now ();
        if (state_unsynced (r->state)) {
            if (sync_at == 0)
                sync_at = now + STATE_SYNC_S;
            if (now >= sync_at) {
                if (state_sync (r->state, &e) < 0)
                    log_err ("%s", e.text);
                sync_at = 0;
            }
        }
        kick (r, now);

        size_t need = 2 * (size_t)r->ntasks + 1;
        if (need > cap) {
            cap = need * 2;
            fds = xreallocarray (fds, cap, sizeof *fds);
            owners = xreallocarray (owners, cap, sizeof *owners);
        }
        unsigned n = 0, nstart;
        fds[n] = (struct curl_waitfd){ .fd = sigfd, .events = CURL_WAIT_POLLIN };
        owners[n++] = NULL;
        /* start pipes first, so that a start is reported before its task's end */
        for (struct rtask *t = r->tasks; t; t = t->next) {
            if (t->et.start_fd < 0)
                continue;
            fds[n] = (struct curl_waitfd){ .fd = t->et.start_fd, .events = CURL_WAIT_POLLIN };
            owners[n++] = t;
        }
        nstart = n;
        for (struct rtask *t = r->tasks; t; t = t->next) {
            if (t->et.pidfd < 0)
                continue;
            fds[n] = (struct curl_waitfd){ .fd = t->et.pidfd, .events = CURL_WAIT_POLLIN };
            owners[n++] = t;
        }

        double wake_at = next_task_timer;
        if (sync_at > 0 && (wake_at <= 0 || sync_at < wake_at))
            wake_at = sync_at;
        if (channel_run (r->ch, fds, n, sleep_ms (r, now, wake_at), &e) < 0) {
            log_err ("%s", e.text);
            usleep (100000);
            continue;
        }
        if (fds[0].revents) {
            handle_signals (r, sigfd);
            if (r->stop) {
                /* queued starts and exits are picked up again on the next start */
                supervise_unstart_queued (r);
                break;
            }
        }
        /* Callbacks above never free tasks (only reaping does), so OWNERS is valid. */
        for (unsigned i = 1; i < nstart; i++)
            if (fds[i].revents && owners[i]->et.start_fd >= 0)
                supervise_started (r, owners[i]);
        for (unsigned i = nstart; i < n; i++)
            if (fds[i].revents)
                supervise_reap (r, owners[i]);
        next_task_timer = supervise_timers (r, runner_now ());
        if (supervise_start_queued (r, START_BATCH) > 0)
            next_task_timer = runner_now (); /* more to start: do not sleep */
    }
    free (fds);
    free (owners);
    if (state_flush (r->state, &e) < 0) {
        log_err ("%s", e.text);
        return -1;
    }
    executors_committed (r);
    return 0;
}

/* ---- start-up ------------------------------------------------------------------------------- */

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver.runner [-c|--config PATH] [--hostname NAME] [--state-dir DIR]\n"
             "  -c, --config PATH   configuration file (default $HAKURIVER_CONFIG, then\n"
             "                      ~/.hakuriver/config.toml)\n"
             "      --hostname NAME identity towards the host (default: gethostname())\n"
             "      --state-dir DIR node-id, state database and shim exit files (default:\n"
             "                      [paths] runner_state_dir, else local_temp_dir)\n");
}

static bool valid_hostname (const char *h)
{
    size_t n = strlen (h);
    return n > 0 && n < 254 && strspn (h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789.-_") == n;
}

static void runner_free (struct runner *r)
{
    while (r->tasks) {
        struct rtask *t = r->tasks;
        r->tasks = t->next;
        if (t->et.pidfd >= 0)
            close (t->et.pidfd);
        json_decref (t->pending_spec);
        free (t);
    }
    channel_destroy (r->ch);
    if (r->ex)
        r->ex->ops->destroy (r->ex);
    if (r->docker)
        r->docker->ops->destroy (r->docker);
    state_close (r->state);
    free (r->state_dir);
    free (r->shared_data_dir);
    free (r->host_url);
    conf_free (&r->conf);
}

int runner_main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "hostname", required_argument, NULL, 'H' },
        { "state-dir", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *hostname = NULL, *state_dir = NULL;
    struct runner runner = { 0 }, *r = &runner;
    struct err e = { 0 };
    int rc = 1, sigfd = -1, c;
    char *path = NULL;

    optind = 1;
    while ((c = getopt_long (argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'H': hostname = optarg; break;
        case 'S': state_dir = optarg; break;
        case 'h': usage (stdout); return 0;
        default: usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "hakuriver.runner: unexpected argument `%s`\n", argv[optind]);
        usage (stderr);
        return 2;
    }

    err_clear (&e);
    path = conf_find (config, &e);
    if (!path && e.code) {
        fprintf (stderr, "hakuriver.runner: %s\n", e.text);
        return 1;
    }
    if (conf_load (&r->conf, path, &e) < 0) {
        fprintf (stderr, "hakuriver.runner: %s\n", e.text);
        free (path);
        conf_free (&r->conf);
        return 1;
    }
    free (path);

    enum log_level level = LOG_LEVEL_INFO;
    if (r->conf.log_level && log_level_parse (r->conf.log_level, &level) < 0)
        fprintf (stderr, "hakuriver.runner: unknown [log] level `%s`, using info\n",
                 r->conf.log_level);
    log_init ("hakuriver.runner", level);
    if (r->conf.runner_log_file && *r->conf.runner_log_file
        && log_open_file (r->conf.runner_log_file) < 0) {
        fprintf (stderr, "hakuriver.runner: cannot open log file `%s`: %s\n",
                 r->conf.runner_log_file, strerror (errno));
        goto out;
    }

    if (hostname) {
        snprintf (r->hostname, sizeof r->hostname, "%s", hostname);
    } else if (gethostname (r->hostname, sizeof r->hostname) < 0) {
        log_err ("gethostname: %s", strerror (errno));
        goto out;
    }
    if (!valid_hostname (r->hostname)) {
        char buf[300];
        log_err ("invalid hostname `%s`: use letters, digits, '.', '-', '_' (see --hostname)",
                 log_escape (r->hostname, buf, sizeof buf));
        goto out;
    }

    const char *sd = state_dir              ? state_dir
                     : r->conf.runner_state_dir && *r->conf.runner_state_dir
                         ? r->conf.runner_state_dir
                         : r->conf.local_temp_dir;
    r->state_dir = xstrdup (sd);
    r->shared_data_dir = xasprintf ("%s/%s", r->conf.shared_dir, DIR_SHARED_DATA);
    if (mkdir_p (r->conf.local_temp_dir, 0755) < 0) {
        log_err ("create local_temp_dir `%s`: %s", r->conf.local_temp_dir, strerror (errno));
        goto out;
    }
    if (mkdir_p (r->state_dir, 0700) < 0) {
        log_err ("create state dir `%s`: %s", r->state_dir, strerror (errno));
        goto out;
    }
    if (mkdir_p (r->shared_data_dir, 0755) < 0) {
        log_err ("create `%s`: %s", r->shared_data_dir, strerror (errno));
        goto out;
    }
    if (state_node_id (r->state_dir, r->node_id, &e) < 0) {
        log_err ("%s", e.text);
        goto out;
    }
    char *db = xasprintf ("%s/runner-state.db", r->state_dir);
    r->state = state_open (db, &e);
    free (db);
    if (!r->state) {
        log_err ("%s", e.text);
        goto out;
    }
    int64_t ack = 0;
    if (state_meta_get_int (r->state, "ack", &ack, &e) < 0) {
        log_err ("%s", e.text);
        goto out;
    }
    r->ack = ack;

    /* Signals become loop events. Blocked here, so the executor must unblock them in
     * the children it forks. */
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    sigaddset (&mask, SIGCHLD);
    signal (SIGPIPE, SIG_IGN);
    if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0
        || (sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_err ("signalfd: %s", strerror (errno));
        goto out;
    }

    r->ex = exec_native_create (r->state_dir, "/sys/fs/cgroup", &e);
    if (!r->ex) {
        log_err ("executor: %s", e.text);
        goto out;
    }
    struct exec_docker_conf dc = {
        .state_dir = r->state_dir,
        .socket = r->conf.docker_socket,
        .node_id = r->node_id,
        .hostname = r->hostname,
        .pull_timeout = r->conf.pull_timeout,
    };
    dc.tar_dir = xasprintf ("%s/%s", r->conf.shared_dir, r->conf.container_dir);
    r->docker = exec_docker_create (&dc, &e);
    free (dc.tar_dir);
    if (!r->docker) {
        log_err ("Docker executor: %s", e.text);
        goto out;
    }
    /* Shims are forked by a small helper from now on (spawner.h): both executors have
     * registered their shim handlers, and the runner has not grown yet. */
    if (spawner_start (log_file_fd (), &e) < 0) {
        log_warn ("cannot start the shim spawner (%s); forking shims from the runner", e.text);
        err_clear (&e);
    }
    if (exec_docker_ping (r->docker, &e) < 0)
        log_warn ("Docker tasks will fail until the engine answers: %s", e.text);

    const char *addr = r->conf.host_reachable_address;
    bool v6 = strchr (addr, ':') && addr[0] != '[';
    r->host_url = xasprintf ("http://%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "",
                             r->conf.host_port);
    const char *token = r->conf.join_token && *r->conf.join_token ? r->conf.join_token
                                                                  : r->conf.api_token;
    r->ch = channel_create (r->host_url, token, &e);
    if (!r->ch) {
        log_err ("%s", e.text);
        goto out;
    }
    r->poll_req = channel_req_create (r->ch, "poll", poll_done_cb, r);
    r->update_req = channel_req_create (r->ch, "update", update_done_cb, r);
    r->hb_req = channel_req_create (r->ch, "heartbeat", heartbeat_done_cb, r);
    r->reg_req = channel_req_create (r->ch, "register", register_done_cb, r);
    if (!r->poll_req || !r->update_req || !r->hb_req || !r->reg_req) {
        log_err ("cannot create HTTP handles");
        goto out;
    }
    r->update_batch_max = UPDATE_BATCH_MAX;
    r->phase = RUNNER_FLUSH;
    if (sysinfo_read_stat (NULL, &r->cpu_prev, NULL) == 0)
        r->have_cpu_prev = true;

    log_info ("runner %s (node_id %s) starting: host %s, executors %s+%s, state %s, shared %s, "
              "auth %s, %d cores", r->hostname, r->node_id, r->host_url, r->ex->ops->name,
              r->docker->ops->name,
              r->state_dir, r->conf.shared_dir, token && *token ? "on" : "off",
              sysinfo_cpu_count ());

    supervise_adopt_all (r);
    supervise_sweep_containers (r);
    int64_t pending = state_outbox_count (r->state, NULL);
    if (pending > 0)
        log_info ("outbox: %" PRId64 " update(s) to deliver before registering", pending);

    int loop_rc = run_loop (r, sigfd);
    terminal_shutdown (); /* open terminal sessions end before the process does */
    if (loop_rc < 0)
        goto out;
    log_info ("stopped; %d task(s) left running", r->ntasks);
    rc = 0;
out:
    if (sigfd >= 0)
        close (sigfd);
    spawner_stop ();
    runner_free (r);
    return rc;
}
