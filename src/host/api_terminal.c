/* api_terminal.c - WebSocket terminal into a host environment container: a docker exec with
 * a TTY, relayed by one thread per session (GET /docker/host/containers/NAME/terminal).
 *
 * The loop thread only validates the handshake and hands out replies. The Engine API calls
 * run on threads of the session: a prepare thread (inspect the container, pick the shell,
 * create the exec; the request stays held meanwhile, http_hold_async) and, after the 101
 * reply, a relay thread that owns the client socket and the exec stream. Neither thread
 * touches host state: they get copies of the strings they need and wake the loop only
 * through libmicrohttpd's thread-safe calls (resume, upgrade close). The exec and the relay
 * with its messages (docs/docker-shell.md) are common/docker_exec.c, which the runner uses
 * too for task connect (api_task_terminal.c). */
#include "host/api.h"
#include "host/api_terminal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/docker_api.h"
#include "common/docker_exec.h"
#include "common/log.h"
#include "common/websocket.h"
#include "common/xalloc.h"

#define NAME_MAX_LEN 128

struct session {
    /* set on the loop thread before any session thread starts */
    char *name;                  /* container name or id */
    char *socket;                /* [docker] socket ("" = default) */
    char accept[29];             /* Sec-WebSocket-Accept */
    struct MHD_Connection *conn; /* the held request, for http_async_wake */
    pthread_t prep;
    bool prep_running;           /* joined by prep_finish_cb or session_free */
    /* results of the prepare thread, read by the loop after the wake */
    int status;                  /* 0, or the HTTP status of the failure */
    char detail[600];
    struct docker *docker;
    char *exec_id;
    const char *shell;
    /* relay (the relay thread only, after the upgrade) */
    struct http_upgrade *up;
    int ws;                      /* the client's socket, owned by http.c */
    int stop_fd;                 /* eventfd: the host is stopping */
    struct ws_buf early;         /* client bytes MHD read past the request headers */
};

static void session_free (void *arg)
{
    struct session *s = arg;
    if (!s)
        return;
    int saved = errno;
    if (s->prep_running)
        pthread_join (s->prep, NULL);
    docker_close (s->docker);
    if (s->stop_fd >= 0)
        close (s->stop_fd);
    ws_buf_free (&s->early);
    free (s->exec_id);
    free (s->socket);
    free (s->name);
    free (s);
    errno = saved;
}

/* Docker's container name rule ([a-zA-Z0-9][a-zA-Z0-9_.-]*), which ids also follow. */
static bool name_ok (const char *n)
{
    size_t len = strlen (n);
    if (len == 0 || len > NAME_MAX_LEN || !isalnum ((unsigned char)n[0]))
        return false;
    for (const char *p = n; *p; p++)
        if (!isalnum ((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return true;
}

/* True when the comma-separated header VALUE lists TOKEN (case-insensitive). */
static bool has_token (const char *value, const char *token)
{
    size_t tl = strlen (token);
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == tl && strncasecmp (p, token, tl) == 0)
            return true;
        p = end;
    }
    return false;
}

int api_ws_check (struct http_req *req, const char *what, char accept[29], char *detail,
                  size_t n)
{
    if (strcmp (req->method, "GET") != 0) {
        snprintf (detail, n, "Use GET (a WebSocket upgrade request)");
        return 405;
    }
    const char *upgrade = http_header (req, "Upgrade");
    const char *connection = http_header (req, "Connection");
    const char *version = http_header (req, "Sec-WebSocket-Version");
    const char *key = http_header (req, "Sec-WebSocket-Key");
    if (!upgrade || !has_token (upgrade, "websocket") || !connection
        || !has_token (connection, "upgrade")) {
        snprintf (detail, n, "This is a WebSocket endpoint (%s): send a WebSocket upgrade "
                  "request (Upgrade: websocket, Connection: Upgrade)", what);
        return 400;
    }
    if (!version || strcmp (version, "13") != 0) {
        http_reply_header (req, "Sec-WebSocket-Version", "13");
        snprintf (detail, n, "Unsupported Sec-WebSocket-Version '%.20s': version 13 "
                  "(RFC 6455) is required", version ? version : "");
        return 400;
    }
    if (!ws_key_valid (key)) {
        snprintf (detail, n,
                  "Missing or invalid Sec-WebSocket-Key: the base64 of 16 bytes is required");
        return 400;
    }
    ws_accept_key (key, accept);
    return 0;
}

/* ---- prepare thread: container checks and exec creation ----------------------------------- */

static void prepare (struct session *s)
{
    struct err e = { 0 };
    s->docker = docker_open (s->socket, &e);
    if (!s->docker) {
        s->status = 503;
        snprintf (s->detail, sizeof s->detail, "Docker connection error: %s", e.text);
        return;
    }
    s->exec_id = docker_exec_create (s->docker, s->name, &s->shell, &e);
    if (!s->exec_id) {
        s->status = e.status ? e.status : 502;
        snprintf (s->detail, sizeof s->detail, "%s", e.text);
    }
}

static void *prep_main (void *arg)
{
    struct session *s = arg;
    prepare (s);
    /* the last touch of the session from this thread: the loop may free it from now on */
    http_async_wake (s->conn);
    return NULL;
}

/* ---- relay thread ------------------------------------------------------------------------- */

static void *relay_main (void *arg)
{
    struct session *s = arg;
    struct docker_exec_relay x = {
        .d = s->docker,
        .container = s->name,
        .exec_id = s->exec_id,
        .ws = s->ws,
        .server = true,
        .early = s->early.data,
        .early_len = s->early.len,
        .stop_fd = s->stop_fd,
        .stop_message = "The host is shutting down.",
    };
    if (docker_exec_relay (&x) < 0)
        log_err ("terminal: cannot start the shell in %s: %s", s->name, x.err.text);
    else if (x.err.text[0])
        log_warn ("terminal: %s", x.err.text);
    if (x.exit_code >= 0)
        log_info ("terminal: shell in container %s ended: %s (exit %d)", s->name, x.why,
                  x.exit_code);
    else
        log_info ("terminal: shell in container %s ended: %s", s->name, x.why);
    /* After this, http.c neither calls stop_cb nor keeps the socket: free the rest. */
    http_upgrade_close (s->up);
    session_free (s);
    return NULL;
}

/* ---- loop-thread callbacks ---------------------------------------------------------------- */

static void stop_cb (void *arg)
{
    struct session *s = arg;
    uint64_t one = 1;
    if (write (s->stop_fd, &one, sizeof one) < 0) {
        /* an eventfd write only fails when the counter is full: a stop is pending anyway */
    }
}

static void upgrade_cb (void *arg, struct http_upgrade *u, int sock, const char *extra,
                        size_t extra_len)
{
    struct session *s = arg;
    s->up = u;
    s->ws = sock;
    ws_buf_add (&s->early, extra, extra_len);
    s->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    int rc = s->stop_fd < 0 ? errno : pthread_create (&t, &attr, relay_main, s);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        log_err ("terminal: cannot start the session for %s: %s", s->name, strerror (rc));
        http_upgrade_close (u);
        session_free (s);
    }
}

static void prep_finish_cb (struct http_req *req, void *arg)
{
    struct session *s = arg;
    if (s->prep_running) {
        pthread_join (s->prep, NULL);
        s->prep_running = false;
    }
    if (s->status) {
        log_info ("terminal: refused for container %s: %s", s->name, s->detail);
        http_reply_error (req, s->status, "%s", s->detail);
        session_free (s);
        return;
    }
    log_info ("terminal: opening %s in container %s (exec %.12s)", s->shell, s->name,
              s->exec_id);
    http_reply_header (req, "Sec-WebSocket-Accept", s->accept);
    http_reply_upgrade (req, "websocket", upgrade_cb, stop_cb, session_free, s);
}

static void prep_start_cb (struct http_req *req, void *arg)
{
    struct session *s = arg;
    s->conn = req->conn;
    int rc = pthread_create (&s->prep, NULL, prep_main, s);
    if (rc == 0) {
        s->prep_running = true;
        return;
    }
    s->status = 500;
    snprintf (s->detail, sizeof s->detail, "Cannot start a thread for the terminal: %s",
              strerror (rc));
    http_async_wake (req->conn); /* suspended by now: finish answers at once */
}

void api_terminal (struct host *h, struct http_req *req, const char *container)
{
    int status = 400;
    char detail[512];
    if (strcmp (req->method, "GET") != 0) {
        status = 405;
        snprintf (detail, sizeof detail, "Use GET (a WebSocket upgrade request)");
        goto error;
    }
    if (!name_ok (container)) {
        char esc[160];
        snprintf (detail, sizeof detail, "Invalid container name '%s'",
                  log_escape (container, esc, sizeof esc));
        goto error;
    }
    char accept[29];
    if ((status = api_ws_check (req, "hakuriver.docker-shell, the dashboard's terminal", accept,
                                detail, sizeof detail)) != 0)
        goto error;
    struct session *s = xcalloc (1, sizeof *s);
    s->name = xstrdup (container);
    s->socket = xstrdup (h->conf->docker_socket ? h->conf->docker_socket : "");
    s->ws = s->stop_fd = -1;
    memcpy (s->accept, accept, sizeof s->accept);
    http_hold_async (req, prep_start_cb, prep_finish_cb, session_free, s);
    return;
error:
    http_reply_error (req, status, "%s", detail);
}
