/* cmd_docker.c - hakuriver.docker: host-side environment containers and their tarballs */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"

/* create-container may pull or import an image and create-tar commits and saves a whole
 * file system: both can take minutes (0.3 allowed 210 s; large CUDA images need more). */
#define DOCKER_LONG_TIMEOUT 600

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver.docker [--config PATH] [--json] COMMAND [ARGS...]\n"
             "\n"
             "Environment containers live on the host; `create-tar` packages one into\n"
             "<shared_dir>/<container_dir>/NAME-<timestamp>.tar, which runners load for\n"
             "tasks submitted with --container NAME.\n"
             "\n"
             "commands:\n"
             "  list-containers                    the host's environment containers\n"
             "  create-container IMAGE NAME [--rootfs-tar PATH]\n"
             "                                     create and start environment NAME from\n"
             "                                     IMAGE (local, else pulled); with\n"
             "                                     --rootfs-tar, import PATH (a root file\n"
             "                                     system tarball on the host) as IMAGE first\n"
             "  start-container NAME               start a stopped environment container\n"
             "  stop-container NAME                stop it (its files are kept)\n"
             "  delete-container NAME              delete it (its tarballs are kept)\n"
             "  create-tar NAME                    commit NAME and save it as its new tarball\n"
             "                                     (older tarballs of NAME are deleted)\n"
             "  list-tars                          the tarballs in the shared directory\n"
             "  delete-tar NAME                    delete every tarball of NAME\n"
             "\n"
             "options:\n"
             "  -c, --config PATH   configuration file (default: $HAKURIVER_CONFIG or\n"
             "                      ~/.hakuriver/config.toml)\n"
             "  --json              print the host's JSON instead of tables\n"
             "  -h, --help          show this help\n"
             "\n"
             "Use hakuriver.docker-shell NAME to open a shell in an environment container.\n"
             "The API token comes from [auth] api_token in the config or $HAKURIVER_TOKEN.\n"
             "Exit status: 0 success, 1 failure (host error or unreachable), 2 usage error.\n");
}

/* Percent-encodes S for one URL path segment. Caller frees. */
static char *escape_segment (const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc (strlen (s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum (c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Parses a subcommand with NPOS positionals only. Returns -1 when done (*rc set). */
static int simple_args (struct cli *cli, int argc, char **argv, int npos, const char **pos,
                        int *rc)
{
    struct err e = { 0 };
    bool help = false;
    int n = 0;
    if (args_parse_simple (argc, argv, npos, npos, pos, &n, &cli->json, &help, &e) < 0) {
        *rc = cli_usage_error (cli, e.text);
        return -1;
    }
    if (help) {
        usage (stdout);
        *rc = CLI_OK;
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!*pos[i]) {
            *rc = cli_usage_error (cli, "an environment name must not be empty");
            return -1;
        }
    return 0;
}

/* Sends the request and parses the JSON reply into *OUT. Returns an exit code. */
static int call (struct cli *cli, const char *method, const char *path, const json_t *body,
                 long timeout_s, json_t **out)
{
    int rc;
    *out = NULL;
    if ((rc = cli_open (cli)) != CLI_OK)
        return rc;
    struct http_resp r;
    if ((rc = cli_call (cli, method, path, body, timeout_s, false, &r)) != CLI_OK)
        return rc;
    *out = cli_parse_reply (cli, &r);
    http_resp_free (&r);
    return *out ? CLI_OK : CLI_FAIL;
}

/* Prints the reply's "message" (or the JSON with --json, or when there is none). */
static void print_message (struct cli *cli, const json_t *j)
{
    const char *msg = json_string_value (json_object_get (j, "message"));
    if (cli->json || !msg) {
        output_json (stdout, j);
        return;
    }
    char *clean = output_clean (msg);
    printf ("%s\n", clean);
    free (clean);
}

/* start-container, stop-container, delete-container, create-tar, delete-tar: POST PREFIX/NAME */
static int name_command (struct cli *cli, int argc, char **argv, const char *prefix,
                         long timeout_s)
{
    const char *pos[1];
    int rc;
    if (simple_args (cli, argc, argv, 1, pos, &rc) < 0)
        return rc;
    char *name = escape_segment (pos[0]);
    char *path = xasprintf ("%s%s", prefix, name);
    free (name);
    json_t *j;
    rc = call (cli, "POST", path, NULL, timeout_s, &j);
    free (path);
    if (rc != CLI_OK)
        return rc;
    print_message (cli, j);
    const char *tar = json_string_value (json_object_get (j, "tarball_path"));
    if (!cli->json && tar)
        output_kv (stdout, "tarball", tar);
    json_decref (j);
    return CLI_OK;
}

static int cmd_start (struct cli *cli, int argc, char **argv)
{
    return name_command (cli, argc, argv, "/docker/host/start/", HTTP_CLIENT_TIMEOUT);
}

static int cmd_stop (struct cli *cli, int argc, char **argv)
{
    return name_command (cli, argc, argv, "/docker/host/stop/", HTTP_CLIENT_TIMEOUT);
}

static int cmd_delete (struct cli *cli, int argc, char **argv)
{
    return name_command (cli, argc, argv, "/docker/host/delete/", HTTP_CLIENT_TIMEOUT);
}

static int cmd_create_tar (struct cli *cli, int argc, char **argv)
{
    return name_command (cli, argc, argv, "/docker/create_tar/", DOCKER_LONG_TIMEOUT);
}

static int cmd_delete_tar (struct cli *cli, int argc, char **argv)
{
    return name_command (cli, argc, argv, "/docker/delete_tar/", HTTP_CLIENT_TIMEOUT);
}

static int cmd_create (struct cli *cli, int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL }, *rootfs = NULL;
    int n = 0;
    bool help = false, dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp (a, "--") == 0)
            dashdash = true;
        else if (!dashdash && strcmp (a, "--json") == 0)
            cli->json = true;
        else if (!dashdash && (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0))
            help = true;
        else if (!dashdash && strncmp (a, "--rootfs-tar=", 13) == 0)
            rootfs = a + 13;
        else if (!dashdash && strcmp (a, "--rootfs-tar") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error (cli, "create-container: option --rootfs-tar needs a "
                                             "path");
            rootfs = argv[++i];
        } else if (!dashdash && a[0] == '-' && a[1]) {
            char *msg = xasprintf ("create-container: unknown option `%s`", a);
            int rc = cli_usage_error (cli, msg);
            free (msg);
            return rc;
        } else if (n < 2)
            pos[n++] = a;
        else if (!help) {
            char *msg = xasprintf ("create-container: unexpected argument `%s`", a);
            int rc = cli_usage_error (cli, msg);
            free (msg);
            return rc;
        }
    }
    if (help) {
        usage (stdout);
        return CLI_OK;
    }
    if (n < 2)
        return cli_usage_error (cli, "create-container: expected IMAGE and NAME");
    if (!*pos[0] || !*pos[1])
        return cli_usage_error (cli, "create-container: IMAGE and NAME must not be empty");
    if (rootfs && !*rootfs)
        return cli_usage_error (cli, "create-container: --rootfs-tar needs a non-empty path");
    /* the host opens the file: a relative path means the caller's working directory */
    char *abs = NULL;
    if (rootfs && rootfs[0] != '/') {
        char cwd[4096];
        if (!getcwd (cwd, sizeof cwd))
            return cli_usage_error (cli, "create-container: --rootfs-tar: cannot resolve a "
                                         "relative path (give an absolute one)");
        abs = xasprintf ("%s/%s", cwd, rootfs);
        rootfs = abs;
    }
    json_t *body = json_pack ("{s:s, s:s}", "image_name", pos[0], "container_name", pos[1]);
    if (rootfs)
        json_object_set_new (body, "rootfs_tar", json_string (rootfs));
    free (abs);
    json_t *j;
    int rc = call (cli, "POST", "/docker/host/create", body, DOCKER_LONG_TIMEOUT, &j);
    json_decref (body);
    if (rc != CLI_OK)
        return rc;
    print_message (cli, j);
    json_decref (j);
    return CLI_OK;
}

static int cmd_list_containers (struct cli *cli, int argc, char **argv)
{
    const char *pos[1];
    int rc;
    if (simple_args (cli, argc, argv, 0, pos, &rc) < 0)
        return rc;
    json_t *list;
    if ((rc = call (cli, "GET", "/docker/host/containers", NULL, HTTP_CLIENT_TIMEOUT, &list))
        != CLI_OK)
        return rc;
    if (cli->json) {
        output_json (stdout, list);
    } else if (!json_array_size (list)) {
        printf ("No environment containers. Create one with `hakuriver.docker "
                "create-container IMAGE NAME`.\n");
    } else {
        static const char *const hdr[] = { "NAME", "STATE", "STATUS", "IMAGE", "ID" };
        output_table_t *t = output_table_create (5, hdr);
        size_t i;
        json_t *c;
        json_array_foreach (list, i, c)
        {
            const char *cells[] = {
                json_string_value (json_object_get (c, "name")),
                json_string_value (json_object_get (c, "state")),
                json_string_value (json_object_get (c, "status")),
                json_string_value (json_object_get (c, "image")),
                json_string_value (json_object_get (c, "id")),
            };
            output_table_add (t, cells);
        }
        output_table_print (t, stdout);
        output_table_destroy (t);
    }
    json_decref (list);
    return CLI_OK;
}

static int cmd_list_tars (struct cli *cli, int argc, char **argv)
{
    const char *pos[1];
    int rc;
    if (simple_args (cli, argc, argv, 0, pos, &rc) < 0)
        return rc;
    json_t *tars;
    if ((rc = call (cli, "GET", "/docker/list", NULL, HTTP_CLIENT_TIMEOUT, &tars)) != CLI_OK)
        return rc;
    if (cli->json) {
        output_json (stdout, tars);
    } else if (!json_object_size (tars)) {
        printf ("No environment tarballs. Make one with `hakuriver.docker create-tar NAME`.\n");
    } else {
        static const char *const hdr[] = { "NAME", "CREATED", "SIZE", "VERSIONS", "TARBALL" };
        output_table_t *t = output_table_create (5, hdr);
        const char *name;
        json_t *v;
        json_object_foreach (tars, name, v)
        {
            char when[32] = "-", size[16] = "-";
            json_t *ts = json_object_get (v, "latest_timestamp");
            if (json_is_integer (ts)) {
                time_t tt = (time_t)json_integer_value (ts);
                struct tm tm;
                if (localtime_r (&tt, &tm))
                    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            }
            json_t *sz = json_object_get (v, "latest_size_bytes");
            if (json_is_integer (sz))
                output_size (json_integer_value (sz), size, sizeof size);
            char *nver = xasprintf ("%zu", json_array_size (json_object_get (v, "all_versions")));
            const char *cells[] = {
                name, when, size, nver,
                json_string_value (json_object_get (v, "latest_tarball")),
            };
            output_table_add (t, cells);
            free (nver);
        }
        output_table_print (t, stdout);
        output_table_destroy (t);
    }
    json_decref (tars);
    return CLI_OK;
}

static const struct cli_subcmd subcmds[] = {
    { "list-containers", cmd_list_containers },
    { "create-container", cmd_create },
    { "start-container", cmd_start },
    { "stop-container", cmd_stop },
    { "delete-container", cmd_delete },
    { "create-tar", cmd_create_tar },
    { "list-tars", cmd_list_tars },
    { "delete-tar", cmd_delete_tar },
};

int cli_docker_main (int argc, char **argv)
{
    return cli_dispatch (argc, argv, usage, subcmds, sizeof subcmds / sizeof subcmds[0]);
}
