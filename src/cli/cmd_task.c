/* cmd_task.c - hakuriver.task: submit (with --wait), status, stdout, stderr, kill, command, list,
 * connect */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/terminal.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"

/* --wait gives up on a task after this many /status failures in a row (about 3 poll
 * intervals plus timeouts): enough to ride out a host restart's first seconds. */
#define WAIT_MAX_FAILURES 4

/* COMMAND column width in `list`: a long command line would push every row off screen. */
#define LIST_COMMAND_WIDTH 60

/* `submit --sweep` lists the new task IDs up to this many; above, only the count and batch. */
#define SWEEP_LIST_MAX 20

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver.task [--config PATH] [--json] COMMAND [ARGS...]\n"
             "\n"
             "commands:\n"
             "  submit [OPTIONS] [--] COMMAND [ARGS...]   submit a command task (one per target)\n"
             "  status TASK_ID                            show one task\n"
             "  stdout TASK_ID [--tail BYTES]             print the task's standard output\n"
             "  stderr TASK_ID [--tail BYTES]             print the task's standard error\n"
             "  kill TASK_ID | --batch BATCH_ID           kill a task, or every unfinished\n"
             "                                            task of a batch (a sweep)\n"
             "  command TASK_ID pause|resume              pause or resume a running task\n"
             "  list [--status S[,S]] [--node H] [--batch ID] [--limit N] [--all]\n"
             "                                            list tasks, newest first\n"
             "  connect TASK_ID                           open a shell in the container of a\n"
             "                                            running Docker task (exit status:\n"
             "                                            the shell's; see docs/terminal.md)\n"
             "\n"
             "submit options:\n"
             "  --target HOST[:NUMA][::GPU[,GPU...]]   run on HOST (repeat for one task per\n"
             "                                          target); none = automatic placement\n"
             "  --cores N              cores to reserve (default 1; 0 = no reservation)\n"
             "  --memory SIZE          memory limit, e.g. 512M, 4G (1000-based; KiB/MiB/GiB 1024)\n"
             "  --env KEY=VALUE        environment variable (repeatable)\n"
             "  --container NAME       container environment (NULL = run natively; default:\n"
             "                         the host's [docker] default_container_name)\n"
             "  --image REF            run Docker image REF directly (pulled if missing), no\n"
             "                         environment tarball\n"
             "  --privileged           run the container privileged\n"
             "  --mount HOST:CONT[:ro] extra bind mount (repeatable; replaces the defaults)\n"
             "  --retries N            requeue up to N times if the node is lost\n"
             "  --sweep                expand span:{A..B} and span:[X,Y,...] arguments on the\n"
             "                         host: one task per combination, all in one batch\n"
             "                         (see docs/hakurun.md; quote them for the shell)\n"
             "  --max-running N        at most N tasks of the batch run at once; the rest\n"
             "                         wait without holding up other tasks\n"
             "  --wait                 wait until every task is final; exit 0 only if all\n"
             "                         completed\n"
             "  --poll-interval SEC    --wait polling period (default 1, fractions allowed)\n"
             "  The command starts at the first word that is not an option, or after `--`.\n"
             "\n"
             "options:\n"
             "  -c, --config PATH   configuration file (default: $HAKURIVER_CONFIG or\n"
             "                      ~/.hakuriver/config.toml)\n"
             "  --json              print the host's JSON instead of tables\n"
             "  -h, --help          show this help\n"
             "\n"
             "The API token comes from [auth] api_token in the config or $HAKURIVER_TOKEN.\n"
             "Exit status: 0 success, 1 failure (host error, unreachable, task not completed\n"
             "with --wait), 2 usage error.\n");
}

static void print_clean_line (FILE *out, const char *fmt_prefix, const char *a, const char *b)
{
    char *ca = output_clean (a), *cb = output_clean (b);
    fprintf (out, fmt_prefix, ca, cb);
    free (ca);
    free (cb);
}

struct waited {
    const char *id;
    json_t *task; /* final task object, NULL while waiting */
    int failures;
};

/* Polls GET /status/<id> for every task until all are final. Returns CLI_OK when every task
 * completed, CLI_FAIL otherwise (including a /status failing WAIT_MAX_FAILURES times). */
static int wait_tasks (struct cli *cli, const json_t *ids, double interval, json_t *finals)
{
    size_t n = json_array_size (ids), pending = n;
    struct waited *w = xcalloc (n, sizeof *w);
    int rc = CLI_OK;
    for (size_t i = 0; i < n; i++)
        w[i].id = json_string_value (json_array_get (ids, i));
    while (pending) {
        for (size_t i = 0; i < n; i++) {
            if (w[i].task)
                continue;
            char *path = xasprintf (PATH_STATUS "%s", w[i].id);
            struct http_resp r;
            bool last_try = w[i].failures + 1 >= WAIT_MAX_FAILURES;
            int crc = cli_call (cli, "GET", path, NULL, HTTP_CLIENT_STATUS_TIMEOUT, !last_try, &r);
            free (path);
            json_t *t = crc == CLI_OK ? json_loadb (r.body, r.len, 0, NULL) : NULL;
            if (crc == CLI_OK)
                http_resp_free (&r);
            const char *st = json_string_value (json_object_get (t, "status"));
            if (!st) {
                json_decref (t);
                if (++w[i].failures >= WAIT_MAX_FAILURES) {
                    fprintf (stderr, "error: cannot get the status of task %s; giving up\n",
                             w[i].id);
                    rc = CLI_FAIL;
                    goto out;
                }
                continue;
            }
            w[i].failures = 0;
            if (!cli_status_is_final (st)) {
                json_decref (t);
                continue;
            }
            w[i].task = t;
            pending--;
            if (!cli->json)
                print_clean_line (stdout, "Task %s: %s\n", w[i].id, st);
            if (strcmp (st, ST_COMPLETED) != 0)
                rc = CLI_FAIL;
            /* 0.3 spaces its requests out when many tasks are pending */
            if (pending > 5)
                cli_sleep (0.05);
        }
        if (pending)
            cli_sleep (interval);
    }
    if (rc != CLI_OK)
        fprintf (stderr, "One or more tasks did not complete successfully.\n");
out:
    for (size_t i = 0; i < n; i++)
        if (w[i].task)
            json_array_append_new (finals, w[i].task);
    free (w);
    return rc;
}

static int cmd_submit (struct cli *cli, int argc, char **argv)
{
    struct args_submit o;
    struct err e = { 0 };
    json_t *body = NULL, *reply = NULL;
    struct http_resp r;
    int rc;
    if (args_parse_submit (argc, argv, &o, &e) < 0) {
        rc = cli_usage_error (cli, e.text);
        goto out;
    }
    if (o.help) {
        usage (stdout);
        rc = CLI_OK;
        goto out;
    }
    cli->json |= o.json;
    if ((rc = cli_open (cli)) != CLI_OK)
        goto out;
    body = args_submit_body (&o);
    if ((rc = cli_call (cli, "POST", PATH_SUBMIT, body, HTTP_CLIENT_TIMEOUT, false, &r)) != CLI_OK)
        goto out;
    reply = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    if (!reply) {
        rc = CLI_FAIL;
        goto out;
    }
    json_t *ids = json_object_get (reply, "task_ids");
    json_t *failed = json_object_get (reply, "failed_targets");
    size_t nids = json_array_size (ids);
    for (size_t i = 0; i < nids; i++)
        if (!json_is_string (json_array_get (ids, i))) {
            fprintf (stderr, "error: the host's reply has a task ID that is not a string\n");
            rc = CLI_FAIL;
            goto out;
        }
    if (cli->json && !o.wait)
        output_json (stdout, reply);
    if (!cli->json && o.sweep && nids > SWEEP_LIST_MAX) {
        char n[24];
        snprintf (n, sizeof n, "%zu", nids);
        print_clean_line (stdout, "Submitted %s tasks in batch %s\n", n,
                          json_string_value (json_object_get (reply, "batch_id")));
        print_clean_line (stdout, "(list them with: hakuriver.task list --batch %s --all%s)\n",
                          json_string_value (json_object_get (reply, "batch_id")), "");
    } else if (!cli->json) {
        for (size_t i = 0; i < nids; i++)
            print_clean_line (stdout, "Submitted task %s%s\n",
                              json_string_value (json_array_get (ids, i)), "");
        if (nids > 1)
            print_clean_line (stdout, "Batch %s%s\n",
                              json_string_value (json_object_get (reply, "batch_id")), "");
    }
    size_t i;
    json_t *f;
    json_array_foreach (failed, i, f)
    {
        char *target = output_scalar (json_object_get (f, "target"));
        char *reason = output_scalar (json_object_get (f, "reason"));
        print_clean_line (stderr, "Target %s failed: %s\n", target ? target : "?",
                          reason ? reason : "unknown reason");
        free (target);
        free (reason);
    }
    if (nids == 0) {
        fprintf (stderr, "error: the host created no task\n");
        rc = CLI_FAIL;
        goto out;
    }
    /* a partly failed batch is a failure: the caller asked for every target */
    rc = json_array_size (failed) ? CLI_FAIL : CLI_OK;
    if (o.wait) {
        json_t *finals = json_array ();
        int wrc = wait_tasks (cli, ids, o.poll_interval, finals);
        if (cli->json) {
            json_t *all = json_pack ("{s:O,s:o}", "submit", reply, "tasks", finals);
            output_json (stdout, all);
            json_decref (all);
        } else
            json_decref (finals);
        if (wrc != CLI_OK)
            rc = wrc;
    }
out:
    json_decref (reply);
    json_decref (body);
    args_submit_free (&o);
    return rc;
}

static int cmd_log (struct cli *cli, int argc, char **argv)
{
    struct err e = { 0 };
    bool help = false;
    uint64_t id = 0;
    int64_t tail;
    int rc;
    if (args_parse_log (argc, argv, &id, &tail, &cli->json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    char *path = tail >= 0 ? xasprintf (PATH_TASK_LOG "%" PRIu64 "/%s?tail=%" PRId64, id,
                                        argv[0], tail)
                           : xasprintf (PATH_TASK_LOG "%" PRIu64 "/%s", id, argv[0]);
    rc = cli_get_to (cli, path, HTTP_CLIENT_TIMEOUT, stdout);
    free (path);
    if (fflush (stdout) != 0 || ferror (stdout)) {
        fprintf (stderr, "error: cannot write the output: %s\n", strerror (errno));
        rc = CLI_FAIL;
    }
    return rc;
}

/* Copies at most WIDTH characters of S (UTF-8 aware), ending in "..." when cut. */
static char *ellipsize (const char *s, size_t width)
{
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (chars == width - 3) {
                size_t k = i, rest = 0;
                for (; s[k]; k++)
                    rest += ((unsigned char)s[k] & 0xc0) != 0x80;
                if (rest > 3)
                    return xasprintf ("%.*s...", (int)i, s);
                break;
            }
            chars++;
        }
    }
    return xstrdup (s);
}

static int cmd_list (struct cli *cli, int argc, char **argv)
{
    struct args_list o;
    struct err e = { 0 };
    int rc;
    if (args_parse_list (argc, argv, &o, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (o.help) {
        usage (stdout);
        return CLI_OK;
    }
    cli->json |= o.json;
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    json_t *tasks = json_array ();
    uint64_t before = 0;
    bool more = false;
    for (;;) {
        char *path = args_list_path (&o, before);
        struct http_resp r;
        rc = cli_call (cli, "GET", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r);
        free (path);
        if (rc != CLI_OK)
            goto out;
        json_t *page = cli_parse_reply (cli, &r);
        if (!json_is_array (page)) {
            if (page)
                fprintf (stderr, "error: the host's task list is not an array\n");
            json_decref (page);
            http_resp_free (&r);
            rc = CLI_FAIL;
            goto out;
        }
        json_array_extend (tasks, page);
        json_decref (page);
        uint64_t next = 0;
        more = false;
        if (r.next_before && args_parse_task_id (r.next_before, &next, NULL) == 0 && next
            && (before == 0 || next < before))
            more = true;
        http_resp_free (&r);
        if (!more || !o.all)
            break;
        before = next;
    }
    if (cli->json) {
        output_json (stdout, tasks);
        goto out;
    }
    if (!json_array_size (tasks)) {
        printf ("No tasks.\n");
        goto out;
    }
    static const char *const hdr[] = { "TASK_ID", "STATUS",    "NODE",   "CORES",
                                       "EXIT",    "SUBMITTED", "COMMAND" };
    output_table_t *t = output_table_create (7, hdr);
    size_t i;
    json_t *task;
    json_array_foreach (tasks, i, task)
    {
        char tb[32];
        char *id = output_scalar (json_object_get (task, "task_id"));
        char *cores = output_scalar (json_object_get (task, "required_cores"));
        char *exit_code = output_scalar (json_object_get (task, "exit_code"));
        char *line = output_command_line (json_object_get (task, "command"),
                                          json_object_get (task, "arguments"));
        char *shortl = ellipsize (line, LIST_COMMAND_WIDTH);
        const char *cells[] = {
            id,
            json_string_value (json_object_get (task, "status")),
            json_string_value (json_object_get (task, "assigned_node")),
            cores,
            exit_code,
            output_time (json_string_value (json_object_get (task, "submitted_at")), tb,
                         sizeof tb),
            shortl,
        };
        output_table_add (t, cells);
        free (id);
        free (cores);
        free (exit_code);
        free (line);
        free (shortl);
    }
    output_table_print (t, stdout);
    output_table_destroy (t);
    if (more && !o.all)
        fprintf (stderr, "(more tasks match: use --limit N or --all to see them)\n");
out:
    json_decref (tasks);
    return rc;
}

/* kill TASK_ID as hakuriver.client does, or kill --batch BATCH_ID (POST /kill_batch/ID). */
static int cmd_kill (struct cli *cli, int argc, char **argv)
{
    struct err e = { 0 };
    bool help = false;
    uint64_t id, batch;
    int rc;
    if (args_parse_kill (argc, argv, &id, &batch, &cli->json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if (!batch)
        return cli_cmd_kill (cli, argc, argv);
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    char *path = xasprintf (PATH_KILL_BATCH "%" PRIu64, batch);
    struct http_resp r;
    rc = cli_call (cli, "POST", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r);
    free (path);
    if (rc != CLI_OK)
        return rc;
    json_t *j = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    if (!j)
        return CLI_FAIL;
    const char *msg = json_string_value (json_object_get (j, "message"));
    if (cli->json || !msg)
        output_json (stdout, j);
    else
        print_clean_line (stdout, "%s%s\n", msg, "");
    json_decref (j);
    return CLI_OK;
}

/* connect TASK_ID: a shell in the task's container through the host and its runner. */
static int cmd_connect (struct cli *cli, int argc, char **argv)
{
    struct err e = { 0 };
    const char *pos[1];
    int npos = 0, rc;
    bool help = false, json = false;
    uint64_t id;
    if (args_parse_simple (argc, argv, 1, 1, pos, &npos, &json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if (json)
        return cli_usage_error (cli, "connect has no --json output");
    if (args_parse_task_id (pos[0], &id, &e) < 0)
        return cli_usage_error (cli, e.text);
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    return cli_terminal_connect (cli, id, "task");
}

static const struct cli_subcmd subcmds[] = {
    { "submit", cmd_submit },       { "status", cli_cmd_status }, { "stdout", cmd_log },
    { "stderr", cmd_log },          { "kill", cmd_kill },         { "command", cli_cmd_command },
    { "list", cmd_list },           { "connect", cmd_connect },
};

int cli_task_main (int argc, char **argv)
{
    return cli_dispatch (argc, argv, usage, subcmds, sizeof subcmds / sizeof subcmds[0]);
}
