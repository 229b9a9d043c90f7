/* api_task_terminal.c - task connect: a WebSocket terminal into the container of a running
 * Docker task (or VPS), relayed through the task's runner (docs/terminal.md).
 *
 * The host never connects to a runner. The user's GET /task/ID/terminal is upgraded at once
 * and a "term" command with a fresh session id goes down the node's long-poll; the runner
 * opens the shell and dials back GET /runner/terminal/SESSION, which is upgraded too. One
 * thread per session owns the user's socket from the start, takes the runner's socket when
 * it arrives and relays the terminal messages both ways (both peers are WebSocket clients:
 * their frames arrive masked, ours leave unmasked). Input typed before the runner arrives
 * waits in the buffer; a runner that does not come within ATTACH_TIMEOUT_MS gets the user an
 * error message and a close 1011.
 *
 * The loop thread validates, queues the command and hands sockets over; the sessions list
 * is shared with the relay threads, hence SESSIONS_LOCK. A session lives until its thread
 * and every upgrade that points at it are done (REFS). */
#include "host/api.h"
#include "host/api_terminal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/websocket.h"
#include "common/xalloc.h"

#define ATTACH_TIMEOUT_MS 15000 /* the runner polls continuously: it normally dials back in
                                   well under a second; a stopped or old runner never does */
#define TO_PEER_MAX (256u << 10) /* stop reading one side while this much waits for the other */
#define CLOSE_WAIT_MS 2000      /* once our close frame left, how long a peer gets to answer */
#define STOP_WAIT_MS 1000       /* the host is stopping: the most a session may still take */
#define ABORT_WAIT_MS 5000      /* after a close or a protocol error: the most the queued
                                   frames may take to leave */
#define MAX_SESSIONS 256        /* open or waiting: bounds what clients can make us hold */
#define SESSION_HEX 32          /* 128 random bits */

/* One upgraded peer of a session. */
struct side {
    int fd;                      /* the socket (owned by http.c), -1 before the runner came */
    struct ws_reader rd;
    struct ws_buf out;           /* frames for this peer */
    bool close_sent, close_got;
    bool gone;                   /* EOF or a socket error */
    int64_t close_deadline;      /* ms, once our close frame has left; 0 before */
};

struct tsess {
    char id[SESSION_HEX + 1];
    uint64_t task_id;
    int attempt;
    char *node;                  /* hostname of the task's node: the only runner allowed in */
    /* under sessions_lock */
    int refs;                    /* the client side (upgrade, then thread) + a runner upgrade */
    bool claimed;                /* a runner request got the upgrade */
    bool closed;                 /* no runner socket is taken any more (out of the list) */
    struct http_upgrade *rup;    /* the runner's socket, handed over to the thread */
    int rsock;
    struct ws_buf rearly;
    struct tsess *next;
    /* client side: set on the loop thread before the thread starts */
    struct http_upgrade *cup;
    int csock;
    struct ws_buf cearly;
    int notify_fd;               /* eventfd: the runner's socket was handed over */
    int stop_fd;                 /* eventfd: the host is stopping */
};

static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tsess *sessions;
static int nsessions;

static int64_t mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tsess_free (struct tsess *s)
{
    int saved = errno;
    if (s->notify_fd >= 0)
        close (s->notify_fd);
    if (s->stop_fd >= 0)
        close (s->stop_fd);
    ws_buf_free (&s->rearly);
    ws_buf_free (&s->cearly);
    free (s->node);
    free (s);
    errno = saved;
}

static void tsess_decref (struct tsess *s)
{
    pthread_mutex_lock (&sessions_lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock (&sessions_lock);
    if (last)
        tsess_free (s);
}

/* Takes S out of the list so that no runner can attach any more. Returns the runner's
 * upgrade if one was handed over and not taken yet (with *SOCK), else NULL. */
static struct http_upgrade *close_door (struct tsess *s, int *sock)
{
    pthread_mutex_lock (&sessions_lock);
    if (!s->closed) {
        s->closed = true;
        for (struct tsess **p = &sessions; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                nsessions--;
                break;
            }
    }
    struct http_upgrade *u = s->rup;
    *sock = s->rsock;
    s->rup = NULL;
    pthread_mutex_unlock (&sessions_lock);
    return u;
}

/* ---- relay thread --------------------------------------------------------------------------- */

struct relay {
    struct tsess *s;
    struct side c, r;            /* the user's client, the runner */
    struct http_upgrade *rup;    /* the runner's upgrade once taken */
    int64_t attach_deadline;     /* ms; 0 once the runner came or the door closed */
    int64_t hard_deadline;       /* ms, when the session ends whatever is pending; 0 = none */
    const char *why;             /* how it ended, for the log */
};

static void side_close (struct side *x, int code, const char *reason)
{
    if (x->close_sent || x->gone)
        return;
    ws_close_append (&x->out, code, reason, false);
    x->close_sent = true;
}

static void side_error (struct side *x, const char *msg)
{
    if (x->close_sent || x->gone)
        return;
    json_t *j = json_pack ("{s:s,s:s}", "type", "error", "data", msg);
    char *txt = json_dumps (j, JSON_COMPACT);
    if (txt)
        ws_frame_append (&x->out, WS_OP_TEXT, true, txt, strlen (txt), false);
    free (txt);
    json_decref (j);
}

/* Whether X needs nothing more: gone, or closed both ways (or its answer is overdue) with
 * everything sent. */
static bool side_done (const struct side *x, int64_t now)
{
    if (x->gone)
        return true;
    return x->close_sent && x->out.len == 0
           && (x->close_got || (x->close_deadline && now >= x->close_deadline));
}

static void abort_soon (struct relay *rl)
{
    int64_t t = mono_ms () + ABORT_WAIT_MS;
    if (!rl->hard_deadline || t < rl->hard_deadline)
        rl->hard_deadline = t;
}

/* Parses what FROM sent and forwards its text messages to TO. FROM_CLIENT tells the peers
 * apart for the close handling and the messages. */
static void side_input (struct relay *rl, struct side *from, struct side *to, bool from_client)
{
    struct ws_msg m;
    int cc, rc;
    struct err e = { 0 };
    char msg[700];
    while ((rc = ws_reader_next (&from->rd, &m, &cc, &e)) == 1) {
        switch (m.opcode) {
        case WS_OP_TEXT:
            /* terminal messages pass unchanged: each end ignores what it does not know */
            if (!to->close_sent && !to->gone)
                ws_frame_append (&to->out, WS_OP_TEXT, true, m.data, m.len, false);
            break;
        case WS_OP_PING:
            if (!from->close_sent)
                ws_frame_append (&from->out, WS_OP_PONG, true, m.data, m.len, false);
            break;
        case WS_OP_CLOSE: {
            int code = m.close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : m.close_code;
            from->close_got = true;
            if (!from->close_sent && !rl->why)
                rl->why = from_client ? "closed by the client" : "closed by the runner";
            side_close (from, code, "");
            /* the other side ends too: the runner hangs the shell up on its close; the
             * client gets the runner's close after the exit message */
            if (to->fd >= 0 || from_client)
                side_close (to, from_client ? WS_CLOSE_GOING_AWAY : code, "");
            abort_soon (rl);
            return;
        }
        default:
            break; /* binary and pong messages are ignored */
        }
    }
    if (rc < 0) {
        log_info ("terminal %.8s: protocol error from the %s: %s", rl->s->id,
                  from_client ? "client" : "runner", e.text);
        if (!rl->why)
            rl->why = "protocol error";
        side_close (from, cc, e.text);
        from->close_got = true; /* the stream cannot be parsed: no answer is awaited */
        if (!from_client) {
            snprintf (msg, sizeof msg, "Protocol error from the runner of node %s: %s",
                      rl->s->node, e.text);
            side_error (to, msg);
            side_close (to, WS_CLOSE_INTERNAL, "runner protocol error");
        } else {
            side_close (to, WS_CLOSE_GOING_AWAY, "");
        }
        abort_soon (rl);
    }
}

/* Sends what is queued for X. */
static void side_flush (struct side *x)
{
    while (x->fd >= 0 && !x->gone && x->out.len) {
        ssize_t w = send (x->fd, x->out.data, x->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            x->gone = true;
            x->out.len = 0;
            return;
        }
        ws_buf_consume (&x->out, (size_t)w);
    }
    if (x->close_sent && !x->out.len && !x->close_deadline)
        x->close_deadline = mono_ms () + CLOSE_WAIT_MS;
}

/* Reads what X sent. Returns false when X is gone. */
static bool side_read (struct side *x)
{
    unsigned char buf[65536];
    ssize_t n = recv (x->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
        ws_reader_feed (&x->rd, buf, (size_t)n);
        return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        x->gone = true;
        x->out.len = 0;
        return false;
    }
    return true;
}

/* The runner's socket arrives: take it. */
static void attach (struct relay *rl, struct http_upgrade *u, int sock)
{
    struct tsess *s = rl->s;
    rl->rup = u;
    rl->r.fd = sock;
    rl->attach_deadline = 0;
    pthread_mutex_lock (&sessions_lock);
    ws_reader_feed (&rl->r.rd, s->rearly.data, s->rearly.len);
    pthread_mutex_unlock (&sessions_lock);
    log_info ("terminal %.8s: the runner of node %s attached for task %" PRIu64, s->id,
              s->node, s->task_id);
    if (rl->c.close_sent || rl->c.gone) {
        side_close (&rl->r, WS_CLOSE_GOING_AWAY, "");
        return;
    }
    side_input (rl, &rl->r, &rl->c, false);
}

static void relay_loop (struct relay *rl)
{
    struct tsess *s = rl->s;
    char msg[600];
    for (;;) {
        int64_t now = mono_ms ();
        if (rl->hard_deadline && now >= rl->hard_deadline)
            return;
        if (side_done (&rl->c, now) && (rl->r.fd < 0 || side_done (&rl->r, now)))
            return;
        if (rl->r.fd < 0 && rl->attach_deadline && (rl->c.close_sent || rl->c.gone)) {
            /* the client left before the runner came: nobody to wait for */
            int sock;
            struct http_upgrade *u = close_door (s, &sock);
            rl->attach_deadline = 0;
            if (u)
                attach (rl, u, sock);
            continue;
        }
        if (rl->r.fd < 0 && rl->attach_deadline && now >= rl->attach_deadline) {
            int sock;
            struct http_upgrade *u = close_door (s, &sock);
            rl->attach_deadline = 0;
            if (u) {
                attach (rl, u, sock); /* just in time */
                continue;
            }
            log_warn ("terminal %.8s: the runner of node %s did not answer within %d s "
                      "(task %" PRIu64 ")", s->id, s->node, ATTACH_TIMEOUT_MS / 1000,
                      s->task_id);
            snprintf (msg, sizeof msg, "Node %s did not open the terminal within %d s: its "
                      "runner may be stopped, unable to reach the host, or too old for "
                      "terminals.", s->node, ATTACH_TIMEOUT_MS / 1000);
            side_error (&rl->c, msg);
            side_close (&rl->c, WS_CLOSE_INTERNAL, "no runner");
            rl->why = "no runner answered";
            continue;
        }
        struct pollfd p[4] = {
            { .fd = rl->c.gone ? -1 : rl->c.fd, .events = 0 },
            { .fd = rl->r.gone ? -1 : rl->r.fd, .events = 0 },
            { .fd = rl->r.fd < 0 && rl->attach_deadline ? s->notify_fd : -1, .events = POLLIN },
            { .fd = s->stop_fd, .events = POLLIN },
        };
        if (!rl->c.close_got && rl->r.out.len < TO_PEER_MAX)
            p[0].events |= POLLIN;
        if (rl->c.out.len)
            p[0].events |= POLLOUT;
        if (!rl->r.close_got && rl->c.out.len < TO_PEER_MAX)
            p[1].events |= POLLIN;
        if (rl->r.out.len)
            p[1].events |= POLLOUT;
        int64_t next = 0;
        int64_t cand[5] = { rl->attach_deadline, rl->hard_deadline, rl->c.close_deadline,
                            rl->r.fd >= 0 ? rl->r.close_deadline : 0, 0 };
        for (int i = 0; i < 4; i++)
            if (cand[i] && (!next || cand[i] < next))
                next = cand[i];
        int timeout = -1;
        if (next)
            timeout = next > now ? (int)(next - now) : 0;
        if (poll (p, 4, timeout) < 0 && errno != EINTR) {
            rl->why = "poll failed";
            return;
        }
        if (p[3].revents & POLLIN) {
            uint64_t v;
            if (read (s->stop_fd, &v, sizeof v) < 0) {
                /* drained or not, the session is closing */
            }
            if (!rl->c.close_sent && !rl->c.gone) {
                side_error (&rl->c, "The host is shutting down.");
                rl->why = "host shutting down";
            }
            side_close (&rl->c, WS_CLOSE_GOING_AWAY, "host shutting down");
            if (rl->r.fd >= 0)
                side_close (&rl->r, WS_CLOSE_GOING_AWAY, "host shutting down");
            if (!rl->hard_deadline || rl->hard_deadline > mono_ms () + STOP_WAIT_MS)
                rl->hard_deadline = mono_ms () + STOP_WAIT_MS;
            int sock;
            struct http_upgrade *u = close_door (s, &sock);
            rl->attach_deadline = 0;
            if (u)
                attach (rl, u, sock); /* only to close it */
        }
        if (p[2].revents & POLLIN) {
            uint64_t v;
            if (read (s->notify_fd, &v, sizeof v) < 0) {
                /* nothing: the socket is read under the lock below */
            }
            pthread_mutex_lock (&sessions_lock);
            struct http_upgrade *u = s->rup;
            int sock = s->rsock;
            s->rup = NULL;
            pthread_mutex_unlock (&sessions_lock);
            if (u)
                attach (rl, u, sock);
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (side_read (&rl->r))
                side_input (rl, &rl->r, &rl->c, false);
            else if (!rl->c.close_sent && !rl->c.gone) {
                snprintf (msg, sizeof msg, "The connection to the runner of node %s was lost.",
                          s->node);
                side_error (&rl->c, msg);
                side_close (&rl->c, WS_CLOSE_INTERNAL, "runner lost");
                if (!rl->why)
                    rl->why = "the runner disconnected";
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (side_read (&rl->c))
                side_input (rl, &rl->c, &rl->r, true);
            else {
                if (!rl->why)
                    rl->why = "the client disconnected";
                if (rl->r.fd >= 0)
                    side_close (&rl->r, WS_CLOSE_GOING_AWAY, "");
            }
        }
        side_flush (&rl->c);
        if (rl->r.fd >= 0)
            side_flush (&rl->r);
    }
}

static void *relay_main (void *arg)
{
    struct tsess *s = arg;
    struct relay rl = {
        .s = s,
        .c = { .fd = s->csock },
        .r = { .fd = -1 },
        .attach_deadline = mono_ms () + ATTACH_TIMEOUT_MS,
    };
    ws_reader_init (&rl.c.rd, true, WS_MAX_MESSAGE);
    ws_reader_init (&rl.r.rd, true, WS_MAX_MESSAGE);
    ws_reader_feed (&rl.c.rd, s->cearly.data, s->cearly.len);
    side_input (&rl, &rl.c, &rl.r, true);
    relay_loop (&rl);
    int sock;
    struct http_upgrade *late = close_door (s, &sock);
    if (late)
        http_upgrade_close (late); /* came after the end */
    if (rl.rup)
        http_upgrade_close (rl.rup);
    log_info ("terminal %.8s: session of task %" PRIu64 " on node %s ended: %s", s->id,
              s->task_id, s->node, rl.why ? rl.why : "ended");
    ws_reader_free (&rl.c.rd);
    ws_reader_free (&rl.r.rd);
    ws_buf_free (&rl.c.out);
    ws_buf_free (&rl.r.out);
    /* After this, http.c neither calls stop_cb nor keeps the socket. */
    http_upgrade_close (s->cup);
    tsess_decref (s);
    return NULL;
}

/* ---- loop-thread callbacks ------------------------------------------------------------------ */

static void stop_cb (void *arg)
{
    struct tsess *s = arg;
    uint64_t one = 1;
    if (write (s->stop_fd, &one, sizeof one) < 0) {
        /* an eventfd write only fails when the counter is full: a stop is pending anyway */
    }
}

static void client_free_cb (void *arg)
{
    /* the 101 could not be sent: no thread, no runner wanted */
    struct tsess *s = arg;
    int sock;
    struct http_upgrade *u = close_door (s, &sock);
    if (u)
        http_upgrade_close (u);
    tsess_decref (s);
}

static void client_upgrade_cb (void *arg, struct http_upgrade *u, int sock, const char *extra,
                               size_t extra_len)
{
    struct tsess *s = arg;
    s->cup = u;
    s->csock = sock;
    ws_buf_add (&s->cearly, extra, extra_len);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&t, &attr, relay_main, s);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        log_err ("terminal %.8s: cannot start the session thread: %s", s->id, strerror (rc));
        http_upgrade_close (u);
        client_free_cb (s);
    }
}

static void runner_free_cb (void *arg)
{
    tsess_decref (arg); /* the runner's 101 could not be sent */
}

static void runner_upgrade_cb (void *arg, struct http_upgrade *u, int sock, const char *extra,
                               size_t extra_len)
{
    struct tsess *s = arg;
    pthread_mutex_lock (&sessions_lock);
    bool closed = s->closed;
    if (!closed) {
        s->rup = u;
        s->rsock = sock;
        ws_buf_add (&s->rearly, extra, extra_len);
    }
    pthread_mutex_unlock (&sessions_lock);
    if (closed) {
        http_upgrade_close (u); /* the session ended meanwhile */
    } else {
        uint64_t one = 1;
        if (write (s->notify_fd, &one, sizeof one) < 0) {
            /* only fails when the counter is full: a wake-up is pending anyway */
        }
    }
    tsess_decref (s);
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* Reads optional query parameter NAME (1..65535). Returns 0 with *OUT (0 when absent) or -1. */
static int query_size (struct http_req *req, const char *name, int *out)
{
    const char *v = http_query (req, name);
    *out = 0;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol (v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > 65535)
        return -1;
    *out = (int)n;
    return 0;
}

void api_task_terminal (struct host *h, struct http_req *req, const char *idtext)
{
    int status = 400;
    char detail[600];
    bool owned = false;
    struct task *t = NULL;
    char accept[29];
    int rows, cols;
    if ((status = api_ws_check (req, "hakuriver.task connect, hakuriver.vps connect", accept,
                                detail, sizeof detail)) != 0)
        goto error;
    status = 400;
    if (query_size (req, "rows", &rows) < 0 || query_size (req, "cols", &cols) < 0) {
        snprintf (detail, sizeof detail, "Invalid rows or cols: integers from 1 to 65535 are "
                  "expected");
        goto error;
    }
    t = api_load_task (h, req, idtext, &owned);
    if (!t)
        return; /* replied 400/404/500 */
    status = 409;
    if (t->status != TASK_RUNNING) {
        snprintf (detail, sizeof detail, "Task %" PRIu64 " is not running (status: %s).",
                  t->id, task_status_name (t->status));
        goto error;
    }
    /* no container_name = the default environment (as task_info_json sends it) */
    const char *cont = t->container ? t->container : h->conf->default_container_name;
    if (!cont || strcmp (cont, CONTAINER_NULL) == 0) {
        snprintf (detail, sizeof detail, "Task %" PRIu64 " runs natively (container NULL): it "
                  "has no container to open a shell in.", t->id);
        goto error;
    }
    struct node *n = t->node ? node_find (h, t->node) : NULL;
    if (!n || !n->online) {
        snprintf (detail, sizeof detail, "Node %s of task %" PRIu64 " is offline.",
                  t->node ? t->node : "(none)", t->id);
        goto error;
    }
    unsigned char rnd[SESSION_HEX / 2];
    if (getrandom (rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        status = 500;
        snprintf (detail, sizeof detail, "Cannot make a session id: %s", strerror (errno));
        goto error;
    }
    struct tsess *s = xcalloc (1, sizeof *s);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf (s->id + 2 * i, 3, "%02x", rnd[i]);
    s->task_id = t->id;
    s->attempt = t->attempt;
    s->node = xstrdup (n->hostname);
    s->csock = s->rsock = -1;
    s->refs = 1;
    s->notify_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->notify_fd < 0 || s->stop_fd < 0) {
        status = 500;
        snprintf (detail, sizeof detail, "Cannot create an eventfd: %s", strerror (errno));
        tsess_free (s);
        goto error;
    }
    pthread_mutex_lock (&sessions_lock);
    bool full = nsessions >= MAX_SESSIONS;
    if (!full) {
        s->next = sessions;
        sessions = s;
        nsessions++;
    }
    pthread_mutex_unlock (&sessions_lock);
    if (full) {
        status = 503;
        snprintf (detail, sizeof detail, "Too many terminal sessions (%d) are open on this host.",
                  MAX_SESSIONS);
        tsess_free (s);
        goto error;
    }
    json_t *cmd = json_pack ("{s:I,s:i,s:s}", "task_id", (json_int_t)t->id, "attempt",
                             t->attempt, "session", s->id);
    if (rows && cols) {
        json_object_set_new (cmd, "rows", json_integer (rows));
        json_object_set_new (cmd, "cols", json_integer (cols));
    }
    node_cmd_push (h, n, "term", t->id, cmd);
    log_info ("terminal %.8s: task %" PRIu64 ": asked node %s to open a shell", s->id, t->id,
              n->hostname);
    http_reply_header (req, "Sec-WebSocket-Accept", accept);
    http_reply_upgrade (req, "websocket", client_upgrade_cb, stop_cb, client_free_cb, s);
    if (owned)
        task_destroy (t);
    return;
error:
    if (owned)
        task_destroy (t);
    http_reply_error (req, status, "%s", detail);
}

void api_runner_terminal (struct host *h, struct http_req *req, const char *session)
{
    int status;
    char detail[600], esc[80];
    char accept[29];
    if ((status = api_ws_check (req, "the runner's end of a task terminal", accept, detail,
                                sizeof detail)) != 0)
        goto error;
    const char *hostname = http_query (req, "hostname");
    const char *node_id = http_query (req, "node_id");
    struct node *n = hostname ? node_find (h, hostname) : NULL;
    if (!n || !node_id || strcmp (n->node_id, node_id) != 0) {
        status = 403;
        snprintf (detail, sizeof detail, "Unknown runner '%s': send the hostname and node_id "
                  "this runner registered with", log_escape (hostname ? hostname : "", esc,
                                                             sizeof esc));
        goto error;
    }
    pthread_mutex_lock (&sessions_lock);
    struct tsess *s = sessions;
    while (s && strcmp (s->id, session) != 0)
        s = s->next;
    if (!s) {
        status = 404;
        /* the id is a capability: only its start goes into the log */
        snprintf (detail, sizeof detail, "Terminal session '%.8s...' not found: it ended or "
                  "the user gave up waiting", log_escape (session, esc, sizeof esc));
    } else if (strcmp (s->node, n->hostname) != 0) {
        status = 403;
        snprintf (detail, sizeof detail, "Terminal session '%.8s...' is not for node %s",
                  s->id, n->hostname);
    } else if (s->claimed) {
        status = 409;
        snprintf (detail, sizeof detail, "Terminal session '%.8s...' already has its runner",
                  s->id);
    } else {
        s->claimed = true;
        s->refs++;
    }
    pthread_mutex_unlock (&sessions_lock);
    if (status)
        goto error;
    http_reply_header (req, "Sec-WebSocket-Accept", accept);
    http_reply_upgrade (req, "websocket", runner_upgrade_cb, stop_cb, runner_free_cb, s);
    return;
error:
    {
        const char *who = http_query (req, "hostname");
        log_info ("terminal: refused a runner (%s): %s",
                  log_escape (who ? who : "no hostname", esc, sizeof esc), detail);
    }
    http_reply_error (req, status, "%s", detail);
}
