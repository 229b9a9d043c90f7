/* api_task.c - user endpoints: submit, status, tasks, kill, pause/resume, logs, nodes, health */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/span.h"
#include "common/sshkeys.h"
#include "common/xalloc.h"
#include "common/tarballs.h"
#include "host/api.h"

#define MAX_TARGETS 10000
#define MAX_RUNNING 100000   /* the CLI's --max-running limit too (cli/args.c) */

static const struct field_spec submit_fields[] = {
    { "task_type", F_STR | F_NULL },
    { "command", F_STR },
    { "arguments", F_ARR | F_NULL },
    { "env_vars", F_OBJ | F_ARR | F_NULL },
    { "required_cores", F_INT | F_NULL },
    { "required_memory_bytes", F_INT | F_NULL },
    { "required_gpus", F_ARR | F_NULL },
    { "targets", F_ARR | F_NULL },
    { "container_name", F_STR | F_NULL },
    { "privileged", F_BOOL | F_NULL },
    { "additional_mounts", F_ARR | F_NULL },
    { "retries", F_INT | F_NULL },
    { "image", F_STR | F_NULL },
    { "sweep", F_BOOL | F_NULL },
    { "max_running", F_INT | F_NULL },
    { NULL, 0 },
};

static bool valid_hostname (const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

static bool valid_name (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > 128 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* Splits "host[:numa]" into HOST and *numa (-1 when absent). Returns -1 on bad syntax. */
static int parse_target (const char *t, char *host, size_t hn, int *numa)
{
    const char *colon = strchr (t, ':');
    size_t len = colon ? (size_t)(colon - t) : strlen (t);
    if (!valid_hostname (t, len) || len >= hn)
        return -1;
    memcpy (host, t, len);
    host[len] = '\0';
    *numa = -1;
    if (colon) {
        const char *p = colon + 1;
        if (!*p || strlen (p) > 6)
            return -1;
        for (const char *q = p; *q; q++)
            if (!isdigit ((unsigned char)*q))
                return -1;
        *numa = atoi (p);
    }
    return 0;
}

static void fail_target (json_t *failed, const char *target, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void fail_target (json_t *failed, const char *target, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (reason, sizeof reason, fmt, ap);
    va_end (ap);
    json_array_append_new (failed, json_pack ("{s:s,s:s}", "target", target, "reason", reason));
}

static char *gpu_list_text (json_t *gpus)
{
    char *s = json_dumps (gpus, JSON_COMPACT);
    return s ? s : xstrdup ("[]");
}

/* Checks one target against the node registry. Returns the node, or NULL after recording
 * the reason in FAILED. */
static struct node *check_target (struct host *h, const char *target, const char *host,
                                  int numa, json_t *gpus, int cores, int64_t mem,
                                  json_t *failed)
{
    struct node *n = node_find (h, host);
    if (!n) {
        fail_target (failed, target, "Node not registered");
        return NULL;
    }
    if (!n->online) {
        fail_target (failed, target, "Node status is offline");
        return NULL;
    }
    if (numa >= 0) {
        if (!n->numa || json_object_size (n->numa) == 0) {
            fail_target (failed, target, "Node has no NUMA topology");
            return NULL;
        }
        if (!node_has_numa (n, numa)) {
            char valid[256] = "";
            const char *k;
            json_t *v;
            json_object_foreach (n->numa, k, v)
            {
                if (valid[0])
                    strncat (valid, ", ", sizeof valid - strlen (valid) - 1);
                strncat (valid, k, sizeof valid - strlen (valid) - 1);
            }
            fail_target (failed, target, "Invalid NUMA ID for node (Valid: [%s])", valid);
            return NULL;
        }
        int nc = node_numa_core_count (n, numa);
        if (nc > 0 && cores > nc) {
            fail_target (failed, target,
                         "Requested %d cores but NUMA node %d of %s has only %d", cores, numa,
                         host, nc);
            return NULL;
        }
    }
    size_t ng = json_array_size (gpus);
    if (ng > 0) {
        int have = node_gpu_count (n);
        size_t i;
        json_t *g;
        json_array_foreach (gpus, i, g)
        {
            json_int_t id = json_integer_value (g);
            if (!json_is_integer (g) || id < 0 || id >= have) {
                char *txt = gpu_list_text (gpus);
                fail_target (failed, target, "Invalid GPU IDs: %s (node %s has %d GPUs)", txt,
                             host, have);
                free (txt);
                return NULL;
            }
        }
    }
    if (cores > n->total_cores) {
        fail_target (failed, target, "Requested %d cores but node %s has only %d", cores, host,
                     n->total_cores);
        return NULL;
    }
    if (mem > 0 && n->memory_total > 0 && mem > n->memory_total) {
        fail_target (failed, target,
                     "Requested %" PRId64 " bytes of memory but node %s has only %" PRId64, mem,
                     host, n->memory_total);
        return NULL;
    }
    return n;
}

/* "HOST:CONTAINER[:ro|rw]" with absolute paths, no "..": what runners pass to Docker. */
static bool valid_mount (const char *m)
{
    const char *c = strchr (m, ':');
    if (!c || m[0] != '/' || c[1] != '/' || strlen (m) > 4000 || strstr (m, "/..")
        || strchr (m, ','))
        return false;
    const char *o = strchr (c + 1, ':');
    return !o || strcmp (o + 1, "ro") == 0 || strcmp (o + 1, "rw") == 0;
}

/* An image reference: [registry[:port]/]name[:tag][@digest], no spaces or control bytes. */
static bool valid_image_ref (const char *r)
{
    size_t len = strlen (r);
    if (len == 0 || len > 255 || !isalnum ((unsigned char)r[0]))
        return false;
    for (const char *p = r; *p; p++)
        if (!isalnum ((unsigned char)*p) && !strchr ("._-/:@", *p))
            return false;
    return true;
}

/* Whether environment NAME has a tarball; otherwise replies 422 naming those that exist. */
static bool environment_exists (struct host *h, struct http_req *req, const char *name)
{
    char *dir = xasprintf ("%s/%s", h->conf->shared_dir, h->conf->container_dir);
    struct tarball *v = NULL;
    size_t n = 0;
    struct err e = { 0 };
    bool found = false;
    if (tarballs_list (dir, &v, &n, &e) < 0) {
        http_reply_error (req, 500, "Cannot list container environments: %s", e.text);
        goto out;
    }
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp (v[i].name, name) == 0;
    if (!found) {
        char list[1024] = "";
        for (size_t i = 0; i < n; i++) {
            bool dup = false;
            for (size_t j = 0; j < i && !dup; j++)
                dup = strcmp (v[i].name, v[j].name) == 0;
            if (dup)
                continue;
            size_t l = strlen (list);
            snprintf (list + l, sizeof list - l, "%s%s", l ? ", " : "", v[i].name);
        }
        char esc[160];
        http_reply_error (req, 422, "Container environment '%s' does not exist (no tarball in "
                          "%s). Existing environments: %s. Create one with hakuriver.docker "
                          "create-container and create-tar, run an image directly with "
                          "--image, or run natively with --container NULL",
                          log_escape (name, esc, sizeof esc), dir, list[0] ? list : "none");
    }
out:
    free (v);
    free (dir);
    return found;
}

static struct task *new_task (struct host *h, json_t *body, const char *command, int cores,
                              int64_t mem, int retries, const char *container)
{
    struct task *t = task_create ();
    t->id = snowflake_next (&h->ids, now_ms ());
    t->command = xstrdup (command);
    json_t *args = json_object_get (body, "arguments");
    json_t *env = json_object_get (body, "env_vars");
    free (t->arguments_json);
    t->arguments_json = json_is_array (args) ? json_dumps (args, JSON_COMPACT) : xstrdup ("[]");
    free (t->env_json);
    t->env_json = json_is_object (env) ? json_dumps (env, JSON_COMPACT) : xstrdup ("{}");
    t->cores = cores;
    t->memory_bytes = mem;
    t->retries_left = retries;
    t->container = container ? xstrdup (container) : NULL;
    json_t *image = json_object_get (body, "image");
    json_t *mounts = json_object_get (body, "additional_mounts");
    bool priv = json_is_true (json_object_get (body, "privileged"));
    if (json_is_string (image) || json_array_size (mounts) > 0 || priv) {
        json_t *d = json_object ();
        if (json_is_string (image))
            json_object_set (d, "image", image);
        if (json_array_size (mounts) > 0)
            json_object_set (d, "mounts", mounts);
        if (priv)
            json_object_set_new (d, "privileged", json_true ());
        t->docker_json = json_dumps (d, JSON_COMPACT);
        json_decref (d);
    }
    t->stdout_path = xasprintf ("%s/%s/%" PRIu64 ".out", h->conf->shared_dir, DIR_TASK_OUTPUTS,
                                t->id);
    t->stderr_path = xasprintf ("%s/%s/%" PRIu64 ".err", h->conf->shared_dir, DIR_TASK_ERRORS,
                                t->id);
    t->submitted_at = now_ms ();
    t->status = TASK_QUEUED;
    return t;
}

/* Expands a sweep's ARGS (strings, checked) into SET. Replies 422 naming the argument and
 * returns -1 when the spans are malformed, absent, empty or give too many tasks. */
static int sweep_parse (struct http_req *req, json_t *args, size_t ntargets,
                        struct span_set *set)
{
    size_t nargs = json_array_size (args);
    const char **argv = xcalloc (nargs + 1, sizeof *argv);
    struct err e = { 0 };
    for (size_t i = 0; i < nargs; i++)
        argv[i] = json_string_value (json_array_get (args, i));
    int rc = span_set_parse (set, nargs, argv, SPAN_MAX_HOST, NULL, &e);
    if (rc < 0) {
        http_reply_error (req, 422, "Invalid sweep: %s", e.text);
        goto out;
    }
    rc = -1;
    if (set->nspans == 0) {
        http_reply_error (req, 422, "Invalid sweep: none of the %zu arguments is a span "
                                    "(span:{START..END} or span:[ITEM,...]); a sweep needs at "
                                    "least one", nargs);
        goto out;
    }
    if (set->count == 0) {
        size_t k = 0;
        while (k < set->nargs && set->args[k].count > 0)
            k++;
        char esc[200];
        http_reply_error (req, 422, "Invalid sweep: argument %zu `%s` is empty, so there is no "
                                    "combination to run", k + 1,
                          log_escape (k < nargs ? argv[k] : "", esc, sizeof esc));
        goto out;
    }
    if (ntargets > 1 && set->count * ntargets > SPAN_MAX_HOST) {
        http_reply_error (req, 422, "Invalid sweep: %" PRIu64 " combinations on %zu targets "
                                    "would create %" PRIu64 " tasks, more than the limit of %u",
                          set->count, ntargets, set->count * ntargets, SPAN_MAX_HOST);
        goto out;
    }
    rc = 0;
out:
    free (argv);
    return rc;
}

/* Gives T the arguments of combination INDEX of SET. */
static void sweep_args (struct task *t, const struct span_set *set, uint64_t index)
{
    char **v = span_set_argv (set, index);
    json_t *a = json_array ();
    for (char **p = v; *p; p++)
        json_array_append_new (a, json_string (*p));
    free (t->arguments_json);
    t->arguments_json = json_dumps (a, JSON_COMPACT);
    json_decref (a);
    span_argv_free (v);
}

/* The VPS-only rules of a submit (0.3: one target or auto placement, a container, the public
 * key in `command`). Replies 422 and returns -1 when one is broken. */
static int vps_check (struct host *h, struct http_req *req, json_t *body, const char *keys)
{
    struct err e = { 0 };
    if (sshkey_check_list (keys, &e) < 0) {
        http_reply_error (req, 422, "Invalid SSH public key for the VPS: %s", e.text);
        return -1;
    }
    if (json_array_size (json_object_get (body, "arguments")) > 0) {
        http_reply_error (req, 422, "A VPS task takes no 'arguments': 'command' holds its SSH "
                                    "public key(s)");
        return -1;
    }
    if (json_array_size (json_object_get (body, "targets")) > 1) {
        http_reply_error (req, 422, "A VPS task takes at most one target (got %zu)",
                          json_array_size (json_object_get (body, "targets")));
        return -1;
    }
    if (json_is_true (json_object_get (body, "sweep"))
        || json_is_integer (json_object_get (body, "max_running"))) {
        http_reply_error (req, 422, "'sweep' and 'max_running' apply to command tasks only");
        return -1;
    }
    const char *container = json_string_value (json_object_get (body, "container_name"));
    if (!container)
        container = h->conf->default_container_name;
    if (strcmp (container, CONTAINER_NULL) == 0
        && !json_is_string (json_object_get (body, "image"))) {
        http_reply_error (req, 422, "A VPS task runs in a Docker container: container_name "
                                    "NULL (native execution) is not possible");
        return -1;
    }
    return 0;
}

void api_submit (struct host *h, struct http_req *req)
{
    json_t *body = api_body_object (req);
    json_t *failed = NULL, *ids = NULL;
    struct span_set set = { 0 };
    if (!body)
        return;
    if (api_check_fields (req, body, submit_fields, true) < 0)
        goto out;
    const char *type = json_string_value (json_object_get (body, "task_type"));
    if (type && strcmp (type, "command") != 0 && strcmp (type, "vps") != 0) {
        http_reply_error (req, 400, "Invalid task type. Only 'command' and 'vps' are supported.");
        goto out;
    }
    bool vps = type && strcmp (type, "vps") == 0;
    const char *command = json_string_value (json_object_get (body, "command"));
    if (!command || !*command) {
        http_reply_error (req, 422, vps ? "Field 'command' must hold the VPS's SSH public "
                                          "key(s), one per line"
                                        : "Field 'command' is required and must be a "
                                          "non-empty string");
        goto out;
    }
    json_t *args = json_object_get (body, "arguments"), *v;
    size_t i;
    if (vps && vps_check (h, req, body, command) < 0)
        goto out;
    json_array_foreach (args, i, v) if (!json_is_string (v))
    {
        http_reply_error (req, 422, "Field 'arguments' must be an array of strings (item %zu "
                                    "is not a string)", i);
        goto out;
    }
    json_t *env = json_object_get (body, "env_vars");
    if (json_is_array (env) && json_array_size (env) > 0) {
        http_reply_error (req, 422, "Field 'env_vars' must be an object of strings");
        goto out;
    }
    if (json_is_object (env)) {
        const char *k;
        json_object_foreach (env, k, v)
        {
            if (!json_is_string (v)) {
                http_reply_error (req, 422, "env_vars['%s'] must be a string", k);
                goto out;
            }
            bool ok = *k && (isalpha ((unsigned char)*k) || *k == '_');
            for (const char *p = k; ok && *p; p++)
                ok = isalnum ((unsigned char)*p) || *p == '_';
            if (!ok) {
                char esc[128];
                http_reply_error (req, 422, "Invalid environment variable name '%s'",
                                  log_escape (k, esc, sizeof esc));
                goto out;
            }
        }
    }
    json_t *jc = json_object_get (body, "required_cores");
    json_int_t cores = json_is_integer (jc) ? json_integer_value (jc) : vps ? 0 : 1;
    if (cores < 0 || cores > 100000) {
        http_reply_error (req, 422, "Field 'required_cores' must be between 0 and 100000, got %"
                                    JSON_INTEGER_FORMAT, cores);
        goto out;
    }
    json_t *jm = json_object_get (body, "required_memory_bytes");
    json_int_t mem = json_is_integer (jm) ? json_integer_value (jm) : 0;
    if (mem < 0) {
        http_reply_error (req, 422, "Field 'required_memory_bytes' must not be negative");
        goto out;
    }
    json_t *jr = json_object_get (body, "retries");
    json_int_t retries = json_is_integer (jr) ? json_integer_value (jr) : 0;
    if (retries < 0 || retries > 100) {
        http_reply_error (req, 422, "Field 'retries' must be between 0 and 100");
        goto out;
    }
    const char *container = json_string_value (json_object_get (body, "container_name"));
    if (container && strcmp (container, CONTAINER_NULL) != 0 && !valid_name (container)) {
        char esc[160];
        http_reply_error (req, 422, "Invalid container name '%s': use letters, digits, '.', "
                                    "'_' and '-'", log_escape (container, esc, sizeof esc));
        goto out;
    }
    json_t *mounts = json_object_get (body, "additional_mounts");
    json_array_foreach (mounts, i, v) if (!json_is_string (v) || !valid_mount (json_string_value (v)))
    {
        char esc[300];
        http_reply_error (req, 422, "Invalid mount '%s' in 'additional_mounts': expected "
                          "HOST_PATH:CONTAINER_PATH[:ro|rw] with absolute paths",
                          json_is_string (v) ? log_escape (json_string_value (v), esc, sizeof esc)
                                             : "(not a string)");
        goto out;
    }
    const char *image = json_string_value (json_object_get (body, "image"));
    bool native = container && strcmp (container, CONTAINER_NULL) == 0;
    if (image && !valid_image_ref (image)) {
        char esc[300];
        http_reply_error (req, 422, "Invalid image reference '%s'",
                          log_escape (image, esc, sizeof esc));
        goto out;
    }
    if (image && native) {
        http_reply_error (req, 422, "'image' runs a Docker image; it cannot be combined with "
                                    "container_name NULL (native execution)");
        goto out;
    }
    if (native && (json_array_size (mounts) > 0
                   || json_is_true (json_object_get (body, "privileged")))) {
        http_reply_error (req, 422, "'additional_mounts' and 'privileged' apply to Docker tasks "
                                    "only, not to container_name NULL");
        goto out;
    }
    if (json_is_true (json_object_get (body, "privileged")) && !h->conf->allow_privileged) {
        http_reply_error (req, 403, "Privileged tasks are not allowed on this cluster ([docker] "
                                    "allow_privileged = false in the host config)");
        goto out;
    }
    if (!image && !native
        && !environment_exists (h, req, container ? container : h->conf->default_container_name))
        goto out;
    json_t *targets = json_object_get (body, "targets");
    json_t *gpus = json_object_get (body, "required_gpus");
    size_t ntargets = json_array_size (targets);
    if (ntargets > MAX_TARGETS) {
        http_reply_error (req, 422, "Too many targets (%zu, limit %d)", ntargets, MAX_TARGETS);
        goto out;
    }
    json_array_foreach (targets, i, v)
    {
        char host[256];
        int numa;
        if (!json_is_string (v) || parse_target (json_string_value (v), host, sizeof host,
                                                 &numa) < 0) {
            char esc[300];
            http_reply_error (req, 422, "Invalid target format: '%s'. Use 'hostname' or "
                                        "'hostname:numa_id'.",
                              json_is_string (v) ? log_escape (json_string_value (v), esc,
                                                               sizeof esc)
                                                 : "(not a string)");
            goto out;
        }
    }
    if (gpus && json_is_array (gpus)) {
        if (json_array_size (gpus) > 0 && json_array_size (gpus) != ntargets) {
            http_reply_error (req, 422, "Field 'required_gpus' must have one list per target "
                                        "(%zu lists for %zu targets)",
                              json_array_size (gpus), ntargets);
            goto out;
        }
        json_array_foreach (gpus, i, v)
        {
            size_t j;
            json_t *g;
            bool ok = json_is_array (v);
            json_array_foreach (v, j, g) ok = ok && json_is_integer (g)
                                              && json_integer_value (g) >= 0
                                              && json_integer_value (g) < HOST_MAX_GPUS;
            if (!ok) {
                http_reply_error (req, 422, "Field 'required_gpus' must be a list of lists of "
                                            "GPU ids (0..%d)", HOST_MAX_GPUS - 1);
                goto out;
            }
        }
    }

    json_t *jmr = json_object_get (body, "max_running");
    json_int_t max_running = json_is_integer (jmr) ? json_integer_value (jmr) : 0;
    if (json_is_integer (jmr) && (max_running < 1 || max_running > MAX_RUNNING)) {
        http_reply_error (req, 422, "Field 'max_running' must be between 1 and %d, got %"
                                    JSON_INTEGER_FORMAT, MAX_RUNNING, max_running);
        goto out;
    }
    bool sweep = json_is_true (json_object_get (body, "sweep"));
    if (sweep && sweep_parse (req, args, ntargets, &set) < 0)
        goto out;

    failed = json_array ();
    ids = json_array ();
    uint64_t batch = 0;
    size_t ncombo = sweep ? (size_t)set.count : 1;
    struct task **created = NULL;
    size_t ncreated = 0;
    if (ntargets == 0) {
        if (gpus && json_array_size (gpus) > 0) {
            http_reply_error (req, 400, "No target node specified for GPU task is not allowed.");
            goto out;
        }
        bool any = false, ever = false;
        int largest = 0;
        for (struct node *n = h->nodes; n; n = n->next) {
            any = true;
            if (n->total_cores > largest)
                largest = n->total_cores;
            if (cores <= n->total_cores
                && (mem == 0 || n->memory_total == 0 || mem <= n->memory_total))
                ever = true;
        }
        if (any && !ever) {
            http_reply_error (req, 503, "No registered node can ever run this task: it asks "
                                        "for %" JSON_INTEGER_FORMAT " cores and %"
                                        JSON_INTEGER_FORMAT " bytes (largest node has %d cores)",
                              cores, mem, largest);
            goto out;
        }
        created = xcalloc (ncombo, sizeof *created);
        for (size_t c = 0; c < ncombo; c++) {
            struct task *t = new_task (h, body, command, (int)cores, mem, (int)retries,
                                       container);
            if (vps)
                strcpy (t->task_type, "vps");
            if (sweep)
                sweep_args (t, &set, c);
            created[ncreated++] = t;
        }
    } else {
        /* check each target once; a sweep then runs every combination on every good one */
        struct good_target {
            const char *ts;
            int numa;
            json_t *tg;
        } *good = xcalloc (ntargets, sizeof *good);
        size_t ngood = 0;
        json_array_foreach (targets, i, v)
        {
            const char *ts = json_string_value (v);
            char host[256];
            int numa;
            parse_target (ts, host, sizeof host, &numa);
            json_t *tg = json_array_get (gpus, i);
            json_t *empty = json_array ();
            struct node *n = check_target (h, ts, host, numa, tg ? tg : empty, (int)cores, mem,
                                           failed);
            json_decref (empty);
            if (n)
                good[ngood++] = (struct good_target){ ts, numa, tg };
        }
        if (ngood > 0)
            created = xcalloc (ncombo * ngood, sizeof *created);
        for (size_t c = 0; c < ncombo && ngood > 0; c++)
            for (size_t k = 0; k < ngood; k++) {
                struct task *t = new_task (h, body, command, (int)cores, mem, (int)retries,
                                           container);
                if (vps)
                    strcpy (t->task_type, "vps");
                t->target = xstrdup (good[k].ts);
                t->numa = good[k].numa;
                if (good[k].tg) {
                    free (t->gpus_json);
                    t->gpus_json = json_dumps (good[k].tg, JSON_COMPACT);
                }
                if (sweep)
                    sweep_args (t, &set, c);
                created[ncreated++] = t;
            }
        free (good);
    }
    if (ncreated == 0) {
        char *txt = json_dumps (failed, JSON_COMPACT);
        http_reply_error (req, 503, "Failed to schedule task for any target. Failures: %s", txt);
        free (txt);
        free (created);
        goto out;
    }
    batch = created[0]->id;
    for (size_t k = 0; k < ncreated; k++) {
        struct task *t = created[k];
        t->batch_id = batch;
        t->max_running = (int)max_running;
        char idbuf[24];
        snprintf (idbuf, sizeof idbuf, "%" PRIu64, t->id);
        json_array_append_new (ids, json_string (idbuf));
        if (host_save_task (h, t, true) < 0) {
            for (size_t r = k; r < ncreated; r++)
                task_destroy (created[r]);
            free (created);
            http_reply_error (req, 500, "Database error during task creation");
            goto out;
        }
        sched_enqueue (h, t);
    }
    free (created);
    if (sweep || max_running)
        log_info ("batch %" PRIu64 ": %s of %zu tasks submitted, at most %" JSON_INTEGER_FORMAT
                  " running at once (0 = no limit)", batch, sweep ? "sweep" : "batch", ncreated,
                  max_running);
    sched_pass (h);
    char bbuf[24];
    snprintf (bbuf, sizeof bbuf, "%" PRIu64, batch);
    json_t *resp = json_object ();
    size_t nf = json_array_size (failed);
    char msg[160];
    if (sweep)
        snprintf (msg, sizeof msg, "Sweep submitted%s. %zu tasks created in batch %s.",
                  nf ? " (some targets failed)" : " successfully", json_array_size (ids), bbuf);
    else if (nf)
        snprintf (msg, sizeof msg, "Task batch submitted. %zu tasks created. Some targets failed.",
                  json_array_size (ids));
    else
        snprintf (msg, sizeof msg, "Task batch submitted successfully. %zu tasks created.",
                  json_array_size (ids));
    json_object_set_new (resp, "message", json_string (msg));
    json_object_set_new (resp, "task_ids", json_incref (ids));
    json_object_set_new (resp, "batch_id", json_string (bbuf));
    if (nf)
        json_object_set_new (resp, "failed_targets", json_incref (failed));
    /* where each task went right now (queued ones have no node yet) */
    json_t *placed = json_array ();
    struct node *last = NULL;
    json_array_foreach (ids, i, v)
    {
        uint64_t id = strtoull (json_string_value (v), NULL, 10);
        struct atask *a = active_find (h, id);
        const char *node = a && a->task->node ? a->task->node : NULL;
        json_array_append_new (
            placed, json_pack ("{s:O,s:s,s:o}", "task_id", v, "status",
                               a ? task_status_name (a->task->status) : "queued", "node",
                               node ? json_string (node) : json_null ()));
        if (node)
            last = node_find (h, node);
    }
    json_object_set_new (resp, "tasks", placed);
    if (last)
        json_object_set_new (resp, "assigned_node", json_pack ("{s:s,s:s}", "hostname",
                                                               last->hostname, "url", last->url));
    http_reply_json (req, 202, resp);
out:
    span_set_free (&set);
    json_decref (failed);
    json_decref (ids);
    json_decref (body);
}

void api_status (struct host *h, struct http_req *req, const char *id)
{
    bool owned;
    struct task *t = api_load_task (h, req, id, &owned);
    if (!t)
        return;
    http_reply_json (req, 200, task_to_json (t));
    if (owned)
        task_destroy (t);
}

void api_tasks (struct host *h, struct http_req *req)
{
    struct task_filter f = { .limit = 100, .task_type = "command" };
    const char *v;
    char esc[200];
    if ((v = http_query (req, "status"))) {
        char buf[512];
        snprintf (buf, sizeof buf, "%s", v);
        for (char *save = NULL, *s = strtok_r (buf, ",", &save); s;
             s = strtok_r (NULL, ",", &save)) {
            enum task_status st;
            if (task_status_parse (s, &st) < 0)
                return http_reply_error (req, 400, "Unknown status '%s' in filter",
                                         log_escape (s, esc, sizeof esc));
        }
        f.status = v;
    }
    if ((v = http_query (req, "node")))
        f.node = v;
    if ((v = http_query (req, "task_type"))) {
        if (strcmp (v, "all") == 0)
            f.task_type = NULL;
        else if (strcmp (v, "command") == 0 || strcmp (v, "vps") == 0)
            f.task_type = v;
        else
            return http_reply_error (req, 400, "task_type must be command, vps or all");
    }
    if ((v = http_query (req, "batch_id")) && api_parse_id (v, &f.batch_id) < 0)
        return http_reply_error (req, 400, "Invalid batch_id '%s'",
                                 log_escape (v, esc, sizeof esc));
    if ((v = http_query (req, "before")) && api_parse_id (v, &f.before_id) < 0)
        return http_reply_error (req, 400, "Invalid before '%s'", log_escape (v, esc, sizeof esc));
    if ((v = http_query (req, "limit"))) {
        char *end;
        long l = strtol (v, &end, 10);
        if (*end || l < 1 || l > 10000)
            return http_reply_error (req, 400, "limit must be between 1 and 10000");
        f.limit = (int)l;
    }
    if ((v = http_query (req, "offset"))) {
        char *end;
        long long o = strtoll (v, &end, 10);
        if (*end || o < 0)
            return http_reply_error (req, 400, "offset must be a non-negative integer");
        f.offset = o;
    }
    struct task **rows = NULL;
    int n = 0;
    struct err e;
    if (store_task_list (h->store, &f, &rows, &n, &e) < 0) {
        log_err ("store: %s", e.text);
        return http_reply_error (req, 500, "Database error fetching tasks.");
    }
    json_t *arr = json_array ();
    for (int i = 0; i < n; i++) {
        json_array_append_new (arr, task_to_json (rows[i]));
        if (i == n - 1 && n == f.limit)
            req->next_before = xasprintf ("%" PRIu64, rows[i]->id);
        task_destroy (rows[i]);
    }
    free (rows);
    http_reply_json (req, 200, arr);
}

/* GET /vps (every VPS task) and /vps/status (the active ones), newest first, as 0.3. */
void api_vps_list (struct host *h, struct http_req *req, bool active_only)
{
    struct task_filter f = { .limit = 10000, .task_type = "vps" };
    if (active_only)
        f.status = "queued,assigning,pending,running,paused";
    struct task **rows = NULL;
    int n = 0;
    struct err e;
    if (store_task_list (h->store, &f, &rows, &n, &e) < 0) {
        log_err ("store: %s", e.text);
        return http_reply_error (req, 500, active_only ? "Database error fetching active VPS "
                                                         "tasks."
                                                       : "Database error fetching VPS tasks.");
    }
    json_t *arr = json_array ();
    for (int i = 0; i < n; i++) {
        /* the in-memory record is the newest (a change of this iteration) */
        struct atask *a = active_find (h, rows[i]->id);
        json_array_append_new (arr, task_to_json (a ? a->task : rows[i]));
        task_destroy (rows[i]);
    }
    free (rows);
    http_reply_json (req, 200, arr);
}

/* Kills active task A: a queued task is final at once; a placed one is killed on its node
 * and keeps its resources until the runner confirms. */
static void kill_active (struct host *h, struct atask *a)
{
    struct task *t = a->task;
    struct node *n = t->node ? node_find (h, t->node) : NULL;
    if (t->status != TASK_QUEUED && n) {
        if (t->status == TASK_ASSIGNING && node_cmd_cancel_run (n, t->id)) {
            /* the runner never saw it */
        } else {
            a->kill_requested = true;
            json_t *extra = json_pack ("{s:i}", "attempt", t->attempt);
            node_cmd_push (h, n, "kill", t->id, extra);
        }
    }
    t->has_exit_code = false;
    sched_finish (h, a, TASK_KILLED, "Kill requested by user.");
}

void api_kill_batch (struct host *h, struct http_req *req, const char *idtext)
{
    uint64_t batch;
    char esc[64];
    if (api_parse_id (idtext, &batch) < 0)
        return http_reply_error (req, 400, "Invalid batch ID '%s': a positive decimal number "
                                           "below 2^63 is expected",
                                 log_escape (idtext, esc, sizeof esc));
    /* collect first: killing changes the active map */
    struct atask **victims = NULL;
    size_t nv = 0, pos = 0, nqueued = 0;
    struct atask *a;
    while ((a = idmap_next (&h->active, &pos, NULL)))
        if (a->task->batch_id == batch && !task_status_is_final (a->task->status)) {
            victims = xreallocarray (victims, nv + 1, sizeof *victims);
            victims[nv++] = a;
        }
    if (nv == 0) {
        struct task_filter f = { .batch_id = batch, .limit = 1 };
        struct task **rows = NULL;
        int n = 0;
        struct err e;
        if (store_task_list (h->store, &f, &rows, &n, &e) < 0) {
            log_err ("store: %s", e.text);
            return http_reply_error (req, 500, "Database error reading batch %s", idtext);
        }
        for (int i = 0; i < n; i++)
            task_destroy (rows[i]);
        free (rows);
        if (n == 0)
            return http_reply_error (req, 404, "Batch id not found");
    }
    for (size_t i = 0; i < nv; i++) {
        nqueued += victims[i]->task->status == TASK_QUEUED;
        kill_active (h, victims[i]);
    }
    free (victims);
    if (nv)
        log_info ("batch %" PRIu64 ": kill requested for %zu tasks (%zu queued)", batch, nv,
                  nqueued);
    char msg[200];
    snprintf (msg, sizeof msg, "Kill requested for %zu tasks of batch %s (%zu queued, %zu "
                               "started); the others were already final.", nv, idtext, nqueued,
              nv - nqueued);
    http_reply_json (req, 202, json_pack ("{s:s,s:s,s:I,s:I,s:I}", "message", msg, "batch_id",
                                          idtext, "killed", (json_int_t)nv, "queued",
                                          (json_int_t)nqueued, "started",
                                          (json_int_t)(nv - nqueued)));
}

void api_kill (struct host *h, struct http_req *req, const char *id)
{
    bool owned;
    struct task *t = api_load_task (h, req, id, &owned);
    if (!t)
        return;
    if (owned || task_status_is_final (t->status)) {
        http_reply_error (req, 409, "Task cannot be killed (state: %s)",
                          task_status_name (t->status));
        if (owned)
            task_destroy (t);
        return;
    }
    kill_active (h, active_find (h, t->id));
    char msg[128];
    snprintf (msg, sizeof msg, "Kill requested for task %s. Task marked as killed.", id);
    http_reply_json (req, 202, json_pack ("{s:s}", "message", msg));
}

void api_command (struct host *h, struct http_req *req, const char *id, const char *cmd)
{
    bool owned;
    char esc[64];
    bool pause = strcmp (cmd, "pause") == 0, resume = strcmp (cmd, "resume") == 0;
    if (!pause && !resume) {
        uint64_t dummy;
        if (api_parse_id (id, &dummy) < 0)
            return http_reply_error (req, 400, "Invalid task ID '%s'",
                                     log_escape (id, esc, sizeof esc));
        return http_reply_error (req, 400, "Invalid command '%s': use pause or resume",
                                 log_escape (cmd, esc, sizeof esc));
    }
    struct task *t = api_load_task (h, req, id, &owned);
    if (!t)
        return;
    if ((pause && t->status != TASK_RUNNING) || (resume && t->status != TASK_PAUSED)) {
        http_reply_error (req, 400, "Invalid command or task state: %s for %s", cmd,
                          task_status_name (t->status));
        if (owned)
            task_destroy (t);
        return;
    }
    struct node *n = node_find (h, t->node);
    if (!n || !n->online)
        return http_reply_error (req, 409, "Node %s of task %s is offline", t->node, id);
    node_cmd_push (h, n, cmd, t->id, json_pack ("{s:i}", "attempt", t->attempt));
    char msg[200];
    snprintf (msg, sizeof msg, "%s for task %s sent to runner: %s command sent successfully.",
              pause ? "Pause" : "Resume", id, pause ? "Pause" : "Resume");
    http_reply_json (req, 200, json_pack ("{s:s}", "message", msg));
}

void api_task_log (struct host *h, struct http_req *req, const char *id, bool is_err)
{
    bool owned;
    struct task *t = api_load_task (h, req, id, &owned);
    if (!t)
        return;
    const char *which = is_err ? "error" : "output";
    const char *path = is_err ? t->stderr_path : t->stdout_path;
    char *copy = path ? xstrdup (path) : NULL;
    /* (0.3 answered 400 for a VPS; here its container's output, the sshd log, is there) */
    if (owned)
        task_destroy (t);
    int fd = copy ? open (copy, O_RDONLY | O_CLOEXEC) : -1;
    free (copy);
    struct stat sb;
    if (fd < 0 || fstat (fd, &sb) < 0) {
        if (fd >= 0)
            close (fd);
        return http_reply_error (req, 404, "Standard %s file not found for task %s (the task "
                                           "has not written any yet)", which, id);
    }
    off_t off = 0, len = sb.st_size;
    const char *tail = http_query (req, "tail");
    if (tail) {
        char *end;
        long long n = strtoll (tail, &end, 10);
        if (*end || n < 0) {
            close (fd);
            return http_reply_error (req, 400, "tail must be a non-negative number of bytes");
        }
        if (n < len) {
            off = len - n;
            len = n;
        }
    }
    http_reply_fd (req, fd, off, len);
}

void api_nodes (struct host *h, struct http_req *req)
{
    json_t *arr = json_array ();
    for (struct node *n = h->nodes; n; n = n->next)
        json_array_append_new (arr, node_to_json (h, n));
    http_reply_json (req, 200, arr);
}
