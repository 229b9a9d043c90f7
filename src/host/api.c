/* api.c - route table, authentication and request-validation helpers */
#include "host/api.h"
#include "host/api_terminal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"

/* Constant-time comparison so that a token cannot be guessed byte by byte from timing. */
static bool token_equal (const char *given, const char *want)
{
    size_t lg = strlen (given), lw = strlen (want);
    unsigned char diff = (unsigned char)(lg != lw);
    for (size_t i = 0; i < lw; i++)
        diff |= (unsigned char)(want[i] ^ (i < lg ? given[i] : 0));
    return diff == 0;
}

enum auth_class { AUTH_USER, AUTH_RUNNER, AUTH_NONE };

static bool authorized (struct host *h, struct http_req *req, enum auth_class cls)
{
    if (cls == AUTH_NONE)
        return true;
    const char *want = h->conf->api_token;
    const char *what = "API token ([auth] api_token, or HAKURIVER_TOKEN for the CLI)";
    if (cls == AUTH_RUNNER) {
        if (h->conf->join_token && *h->conf->join_token)
            want = h->conf->join_token;
        what = "runner join token ([auth] join_token)";
    }
    if (!want || !*want)
        return true;
    const char *hdr = http_header (req, "Authorization");
    if (!hdr) {
        http_reply_error (req, 401, "Missing Authorization header: this host requires "
                                    "'Authorization: Bearer <token>' with the %s", what);
        return false;
    }
    if (strncasecmp (hdr, "Bearer ", 7) != 0 || !token_equal (hdr + 7, want)) {
        http_reply_error (req, 401, "Invalid token: expected the %s", what);
        return false;
    }
    return true;
}

json_t *api_body_object (struct http_req *req)
{
    json_error_t jerr;
    if (!req->body || req->len == 0) {
        http_reply_error (req, 422, "Request body is empty: a JSON object is expected");
        return NULL;
    }
    json_t *o = json_loadb (req->body, req->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        http_reply_error (req, 422, "Malformed JSON body: %s (line %d, column %d)", jerr.text,
                          jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object (o)) {
        json_decref (o);
        http_reply_error (req, 422, "Request body must be a JSON object");
        return NULL;
    }
    return o;
}

static const char *kind_names (int kinds, char *buf, size_t n)
{
    static const struct { int k; const char *name; } names[] = {
        { F_STR, "a string" }, { F_INT, "an integer" }, { F_NUM, "a number" },
        { F_BOOL, "a boolean" }, { F_ARR, "an array" }, { F_OBJ, "an object" },
        { F_NULL, "null" },
    };
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (kinds & names[i].k) {
            if (buf[0])
                strncat (buf, " or ", n - strlen (buf) - 1);
            strncat (buf, names[i].name, n - strlen (buf) - 1);
        }
    return buf;
}

static int kind_of (json_t *v)
{
    switch (json_typeof (v)) {
    case JSON_STRING: return F_STR;
    case JSON_INTEGER: return F_INT | F_NUM;
    case JSON_REAL: return F_NUM;
    case JSON_TRUE:
    case JSON_FALSE: return F_BOOL;
    case JSON_ARRAY: return F_ARR;
    case JSON_OBJECT: return F_OBJ;
    case JSON_NULL: return F_NULL;
    }
    return 0;
}

int api_check_fields (struct http_req *req, json_t *o, const struct field_spec *specs,
                      bool strict)
{
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v)
    {
        const struct field_spec *s = specs;
        while (s->name && strcmp (s->name, key) != 0)
            s++;
        if (!s->name) {
            if (!strict)
                continue;
            char esc[128];
            http_reply_error (req, 422, "Unknown field '%s'", log_escape (key, esc, sizeof esc));
            return -1;
        }
        if (!(kind_of (v) & s->kinds)) {
            char buf[128];
            http_reply_error (req, 422, "Field '%s' must be %s", key,
                              kind_names (s->kinds, buf, sizeof buf));
            return -1;
        }
    }
    return 0;
}

int api_parse_id (const char *s, uint64_t *out)
{
    if (!s || !*s || strlen (s) > 19)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit ((unsigned char)*p))
            return -1;
    errno = 0;
    unsigned long long v = strtoull (s, NULL, 10);
    if (errno || v == 0 || v > INT64_MAX)
        return -1;
    *out = v;
    return 0;
}

struct task *api_load_task (struct host *h, struct http_req *req, const char *idtext,
                            bool *owned)
{
    uint64_t id;
    char esc[64];
    *owned = false;
    if (api_parse_id (idtext, &id) < 0) {
        http_reply_error (req, 400, "Invalid task ID '%s': a positive decimal number below "
                                    "2^63 is expected", log_escape (idtext, esc, sizeof esc));
        return NULL;
    }
    struct atask *a = active_find (h, id);
    if (a)
        return a->task;
    struct task *t = NULL;
    struct err e;
    if (store_task_get (h->store, id, &t, &e) < 0) {
        log_err ("store: %s", e.text);
        http_reply_error (req, 500, "Database error reading task %s", idtext);
        return NULL;
    }
    if (!t) {
        http_reply_error (req, 404, "Task id not found");
        return NULL;
    }
    *owned = true;
    return t;
}

/* Splits "/a/b/c" after PREFIX into at most 2 segments. Returns the count, -1 if too many. */
static int segments (const char *url, const char *prefix, char seg[2][256])
{
    size_t pl = strlen (prefix);
    if (strncmp (url, prefix, pl) != 0)
        return 0;
    const char *p = url + pl;
    int n = 0;
    while (*p) {
        const char *slash = strchr (p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen (p);
        if (n == 2 || len == 0 || len >= 256)
            return -1;
        memcpy (seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

void api_dispatch (struct host *h, struct http_req *req)
{
    const char *m = req->method, *u = req->url;
    bool get = strcmp (m, "GET") == 0, post = strcmp (m, "POST") == 0,
         put = strcmp (m, "PUT") == 0;
    char seg[2][256];
    int n;

    /* runner channel */
    if (strcmp (u, PATH_REGISTER) == 0 || strcmp (u, PATH_UPDATE) == 0
        || strncmp (u, PATH_HEARTBEAT, strlen (PATH_HEARTBEAT)) == 0
        || strncmp (u, PATH_RUNNER_POLL, strlen (PATH_RUNNER_POLL)) == 0
        || strncmp (u, PATH_RUNNER_TERMINAL, strlen (PATH_RUNNER_TERMINAL)) == 0) {
        if (!authorized (h, req, AUTH_RUNNER))
            return;
        if (post && strcmp (u, PATH_REGISTER) == 0)
            return api_register (h, req);
        if (post && strcmp (u, PATH_UPDATE) == 0)
            return api_update (h, req);
        if (put && segments (u, PATH_HEARTBEAT, seg) == 1)
            return api_heartbeat (h, req, seg[0]);
        if (get && segments (u, PATH_RUNNER_POLL, seg) == 1)
            return api_poll (h, req, seg[0]);
        if (segments (u, PATH_RUNNER_TERMINAL, seg) == 1)
            return api_runner_terminal (h, req, seg[0]);
        return http_reply_error (req, 405, "Method %s not allowed on %s", m, u);
    }
    if (!authorized (h, req, AUTH_USER))
        return;
    if (strcmp (u, PATH_SUBMIT) == 0)
        return post ? api_submit (h, req) : http_reply_error (req, 405, "Use POST %s", u);
    if (strcmp (u, PATH_TASKS) == 0)
        return get ? api_tasks (h, req) : http_reply_error (req, 405, "Use GET %s", u);
    if (strcmp (u, PATH_NODES) == 0)
        return get ? api_nodes (h, req) : http_reply_error (req, 405, "Use GET %s", u);
    if (strcmp (u, PATH_HEALTH) == 0)
        return get ? api_health (h, req) : http_reply_error (req, 405, "Use GET %s", u);
    if (strcmp (u, PATH_VPS) == 0 || strcmp (u, PATH_VPS_STATUS) == 0)
        return get ? api_vps_list (h, req, strcmp (u, PATH_VPS_STATUS) == 0)
                   : http_reply_error (req, 405, "Use GET %s", u);
    if ((n = segments (u, PATH_STATUS, seg)) == 1)
        return get ? api_status (h, req, seg[0]) : http_reply_error (req, 405, "Use GET");
    if ((n = segments (u, PATH_KILL, seg)) == 1)
        return post ? api_kill (h, req, seg[0]) : http_reply_error (req, 405, "Use POST");
    if ((n = segments (u, PATH_KILL_BATCH, seg)) == 1)
        return post ? api_kill_batch (h, req, seg[0]) : http_reply_error (req, 405, "Use POST");
    if ((n = segments (u, PATH_COMMAND, seg)) == 2)
        return post ? api_command (h, req, seg[0], seg[1])
                    : http_reply_error (req, 405, "Use POST");
    if ((n = segments (u, PATH_TASK_LOG, seg)) == 2 && strcmp (seg[1], PATH_TASK_TERMINAL) == 0)
        return api_task_terminal (h, req, seg[0]);
    if ((n = segments (u, PATH_TASK_LOG, seg)) == 2
        && (strcmp (seg[1], "stdout") == 0 || strcmp (seg[1], "stderr") == 0))
        return get ? api_task_log (h, req, seg[0], strcmp (seg[1], "stderr") == 0)
                   : http_reply_error (req, 405, "Use GET");
    if (strncmp (u, PATH_DOCKER_PREFIX, strlen (PATH_DOCKER_PREFIX)) == 0)
        return api_docker (h, req);
    char esc[300];
    http_reply_error (req, 404, "Not Found: %s %s", m, log_escape (u, esc, sizeof esc));
}
