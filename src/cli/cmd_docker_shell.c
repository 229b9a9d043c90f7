/* cmd_docker_shell.c - hakuriver.docker-shell: an interactive terminal into a host environment
 * container, over the host's WebSocket /docker/host/containers/NAME/terminal.
 *
 * With a terminal on stdin it is put in raw mode, so every key (Ctrl-C, Ctrl-D, arrows) goes
 * to the remote shell; the size is sent at start and on SIGWINCH. Without one, stdin is sent
 * as typed input and its end as Ctrl-D. Either way the program runs until the remote shell
 * exits and exits with its status (1 when the connection fails, 2 on a usage error). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "common/proto.h"
#include "common/websocket.h"
#include "common/xalloc.h"
#include "entry.h"

#define PROG "hakuriver.docker-shell"
#define CONNECT_TIMEOUT_MS 5000   /* as the other CLIs (HTTP_CLIENT_CONNECT_TIMEOUT) */
#define HANDSHAKE_TIMEOUT_MS 60000 /* the host inspects the container and creates the exec */
#define INPUT_CHUNK 4096          /* stdin bytes per input message */
#define TO_HOST_MAX (64u << 10)   /* stop reading stdin while this much waits to be sent */
#define EOF_RETRY_MS 500          /* quiet time after which an end of input is sent again */

/* ---- terminal state and signals (file scope: the signal handler and atexit need them) ---- */

static struct termios saved_tio;
static bool raw_on;
static int sig_pipe[2] = { -1, -1 };

static void term_restore (void)
{
    if (raw_on) {
        tcsetattr (STDIN_FILENO, TCSANOW, &saved_tio);
        raw_on = false;
    }
}

static void term_raw (void)
{
    struct termios t = saved_tio;
    cfmakeraw (&t);
    if (tcsetattr (STDIN_FILENO, TCSANOW, &t) == 0)
        raw_on = true;
}

static void on_signal (int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write (sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full: signals are already waiting to be handled */
    }
    errno = saved;
}

static const int handled_signals[] = { SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGTSTP,
                                       SIGCONT };

static void catch_signal (int sig)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset (&sa.sa_mask);
    sigaction (sig, &sa, NULL);
}

static int signals_install (void)
{
    if (pipe2 (sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++)
        catch_signal (handled_signals[i]);
    return 0;
}

static void signals_reset (void)
{
    for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++)
        signal (handled_signals[i], SIG_DFL);
    if (sig_pipe[0] >= 0) {
        close (sig_pipe[0]);
        close (sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
}

/* Prints to stderr; in raw mode "\n" does not return the carriage, hence "\r\n". */
static void say (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void say (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fputs (PROG ": ", stderr);
    vfprintf (stderr, fmt, ap);
    fputs (raw_on ? "\r\n" : "\n", stderr);
    va_end (ap);
}

/* ---- the session -------------------------------------------------------------------------- */

struct shell {
    const char *name;            /* container */
    char hostport[300];          /* "addr:port" for messages and the Host header */
    int fd;                      /* the connection (non-blocking) */
    bool tty;                    /* stdin is a terminal (raw mode) */
    struct ws_reader rd;
    struct ws_buf to_host;       /* encoded frames */
    unsigned char pend[4];       /* stdin bytes of a character cut by the last read */
    size_t npend;
    bool stdin_open;
    bool last_newline;           /* the last input byte sent was '\n' (or nothing was sent) */
    bool eof_sent;               /* stdin (a pipe) ended and Ctrl-D was sent */
    bool output_since_eof;       /* the shell wrote something since the last Ctrl-D */
    int64_t last_output;         /* ms */
    bool close_sent, close_got;
    int exit_code;               /* from the exit message; -2 until one arrives */
    bool host_error;             /* an error message arrived */
};

static int64_t mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_json (struct shell *sh, json_t *j)
{
    char *txt = json_dumps (j, JSON_COMPACT);
    if (txt)
        ws_frame_append (&sh->to_host, WS_OP_TEXT, true, txt, strlen (txt), true);
    free (txt);
    json_decref (j);
}

static void send_input (struct shell *sh, const void *data, size_t len)
{
    if (len)
        send_json (sh, json_pack ("{s:s,s:s%}", "type", "input", "data", (const char *)data,
                                  len));
}

static void send_close (struct shell *sh, int code)
{
    if (sh->close_sent)
        return;
    ws_close_append (&sh->to_host, code, "", true);
    sh->close_sent = true;
}

/* The window size: the terminal's, or 24x80 when there is none (the pty would be 0x0). */
static void send_size (struct shell *sh)
{
    struct winsize ws = { 0 };
    if ((ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
        && (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)) {
        ws.ws_row = 24;
        ws.ws_col = 80;
    }
    send_json (sh, json_pack ("{s:s,s:i,s:i}", "type", "resize", "rows", (int)ws.ws_row, "cols",
                              (int)ws.ws_col));
}

/* Reads stdin and queues it as input, as UTF-8 (JSON strings carry text: a byte sequence
 * that is not UTF-8 is replaced by U+FFFD). At the end of a pipe, sends Ctrl-D so that the
 * remote shell sees the end of its input too. */
static int read_stdin (struct shell *sh)
{
    unsigned char buf[INPUT_CHUNK + sizeof sh->pend];
    memcpy (buf, sh->pend, sh->npend);
    ssize_t n = read (STDIN_FILENO, buf + sh->npend, INPUT_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    bool eof = n <= 0;
    size_t have = sh->npend + (n > 0 ? (size_t)n : 0);
    struct ws_buf clean = { 0 };
    size_t used = ws_utf8_clean (buf, have, eof, &clean);
    sh->npend = have - used;
    memcpy (sh->pend, buf + used, sh->npend);
    send_input (sh, clean.data, clean.len);
    if (clean.len)
        sh->last_newline = clean.data[clean.len - 1] == '\n';
    ws_buf_free (&clean);
    if (!eof)
        return 0;
    sh->stdin_open = false;
    if (sh->tty)
        return -1; /* the terminal went away */
    /* Ctrl-D ends a pty's input at the start of a line. A last line without its newline
     * gets one: a shell runs such a line at the end of a script, but its line editor takes
     * a Ctrl-D after text for "delete" */
    if (sh->last_newline)
        send_input (sh, "\x04", 1);
    else
        send_input (sh, "\n\x04", 2);
    sh->eof_sent = true;
    sh->output_since_eof = false;
    return 0;
}

static int write_all (int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write (fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll (&pfd, 1, -1);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Handles one message from the host. Returns -1 on a fatal local error. */
static int host_message (struct shell *sh, const struct ws_msg *m)
{
    json_t *j = json_loadb ((const char *)m->data, m->len, JSON_ALLOW_NUL, NULL);
    const char *type = json_string_value (json_object_get (j, "type"));
    json_t *data = json_object_get (j, "data");
    int rc = 0;
    if (!type) {
        /* not ours: ignored, as the host ignores what it does not understand */
    } else if (strcmp (type, "output") == 0 && json_is_string (data)) {
        sh->last_output = mono_ms ();
        sh->output_since_eof = sh->eof_sent;
        if (write_all (STDOUT_FILENO, json_string_value (data), json_string_length (data)) < 0) {
            say ("error: cannot write the output: %s", strerror (errno));
            rc = -1;
        }
    } else if (strcmp (type, "error") == 0 && json_is_string (data)) {
        char *clean = output_clean (json_string_value (data));
        say ("error from host %s (container '%s'): %s", sh->hostport, sh->name, clean);
        free (clean);
        sh->host_error = true;
    } else if (strcmp (type, "exit") == 0) {
        json_t *c = json_object_get (j, "code");
        sh->exit_code = json_is_integer (c) ? (int)json_integer_value (c) : -1;
    }
    json_decref (j);
    return rc;
}

/* Parses what the host sent. Returns -1 on a fatal error. */
static int host_input (struct shell *sh)
{
    struct ws_msg m;
    int cc, rc;
    struct err e = { 0 };
    while ((rc = ws_reader_next (&sh->rd, &m, &cc, &e)) == 1) {
        switch (m.opcode) {
        case WS_OP_TEXT:
            if (host_message (sh, &m) < 0) {
                send_close (sh, WS_CLOSE_GOING_AWAY);
                return -1;
            }
            break;
        case WS_OP_PING:
            if (!sh->close_sent)
                ws_frame_append (&sh->to_host, WS_OP_PONG, true, m.data, m.len, true);
            break;
        case WS_OP_CLOSE:
            sh->close_got = true;
            if (sh->exit_code == -2 && !sh->host_error) {
                char *reason = xstrndup ((const char *)m.data, m.len);
                char *clean = output_clean (reason);
                say ("error: host %s closed the session of container '%s' (code %d%s%s)",
                     sh->hostport, sh->name, m.close_code, *clean ? ": " : "", clean);
                free (clean);
                free (reason);
            }
            send_close (sh, m.close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : m.close_code);
            return 0;
        default:
            break;
        }
    }
    if (rc < 0) {
        say ("error: protocol error from host %s (container '%s'): %s", sh->hostport, sh->name,
             e.text);
        send_close (sh, cc);
        return -1;
    }
    return 0;
}

static int flush_host (struct shell *sh)
{
    while (sh->to_host.len) {
        ssize_t w = send (sh->fd, sh->to_host.data, sh->to_host.len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0)
            return -1;
        ws_buf_consume (&sh->to_host, (size_t)w);
    }
    return 0;
}

/* Reacts to the signals queued by on_signal. Returns a signal that ends the session, or 0. */
static int handle_signals (struct shell *sh)
{
    unsigned char sigs[32];
    ssize_t n;
    int end = 0;
    while ((n = read (sig_pipe[0], sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            switch (sigs[i]) {
            case SIGWINCH:
                if (sh->tty)
                    send_size (sh);
                break;
            case SIGTSTP:
                /* stop with the terminal restored; SIGCONT puts it back in raw mode */
                term_restore ();
                signal (SIGTSTP, SIG_DFL);
                raise (SIGTSTP);
                catch_signal (SIGTSTP);
                break;
            case SIGCONT:
                if (sh->tty) {
                    term_raw ();
                    send_size (sh);
                }
                break;
            default:
                end = sigs[i];
                break;
            }
        }
    return end;
}

/* Relays until the session ends. Returns the exit status. */
static int session_loop (struct shell *sh)
{
    unsigned char buf[65536];
    int64_t close_deadline = 0;
    for (;;) {
        if (sh->close_sent && !close_deadline)
            close_deadline = mono_ms () + 2000;
        if (sh->close_sent && ((sh->close_got && sh->to_host.len == 0)
                               || mono_ms () >= close_deadline))
            break;
        struct pollfd p[3] = {
            { .fd = sh->fd, .events = POLLIN },
            { .fd = sh->stdin_open && !sh->close_sent && sh->to_host.len < TO_HOST_MAX
                        ? STDIN_FILENO : -1,
              .events = POLLIN },
            { .fd = sig_pipe[0], .events = POLLIN },
        };
        if (sh->to_host.len)
            p[0].events |= POLLOUT;
        int timeout = -1;
        if (close_deadline) {
            int64_t left = close_deadline - mono_ms ();
            timeout = left > 0 ? (int)left : 0;
        } else if (sh->output_since_eof) {
            int64_t left = sh->last_output + EOF_RETRY_MS - mono_ms ();
            timeout = left > 0 ? (int)left : 0;
        }
        if (poll (p, 3, timeout) < 0 && errno != EINTR) {
            say ("error: poll: %s", strerror (errno));
            return 1;
        }
        /* A pty drops an end of input typed ahead while the shell switches its line editor
         * on (the Ctrl-D reaches it as a NUL): once the shell has written something (a new
         * prompt) and gone quiet, say it again. */
        if (sh->output_since_eof && !sh->close_sent
            && mono_ms () >= sh->last_output + EOF_RETRY_MS) {
            send_input (sh, "\x04", 1);
            sh->output_since_eof = false;
        }
        if (p[2].revents & POLLIN) {
            int sig = handle_signals (sh);
            if (sig) {
                send_close (sh, WS_CLOSE_GOING_AWAY);
                flush_host (sh);
                term_restore ();
                say ("interrupted by signal %d; the remote shell is hung up", sig);
                return 128 + sig;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (read_stdin (sh) < 0)
                send_close (sh, WS_CLOSE_NORMAL);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv (sh->fd, buf, sizeof buf, 0);
            if (n > 0) {
                ws_reader_feed (&sh->rd, buf, (size_t)n);
                if (host_input (sh) < 0) {
                    flush_host (sh);
                    return 1;
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                if (sh->exit_code != -2)
                    break; /* the shell's status arrived: a missing close does not matter */
                say ("error: the connection to host %s was lost (container '%s')", sh->hostport,
                     sh->name);
                return 1;
            }
        }
        if (flush_host (sh) < 0) {
            if (sh->exit_code != -2)
                break;
            say ("error: the connection to host %s was lost (container '%s'): %s", sh->hostport,
                 sh->name, strerror (errno));
            return 1;
        }
    }
    if (sh->exit_code == -2) {
        if (!sh->close_got && !sh->host_error)
            say ("error: the session of container '%s' on host %s ended without the shell's "
                 "exit status", sh->name, sh->hostport);
        return 1;
    }
    if (sh->exit_code < 0 || sh->exit_code > 255) {
        say ("error: the remote shell's exit status is unknown (%d)", sh->exit_code);
        return 1;
    }
    return sh->exit_code;
}

/* ---- connection and handshake ------------------------------------------------------------- */

/* Waits until FD is ready for EVENTS or DEADLINE (ms) passes. Returns 0, or -1 (ETIMEDOUT). */
static int wait_fd (int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms ();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll (&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to ADDR:PORT (non-blocking socket). Returns the socket or -1 with E set. */
static int tcp_connect (const char *addr, int port, struct err *e)
{
    char service[16];
    snprintf (service, sizeof service, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo (addr, service, &hints, &res);
    if (gai != 0)
        return err_set (e, ECONNREFUSED, "%s", gai_strerror (gai));
    int fd = -1, why = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     ai->ai_protocol);
        if (fd < 0) {
            why = errno;
            continue;
        }
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            why = errno;
        } else if (wait_fd (fd, POLLOUT, mono_ms () + CONNECT_TIMEOUT_MS) < 0) {
            why = errno;
        } else {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (!soerr)
                break;
            why = soerr;
        }
        close (fd);
        fd = -1;
    }
    freeaddrinfo (res);
    if (fd < 0)
        return err_set (e, why, "%s", strerror (why));
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Percent-escapes S for a URL path segment. Caller frees. */
static char *path_escape (const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc (strlen (s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The value of header NAME in the header block HDRS (NUL-terminated, lines end in \r\n),
 * copied into OUT (N bytes). Returns OUT or NULL when absent. */
static char *header_value (const char *hdrs, const char *name, char *out, size_t n)
{
    size_t nl = strlen (name);
    for (const char *line = strstr (hdrs, "\r\n"); line && line[2];
         line = strstr (line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp (p, name, nl) != 0 || p[nl] != ':')
            continue;
        p += nl + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strstr (p, "\r\n");
        size_t len = end ? (size_t)(end - p) : strlen (p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len >= n)
            len = n - 1;
        memcpy (out, p, len);
        out[len] = '\0';
        return out;
    }
    return NULL;
}

static bool list_has (const char *value, const char *token)
{
    size_t tl = strlen (token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if ((size_t)(end - p) == tl && strncasecmp (p, token, tl) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Sends the upgrade request and reads the reply. Returns 0 when the WebSocket is open (bytes
 * after the reply headers are fed to the reader), or CLI_FAIL after printing why. */
static int handshake (struct shell *sh, struct cli *cli)
{
    char key[25], accept[29];
    ws_make_key (key);
    ws_accept_key (key, accept);
    char *name = path_escape (sh->name);
    const char *token = cli->conf.api_token;
    char *auth = token && *token ? xasprintf ("Authorization: Bearer %s\r\n", token) : NULL;
    char *req = xasprintf ("GET /docker/host/containers/%s/terminal HTTP/1.1\r\n"
                           "Host: %s\r\nUser-Agent: " PROG "\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n%s\r\n",
                           name, sh->hostport, key, auth ? auth : "");
    free (name);
    if (auth) {
        explicit_bzero (auth, strlen (auth)); /* the token is a secret */
        free (auth);
    }
    int64_t deadline = mono_ms () + HANDSHAKE_TIMEOUT_MS;
    size_t len = strlen (req), off = 0;
    int rc = CLI_FAIL;
    char hdr[16384];
    size_t have = 0;
    char *end = NULL;
    while (off < len) {
        ssize_t w = send (sh->fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd (sh->fd, POLLOUT, deadline) < 0)
                goto io_error;
            continue;
        }
        if (w < 0)
            goto io_error;
        off += (size_t)w;
    }
    while (!end) {
        if (have == sizeof hdr - 1) {
            say ("error: cannot open a shell in container '%s': host %s sent reply headers over "
             "%zu bytes", sh->name, sh->hostport, have);
            goto out;
        }
        ssize_t n = recv (sh->fd, hdr + have, sizeof hdr - 1 - have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd (sh->fd, POLLIN, deadline) < 0)
                goto io_error;
            continue;
        }
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            goto io_error;
        }
        have += (size_t)n;
        hdr[have] = '\0';
        end = strstr (hdr, "\r\n\r\n");
    }
    end[2] = '\0'; /* the header block keeps its last \r\n */
    const char *rest = end + 4;
    size_t nrest = have - (size_t)(rest - hdr);
    int status = 0;
    if (sscanf (hdr, "HTTP/%*d.%*d %d", &status) != 1) {
        say ("error: cannot open a shell in container '%s': host %s did not answer with HTTP",
             sh->name, sh->hostport);
        goto out;
    }
    if (status != 101) {
        /* an error reply: read its body (the host sends Content-Length) for the detail */
        char cl[32];
        size_t want = header_value (hdr, "Content-Length", cl, sizeof cl)
                          ? (size_t)strtoul (cl, NULL, 10) : 0;
        if (want > 65536)
            want = 65536;
        char *body = xmalloc (want + nrest + 1);
        memcpy (body, rest, nrest);
        size_t got = nrest;
        while (got < want) {
            ssize_t n = recv (sh->fd, body + got, want - got, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (wait_fd (sh->fd, POLLIN, deadline) < 0)
                    break;
                continue;
            }
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        body[got] = '\0';
        char *detail = cli_error_detail (body, got);
        char *clean = output_clean (detail);
        say ("error: cannot open a shell in container '%s' on host %s: %s (HTTP %d)", sh->name,
             sh->hostport, *clean ? clean : "no detail", status);
        if (status == 401)
            say ("hint: set [auth] api_token in the config file%s%s or the %s environment "
                 "variable to the host's API token", cli->conf.path ? " " : "",
                 cli->conf.path ? cli->conf.path : "", ENV_API_TOKEN);
        free (clean);
        free (detail);
        free (body);
        goto out;
    }
    char v[128];
    if (!header_value (hdr, "Upgrade", v, sizeof v) || strcasecmp (v, "websocket") != 0
        || !header_value (hdr, "Connection", v, sizeof v) || !list_has (v, "upgrade")
        || !header_value (hdr, "Sec-WebSocket-Accept", v, sizeof v) || strcmp (v, accept) != 0) {
        say ("error: cannot open a shell in container '%s': host %s answered 101 without a "
             "valid WebSocket handshake", sh->name, sh->hostport);
        goto out;
    }
    ws_reader_feed (&sh->rd, rest, nrest);
    rc = 0;
    goto out;
io_error:
    say ("error: cannot open a shell in container '%s': no answer from host %s: %s", sh->name,
         sh->hostport, strerror (errno));
out:
    explicit_bzero (req, len);
    free (req);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage (FILE *out)
{
    fprintf (out,
             "usage: " PROG " [--config PATH] NAME\n"
             "\n"
             "Opens a shell (/bin/bash, else /bin/sh) in the host's environment container NAME\n"
             "through the host (ws://<host_reachable_address>:<host_port>).\n"
             "\n"
             "On a terminal, the terminal is put in raw mode: every key, Ctrl-C and Ctrl-D\n"
             "included, goes to the remote shell; leave with `exit` or Ctrl-D at an empty prompt.\n"
             "Otherwise standard input is sent as typed input, then Ctrl-D at its end.\n"
             "\n"
             "Exit status: the remote shell's; 1 when the host or the container cannot be\n"
             "reached; 2 on a usage error. The API token is read from [auth] api_token in the\n"
             "config file or the " ENV_API_TOKEN " environment variable.\n"
             "\n"
             "options:\n"
             "  -c, --config PATH  configuration file (default: $" ENV_CONFIG
             ", ~/.hakuriver/config.toml)\n"
             "  -h, --help         show this help\n");
}

int cli_docker_shell_main (int argc, char **argv)
{
    struct cli cli = { .prog = PROG, .usage = usage };
    const char *name = NULL;
    bool opts = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0)) {
            usage (stdout);
            return CLI_OK;
        }
        if (opts && (strcmp (a, "-c") == 0 || strcmp (a, "--config") == 0)) {
            if (i + 1 == argc)
                return cli_usage_error (&cli, "--config needs a PATH");
            cli.config = argv[++i];
        } else if (opts && strncmp (a, "--config=", 9) == 0) {
            cli.config = a + 9;
        } else if (opts && strcmp (a, "--") == 0) {
            opts = false;
        } else if (opts && a[0] == '-' && a[1]) {
            char *msg = xasprintf ("unknown option `%s`", a);
            int rc = cli_usage_error (&cli, msg);
            free (msg);
            return rc;
        } else if (name) {
            char *msg = xasprintf ("unexpected argument `%s`: one container NAME is expected", a);
            int rc = cli_usage_error (&cli, msg);
            free (msg);
            return rc;
        } else {
            name = a;
        }
    }
    if (!name || !*name)
        return cli_usage_error (&cli, "the container NAME is missing");
    /* Docker's rule for container names; anything else cannot name one */
    if (!isalnum ((unsigned char)name[0])
        || strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
               != strlen (name)) {
        char *msg = xasprintf ("invalid container name `%s`: letters, digits, '_', '.' and "
                               "'-' are allowed, starting with a letter or digit", name);
        int rc = cli_usage_error (&cli, msg);
        free (msg);
        return rc;
    }

    int rc = cli_open (&cli);
    if (rc != CLI_OK) {
        cli_close (&cli);
        return rc;
    }
    struct shell sh = { .name = name, .fd = -1, .stdin_open = true, .last_newline = true,
                        .exit_code = -2 };
    ws_reader_init (&sh.rd, false, WS_MAX_MESSAGE);
    const char *addr = cli.conf.host_reachable_address;
    bool v6 = strchr (addr, ':') && addr[0] != '[';
    snprintf (sh.hostport, sizeof sh.hostport, "%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "",
              cli.conf.host_port);
    struct err e = { 0 };
    signal (SIGPIPE, SIG_IGN);
    rc = CLI_FAIL;
    sh.fd = tcp_connect (addr, cli.conf.host_port, &e);
    if (sh.fd < 0) {
        say ("error: cannot open a shell in container '%s': cannot reach host at %s: %s", name,
             sh.hostport, e.text);
        goto out;
    }
    if (handshake (&sh, &cli) != 0)
        goto out;
    sh.tty = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved_tio) == 0;
    if (signals_install () < 0) {
        say ("error: pipe: %s", strerror (errno));
        goto out;
    }
    if (sh.tty) {
        atexit (term_restore);
        term_raw ();
    }
    send_size (&sh);
    /* messages that came with the handshake reply */
    if (host_input (&sh) < 0)
        goto out;
    rc = session_loop (&sh);
out:
    term_restore ();
    signals_reset ();
    if (sh.fd >= 0)
        close (sh.fd);
    ws_reader_free (&sh.rd);
    ws_buf_free (&sh.to_host);
    cli_close (&cli);
    return rc;
}
