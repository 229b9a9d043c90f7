/* terminal.c - the client side of the host's WebSocket terminals (docs/docker-shell.md,
 * docs/terminal.md): hakuriver.docker-shell, hakuriver.task connect, hakuriver.vps connect.
 *
 * With a terminal on stdin it is put in raw mode, so every key (Ctrl-C, Ctrl-D, arrows) goes
 * to the remote shell; the size is sent at start and on SIGWINCH. Without one, stdin is sent
 * as typed input and its end as Ctrl-D. Either way the session runs until the remote shell
 * exits, and the program exits with its status. */
#include "cli/terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/output.h"
#include "common/proto.h"
#include "common/websocket.h"
#include "common/ws_client.h"
#include "common/xalloc.h"

#define CONNECT_TIMEOUT_MS 5000   /* as the other CLIs (HTTP_CLIENT_CONNECT_TIMEOUT) */
#define HANDSHAKE_TIMEOUT_MS 60000 /* the host inspects the container and creates the exec */
#define INPUT_CHUNK 4096          /* stdin bytes per input message */
#define TO_HOST_MAX (64u << 10)   /* stop reading stdin while this much waits to be sent */
#define EOF_RETRY_MS 500          /* quiet time after which an end of input is sent again */

/* ---- terminal state and signals (file scope: the signal handler and atexit need them) ---- */

static const char *prog = "hakuriver";   /* message prefix: the program's name */
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
    fprintf (stderr, "%s: ", prog);
    vfprintf (stderr, fmt, ap);
    fputs (raw_on ? "\r\n" : "\n", stderr);
    va_end (ap);
}

/* ---- the session -------------------------------------------------------------------------- */

struct shell {
    const char *what;            /* the target, for messages: "container 'env1'", "task 42" */
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
        say ("error from host %s (%s): %s", sh->hostport, sh->what, clean);
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
                say ("error: host %s closed the session of %s (code %d%s%s)", sh->hostport,
                     sh->what, m.close_code, *clean ? ": " : "", clean);
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
        say ("error: protocol error from host %s (%s): %s", sh->hostport, sh->what,
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
                say ("error: the connection to host %s was lost (%s)", sh->hostport, sh->what);
                return 1;
            }
        }
        if (flush_host (sh) < 0) {
            if (sh->exit_code != -2)
                break;
            say ("error: the connection to host %s was lost (%s): %s", sh->hostport, sh->what,
                 strerror (errno));
            return 1;
        }
    }
    if (sh->exit_code == -2) {
        if (!sh->close_got && !sh->host_error)
            say ("error: the session of %s on host %s ended without the shell's exit status",
                 sh->what, sh->hostport);
        return 1;
    }
    if (sh->exit_code < 0 || sh->exit_code > 255) {
        /* after an error message (the container stopped under the shell) that says enough */
        if (!sh->host_error)
            say ("error: the remote shell's exit status is unknown (%d)", sh->exit_code);
        return 1;
    }
    return sh->exit_code;
}

/* ---- connection ------------------------------------------------------------------------- */

/* The window size for the request's query: the terminal's, or 24x80 without one. */
static void local_size (int *rows, int *cols)
{
    struct winsize ws = { 0 };
    if ((ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
        && (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)) {
        ws.ws_row = 24;
        ws.ws_col = 80;
    }
    *rows = ws.ws_row;
    *cols = ws.ws_col;
}

int cli_terminal_run (struct cli *cli, const char *path, const char *what)
{
    struct shell sh = { .what = what, .fd = -1, .stdin_open = true, .last_newline = true,
                        .exit_code = -2 };
    struct err e = { 0 };
    struct ws_client_refusal ref = { 0 };
    struct ws_buf early = { 0 };
    int rc = CLI_FAIL, rows, cols;
    prog = cli->prog;
    ws_reader_init (&sh.rd, false, WS_MAX_MESSAGE);
    const char *addr = cli->conf.host_reachable_address;
    ws_client_hostport (addr, cli->conf.host_port, sh.hostport, sizeof sh.hostport);
    local_size (&rows, &cols);
    char *full = xasprintf ("%s%crows=%d&cols=%d", path, strchr (path, '?') ? '&' : '?', rows,
                            cols);
    signal (SIGPIPE, SIG_IGN);
    sh.fd = ws_client_connect (addr, cli->conf.host_port, CONNECT_TIMEOUT_MS, &e);
    if (sh.fd < 0) {
        say ("error: cannot open a shell in %s: cannot reach host at %s: %s", what, sh.hostport,
             e.text);
        goto out;
    }
    if (ws_client_handshake (sh.fd, sh.hostport, full, cli->conf.api_token, cli->prog,
                             HANDSHAKE_TIMEOUT_MS, &early, &ref, &e) < 0) {
        if (!ref.status) {
            say ("error: cannot open a shell in %s: %s", what, e.text);
            goto out;
        }
        char *detail = cli_error_detail (ref.body, ref.len);
        char *clean = output_clean (detail);
        say ("error: cannot open a shell in %s on host %s: %s (HTTP %d)", what, sh.hostport,
             *clean ? clean : "no detail", ref.status);
        if (ref.status == 401)
            say ("hint: set [auth] api_token in the config file%s%s or the %s environment "
                 "variable to the host's API token", cli->conf.path ? " " : "",
                 cli->conf.path ? cli->conf.path : "", ENV_API_TOKEN);
        free (clean);
        free (detail);
        goto out;
    }
    ws_reader_feed (&sh.rd, early.data, early.len);
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
    free (full);
    ws_client_refusal_free (&ref);
    ws_buf_free (&early);
    ws_reader_free (&sh.rd);
    ws_buf_free (&sh.to_host);
    return rc;
}

int cli_terminal_connect (struct cli *cli, uint64_t id, const char *kind)
{
    char *path = xasprintf (PATH_TASK_LOG "%" PRIu64 "/" PATH_TASK_TERMINAL, id);
    char *what = xasprintf ("%s %" PRIu64, kind, id);
    int rc = cli_terminal_run (cli, path, what);
    free (what);
    free (path);
    return rc;
}
