/* ssh_proxy.c - TCP proxy from clients to VPS tasks' SSH ports: an acceptor thread, one thread
 * per session, task lookups answered by the loop thread through an eventfd.
 *
 * A session: read "AUTH <token>\n" (optional unless a token is configured) and
 * "REQUEST_TUNNEL <id>\n" within the handshake timeout, never reading past that line (the
 * SSH client's banner that follows stays in the socket for the relay); ask the loop where
 * the task is; connect to the runner; answer "SUCCESS\n"; relay_run until both directions
 * end. Failures answer "ERROR <reason>\n" (docs/ssh-proxy.md has the list).
 *
 * Lifetime: every session thread is joinable. A finished session marks itself and writes
 * reap_fd; the acceptor joins and frees it. ssh_proxy_stop sets `stopping`, writes stop_fd
 * (never read, so it stays readable for every poll and relay that watches it), joins the
 * acceptor and then every session left. */
#include "host/ssh_proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/relay.h"
#include "common/xalloc.h"

#define LINE_MAX_BYTES 512        /* one handshake line, without its '\n' */
#define TASK_ID_MAX_DIGITS 20     /* 2^64 has 20 digits */
#define HANDSHAKE_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 15000
#define MAX_SESSIONS 1024
#define LISTEN_BACKLOG 128
#define ACCEPT_BATCH 64           /* accepts per wake-up before reaping and checking stop */
#define ACCEPT_BACKOFF_MS 100     /* out of descriptors (EMFILE): wait before accepting again */
#define LINGER_MS 500             /* after an ERROR line: how long unread client bytes are
                                     drained so that close() sends FIN, not RST (an RST can
                                     destroy the ERROR line before the client reads it) */
#define LINGER_BYTES (64u << 10)
#define SESSION_STACK (512u << 10) /* sessions use little stack; 1024 x 8 MiB of address
                                      space would be wasteful */

#define R_SHUTDOWN "Server is shutting down."
#define R_INTERNAL "Internal server error."

struct lookup {
    char task_id[TASK_ID_MAX_DIGITS + 1];
    struct ssh_proxy_target target;
    bool done;
    struct lookup *next;
};

struct session {
    struct ssh_proxy *p;
    int fd;                  /* the client; the session thread closes it */
    char peer[80];           /* "1.2.3.4:5678" / "[::1]:5678", for logs */
    struct timespec started; /* accept time: the handshake deadline counts from it */
    pthread_t thread;
    bool finished;           /* under p->lock: the thread is about to exit, join it */
    struct session *next;
};

struct ssh_proxy {
    int listen_fd;
    int port;
    int lookup_fd;           /* eventfd: lookups wait (the loop watches it) */
    int stop_fd;             /* eventfd: written once by ssh_proxy_stop, never read */
    int reap_fd;             /* eventfd: a session finished (the acceptor joins it) */
    char *token;             /* NULL = no authentication */
    size_t token_len;
    int handshake_ms, connect_ms, max_sessions;
    pthread_t acceptor;
    bool acceptor_running;

    pthread_mutex_t lock;    /* guards everything below */
    pthread_cond_t answered; /* a lookup was answered, or stopping was set */
    bool stopping;
    struct lookup *queue;    /* waiting lookups, oldest first */
    struct session *sessions; /* every session whose thread is not joined yet */
    int live;                /* sessions not finished */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t ms_since (const struct timespec *t0)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void kick (int efd)
{
    uint64_t one = 1;
    /* fails only when the counter is saturated: the reader is woken anyway */
    if (write (efd, &one, sizeof one) < 0) {
    }
}

static void drain (int efd)
{
    uint64_t v;
    if (read (efd, &v, sizeof v) < 0) {
        /* EAGAIN: nothing pending (a spurious call) */
    }
}

static void peer_name (int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN], serv[8];
    if (getpeername (fd, (struct sockaddr *)&ss, &sl) < 0 ||
        getnameinfo ((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf (out, n, "unknown peer");
        return;
    }
    snprintf (out, n, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* Sends LINE without blocking and without SIGPIPE; a client that does not read its 30-byte
 * answer loses it. */
static void send_line (int fd, const char *line)
{
    if (send (fd, line, strlen (line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
    }
}

/* Sends "ERROR <reason>\n" (control characters in REASON become spaces: it must stay one
 * line), then closes gracefully: shut down our side and discard what the client still
 * sends for up to WAIT_MS, so that the close sends FIN rather than RST. */
static void reply_error (int fd, const char *reason, int wait_ms, int stop_fd)
{
    char line[320];
    snprintf (line, sizeof line - 1, PROXY_ERROR "%s", reason); /* room left for the '\n' */
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    strcat (line, "\n");
    send_line (fd, line);
    shutdown (fd, SHUT_WR);
    struct timespec t0;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    size_t total = 0;
    char buf[4096];
    for (;;) {
        ssize_t r = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            total += (size_t)r;
            if (total > LINGER_BYTES)
                break;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
        int64_t left = wait_ms - ms_since (&t0);
        if (left <= 0)
            break;
        struct pollfd pf[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
        if (poll (pf, 2, (int)left) <= 0 || pf[1].revents)
            break;
    }
    close (fd);
}

/* Strips whitespace (spaces, tabs, '\r') at both ends, in place. Returns the start. */
static char *strip (char *s)
{
    while (isspace ((unsigned char)*s))
        s++;
    size_t n = strlen (s);
    while (n > 0 && isspace ((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Constant-time comparison: the time depends only on the configured token's length. */
static bool token_equal (const char *given, size_t glen, const char *want, size_t wlen)
{
    volatile unsigned char diff = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)(want[i] ^ given[glen ? i % glen : 0]);
    return diff == 0;
}

/* ---- handshake ---------------------------------------------------------------------------- */

enum line_rc {
    LINE_OK,      /* a line ended by '\n' */
    LINE_EOF,     /* the client closed; LINE holds what came before (maybe nothing) */
    LINE_LONG,    /* more than LINE_MAX_BYTES without '\n' */
    LINE_TIMEOUT,
    LINE_STOP,
    LINE_ERR,     /* errno set */
};

/* Reads one line into LINE (LINE_MAX_BYTES + 2 bytes), NUL-terminated without the '\n',
 * consuming nothing after the '\n': peek, find the newline, then take exactly that much. */
static enum line_rc read_line (struct session *s, char *line, size_t *lenp)
{
    struct ssh_proxy *p = s->p;
    size_t len = 0;
    *lenp = 0;
    line[0] = '\0';
    for (;;) {
        int64_t left = p->handshake_ms - ms_since (&s->started);
        if (left <= 0)
            return LINE_TIMEOUT;
        struct pollfd pf[2] = { { .fd = s->fd, .events = POLLIN },
                                { .fd = p->stop_fd, .events = POLLIN } };
        int r = poll (pf, 2, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return LINE_ERR;
        if (pf[1].revents)
            return LINE_STOP;
        if (r == 0)
            return LINE_TIMEOUT;
        ssize_t n = recv (s->fd, line + len, LINE_MAX_BYTES + 1 - len, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return LINE_ERR;
        if (n == 0) {
            line[len] = '\0';
            *lenp = len;
            return LINE_EOF;
        }
        char *nl = memchr (line + len, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - (line + len)) + 1 : (size_t)n;
        ssize_t got = recv (s->fd, line + len, take, MSG_DONTWAIT);
        if (got != (ssize_t)take) { /* we are the only reader: cannot happen */
            errno = EIO;
            return LINE_ERR;
        }
        len += take;
        if (nl) {
            line[len - 1] = '\0';
            *lenp = len - 1;
            return LINE_OK;
        }
        if (len > LINE_MAX_BYTES) {
            line[len] = '\0';
            *lenp = len;
            return LINE_LONG;
        }
    }
}

/* Reads a line and classifies it. Returns the stripped line, or NULL with *REASON set
 * ("" = close without answering: the connection failed). *BAD is set when the line cannot
 * pass a check (longer than LINE_MAX_BYTES, or containing a NUL byte). */
static char *next_line (struct session *s, char *buf, const char **reason, bool *bad)
{
    size_t len;
    enum line_rc rc = read_line (s, buf, &len);
    switch (rc) {
    case LINE_TIMEOUT:
        *reason = "Timeout waiting for request.";
        return NULL;
    case LINE_STOP:
        *reason = R_SHUTDOWN;
        return NULL;
    case LINE_ERR:
        log_info ("ssh proxy: %s: read failed during the handshake: %s", s->peer,
                  strerror (errno));
        *reason = "";
        return NULL;
    case LINE_EOF:
        if (len == 0) { /* gone without a word (a port probe): nobody to answer */
            log_info ("ssh proxy: %s: closed before completing a request", s->peer);
            *reason = "";
            return NULL;
        }
        break; /* as 0.3's readline(): the text before EOF counts as the line */
    case LINE_OK:
    case LINE_LONG:
        break;
    }
    *bad = rc == LINE_LONG || strlen (buf) != len;
    return strip (buf);
}

static bool starts_word (const char *line, const char *word)
{
    size_t n = strlen (word);
    return strncmp (line, word, n) == 0 && (line[n] == '\0' || isspace ((unsigned char)line[n]));
}

/* The AUTH and REQUEST_TUNNEL lines. Returns 0 with ID (TASK_ID_MAX_DIGITS + 1 bytes) set,
 * or -1 with *REASON set ("" = no answer). The first failing check wins. */
static int handshake (struct session *s, char *id, const char **reason)
{
    struct ssh_proxy *p = s->p;
    char buf[LINE_MAX_BYTES + 2];
    bool bad = false;
    char *line = next_line (s, buf, reason, &bad);
    if (!line)
        return -1;
    if (starts_word (line, "AUTH")) {
        if (p->token) {
            char *tok = strip (line + 4);
            /* always compare, even a bad line: the time must not tell why it failed */
            bool match = token_equal (tok, strlen (tok), p->token, p->token_len);
            if (bad || !match) {
                *reason = "Invalid token.";
                return -1;
            }
        } else if (bad) {
            *reason = "Invalid request format.";
            return -1;
        }
        bad = false;
        line = next_line (s, buf, reason, &bad);
        if (!line)
            return -1;
    } else if (p->token) {
        *reason = "Authentication required.";
        return -1;
    }
    static const char verb[] = PROXY_REQUEST;
    if (bad || strncmp (line, verb, sizeof verb - 1) != 0) {
        *reason = "Invalid request format.";
        return -1;
    }
    char *t = strip (line + sizeof verb - 1);
    size_t n = strlen (t);
    bool digits = n > 0 && n <= TASK_ID_MAX_DIGITS;
    for (size_t i = 0; digits && i < n; i++)
        digits = t[i] >= '0' && t[i] <= '9';
    if (!digits) {
        *reason = "Invalid task ID format.";
        return -1;
    }
    while (n > 1 && *t == '0') { /* "007" is task 7, as 0.3's int() read it */
        t++;
        n--;
    }
    memcpy (id, t, n + 1);
    return 0;
}

/* ---- lookup through the loop -------------------------------------------------------------- */

/* Returns 0 with *T filled, or -1 when the proxy is stopping. */
static int lookup (struct session *s, const char *id, struct ssh_proxy_target *t)
{
    struct ssh_proxy *p = s->p;
    struct lookup req;
    memset (&req, 0, sizeof req);
    snprintf (req.task_id, sizeof req.task_id, "%s", id);
    pthread_mutex_lock (&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock (&p->lock);
        return -1;
    }
    struct lookup **tail = &p->queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &req;
    pthread_mutex_unlock (&p->lock);
    /* after the queueing: an answer pass that ran before this write finds the request
     * anyway, and the extra count only costs the loop one empty pass */
    kick (p->lookup_fd);
    pthread_mutex_lock (&p->lock);
    while (!req.done && !p->stopping)
        pthread_cond_wait (&p->answered, &p->lock);
    if (!req.done) {
        for (struct lookup **q = &p->queue; *q; q = &(*q)->next)
            if (*q == &req) {
                *q = req.next;
                break;
            }
        pthread_mutex_unlock (&p->lock);
        return -1;
    }
    pthread_mutex_unlock (&p->lock);
    *t = req.target;
    return 0;
}

void ssh_proxy_answer (struct ssh_proxy *p, ssh_proxy_lookup_fn fn, void *arg)
{
    drain (p->lookup_fd);
    pthread_mutex_lock (&p->lock);
    bool any = p->queue != NULL;
    /* FN runs under the lock, so a request can never be answered after its session gave
     * up on it. It is quick (the host's lookup is a map probe, at most one store read), and
     * sessions take the lock only to queue a request or to wake up. */
    while (p->queue) {
        struct lookup *r = p->queue;
        p->queue = r->next;
        memset (&r->target, 0, sizeof r->target);
        fn (arg, r->task_id, &r->target);
        r->target.error[sizeof r->target.error - 1] = '\0';
        r->target.address[sizeof r->target.address - 1] = '\0';
        r->target.node[sizeof r->target.node - 1] = '\0';
        r->done = true;
    }
    if (any)
        pthread_cond_broadcast (&p->answered);
    pthread_mutex_unlock (&p->lock);
}

/* ---- connecting to the runner ------------------------------------------------------------- */

enum conn_rc { CONN_OK, CONN_TIMEOUT, CONN_REFUSED, CONN_FAILED, CONN_STOP };

/* Tries each address of T until one connects, all within the connect timeout. Returns
 * CONN_OK with *FDP set, or why not with DETAIL (DN bytes) saying more, for the log. */
static enum conn_rc connect_runner (struct session *s, const struct ssh_proxy_target *t,
                                    int *fdp, char *detail, size_t dn)
{
    struct ssh_proxy *p = s->p;
    char port[8], esc[160];
    struct timespec t0;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    snprintf (port, sizeof port, "%d", t->port);
    log_escape (t->address, esc, sizeof esc);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo (t->address, port, &hints, &res);
    if (gai != 0) {
        snprintf (detail, dn, "cannot resolve %s: %s", esc,
                  gai == EAI_SYSTEM ? strerror (errno) : gai_strerror (gai));
        return CONN_FAILED;
    }
    enum conn_rc rc = CONN_FAILED;
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int err = 0;
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            err = errno;
            while (err == EINPROGRESS || err == EINTR) {
                int64_t left = p->connect_ms - ms_since (&t0);
                if (left <= 0) {
                    err = ETIMEDOUT;
                    break;
                }
                struct pollfd pf[2] = { { .fd = fd, .events = POLLOUT },
                                        { .fd = p->stop_fd, .events = POLLIN } };
                int r = poll (pf, 2, (int)left);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0) {
                    err = errno;
                    break;
                }
                if (pf[1].revents) {
                    close (fd);
                    freeaddrinfo (res);
                    return CONN_STOP;
                }
                if (r == 0)
                    continue; /* the deadline check above ends it */
                socklen_t sl = sizeof err;
                if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                    err = errno;
            }
        }
        if (err == 0) {
            *fdp = fd;
            rc = CONN_OK;
            break;
        }
        close (fd);
        last = err;
        if (err == ETIMEDOUT && ms_since (&t0) >= p->connect_ms)
            break; /* no time left for the other addresses */
    }
    freeaddrinfo (res);
    if (rc == CONN_OK)
        return rc;
    snprintf (detail, dn, "%s port %d: %s", esc, t->port, strerror (last));
    return last == ETIMEDOUT ? CONN_TIMEOUT : last == ECONNREFUSED ? CONN_REFUSED : CONN_FAILED;
}

static void tune (int fd)
{
    int one = 1;
    /* SSH is interactive: no Nagle delay on keystrokes; keepalive so a peer that vanished
     * without FIN does not hold a session forever */
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

/* ---- session thread ----------------------------------------------------------------------- */

/* What a session learned before its relay: the task, where it is, and why it failed. */
struct outcome {
    char id[TASK_ID_MAX_DIGITS + 1]; /* "-" until the request line is valid */
    struct ssh_proxy_target t;
    const char *why;                 /* the ERROR reason; "" = close without one */
    char reason[320];                /* storage for a formatted WHY */
    char detail[256];                /* more for the log line ("" = nothing) */
};

/* Handshake, lookup, connect. Returns the connected runner socket, or -1 with O->why set. */
static int open_tunnel (struct session *s, struct outcome *o)
{
    if (handshake (s, o->id, &o->why) < 0)
        return -1;
    if (lookup (s, o->id, &o->t) < 0) {
        o->why = R_SHUTDOWN;
        return -1;
    }
    if (o->t.error[0]) {
        o->why = o->t.error;
        return -1;
    }
    if (!o->t.address[0] || o->t.port <= 0 || o->t.port > 65535) {
        char esc[160];
        snprintf (o->detail, sizeof o->detail, "the lookup gave no usable address: '%s' port %d",
                  log_escape (o->t.address, esc, sizeof esc), o->t.port);
        o->why = R_INTERNAL;
        return -1;
    }
    int runner = -1;
    switch (connect_runner (s, &o->t, &runner, o->detail, sizeof o->detail)) {
    case CONN_OK:
        return runner;
    case CONN_TIMEOUT:
        snprintf (o->reason, sizeof o->reason, "Timeout connecting to Runner for task %s.", o->id);
        break;
    case CONN_REFUSED:
        snprintf (o->reason, sizeof o->reason, "Connection refused by VPS task %s on node %s.",
                  o->id, o->t.node);
        break;
    case CONN_FAILED:
        snprintf (o->reason, sizeof o->reason, "Failed to connect to Runner for task %s.", o->id);
        break;
    case CONN_STOP:
        snprintf (o->reason, sizeof o->reason, R_SHUTDOWN);
        break;
    }
    o->why = o->reason;
    return -1;
}

static void session_run (struct session *s)
{
    struct ssh_proxy *p = s->p;
    struct outcome o;
    memset (&o, 0, sizeof o);
    snprintf (o.id, sizeof o.id, "-");
    int runner = open_tunnel (s, &o);
    if (runner < 0) {
        if (!o.why[0]) {
            close (s->fd);
            return;
        }
        char esc[400];
        log_info ("ssh proxy: %s: task %s refused: %s%s%s%s", s->peer, o.id,
                  log_escape (o.why, esc, sizeof esc), o.detail[0] ? " (" : "", o.detail,
                  o.detail[0] ? ")" : "");
        reply_error (s->fd, o.why, LINGER_MS, p->stop_fd);
        return;
    }
    tune (runner);
    tune (s->fd);
    if (send (s->fd, PROXY_SUCCESS "\n", 8, MSG_NOSIGNAL | MSG_DONTWAIT) != 8) {
        log_info ("ssh proxy: %s: task %s: client gone before SUCCESS", s->peer, o.id);
        close (runner);
        close (s->fd);
        return;
    }
    char node[160], addr[160];
    log_info ("ssh proxy: %s: tunnel to task %s open (node %s, %s port %d)", s->peer, o.id,
              log_escape (o.t.node, node, sizeof node),
              log_escape (o.t.address, addr, sizeof addr), o.t.port);
    struct timespec t0;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    struct relay_stats st;
    struct err e = { 0 };
    int rc = relay_run ((struct relay_end){ s->fd, s->fd }, (struct relay_end){ runner, runner },
                        p->stop_fd, 0, &st, &e);
    close (runner);
    close (s->fd);
    log_info ("ssh proxy: %s: tunnel to task %s closed after %.1f s: %llu bytes to the VPS, "
              "%llu back%s%s%s", s->peer, o.id, (double)ms_since (&t0) / 1000.0,
              (unsigned long long)st.a_to_b, (unsigned long long)st.b_to_a,
              rc == 1 ? " (host stopping)" : rc < 0 ? "; " : "", rc < 0 ? e.text : "",
              rc < 0 ? " (A = the client, B = the runner)" : "");
}

static void *session_main (void *arg)
{
    struct session *s = arg;
    struct ssh_proxy *p = s->p;
    session_run (s);
    pthread_mutex_lock (&p->lock);
    s->finished = true;
    p->live--;
    pthread_mutex_unlock (&p->lock);
    /* P outlives this write: ssh_proxy_stop joins this thread before freeing it */
    kick (p->reap_fd);
    return NULL;
}

/* ---- acceptor ----------------------------------------------------------------------------- */

/* Joins and frees the finished sessions. */
static void reap (struct ssh_proxy *p)
{
    struct session *done = NULL;
    pthread_mutex_lock (&p->lock);
    for (struct session **q = &p->sessions; *q;) {
        struct session *s = *q;
        if (s->finished) {
            *q = s->next;
            s->next = done;
            done = s;
        } else {
            q = &s->next;
        }
    }
    pthread_mutex_unlock (&p->lock);
    while (done) {
        struct session *s = done;
        done = s->next;
        pthread_join (s->thread, NULL);
        free (s);
    }
}

static void start_session (struct ssh_proxy *p, int fd)
{
    char peer[80];
    peer_name (fd, peer, sizeof peer);
    pthread_mutex_lock (&p->lock);
    if (p->live >= p->max_sessions) {
        pthread_mutex_unlock (&p->lock);
        log_warn ("ssh proxy: %s: refused: too many sessions (%d)", peer, p->max_sessions);
        reply_error (fd, "Too many sessions.", 0, p->stop_fd); /* the acceptor must not wait */
        return;
    }
    struct session *s = xcalloc (1, sizeof *s);
    s->p = p;
    s->fd = fd;
    memcpy (s->peer, peer, sizeof s->peer);
    clock_gettime (CLOCK_MONOTONIC, &s->started);
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, SESSION_STACK);
    /* the new thread inherits this thread's mask: every signal blocked */
    int rc = pthread_create (&s->thread, &attr, session_main, s);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        pthread_mutex_unlock (&p->lock);
        log_err ("ssh proxy: %s: cannot start a session thread: %s", peer, strerror (rc));
        free (s);
        reply_error (fd, R_INTERNAL, 0, p->stop_fd);
        return;
    }
    p->live++;
    s->next = p->sessions;
    p->sessions = s;
    pthread_mutex_unlock (&p->lock);
}

static void *acceptor_main (void *arg)
{
    struct ssh_proxy *p = arg;
    int backoff = 0;
    for (;;) {
        struct pollfd pf[3] = { { .fd = p->stop_fd, .events = POLLIN },
                                { .fd = p->reap_fd, .events = POLLIN },
                                { .fd = p->listen_fd, .events = POLLIN } };
        int r = poll (pf, backoff ? 2 : 3, backoff ? ACCEPT_BACKOFF_MS : -1);
        if (r < 0 && errno != EINTR) {
            log_err ("ssh proxy: poll: %s", strerror (errno));
            break;
        }
        if (pf[0].revents)
            break;
        if (pf[1].revents) {
            drain (p->reap_fd);
            reap (p);
        }
        if (backoff) {
            backoff = 0;
            if (r == 0)
                continue; /* the pause is over: watch the listening socket again */
        }
        if (r <= 0 || !(pf[2].revents & POLLIN))
            continue;
        for (int i = 0; i < ACCEPT_BATCH; i++) {
            int fd = accept4 (p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                start_session (p, fd);
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn ("ssh proxy: accept: %s; pausing %d ms", strerror (errno),
                          ACCEPT_BACKOFF_MS);
                backoff = 1;
            }
            /* EAGAIN: all taken; ECONNABORTED, EPROTO...: that client is gone */
            if (errno == EAGAIN || errno == EWOULDBLOCK || backoff)
                break;
        }
    }
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------- */

static int listen_on (const char *ip, int port, struct err *e)
{
    char serv[8];
    snprintf (serv, sizeof serv, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo (ip, serv, &hints, &res);
    if (gai != 0)
        return err_set (e, EINVAL, "invalid SSH proxy bind address `%s` (an IPv4 or IPv6 "
                        "address is expected): %s", ip, gai_strerror (gai));
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind (fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen (fd, LISTEN_BACKLOG) < 0) {
            saved = errno;
            close (fd);
            fd = -1;
        }
    }
    freeaddrinfo (res);
    if (fd < 0)
        return err_set (e, saved, "cannot listen on %s:%d for the SSH proxy: %s", ip, port,
                        strerror (saved));
    return fd;
}

static void proxy_free (struct ssh_proxy *p)
{
    if (p->listen_fd >= 0)
        close (p->listen_fd);
    if (p->lookup_fd >= 0)
        close (p->lookup_fd);
    if (p->stop_fd >= 0)
        close (p->stop_fd);
    if (p->reap_fd >= 0)
        close (p->reap_fd);
    pthread_mutex_destroy (&p->lock);
    pthread_cond_destroy (&p->answered);
    free (p->token);
    free (p);
}

struct ssh_proxy *ssh_proxy_start (const struct ssh_proxy_opts *o, struct err *e)
{
    struct ssh_proxy *p = xcalloc (1, sizeof *p);
    const char *ip = o->bind_ip && o->bind_ip[0] ? o->bind_ip : "0.0.0.0";
    p->listen_fd = p->lookup_fd = p->stop_fd = p->reap_fd = -1;
    pthread_mutex_init (&p->lock, NULL);
    pthread_cond_init (&p->answered, NULL);
    if (o->token && o->token[0]) {
        p->token = xstrdup (o->token);
        p->token_len = strlen (p->token);
    }
    p->handshake_ms = o->handshake_timeout_ms > 0 ? o->handshake_timeout_ms : HANDSHAKE_TIMEOUT_MS;
    p->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : CONNECT_TIMEOUT_MS;
    p->max_sessions = o->max_sessions > 0 ? o->max_sessions : MAX_SESSIONS;
    if (o->port < 0 || o->port > 65535) {
        err_set (e, EINVAL, "invalid SSH proxy port %d", o->port);
        goto error;
    }
    p->listen_fd = listen_on (ip, o->port, e);
    if (p->listen_fd < 0)
        goto error;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname (p->listen_fd, (struct sockaddr *)&ss, &sl) < 0) {
        err_set (e, errno, "SSH proxy: getsockname: %s", strerror (errno));
        goto error;
    }
    p->port = ntohs (ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    p->lookup_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->stop_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->reap_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->lookup_fd < 0 || p->stop_fd < 0 || p->reap_fd < 0) {
        err_set (e, errno, "SSH proxy: eventfd: %s", strerror (errno));
        goto error;
    }
    /* the threads take no signals: the loop thread reads them from its signalfd */
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int rc = pthread_create (&p->acceptor, NULL, acceptor_main, p);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        err_set (e, rc, "cannot start the SSH proxy thread: %s", strerror (rc));
        goto error;
    }
    p->acceptor_running = true;
    log_info ("ssh proxy: listening on %s port %d (%s)", ip, p->port,
              p->token ? "token required" : "no authentication");
    return p;
error:
    proxy_free (p);
    return NULL;
}

int ssh_proxy_port (const struct ssh_proxy *p)
{
    return p->port;
}

int ssh_proxy_fd (const struct ssh_proxy *p)
{
    return p->lookup_fd;
}

void ssh_proxy_stop (struct ssh_proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock (&p->lock);
    p->stopping = true;
    pthread_cond_broadcast (&p->answered);
    pthread_mutex_unlock (&p->lock);
    kick (p->stop_fd);
    if (p->acceptor_running)
        pthread_join (p->acceptor, NULL);
    /* no new sessions now; every blocking point of a session watches stop_fd or the flag */
    pthread_mutex_lock (&p->lock);
    struct session *s = p->sessions;
    int n = p->live;
    p->sessions = NULL;
    pthread_mutex_unlock (&p->lock);
    while (s) {
        struct session *next = s->next;
        pthread_join (s->thread, NULL);
        free (s);
        s = next;
    }
    if (n > 0)
        log_info ("ssh proxy: stopped (%d session%s ended)", n, n == 1 ? "" : "s");
    proxy_free (p);
}
