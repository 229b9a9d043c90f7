/* docker_exec.c - a shell in a running container (Docker exec with a TTY) relayed to a
 * WebSocket with the terminal messages of docs/docker-shell.md */
#include "common/docker_exec.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/websocket.h"
#include "common/xalloc.h"

#define ENGINE_TIMEOUT_MS 10000 /* one Engine API call; a local engine answers in milliseconds */
#define OUTPUT_CHUNK 4096       /* shell output relayed per message, as 0.3 does */
#define TO_WS_MAX (256u << 10)  /* stop reading the shell while this much waits to be sent */
#define TO_SHELL_MAX (1u << 20) /* stop reading the WebSocket while this much input waits */
#define CLOSE_WAIT_MS 2000      /* once our close frame is sent, how long the peer gets to
                                   answer it */
#define STOP_WAIT_MS 1000       /* stopping: the most a session may still take */
#define ABORT_WAIT_MS 5000      /* after a protocol error or the peer's close: the most the
                                   output already queued may take to leave */
#define RESIZE_RETRY_MS 100     /* a resize sent before the exec runs is retried this often */
#define RESIZE_RETRIES 30
#define HANGUP_WAIT_MS 1000     /* SIGHUP to the shell, then SIGKILL after this */
#define EXIT_WAIT_TRIES 40      /* x 50 ms: the engine may need a moment to record the status */
#define GONE_WAIT_MS 1500       /* a shell killed by a signal: how long the container's stop
                                   may take to show in its state */

static int64_t mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- creating the exec ------------------------------------------------------------------ */

static int discard_cb (const char *data, size_t len, void *arg)
{
    return -1; /* one chunk proves the path exists */
}

/* Whether PATH exists in the container: 1, 0, or -1 when the engine could not tell. */
static int path_exists (struct docker *d, const char *esc, const char *path)
{
    struct err e = { 0 };
    char *url = xasprintf ("/containers/%s/archive?path=%s", esc, path);
    int rc = docker_stream (d, "GET", url, discard_cb, NULL, ENGINE_TIMEOUT_MS, &e);
    free (url);
    if ((rc >= 200 && rc < 300) || (rc < 0 && e.code == ECANCELED))
        return 1;
    return rc == 404 ? 0 : -1;
}

char *docker_exec_create (struct docker *d, const char *container, const char **shell,
                          struct err *e)
{
    struct err de = { 0 };
    json_t *j = NULL;
    char *id_out = NULL;
    const char *sh;
    char *esc = docker_escape (container);
    char *path = xasprintf ("/containers/%s/json", esc);
    int rc = docker_request (d, "GET", path, NULL, &j, ENGINE_TIMEOUT_MS, &de);
    free (path);
    if (rc < 0) {
        err_http (e, 503, "Docker connection error: %s", de.text);
        goto out;
    }
    if (rc == 404) {
        err_http (e, 404, "Container '%s' not found.", container);
        goto out;
    }
    if (rc >= 400) {
        err_http (e, 502, "Docker engine error inspecting container '%s': %s", container,
                  de.text);
        goto out;
    }
    json_t *state = json_object_get (j, "State");
    const char *status = json_string_value (json_object_get (state, "Status"));
    if (!json_is_true (json_object_get (state, "Running"))
        || json_is_true (json_object_get (state, "Paused"))) {
        err_http (e, 409, "Container '%s' is not running (status: %s).", container,
                  status ? status : "unknown");
        goto out;
    }
    json_decref (j);
    j = NULL;

    /* /bin/bash when present, else /bin/sh (0.3 probes with `which` in an exec; asking the
     * engine for the file needs no process in the container) */
    if (path_exists (d, esc, "/bin/bash") == 1)
        sh = "/bin/bash";
    else if (path_exists (d, esc, "/bin/sh") != 0)
        sh = "/bin/sh"; /* also when the engine could not tell: let the exec say */
    else {
        err_http (e, 409, "No suitable shell found in container.");
        goto out;
    }

    json_t *body = json_pack ("{s:b,s:b,s:b,s:b,s:[s],s:[s]}", "AttachStdin", 1,
                              "AttachStdout", 1, "AttachStderr", 1, "Tty", 1, "Cmd", sh,
                              "Env", "TERM=xterm");
    path = xasprintf ("/containers/%s/exec", esc);
    rc = docker_request (d, "POST", path, body, &j, ENGINE_TIMEOUT_MS, &de);
    free (path);
    json_decref (body);
    const char *id = json_string_value (json_object_get (j, "Id"));
    if (rc < 0)
        err_http (e, 503, "Docker connection error: %s", de.text);
    else if (rc == 404)
        err_http (e, 404, "Container '%s' not found.", container);
    else if (rc == 409)
        err_http (e, 409, "Container '%s' is not running: %s", container, de.text);
    else if (rc >= 400 || !id)
        err_http (e, 502, "Docker engine error creating the shell in '%s': %s", container,
                  rc >= 400 ? de.text : "no exec id in the reply");
    else if (strspn (id, "0123456789abcdef") != strlen (id))
        err_http (e, 502, "Docker engine error: unexpected exec id");
    else {
        id_out = xstrdup (id);
        *shell = sh;
    }
out:
    json_decref (j);
    free (esc);
    return id_out;
}

/* ---- the exec's stream and state ---------------------------------------------------------- */

/* Opens the exec's stream: POST /exec/ID/start hijacked into a raw bidirectional socket
 * (TTY mode: no multiplexing headers). Bytes of the stream read with the reply headers go to
 * EARLY. Returns the socket, or -1 with E set. */
static int exec_attach (struct docker *d, const char *exec_id, struct ws_buf *early,
                        struct err *e)
{
    const char *sock = docker_socket_path (d);
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
                     exec_id, sizeof body - 1, body);
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
static int exec_inspect (struct docker *d, const char *exec_id, bool *running, int *code,
                         long *pid)
{
    struct err e = { 0 };
    json_t *j = NULL;
    char *path = xasprintf ("/exec/%s/json", exec_id);
    int rc = docker_request (d, "GET", path, NULL, &j, ENGINE_TIMEOUT_MS, &e);
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
static int shell_exit_code (struct docker *d, const char *exec_id)
{
    for (int i = 0; i < EXIT_WAIT_TRIES; i++) {
        bool running;
        int code;
        long pid;
        if (exec_inspect (d, exec_id, &running, &code, &pid) < 0)
            return -1;
        if (!running)
            return code;
        usleep (50000);
    }
    return -1;
}

/* Whether the container still runs: 1, 0 (stopped or gone), -1 when the engine did not say. */
static int container_running (struct docker *d, const char *container)
{
    struct err e = { 0 };
    json_t *j = NULL;
    char *esc = docker_escape (container);
    char *path = xasprintf ("/containers/%s/json", esc);
    int rc = docker_request (d, "GET", path, NULL, &j, ENGINE_TIMEOUT_MS, &e);
    free (path);
    free (esc);
    int running = -1;
    if (rc == 404)
        running = 0;
    else if (rc == 200)
        running = json_is_true (json_object_get (json_object_get (j, "State"), "Running"));
    json_decref (j);
    return running;
}

/* The peer left while the shell runs: the engine does not end an exec whose stream is
 * closed, so hang it up as a terminal would: SIGHUP to the exec's process (a pid of this
 * machine; its foreground job gets SIGHUP from the kernel when it goes), SIGKILL if it is
 * still there after HANGUP_WAIT_MS. */
static void hang_up_shell (struct docker_exec_relay *x)
{
    bool running;
    int code;
    long pid;
    if (exec_inspect (x->d, x->exec_id, &running, &code, &pid) < 0 || !running || pid <= 1)
        return;
    int sig = SIGHUP;
    for (int i = 0; i <= HANGUP_WAIT_MS / 100; i++) {
        if (i == HANGUP_WAIT_MS / 100)
            sig = SIGKILL;
        if (sig && kill ((pid_t)pid, sig) < 0) {
            if (errno != ESRCH)
                err_set (&x->err, errno, "cannot hang up the shell in %s (pid %ld): %s",
                         x->container, pid, strerror (errno));
            return;
        }
        sig = 0;
        usleep (100000);
        long now_pid;
        if (exec_inspect (x->d, x->exec_id, &running, &code, &now_pid) < 0 || !running
            || now_pid != pid)
            return;
    }
}

/* ---- the relay ---------------------------------------------------------------------------- */

struct relay {
    struct docker_exec_relay *x;
    int exec_fd;                 /* the hijacked exec stream */
    struct ws_reader rd;
    struct ws_buf to_ws;         /* encoded frames */
    struct ws_buf to_shell;      /* input bytes */
    unsigned char pend[4];       /* the start of a character cut by the last read */
    size_t npend;
    bool shell_open;             /* the exec stream has not ended */
    bool close_sent, close_got;
    bool ws_gone;                /* the WebSocket failed or hit EOF */
    int64_t close_deadline;      /* ms, once our close frame has left; 0 before */
    int64_t hard_deadline;       /* ms, when the session ends whatever is pending; 0 = none */
    int resize_rows, resize_cols, resize_tries; /* a resize to retry */
    int64_t resize_at;
};

static void send_json (struct relay *r, json_t *j)
{
    char *txt = json_dumps (j, JSON_COMPACT);
    if (txt)
        ws_frame_append (&r->to_ws, WS_OP_TEXT, true, txt, strlen (txt), !r->x->server);
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
    ws_close_append (&r->to_ws, code, reason, !r->x->server);
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

static void do_resize (struct relay *r)
{
    struct err e = { 0 };
    char *path = xasprintf ("/exec/%s/resize?h=%d&w=%d", r->x->exec_id, r->resize_rows,
                            r->resize_cols);
    int rc = docker_request (r->x->d, "POST", path, NULL, NULL, ENGINE_TIMEOUT_MS, &e);
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
    r->resize_tries = 0; /* given up: the shell keeps its size */
}

static void resize (struct relay *r, int rows, int cols)
{
    r->resize_rows = rows;
    r->resize_cols = cols;
    r->resize_tries = 0;
    do_resize (r);
}

/* One message from the peer. Invalid JSON and unknown types are ignored, as in 0.3. */
static void peer_message (struct relay *r, const struct ws_msg *m)
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
            && json_integer_value (cols) <= 65535 && r->shell_open)
            resize (r, (int)json_integer_value (rows), (int)json_integer_value (cols));
    }
out:
    json_decref (j);
}

/* Acts on the complete messages the peer sent. */
static void peer_input (struct relay *r)
{
    struct ws_msg m;
    int cc, rc;
    struct err e = { 0 };
    while ((rc = ws_reader_next (&r->rd, &m, &cc, &e)) == 1) {
        switch (m.opcode) {
        case WS_OP_TEXT:
            if (!r->close_sent)
                peer_message (r, &m);
            break;
        case WS_OP_PING:
            if (!r->close_sent)
                ws_frame_append (&r->to_ws, WS_OP_PONG, true, m.data, m.len, !r->x->server);
            break;
        case WS_OP_CLOSE:
            r->close_got = true;
            r->hard_deadline = mono_ms () + ABORT_WAIT_MS;
            if (!r->close_sent) {
                r->x->why = r->x->server ? "closed by the client" : "closed by the host";
                send_close (r, m.close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL
                                                                  : m.close_code, "");
            }
            return;
        default:
            break; /* binary and pong messages are ignored */
        }
    }
    if (rc < 0) {
        r->x->why = "protocol error";
        err_set (&r->x->err, EPROTO, "protocol error from the peer: %s", e.text);
        send_close (r, cc, e.text);
        r->close_got = true; /* the stream cannot be parsed: do not wait for the peer's close */
        r->hard_deadline = mono_ms () + ABORT_WAIT_MS;
    }
}

/* Sends what is queued for the peer. Returns -1 when the socket failed. */
static int flush_ws (struct relay *r)
{
    while (r->to_ws.len) {
        ssize_t w = send (r->x->ws, r->to_ws.data, r->to_ws.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0)
            return -1;
        ws_buf_consume (&r->to_ws, (size_t)w);
    }
    /* A peer slow to read the last output still gets all of it (while it reads nothing, the
     * session waits as it would while the shell runs); the wait for its answer to our close
     * starts once the close frame has left. */
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
    struct docker_exec_relay *x = r->x;
    x->exit_code = shell_exit_code (x->d, x->exec_id);
    /* the stream also ends when the container stops under the shell (the task was killed or
     * ended): say so, since the exit status alone (often unknown then) would not. The shell
     * dies with the container's init, a moment before the engine records the stop: after a
     * death by signal (or no status), look again for up to GONE_WAIT_MS. */
    int running = container_running (x->d, x->container);
    bool by_signal = x->exit_code < 0 || x->exit_code > 128;
    for (int i = 0; running == 1 && by_signal && i < GONE_WAIT_MS / 100; i++) {
        usleep (100000);
        running = container_running (x->d, x->container);
    }
    if (running == 0) {
        char msg[300];
        if (!x->gone_message)
            snprintf (msg, sizeof msg, "Container '%s' stopped.", x->container);
        send_error (r, x->gone_message ? x->gone_message : msg);
        x->why = "the container stopped";
    } else {
        x->why = "the shell exited";
    }
    send_json (r, json_pack ("{s:s,s:i}", "type", "exit", "code", x->exit_code));
    send_close (r, WS_CLOSE_NORMAL, "");
}

static void relay_loop (struct relay *r)
{
    struct docker_exec_relay *x = r->x;
    unsigned char buf[65536];
    for (;;) {
        int64_t now = mono_ms ();
        if (r->hard_deadline && now >= r->hard_deadline)
            return;
        if (r->close_sent && r->to_ws.len == 0
            && (r->close_got || (r->close_deadline && now >= r->close_deadline)))
            return;
        if (r->ws_gone)
            return;
        struct pollfd p[3] = {
            { .fd = x->ws, .events = 0 },
            { .fd = r->shell_open ? r->exec_fd : -1, .events = 0 },
            { .fd = x->stop_fd, .events = POLLIN },
        };
        if (!r->close_got && r->to_shell.len < TO_SHELL_MAX)
            p[0].events |= POLLIN;
        if (r->to_ws.len)
            p[0].events |= POLLOUT;
        if (r->to_ws.len < TO_WS_MAX)
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
            x->why = "poll failed";
            return;
        }
        if (r->resize_tries && mono_ms () >= r->resize_at)
            do_resize (r);
        if (p[2].revents & POLLIN) {
            if (!r->close_sent) {
                send_error (r, x->stop_message ? x->stop_message : "Shutting down.");
                x->why = "shutting down";
                send_close (r, WS_CLOSE_GOING_AWAY, "shutting down");
            }
            if (!r->hard_deadline || r->hard_deadline > mono_ms () + STOP_WAIT_MS)
                r->hard_deadline = mono_ms () + STOP_WAIT_MS;
            uint64_t v;
            if (read (x->stop_fd, &v, sizeof v) < 0) {
                /* drained or not, the session is closing */
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read (r->exec_fd, buf, OUTPUT_CHUNK);
            if (n > 0)
                send_output (r, buf, (size_t)n, false);
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                shell_ended (r);
        }
        if (r->shell_open && r->to_shell.len && (p[1].revents & POLLOUT)) {
            ssize_t n = send (r->exec_fd, r->to_shell.data, r->to_shell.len,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                ws_buf_consume (&r->to_shell, (size_t)n);
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                shell_ended (r);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv (x->ws, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                ws_reader_feed (&r->rd, buf, (size_t)n);
                peer_input (r);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                r->ws_gone = true;
                if (!r->close_sent)
                    x->why = x->server ? "the client disconnected" : "the host disconnected";
            }
        }
        if (flush_ws (r) < 0) {
            r->ws_gone = true;
            if (!r->close_sent)
                x->why = x->server ? "the client disconnected" : "the host disconnected";
        }
    }
}

int docker_exec_relay (struct docker_exec_relay *x)
{
    struct relay r = { .x = x, .exec_fd = -1 };
    x->exit_code = -1;
    x->started = false;
    x->why = "ended";
    err_clear (&x->err);
    ws_reader_init (&r.rd, x->server, WS_MAX_MESSAGE);
    int one = 1;
    setsockopt (x->ws, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct ws_buf early = { 0 };
    r.exec_fd = exec_attach (x->d, x->exec_id, &early, &x->err);
    if (r.exec_fd < 0) {
        char msg[700];
        snprintf (msg, sizeof msg, "Cannot start the shell: %s", x->err.text);
        send_error (&r, msg);
        x->why = "the shell did not start";
        send_close (&r, WS_CLOSE_INTERNAL, "shell did not start");
    } else {
        x->started = true;
        r.shell_open = true;
        for (size_t off = 0; off < early.len; off += OUTPUT_CHUNK)
            send_output (&r, early.data + off,
                         early.len - off < OUTPUT_CHUNK ? early.len - off : OUTPUT_CHUNK, false);
        if (x->rows > 0 && x->cols > 0 && x->rows <= 65535 && x->cols <= 65535)
            resize (&r, x->rows, x->cols);
        ws_reader_feed (&r.rd, x->early, x->early_len);
        peer_input (&r);
    }
    ws_buf_free (&early);
    relay_loop (&r);
    if (r.shell_open) {
        /* closed by the peer or stopped: hang the shell up */
        close (r.exec_fd);
        r.exec_fd = -1;
        hang_up_shell (x);
    }
    if (r.exec_fd >= 0)
        close (r.exec_fd);
    ws_reader_free (&r.rd);
    ws_buf_free (&r.to_ws);
    ws_buf_free (&r.to_shell);
    return x->started ? 0 : -1;
}

/* Parses what the peer sent; sets *CLOSE_GOT on its close. Returns -1 on a malformed stream. */
static int drain_peer (struct ws_reader *rd, bool *close_got)
{
    struct ws_msg m;
    int cc, mr;
    struct err e = { 0 };
    while ((mr = ws_reader_next (rd, &m, &cc, &e)) == 1)
        if (m.opcode == WS_OP_CLOSE)
            *close_got = true;
    return mr < 0 ? -1 : 0;
}

int docker_exec_send_error (int ws, bool server, const void *early, size_t early_len,
                            const char *message, int code)
{
    struct ws_buf out = { 0 };
    json_t *j = json_pack ("{s:s,s:s}", "type", "error", "data", message);
    char *txt = j ? json_dumps (j, JSON_COMPACT) : NULL;
    json_decref (j);
    if (txt)
        ws_frame_append (&out, WS_OP_TEXT, true, txt, strlen (txt), !server);
    free (txt);
    ws_close_append (&out, code, "", !server);
    int rc = 0;
    int64_t deadline = mono_ms () + CLOSE_WAIT_MS;
    struct ws_reader rd;
    ws_reader_init (&rd, server, WS_MAX_MESSAGE);
    ws_reader_feed (&rd, early, early_len);
    bool close_got = false, broken = drain_peer (&rd, &close_got) < 0;
    /* until our frames left and the peer's close came (or cannot come) */
    while (out.len || (!close_got && !broken)) {
        int64_t left = deadline - mono_ms ();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = ws, .events = POLLIN | (out.len ? POLLOUT : 0) };
        if (poll (&p, 1, (int)left) < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
        if (out.len && (p.revents & POLLOUT)) {
            ssize_t w = send (ws, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                ws_buf_consume (&out, (size_t)w);
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                rc = -1;
                break;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            unsigned char buf[4096];
            ssize_t n = recv (ws, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                rc = out.len ? -1 : 0;
                break;
            }
            if (n > 0) {
                ws_reader_feed (&rd, buf, (size_t)n);
                if (drain_peer (&rd, &close_got) < 0)
                    broken = true;
            }
        }
    }
    ws_reader_free (&rd);
    ws_buf_free (&out);
    return rc;
}
