/* args.c - argument parsing shared by the user CLIs: global options, targets, sizes, env, ids */
#include "cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/proto.h"
#include "common/xalloc.h"

/* Upper bounds: far above any machine we schedule on, low enough that the host's int
 * fields cannot overflow. */
#define MAX_CORES    65536
#define MAX_RETRIES  100       /* the host's limit too (api_task.c) */
#define MAX_GPU_ID   65535
#define MAX_NUMA_ID  65535
#define MAX_LIMIT    10000
#define MAX_RUNNING  100000    /* --max-running: the host's limit too (api_task.c) */
#define MAX_JOBS     10000     /* hakurun --jobs: its bookkeeping scans the running slots */

static const char *const statuses[] = {
    ST_QUEUED,  ST_ASSIGNING, ST_PENDING, ST_RUNNING,    ST_PAUSED,
    ST_COMPLETED, ST_FAILED,  ST_KILLED,  ST_KILLED_OOM, ST_LOST,
};

static int usage_err (struct err *e, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int usage_err (struct err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (e->text, sizeof e->text, fmt, ap);
        va_end (ap);
        e->code = EINVAL;
        e->status = 0;
    }
    return -1;
}

static bool is_help (const char *a)
{
    return strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0;
}

/* Matches argv[*i] against NAME ("--cores") or its SHORT alias (may be NULL). The value comes
 * from "--cores=V" or the next word (whatever it looks like, so `--cores -1` reports -1).
 * Returns 1 when matched (*val set, *i on the value's word), 0 when not, -1 when the value is
 * missing. */
static int opt_value (int argc, char **argv, int *i, const char *name, const char *shrt,
                      const char **val, struct err *e)
{
    const char *a = argv[*i];
    size_t n = strlen (name);
    if (strncmp (a, name, n) == 0 && a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (strcmp (a, name) != 0 && !(shrt && strcmp (a, shrt) == 0))
        return 0;
    if (*i + 1 >= argc)
        return usage_err (e, "option %s needs a value", name);
    *val = argv[++*i];
    return 1;
}

int args_parse_global (int argc, char **argv, struct args_global *g, struct err *e)
{
    memset (g, 0, sizeof *g);
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if ((r = opt_value (argc, argv, &i, "--config", "-c", &v, e)) < 0)
            return -1;
        if (r) {
            if (!*v)
                return usage_err (e, "option --config needs a non-empty path");
            g->config = v;
        } else if (strcmp (a, "--json") == 0)
            g->json = true;
        else if (is_help (a))
            g->help = true;
        else if (a[0] == '-')
            return usage_err (e, "unknown option `%s`", a);
        else
            break;
    }
    g->sub = i;
    return 0;
}

int args_parse_simple (int argc, char **argv, int minpos, int maxpos, const char **pos,
                       int *npos, bool *json, bool *help, struct err *e)
{
    int n = 0;
    bool dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp (a, "--") == 0)
            dashdash = true;
        else if (!dashdash && strcmp (a, "--json") == 0)
            *json = true;
        else if (!dashdash && is_help (a))
            *help = true;
        else if (!dashdash && a[0] == '-' && a[1])
            return usage_err (e, "%s: unknown option `%s`", argv[0], a);
        else if (n < maxpos)
            pos[n++] = a;
        else if (!*help)
            return usage_err (e, "%s: unexpected argument `%s`", argv[0], a);
    }
    if (n < minpos && !*help)
        return usage_err (e, "%s: missing argument (expected %d, got %d)", argv[0], minpos, n);
    *npos = n;
    return 0;
}

/* Parses a decimal integer made only of digits (no sign, no spaces) up to MAX. */
static int digits (const char *s, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

int args_check_hostname (const char *what, const char *value, struct err *e)
{
    if (!*value)
        return usage_err (e, "invalid %s `%s`: hostname is empty", what, value);
    if (strlen (value) > 253)
        return usage_err (e, "invalid %s `%.40s...`: hostname longer than 253 characters", what,
                          value);
    for (const char *p = value; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return usage_err (e, "invalid %s `%s`: hostname may only contain letters, digits, "
                              "'.', '_' and '-'", what, value);
    }
    return 0;
}

void args_target_free (struct args_target *t)
{
    if (!t)
        return;
    FREE_NULL (t->name);
    FREE_NULL (t->gpus);
    t->ngpus = 0;
}

int args_parse_target (const char *value, struct args_target *out, struct err *e)
{
    char *spec = xstrdup (value);
    int *gpus = NULL;
    size_t ngpus = 0;
    char *gpu_list = strstr (spec, "::");
    if (gpu_list) {
        *gpu_list = '\0';
        gpu_list += 2;
        if (!*gpu_list) {
            usage_err (e, "invalid target `%s`: empty GPU list after `::`", value);
            goto error;
        }
        size_t cap = 1;
        for (const char *p = gpu_list; *p; p++)
            cap += *p == ',';
        gpus = xcalloc (cap, sizeof *gpus);
        for (char *save = NULL, *tok = strtok_r (gpu_list, ",", &save); tok;
             tok = strtok_r (NULL, ",", &save)) {
            int64_t id;
            if (digits (tok, MAX_GPU_ID, &id) < 0) {
                usage_err (e, "invalid target `%s`: GPU id `%s` must be a non-negative integer",
                           value, tok);
                goto error;
            }
            gpus[ngpus++] = (int)id;
        }
        /* strtok_r skips empty fields, so "0,,1" and "0," would pass silently */
        if (ngpus != cap) {
            usage_err (e, "invalid target `%s`: empty GPU id in the list", value);
            goto error;
        }
    }
    char *colon = strchr (spec, ':');
    if (colon) {
        int64_t numa;
        if (digits (colon + 1, MAX_NUMA_ID, &numa) < 0) {
            usage_err (e, "invalid target `%s`: NUMA id must be a non-negative integer", value);
            goto error;
        }
        *colon = '\0';
    }
    if (args_check_hostname ("target", spec, NULL) < 0) {
        if (!*spec)
            usage_err (e, "invalid target `%s`: hostname is empty", value);
        else
            usage_err (e, "invalid target `%s`: hostname may only contain letters, digits, "
                       "'.', '_' and '-'", value);
        goto error;
    }
    if (colon)
        *colon = ':';
    out->name = spec;
    out->gpus = gpus;
    out->ngpus = ngpus;
    return 0;
error:
    free (gpus);
    free (spec);
    return -1;
}

int args_parse_env (const char *value, char **key, char **val, struct err *e)
{
    const char *eq = strchr (value, '=');
    if (!eq)
        return usage_err (e, "invalid --env `%s`: expected KEY=VALUE", value);
    if (eq == value)
        return usage_err (e, "invalid --env `%s`: empty variable name", value);
    for (const char *p = value; p < eq; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p > value && c >= '0' && c <= '9'))
            return usage_err (e, "invalid --env `%s`: variable name must match "
                              "[A-Za-z_][A-Za-z0-9_]*", value);
    }
    *key = xstrndup (value, (size_t)(eq - value));
    *val = xstrdup (eq + 1);
    return 0;
}

int args_parse_uint (const char *flag, const char *value, int64_t max, int64_t *out,
                     struct err *e)
{
    int64_t v;
    if (digits (value, max, &v) < 0)
        return usage_err (e, "invalid %s `%s`: expected an integer between 0 and %" PRId64, flag,
                          value, max);
    *out = v;
    return 0;
}

/* As args_parse_uint, for a count that must be at least 1. */
static int positive (const char *flag, const char *value, int64_t max, int64_t *out,
                     struct err *e)
{
    int64_t v;
    if (digits (value, max, &v) < 0 || v < 1)
        return usage_err (e, "invalid %s `%s`: expected an integer between 1 and %" PRId64, flag,
                          value, max);
    *out = v;
    return 0;
}

int args_parse_task_id (const char *value, uint64_t *out, struct err *e)
{
    int64_t v;
    if (digits (value, INT64_MAX, &v) < 0)
        return usage_err (e, "invalid task ID `%s`: expected a decimal number", value);
    *out = (uint64_t)v;
    return 0;
}

int args_parse_seconds (const char *flag, const char *value, double *out, struct err *e)
{
    char *end;
    errno = 0;
    double v = strtod (value, &end);
    /* strtod also takes "inf", "nan", hex and leading spaces: accept plain decimals only */
    bool plain = *value >= '0' && *value <= '9';
    for (const char *p = value; plain && *p; p++)
        plain = (*p >= '0' && *p <= '9') || *p == '.';
    if (!plain || end == value || *end || errno || !isfinite (v) || v < 0.01 || v > 3600)
        return usage_err (e, "invalid %s `%s`: expected seconds between 0.01 and 3600", flag,
                          value);
    *out = v;
    return 0;
}

int args_parse_log (int argc, char **argv, uint64_t *id, int64_t *tail, bool *json, bool *help,
                    struct err *e)
{
    const char *pos = NULL;
    *tail = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp (a, "--json") == 0)
            *json = true;
        else if (is_help (a))
            *help = true;
        else if ((r = opt_value (argc, argv, &i, "--tail", NULL, &v, e))) {
            if (r < 0 || args_parse_uint ("--tail", v, INT64_MAX, tail, e) < 0)
                return -1;
        } else if (a[0] == '-' && a[1])
            return usage_err (e, "%s: unknown option `%s`", argv[0], a);
        else if (!pos)
            pos = a;
        else
            return usage_err (e, "%s: unexpected argument `%s`", argv[0], a);
    }
    if (*help)
        return 0;
    if (!pos)
        return usage_err (e, "%s: missing TASK_ID", argv[0]);
    return args_parse_task_id (pos, id, e);
}

/* ---- submit ---- */

void args_submit_free (struct args_submit *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->ntargets; i++)
        args_target_free (&o->targets[i]);
    FREE_NULL (o->targets);
    for (size_t i = 0; i < o->nenv; i++) {
        free (o->env_keys[i]);
        free (o->env_vals[i]);
    }
    FREE_NULL (o->env_keys);
    FREE_NULL (o->env_vals);
    FREE_NULL (o->container);
    FREE_NULL (o->image);
    for (size_t i = 0; i < o->nmounts; i++)
        free (o->mounts[i]);
    FREE_NULL (o->mounts);
    FREE_NULL (o->command);
    FREE_NULL (o->keys);
    FREE_NULL (o->key_files);
    o->nkeys = o->nkey_files = 0;
    o->ntargets = o->nenv = o->nmounts = 0;
    o->ncommand = 0;
}

static void add_env (struct args_submit *o, char *key, char *val)
{
    for (size_t i = 0; i < o->nenv; i++)
        if (strcmp (o->env_keys[i], key) == 0) {
            free (key);
            free (o->env_vals[i]);
            o->env_vals[i] = val;
            return;
        }
    o->env_keys = xreallocarray (o->env_keys, o->nenv + 1, sizeof *o->env_keys);
    o->env_vals = xreallocarray (o->env_vals, o->nenv + 1, sizeof *o->env_vals);
    o->env_keys[o->nenv] = key;
    o->env_vals[o->nenv] = val;
    o->nenv++;
}

/* "HOST:CONT" or "HOST:CONT:OPTS": both paths non-empty. */
static int check_mount (const char *value, struct err *e)
{
    const char *c = strchr (value, ':');
    if (!c || c == value || c[1] == '\0' || c[1] == ':')
        return usage_err (e, "invalid --mount `%s`: expected HOST_PATH:CONTAINER_PATH[:ro]",
                          value);
    return 0;
}

static int parse_submit (int argc, char **argv, struct args_submit *o, bool vps, struct err *e);

int args_parse_submit (int argc, char **argv, struct args_submit *o, struct err *e)
{
    return parse_submit (argc, argv, o, false, e);
}

int args_parse_vps_submit (int argc, char **argv, struct args_submit *o, struct err *e)
{
    if (parse_submit (argc, argv, o, true, e) < 0)
        return -1;
    if (o->help)
        return 0;
    if (o->ntargets > 1)
        return usage_err (e, "vps submit: give at most one --target (got %zu)", o->ntargets);
    if (o->sweep || o->max_running)
        return usage_err (e, "vps submit: --sweep and --max-running are for command tasks");
    if (o->nenv)
        return usage_err (e, "vps submit: --env is for command tasks (a VPS is a login "
                             "session; set variables in its shell profile)");
    if (o->nkeys && o->nkey_files)
        return usage_err (e, "vps submit: --public-key-string and --public-key-file are "
                             "mutually exclusive");
    return 0;
}

static int parse_submit (int argc, char **argv, struct args_submit *o, bool vps, struct err *e)
{
    memset (o, 0, sizeof *o);
    o->vps = vps;
    o->cores = vps ? 0 : 1;
    o->memory = -1;
    o->retries = -1;
    o->poll_interval = 1.0;
    int i, dashdash = 0;             /* index of a "--" argument, 0 when none */
    for (i = 1; i < argc && !dashdash; i++)
        if (strcmp (argv[i], "--") == 0)
            dashdash = i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = 0;
        if (strcmp (a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break; /* the command starts here */
        if (strcmp (a, "--json") == 0)
            o->json = true;
        else if (is_help (a))
            o->help = true;
        else if (strcmp (a, "--privileged") == 0)
            o->privileged = true;
        else if (strcmp (a, "--wait") == 0)
            o->wait = true;
        else if (strcmp (a, "--sweep") == 0)
            o->sweep = true;
        else if ((r = opt_value (argc, argv, &i, "--max-running", NULL, &v, e))) {
            if (r < 0 || positive ("--max-running", v, MAX_RUNNING, &o->max_running, e) < 0)
                return -1;
        } else if ((r = opt_value (argc, argv, &i, "--target", NULL, &v, e))) {
            if (r < 0)
                return -1;
            for (;;) {
                struct args_target t;
                if (args_parse_target (v, &t, e) < 0)
                    return -1;
                o->targets = xreallocarray (o->targets, o->ntargets + 1, sizeof *o->targets);
                o->targets[o->ntargets++] = t;
                /* 0.3 compatibility: `--target a b -- CMD` (nargs="+"). Only when a `--`
                 * follows, so that `--target a CMD` still starts the command at CMD. */
                if (i + 1 < dashdash && argv[i + 1][0] != '-')
                    v = argv[++i];
                else
                    break;
            }
        } else if ((r = opt_value (argc, argv, &i, "--cores", NULL, &v, e))) {
            if (r < 0 || args_parse_uint ("--cores", v, MAX_CORES, &o->cores, e) < 0)
                return -1;
        } else if ((r = opt_value (argc, argv, &i, "--memory", NULL, &v, e))) {
            struct err ce = { 0 };
            if (r < 0)
                return -1;
            if (conf_parse_size (v, &o->memory, &ce) < 0)
                return usage_err (e, "--memory: %s", ce.text);
            if (o->memory < 0)
                return usage_err (e, "invalid --memory `%s`: must not be negative", v);
        } else if ((r = opt_value (argc, argv, &i, "--env", NULL, &v, e))) {
            char *key, *val;
            if (r < 0 || args_parse_env (v, &key, &val, e) < 0)
                return -1;
            add_env (o, key, val);
        } else if ((r = opt_value (argc, argv, &i, "--container", NULL, &v, e))) {
            if (r < 0)
                return -1;
            if (!*v)
                return usage_err (e, "invalid --container ``: name is empty");
            free (o->container);
            o->container = xstrdup (v);
        } else if ((r = opt_value (argc, argv, &i, "--image", NULL, &v, e))) {
            if (r < 0)
                return -1;
            if (!*v)
                return usage_err (e, "invalid --image ``: image reference is empty");
            free (o->image);
            o->image = xstrdup (v);
        } else if ((r = opt_value (argc, argv, &i, "--mount", NULL, &v, e))) {
            if (r < 0 || check_mount (v, e) < 0)
                return -1;
            o->mounts = xreallocarray (o->mounts, o->nmounts + 2, sizeof *o->mounts);
            o->mounts[o->nmounts++] = xstrdup (v);
            o->mounts[o->nmounts] = NULL;
        } else if ((r = opt_value (argc, argv, &i, "--retries", NULL, &v, e))) {
            if (r < 0 || args_parse_uint ("--retries", v, MAX_RETRIES, &o->retries, e) < 0)
                return -1;
        } else if ((r = opt_value (argc, argv, &i, "--poll-interval", NULL, &v, e))) {
            if (r < 0 || args_parse_seconds ("--poll-interval", v, &o->poll_interval, e) < 0)
                return -1;
        } else if (vps && strcmp (a, "--no-wait") == 0) {
            o->no_wait = true;
        } else if (vps && (r = opt_value (argc, argv, &i, "--public-key-string", NULL, &v, e))) {
            if (r < 0)
                return -1;
            o->keys = xreallocarray (o->keys, o->nkeys + 1, sizeof *o->keys);
            o->keys[o->nkeys++] = v;
        } else if (vps && (r = opt_value (argc, argv, &i, "--public-key-file", NULL, &v, e))) {
            if (r < 0)
                return -1;
            o->key_files = xreallocarray (o->key_files, o->nkey_files + 1, sizeof *o->key_files);
            o->key_files[o->nkey_files++] = v;
        } else
            return usage_err (e, "submit: unknown option `%s`", a);
    }
    if (vps) {
        if (i < argc)
            return usage_err (e, "vps submit: unexpected argument `%s` (a VPS runs no "
                                 "command; give keys with --public-key-string/-file)", argv[i]);
        return 0;
    }
    o->ncommand = argc - i;
    if (o->ncommand <= 0) {
        o->ncommand = 0;
        if (o->help)
            return 0;
        return usage_err (e, "submit: missing COMMAND");
    }
    if (!*argv[i])
        return usage_err (e, "submit: COMMAND is empty");
    o->command = xcalloc ((size_t)o->ncommand + 1, sizeof *o->command);
    for (int k = 0; k < o->ncommand; k++)
        o->command[k] = argv[i + k];
    return 0;
}

json_t *args_submit_body (const struct args_submit *o)
{
    json_t *body = json_object ();
    json_t *args = json_array ();
    json_t *env = json_object ();
    bool any_gpus = false;
    for (int i = 1; i < o->ncommand; i++)
        json_array_append_new (args, json_string (o->command[i]));
    for (size_t i = 0; i < o->nenv; i++)
        json_object_set_new (env, o->env_keys[i], json_string (o->env_vals[i]));
    json_object_set_new (body, "task_type", json_string (o->vps ? "vps" : "command"));
    json_object_set_new (body, "command", json_string (o->ncommand ? o->command[0] : ""));
    json_object_set_new (body, "arguments", args);
    json_object_set_new (body, "env_vars", env);
    json_object_set_new (body, "required_cores", json_integer (o->cores));
    json_object_set_new (body, "required_memory_bytes",
                         o->memory >= 0 ? json_integer (o->memory) : json_null ());
    if (o->ntargets) {
        json_t *targets = json_array ();
        for (size_t i = 0; i < o->ntargets; i++) {
            json_array_append_new (targets, json_string (o->targets[i].name));
            any_gpus |= o->targets[i].ngpus > 0;
        }
        json_object_set_new (body, "targets", targets);
    } else
        json_object_set_new (body, "targets", json_null ());
    if (any_gpus) {
        json_t *gpus = json_array ();
        for (size_t i = 0; i < o->ntargets; i++) {
            json_t *list = json_array ();
            for (size_t k = 0; k < o->targets[i].ngpus; k++)
                json_array_append_new (list, json_integer (o->targets[i].gpus[k]));
            json_array_append_new (gpus, list);
        }
        json_object_set_new (body, "required_gpus", gpus);
    } else
        json_object_set_new (body, "required_gpus", json_null ());
    json_object_set_new (body, "container_name",
                         o->container ? json_string (o->container) : json_null ());
    json_object_set_new (body, "privileged", o->privileged ? json_true () : json_null ());
    if (o->image)
        json_object_set_new (body, "image", json_string (o->image));
    if (o->mounts) {
        json_t *m = json_array ();
        for (size_t i = 0; i < o->nmounts; i++)
            json_array_append_new (m, json_string (o->mounts[i]));
        json_object_set_new (body, "additional_mounts", m);
    } else
        json_object_set_new (body, "additional_mounts", json_null ());
    if (o->retries >= 0)
        json_object_set_new (body, "retries", json_integer (o->retries));
    if (o->sweep)
        json_object_set_new (body, "sweep", json_true ());
    if (o->max_running > 0)
        json_object_set_new (body, "max_running", json_integer (o->max_running));
    return body;
}

/* ---- kill ---- */

int args_parse_kill (int argc, char **argv, uint64_t *id, uint64_t *batch, bool *json,
                     bool *help, struct err *e)
{
    const char *pos = NULL, *bv = NULL;
    *id = *batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp (a, "--json") == 0)
            *json = true;
        else if (is_help (a))
            *help = true;
        else if ((r = opt_value (argc, argv, &i, "--batch", NULL, &v, e))) {
            if (r < 0)
                return -1;
            bv = v;
        } else if (a[0] == '-' && a[1])
            return usage_err (e, "kill: unknown option `%s`", a);
        else if (!pos)
            pos = a;
        else
            return usage_err (e, "kill: unexpected argument `%s`", a);
    }
    if (*help)
        return 0;
    if (pos && bv)
        return usage_err (e, "kill: give either TASK_ID or --batch BATCH_ID, not both");
    if (bv) {
        int64_t b;
        if (digits (bv, INT64_MAX, &b) < 0 || b == 0)
            return usage_err (e, "invalid --batch `%s`: expected a decimal batch ID", bv);
        *batch = (uint64_t)b;
        return 0;
    }
    if (!pos)
        return usage_err (e, "kill: missing TASK_ID (or --batch BATCH_ID)");
    return args_parse_task_id (pos, id, e);
}

/* ---- hakurun ---- */

int args_parse_hakurun (int argc, char **argv, struct args_hakurun *o, struct err *e)
{
    memset (o, 0, sizeof *o);
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp (a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break; /* APP */
        if (strcmp (a, "--parallel") == 0)
            o->parallel = true;
        else if (strcmp (a, "--dry-run") == 0 || strcmp (a, "-n") == 0)
            o->dry_run = true;
        else if (strcmp (a, "--quiet") == 0 || strcmp (a, "-q") == 0)
            o->quiet = true;
        else if (strcmp (a, "--verbose") == 0 || strcmp (a, "-v") == 0)
            o->verbose = true;
        else if (is_help (a))
            o->help = true;
        else if ((r = opt_value (argc, argv, &i, "--jobs", "-j", &v, e))) {
            if (r < 0 || positive ("--jobs", v, MAX_JOBS, &o->jobs, e) < 0)
                return -1;
            o->parallel = true;
        } else
            return usage_err (e, "unknown option `%s` (options go before APP)", a);
    }
    o->app = i;
    if (i >= argc) {
        o->app = argc;
        if (o->help)
            return 0;
        return usage_err (e, "missing APP: the program (or Python module) to run");
    }
    if (!*argv[i])
        return usage_err (e, "APP is empty");
    return 0;
}

/* ---- list ---- */

static int check_statuses (const char *value, struct err *e)
{
    const char *p = value;
    if (!*value)
        return usage_err (e, "invalid --status ``: empty");
    for (;;) {
        size_t n = strcspn (p, ",");
        bool known = false;
        for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++)
            known |= strlen (statuses[k]) == n && strncmp (statuses[k], p, n) == 0;
        if (!known)
            return usage_err (e, "invalid --status `%s`: unknown status `%.*s` (known: queued, "
                              "assigning, pending, running, paused, completed, failed, killed, "
                              "killed_oom, lost)", value, (int)n, p);
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

int args_parse_list (int argc, char **argv, struct args_list *o, struct err *e)
{
    memset (o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp (a, "--json") == 0)
            o->json = true;
        else if (is_help (a))
            o->help = true;
        else if (strcmp (a, "--all") == 0)
            o->all = true;
        else if ((r = opt_value (argc, argv, &i, "--status", NULL, &v, e))) {
            if (r < 0 || check_statuses (v, e) < 0)
                return -1;
            o->status = v;
        } else if ((r = opt_value (argc, argv, &i, "--node", NULL, &v, e))) {
            if (r < 0 || args_check_hostname ("--node", v, e) < 0)
                return -1;
            o->node = v;
        } else if ((r = opt_value (argc, argv, &i, "--batch", NULL, &v, e))) {
            int64_t b;
            if (r < 0)
                return -1;
            if (digits (v, INT64_MAX, &b) < 0)
                return usage_err (e, "invalid --batch `%s`: expected a decimal batch ID", v);
            o->batch = (uint64_t)b;
        } else if ((r = opt_value (argc, argv, &i, "--limit", NULL, &v, e))) {
            int64_t l;
            if (r < 0 || args_parse_uint ("--limit", v, MAX_LIMIT, &l, e) < 0)
                return -1;
            if (l < 1)
                return usage_err (e, "invalid --limit `%s`: expected an integer between 1 and %d",
                                  v, MAX_LIMIT);
            o->limit = (int)l;
        } else if (a[0] == '-')
            return usage_err (e, "list: unknown option `%s`", a);
        else
            return usage_err (e, "list: unexpected argument `%s`", a);
    }
    return 0;
}

char *args_list_path (const struct args_list *o, uint64_t before)
{
    /* every value was validated to URL-safe characters by args_parse_list */
    char *path = xstrdup (PATH_TASKS);
    char sep = '?';
    char *next;
#define ADD(...)                                                                    \
    do {                                                                            \
        char *part_ = xasprintf (__VA_ARGS__);                                     \
        next = xasprintf ("%s%c%s", path, sep, part_);                              \
        free (part_);                                                               \
        free (path);                                                                \
        path = next;                                                                \
        sep = '&';                                                                  \
    } while (0)
    if (o->status)
        ADD ("status=%s", o->status);
    if (o->node)
        ADD ("node=%s", o->node);
    if (o->batch)
        ADD ("batch_id=%" PRIu64, o->batch);
    if (o->limit)
        ADD ("limit=%d", o->limit);
    if (before)
        ADD ("before=%" PRIu64, before);
#undef ADD
    return path;
}
