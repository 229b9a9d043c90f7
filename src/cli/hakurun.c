/* hakurun.c - hakurun: run a program once per combination of its span: arguments (0.3 §11),
 * one after another or --parallel with at most --jobs at once. See docs/hakurun.md. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "common/log.h"
#include "common/span.h"
#include "common/xalloc.h"
#include "entry.h"

/* Exit status for a usage error or a malformed span, as the other CLIs. */
#define EXIT_USAGE 2

/* How many failed combinations the final summary lists by number. */
#define SUMMARY_MAX 10

/* The interpreter for a Python APP; HAKURUN_PYTHON overrides it. */
#define PYTHON_DEFAULT "python3"

/* Runs APP ("mod" or "mod:func") the way 0.3 did in a child: sys.argv = [APP] + values, the
 * module imported with the working directory on sys.path, then func(*values) if named. Every
 * value reaches the function as a string (0.3 did so whenever more than one combination ran). */
static const char PY_RUNNER[] =
    "import importlib, os, sys\n"
    "app, args = sys.argv[1], sys.argv[2:]\n"
    "mod, _, fn = app.partition(':')\n"
    "sys.path.append(os.getcwd())\n"
    "sys.argv = [app] + args\n"
    "try:\n"
    "    m = importlib.import_module(mod)\n"
    "except ModuleNotFoundError as x:\n"
    "    if x.name != mod and not mod.startswith(str(x.name) + '.'):\n"
    "        raise\n"
    "    sys.exit('hakurun: `%s` is neither a command on PATH nor an importable Python module'"
    " % mod)\n"
    "if fn:\n"
    "    f = getattr(m, fn, None)\n"
    "    if not callable(f):\n"
    "        sys.exit('hakurun: Python module `%s` has no function `%s`' % (mod, fn))\n"
    "    f(*args)\n";

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakurun [--parallel] [--jobs N] [--dry-run] [-q|-v] [--] APP [ARG...]\n"
             "\n"
             "Runs APP once for every combination of its arguments. An argument\n"
             "  span:{A..B}     stands for the integers A..B (inclusive; empty when B < A)\n"
             "  span:[X,Y,...]  stands for the items X, Y, ... (quote an item that contains\n"
             "                  `,` or `]`: span:[\"a,b\",'c]d'])\n"
             "anything else is passed unchanged. The last argument varies fastest. Quote the\n"
             "span arguments for the shell: 'span:{1..3}'.\n"
             "\n"
             "APP is a program (run directly, no shell) or a Python module `mod` or `mod:func`\n"
             "(run with python3: a name that is not a command on PATH, or any mod:func).\n"
             "\n"
             "options (before APP):\n"
             "  --parallel        run combinations at the same time\n"
             "  -j, --jobs N      at most N at a time (implies --parallel; default: the\n"
             "                    number of CPUs this process may use)\n"
             "  -n, --dry-run     print each command, shell-quoted, one per line; run nothing\n"
             "  -q, --quiet       report only failures\n"
             "  -v, --verbose     also report each combination as it starts\n"
             "  -h, --help        show this help\n"
             "\n"
             "Exit status: 0 when every combination exited 0; otherwise the status of the\n"
             "first failed combination (128+N when killed by signal N); 2 for a usage error\n"
             "or a malformed span; 128+N when hakurun itself got SIGINT, SIGTERM or SIGHUP\n"
             "(forwarded to the running combinations first).\n");
}

/* ---- what to run ---- */

enum app_kind { APP_EXEC, APP_PYTHON };

static bool is_ident (const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_'))
            return false;
    }
    return true;
}

/* "a", "a.b.c": what importlib.import_module takes. */
static bool is_module (const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == '.') {
            if (!is_ident (s + start, i - start))
                return false;
            start = i + 1;
        }
    return true;
}

/* Whether NAME (no '/') is an executable file in a directory of $PATH. */
static bool on_path (const char *name)
{
    const char *path = getenv ("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        size_t n = strcspn (p, ":");
        char *full = n ? xasprintf ("%.*s/%s", (int)n, p, name) : xstrdup (name);
        struct stat sb;
        bool found = stat (full, &sb) == 0 && S_ISREG (sb.st_mode) && access (full, X_OK) == 0;
        free (full);
        if (found)
            return true;
        if (!p[n])
            return false;
        p += n + 1;
    }
}

/* 0.3 tried to import APP first and ran it as a program only when the import failed, so a
 * program named like a Python module (`test`, `time`) ran Python's module instead. Here a
 * program on PATH wins; `mod:func` is always Python. */
static enum app_kind app_kind (const char *app)
{
    if (strchr (app, '/'))
        return APP_EXEC;
    const char *colon = strchr (app, ':');
    if (colon)
        return is_module (app, (size_t)(colon - app)) && is_ident (colon + 1, strlen (colon + 1))
                   ? APP_PYTHON
                   : APP_EXEC;
    if (on_path (app))
        return APP_EXEC;
    return is_module (app, strlen (app)) ? APP_PYTHON : APP_EXEC;
}

/* ---- shell quoting for --dry-run and messages ---- */

static bool shell_safe (const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-",
                     *p))
            return false;
    return true;
}

/* Appends S to OUT (a growing string of *LEN bytes), single-quoted unless it is made only
 * of characters no shell treats specially. */
static void append_quoted (char **out, size_t *len, const char *s)
{
    size_t n = strlen (s);
    *out = xrealloc (*out, *len + 4 * n + 4);
    char *o = *out + *len;
    if (*len)
        *o++ = ' ';
    if (shell_safe (s)) {
        memcpy (o, s, n);
        o += n;
    } else {
        *o++ = '\'';
        for (const char *p = s; *p; p++) {
            if (*p == '\'') {
                memcpy (o, "'\\''", 4);
                o += 4;
            } else
                *o++ = *p;
        }
        *o++ = '\'';
    }
    *o = '\0';
    *len = (size_t)(o - *out);
}

/* The command line a user can paste to run combination VALUES by hand: the program's argv,
 * or for a Python APP the one-combination hakurun that runs it. Caller frees. */
static char *command_line (const char *app, enum app_kind kind, char **values)
{
    char *out = xstrdup ("");
    size_t len = 0;
    if (kind == APP_PYTHON)
        append_quoted (&out, &len, "hakurun");
    append_quoted (&out, &len, app);
    for (char **v = values; *v; v++) {
        char *lit = kind == APP_PYTHON ? span_literal (*v) : xstrdup (*v);
        append_quoted (&out, &len, lit);
        free (lit);
    }
    return out;
}

/* ---- running ---- */

struct run {
    const char *app;
    enum app_kind kind;
    const char *python;
    struct span_set set;
    uint64_t total;
    int jobs;
    bool verbose;
    sigset_t wait_set;     /* SIGCHLD and the signals we forward, blocked */
    sigset_t old_mask;     /* restored in the children */
    struct slot {
        pid_t pid;         /* 0 = free */
        uint64_t index;
    } *slots;
    int running;
    uint64_t failed;
    uint64_t first_failed;  /* lowest failed index, valid when failed > 0 */
    int first_status;       /* its exit status as a shell reports it */
    uint64_t listed[SUMMARY_MAX];
    int nlisted;
    int stop_signal;        /* the signal that stopped us, 0 when none */
};

static int cpu_count (void)
{
    cpu_set_t set;
    if (sched_getaffinity (0, sizeof set, &set) == 0 && CPU_COUNT (&set) > 0)
        return CPU_COUNT (&set);
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Forks and execs combination INDEX. Returns the pid, or -1 when fork failed. */
static pid_t start (struct run *r, uint64_t index)
{
    char **values = span_set_argv (&r->set, index);
    size_t nv = r->set.nargs;
    char **argv = xcalloc (nv + 5, sizeof *argv);
    size_t k = 0;
    const char *file = r->app;
    if (r->kind == APP_PYTHON) {
        file = r->python;
        argv[k++] = (char *)r->python;
        argv[k++] = "-c";
        argv[k++] = (char *)PY_RUNNER;
    }
    argv[k++] = (char *)r->app;
    for (size_t i = 0; i < nv; i++)
        argv[k++] = values[i];
    if (r->verbose) {
        char *line = command_line (r->app, r->kind, values);
        char esc[1024];
        log_info ("combination %" PRIu64 "/%" PRIu64 ": %s", index + 1, r->total,
                  log_escape (line, esc, sizeof esc));
        free (line);
    }
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == 0) {
        sigprocmask (SIG_SETMASK, &r->old_mask, NULL);
        execvp (file, argv);
        int err = errno;
        char esc[256];
        fprintf (stderr, "hakurun: cannot run `%s`: %s\n", log_escape (file, esc, sizeof esc),
                 strerror (err));
        _exit (err == ENOENT ? 127 : 126); /* as a shell reports it */
    }
    free (argv);
    span_argv_free (values);
    return pid;
}

/* Records how combination INDEX ended. */
static void finished (struct run *r, uint64_t index, int wstatus)
{
    int code = WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : 128 + WTERMSIG (wstatus);
    if (code == 0)
        return;
    if (!r->failed || index < r->first_failed) {
        r->first_failed = index;
        r->first_status = code;
    }
    if (r->nlisted < SUMMARY_MAX)
        r->listed[r->nlisted++] = index;
    r->failed++;
    if (r->total == 1)
        return; /* one combination: a transparent wrapper, its status says it all */
    char **values = span_set_argv (&r->set, index);
    char *line = command_line (r->app, r->kind, values);
    char esc[1024];
    if (WIFEXITED (wstatus))
        log_warn ("combination %" PRIu64 "/%" PRIu64 " exited with code %d: %s", index + 1,
                  r->total, code, log_escape (line, esc, sizeof esc));
    else
        log_warn ("combination %" PRIu64 "/%" PRIu64 " was killed by signal %d (%s): %s",
                  index + 1, r->total, WTERMSIG (wstatus), strsignal (WTERMSIG (wstatus)),
                  log_escape (line, esc, sizeof esc));
    free (line);
    span_argv_free (values);
}

static void reap (struct run *r)
{
    int wstatus;
    pid_t pid;
    while ((pid = waitpid (-1, &wstatus, WNOHANG)) > 0) {
        for (int i = 0; i < r->jobs; i++)
            if (r->slots[i].pid == pid) {
                r->slots[i].pid = 0;
                r->running--;
                finished (r, r->slots[i].index, wstatus);
                break;
            }
    }
}

/* Passes SIG on to every running combination, once per signal received. A signal from the
 * terminal (si_code SI_KERNEL) already went to the whole foreground process group, children
 * included, so it is not sent a second time. */
static void forward (struct run *r, const siginfo_t *si)
{
    if (!r->stop_signal)
        log_warn ("got signal %d (%s): %s; no new combinations start", si->si_signo,
                  strsignal (si->si_signo),
                  si->si_code == SI_KERNEL ? "the terminal sent it to the running ones too"
                                           : "passing it on to the running ones");
    r->stop_signal = si->si_signo;
    if (si->si_code == SI_KERNEL)
        return;
    for (int i = 0; i < r->jobs; i++)
        if (r->slots[i].pid > 0)
            kill (r->slots[i].pid, si->si_signo);
}

/* Blocks SIGCHLD and those of SIGINT, SIGTERM, SIGHUP that are not ignored (a shell starts
 * background jobs with SIGINT ignored: that choice is respected and passed on). */
static void setup_signals (struct run *r)
{
    static const int fwd[] = { SIGINT, SIGTERM, SIGHUP };
    sigemptyset (&r->wait_set);
    sigaddset (&r->wait_set, SIGCHLD);
    signal (SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap the children for us */
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
        struct sigaction sa;
        if (sigaction (fwd[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
            sigaddset (&r->wait_set, fwd[i]);
    }
    sigprocmask (SIG_BLOCK, &r->wait_set, &r->old_mask);
}

static int run_all (struct run *r)
{
    uint64_t next = 0;
    r->slots = xcalloc ((size_t)r->jobs, sizeof *r->slots);
    setup_signals (r);
    for (;;) {
        while (!r->stop_signal && r->running < r->jobs && next < r->total) {
            int i = 0;
            while (r->slots[i].pid != 0)
                i++;
            pid_t pid = start (r, next);
            if (pid < 0) {
                log_err ("cannot start combination %" PRIu64 ": fork: %s", next + 1,
                         strerror (errno));
                r->stop_signal = r->stop_signal ? r->stop_signal : -1;
                break;
            }
            r->slots[i].pid = pid;
            r->slots[i].index = next++;
            r->running++;
        }
        if (r->running == 0)
            break;
        siginfo_t si;
        int sig = sigwaitinfo (&r->wait_set, &si);
        if (sig == SIGCHLD)
            reap (r);
        else if (sig > 0)
            forward (r, &si);
    }
    sigprocmask (SIG_SETMASK, &r->old_mask, NULL);
    free (r->slots);
    r->slots = NULL;

    uint64_t done = next;
    if (r->failed && r->total > 1) {
        char list[256] = "";
        for (int i = 0; i < r->nlisted; i++) {
            size_t l = strlen (list);
            snprintf (list + l, sizeof list - l, "%s%" PRIu64, i ? ", " : "", r->listed[i] + 1);
        }
        log_warn ("%" PRIu64 " of %" PRIu64 " combinations failed (%s%s)", r->failed, done, list,
                  r->failed > (uint64_t)r->nlisted ? ", ..." : "");
    } else if (!r->stop_signal && r->total > 1)
        log_info ("all %" PRIu64 " combinations succeeded", r->total);
    if (r->stop_signal > 0) {
        if (done < r->total)
            log_warn ("stopped by signal %d after starting %" PRIu64 " of %" PRIu64
                      " combinations", r->stop_signal, done, r->total);
        return 128 + r->stop_signal;
    }
    if (r->stop_signal < 0)
        return 1;
    return r->failed ? r->first_status : 0;
}

int hakurun_main (int argc, char **argv)
{
    struct args_hakurun o;
    struct err e = { 0 };
    if (args_parse_hakurun (argc, argv, &o, &e) < 0) {
        fprintf (stderr, "hakurun: error: %s\nRun `hakurun --help` for usage.\n", e.text);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage (stdout);
        return 0;
    }
    log_init ("hakurun", o.quiet ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
    struct run r = { .app = argv[o.app], .verbose = o.verbose };
    const char *const *args = (const char *const *)argv + o.app + 1;
    size_t nargs = (size_t)(argc - o.app - 1);
    int rc;
    if (span_set_parse (&r.set, nargs, args, SPAN_MAX_HAKURUN, NULL, &e) < 0) {
        fprintf (stderr, "hakurun: error: %s\n", e.text);
        rc = EXIT_USAGE;
        goto out;
    }
    r.total = r.set.count;
    r.kind = app_kind (r.app);
    if (r.total == 0) {
        log_warn ("no argument combinations: a span is empty (span:[] or a range whose end is "
                  "below its start); nothing to run");
        rc = 0;
        goto out;
    }
    if (o.dry_run) {
        for (uint64_t i = 0; i < r.total; i++) {
            char **values = span_set_argv (&r.set, i);
            char *line = command_line (r.app, r.kind, values);
            puts (line);
            free (line);
            span_argv_free (values);
        }
        rc = fflush (stdout) == 0 ? 0 : 1;
        goto out;
    }
    r.python = getenv ("HAKURUN_PYTHON");
    if (!r.python || !*r.python)
        r.python = PYTHON_DEFAULT;
    int jobs = !o.parallel ? 1 : o.jobs > 0 ? (int)o.jobs : cpu_count ();
    r.jobs = (uint64_t)jobs > r.total ? (int)r.total : jobs;
    if (r.total > 1 && r.jobs > 1)
        log_info ("running %" PRIu64 " combinations in parallel, at most %d at a time", r.total,
                  r.jobs);
    else if (r.total > 1)
        log_info ("running %" PRIu64 " combinations one after another", r.total);
    rc = run_all (&r);
out:
    span_set_free (&r.set);
    return rc;
}
