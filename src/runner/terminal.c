/* terminal.c - task connect on the runner: on a "term" command, a detached thread dials the
 * host's GET /runner/terminal/<session> WebSocket (the host never connects to runners) and
 * relays a shell in the task's container (a Docker exec with a TTY, common/docker_exec.c).
 *
 * The loop thread only checks the command against the supervised tasks and copies what the
 * thread needs; the thread never touches the runner's state. A task that does not qualify
 * (not here, native, not started, paused) still gets a dial-back that carries the reason as
 * an error message, so that the user learns it at once rather than after the host's
 * timeout. The host is dialled before anything is created in the container: a session the
 * host no longer knows costs nothing. */
#include "runner/terminal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/docker_api.h"
#include "common/docker_exec.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/websocket.h"
#include "common/ws_client.h"
#include "common/xalloc.h"
#include "runner/runner.h"

#define SESSION_HEX 32          /* the host's session ids: 128 random bits in hex */
#define SEEN_MAX 64             /* session ids remembered against a repeated command */
#define MAX_OPEN 64             /* sessions at once on this runner */
#define CONNECT_TIMEOUT_MS 5000
#define HANDSHAKE_TIMEOUT_MS 10000
#define SHUTDOWN_WAIT_S 3       /* the stop makes a session end within ~2 s (hang-up 1 s) */

/* One session: everything its thread needs, copied. */
struct term {
    char session[SESSION_HEX + 1];
    uint64_t task_id;
    int attempt;
    char *container;             /* NULL when refused */
    char *refusal;               /* the message for the user when refused */
    char *addr;                  /* the host */
    int port;
    char *token;                 /* join token (wiped on free) */
    char *hostname, *node_id;
    char *socket;                /* [docker] socket, "" = default */
    int rows, cols;
    int stop_fd;                 /* eventfd: the runner is stopping */
    struct term *next;
};

static pthread_mutex_t terms_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t terms_cond = PTHREAD_COND_INITIALIZER;
static struct term *terms;       /* open sessions */
static int nterms;
static bool stopping;

/* Session ids seen lately (loop thread only). */
static char seen[SEEN_MAX][SESSION_HEX + 1];
static unsigned nseen;

static void term_free (struct term *t)
{
    if (!t)
        return;
    if (t->token) {
        explicit_bzero (t->token, strlen (t->token));
        free (t->token);
    }
    if (t->stop_fd >= 0)
        close (t->stop_fd);
    free (t->container);
    free (t->refusal);
    free (t->addr);
    free (t->hostname);
    free (t->node_id);
    free (t->socket);
    free (t);
}

static void term_unregister (struct term *t)
{
    pthread_mutex_lock (&terms_lock);
    for (struct term **p = &terms; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            nterms--;
            break;
        }
    pthread_cond_broadcast (&terms_cond);
    pthread_mutex_unlock (&terms_lock);
}

/* Dials the host. Returns the WebSocket's socket, or -1 after logging why. */
static int dial (struct term *t, struct ws_buf *early)
{
    struct err e = { 0 };
    char hostport[300];
    ws_client_hostport (t->addr, t->port, hostport, sizeof hostport);
    int fd = ws_client_connect (t->addr, t->port, CONNECT_TIMEOUT_MS, &e);
    if (fd < 0) {
        log_warn ("terminal %.8s (task %" PRIu64 "): cannot reach the host at %s: %s",
                  t->session, t->task_id, hostport, e.text);
        return -1;
    }
    /* hostname and node_id are [A-Za-z0-9._-] and hex: nothing to escape */
    char *path = xasprintf (PATH_RUNNER_TERMINAL "%s?hostname=%s&node_id=%s", t->session,
                            t->hostname, t->node_id);
    struct ws_client_refusal ref = { 0 };
    int rc = ws_client_handshake (fd, hostport, path, t->token, "hakuriver.runner",
                                  HANDSHAKE_TIMEOUT_MS, early, &ref, &e);
    free (path);
    if (rc < 0) {
        char detail[300];
        json_t *j = ref.body ? json_loadb (ref.body, ref.len, 0, NULL) : NULL;
        const char *d = json_string_value (json_object_get (j, "detail"));
        log_escape (d ? d : ref.body ? ref.body : "", detail, sizeof detail);
        json_decref (j);
        if (ref.status)
            log_warn ("terminal %.8s (task %" PRIu64 "): the host refused it (%d): %s",
                      t->session, t->task_id, ref.status, detail);
        else
            log_warn ("terminal %.8s (task %" PRIu64 "): %s", t->session, t->task_id, e.text);
        ws_client_refusal_free (&ref);
        close (fd);
        return -1;
    }
    return fd;
}

static void *term_main (void *arg)
{
    struct term *t = arg;
    struct ws_buf early = { 0 };
    struct docker *d = NULL;
    char *exec_id = NULL;
    struct err e = { 0 };
    int fd = dial (t, &early);
    if (fd < 0)
        goto out;
    if (t->refusal) {
        docker_exec_send_error (fd, false, early.data, early.len, t->refusal,
                                WS_CLOSE_INTERNAL);
        log_info ("terminal %.8s: refused for task %" PRIu64 ": %s", t->session, t->task_id,
                  t->refusal);
        goto out;
    }
    d = docker_open (t->socket, &e);
    const char *shell = NULL;
    if (d)
        exec_id = docker_exec_create (d, t->container, &shell, &e);
    if (!exec_id) {
        char msg[700];
        snprintf (msg, sizeof msg, "%s%s", d ? "" : "Docker connection error: ", e.text);
        docker_exec_send_error (fd, false, early.data, early.len, msg, WS_CLOSE_INTERNAL);
        log_warn ("terminal %.8s: task %" PRIu64 ": %s", t->session, t->task_id, msg);
        goto out;
    }
    log_info ("terminal %.8s: opening %s in %s (task %" PRIu64 ".%d, exec %.12s)", t->session,
              shell, t->container, t->task_id, t->attempt, exec_id);
    char stop_msg[300], gone_msg[300];
    snprintf (stop_msg, sizeof stop_msg, "The runner of node %s is shutting down.",
              t->hostname);
    snprintf (gone_msg, sizeof gone_msg, "Task %" PRIu64 " ended: its container %s stopped.",
              t->task_id, t->container);
    struct docker_exec_relay x = {
        .d = d,
        .container = t->container,
        .exec_id = exec_id,
        .ws = fd,
        .server = false,
        .early = early.data,
        .early_len = early.len,
        .stop_fd = t->stop_fd,
        .stop_message = stop_msg,
        .gone_message = gone_msg,
        .rows = t->rows,
        .cols = t->cols,
    };
    if (docker_exec_relay (&x) < 0)
        log_err ("terminal %.8s: cannot start the shell in %s: %s", t->session, t->container,
                 x.err.text);
    else if (x.err.text[0])
        log_warn ("terminal %.8s: %s", t->session, x.err.text);
    if (x.exit_code >= 0)
        log_info ("terminal %.8s: shell in %s ended: %s (exit %d)", t->session, t->container,
                  x.why, x.exit_code);
    else
        log_info ("terminal %.8s: shell in %s ended: %s", t->session, t->container, x.why);
out:
    if (fd >= 0)
        close (fd);
    free (exec_id);
    docker_close (d);
    ws_buf_free (&early);
    term_unregister (t);
    term_free (t);
    return NULL;
}

/* Reads a positive integer or decimal-string task id. Returns 0 or -1. */
static int read_id (json_t *v, uint64_t *out)
{
    if (json_is_integer (v) && json_integer_value (v) > 0) {
        *out = (uint64_t)json_integer_value (v);
        return 0;
    }
    const char *s = json_string_value (v);
    if (!s || !*s || strspn (s, "0123456789") != strlen (s) || strlen (s) > 19)
        return -1;
    errno = 0;
    unsigned long long x = strtoull (s, NULL, 10);
    if (errno || x == 0 || x > INT64_MAX)
        return -1;
    *out = x;
    return 0;
}

static int size_value (json_t *v)
{
    json_int_t n = json_is_integer (v) ? json_integer_value (v) : 0;
    return n >= 1 && n <= 65535 ? (int)n : 0;
}

void terminal_command (struct runner *r, json_t *cmd)
{
    const char *session = json_string_value (json_object_get (cmd, "session"));
    json_t *ja = json_object_get (cmd, "attempt");
    uint64_t id;
    if (!session || strlen (session) != SESSION_HEX
        || strspn (session, "0123456789abcdef") != SESSION_HEX
        || read_id (json_object_get (cmd, "task_id"), &id) < 0 || !json_is_integer (ja)) {
        log_err ("ignoring a term command without a valid session, task_id and attempt");
        return;
    }
    int attempt = (int)json_integer_value (ja);
    for (unsigned i = 0; i < nseen && i < SEEN_MAX; i++)
        if (strcmp (seen[i], session) == 0) {
            log_debug ("terminal %.8s: command already handled, ignored", session);
            return;
        }
    memcpy (seen[nseen++ % SEEN_MAX], session, SESSION_HEX + 1);

    struct term *t = xcalloc (1, sizeof *t);
    memcpy (t->session, session, SESSION_HEX + 1);
    t->task_id = id;
    t->attempt = attempt;
    t->rows = size_value (json_object_get (cmd, "rows"));
    t->cols = size_value (json_object_get (cmd, "cols"));
    t->addr = xstrdup (r->conf.host_reachable_address);
    t->port = r->conf.host_port;
    const char *token = r->conf.join_token && *r->conf.join_token ? r->conf.join_token
                                                                  : r->conf.api_token;
    t->token = xstrdup (token ? token : "");
    t->hostname = xstrdup (r->hostname);
    t->node_id = xstrdup (r->node_id);
    t->socket = xstrdup (r->conf.docker_socket ? r->conf.docker_socket : "");
    t->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);

    struct rtask *rt = supervise_find (r, id, attempt);
    if (!rt) {
        struct rtask *other = supervise_find (r, id, -1);
        if (other)
            t->refusal = xasprintf ("Node %s runs attempt %d of task %" PRIu64 ", not attempt "
                                    "%d.", r->hostname, other->et.attempt, id, attempt);
        else
            t->refusal = xasprintf ("Task %" PRIu64 " is not running on node %s.", id,
                                    r->hostname);
    } else if (rt->ex == r->ex) {
        t->refusal = xasprintf ("Task %" PRIu64 " runs natively: it has no container.", id);
    } else if (rt->pending_spec || !rt->et.cgroup[0] || rt->et.start_fd >= 0) {
        t->refusal = xasprintf ("Task %" PRIu64 " has not started its container yet.", id);
    } else if (strcmp (rt->status, STATE_PAUSED) == 0) {
        t->refusal = xasprintf ("Task %" PRIu64 " is paused: resume it first.", id);
    } else if (strcmp (rt->status, STATE_KILLING) == 0) {
        t->refusal = xasprintf ("Task %" PRIu64 " is being killed.", id);
    } else {
        t->container = xstrdup (rt->et.cgroup);
    }

    pthread_mutex_lock (&terms_lock);
    bool refuse = stopping || nterms >= MAX_OPEN || t->stop_fd < 0;
    if (!refuse) {
        t->next = terms;
        terms = t;
        nterms++;
    }
    pthread_mutex_unlock (&terms_lock);
    if (refuse) {
        log_warn ("terminal %.8s: task %" PRIu64 ": refused: %s", session, id,
                  t->stop_fd < 0 ? strerror (errno) : "too many terminal sessions");
        term_free (t);
        return;
    }
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&th, &attr, term_main, t);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        log_err ("terminal %.8s: cannot start a thread: %s", session, strerror (rc));
        term_unregister (t);
        term_free (t);
        return;
    }
    log_debug ("terminal %.8s: task %" PRIu64 ".%d: dialling the host", session, id, attempt);
}

void terminal_shutdown (void)
{
    pthread_mutex_lock (&terms_lock);
    stopping = true;
    int n = nterms;
    for (struct term *t = terms; t; t = t->next) {
        uint64_t one = 1;
        if (write (t->stop_fd, &one, sizeof one) < 0) {
            /* only fails when the counter is full: a stop is pending anyway */
        }
    }
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_WAIT_S;
    while (nterms > 0)
        if (pthread_cond_timedwait (&terms_cond, &terms_lock, &until) == ETIMEDOUT)
            break;
    int left = nterms;
    pthread_mutex_unlock (&terms_lock);
    if (n)
        log_info ("terminal: %d session(s) closed for the stop%s", n,
                  left ? "; some did not end in time" : "");
}
