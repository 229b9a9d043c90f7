/* cmd_client.c - hakuriver.client: nodes, health, status, kill, command (pause|resume) */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver.client [--config PATH] [--json] COMMAND [ARGS...]\n"
             "\n"
             "commands:\n"
             "  nodes                          list the runner nodes and their resources\n"
             "  health [HOSTNAME]              latest health sample per node (cpu, memory, temps)\n"
             "  status TASK_ID                 show one task\n"
             "  kill TASK_ID                   kill a task\n"
             "  command TASK_ID pause|resume   pause or resume a running task\n"
             "\n"
             "options:\n"
             "  -c, --config PATH   configuration file (default: $HAKURIVER_CONFIG or\n"
             "                      ~/.hakuriver/config.toml)\n"
             "  --json              print the host's JSON instead of tables\n"
             "  -h, --help          show this help\n"
             "\n"
             "The API token comes from [auth] api_token in the config or $HAKURIVER_TOKEN.\n"
             "Exit status: 0 success, 1 failure (host error or unreachable), 2 usage error.\n");
}

static char *num_or_dash (const json_t *v, const char *fmt_real)
{
    if (json_is_integer (v))
        return xasprintf ("%" JSON_INTEGER_FORMAT, json_integer_value (v));
    if (json_is_real (v))
        return xasprintf (fmt_real, json_real_value (v));
    if (json_is_string (v))
        return xstrdup (json_string_value (v));
    return xstrdup ("-");
}

static int cmd_nodes (struct cli *cli, int argc, char **argv)
{
    struct err e = { 0 };
    bool help = false;
    int n, rc;
    const char *pos[1];
    if (args_parse_simple (argc, argv, 0, 0, pos, &n, &cli->json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    struct http_resp r;
    if ((rc = cli_call (cli, "GET", PATH_NODES, NULL, HTTP_CLIENT_TIMEOUT, false, &r)) != CLI_OK)
        return rc;
    json_t *nodes = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    if (!nodes)
        return CLI_FAIL;
    if (cli->json) {
        output_json (stdout, nodes);
        json_decref (nodes);
        return CLI_OK;
    }
    if (!json_array_size (nodes)) {
        printf ("No nodes registered.\n");
        json_decref (nodes);
        return CLI_OK;
    }
    static const char *const hdr[] = { "HOSTNAME", "STATUS", "CORES", "MEMORY",
                                       "NUMA",     "GPUS",   "LAST-HEARTBEAT" };
    output_table_t *t = output_table_create (7, hdr);
    size_t i;
    json_t *nd;
    json_array_foreach (nodes, i, nd)
    {
        char b1[16], b2[16], tb[32];
        char *used = num_or_dash (json_object_get (nd, "cores_in_use"), "%.0f");
        char *total = num_or_dash (json_object_get (nd, "total_cores"), "%.0f");
        char *cores = xasprintf ("%s/%s", strcmp (used, "N/A") == 0 ? "-" : used, total);
        json_t *mu = json_object_get (nd, "memory_in_use_bytes");
        json_t *mt = json_object_get (nd, "memory_total_bytes");
        char *mem = json_is_integer (mt)
                        ? xasprintf ("%s/%s",
                                     json_is_integer (mu)
                                         ? output_size (json_integer_value (mu), b1, sizeof b1)
                                         : "-",
                                     output_size (json_integer_value (mt), b2, sizeof b2))
                        : xstrdup ("-");
        json_t *numa = json_object_get (nd, "numa_topology");
        char *nnuma = json_is_object (numa) ? xasprintf ("%zu", json_object_size (numa))
                                            : xstrdup ("-");
        json_t *gpus = json_object_get (nd, "gpu_info");
        char *ngpus = xasprintf ("%zu", json_array_size (gpus));
        const char *cells[] = {
            json_string_value (json_object_get (nd, "hostname")),
            json_string_value (json_object_get (nd, "status")),
            cores,
            mem,
            nnuma,
            ngpus,
            output_time (json_string_value (json_object_get (nd, "last_heartbeat")), tb,
                         sizeof tb),
        };
        output_table_add (t, cells);
        free (used);
        free (total);
        free (cores);
        free (mem);
        free (nnuma);
        free (ngpus);
    }
    output_table_print (t, stdout);
    output_table_destroy (t);
    json_decref (nodes);
    return CLI_OK;
}

static int cmd_health (struct cli *cli, int argc, char **argv)
{
    struct err e = { 0 };
    bool help = false;
    int n, rc;
    const char *pos[1] = { NULL };
    if (args_parse_simple (argc, argv, 0, 1, pos, &n, &cli->json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if (n == 1 && args_check_hostname ("hostname", pos[0], &e) < 0)
        return cli_usage_error (cli, e.text);
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    /* the hostname was checked to [A-Za-z0-9._-], which needs no URL escaping */
    char *path = n == 1 ? xasprintf (PATH_HEALTH "?hostname=%s", pos[0]) : xstrdup (PATH_HEALTH);
    struct http_resp r;
    rc = cli_call (cli, "GET", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r);
    free (path);
    if (rc != CLI_OK)
        return rc;
    json_t *h = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    if (!h)
        return CLI_FAIL;
    if (cli->json) {
        output_json (stdout, h);
        json_decref (h);
        return CLI_OK;
    }
    /* "nodes" is oldest first: one array of per-node samples per second */
    json_t *hist = json_object_get (h, "nodes");
    size_t nsamples = json_array_size (hist);
    json_t *latest = nsamples ? json_array_get (hist, nsamples - 1) : NULL;
    if (!json_array_size (latest)) {
        printf ("No health data yet.\n");
        json_decref (h);
        return CLI_OK;
    }
    static const char *const hdr[] = { "HOSTNAME", "STATUS",   "CPU%",          "MEM%",
                                       "MEM-USED", "AVG-TEMP", "MAX-TEMP",      "LAST-HEARTBEAT" };
    output_table_t *t = output_table_create (8, hdr);
    size_t i;
    json_t *s;
    json_array_foreach (latest, i, s)
    {
        char mb[16], tb[32];
        char *cpu = num_or_dash (json_object_get (s, "cpu_percent"), "%.1f");
        char *mem = num_or_dash (json_object_get (s, "memory_percent"), "%.1f");
        char *avg = num_or_dash (json_object_get (s, "current_avg_temp"), "%.1f");
        char *max = num_or_dash (json_object_get (s, "current_max_temp"), "%.1f");
        json_t *mu = json_object_get (s, "memory_used_bytes");
        const char *cells[] = {
            json_string_value (json_object_get (s, "hostname")),
            json_string_value (json_object_get (s, "status")),
            cpu,
            mem,
            json_is_integer (mu) ? output_size (json_integer_value (mu), mb, sizeof mb) : NULL,
            avg,
            max,
            output_time (json_string_value (json_object_get (s, "last_heartbeat")), tb,
                         sizeof tb),
        };
        output_table_add (t, cells);
        free (cpu);
        free (mem);
        free (avg);
        free (max);
    }
    output_table_print (t, stdout);
    output_table_destroy (t);
    json_t *aggs = json_object_get (h, "aggregate");
    json_t *agg = json_array_size (aggs) ? json_array_get (aggs, json_array_size (aggs) - 1)
                                         : NULL;
    if (n == 0 && json_is_object (agg)) {
        printf ("\nCluster: %" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
                " nodes online, %" JSON_INTEGER_FORMAT " cores, cpu %.1f%%, memory %.1f%%\n",
                json_integer_value (json_object_get (agg, "onlineNodes")),
                json_integer_value (json_object_get (agg, "totalNodes")),
                json_integer_value (json_object_get (agg, "totalCores")),
                json_number_value (json_object_get (agg, "avgCpuPercent")),
                json_number_value (json_object_get (agg, "avgMemPercent")));
    }
    json_decref (h);
    return CLI_OK;
}

static const struct cli_subcmd subcmds[] = {
    { "nodes", cmd_nodes },
    { "health", cmd_health },
    { "status", cli_cmd_status },
    { "kill", cli_cmd_kill },
    { "command", cli_cmd_command },
};

int cli_client_main (int argc, char **argv)
{
    return cli_dispatch (argc, argv, usage, subcmds, sizeof subcmds / sizeof subcmds[0]);
}
