/* http.h - glue between libmicrohttpd (external epoll mode) and the host's routes.
 *
 * A reply that reports a state change must not leave before the change is committed: when a
 * handler wrote to the store in this loop iteration, its reply is held (the connection is
 * suspended) and released by http_flush_deferred() after main.c commits. Long-polls stay
 * suspended until their node has commands or their deadline passes. A handler may also hold
 * a request for work on another thread (http_hold_async) and answer with a protocol upgrade
 * (http_reply_upgrade, the terminal's WebSocket). */
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
    struct node *cmds_node;    /* POST /update?ack=: gets that node's new commands... */
    json_t *cmds_reply;        /* ...added to this reply (owned) before it is released */
    struct http_req *next;     /* deferred list link */
    /* http_hold_async / http_reply_upgrade (see below) */
    struct http_async *async;  /* held for another thread, until its finish runs */
    struct http_upgrade_req *upgrade; /* the reply is a 101 upgrade */
    char **hdrs;               /* extra reply headers: name, value, name, value... */
    size_t nhdrs;
};

/* Starts the daemon on ADDR:PORT. Returns NULL with e set on failure. */
struct MHD_Daemon *http_start (struct host *h, const char *addr, int port, struct err *e);
void http_stop (struct MHD_Daemon *d);
/* From now on new requests are answered 503 at once (the host is stopping): a runner's next
 * long-poll must not be suspended after the last polls were answered. */
void http_refuse_new (void);
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
/* Adds a header to REQ's reply (both strings are copied). */
void http_reply_header (struct http_req *req, const char *name, const char *value);

/* ---- replies prepared by another thread, and protocol upgrades (api_terminal.c) ----
 * The loop must never block, so a handler that needs slow work (Docker Engine calls) holds
 * the request: http_hold_async() suspends it and runs START on the loop thread right after;
 * START hands the work to a thread of its own, which calls http_async_wake() (from any thread,
 * exactly once) when done and touches nothing of the host. The loop then runs FINISH, which
 * must prepare a reply. ARG belongs to the handler; if the connection ends before FINISH
 * runs (the host stops), FREE(ARG) runs instead. */
typedef void (*http_async_f) (struct http_req *req, void *arg);
void http_hold_async (struct http_req *req, http_async_f start, http_async_f finish,
                      void (*free_fn) (void *arg), void *arg);
/* Thread-safe: ends the hold of the request whose connection is CONN (req->conn, read by
 * START). Wakes the loop. */
void http_async_wake (struct MHD_Connection *conn);

/* An upgraded connection: its socket belongs to the upgrade's owner until
 * http_upgrade_close(). */
struct http_upgrade;
/* Runs on the loop thread once the 101 reply is sent: SOCK is the client's socket (never
 * close() it), EXTRA the bytes the client sent after its request headers. Must not block:
 * start a thread. */
typedef void (*http_upgrade_f) (void *arg, struct http_upgrade *u, int sock, const char *extra,
                                size_t extra_len);
/* Replies 101 Switching Protocols with "Upgrade: PROTOCOL", "Connection: Upgrade" and the
 * headers added with http_reply_header. Once sent, FN runs; if it cannot be sent, FREE(ARG)
 * runs instead. STOP(ARG) may be called from the loop thread while the upgrade is open (the
 * host is stopping): it must be thread-safe, must not call http_upgrade_close, and must make
 * the owner end soon; http_stop() waits for that (up to 10 s). */
void http_reply_upgrade (struct http_req *req, const char *protocol, http_upgrade_f fn,
                         void (*stop) (void *arg), void (*free_fn) (void *arg), void *arg);
/* From any thread: the owner is done with the socket; http.c closes it and frees U. STOP is
 * never called after this returns. */
void http_upgrade_close (struct http_upgrade *u);

/* Route dispatch (api.c). Must prepare a reply, or leave it unprepared for a long-poll. */
void api_dispatch (struct host *h, struct http_req *req);

#endif
