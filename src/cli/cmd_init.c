/* cmd_init.c - `hakuriver.init`: write a default config with fresh tokens, or systemd units */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/xalloc.h"
#include "entry.h"

#define PROG "hakuriver.init"
#define UNIT_DIR "/etc/systemd/system"

enum { INIT_OK = 0, INIT_FAIL = 1, INIT_USAGE = 2 };

struct init_opts {
    const char *cmd;            /* "config" or "service" */
    const char *config;         /* --config/-c */
    const char *output;         /* config: --output/-o */
    bool force;                 /* config: --force/-f */
    const char *config_only;    /* first config-only option seen, for misuse messages */
    bool host, runner;          /* service: --host, --runner (--all sets both) */
    const char *host_config;    /* service: --host-config */
    const char *runner_config;  /* service: --runner-config */
    const char *output_dir;     /* service: --output-dir, default "." */
    bool install;               /* service: --install */
    const char *service_only;   /* first service-only option seen */
};

static void usage (FILE *out)
{
    fprintf (out,
             "usage: " PROG " [-c PATH] [config] [--output PATH] [--force]\n"
             "       " PROG " [-c PATH] service (--host | --runner | --all) [--host-config PATH]\n"
             "                      [--runner-config PATH] [--output-dir DIR] [--install]\n"
             "\n"
             "config (the default): write a commented default configuration with fresh\n"
             "  [auth] tokens, mode 0600.\n"
             "  -o, --output PATH     where to write (default: -c PATH, else\n"
             "                        ~/.hakuriver/config.toml)\n"
             "  -f, --force           overwrite an existing file\n"
             "\n"
             "service: write systemd units hakuriver-host.service and/or\n"
             "  hakuriver-runner.service that run this executable.\n"
             "  --host, --runner, --all  which units to write (at least one)\n"
             "  --host-config PATH    config for the host unit (default: -c PATH, else the\n"
             "                        resolved config, else ~/.hakuriver/config.toml)\n"
             "  --runner-config PATH  config for the runner unit (same default)\n"
             "  --output-dir DIR      where to write the units (default: .)\n"
             "  --install             copy them to " UNIT_DIR " and run\n"
             "                        `systemctl daemon-reload` (needs root)\n"
             "\n"
             "  -c, --config PATH     configuration file\n"
             "  -h, --help            show this help\n");
}

static int usage_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static int usage_error (const char *fmt, ...)
{
    va_list ap;
    fprintf (stderr, PROG ": error: ");
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fprintf (stderr, "\nRun `" PROG " --help` for usage.\n");
    return INIT_USAGE;
}

static int fail (const char *what)
{
    fprintf (stderr, PROG ": error: %s\n", what);
    return INIT_FAIL;
}

/* Matches ARGV[*I] against LONG_NAME (and SHORT_NAME if not NULL), with a value either as
 * "--name=value" or the next word. Returns 1 on a match (value in *VAL, *I advanced past it),
 * 0 when it is another option, -1 when the value is missing. */
static int opt_value (int argc, char **argv, int *i, const char *long_name,
                      const char *short_name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen (long_name);
    if (strncmp (a, long_name, n) == 0 && a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (strcmp (a, long_name) != 0 && !(short_name && strcmp (a, short_name) == 0))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

/* Parses the command line into O. Returns INIT_OK, or an exit code after printing. */
static int parse_args (int argc, char **argv, struct init_opts *o, bool *help)
{
    static const struct {
        const char *long_name, *short_name;
        int kind; /* 0 global, 1 config-only, 2 service-only */
        size_t offset;
    } valued[] = {
        { "--config", "-c", 0, offsetof (struct init_opts, config) },
        { "--output", "-o", 1, offsetof (struct init_opts, output) },
        { "--host-config", NULL, 2, offsetof (struct init_opts, host_config) },
        { "--runner-config", NULL, 2, offsetof (struct init_opts, runner_config) },
        { "--output-dir", NULL, 2, offsetof (struct init_opts, output_dir) },
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0) {
            *help = true;
            return INIT_OK;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
            const char *val = NULL;
            int r = opt_value (argc, argv, &i, valued[k].long_name, valued[k].short_name, &val);
            if (r < 0)
                return usage_error ("option `%s` needs a value", a);
            if (r == 0)
                continue;
            if (*val == '\0')
                return usage_error ("option `%s` needs a non-empty value", valued[k].long_name);
            *(const char **)((char *)o + valued[k].offset) = val;
            if (valued[k].kind == 1 && !o->config_only)
                o->config_only = valued[k].long_name;
            if (valued[k].kind == 2 && !o->service_only)
                o->service_only = valued[k].long_name;
            matched = true;
            break;
        }
        if (matched)
            continue;
        if (strcmp (a, "--force") == 0 || strcmp (a, "-f") == 0) {
            o->force = true;
            o->config_only = o->config_only ? o->config_only : "--force";
        } else if (strcmp (a, "--host") == 0 || strcmp (a, "--runner") == 0
                   || strcmp (a, "--all") == 0 || strcmp (a, "--install") == 0) {
            o->host |= a[2] == 'h' || a[2] == 'a';
            o->runner |= a[2] == 'r' || a[2] == 'a';
            o->install |= a[2] == 'i';
            o->service_only = o->service_only ? o->service_only : a;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error ("unknown option `%s`", a);
        } else if (!o->cmd && (strcmp (a, "config") == 0 || strcmp (a, "service") == 0)) {
            o->cmd = a;
        } else if (!o->cmd) {
            return usage_error ("unknown command `%s` (expected `config` or `service`)", a);
        } else {
            return usage_error ("unexpected argument `%s`", a);
        }
    }
    if (!o->cmd)
        o->cmd = "config";
    if (strcmp (o->cmd, "config") == 0 && o->service_only)
        return usage_error ("option `%s` belongs to `service`", o->service_only);
    if (strcmp (o->cmd, "service") == 0 && o->config_only)
        return usage_error ("option `%s` belongs to `config`", o->config_only);
    if (strcmp (o->cmd, "service") == 0 && !o->host && !o->runner)
        return usage_error ("service: choose at least one of --host, --runner or --all");
    return INIT_OK;
}

/* Returns the home directory ($HOME, else the password database), or NULL. */
static const char *home_dir (void)
{
    const char *home = getenv ("HOME");
    if (home && *home)
        return home;
    struct passwd *pw = getpwuid (getuid ());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* Returns PATH made absolute against the working directory (not resolving links); caller
 * frees. */
static char *absolute_path (const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/')
        return xstrdup (path);
    if (!getcwd (cwd, sizeof cwd))
        return xstrdup (path);
    const char *p = path;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    return xasprintf ("%s/%s", strcmp (cwd, "/") == 0 ? "" : cwd, p);
}

/* Writes the default config with fresh tokens to FD. Returns 0 or -1 (errno set). */
static int write_config (int fd, const char *api, const char *join)
{
    FILE *f = fdopen (fd, "w");
    if (!f)
        return -1;
    conf_write_default (f, api, join);
    int rc = fflush (f) == 0 && !ferror (f) && fsync (fd) == 0 ? 0 : -1;
    int saved = errno;
    if (fclose (f) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

static int cmd_config (const struct init_opts *o)
{
    char api[65], join[65], msg[PATH_MAX + 200];
    struct err e = { 0 };
    char *path = NULL, *tmp = NULL;
    int fd = -1, exit_rc = INIT_FAIL;
    const char *given = o->output ? o->output : o->config;
    if (given) {
        path = absolute_path (given);
    } else {
        const char *home = home_dir ();
        if (!home)
            return fail ("cannot find the home directory; use --output PATH");
        char *dir = xasprintf ("%s/.hakuriver", home);
        if (mkdir (dir, 0700) < 0 && errno != EEXIST) {
            snprintf (msg, sizeof msg, "create `%s`: %s", dir, strerror (errno));
            free (dir);
            return fail (msg);
        }
        path = xasprintf ("%s/config.toml", dir);
        free (dir);
    }
    if (conf_random_token (api, &e) < 0 || conf_random_token (join, &e) < 0) {
        fail (e.text);
        goto out;
    }
    if (!o->force) {
        /* O_EXCL: never clobber a config (it holds the cluster's tokens) without --force */
        fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            snprintf (msg, sizeof msg, "`%s` already exists; use --force to overwrite it", path);
            fail (msg);
            goto out;
        }
        if (fd < 0 || fchmod (fd, 0600) < 0 || write_config (fd, api, join) < 0) {
            snprintf (msg, sizeof msg, "write `%s`: %s", path, strerror (errno));
            if (fd >= 0)
                unlink (path);
            fail (msg);
            goto out;
        }
    } else {
        /* write a sibling and rename it over: readers never see a half-written file, and
         * the new file gets mode 0600 whatever the old one had */
        tmp = xasprintf ("%s.tmp.XXXXXX", path);
        fd = mkstemp (tmp);
        if (fd < 0 || fchmod (fd, 0600) < 0 || write_config (fd, api, join) < 0
            || rename (tmp, path) < 0) {
            snprintf (msg, sizeof msg, "write `%s`: %s", path, strerror (errno));
            if (fd >= 0)
                unlink (tmp);
            fail (msg);
            goto out;
        }
    }
    fd = -1; /* closed by write_config */
    printf ("Default config file created at %s\n", path);
    printf ("It holds fresh [auth] tokens: share it only over private channels.\n");
    exit_rc = INIT_OK;
out:
    explicit_bzero (api, sizeof api);
    explicit_bzero (join, sizeof join);
    free (tmp);
    free (path);
    return exit_rc;
}

/* Quotes S for a systemd unit value: `%` -> `%%`, `$` -> `$$`, and double quotes around
 * values with spaces, quotes or backslashes. Returns a new string. */
static char *unit_quote (const char *s)
{
    bool quote = strpbrk (s, " \t\"\\'") != NULL;
    char *out = xmalloc (strlen (s) * 2 + 3), *q = out;
    if (quote)
        *q++ = '"';
    for (; *s; s++) {
        if (*s == '%' || *s == '$')
            *q++ = *s;
        else if (quote && (*s == '"' || *s == '\\'))
            *q++ = '\\';
        *q++ = *s;
    }
    if (quote)
        *q++ = '"';
    *q = '\0';
    return out;
}

/* Picks the config path for a unit: ROLE_PATH, --config, the resolved config, or
 * ~/.hakuriver/config.toml. Checks that it exists and loads. Returns the absolute path and
 * fills *SHARED_DIR (caller frees both), or NULL after printing the error. */
static char *unit_config (const struct init_opts *o, const char *role_path, char **shared_dir)
{
    struct err e = { 0 };
    struct conf conf = { 0 };
    char msg[PATH_MAX + 600];
    char *found = NULL, *path;
    const char *p = role_path ? role_path : o->config;
    if (!p) {
        found = conf_find (NULL, &e);
        if (!found && e.code) {
            fail (e.text);
            return NULL;
        }
        if (!found) {
            const char *home = home_dir ();
            if (!home) {
                fail ("cannot find the home directory; use --config PATH");
                return NULL;
            }
            found = xasprintf ("%s/.hakuriver/config.toml", home);
        }
        p = found;
    }
    path = absolute_path (p);
    free (found);
    if (access (path, F_OK) < 0) {
        snprintf (msg, sizeof msg, "config file `%s` not found (create it with `" PROG
                  " config --output %s`)", path, path);
        goto error;
    }
    if (conf_load (&conf, path, &e) < 0) {
        snprintf (msg, sizeof msg, "%s", e.text);
        goto error;
    }
    *shared_dir = xstrdup (conf.shared_dir);
    conf_free (&conf);
    return path;
error:
    fail (msg);
    free (path);
    return NULL;
}

/* Returns the unit text for ROLE ("host" or "runner"); caller frees. */
static char *unit_text (const char *role, const char *exe, const char *config,
                        const char *shared_dir, const char *user, const char *group)
{
    bool host = strcmp (role, "host") == 0;
    char *qexe = unit_quote (exe), *qconf = unit_quote (config), *qshared = unit_quote (shared_dir);
    char *text = xasprintf (
        "# Written by `" PROG " service`.\n"
        "[Unit]\n"
        "Description=%s\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "RequiresMountsFor=%s\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "User=%s\n"
        "Group=%s\n"
        "ExecStart=%s %s --config %s\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "%s"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n",
        host ? "HakuRiver Host Server" : "HakuRiver Runner Agent", qshared, user, group, qexe,
        role, qconf,
        host ? ""
             : "# Root manages the task cgroups. Task processes outlive runner restarts by\n"
               "# design (the runner re-adopts them), so stopping the unit stops only the runner.\n"
               "KillMode=process\n");
    free (qexe);
    free (qconf);
    free (qshared);
    return text;
}

/* Writes TEXT to PATH with mode 0644 (replacing it). Returns 0 or -1 (errno set). */
static int write_file (const char *path, const char *text)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen (text), off = 0;
    while (off < len) {
        ssize_t n = write (fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close (fd);
            errno = saved;
            return -1;
        }
        off += (size_t)n;
    }
    if (fchmod (fd, 0644) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return -1;
    }
    return close (fd);
}

/* Runs ARGV (no shell) and waits. Returns its exit status, or -1 if it could not run. */
static int run_command (char *const argv[])
{
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp (argv[0], argv);
        fprintf (stderr, PROG ": error: cannot run `%s`: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    return 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}

/* The user the host unit runs as: the invoking user (SUDO_USER under sudo). Fills USER and
 * GROUP names (caller frees). Returns 0 or -1. */
static int invoking_user (char **user, char **group)
{
    struct passwd *pw = NULL;
    const char *sudo_user = getenv ("SUDO_USER");
    if (getuid () == 0 && sudo_user && *sudo_user)
        pw = getpwnam (sudo_user);
    if (!pw)
        pw = getpwuid (getuid ());
    if (!pw)
        return -1;
    struct group *gr = getgrgid (pw->pw_gid);
    *user = xstrdup (pw->pw_name);
    *group = gr ? xstrdup (gr->gr_name) : xasprintf ("%u", (unsigned)pw->pw_gid);
    return 0;
}

static int cmd_service (const struct init_opts *o)
{
    char exe[PATH_MAX], msg[PATH_MAX * 2 + 100];
    const char *roles[2];
    char *files[2] = { NULL, NULL };
    char *texts[2] = { NULL, NULL };
    char *user = NULL, *group = NULL, *dir = NULL;
    int n = 0, exit_rc = INIT_FAIL;
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0)
        return fail ("cannot read /proc/self/exe to find this executable");
    exe[len] = '\0';
    if (o->host)
        roles[n++] = "host";
    if (o->runner)
        roles[n++] = "runner";
    if (invoking_user (&user, &group) < 0) {
        fail ("cannot find the invoking user in the password database");
        goto out;
    }
    dir = absolute_path (o->output_dir ? o->output_dir : ".");
    for (int i = 0; i < n; i++) {
        bool host = strcmp (roles[i], "host") == 0;
        char *shared = NULL;
        char *config = unit_config (o, host ? o->host_config : o->runner_config, &shared);
        if (!config)
            goto out;
        texts[i] = unit_text (roles[i], exe, config, shared, host ? user : "root",
                              host ? group : "root");
        free (config);
        free (shared);
        files[i] = xasprintf ("%s/hakuriver-%s.service", strcmp (dir, "/") == 0 ? "" : dir,
                              roles[i]);
        if (write_file (files[i], texts[i]) < 0) {
            snprintf (msg, sizeof msg, "write `%s`: %s", files[i], strerror (errno));
            fail (msg);
            goto out;
        }
        printf ("Wrote %s\n", files[i]);
    }
    if (!o->install) {
        printf ("To install, run:\n  sudo cp");
        for (int i = 0; i < n; i++)
            printf (" %s", files[i]);
        printf (" " UNIT_DIR "/\n  sudo systemctl daemon-reload\n");
        printf ("Then start at boot with: sudo systemctl enable --now");
        for (int i = 0; i < n; i++)
            printf (" hakuriver-%s", roles[i]);
        printf ("\n");
        exit_rc = INIT_OK;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char *dest = xasprintf (UNIT_DIR "/hakuriver-%s.service", roles[i]);
        if (write_file (dest, texts[i]) < 0) {
            snprintf (msg, sizeof msg, "install `%s`: %s%s", dest, strerror (errno),
                      errno == EACCES || errno == EPERM ? " (run as root)" : "");
            free (dest);
            fail (msg);
            goto out;
        }
        printf ("Installed %s\n", dest);
        free (dest);
    }
    char *argv[] = { "systemctl", "daemon-reload", NULL };
    int rc = run_command (argv);
    if (rc != 0) {
        if (rc < 0)
            snprintf (msg, sizeof msg, "cannot run `systemctl daemon-reload`: %s",
                      strerror (errno));
        else
            snprintf (msg, sizeof msg, "`systemctl daemon-reload` exited with status %d", rc);
        fail (msg);
        goto out;
    }
    printf ("Ran systemctl daemon-reload. Start at boot with: systemctl enable --now");
    for (int i = 0; i < n; i++)
        printf (" hakuriver-%s", roles[i]);
    printf ("\n");
    exit_rc = INIT_OK;
out:
    for (int i = 0; i < 2; i++) {
        free (files[i]);
        free (texts[i]);
    }
    free (dir);
    free (user);
    free (group);
    return exit_rc;
}

int cli_init_main (int argc, char **argv)
{
    struct init_opts o = { 0 };
    bool help = false;
    int rc = parse_args (argc, argv, &o, &help);
    if (rc != INIT_OK)
        return rc;
    if (help) {
        usage (stdout);
        return INIT_OK;
    }
    if (strcmp (o.cmd, "service") == 0)
        return cmd_service (&o);
    return cmd_config (&o);
}
