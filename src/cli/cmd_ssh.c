/* cmd_ssh.c - hakuriver.ssh: SSH into a VPS task through the host's SSH proxy, either by
 * running ssh against a local forwarding port (default) or as an ssh ProxyCommand.
 *
 * Local-port mode (0.3's): listen on 127.0.0.1:N, run `ssh -p N ... <user>@127.0.0.1`, and
 * relay every connection ssh makes to the port through a tunnel of its own (a thread each).
 * The first tunnel is opened before ssh starts, so that a refused request (unknown task, bad
 * token, host down) is reported once, plainly, with exit status 1 instead of as ssh's
 * "kex_exchange_identification" failure. The exit status is ssh's.
 *
 * ProxyCommand mode (--proxy-command): one tunnel, relayed to stdin/stdout, for
 * `ssh -o ProxyCommand=...`, scp, rsync -e, sftp and ControlMaster setups. docs/ssh.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "common/proto.h"
#include "common/relay.h"
#include "common/tcp.h"
#include "common/xalloc.h"
#include "entry.h"

#define PROG "hakuriver.ssh"
#define CONNECT_TIMEOUT_MS 15000 /* as 0.3's client (and the proxy's own connect to a runner) */
#define REPLY_TIMEOUT_MS 10000   /* as 0.3: the proxy answers within 10 s or not at all */
#define REPLY_MAX 1024           /* a longer reply line is not a proxy speaking */
#define MAX_TUNNELS 64           /* ssh makes one connection; scp-style tools a few */
#define ACCEPT_BACKOFF_MS 100    /* out of descriptors: wait this long before accepting again */
#define HANGUP_GRACE_MS 2000     /* ProxyCommand mode: tunnel closed by the far end -> exit */

#define HOST_KEY_ALIAS "hakuriver-vps-" /* + task id: one known_hosts entry per VPS */

static void usage (FILE *out)
{
    fprintf (out,
             "usage: " PROG " [--config PATH] TASK_ID [--host H] [--proxy-port P]\n"
             "                     [--local-port N] [--user U] [-- SSH_ARGS...]\n"
             "       " PROG " [--config PATH] --proxy-command TASK_ID [--host H]\n"
             "                     [--proxy-port P]\n"
             "\n"
             "Opens an SSH session to VPS task TASK_ID through the host's SSH proxy.\n"
             "\n"
             "The first form listens on 127.0.0.1:N, runs\n"
             "  ssh -p N -o HostKeyAlias=" HOST_KEY_ALIAS "TASK_ID U@127.0.0.1 [SSH_ARGS...]\n"
             "and relays its connection through the proxy; the exit status is ssh's.\n"
             "The second form relays stdin/stdout through the proxy, for use as an ssh\n"
             "ProxyCommand (also with scp, sftp and rsync -e):\n"
             "  ssh -o ProxyCommand='" PROG " --proxy-command 123' root@vps-123\n"
             "\n"
             "options:\n"
             "  --config PATH      configuration file (default $HAKURIVER_CONFIG, then\n"
             "                     ~/.hakuriver/config.toml)\n"
             "  --host H           proxy address (default [network] host_reachable_address)\n"
             "  --proxy-port P     proxy port (default [network] host_ssh_proxy_port)\n"
             "  --local-port N     local port to listen on (default 0: any free port)\n"
             "  --user U           remote user (default root)\n"
             "  --proxy-command    ProxyCommand mode (see above)\n"
             "  -- SSH_ARGS...     further arguments for ssh: options, then a remote command\n"
             "\n"
             "The API token comes from [auth] api_token in the configuration or\n"
             "$HAKURIVER_TOKEN, never from the command line. See docs/ssh.md.\n");
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Prints "hakuriver.ssh: <msg>" to stderr. While ssh runs, the terminal may be in raw mode,
 * where "\n" does not return the carriage: on a terminal the line ends in "\r\n". */
static void say (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void say (const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    /* one fprintf: lines of concurrent tunnels do not interleave */
    fprintf (stderr, PROG ": %s%s", msg, isatty (STDERR_FILENO) ? "\r\n" : "\n");
}

/* ---- options ------------------------------------------------------------------------------ */

struct opts {
    const char *config;   /* --config, NULL = the usual search */
    uint64_t id;
    bool have_id;
    const char *host;     /* --host, NULL = host_reachable_address */
    int proxy_port;       /* --proxy-port, 0 = host_ssh_proxy_port */
    int local_port;       /* --local-port, 0 = any */
    bool local_port_set;
    const char *user;     /* --user, NULL = "root" */
    bool proxy_command;
    char **ssh_args;      /* after `--` (points into argv) */
    int nssh_args;
    bool help;
};

/* Takes the value of option NAME at ARGV[*I]: "--name=value" or "--name value". Returns the
 * value, or NULL when A is not NAME; sets *MISSING when NAME has no value. */
static const char *opt_value (int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *a = argv[*i];
    size_t n = strlen (name);
    if (strncmp (a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int usage_err (struct err *e, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static int usage_err (struct err *e, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (e->text, sizeof e->text, fmt, ap);
    va_end (ap);
    e->code = EINVAL;
    return -1;
}

/* A user name goes into ssh's argv as "<user>@127.0.0.1": one that starts with '-' would
 * read as an option, and blanks or control characters cannot be a login name. */
static bool user_ok (const char *u)
{
    if (!*u || *u == '-')
        return false;
    for (; *u; u++)
        if ((unsigned char)*u <= ' ' || *u == 0x7f)
            return false;
    return true;
}

static int parse_opts (int argc, char **argv, struct opts *o, struct err *e)
{
    memset (o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        int64_t n;
        if (strcmp (a, "--") == 0) {
            o->ssh_args = argv + i + 1;
            o->nssh_args = argc - i - 1;
            break;
        }
        if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0) {
            o->help = true;
        } else if (strcmp (a, "--proxy-command") == 0) {
            o->proxy_command = true;
        } else if ((v = opt_value (argc, argv, &i, "--config", &missing))
                   || (!missing && (v = opt_value (argc, argv, &i, "-c", &missing)))) {
            o->config = v;
        } else if (!missing && (v = opt_value (argc, argv, &i, "--host", &missing))) {
            if (!*v)
                return usage_err (e, "invalid --host ``: expected an address");
            o->host = v;
        } else if (!missing && (v = opt_value (argc, argv, &i, "--proxy-port", &missing))) {
            if (args_parse_uint ("--proxy-port", v, 65535, &n, e) < 0 || n == 0)
                return usage_err (e, "invalid --proxy-port `%s`: expected a port between 1 "
                                  "and 65535", v);
            o->proxy_port = (int)n;
        } else if (!missing && (v = opt_value (argc, argv, &i, "--local-port", &missing))) {
            if (args_parse_uint ("--local-port", v, 65535, &n, e) < 0)
                return usage_err (e, "invalid --local-port `%s`: expected a port between 0 "
                                  "(any free port) and 65535", v);
            o->local_port = (int)n;
            o->local_port_set = true;
        } else if (!missing && (v = opt_value (argc, argv, &i, "--user", &missing))) {
            if (!user_ok (v))
                return usage_err (e, "invalid --user `%s`: expected a login name", v);
            o->user = v;
        } else if (missing) {
            return usage_err (e, "option `%s` needs a value", a);
        } else if (a[0] == '-' && a[1]) {
            return usage_err (e, "unknown option `%s` (options for ssh go after `--`)", a);
        } else if (o->have_id) {
            return usage_err (e, "unexpected argument `%s` (arguments for ssh go after `--`)",
                              a);
        } else {
            if (args_parse_task_id (a, &o->id, e) < 0)
                return -1;
            o->have_id = true;
        }
    }
    if (o->help)
        return 0;
    if (!o->have_id)
        return usage_err (e, "the TASK_ID is missing");
    if (o->proxy_command) {
        if (o->local_port_set)
            return usage_err (e, "--local-port does not apply with --proxy-command");
        if (o->user)
            return usage_err (e, "--user does not apply with --proxy-command (ssh names the "
                              "user)");
        if (o->nssh_args)
            return usage_err (e, "--proxy-command takes no SSH_ARGS");
    }
    return 0;
}

/* ---- the tunnel --------------------------------------------------------------------------- */

/* Where the proxy is and what to ask it; read-only once set up, shared by the tunnel threads. */
struct target {
    char *host;
    int port;
    char hostport[300];   /* "host:port" / "[v6]:port" for messages */
    const char *token;    /* NULL or empty: no AUTH line */
    uint64_t id;
};

/* Connects to the proxy (non-blocking socket). Returns the socket, -2 when stopped, or -1
 * with E set. */
static int proxy_connect (const struct target *t, int stop_fd, struct err *e)
{
    struct err ce = { 0 };
    int fd = tcp_connect (t->host, t->port, CONNECT_TIMEOUT_MS, stop_fd, &ce);
    if (fd == -1 && ce.code == ETIMEDOUT)
        return err_set (e, ETIMEDOUT, "cannot reach the SSH proxy at %s: no answer within %d s",
                        t->hostport, CONNECT_TIMEOUT_MS / 1000);
    if (fd == -1)
        return err_set (e, ce.code, "cannot reach the SSH proxy at %s: %s", t->hostport,
                        ce.text);
    return fd;
}

/* Writes all LEN bytes of BUF to FD (blocking or not). Returns 0 or -1 with errno. */
static int write_all (int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write (fd, buf, len);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            poll (&p, 1, -1);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the proxy's reply line into LINE (CAP bytes, NUL-terminated, without "\r\n") and not
 * one byte more: what follows belongs to the SSH stream (the server's banner comes right
 * behind SUCCESS) and stays in the socket for the relay. Returns 0, 1 when stopped, or -1
 * with E set. */
static int read_reply (const struct target *t, int fd, int stop_fd, char *line, size_t cap,
                       struct err *e)
{
    size_t len = 0;
    int64_t deadline = tcp_mono_ms () + REPLY_TIMEOUT_MS;
    for (;;) {
        int w = tcp_wait (fd, POLLIN, stop_fd, deadline);
        if (w == 1)
            return 1;
        if (w < 0 && errno == ETIMEDOUT)
            return err_set (e, ETIMEDOUT, "no reply from the SSH proxy at %s within %d s",
                            t->hostport, REPLY_TIMEOUT_MS / 1000);
        if (w < 0)
            return err_set (e, errno, "SSH proxy at %s: %s", t->hostport, strerror (errno));
        /* peek first, then take exactly up to the newline */
        ssize_t n = recv (fd, line + len, cap - 1 - len, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return err_set (e, errno, "SSH proxy at %s: %s", t->hostport, strerror (errno));
        if (n == 0)
            return err_set (e, ECONNRESET, "the SSH proxy at %s closed the connection without "
                            "a reply", t->hostport);
        char *nl = memchr (line + len, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - (line + len)) + 1 : (size_t)n;
        ssize_t got = recv (fd, line + len, take, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got < 0)
            return err_set (e, errno, "SSH proxy at %s: %s", t->hostport, strerror (errno));
        len += (size_t)got;
        if (nl && (size_t)got == take)
            break;
        if (len == cap - 1) {
            line[len] = '\0';
            char *clean = output_clean (line);
            err_set (e, EPROTO, "unexpected reply from the SSH proxy at %s: `%.60s...`",
                     t->hostport, clean);
            free (clean);
            return -1;
        }
    }
    len--; /* the newline */
    if (len && line[len - 1] == '\r')
        len--;
    line[len] = '\0';
    return 0;
}

/* Opens a tunnel to task T->id. Returns the socket (blocking, positioned at the first byte of
 * the SSH stream), -2 when stopped through STOP_FD, or -1 with E set; then *REFUSED tells
 * whether the proxy answered ERROR (E->text is its reason) or something else failed (E->text
 * is the whole message). */
static int tunnel_open (const struct target *t, int stop_fd, bool *refused, struct err *e)
{
    *refused = false;
    int fd = proxy_connect (t, stop_fd, e);
    if (fd < 0)
        return fd;
    /* one write, as the protocol wants; the token never leaves this buffer but for the wire */
    char *req;
    if (t->token && *t->token)
        req = xasprintf (PROXY_AUTH "%s\n" PROXY_REQUEST "%" PRIu64 "\n", t->token, t->id);
    else
        req = xasprintf (PROXY_REQUEST "%" PRIu64 "\n", t->id);
    size_t reqlen = strlen (req);
    int wr = write_all (fd, req, reqlen);
    int werr = errno;
    explicit_bzero (req, reqlen);
    free (req);
    char line[REPLY_MAX];
    int rc;
    if (wr < 0) {
        err_set (e, werr, "cannot send the request to the SSH proxy at %s: %s", t->hostport,
                 strerror (werr));
        goto error;
    }
    if ((rc = read_reply (t, fd, stop_fd, line, sizeof line, e)) != 0) {
        if (rc == 1) {
            close (fd);
            return -2;
        }
        goto error;
    }
    if (strcmp (line, PROXY_SUCCESS) == 0) {
        int fl = fcntl (fd, F_GETFL);
        if (fl >= 0)
            fcntl (fd, F_SETFL, fl & ~O_NONBLOCK);
        return fd;
    }
    char *clean = output_clean (line);
    if (strncmp (line, PROXY_ERROR, strlen (PROXY_ERROR)) == 0) {
        *refused = true;
        err_set (e, EPERM, "%s", clean + strlen (PROXY_ERROR));
    } else {
        err_set (e, EPROTO, "unexpected reply from the SSH proxy at %s: `%.200s`", t->hostport,
                 clean);
    }
    free (clean);
error:
    close (fd);
    return -1;
}

/* Prints why tunnel_open failed: "proxy error: <reason>" for a refusal, else the message. */
static void tunnel_report (const struct target *t, bool refused, const struct err *e)
{
    if (!refused) {
        say ("error: %s", e->text);
        return;
    }
    say ("proxy error: %s", e->text);
    /* "Invalid token." or "Authentication required." (docs/ssh-proxy.md) */
    if (strcasestr (e->text, "token") || strcasestr (e->text, "authentication"))
        say ("hint: set [auth] api_token in the configuration file or the HAKURIVER_TOKEN "
             "environment variable to the host's API token%s",
             t->token && *t->token ? "" : " (none is set)");
}

/* Fills T from the options and the configuration. Returns 0 or -1 with E set. */
static int target_init (struct target *t, const struct opts *o, const struct conf *conf,
                        struct err *e)
{
    const char *host = o->host ? o->host : conf->host_reachable_address;
    if (!host || !*host)
        return err_set (e, EINVAL, "config: [network] host_reachable_address is empty");
    const char *tok = conf->api_token;
    for (const char *p = tok; p && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return err_set (e, EINVAL, "config: the API token contains blanks or control "
                            "characters");
    /* "[::1]" is accepted for an IPv6 --host; getaddrinfo wants it bare */
    size_t hl = strlen (host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        t->host = xstrndup (host + 1, hl - 2);
    else
        t->host = xstrdup (host);
    t->port = o->proxy_port ? o->proxy_port : conf->host_ssh_proxy_port;
    bool v6 = strchr (t->host, ':') != NULL;
    snprintf (t->hostport, sizeof t->hostport, "%s%s%s:%d", v6 ? "[" : "", t->host,
              v6 ? "]" : "", t->port);
    t->token = tok;
    t->id = o->id;
    return 0;
}

/* Prints a failed relay_run's error. relay_run names its sides "A" and "B"; here A is ssh
 * (the local connection or stdin/stdout) and B the tunnel, so say that instead. */
static void relay_report (const struct target *t, const struct err *e)
{
    static const char *const from[] = { "from A", "to A", "from B", "to B" };
    static const char *const to[] = { "from ssh", "to ssh", "from the proxy", "to the proxy" };
    const char *text = e->text;
    if (strncmp (text, "relay: ", 7) == 0)
        text += 7;
    char buf[sizeof e->text + 16];
    snprintf (buf, sizeof buf, "%s", text);
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        char *p = strstr (buf, from[i]);
        size_t n = strlen (from[i]);
        /* a whole word only ("to A:" or "to A" at the end) */
        if (p && (p[n] == ':' || p[n] == '\0') && strlen (buf) + strlen (to[i]) < sizeof buf) {
            memmove (p + strlen (to[i]), p + n, strlen (p + n) + 1);
            memcpy (p, to[i], strlen (to[i]));
            break;
        }
    }
    say ("error: tunnel to task %" PRIu64 " via %s: %s", t->id, t->hostport, buf);
}

/* ---- ProxyCommand mode -------------------------------------------------------------------- */

static int stop_pipe[2] = { -1, -1 }; /* readable once a stop was asked (signal or ssh exit) */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal (int sig)
{
    int saved = errno;
    stop_signal = sig;
    if (write (stop_pipe[1], "x", 1) < 0) {
        /* full: a stop is already pending */
    }
    errno = saved;
}

struct pc_relay {
    int tunnel;
    int done[2];   /* written when relay_run has returned */
    int rc;
    struct err e;
};

static void *pc_relay_thread (void *arg)
{
    struct pc_relay *r = arg;
    struct relay_end io = { .in = STDIN_FILENO, .out = STDOUT_FILENO };
    struct relay_end tun = { .in = r->tunnel, .out = r->tunnel };
    r->rc = relay_run (io, tun, stop_pipe[0], 0, NULL, &r->e);
    if (write (r->done[1], "x", 1) < 0) {
        /* cannot fail on an empty pipe */
    }
    return NULL;
}

/* stdin/stdout <-> tunnel. ssh ends its ProxyCommand with SIGHUP when the session is over:
 * that is a normal end (exit 0) and, like SIGTERM (exit 143), stops the relay cleanly.
 *
 * The other end: relay_run returns once both directions have ended, and leaves stdout open
 * (a pipe cannot be half-closed). ssh keeps writing to us until it sees the end of our
 * output, so when the tunnel is dropped under it (VPS stopped, host restarted) both would
 * wait for ever. The relay therefore runs in a thread while this one watches the tunnel for
 * the peer's FIN (POLLRDHUP): after HANGUP_GRACE_MS, enough for ssh to read the last bytes
 * and leave by itself when they close the session, the relay is stopped and our exit closes
 * stdout: ssh reports "Connection closed" instead of hanging. */
static int proxy_command_main (const struct target *t)
{
    struct err e = { 0 };
    bool refused;
    signal (SIGPIPE, SIG_IGN);
    struct pc_relay r = { .tunnel = -1, .done = { -1, -1 } };
    if (pipe2 (stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2 (r.done, O_CLOEXEC) < 0) {
        say ("error: pipe: %s", strerror (errno));
        return CLI_FAIL;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGHUP, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);

    int rc = CLI_FAIL;
    r.tunnel = tunnel_open (t, stop_pipe[0], &refused, &e);
    if (r.tunnel == -1) {
        tunnel_report (t, refused, &e);
        goto out;
    }
    if (r.tunnel < 0) { /* stopped by a signal during the handshake */
        rc = stop_signal == SIGTERM ? 128 + SIGTERM : CLI_OK;
        goto out;
    }
    pthread_t th;
    int err = pthread_create (&th, NULL, pc_relay_thread, &r);
    if (err) {
        say ("error: cannot start a thread: %s", strerror (err));
        goto out;
    }
    int64_t deadline = -1; /* set once the peer has closed */
    for (;;) {
        struct pollfd p[2] = { { .fd = r.done[0], .events = POLLIN },
                               { .fd = r.tunnel, .events = POLLRDHUP } };
        int left = deadline < 0 ? -1 : (int)(deadline - tcp_mono_ms ());
        if (deadline >= 0 && left <= 0) {
            if (write (stop_pipe[1], "x", 1) < 0) {
                /* a stop is already pending */
            }
            break;
        }
        int n = poll (p, deadline < 0 ? 2 : 1, left);
        if (n < 0 && errno != EINTR) {
            say ("error: poll: %s", strerror (errno));
            if (write (stop_pipe[1], "x", 1) < 0) {
                /* a stop is already pending */
            }
            break;
        }
        if (n > 0 && p[0].revents)
            break;
        if (n > 0 && deadline < 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            deadline = tcp_mono_ms () + HANGUP_GRACE_MS;
    }
    pthread_join (th, NULL);
    if (r.rc < 0) {
        relay_report (t, &r.e);
        goto out;
    }
    rc = stop_signal == SIGTERM ? 128 + SIGTERM : CLI_OK;
out:
    if (r.tunnel >= 0)
        close (r.tunnel);
    signal (SIGHUP, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        close (stop_pipe[i]);
        close (r.done[i]);
        stop_pipe[i] = -1;
    }
    return rc;
}

/* ---- local-port mode ---------------------------------------------------------------------- */

/* One connection ssh made to the local port, relayed by a thread of its own. */
struct conn {
    struct conn *next;
    pthread_t thread;
    const struct target *t;
    int local;                /* the accepted socket */
    int tunnel;               /* the pre-opened tunnel, or -1: the thread opens one */
    int stop_fd;
    bool done;                /* set by the thread as it ends (under conns_lock) */
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ssh_gone; /* set (atomically) once ssh has exited: later relay errors are noise */

/* Tells the local side why there is no tunnel, as 0.3 did: ssh shows lines that come before
 * the SSH banner only with -v, which is why the reason goes to stderr as well. */
static void local_refuse (int fd, const char *why)
{
    char *msg = xasprintf ("Proxy Error: %s\r\n", why);
    if (write_all (fd, msg, strlen (msg)) < 0) {
        /* ssh is gone: nobody to tell */
    }
    free (msg);
}

static void *conn_thread (void *arg)
{
    struct conn *c = arg;
    struct err e = { 0 };
    bool refused = false;
    int fd = c->tunnel;
    c->tunnel = -1;
    if (fd < 0)
        fd = tunnel_open (c->t, c->stop_fd, &refused, &e);
    if (fd == -1) {
        tunnel_report (c->t, refused, &e);
        local_refuse (c->local, e.text);
    } else if (fd >= 0) {
        struct relay_end local = { .in = c->local, .out = c->local };
        struct relay_end tun = { .in = fd, .out = fd };
        /* an error after ssh has gone (a reset on its closed socket) is not news */
        if (relay_run (local, tun, c->stop_fd, 0, NULL, &e) < 0 && !__atomic_load_n (&ssh_gone, __ATOMIC_ACQUIRE))
            relay_report (c->t, &e);
        close (fd);
    }
    close (c->local);
    c->local = -1;
    pthread_mutex_lock (&conns_lock);
    c->done = true;
    pthread_mutex_unlock (&conns_lock);
    return NULL;
}

/* Joins and frees the finished threads of *LIST (all of them with ALL, waiting). Returns how
 * many remain. */
static int conns_reap (struct conn **list, bool all)
{
    int left = 0;
    for (struct conn **pp = list; *pp;) {
        struct conn *c = *pp;
        pthread_mutex_lock (&conns_lock);
        bool done = c->done;
        pthread_mutex_unlock (&conns_lock);
        if (done || all) {
            pthread_join (c->thread, NULL);
            *pp = c->next;
            free (c);
        } else {
            left++;
            pp = &c->next;
        }
    }
    return left;
}

/* Listens on 127.0.0.1:PORT (0 = any) and keeps that socket: no window in which another
 * program could take a port picked and released. Sets *BOUND. Returns the socket or -1. */
static int listen_local (int port, int *bound, struct err *e)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set (e, errno, "socket: %s", strerror (errno));
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t sl = sizeof sin;
    if (bind (fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen (fd, 16) < 0
        || getsockname (fd, (struct sockaddr *)&sin, &sl) < 0) {
        int saved = errno;
        close (fd);
        return err_set (e, saved, "cannot listen on 127.0.0.1:%d: %s", port, strerror (saved));
    }
    *bound = ntohs (sin.sin_port);
    return fd;
}

/* Starts ssh with ARGV, restoring the signal state we changed (ORIG_MASK, and SIGINT/SIGQUIT
 * as they were when we started). Returns the pid, or -1 with E set and *STATUS the exit
 * status to give: 127 when ssh is not found, 126 when it cannot be run. */
static pid_t ssh_spawn (char **argv, const sigset_t *orig_mask, const struct sigaction *orig_int,
                        const struct sigaction *orig_quit, int *status, struct err *e)
{
    int ep[2];
    if (pipe2 (ep, O_CLOEXEC) < 0) {
        *status = CLI_FAIL;
        return err_set (e, errno, "pipe: %s", strerror (errno));
    }
    pid_t pid = fork ();
    if (pid < 0) {
        int saved = errno;
        close (ep[0]);
        close (ep[1]);
        *status = CLI_FAIL;
        return err_set (e, saved, "fork: %s", strerror (saved));
    }
    if (pid == 0) {
        sigaction (SIGINT, orig_int, NULL);
        sigaction (SIGQUIT, orig_quit, NULL);
        signal (SIGPIPE, SIG_DFL);
        sigprocmask (SIG_SETMASK, orig_mask, NULL);
        execvp (argv[0], argv);
        int err = errno;
        if (write (ep[1], &err, sizeof err) < 0) {
            /* the parent then sees a plain exit 127 */
        }
        _exit (127);
    }
    close (ep[1]);
    int err = 0;
    ssize_t n;
    do
        n = read (ep[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    close (ep[0]);
    if (n == (ssize_t)sizeof err) {
        waitpid (pid, NULL, 0);
        if (err == ENOENT) {
            *status = 127;
            return err_set (e, err, "cannot run `ssh`: not found on PATH (install the OpenSSH "
                            "client, or use --proxy-command with another SSH client)");
        }
        *status = 126;
        return err_set (e, err, "cannot run `ssh`: %s", strerror (err));
    }
    return pid;
}

static int local_port_main (const struct target *t, const struct opts *o)
{
    struct err e = { 0 };
    const char *user = o->user ? o->user : "root";
    int rc = CLI_FAIL, port = 0, sfd = -1, first = -1;
    pid_t pid = -1;
    struct conn *conns = NULL;
    char **argv = NULL;
    sigset_t mask, orig_mask;
    struct sigaction ign, orig_int, orig_quit;
    bool signals_set = false;

    signal (SIGPIPE, SIG_IGN);
    int lfd = listen_local (o->local_port, &port, &e);
    if (lfd < 0) {
        say ("error: %s", e.text);
        goto out;
    }
    if (pipe2 (stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        say ("error: pipe: %s", strerror (errno));
        goto out;
    }
    /* The first tunnel, before ssh starts: a refusal is reported once and plainly. Signals
     * keep their default action until then: Ctrl-C ends a wait for an unreachable host. */
    bool refused;
    first = tunnel_open (t, -1, &refused, &e);
    if (first < 0) {
        tunnel_report (t, refused, &e);
        goto out;
    }

    /* SIGCHLD (ssh's end), SIGTERM and SIGHUP (passed on to ssh) arrive through a signalfd;
     * blocked before any thread exists, so every thread inherits the mask. */
    sigemptyset (&mask);
    sigaddset (&mask, SIGCHLD);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGHUP);
    sigprocmask (SIG_BLOCK, &mask, &orig_mask);
    /* Ctrl-C and Ctrl-\ go to the whole foreground process group: ssh decides what they
     * mean (in a session they are keys for the remote side); we wait for its end. */
    memset (&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction (SIGINT, &ign, &orig_int);
    sigaction (SIGQUIT, &ign, &orig_quit);
    signals_set = true;
    if ((sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        say ("error: signalfd: %s", strerror (errno));
        goto out;
    }

    char portstr[16], alias[64], dest[512];
    snprintf (portstr, sizeof portstr, "%d", port);
    snprintf (alias, sizeof alias, "HostKeyAlias=" HOST_KEY_ALIAS "%" PRIu64, t->id);
    snprintf (dest, sizeof dest, "%s@127.0.0.1", user);
    /* The destination comes before SSH_ARGS: ssh reads options after it too, and whatever
     * follows the options is the remote command ("-- -v uname -a" works). */
    int na = 0;
    argv = xcalloc ((size_t)o->nssh_args + 7, sizeof *argv);
    argv[na++] = "ssh";
    argv[na++] = "-p";
    argv[na++] = portstr;
    argv[na++] = "-o";
    argv[na++] = alias;
    argv[na++] = dest;
    for (int i = 0; i < o->nssh_args; i++)
        argv[na++] = o->ssh_args[i];
    argv[na] = NULL;

    say ("Connecting using: ssh %s -p %d", dest, port);
    pid = ssh_spawn (argv, &orig_mask, &orig_int, &orig_quit, &rc, &e);
    if (pid < 0) {
        say ("error: %s", e.text);
        goto out;
    }

    int nconns = 0;
    bool backoff = false;
    for (;;) {
        struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = lfd, .events = POLLIN } };
        int n = poll (p, backoff ? 1 : 2, backoff ? ACCEPT_BACKOFF_MS : -1);
        backoff = false;
        if (n < 0 && errno != EINTR) {
            say ("error: poll: %s", strerror (errno));
            break;
        }
        if (n <= 0)
            continue;
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read (sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP)
                    kill (pid, (int)si.ssi_signo);
            }
            int st;
            pid_t w = waitpid (pid, &st, WNOHANG);
            if (w == pid) {
                pid = -1;
                __atomic_store_n (&ssh_gone, true, __ATOMIC_RELEASE);
                rc = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
                break;
            }
        }
        if (p[1].revents) {
            int cfd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    say ("error: accept: %s", strerror (errno));
                    backoff = true;
                }
                continue;
            }
            nconns = conns_reap (&conns, false);
            if (nconns >= MAX_TUNNELS) {
                local_refuse (cfd, "too many connections");
                close (cfd);
                continue;
            }
            int one = 1;
            setsockopt (cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            struct conn *c = xcalloc (1, sizeof *c);
            *c = (struct conn){ .t = t, .local = cfd, .tunnel = first, .stop_fd = stop_pipe[0] };
            int err = pthread_create (&c->thread, NULL, conn_thread, c);
            if (err) {
                say ("error: cannot start a thread: %s", strerror (err));
                close (cfd);
                free (c);
                continue;
            }
            first = -1; /* the thread owns it now */
            c->next = conns;
            conns = c;
        }
    }
out:
    if (lfd >= 0)
        close (lfd);
    if (pid > 0) {
        /* we are leaving before ssh did (poll failed): do not leave it behind */
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
    }
    __atomic_store_n (&ssh_gone, true, __ATOMIC_RELEASE);
    if (stop_pipe[1] >= 0 && write (stop_pipe[1], "x", 1) < 0) {
        /* cannot fail on an empty pipe */
    }
    conns_reap (&conns, true);
    if (first >= 0)
        close (first);
    if (sfd >= 0)
        close (sfd);
    for (int i = 0; i < 2; i++)
        if (stop_pipe[i] >= 0) {
            close (stop_pipe[i]);
            stop_pipe[i] = -1;
        }
    free (argv);
    if (signals_set) {
        sigaction (SIGINT, &orig_int, NULL);
        sigaction (SIGQUIT, &orig_quit, NULL);
        sigprocmask (SIG_SETMASK, &orig_mask, NULL);
    }
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

int cli_ssh_main (int argc, char **argv)
{
    struct cli cli = { .prog = PROG, .usage = usage };
    struct opts o;
    struct err e = { 0 };
    if (parse_opts (argc, argv, &o, &e) < 0)
        return cli_usage_error (&cli, e.text);
    if (o.help) {
        usage (stdout);
        return CLI_OK;
    }

    struct conf conf;
    memset (&conf, 0, sizeof conf);
    struct target t = { 0 };
    int rc = CLI_FAIL;
    char *path = conf_find (o.config, &e);
    if (!path && (e.code || e.text[0])) {
        say ("error: config: %s", e.text);
        return CLI_FAIL;
    }
    int lr = conf_load (&conf, path, &e);
    free (path);
    if (lr < 0) {
        say ("error: config: %s", e.text);
        goto out;
    }
    if (target_init (&t, &o, &conf, &e) < 0) {
        say ("error: %s", e.text);
        goto out;
    }
    rc = o.proxy_command ? proxy_command_main (&t) : local_port_main (&t, &o);
out:
    free (t.host);
    conf_free (&conf);
    return rc;
}
