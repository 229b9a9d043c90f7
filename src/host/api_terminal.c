/* api_terminal.c - WebSocket terminal into a host environment container: a docker exec with
 * a TTY, relayed by one thread per session (GET /docker/host/containers/NAME/terminal).
 *
 * The loop thread only validates the handshake and hands out replies. The Engine API calls
 * run on threads of the session: a prepare thread (inspect the container, pick the shell,
 * create the exec; the request stays held meanwhile, http_hold_async) and, after the 101
 * reply, a relay thread that owns the client socket and the exec stream. Neither thread
 * touches host state: they get copies of the strings they need and wake the loop only
 * through libmicrohttpd's thread-safe calls (resume, upgrade close).
 *
 * Messages (0.3, docs/docker-shell.md): client -> host {"type":"input","data":S},
 * {"type":"resize","rows":R,"cols":C}; host -> client {"type":"output","data":S} (UTF-8,
 * never cut inside a character, invalid bytes replaced by U+FFFD), {"type":"error",
 * "data":S}, and {"type":"exit","code":N} when the shell ends, followed by close 1000. */
#include "host/api.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include "common/docker_api.h"
#include "common/log.h"
#include "common/websocket.h"
#include "common/xalloc.h"

#define ENGINE_TIMEOUT_MS 10000 /* one Engine API call; a local engine answers in milliseconds */
#define OUTPUT_CHUNK 4096       /* shell output relayed per message, as 0.3 does */
#define TO_CLIENT_MAX (256u << 10) /* stop reading the shell while this much waits to be sent */
#define TO_SHELL_MAX (1u << 20)    /* stop reading the client while this much input waits */
#define CLOSE_WAIT_MS 2000      /* once our close frame is sent, how long the client gets to
                                   answer it */
#define STOP_WAIT_MS 1000       /* the host is stopping: the most a session may still take */
#define ABORT_WAIT_MS 5000      /* after a protocol error or the client's close: the most the
                                   output already queued may take to leave */
#define RESIZE_RETRY_MS 100     /* a resize sent before the exec runs is retried this often */
#define RESIZE_RETRIES 30
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
    int exec_fd;                 /* the hijacked exec stream */
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
    if (s->exec_fd >= 0)
        close (s->exec_fd);
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

/* ---- prepare thread: container checks and exec creation ----------------------------------- */

static void fail (struct session *s, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void fail (struct session *s, int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (s->detail, sizeof s->detail, fmt, ap);
    va_end (ap);
    s->status = status;
}

static int discard_cb (const char *data, size_t len, void *arg)
{
    return -1; /* one chunk proves the path exists */
}

/* Whether PATH exists in the container: 1, 0, or -1 when the engine could not tell. */
static int path_exists (struct session *s, const char *esc, const char *path)
{
    struct err e = { 0 };
    char *url = xasprintf ("/containers/%s/archive?path=%s", esc, path);
    int rc = docker_stream (s->docker, "GET", url, discard_cb, NULL, ENGINE_TIMEOUT_MS, &e);
    free (url);
    if ((rc >= 200 && rc < 300) || (rc < 0 && e.code == ECANCELED))
        return 1;
    return rc == 404 ? 0 : -1;
}

static void prepare (struct session *s)
{
    struct err e = { 0 };
    json_t *j = NULL;
    char *esc = docker_escape (s->name);
    s->docker = docker_open (s->socket, &e);
    if (!s->docker) {
        fail (s, 503, "Docker connection error: %s", e.text);
        goto out;
    }
    char *path = xasprintf ("/containers/%s/json", esc);
    int rc = docker_request (s->docker, "GET", path, NULL, &j, ENGINE_TIMEOUT_MS, &e);
    free (path);
    if (rc < 0) {
        fail (s, 503, "Docker connection error: %s", e.text);
        goto out;
    }
    if (rc == 404) {
        fail (s, 404, "Container '%s' not found.", s->name);
        goto out;
    }
    if (rc >= 400) {
        fail (s, 502, "Docker engine error inspecting container '%s': %s", s->name, e.text);
        goto out;
    }
    json_t *state = json_object_get (j, "State");
    const char *status = json_string_value (json_object_get (state, "Status"));
    if (!json_is_true (json_object_get (state, "Running"))
        || json_is_true (json_object_get (state, "Paused"))) {
        fail (s, 409, "Container '%s' is not running (status: %s).", s->name,
              status ? status : "unknown");
        goto out;
    }
    json_decref (j);
    j = NULL;

    /* /bin/bash when present, else /bin/sh (0.3 probes with `which` in an exec; asking the
     * engine for the file needs no process in the container) */
    if (path_exists (s, esc, "/bin/bash") == 1)
        s->shell = "/bin/bash";
    else if (path_exists (s, esc, "/bin/sh") != 0)
        s->shell = "/bin/sh"; /* also when the engine could not tell: let the exec say */
    else {
        fail (s, 409, "No suitable shell found in container.");
        goto out;
    }

    json_t *body = json_pack ("{s:b,s:b,s:b,s:b,s:[s],s:[s]}", "AttachStdin", 1,
                              "AttachStdout", 1, "AttachStderr", 1, "Tty", 1, "Cmd", s->shell,
                              "Env", "TERM=xterm");
    path = xasprintf ("/containers/%s/exec", esc);
    rc = docker_request (s->docker, "POST", path, body, &j, ENGINE_TIMEOUT_MS, &e);
    free (path);
    json_decref (body);
    const char *id = json_string_value (json_object_get (j, "Id"));
    if (rc < 0)
        fail (s, 503, "Docker connection error: %s", e.text);
    else if (rc == 404)
        fail (s, 404, "Container '%s' not found.", s->name);
    else if (rc == 409)
        fail (s, 409, "Container '%s' is not running: %s", s->name, e.text);
    else if (rc >= 400 || !id)
        fail (s, 502, "Docker engine error creating the shell in '%s': %s", s->name,
              rc >= 400 ? e.text : "no exec id in the reply");
    else if (strspn (id, "0123456789abcdef") != strlen (id))
        fail (s, 502, "Docker engine error: unexpected exec id");
    else
        s->exec_id = xstrdup (id);
out:
    json_decref (j);
    free (esc);
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

struct relay {
    struct session *s;
    struct ws_reader rd;
    struct ws_buf to_client;     /* encoded frames */
    struct ws_buf to_shell;      /* input bytes */
    unsigned char pend[4];       /* the start of a character cut by the last read */
    size_t npend;
    bool shell_open;             /* the exec stream has not ended */
    bool close_sent, close_got;
    bool client_gone;            /* the client's socket failed or hit EOF */
    int64_t close_deadline;      /* ms, once our close frame has left; 0 before */
    int64_t hard_deadline;       /* ms, when the session ends whatever is pending; 0 = none */
    int resize_rows, resize_cols, resize_tries; /* a resize to retry */
    int64_t resize_at;
    int exit_code;               /* -1 when unknown */
    const char *why;             /* how the session ended, for the log */
};

static int64_t mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_json (struct relay *r, json_t *j)
{
    char *txt = json_dumps (j, JSON_COMPACT);
    if (txt)
        ws_frame_append (&r->to_client, WS_OP_TEXT, true, txt, strlen (txt), false);
    free (txt);
    json_decref (j);
}

static void send_error (struct relay *r, const char *msg)
{
    send_json (r, json_pack ("{s:s,s:s}", "type", "error", "data", msg));
}

static void send_close (struct relay *r, int code, const char *reason)
{
    if (r->close_sent)
        return;
    ws_close_append (&r->to_client, code, reason, false);
    r->close_sent = true;
}

/* Relays LEN (at most OUTPUT_CHUNK) bytes of shell output, after the PEND bytes of a
 * character cut by the previous chunk; keeps a character cut by this one for the next. */
static void send_output (struct relay *r, const unsigned char *data, size_t len, bool final)
{
    unsigned char buf[OUTPUT_CHUNK + sizeof r->pend];
    memcpy (buf, r->pend, r->npend);
    if (len)
        memcpy (buf + r->npend, data, len);
    size_t n = r->npend + len;
    struct ws_buf clean = { 0 };
    size_t used = ws_utf8_clean (buf, n, final, &clean);
    r->npend = n - used;
    memcpy (r->pend, buf + used, r->npend);
    if (clean.len)
        send_json (r, json_pack ("{s:s,s:s%}", "type", "output", "data", (char *)clean.data,
                                 clean.len));
    ws_buf_free (&clean);
}

/* Opens the exec's stream: POST /exec/ID/start hijacked into a raw bidirectional socket
 * (TTY mode: no multiplexing headers). Bytes of the stream read with the reply headers go to
 * EARLY. Returns the socket, or -1 with E set. */
static int exec_attach (struct session *s, struct ws_buf *early, struct err *e)
{
    const char *sock = docker_socket_path (s->docker);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen (sock) >= sizeof sa.sun_path)
        return err_set (e, ENAMETOOLONG, "Docker socket path `%s` is too long", sock);
    strcpy (sa.sun_path, sock);
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set (e, errno, "socket: %s", strerror (errno));
    struct timeval tv = { .tv_sec = ENGINE_TIMEOUT_MS / 1000 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char *req = NULL;
    if (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        err_set (e, errno, "cannot connect to the Docker engine at %s: %s", sock,
                 strerror (errno));
        goto error;
    }
    static const char body[] = "{\"Detach\":false,\"Tty\":true}";
    req = xasprintf ("POST /exec/%s/start HTTP/1.1\r\nHost: docker\r\n"
                     "Content-Type: application/json\r\nConnection: Upgrade\r\n"
                     "Upgrade: tcp\r\nContent-Length: %zu\r\n\r\n%s",
                     s->exec_id, sizeof body - 1, body);
    size_t len = strlen (req), off = 0;
    while (off < len) {
        ssize_t w = send (fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err_set (e, errno, "sending exec start to the engine: %s", strerror (errno));
            goto error;
        }
        off += (size_t)w;
    }
    char hdr[16384];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == sizeof hdr - 1) {
            err_set (e, EPROTO, "exec start: reply headers too long");
            goto error;
        }
        ssize_t n = recv (fd, hdr + have, sizeof hdr - 1 - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err_set (e, n ? errno : EPROTO, "exec start: %s",
                     n ? strerror (errno) : "the engine closed the connection");
            goto error;
        }
        have += (size_t)n;
        hdr[have] = '\0';
        end = strstr (hdr, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf (hdr, "HTTP/%*d.%*d %d", &status) != 1) {
        err_set (e, EPROTO, "exec start: not an HTTP reply");
        goto error;
    }
    char *rest = end + 4;
    size_t nrest = have - (size_t)(rest - hdr);
    if (status != 101 && status != 200) {
        /* the error body is a small JSON object, normally read with the headers */
        json_t *j = json_loadb (rest, nrest, 0, NULL);
        const char *msg = json_string_value (json_object_get (j, "message"));
        err_set (e, EIO, "exec start: HTTP %d: %.*s", status, msg ? 400 : (int)nrest,
                 msg ? msg : rest);
        json_decref (j);
        goto error;
    }
    ws_buf_add (early, rest, nrest);
    free (req);
    tv.tv_sec = 0;
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
error:
    free (req);
    close (fd);
    return -1;
}

/* GET /exec/ID/json. Returns 0 with *RUNNING, *CODE (-1 if none) and *PID, or -1. */
static int exec_inspect (struct session *s, bool *running, int *code, long *pid)
{
    struct err e = { 0 };
    json_t *j = NULL;
    char *path = xasprintf ("/exec/%s/json", s->exec_id);
    int rc = docker_request (s->docker, "GET", path, NULL, &j, ENGINE_TIMEOUT_MS, &e);
    free (path);
    if (rc != 200 || !json_is_object (j)) {
        json_decref (j);
        return -1;
    }
    *running = json_is_true (json_object_get (j, "Running"));
    json_t *c = json_object_get (j, "ExitCode");
    *code = json_is_integer (c) ? (int)json_integer_value (c) : -1;
    *pid = (long)json_integer_value (json_object_get (j, "Pid"));
    json_decref (j);
    return 0;
}

/* The shell's exit code once its stream ended: the engine may need a moment to record it. */
static int shell_exit_code (struct session *s)
{
    for (int i = 0; i < 40; i++) {
        bool running;
        int code;
        long pid;
        if (exec_inspect (s, &running, &code, &pid) < 0)
            return -1;
        if (!running)
            return code;
        usleep (50000);
    }
    return -1;
}

/* The client left while the shell runs: the engine does not end an exec whose stream is
 * closed, so hang it up as a terminal would: SIGHUP to the exec's process (a host pid; its
 * foreground job gets SIGHUP from the kernel when it goes), SIGKILL if it is still there
 * after HANGUP_WAIT_MS. */
#define HANGUP_WAIT_MS 1000
static void hang_up_shell (struct session *s)
{
    bool running;
    int code;
    long pid;
    if (exec_inspect (s, &running, &code, &pid) < 0 || !running || pid <= 1)
        return;
    int sig = SIGHUP;
    for (int i = 0; i <= HANGUP_WAIT_MS / 100; i++) {
        if (i == HANGUP_WAIT_MS / 100)
            sig = SIGKILL;
        if (sig && kill ((pid_t)pid, sig) < 0) {
            if (errno != ESRCH)
                log_warn ("terminal: cannot hang up the shell in %s (pid %ld): %s", s->name,
                          pid, strerror (errno));
            return;
        }
        sig = 0;
        usleep (100000);
        long now_pid;
        if (exec_inspect (s, &running, &code, &now_pid) < 0 || !running || now_pid != pid)
            return;
    }
}

static void do_resize (struct relay *r)
{
    struct session *s = r->s;
    struct err e = { 0 };
    char *path = xasprintf ("/exec/%s/resize?h=%d&w=%d", s->exec_id, r->resize_rows,
                            r->resize_cols);
    int rc = docker_request (s->docker, "POST", path, NULL, NULL, ENGINE_TIMEOUT_MS, &e);
    free (path);
    if (rc >= 200 && rc < 300) {
        r->resize_tries = 0;
        return;
    }
    /* right after the start the exec may not run yet: try again shortly */
    if (++r->resize_tries < RESIZE_RETRIES && r->shell_open) {
        r->resize_at = mono_ms () + RESIZE_RETRY_MS;
        return;
    }
    log_debug ("terminal: resize in %s failed: %s", s->name, e.text);
    r->resize_tries = 0;
}

/* One message from the client. Invalid JSON and unknown types are ignored, as in 0.3. */
static void client_message (struct relay *r, const struct ws_msg *m)
{
    json_t *j = json_loadb ((const char *)m->data, m->len, JSON_ALLOW_NUL, NULL);
    const char *type = json_string_value (json_object_get (j, "type"));
    if (!type)
        goto out;
    if (strcmp (type, "input") == 0) {
        json_t *d = json_object_get (j, "data");
        if (json_is_string (d) && r->shell_open)
            ws_buf_add (&r->to_shell, json_string_value (d), json_string_length (d));
    } else if (strcmp (type, "resize") == 0) {
        json_t *rows = json_object_get (j, "rows"), *cols = json_object_get (j, "cols");
        if (json_is_integer (rows) && json_is_integer (cols) && json_integer_value (rows) > 0
            && json_integer_value (rows) <= 65535 && json_integer_value (cols) > 0
            && json_integer_value (cols) <= 65535 && r->shell_open) {
            r->resize_rows = (int)json_integer_value (rows);
            r->resize_cols = (int)json_integer_value (cols);
            r->resize_tries = 0;
            do_resize (r);
        }
    }
out:
    json_decref (j);
}

/* Acts on the complete messages the client sent. */
static void client_input (struct relay *r)
{
    struct ws_msg m;
    int cc, rc;
    struct err e = { 0 };
    while ((rc = ws_reader_next (&r->rd, &m, &cc, &e)) == 1) {
        switch (m.opcode) {
        case WS_OP_TEXT:
            if (!r->close_sent)
                client_message (r, &m);
            break;
        case WS_OP_PING:
            if (!r->close_sent)
                ws_frame_append (&r->to_client, WS_OP_PONG, true, m.data, m.len, false);
            break;
        case WS_OP_CLOSE:
            r->close_got = true;
            r->hard_deadline = mono_ms () + ABORT_WAIT_MS;
            if (!r->close_sent) {
                r->why = "closed by the client";
                send_close (r, m.close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL
                                                                  : m.close_code, "");
            }
            return;
        default:
            break; /* binary and pong messages are ignored */
        }
    }
    if (rc < 0) {
        log_info ("terminal: protocol error from the client of %s: %s", r->s->name, e.text);
        r->why = "protocol error";
        send_close (r, cc, e.text);
        r->close_got = true; /* the stream cannot be parsed: do not wait for the client's close */
        r->hard_deadline = mono_ms () + ABORT_WAIT_MS;
    }
}

/* Sends what is queued for the client. Returns -1 when the socket failed. */
static int flush_client (struct relay *r)
{
    while (r->to_client.len) {
        ssize_t w = send (r->s->ws, r->to_client.data, r->to_client.len,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0)
            return -1;
        ws_buf_consume (&r->to_client, (size_t)w);
    }
    /* A client slow to read the last output still gets all of it (while it reads nothing,
     * the session waits as it would while the shell runs); the wait for its answer to our
     * close starts once the close frame has left. */
    if (r->close_sent && !r->close_deadline)
        r->close_deadline = mono_ms () + CLOSE_WAIT_MS;
    return 0;
}

static void shell_ended (struct relay *r)
{
    if (!r->shell_open)
        return;
    r->shell_open = false;
    if (r->npend)
        send_output (r, NULL, 0, true);
    r->to_shell.len = 0;
    if (r->close_sent)
        return;
    r->exit_code = shell_exit_code (r->s);
    send_json (r, json_pack ("{s:s,s:i}", "type", "exit", "code", r->exit_code));
    r->why = "the shell exited";
    send_close (r, WS_CLOSE_NORMAL, "");
}

static void relay_loop (struct relay *r)
{
    struct session *s = r->s;
    unsigned char buf[65536];
    for (;;) {
        int64_t now = mono_ms ();
        if (r->hard_deadline && now >= r->hard_deadline)
            return;
        if (r->close_sent && r->to_client.len == 0
            && (r->close_got || (r->close_deadline && now >= r->close_deadline)))
            return;
        if (r->client_gone)
            return;
        struct pollfd p[3] = {
            { .fd = s->ws, .events = 0 },
            { .fd = r->shell_open ? s->exec_fd : -1, .events = 0 },
            { .fd = s->stop_fd, .events = POLLIN },
        };
        if (!r->close_got && r->to_shell.len < TO_SHELL_MAX)
            p[0].events |= POLLIN;
        if (r->to_client.len)
            p[0].events |= POLLOUT;
        if (r->to_client.len < TO_CLIENT_MAX)
            p[1].events |= POLLIN;
        if (r->to_shell.len)
            p[1].events |= POLLOUT;
        long timeout = -1;
        if (r->close_deadline)
            timeout = r->close_deadline > now ? (long)(r->close_deadline - now) : 0;
        if (r->hard_deadline) {
            long t = r->hard_deadline > now ? (long)(r->hard_deadline - now) : 0;
            if (timeout < 0 || t < timeout)
                timeout = t;
        }
        if (r->resize_tries) {
            long t = r->resize_at > now ? (long)(r->resize_at - now) : 0;
            if (timeout < 0 || t < timeout)
                timeout = t;
        }
        if (poll (p, 3, (int)timeout) < 0 && errno != EINTR) {
            r->why = "poll failed";
            return;
        }
        if (r->resize_tries && mono_ms () >= r->resize_at)
            do_resize (r);
        if (p[2].revents & POLLIN) {
            if (!r->close_sent) {
                send_error (r, "The host is shutting down.");
                r->why = "host shutting down";
                send_close (r, WS_CLOSE_GOING_AWAY, "host shutting down");
            }
            if (!r->hard_deadline || r->hard_deadline > mono_ms () + STOP_WAIT_MS)
                r->hard_deadline = mono_ms () + STOP_WAIT_MS;
            uint64_t v;
            if (read (s->stop_fd, &v, sizeof v) < 0) {
                /* drained or not, the session is closing */
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read (s->exec_fd, buf, OUTPUT_CHUNK);
            if (n > 0)
                send_output (r, buf, (size_t)n, false);
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                shell_ended (r);
        }
        if (r->shell_open && r->to_shell.len && (p[1].revents & POLLOUT)) {
            ssize_t n = send (s->exec_fd, r->to_shell.data, r->to_shell.len,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                ws_buf_consume (&r->to_shell, (size_t)n);
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                shell_ended (r);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv (s->ws, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                ws_reader_feed (&r->rd, buf, (size_t)n);
                client_input (r);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                r->client_gone = true;
                if (!r->close_sent)
                    r->why = "the client disconnected";
            }
        }
        if (flush_client (r) < 0) {
            r->client_gone = true;
            if (!r->close_sent)
                r->why = "the client disconnected";
        }
    }
}

static void *relay_main (void *arg)
{
    struct session *s = arg;
    struct relay r = { .s = s, .exit_code = -1, .why = "ended" };
    ws_reader_init (&r.rd, true, WS_MAX_MESSAGE);
    int one = 1;
    setsockopt (s->ws, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct err e = { 0 };
    struct ws_buf early = { 0 };
    s->exec_fd = exec_attach (s, &early, &e);
    if (s->exec_fd < 0) {
        log_err ("terminal: cannot start the shell in %s: %s", s->name, e.text);
        char msg[700];
        snprintf (msg, sizeof msg, "Cannot start the shell: %s", e.text);
        send_error (&r, msg);
        r.why = "the shell did not start";
        send_close (&r, WS_CLOSE_INTERNAL, "shell did not start");
    } else {
        r.shell_open = true;
        for (size_t off = 0; off < early.len; off += OUTPUT_CHUNK)
            send_output (&r, early.data + off,
                         early.len - off < OUTPUT_CHUNK ? early.len - off : OUTPUT_CHUNK, false);
        ws_reader_feed (&r.rd, s->early.data, s->early.len);
        client_input (&r);
    }
    ws_buf_free (&early);
    relay_loop (&r);
    if (r.shell_open) {
        /* closed by the client or the host: hang the shell up */
        close (s->exec_fd);
        s->exec_fd = -1;
        hang_up_shell (s);
    }
    if (r.exit_code >= 0)
        log_info ("terminal: shell in container %s ended: %s (exit %d)", s->name, r.why,
                  r.exit_code);
    else
        log_info ("terminal: shell in container %s ended: %s", s->name, r.why);
    ws_reader_free (&r.rd);
    ws_buf_free (&r.to_client);
    ws_buf_free (&r.to_shell);
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
    fail (s, 500, "Cannot start a thread for the terminal: %s", strerror (rc));
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
    const char *upgrade = http_header (req, "Upgrade");
    const char *connection = http_header (req, "Connection");
    const char *version = http_header (req, "Sec-WebSocket-Version");
    const char *key = http_header (req, "Sec-WebSocket-Key");
    if (!upgrade || !has_token (upgrade, "websocket") || !connection
        || !has_token (connection, "upgrade")) {
        snprintf (detail, sizeof detail,
                  "This is a WebSocket endpoint (hakuriver.docker-shell, the dashboard's "
                  "terminal): send a WebSocket upgrade request (Upgrade: websocket, "
                  "Connection: Upgrade)");
        goto error;
    }
    if (!version || strcmp (version, "13") != 0) {
        http_reply_header (req, "Sec-WebSocket-Version", "13");
        snprintf (detail, sizeof detail, "Unsupported Sec-WebSocket-Version '%.20s': version 13 "
                  "(RFC 6455) is required", version ? version : "");
        goto error;
    }
    if (!ws_key_valid (key)) {
        snprintf (detail, sizeof detail,
                  "Missing or invalid Sec-WebSocket-Key: the base64 of 16 bytes is required");
        goto error;
    }
    struct session *s = xcalloc (1, sizeof *s);
    s->name = xstrdup (container);
    s->socket = xstrdup (h->conf->docker_socket ? h->conf->docker_socket : "");
    s->ws = s->exec_fd = s->stop_fd = -1;
    ws_accept_key (key, s->accept);
    http_hold_async (req, prep_start_cb, prep_finish_cb, session_free, s);
    return;
error:
    http_reply_error (req, status, "%s", detail);
}
