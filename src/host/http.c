/* http.c - libmicrohttpd glue: body limits, held replies until commit, long-poll suspension,
 * replies prepared by other threads and protocol upgrades */
#include "host/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "host/host.h"

/* A request held by http_hold_async. */
struct http_async {
    http_async_f start, finish;
    void (*free_fn) (void *arg);
    void *arg;
};

/* A prepared 101 reply (http_reply_upgrade), until MHD hands over the socket. */
struct http_upgrade_req {
    char *protocol;
    http_upgrade_f fn;
    void (*stop) (void *arg);
    void (*free_fn) (void *arg);
    void *arg;
};

/* An upgraded connection. The list is shared with the owners' threads (http_upgrade_close),
 * hence the lock; everything else here runs on the loop thread. */
struct http_upgrade {
    struct MHD_UpgradeResponseHandle *urh;
    void (*stop) (void *arg);
    void *arg;
    bool stop_sent;
    struct http_upgrade *prev, *next;
};
static pthread_mutex_t upgrades_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_upgrade *upgrades;
static unsigned async_held;   /* requests held by http_hold_async, not finished yet */
static bool draining;         /* http_stop() runs: new requests are refused, since a runner's
                                 next long-poll would be suspended and MHD aborts on that */

/* In external polling mode libmicrohttpd has no inter-thread channel (MHD_USE_ITC is
 * ignored), so a resume or an upgrade close from another thread would wait for the loop's
 * next timeout. The loop therefore watches WATCH_FD: an epoll set holding MHD's epoll fd
 * and WAKE_FD, an eventfd those threads write to after calling into MHD. */
static int watch_fd = -1, wake_fd = -1;

static void wake_loop (void)
{
    uint64_t one = 1;
    if (wake_fd >= 0 && write (wake_fd, &one, sizeof one) < 0) {
        /* only fails when the counter is full: a wake-up is pending anyway */
    }
}

static void free_req (struct http_req *r)
{
    if (!r)
        return;
    if (r->async) {
        async_held--;
        if (r->async->free_fn)
            r->async->free_fn (r->async->arg);
        free (r->async);
    }
    if (r->upgrade) {
        if (r->upgrade->free_fn)
            r->upgrade->free_fn (r->upgrade->arg);
        free (r->upgrade->protocol);
        free (r->upgrade);
    }
    for (size_t i = 0; i < r->nhdrs; i++)
        free (r->hdrs[i]);
    free (r->hdrs);
    free (r->body);
    free (r->resp);
    free (r->next_before);
    json_decref (r->cmds_reply);
    if (r->resp_fd >= 0)
        close (r->resp_fd);
    free (r);
}

static void upgrade_cb (void *cls, struct MHD_Connection *conn, void *con_cls,
                        const char *extra_in, size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    struct http_req *r = cls;
    struct http_upgrade_req *ur = r->upgrade;
    r->upgrade = NULL;
    struct http_upgrade *u = xcalloc (1, sizeof *u);
    u->urh = urh;
    u->stop = ur->stop;
    u->arg = ur->arg;
    pthread_mutex_lock (&upgrades_lock);
    u->next = upgrades;
    if (upgrades)
        upgrades->prev = u;
    upgrades = u;
    pthread_mutex_unlock (&upgrades_lock);
    ur->fn (ur->arg, u, sock, extra_in, extra_in_size);
    free (ur->protocol);
    free (ur);
}

void http_upgrade_close (struct http_upgrade *u)
{
    pthread_mutex_lock (&upgrades_lock);
    if (u->prev)
        u->prev->next = u->next;
    else
        upgrades = u->next;
    if (u->next)
        u->next->prev = u->prev;
    /* under the lock, so that http_stop() cannot tear MHD down before this returns */
    MHD_upgrade_action (u->urh, MHD_UPGRADE_ACTION_CLOSE);
    wake_loop ();
    pthread_mutex_unlock (&upgrades_lock);
    free (u);
}

static enum MHD_Result send_reply (struct http_req *r)
{
    struct MHD_Response *resp;
    if (r->upgrade) {
        resp = MHD_create_response_for_upgrade (upgrade_cb, r);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header (resp, "Upgrade", r->upgrade->protocol);
        MHD_add_response_header (resp, "Connection", "Upgrade");
        for (size_t i = 0; i + 1 < r->nhdrs; i += 2)
            MHD_add_response_header (resp, r->hdrs[i], r->hdrs[i + 1]);
        enum MHD_Result ret = MHD_queue_response (r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
        MHD_destroy_response (resp);
        return ret;
    }
    if (r->resp_fd >= 0) {
        resp = MHD_create_response_from_fd_at_offset64 ((uint64_t)r->fd_len, r->resp_fd,
                                                        (uint64_t)r->fd_off);
        r->resp_fd = -1; /* owned by the response now */
    } else {
        resp = MHD_create_response_from_buffer (r->resp_len, r->resp,
                                                MHD_RESPMEM_MUST_FREE);
        r->resp = NULL;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", r->ctype ? r->ctype : "application/json");
    if (r->next_before)
        MHD_add_response_header (resp, "X-Next-Before", r->next_before);
    if (r->status == 401)
        MHD_add_response_header (resp, "WWW-Authenticate", "Bearer");
    for (size_t i = 0; i + 1 < r->nhdrs; i += 2)
        MHD_add_response_header (resp, r->hdrs[i], r->hdrs[i + 1]);
    enum MHD_Result ret = MHD_queue_response (r->conn, (unsigned)r->status, resp);
    MHD_destroy_response (resp);
    return ret;
}

static enum MHD_Result access_cb (void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct host *h = cls;
    struct http_req *r = *con_cls;
    if (!r) {
        r = xcalloc (1, sizeof *r);
        r->conn = conn;
        r->h = h;
        r->resp_fd = -1;
        r->method = method;
        r->url = url;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull (cl, NULL, 10) > MAX_BODY_BYTES) {
            r->too_big = true;
            http_reply_error (r, 413, "Request body too large (limit %u bytes)",
                              MAX_BODY_BYTES);
            r->dispatched = true;
            return send_reply (r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big) {
            if (r->len + *upload_size > MAX_BODY_BYTES) {
                r->too_big = true;
                FREE_NULL (r->body);
                r->len = 0;
            } else {
                r->body = xrealloc (r->body, r->len + *upload_size + 1);
                memcpy (r->body + r->len, upload_data, *upload_size);
                r->len += *upload_size;
                r->body[r->len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->dispatched) {
        /* resumed after a commit, a long-poll answer or an asynchronous job */
        r->held = false;
        if (r->async) {
            struct http_async *a = r->async;
            r->async = NULL;
            async_held--;
            a->finish (r, a->arg);
            free (a);
        }
        if (!r->ready)
            return MHD_YES;
        return send_reply (r);
    }
    r->dispatched = true;
    if (r->too_big) {
        http_reply_error (r, 413, "Request body too large (limit %u bytes)", MAX_BODY_BYTES);
        return send_reply (r);
    }
    if (draining) {
        http_reply_error (r, 503, "The host is shutting down");
        return send_reply (r);
    }
    api_dispatch (h, r);
    if (r->ready && !h->in_txn)
        return send_reply (r);
    /* hold: either waiting for this iteration's commit, or a long-poll */
    r->held = true;
    MHD_suspend_connection (conn);
    if (r->ready) {
        r->next = h->deferred;
        h->deferred = r;
    } else if (r->async) {
        /* only now: the job may wake the connection, which must be suspended by then */
        r->async->start (r, r->async->arg);
    }
    return MHD_YES;
}

static void completed_cb (void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *con_cls;
    if (!r)
        return;
    if (r->poll_node && r->poll_node->poll == r)
        r->poll_node->poll = NULL;
    free_req (r);
    *con_cls = NULL;
}

struct MHD_Daemon *http_start (struct host *h, const char *addr, int port, struct err *e)
{
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons ((uint16_t)port);
    if (inet_pton (AF_INET, addr, &sa.sin_addr) != 1) {
        err_set (e, EINVAL, "invalid host_bind_ip `%s` (an IPv4 address is expected)", addr);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon (
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_TURBO,
        (uint16_t)port, NULL, NULL,
        access_cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(MAX_HEADER_BYTES + 16384),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)4000, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!d) {
        err_set (e, errno, "cannot listen on %s:%d: %s", addr, port, strerror (errno));
        return NULL;
    }
    const union MHD_DaemonInfo *i = MHD_get_daemon_info (d, MHD_DAEMON_INFO_EPOLL_FD);
    wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    watch_fd = epoll_create1 (EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = i ? i->epoll_fd : -1;
    int rc = -1;
    if (wake_fd >= 0 && watch_fd >= 0 && i)
        rc = epoll_ctl (watch_fd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    ev.data.fd = wake_fd;
    if (rc == 0)
        rc = epoll_ctl (watch_fd, EPOLL_CTL_ADD, wake_fd, &ev);
    if (rc < 0) {
        err_set (e, errno, "cannot set up the HTTP server's wake-up: %s", strerror (errno));
        MHD_stop_daemon (d);
        http_stop (NULL);
        return NULL;
    }
    return d;
}

/* Before MHD stops, every upgraded connection must be closed by its owner and every async
 * hold finished: MHD aborts on a suspended connection and would free an upgrade's handle
 * under its owner's thread. Asks the owners to stop and waits up to 10 s. Returns false
 * when some did not finish. */
void http_refuse_new (void)
{
    draining = true;
}

static bool drain (struct MHD_Daemon *d)
{
    draining = true;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock (&upgrades_lock);
        bool busy = upgrades || async_held;
        for (struct http_upgrade *u = upgrades; u; u = u->next)
            if (!u->stop_sent && u->stop) {
                u->stop_sent = true;
                u->stop (u->arg);
            }
        pthread_mutex_unlock (&upgrades_lock);
        http_run (d);
        if (!busy)
            return true;
        struct pollfd pfd = { .fd = http_epoll_fd (d), .events = POLLIN };
        poll (&pfd, 1, 20);
    }
    log_err ("%u held requests and some terminal sessions did not end within 10 s; leaving "
             "the HTTP server to the process exit", async_held);
    return false;
}

void http_stop (struct MHD_Daemon *d)
{
    if (d) {
        if (!drain (d))
            return; /* session threads may still call into MHD and write to WAKE_FD */
        MHD_stop_daemon (d);
    }
    if (watch_fd >= 0)
        close (watch_fd);
    if (wake_fd >= 0)
        close (wake_fd);
    watch_fd = wake_fd = -1;
}

int http_epoll_fd (struct MHD_Daemon *d)
{
    if (watch_fd >= 0)
        return watch_fd;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info (d, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

long http_timeout_ms (struct MHD_Daemon *d)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout (d, &t) == MHD_YES)
        return (long)(t > 60000 ? 60000 : t);
    return -1;
}

void http_run (struct MHD_Daemon *d)
{
    uint64_t n;
    if (wake_fd >= 0 && read (wake_fd, &n, sizeof n) < 0) {
        /* EAGAIN: no wake-up pending */
    }
    MHD_run (d);
}

/* Connections resumed since the last http_take_resumed(): the loop must run MHD again
 * at once, since MHD only acts on a resume inside MHD_run. */
static unsigned resumed_count;

void http_release (struct http_req *r)
{
    if (r->held) {
        MHD_resume_connection (r->conn);
        resumed_count++;
    }
}

bool http_take_resumed (void)
{
    bool any = resumed_count > 0;
    resumed_count = 0;
    return any;
}

void http_flush_deferred (struct host *h)
{
    struct http_req *r = h->deferred;
    h->deferred = NULL;
    while (r) {
        struct http_req *next = r->next;
        r->next = NULL;
        if (h->store_failed) {
            free (r->resp);
            r->resp = NULL;
            http_reply_error (r, 500, "State could not be saved: %s; nothing was changed",
                              h->last_err.text);
        }
        http_release (r);
        r = next;
    }
}

void http_reply_json (struct http_req *r, int status, json_t *body)
{
    free (r->resp);
    r->resp = json_dumps (body, JSON_COMPACT);
    r->resp_len = r->resp ? strlen (r->resp) : 0;
    r->status = status;
    r->ctype = "application/json";
    r->ready = true;
    json_decref (body);
}

void http_reply_error (struct http_req *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    http_reply_json (r, status, json_pack ("{s:s}", "detail", msg));
}

void http_reply_text (struct http_req *r, int status, const char *text)
{
    free (r->resp);
    r->resp = xstrdup (text);
    r->resp_len = strlen (text);
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    r->ready = true;
}

void http_reply_fd (struct http_req *r, int fd, off_t off, off_t len)
{
    r->resp_fd = fd;
    r->fd_off = off;
    r->fd_len = len;
    r->status = 200;
    r->ctype = "text/plain; charset=utf-8";
    r->ready = true;
}

const char *http_query (struct http_req *r, const char *key)
{
    return MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header (struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, name);
}

void http_reply_header (struct http_req *r, const char *name, const char *value)
{
    r->hdrs = xreallocarray (r->hdrs, r->nhdrs + 2, sizeof *r->hdrs);
    r->hdrs[r->nhdrs++] = xstrdup (name);
    r->hdrs[r->nhdrs++] = xstrdup (value);
}

void http_hold_async (struct http_req *r, http_async_f start, http_async_f finish,
                      void (*free_fn) (void *arg), void *arg)
{
    struct http_async *a = xcalloc (1, sizeof *a);
    a->start = start;
    a->finish = finish;
    a->free_fn = free_fn;
    a->arg = arg;
    r->async = a;
    async_held++;
}

void http_async_wake (struct MHD_Connection *conn)
{
    /* MHD_resume_connection is thread-safe (it takes MHD's cleanup mutex); MHD acts on it in
     * its next run, which wake_loop() brings forward */
    MHD_resume_connection (conn);
    wake_loop ();
}

void http_reply_upgrade (struct http_req *r, const char *protocol, http_upgrade_f fn,
                         void (*stop) (void *arg), void (*free_fn) (void *arg), void *arg)
{
    struct http_upgrade_req *u = xcalloc (1, sizeof *u);
    u->protocol = xstrdup (protocol);
    u->fn = fn;
    u->stop = stop;
    u->free_fn = free_fn;
    u->arg = arg;
    r->upgrade = u;
    r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    r->ready = true;
}
