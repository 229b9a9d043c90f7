/* conf.c - table-driven TOML configuration: defaults, parsing, validation, dump, default file */
#include "common/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/toml.h"
#include "common/xalloc.h"

enum key_type {
    KT_STRING,  /* char * */
    KT_INT,     /* int, bounded by min..max */
    KT_BOOL,    /* bool */
    KT_LIST,    /* char **, NULL-terminated */
};

enum {
    KF_ABS = 1 << 0,          /* must be an absolute path */
    KF_ABS_OR_EMPTY = 1 << 1, /* "" or an absolute path */
    KF_NONEMPTY = 1 << 2,     /* "" is refused */
    KF_SECRET = 1 << 3,       /* dumped as "<set>" or "" */
    KF_UNUSED = 1 << 4,       /* accepted for 0.3 compatibility, stored nowhere */
};

#define NO_FIELD ((size_t)-1)
#define F(field) offsetof (struct conf, field)

struct key {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;            /* into struct conf, or NO_FIELD */
    const char *def_str;      /* KT_STRING default */
    int def_int;              /* KT_INT / KT_BOOL default */
    int min, max;             /* KT_INT bounds, inclusive */
    unsigned flags;
    bool (*check) (const char *value); /* extra predicate for strings and list items */
    const char *expect;       /* what CHECK wants, for "expected <expect>, got ..." */
    const char *help;         /* one or more lines, written as comments in the default file */
};

/* Predicates used by the table. */
static bool log_level_valid (const char *s)
{
    return strcmp (s, "error") == 0 || strcmp (s, "warning") == 0 || strcmp (s, "info") == 0
           || strcmp (s, "debug") == 0;
}

static bool ip_literal_valid (const char *s)
{
    unsigned char buf[sizeof (struct in6_addr)];
    return inet_pton (AF_INET, s, buf) == 1 || inet_pton (AF_INET6, s, buf) == 1;
}

static bool mount_valid (const char *s)
{
    const char *colon = strchr (s, ':');
    return colon && colon != s && colon[1] != '\0' && colon[1] != ':';
}

static const struct {
    const char *name;
    const char *help;
} sections[] = {
    { "network", "Addresses and ports." },
    { "paths", "Directories and files." },
    { "database", "Host database." },
    { "timing", "Intervals, in seconds." },
    { "environment", "How runners execute native tasks." },
    { "docker", "Docker task environments (read now; used by the Docker executor)." },
    { "vps", "VPS tasks: long-lived containers reached over SSH (docs/vps.md)." },
    { "auth", "Secrets. Keep this file private (mode 0600)." },
    { "log", "Logging." },
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* The one list of keys: parsing, validation, conf_dump and conf_write_default all walk it.
 * Order within a section is the order in the written files. */
static const struct key keys[] = {
    { "network", "host_bind_ip", KT_STRING, F (host_bind_ip), "0.0.0.0", 0, 0, 0, KF_NONEMPTY,
      NULL, NULL, "Address the host binds its HTTP API and SSH proxy to (0.0.0.0 = every interface)." },
    { "network", "host_port", KT_INT, F (host_port), NULL, 8000, 1, 65535, 0, NULL, NULL,
      "TCP port of the host HTTP API; runners, clients and the dashboard connect to it." },
    { "network", "host_ssh_proxy_port", KT_INT, F (host_ssh_proxy_port), NULL, 8002, 1, 65535, 0,
      NULL, NULL, "TCP port of the host SSH proxy for VPS tasks." },
    { "network", "host_reachable_address", KT_STRING, F (host_reachable_address), "127.0.0.1", 0,
      0, 0, KF_NONEMPTY, NULL, NULL,
      "Address runners and clients use to reach the host.\n"
      "Set it to the host's LAN address or name on a multi-node cluster." },
    { "network", "runner_address", KT_STRING, F (runner_address), "127.0.1.1", 0, 0, 0,
      KF_NONEMPTY, NULL, NULL,
      "Address a runner reports for itself (informational: the host never connects\n"
      "to runners for control)." },
    { "network", "runner_port", KT_INT, F (runner_port), NULL, 8001, 1, 65535, 0, NULL, NULL,
      "Port a runner reports for itself. Kept for 0.3 compatibility; the runner opens no port." },

    { "paths", "shared_dir", KT_STRING, F (shared_dir), "/var/lib/hakuriver/shared", 0, 0, 0,
      KF_ABS, NULL, NULL,
      "Directory shared by the host and every runner at the same path (e.g. an NFS mount):\n"
      "task logs and container tarballs. Must be absolute." },
    { "paths", "local_temp_dir", KT_STRING, F (local_temp_dir), "/var/lib/hakuriver/local", 0, 0,
      0, KF_ABS, NULL, NULL, "Node-local scratch directory on each runner. Must be absolute." },
    { "paths", "numactl_path", KT_STRING, F (numactl_path), "", 0, 0, 0, 0, NULL, NULL,
      "Accepted for 0.3 compatibility; unused (NUMA binding uses cgroups and memory policy)." },
    { "paths", "host_log_file", KT_STRING, F (host_log_file), "", 0, 0, 0, 0, NULL, NULL,
      "File the host appends its log to; empty = stderr." },
    { "paths", "runner_log_file", KT_STRING, F (runner_log_file), "", 0, 0, 0, 0, NULL, NULL,
      "File the runner appends its log to; empty = stderr." },
    { "paths", "runner_state_dir", KT_STRING, F (runner_state_dir), "", 0, 0, 0, KF_ABS_OR_EMPTY,
      NULL, NULL,
      "Directory for the runner's identity and undelivered updates (kept across restarts);\n"
      "empty = local_temp_dir. Must be absolute when set." },

    { "database", "db_file", KT_STRING, F (db_file), "/var/lib/hakuriver/hakuriver.db", 0, 0, 0,
      KF_ABS, NULL, NULL, "SQLite database file of the host. Must be absolute." },

    { "timing", "heartbeat_interval", KT_INT, F (heartbeat_interval), NULL, 5, 1, 3600, 0, NULL,
      NULL, "Seconds between runner heartbeats." },
    { "timing", "heartbeat_timeout_factor", KT_INT, F (heartbeat_timeout_factor), NULL, 6, 2, 1000,
      0, NULL, NULL,
      "A runner is declared lost after heartbeat_interval * heartbeat_timeout_factor seconds\n"
      "without a heartbeat." },
    { "timing", "cleanup_check_interval", KT_INT, F (cleanup_check_interval), NULL, 10, 1, 3600, 0,
      NULL, NULL, "Seconds between the host's sweeps for silent runners." },
    { "timing", "resource_check_interval", KT_INT, NO_FIELD, NULL, 1, 1, 3600, KF_UNUSED, NULL,
      NULL, "Accepted for 0.3 compatibility; unused." },
    { "timing", "kill_grace_seconds", KT_INT, F (kill_grace_seconds), NULL, 10, 0, 3600, 0, NULL,
      NULL, "Seconds between SIGTERM and SIGKILL when a task is killed." },

    { "environment", "runner_user", KT_STRING, F (runner_user), "", 0, 0, 0, 0, NULL, NULL,
      "User native tasks run as on the runners; empty = the user running the runner." },
    { "environment", "allow_root_tasks", KT_BOOL, F (allow_root_tasks), NULL, 0, 0, 0, 0, NULL,
      NULL, "Allow native tasks to run as root. Off by default: a runner running as root\n"
      "refuses tasks unless runner_user names an unprivileged user." },

    { "docker", "container_dir", KT_STRING, F (container_dir), "hakuriver-containers", 0, 0, 0,
      KF_NONEMPTY, NULL, NULL, "Directory under shared_dir holding container tarballs." },
    { "docker", "default_container_name", KT_STRING, F (default_container_name), "hakuriver-base",
      0, 0, 0, KF_NONEMPTY, NULL, NULL, "Container environment used when a task names none." },
    { "docker", "initial_base_image", KT_STRING, F (initial_base_image),
      "python:3.12.10-alpine3.21", 0, 0, 0, KF_NONEMPTY, NULL, NULL,
      "Image the host creates default_container_name from when it has no tarball yet." },
    { "docker", "tasks_privileged", KT_BOOL, F (tasks_privileged), NULL, 0, 0, 0, 0, NULL, NULL,
      "Run Docker tasks with --privileged unless a task says otherwise." },
    { "docker", "additional_mounts", KT_LIST, F (additional_mounts), NULL, 0, 0, 0, 0,
      mount_valid, "\"HOST_PATH:CONTAINER_PATH[:OPTIONS]\"",
      "Extra bind mounts for every Docker task, each \"HOST_PATH:CONTAINER_PATH[:OPTIONS]\"." },
    { "docker", "socket", KT_STRING, F (docker_socket), "", 0, 0, 0, 0, NULL, NULL,
      "Docker Engine API socket; empty = $DOCKER_HOST (unix://...) or /var/run/docker.sock." },
    { "docker", "pull_timeout", KT_INT, F (pull_timeout), NULL, 120, 1, 86400, 0, NULL, NULL,
      "Seconds a registry pull may take before it fails (no registry may be reachable)." },
    { "docker", "create_default_environment", KT_BOOL, F (create_default_environment), NULL, 1,
      0, 0, 0, NULL, NULL,
      "At host start, build default_container_name from initial_base_image (a local image,\n"
      "else a pull) when no tarball of it exists yet. A failure is logged; the host keeps running." },
    { "docker", "allow_privileged", KT_BOOL, F (allow_privileged), NULL, 0, 0, 0, 0, NULL, NULL,
      "Allow tasks and VPS to ask for --privileged (tasks_privileged makes every task privileged)." },

    { "vps", "ready_timeout", KT_INT, F (vps_ready_timeout), NULL, 300, 5, 86400, 0, NULL, NULL,
      "Seconds a VPS may take from container start until its SSH server answers (including\n"
      "installing openssh when the image lacks it); after that it fails with the reason." },
    { "vps", "publish_address", KT_STRING, F (vps_publish_address), "0.0.0.0", 0, 0, 0,
      KF_NONEMPTY, ip_literal_valid, "an IPv4 or IPv6 address",
      "Runner address a VPS's SSH port is published on. The host's SSH proxy connects to the\n"
      "runner's own address, so 127.0.0.1 works only when host and runner share a machine." },

    { "auth", "api_token", KT_STRING, F (api_token), "", 0, 0, 0, KF_SECRET, NULL, NULL,
      "Token clients send as \"Authorization: Bearer <token>\". Empty disables\n"
      "authentication (the host warns at start). $HAKURIVER_TOKEN overrides it." },
    { "auth", "join_token", KT_STRING, F (join_token), "", 0, 0, 0, KF_SECRET, NULL, NULL,
      "Token runners present to the host; empty = api_token.\n"
      "$HAKURIVER_JOIN_TOKEN overrides it." },

    { "log", "level", KT_STRING, F (log_level), "info", 0, 0, 0, 0, log_level_valid,
      "one of error, warning, info, debug", "Minimum level logged: error, warning, info or debug." },
};
#define NKEYS (sizeof keys / sizeof keys[0])

#define FIELD(conf, k, type) ((type *)((char *)(conf) + (k)->offset))
#define CFIELD(conf, k, type) ((type const *)((const char *)(conf) + (k)->offset))

static void list_free (char **list)
{
    for (char **p = list; p && *p; p++)
        free (*p);
    free (list);
}

void conf_init_defaults (struct conf *conf)
{
    memset (conf, 0, sizeof *conf);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->offset == NO_FIELD)
            continue;
        switch (k->type) {
        case KT_STRING: *FIELD (conf, k, char *) = xstrdup (k->def_str); break;
        case KT_INT: *FIELD (conf, k, int) = k->def_int; break;
        case KT_BOOL: *FIELD (conf, k, bool) = k->def_int != 0; break;
        case KT_LIST: *FIELD (conf, k, char **) = xcalloc (1, sizeof (char *)); break;
        }
    }
}

void conf_free (struct conf *conf)
{
    if (!conf)
        return;
    int saved = errno;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->offset == NO_FIELD)
            continue;
        if (k->type == KT_STRING)
            free (*FIELD (conf, k, char *));
        else if (k->type == KT_LIST)
            list_free (*FIELD (conf, k, char **));
    }
    free (conf->path);
    memset (conf, 0, sizeof *conf);
    errno = saved;
}

static bool file_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && !S_ISDIR (st.st_mode);
}

/* Checks that PATH names an existing non-directory. WHENCE says where it came from. */
static int check_config_path (const char *path, const char *whence, struct err *e)
{
    struct stat st;
    if (stat (path, &st) < 0) {
        if (errno == ENOENT)
            return err_set (e, ENOENT, "config file `%s`%s not found", path, whence);
        return err_set (e, errno, "config file `%s`%s: %s", path, whence, strerror (errno));
    }
    if (S_ISDIR (st.st_mode))
        return err_set (e, EISDIR, "config file `%s`%s is a directory", path, whence);
    return 0;
}

char *conf_find (const char *explicit_path, struct err *e)
{
    err_clear (e);
    if (explicit_path) {
        if (check_config_path (explicit_path, "", e) < 0)
            return NULL;
        return xstrdup (explicit_path);
    }
    const char *env = getenv ("HAKURIVER_CONFIG");
    if (env && *env) {
        if (check_config_path (env, " (from $HAKURIVER_CONFIG)", e) < 0)
            return NULL;
        return xstrdup (env);
    }
    const char *home = getenv ("HOME");
    if (home && *home) {
        char *p = xasprintf ("%s/.hakuriver/config.toml", home);
        if (file_exists (p))
            return p;
        free (p);
    }
    return NULL;
}

/* Levenshtein distance, capped: only used to suggest a key for a typo. */
static size_t edit_distance (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static bool section_known (const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp (sections[i].name, name) == 0)
            return true;
    return false;
}

static const struct key *key_lookup (const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp (keys[i].section, section) == 0 && strcmp (keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Writes a hint for an unknown key NAME in SECTION into BUF: where it belongs, or a near
 * name in the same section. */
static const char *unknown_key_hint (const char *section, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp (keys[i].name, name) == 0) {
            snprintf (buf, n, " (`%s` belongs in [%s])", name, keys[i].section);
            return buf;
        }
    size_t best = 3;
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp (keys[i].section, section) != 0)
            continue;
        size_t d = edit_distance (name, keys[i].name);
        if (d < best) {
            best = d;
            snprintf (buf, n, " (did you mean `%s`?)", keys[i].name);
        }
    }
    return buf;
}

static int bad_value (struct err *e, const char *file, int line, const struct key *k,
                      const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

static int bad_value (struct err *e, const char *file, int line, const struct key *k,
                      const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    return err_set (e, EINVAL, "%s:%d: [%s] %s: %s", file, line, k->section, k->name, msg);
}

/* Checks one string value against K's flags and predicate. */
static int check_string (const struct key *k, const char *s, const char *file, int line,
                         const char *what, struct err *e)
{
    if ((k->flags & KF_NONEMPTY) && *s == '\0')
        return bad_value (e, file, line, k, "%smust not be empty", what);
    if ((k->flags & KF_ABS) && s[0] != '/')
        return bad_value (e, file, line, k, "%sexpected an absolute path, got `%s`", what, s);
    if ((k->flags & KF_ABS_OR_EMPTY) && *s && s[0] != '/')
        return bad_value (e, file, line, k, "%sexpected an absolute path or \"\", got `%s`",
                          what, s);
    if (k->check && !k->check (s))
        return bad_value (e, file, line, k, "%sexpected %s, got `%s`", what, k->expect, s);
    return 0;
}

/* Validates V for key K and stores it in CONF (replacing the default). */
static int apply_value (struct conf *conf, const struct key *k, const struct toml_value *v,
                        const char *file, int line, struct err *e)
{
    switch (k->type) {
    case KT_STRING:
        if (v->type != TOML_STRING)
            return bad_value (e, file, line, k, "expected a string, got %s",
                              toml_type_name (v->type));
        if (check_string (k, v->s, file, line, "", e) < 0)
            return -1;
        if (k->offset != NO_FIELD) {
            free (*FIELD (conf, k, char *));
            *FIELD (conf, k, char *) = xstrdup (v->s);
        }
        return 0;
    case KT_INT:
        if (v->type != TOML_INT)
            return bad_value (e, file, line, k, "expected an integer between %d and %d, got %s",
                              k->min, k->max, toml_type_name (v->type));
        if (v->i < k->min || v->i > k->max)
            return bad_value (e, file, line, k,
                              "expected an integer between %d and %d, got %" PRId64, k->min,
                              k->max, v->i);
        if (k->offset != NO_FIELD)
            *FIELD (conf, k, int) = (int)v->i;
        return 0;
    case KT_BOOL:
        if (v->type != TOML_BOOL)
            return bad_value (e, file, line, k, "expected true or false, got %s",
                              toml_type_name (v->type));
        if (k->offset != NO_FIELD)
            *FIELD (conf, k, bool) = v->b;
        return 0;
    case KT_LIST:
        if (v->type != TOML_ARRAY)
            return bad_value (e, file, line, k, "expected an array of strings, got %s",
                              toml_type_name (v->type));
        for (size_t i = 0; i < v->nitems; i++) {
            char what[48];
            if (v->items[i].type != TOML_STRING)
                return bad_value (e, file, line, k,
                                  "expected an array of strings, item %zu is %s", i + 1,
                                  toml_type_name (v->items[i].type));
            snprintf (what, sizeof what, "item %zu: ", i + 1);
            if (check_string (k, v->items[i].s, file, line, what, e) < 0)
                return -1;
        }
        if (k->offset != NO_FIELD) {
            char **list = xcalloc (v->nitems + 1, sizeof *list);
            for (size_t i = 0; i < v->nitems; i++)
                list[i] = xstrdup (v->items[i].s);
            list_free (*FIELD (conf, k, char **));
            *FIELD (conf, k, char **) = list;
        }
        return 0;
    }
    return err_set (e, EINVAL, "%s:%d: [%s] %s: bad key type", file, line, k->section, k->name);
}

static int check_section (const struct toml_section *s, const char *file, struct err *e)
{
    if (section_known (s->name))
        return 0;
    char known[200] = "";
    for (size_t i = 0; i < NSECTIONS; i++) {
        strcat (known, sections[i].name);
        if (i + 1 < NSECTIONS)
            strcat (known, ", ");
    }
    return err_set (e, EINVAL, "%s:%d: unknown section [%s] (known sections: %s)", file, s->line,
                    s->name, known);
}

/* Applies every entry of DOC to CONF, reporting the first problem in file order. */
static int apply_doc (struct conf *conf, const struct toml_doc *doc, const char *file,
                      struct err *e)
{
    size_t next_section = 0;
    for (size_t i = 0; i < doc->count; i++) {
        const struct toml_entry *ent = &doc->entries[i];
        char hint[120];
        while (next_section < doc->nsections && doc->sections[next_section].line < ent->line)
            if (check_section (&doc->sections[next_section++], file, e) < 0)
                return -1;
        if (*ent->section == '\0') {
            unknown_key_hint ("", ent->key, hint, sizeof hint);
            return err_set (e, EINVAL, "%s:%d: key `%s` must be inside a [section]%s", file,
                            ent->line, ent->key, hint);
        }
        if (!section_known (ent->section))
            continue; /* reported at its header above */
        const struct key *k = key_lookup (ent->section, ent->key);
        if (!k)
            return err_set (e, EINVAL, "%s:%d: [%s] %s: unknown key%s", file, ent->line,
                            ent->section, ent->key,
                            unknown_key_hint (ent->section, ent->key, hint, sizeof hint));
        if (apply_value (conf, k, &ent->value, file, ent->line, e) < 0)
            return -1;
    }
    for (; next_section < doc->nsections; next_section++)
        if (check_section (&doc->sections[next_section], file, e) < 0)
            return -1;
    return 0;
}

static void env_override (char **field, const char *var)
{
    const char *v = getenv (var);
    if (v && *v) {
        free (*field);
        *field = xstrdup (v);
    }
}

int conf_load (struct conf *conf, const char *path, struct err *e)
{
    struct conf tmp;
    struct toml_doc doc = { 0 };
    conf_init_defaults (&tmp);
    if (path) {
        if (toml_parse_file (path, &doc, e) < 0) {
            int line, off = 0;
            /* turn the parser's "line N: msg" into "PATH:N: msg" like every other error */
            if (e && sscanf (e->text, "line %d: %n", &line, &off) == 1 && off > 0) {
                char msg[sizeof e->text];
                snprintf (msg, sizeof msg, "%s", e->text + off);
                snprintf (e->text, sizeof e->text, "%.200s:%d: %.280s", path, line, msg);
            }
            goto error;
        }
        if (apply_doc (&tmp, &doc, path, e) < 0)
            goto error;
        tmp.path = xstrdup (path);
    }
    env_override (&tmp.api_token, "HAKURIVER_TOKEN");
    env_override (&tmp.join_token, "HAKURIVER_JOIN_TOKEN");
    toml_free (&doc);
    conf_free (conf);
    *conf = tmp;
    return 0;
error:
    toml_free (&doc);
    conf_free (&tmp);
    return -1;
}

/* Writes S as a TOML basic string. */
static void write_string (FILE *out, const char *s)
{
    fputc ('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs ("\\\"", out); break;
        case '\\': fputs ("\\\\", out); break;
        case '\n': fputs ("\\n", out); break;
        case '\t': fputs ("\\t", out); break;
        case '\r': fputs ("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf (out, "\\u%04x", *p);
            else
                fputc (*p, out);
        }
    }
    fputc ('"', out);
}

static void write_list (FILE *out, char *const *list)
{
    fputc ('[', out);
    for (size_t i = 0; list && list[i]; i++) {
        if (i)
            fputs (", ", out);
        write_string (out, list[i]);
    }
    fputc (']', out);
}

/* Writes "# " before every line of TEXT. */
static void write_comment (FILE *out, const char *text)
{
    while (*text) {
        const char *nl = strchr (text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen (text);
        fprintf (out, "# %.*s\n", (int)n, text);
        text += n + (nl ? 1 : 0);
    }
}

void conf_dump (const struct conf *conf, FILE *out)
{
    fprintf (out, "# effective configuration (%s%s)\n", conf->path ? "from " : "defaults only",
             conf->path ? conf->path : "");
    for (size_t s = 0; s < NSECTIONS; s++) {
        fprintf (out, "\n[%s]\n", sections[s].name);
        for (size_t i = 0; i < NKEYS; i++) {
            const struct key *k = &keys[i];
            if (strcmp (k->section, sections[s].name) != 0 || k->offset == NO_FIELD)
                continue;
            fprintf (out, "%s = ", k->name);
            switch (k->type) {
            case KT_STRING: {
                const char *v = *CFIELD (conf, k, char *);
                if (k->flags & KF_SECRET)
                    v = v && *v ? "<set>" : "";
                write_string (out, v ? v : "");
                break;
            }
            case KT_INT: fprintf (out, "%d", *CFIELD (conf, k, int)); break;
            case KT_BOOL: fputs (*CFIELD (conf, k, bool) ? "true" : "false", out); break;
            case KT_LIST: write_list (out, *CFIELD (conf, k, char **)); break;
            }
            fputc ('\n', out);
        }
    }
}

void conf_write_default (FILE *out, const char *api_token, const char *join_token)
{
    fputs ("# HakuRiver configuration, written by `hakuriver.init config`.\n"
           "# One file serves the host, the runners and the command-line tools.\n"
           "# Every key is listed with its default value; unknown keys are errors.\n"
           "# Looked up as: --config PATH, else $HAKURIVER_CONFIG, else ~/.hakuriver/config.toml.\n",
           out);
    for (size_t s = 0; s < NSECTIONS; s++) {
        fprintf (out, "\n[%s]\n", sections[s].name);
        write_comment (out, sections[s].help);
        for (size_t i = 0; i < NKEYS; i++) {
            const struct key *k = &keys[i];
            if (strcmp (k->section, sections[s].name) != 0)
                continue;
            fputc ('\n', out);
            write_comment (out, k->help);
            if (k->flags & KF_UNUSED)
                fputs ("# ", out);
            fprintf (out, "%s = ", k->name);
            switch (k->type) {
            case KT_STRING:
                if (k->offset == F (api_token))
                    write_string (out, api_token ? api_token : "");
                else if (k->offset == F (join_token))
                    write_string (out, join_token ? join_token : "");
                else
                    write_string (out, k->def_str);
                break;
            case KT_INT: fprintf (out, "%d", k->def_int); break;
            case KT_BOOL: fputs (k->def_int ? "true" : "false", out); break;
            case KT_LIST: fputs ("[]", out); break;
            }
            fputc ('\n', out);
        }
    }
}

int conf_parse_size (const char *value, int64_t *out, struct err *e)
{
    static const struct {
        const char *suffix;
        int64_t mult;
    } units[] = {
        { "", 1 },
        { "k", 1000LL }, { "kb", 1000LL }, { "ki", 1LL << 10 }, { "kib", 1LL << 10 },
        { "m", 1000000LL }, { "mb", 1000000LL }, { "mi", 1LL << 20 }, { "mib", 1LL << 20 },
        { "g", 1000000000LL }, { "gb", 1000000000LL }, { "gi", 1LL << 30 }, { "gib", 1LL << 30 },
    };
    const char *usage = "expected a number with an optional K, M or G suffix (or Ki, Mi, Gi)";
    if (!value)
        value = "";
    const char *p = value;
    int64_t n = 0;
    if (*p == '-')
        return err_set (e, EINVAL, "invalid size `%s`: must not be negative", value);
    if (!(*p >= '0' && *p <= '9'))
        return err_set (e, EINVAL, "invalid size `%s`: %s", value, usage);
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - (*p - '0')) / 10)
            return err_set (e, ERANGE, "invalid size `%s`: too large", value);
        n = n * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp (p, units[i].suffix) != 0)
            continue;
        if (n > INT64_MAX / units[i].mult)
            return err_set (e, ERANGE, "invalid size `%s`: too large", value);
        *out = n * units[i].mult;
        return 0;
    }
    return err_set (e, EINVAL, "invalid size `%s`: %s", value, usage);
}

/* Fills BUF with N random bytes: getrandom(), else /dev/urandom. */
static int random_bytes (unsigned char *buf, size_t n, struct err *e)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom (buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return 0;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set (e, errno, "open `/dev/urandom`: %s", strerror (errno));
    got = 0;
    while (got < n) {
        ssize_t r = read (fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int code = r < 0 ? errno : EIO;
            close (fd);
            return err_set (e, code, "read `/dev/urandom`: %s", strerror (code));
        }
        got += (size_t)r;
    }
    close (fd);
    return 0;
}

int conf_random_token (char *buf, struct err *e)
{
    unsigned char raw[32];
    static const char hex[] = "0123456789abcdef";
    if (random_bytes (raw, sizeof raw, e) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[64] = '\0';
    return 0;
}
