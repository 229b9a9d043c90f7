/* http.c - libmicrohttpd glue: body limits, held replies until commit, long-poll suspension */
#include "host/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "host/host.h"

static void free_req (struct http_req *r)
{
    if (!r)
        return;
    free (r->body);
    free (r->resp);
    free (r->next_before);
    if (r->resp_fd >= 0)
        close (r->resp_fd);
    free (r);
}

static enum MHD_Result send_reply (struct http_req *r)
{
    struct MHD_Response *resp;
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
        /* resumed after a commit or a long-poll answer */
        r->held = false;
        if (!r->ready)
            return MHD_YES;
        return send_reply (r);
    }
    r->dispatched = true;
    if (r->too_big) {
        http_reply_error (r, 413, "Request body too large (limit %u bytes)", MAX_BODY_BYTES);
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
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, (uint16_t)port, NULL, NULL,
        access_cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(MAX_HEADER_BYTES + 16384),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)4000, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!d)
        err_set (e, errno, "cannot listen on %s:%d: %s", addr, port, strerror (errno));
    return d;
}

void http_stop (struct MHD_Daemon *d)
{
    if (d)
        MHD_stop_daemon (d);
}

int http_epoll_fd (struct MHD_Daemon *d)
{
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
