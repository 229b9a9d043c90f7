/* http.h - glue between libmicrohttpd (external epoll mode) and the host's routes.
 *
 * A reply that reports a state change must not leave before the change is committed: when a
 * handler wrote to the store in this loop iteration, its reply is held (the connection is
 * suspended) and released by http_flush_deferred() after main.c commits. Long-polls stay
 * suspended until their node has commands or their deadline passes. */
#ifndef HR_HOST_HTTP_H
#define HR_HOST_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct host;
struct node;
struct MHD_Daemon;

struct http_req {
    struct MHD_Connection *conn;
    struct host *h;
    const char *method;
    const char *url;
    char *body;
    size_t len;
    bool too_big;
    bool dispatched;           /* the route handler ran */
    bool held;                 /* suspended, waiting for commit or poll */
    bool ready;                /* a reply is prepared */
    int status;
    char *resp;                /* reply body (owned) */
    size_t resp_len;
    const char *ctype;
    int resp_fd;               /* file reply when >= 0 */
    off_t fd_off, fd_len;
    char *next_before;         /* X-Next-Before header value, or NULL */
    struct node *poll_node;    /* set while this request is a node's long-poll */
    struct http_req *next;     /* deferred list link */
};

/* Starts the daemon on ADDR:PORT. Returns NULL with e set on failure. */
struct MHD_Daemon *http_start (struct host *h, const char *addr, int port, struct err *e);
void http_stop (struct MHD_Daemon *d);
/* The epoll fd to watch, and the next timeout in ms (-1 = none). */
int http_epoll_fd (struct MHD_Daemon *d);
long http_timeout_ms (struct MHD_Daemon *d);
void http_run (struct MHD_Daemon *d);
/* Releases every reply held for the commit (call after committing). */
void http_flush_deferred (struct host *h);
/* Releases REQ after a reply was prepared outside its handler (long-poll answers). */
void http_release (struct http_req *req);
/* True when a connection was resumed since the last call (and resets that). */
bool http_take_resumed (void);

/* ---- used by route handlers ---- */
void http_reply_json (struct http_req *req, int status, json_t *body); /* steals body */
void http_reply_error (struct http_req *req, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void http_reply_text (struct http_req *req, int status, const char *text);
/* Replies with LEN bytes of FD from OFF (takes ownership of FD). */
void http_reply_fd (struct http_req *req, int fd, off_t off, off_t len);
const char *http_query (struct http_req *req, const char *key);
const char *http_header (struct http_req *req, const char *name);

/* Route dispatch (api.c). Must prepare a reply, or leave it unprepared for a long-poll. */
void api_dispatch (struct host *h, struct http_req *req);

#endif
