/* cli.c - shared context of the user CLIs: config, host connection, errors, shared commands */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/output.h"
#include "common/proto.h"
#include "common/xalloc.h"

const char *cli_prog_name (const char *word)
{
    const char *base = strrchr (word, '/');
    base = base ? base + 1 : word;
    /* "hakuriver task ..." names itself like the hakuriver.task link */
    static const char *const names[] = { "client", "task", "docker", "docker-shell", "init",
                                         "vps", "ssh" };
    static const char *const full[] = { "hakuriver.client", "hakuriver.task", "hakuriver.docker",
                                        "hakuriver.docker-shell", "hakuriver.init",
                                        "hakuriver.vps", "hakuriver.ssh" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp (base, names[i]) == 0)
            return full[i];
    return base;
}

void cli_sleep (double seconds)
{
    struct timespec ts = { .tv_sec = (time_t)seconds,
                           .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

int cli_usage_error (const struct cli *cli, const char *msg)
{
    fprintf (stderr, "%s: error: %s\n", cli->prog, msg);
    fprintf (stderr, "Run `%s --help` for usage.\n", cli->prog);
    return CLI_USAGE;
}

int cli_open (struct cli *cli)
{
    struct err e = { 0 };
    char *path = conf_find (cli->config, &e);
    if (!path && (e.code || e.text[0])) {
        fprintf (stderr, "%s: error: config: %s\n", cli->prog, e.text);
        return CLI_FAIL;
    }
    int rc = conf_load (&cli->conf, path, &e);
    free (path);
    cli->conf_loaded = true;
    if (rc < 0) {
        fprintf (stderr, "%s: error: config: %s\n", cli->prog, e.text);
        return CLI_FAIL;
    }
    const char *addr = cli->conf.host_reachable_address;
    if (!addr || !*addr) {
        fprintf (stderr, "%s: error: config: [network] host_reachable_address is empty\n",
                 cli->prog);
        return CLI_FAIL;
    }
    /* an IPv6 literal needs brackets in a URL */
    bool v6 = strchr (addr, ':') && addr[0] != '[';
    char *url = xasprintf ("http://%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "",
                           cli->conf.host_port);
    cli->http = http_client_create (url, cli->conf.api_token, &e);
    free (url);
    if (!cli->http) {
        fprintf (stderr, "%s: error: %s\n", cli->prog, e.text);
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_close (struct cli *cli)
{
    http_client_destroy (cli->http);
    cli->http = NULL;
    if (cli->conf_loaded) {
        conf_free (&cli->conf);
        cli->conf_loaded = false;
    }
}

char *cli_error_detail (const char *body, size_t len)
{
    json_t *j = body && len ? json_loadb (body, len, 0, NULL) : NULL;
    json_t *d = json_is_object (j) ? json_object_get (j, "detail") : NULL;
    char *msg;
    if (json_is_string (d))
        msg = xstrdup (json_string_value (d));
    else if (d) {
        char *s = json_dumps (d, JSON_COMPACT | JSON_ENCODE_ANY);
        msg = xstrdup (s ? s : "");
        free (s);
    } else {
        /* the raw body, without a trailing newline, capped so an HTML page stays readable */
        size_t n = len;
        while (n && (body[n - 1] == '\n' || body[n - 1] == '\r'))
            n--;
        msg = xstrndup (body ? body : "", n > 2000 ? 2000 : n);
    }
    json_decref (j);
    return msg;
}

/* Prints why a request failed: RC/E from the transport, else the non-2xx reply R. */
static void report (struct cli *cli, const char *method, const char *path, long timeout_s,
                    const struct err *e, const struct http_resp *r)
{
    if (e) {
        if (e->code == ECONNREFUSED)
            fprintf (stderr, "error: cannot reach host at %s: %s\n",
                     http_client_url (cli->http), e->text);
        else if (e->code == ETIMEDOUT)
            fprintf (stderr, "error: no reply from host at %s within %ld s: %s\n",
                     http_client_url (cli->http), timeout_s, e->text);
        else
            fprintf (stderr, "error: %s %s%s: %s\n", method, http_client_url (cli->http), path,
                     e->text);
        return;
    }
    char *detail = cli_error_detail (r->body, r->len);
    char *clean = output_clean (detail);
    if (*clean)
        fprintf (stderr, "error: %s (HTTP %ld)\n", clean, r->status);
    else
        fprintf (stderr, "error: HTTP %ld from %s %s\n", r->status, method, path);
    if (r->status == 401)
        fprintf (stderr, "hint: set [auth] api_token in the config file%s%s or the %s "
                 "environment variable to the host's API token\n",
                 cli->conf.path ? " " : "", cli->conf.path ? cli->conf.path : "",
                 ENV_API_TOKEN);
    free (clean);
    free (detail);
}

int cli_call (struct cli *cli, const char *method, const char *path, const json_t *body,
              long timeout_s, bool quiet, struct http_resp *r)
{
    struct err e = { 0 };
    if (http_client_request (cli->http, method, path, body, timeout_s, r, &e) < 0) {
        if (!quiet)
            report (cli, method, path, timeout_s, &e, NULL);
        return CLI_FAIL;
    }
    if (r->status >= 200 && r->status < 300)
        return CLI_OK;
    if (!quiet)
        report (cli, method, path, timeout_s, NULL, r);
    http_resp_free (r);
    return CLI_FAIL;
}

int cli_get_to (struct cli *cli, const char *path, long timeout_s, FILE *sink)
{
    struct err e = { 0 };
    struct http_resp r;
    int rc = CLI_FAIL;
    if (http_client_get_to (cli->http, path, timeout_s, sink, &r, &e) < 0) {
        report (cli, "GET", path, timeout_s, &e, NULL);
        return CLI_FAIL;
    }
    if (r.status < 200 || r.status >= 300)
        report (cli, "GET", path, timeout_s, NULL, &r);
    else if (r.len && fwrite (r.body, 1, r.len, sink) != r.len)
        fprintf (stderr, "error: cannot write the output: %s\n", strerror (errno));
    else
        rc = CLI_OK;
    http_resp_free (&r);
    return rc;
}

json_t *cli_parse_reply (struct cli *cli, const struct http_resp *r)
{
    json_error_t je;
    json_t *j = json_loadb (r->body, r->len, 0, &je);
    if (!j)
        fprintf (stderr, "error: the host's reply is not JSON: %s\n", je.text);
    return j;
}

bool cli_status_is_final (const char *s)
{
    static const char *const final[] = { ST_COMPLETED, ST_FAILED, ST_KILLED, ST_KILLED_OOM,
                                         ST_LOST };
    for (size_t i = 0; s && i < sizeof final / sizeof final[0]; i++)
        if (strcmp (s, final[i]) == 0)
            return true;
    return false;
}

static void kv_scalar (const char *key, const json_t *v)
{
    char *s = output_scalar (v);
    output_kv (stdout, key, s);
    free (s);
}

static void kv_time (const char *key, const json_t *v)
{
    char buf[32];
    output_kv (stdout, key, output_time (json_string_value (v), buf, sizeof buf));
}

void cli_print_task (const json_t *t)
{
    char buf[32];
    kv_scalar ("task_id", json_object_get (t, "task_id"));
    kv_scalar ("batch_id", json_object_get (t, "batch_id"));
    kv_scalar ("status", json_object_get (t, "status"));
    kv_scalar ("assigned_node", json_object_get (t, "assigned_node"));
    kv_scalar ("numa_node", json_object_get (t, "target_numa_node_id"));
    kv_scalar ("exit_code", json_object_get (t, "exit_code"));
    kv_scalar ("error_message", json_object_get (t, "error_message"));
    kv_time ("submitted_at", json_object_get (t, "submitted_at"));
    kv_time ("started_at", json_object_get (t, "started_at"));
    kv_time ("completed_at", json_object_get (t, "completed_at"));
    char *line = output_command_line (json_object_get (t, "command"),
                                      json_object_get (t, "arguments"));
    output_kv (stdout, "command", line);
    free (line);
    kv_scalar ("cores", json_object_get (t, "required_cores"));
    json_t *mem = json_object_get (t, "required_memory_bytes");
    output_kv (stdout, "memory",
               json_is_integer (mem) ? output_size (json_integer_value (mem), buf, sizeof buf)
                                     : NULL);
    json_t *gpus = json_object_get (t, "required_gpus");
    if (json_array_size (gpus))
        kv_scalar ("gpus", gpus);
    else
        output_kv (stdout, "gpus", NULL);
    json_t *c = json_object_get (t, "container_name");
    if (c)
        kv_scalar ("container", c);
    json_t *attempt = json_object_get (t, "attempt");
    if (attempt)
        kv_scalar ("attempt", attempt);
    json_t *retries = json_object_get (t, "retries");
    if (retries)
        kv_scalar ("retries_left", retries);
    kv_scalar ("stdout_path", json_object_get (t, "stdout_path"));
    kv_scalar ("stderr_path", json_object_get (t, "stderr_path"));
}

/* Parses "SUB [--json] ID" style arguments for the shared commands. Returns -1 when the
 * command is finished (*rc set: usage error or --help), 0 to go on. */
static int parse_id_args (struct cli *cli, int argc, char **argv, int npos, const char **pos,
                          uint64_t *id, int *rc)
{
    struct err e = { 0 };
    bool help = false;
    int n = 0;
    if (args_parse_simple (argc, argv, npos, npos, pos, &n, &cli->json, &help, &e) < 0) {
        *rc = cli_usage_error (cli, e.text);
        return -1;
    }
    if (help) {
        cli->usage (stdout);
        *rc = CLI_OK;
        return -1;
    }
    if (args_parse_task_id (pos[0], id, &e) < 0) {
        *rc = cli_usage_error (cli, e.text);
        return -1;
    }
    return 0;
}

/* Prints a reply: the JSON with --json, else its "message" (or the whole JSON if none). */
static int print_message (struct cli *cli, const struct http_resp *r)
{
    json_t *j = cli_parse_reply (cli, r);
    if (!j)
        return CLI_FAIL;
    const char *msg = json_string_value (json_object_get (j, "message"));
    if (cli->json || !msg)
        output_json (stdout, j);
    else {
        char *clean = output_clean (msg);
        printf ("%s\n", clean);
        free (clean);
    }
    json_decref (j);
    return CLI_OK;
}

int cli_cmd_status (struct cli *cli, int argc, char **argv)
{
    const char *pos[1];
    uint64_t id;
    int rc;
    if (parse_id_args (cli, argc, argv, 1, pos, &id, &rc) < 0)
        return rc;
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    char *path = xasprintf (PATH_STATUS "%" PRIu64, id);
    struct http_resp r;
    rc = cli_call (cli, "GET", path, NULL, HTTP_CLIENT_STATUS_TIMEOUT, false, &r);
    free (path);
    if (rc != CLI_OK)
        return rc;
    json_t *j = cli_parse_reply (cli, &r);
    if (!j)
        rc = CLI_FAIL;
    else if (cli->json)
        output_json (stdout, j);
    else
        cli_print_task (j);
    json_decref (j);
    http_resp_free (&r);
    return rc;
}

int cli_cmd_kill (struct cli *cli, int argc, char **argv)
{
    const char *pos[1];
    uint64_t id;
    int rc;
    if (parse_id_args (cli, argc, argv, 1, pos, &id, &rc) < 0)
        return rc;
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    char *path = xasprintf (PATH_KILL "%" PRIu64, id);
    struct http_resp r;
    rc = cli_call (cli, "POST", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r);
    free (path);
    if (rc != CLI_OK)
        return rc;
    rc = print_message (cli, &r);
    http_resp_free (&r);
    return rc;
}

int cli_cmd_command (struct cli *cli, int argc, char **argv)
{
    const char *pos[2];
    uint64_t id;
    int rc;
    if (parse_id_args (cli, argc, argv, 2, pos, &id, &rc) < 0)
        return rc;
    if (strcmp (pos[1], "pause") != 0 && strcmp (pos[1], "resume") != 0) {
        char *msg = xasprintf ("command: invalid action `%s`: expected pause or resume", pos[1]);
        rc = cli_usage_error (cli, msg);
        free (msg);
        return rc;
    }
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    char *path = xasprintf (PATH_COMMAND "%" PRIu64 "/%s", id, pos[1]);
    struct http_resp r;
    rc = cli_call (cli, "POST", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r);
    free (path);
    if (rc != CLI_OK)
        return rc;
    rc = print_message (cli, &r);
    http_resp_free (&r);
    return rc;
}

int cli_dispatch (int argc, char **argv, void (*usage) (FILE *out),
                  const struct cli_subcmd *cmds, size_t n)
{
    struct cli cli = { .prog = cli_prog_name (argv[0]), .usage = usage };
    struct args_global g;
    struct err e = { 0 };
    if (args_parse_global (argc, argv, &g, &e) < 0)
        return cli_usage_error (&cli, e.text);
    if (g.help) {
        usage (stdout);
        return CLI_OK;
    }
    if (g.sub >= argc) {
        usage (stderr);
        return CLI_USAGE;
    }
    cli.config = g.config;
    cli.json = g.json;
    const char *word = argv[g.sub];
    for (size_t i = 0; i < n; i++)
        if (strcmp (cmds[i].name, word) == 0) {
            int rc = cmds[i].fn (&cli, argc - g.sub, argv + g.sub);
            cli_close (&cli);
            return rc;
        }
    char *msg = xasprintf ("unknown command `%s`", word);
    int rc = cli_usage_error (&cli, msg);
    free (msg);
    return rc;
}
