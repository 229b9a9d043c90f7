/* cmd_vps.c - hakuriver.vps: submit (waits until the VPS answers over SSH), status, list,
 * kill, command pause|resume, connect (a terminal without SSH) */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/terminal.h"
#include "common/fileio.h"
#include "common/proto.h"
#include "common/sshkeys.h"
#include "common/xalloc.h"
#include "entry.h"

#define WAIT_POLL_S 0.5          /* how often `submit` asks whether the VPS runs yet */
#define WAIT_MAX_FAILURES 6      /* /status failures in a row before `submit` gives up */
#define KEY_FILE_MAX (256u << 10)

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver.vps [--config PATH] [--json] COMMAND [ARGS...]\n"
             "\n"
             "commands:\n"
             "  submit [OPTIONS]              start a VPS and wait until it answers over SSH\n"
             "  status                        the active VPS tasks (with their SSH ports)\n"
             "  list                          every VPS task, newest first\n"
             "  kill TASK_ID                  stop and remove a VPS\n"
             "  command TASK_ID pause|resume  freeze or thaw a VPS (it keeps its resources)\n"
             "  connect TASK_ID               a shell in the VPS through the host (no SSH\n"
             "                                needed; any image with /bin/sh)\n"
             "\n"
             "submit options:\n"
             "  --public-key-string KEY   authorized key (repeatable)\n"
             "  --public-key-file PATH    file of authorized keys, one per line (repeatable;\n"
             "                            default: ~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub)\n"
             "  --target HOST[:NUMA][::GPU[,GPU...]]   where to run it (default: automatic)\n"
             "  --cores N              cores to reserve (default 0: no reservation, no limit)\n"
             "  --memory SIZE          memory limit, e.g. 4G\n"
             "  --container NAME       container environment (needs sshd, see docs/vps.md)\n"
             "  --image REF            run Docker image REF directly instead\n"
             "  --privileged           run the container privileged (if the host allows it)\n"
             "  --mount HOST:CONT[:ro] extra bind mount (repeatable)\n"
             "  --retries N            start it again elsewhere (a new container) if its node\n"
             "                         is lost\n"
             "  --no-wait              return once the host accepted it\n"
             "\n"
             "options:\n"
             "  -c, --config PATH   configuration file (default: $HAKURIVER_CONFIG or\n"
             "                      ~/.hakuriver/config.toml)\n"
             "  --json              print the host's JSON instead of tables\n"
             "  -h, --help          show this help\n"
             "\n"
             "Reach a running VPS with `hakuriver.ssh TASK_ID` (through the host's SSH proxy)\n"
             "or `hakuriver.vps connect TASK_ID`. Exit status: 0 success, 1 failure (including\n"
             "a VPS that failed to start), 2 usage error.\n");
}

/* "~/x" -> "$HOME/x"; anything else copied. Caller frees. */
static char *expand_home (const char *path)
{
    const char *home = getenv ("HOME");
    if (path[0] == '~' && path[1] == '/' && home && *home)
        return xasprintf ("%s%s", home, path + 1);
    return xstrdup (path);
}

/* Appends the keys of one source (a string or a file's text) to KEYS, checked. Returns 0 or
 * -1 after printing what is wrong. */
static int add_keys (struct cli *cli, const char *what, const char *text, char **keys)
{
    struct err e = { 0 };
    if (sshkey_check_list (text, &e) < 0) {
        fprintf (stderr, "%s: error: %s: %s\n", cli->prog, what, e.text);
        return -1;
    }
    size_t len = strlen (text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    char *joined = xasprintf ("%s%s%.*s", *keys ? *keys : "", *keys ? "\n" : "", (int)len, text);
    free (*keys);
    *keys = joined;
    return 0;
}

static int read_key_file (struct cli *cli, const char *path, char **keys)
{
    char *full = expand_home (path);
    char *text = xmalloc (KEY_FILE_MAX + 1);
    int rc = -1;
    ssize_t len = fileio_read_text (full, text, KEY_FILE_MAX + 1);
    if (len < 0) {
        fprintf (stderr, "%s: error: --public-key-file %s: %s\n", cli->prog, full,
                 strerror (errno));
        goto out;
    }
    if ((size_t)len == KEY_FILE_MAX) {
        fprintf (stderr, "%s: error: --public-key-file %s: larger than %u bytes\n", cli->prog,
                 full, KEY_FILE_MAX);
        goto out;
    }
    if (strlen (text) != (size_t)len) {
        fprintf (stderr, "%s: error: --public-key-file %s: not a text file\n", cli->prog, full);
        goto out;
    }
    char *what = xasprintf ("--public-key-file %s", full);
    rc = add_keys (cli, what, text, keys);
    free (what);
out:
    free (text);
    free (full);
    return rc;
}

/* The keys of the submit: the options, or the user's default public key. Returns a new
 * string (one key per line) or NULL after printing why. */
static char *collect_keys (struct cli *cli, const struct args_submit *o)
{
    char *keys = NULL;
    for (size_t i = 0; i < o->nkeys; i++)
        if (add_keys (cli, "--public-key-string", o->keys[i], &keys) < 0)
            goto fail;
    for (size_t i = 0; i < o->nkey_files; i++)
        if (read_key_file (cli, o->key_files[i], &keys) < 0)
            goto fail;
    if (keys)
        return keys;
    static const char *const defaults[] = { "~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub" };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        char *full = expand_home (defaults[i]);
        bool readable = access (full, R_OK) == 0;
        free (full);
        if (readable) {
            if (read_key_file (cli, defaults[i], &keys) < 0)
                goto fail;
            return keys;
        }
    }
    fprintf (stderr, "%s: error: no SSH public key given: use --public-key-string, "
                     "--public-key-file, or create ~/.ssh/id_ed25519.pub (ssh-keygen -t "
                     "ed25519)\n", cli->prog);
    return NULL;
fail:
    free (keys);
    return NULL;
}

static void print_how_to_connect (const char *id, const json_t *task)
{
    const json_t *port = json_object_get (task, "ssh_port");
    printf ("VPS %s is running on %s", id,
            json_string_value (json_object_get (task, "assigned_node"))
                ? json_string_value (json_object_get (task, "assigned_node"))
                : "?");
    if (json_is_integer (port))
        printf (" (SSH port %" JSON_INTEGER_FORMAT ")", json_integer_value (port));
    printf (".\nConnect with:  hakuriver.ssh %s\n          or:  hakuriver.vps connect %s\n", id,
            id);
}

/* Polls /status/ID until the VPS runs (0) or is final (1). */
static int wait_running (struct cli *cli, const char *id, json_t **task_out)
{
    char *path = xasprintf (PATH_STATUS "%s", id);
    int failures = 0, rc = CLI_FAIL;
    bool said_queued = false, said_pending = false;
    for (;;) {
        struct http_resp r;
        bool last_try = failures + 1 >= WAIT_MAX_FAILURES;
        if (cli_call (cli, "GET", path, NULL, HTTP_CLIENT_STATUS_TIMEOUT, !last_try, &r)
            != CLI_OK) {
            if (last_try)
                break;
            failures++;
            cli_sleep (WAIT_POLL_S * 2);
            continue;
        }
        failures = 0;
        json_t *t = json_loadb (r.body, r.len, 0, NULL);
        http_resp_free (&r);
        const char *st = json_string_value (json_object_get (t, "status"));
        if (!st) {
            json_decref (t);
            fprintf (stderr, "%s: error: the host's reply has no status\n", cli->prog);
            break;
        }
        if (strcmp (st, ST_RUNNING) == 0 || strcmp (st, ST_PAUSED) == 0) {
            *task_out = t;
            rc = CLI_OK;
            break;
        }
        if (cli_status_is_final (st)) {
            *task_out = t;
            break;
        }
        if (!cli->json && strcmp (st, ST_QUEUED) == 0 && !said_queued) {
            fprintf (stderr, "VPS %s is queued: waiting for a node with the resources it "
                             "asks for...\n", id);
            said_queued = true;
        } else if (!cli->json && (strcmp (st, ST_PENDING) == 0 || strcmp (st, ST_ASSIGNING) == 0)
                   && !said_pending) {
            fprintf (stderr, "VPS %s is starting on %s; waiting for its SSH server...\n", id,
                     json_string_value (json_object_get (t, "assigned_node"))
                         ? json_string_value (json_object_get (t, "assigned_node"))
                         : "its node");
            said_pending = true;
        }
        json_decref (t);
        cli_sleep (WAIT_POLL_S);
    }
    free (path);
    return rc;
}

static int cmd_submit (struct cli *cli, int argc, char **argv)
{
    struct args_submit o;
    struct err e = { 0 };
    json_t *body = NULL, *reply = NULL, *task = NULL;
    char *keys = NULL;
    struct http_resp r;
    int rc;
    if (args_parse_vps_submit (argc, argv, &o, &e) < 0) {
        rc = cli_usage_error (cli, e.text);
        goto out;
    }
    if (o.help) {
        usage (stdout);
        rc = CLI_OK;
        goto out;
    }
    cli->json |= o.json;
    if (!(keys = collect_keys (cli, &o))) {
        rc = CLI_FAIL;
        goto out;
    }
    if ((rc = cli_open (cli)) != CLI_OK)
        goto out;
    body = args_submit_body (&o);
    json_object_set_new (body, "command", json_string (keys));
    if ((rc = cli_call (cli, "POST", PATH_SUBMIT, body, HTTP_CLIENT_TIMEOUT, false, &r)) != CLI_OK)
        goto out;
    reply = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    const char *id = json_string_value (json_array_get (json_object_get (reply, "task_ids"), 0));
    if (!id) {
        fprintf (stderr, "%s: error: the host accepted no VPS task\n", cli->prog);
        if (reply)
            output_json (stderr, reply);
        rc = CLI_FAIL;
        goto out;
    }
    if (o.no_wait) {
        if (cli->json)
            output_json (stdout, reply);
        else
            printf ("Host accepted VPS submission. Created Task ID: %s\n", id);
        rc = CLI_OK;
        goto out;
    }
    if (!cli->json)
        fprintf (stderr, "Host accepted VPS submission. Created Task ID: %s\n", id);
    rc = wait_running (cli, id, &task);
    if (cli->json && task)
        output_json (stdout, task);
    else if (rc == CLI_OK)
        print_how_to_connect (id, task);
    else if (task) {
        const char *msg = json_string_value (json_object_get (task, "error_message"));
        char *clean = output_clean (msg ? msg : "(no reason given)");
        fprintf (stderr, "%s: error: VPS %s is %s: %s\n", cli->prog, id,
                 json_string_value (json_object_get (task, "status")), clean);
        free (clean);
    }
out:
    json_decref (task);
    json_decref (reply);
    json_decref (body);
    free (keys);
    args_submit_free (&o);
    return rc;
}

/* status (active, /vps/status) and list (all, /vps) */
static int list_vps (struct cli *cli, int argc, char **argv, const char *path)
{
    bool json = false, help = false;
    struct err e = { 0 };
    int npos;
    if (args_parse_simple (argc, argv, 0, 0, NULL, &npos, &json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    cli->json |= json;
    int rc;
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    struct http_resp r;
    if ((rc = cli_call (cli, "GET", path, NULL, HTTP_CLIENT_TIMEOUT, false, &r)) != CLI_OK)
        return rc;
    json_t *arr = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    if (!json_is_array (arr)) {
        json_decref (arr);
        fprintf (stderr, "%s: error: the host's reply is not a list\n", cli->prog);
        return CLI_FAIL;
    }
    if (cli->json) {
        output_json (stdout, arr);
        json_decref (arr);
        return CLI_OK;
    }
    static const char *const hdr[] = { "TASK ID", "STATUS", "NODE", "SSH PORT", "CORES",
                                       "MEMORY", "GPUS", "SUBMITTED", "STARTED" };
    output_table_t *t = output_table_create (9, hdr);
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v)
    {
        char *id = output_scalar (json_object_get (v, "task_id"));
        const char *st = json_string_value (json_object_get (v, "status"));
        json_t *port = json_object_get (v, "ssh_port");
        char *ports = st && (strcmp (st, ST_RUNNING) == 0 || strcmp (st, ST_PAUSED) == 0)
                          ? output_scalar (port)
                          : NULL;
        char *cores = output_scalar (json_object_get (v, "required_cores"));
        char mem[32] = "-", sub[32], start[32];
        json_t *jm = json_object_get (v, "required_memory_bytes");
        if (json_is_integer (jm))
            output_size (json_integer_value (jm), mem, sizeof mem);
        char *gpus = json_array_size (json_object_get (v, "required_gpus"))
                         ? json_dumps (json_object_get (v, "required_gpus"), JSON_COMPACT)
                         : NULL;
        const char *cells[] = {
            id, st, json_string_value (json_object_get (v, "assigned_node")), ports, cores, mem,
            gpus,
            output_time (json_string_value (json_object_get (v, "submitted_at")), sub,
                         sizeof sub),
            output_time (json_string_value (json_object_get (v, "started_at")), start,
                         sizeof start),
        };
        output_table_add (t, cells);
        free (id);
        free (ports);
        free (cores);
        free (gpus);
    }
    if (json_array_size (arr) == 0)
        printf ("No VPS tasks.\n");
    else
        output_table_print (t, stdout);
    output_table_destroy (t);
    json_decref (arr);
    return CLI_OK;
}

static int cmd_status (struct cli *cli, int argc, char **argv)
{
    return list_vps (cli, argc, argv, PATH_VPS_STATUS);
}

static int cmd_list (struct cli *cli, int argc, char **argv)
{
    return list_vps (cli, argc, argv, PATH_VPS);
}

static int cmd_connect (struct cli *cli, int argc, char **argv)
{
    const char *pos[1];
    int npos;
    bool json = false, help = false;
    uint64_t id;
    struct err e = { 0 };
    if (args_parse_simple (argc, argv, 1, 1, pos, &npos, &json, &help, &e) < 0)
        return cli_usage_error (cli, e.text);
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if (args_parse_task_id (pos[0], &id, &e) < 0)
        return cli_usage_error (cli, e.text);
    int rc = cli_open (cli);
    if (rc != CLI_OK)
        return rc;
    return cli_terminal_connect (cli, id, "VPS");
}

static const struct cli_subcmd cmds[] = {
    { "submit", cmd_submit },   { "status", cmd_status },       { "list", cmd_list },
    { "kill", cli_cmd_kill },   { "command", cli_cmd_command }, { "connect", cmd_connect },
};

int cli_vps_main (int argc, char **argv)
{
    return cli_dispatch (argc, argv, usage, cmds, sizeof cmds / sizeof cmds[0]);
}
