/* cmd_docker_shell.c - hakuriver.docker-shell: an interactive terminal into a host environment
 * container, over the host's WebSocket /docker/host/containers/NAME/terminal.
 *
 * The session itself (raw mode, resize, piped input, exit status) is cli/terminal.c, shared
 * with hakuriver.task connect and hakuriver.vps connect. Exit status: the remote shell's (1
 * when the connection fails, 2 on a usage error). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/terminal.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"

#define PROG "hakuriver.docker-shell"

/* Percent-escapes S for a URL path segment. Caller frees. */
static char *path_escape (const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc (strlen (s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '-' || c == '_' || c == '.' || c == '~') {
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

/* ---- main --------------------------------------------------------------------------------- */

static void usage (FILE *out)
{
    fprintf (out,
             "usage: " PROG " [--config PATH] NAME\n"
             "\n"
             "Opens a shell (/bin/bash, else /bin/sh) in the host's environment container NAME\n"
             "through the host (ws://<host_reachable_address>:<host_port>).\n"
             "\n"
             "On a terminal, the terminal is put in raw mode: every key, Ctrl-C and Ctrl-D\n"
             "included, goes to the remote shell; leave with `exit` or Ctrl-D at an empty prompt.\n"
             "Otherwise standard input is sent as typed input, then Ctrl-D at its end.\n"
             "\n"
             "Exit status: the remote shell's; 1 when the host or the container cannot be\n"
             "reached; 2 on a usage error. The API token is read from [auth] api_token in the\n"
             "config file or the " ENV_API_TOKEN " environment variable.\n"
             "\n"
             "options:\n"
             "  -c, --config PATH  configuration file (default: $" ENV_CONFIG
             ", ~/.hakuriver/config.toml)\n"
             "  -h, --help         show this help\n");
}

int cli_docker_shell_main (int argc, char **argv)
{
    struct cli cli = { .prog = PROG, .usage = usage };
    const char *name = NULL;
    bool opts = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0)) {
            usage (stdout);
            return CLI_OK;
        }
        if (opts && (strcmp (a, "-c") == 0 || strcmp (a, "--config") == 0)) {
            if (i + 1 == argc)
                return cli_usage_error (&cli, "--config needs a PATH");
            cli.config = argv[++i];
        } else if (opts && strncmp (a, "--config=", 9) == 0) {
            cli.config = a + 9;
        } else if (opts && strcmp (a, "--") == 0) {
            opts = false;
        } else if (opts && a[0] == '-' && a[1]) {
            char *msg = xasprintf ("unknown option `%s`", a);
            int rc = cli_usage_error (&cli, msg);
            free (msg);
            return rc;
        } else if (name) {
            char *msg = xasprintf ("unexpected argument `%s`: one container NAME is expected", a);
            int rc = cli_usage_error (&cli, msg);
            free (msg);
            return rc;
        } else {
            name = a;
        }
    }
    if (!name || !*name)
        return cli_usage_error (&cli, "the container NAME is missing");
    /* Docker's rule for container names; anything else cannot name one */
    if (!isalnum ((unsigned char)name[0])
        || strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
               != strlen (name)) {
        char *msg = xasprintf ("invalid container name `%s`: letters, digits, '_', '.' and "
                               "'-' are allowed, starting with a letter or digit", name);
        int rc = cli_usage_error (&cli, msg);
        free (msg);
        return rc;
    }

    int rc = cli_open (&cli);
    if (rc == CLI_OK) {
        char *esc = path_escape (name);
        char *path = xasprintf ("/docker/host/containers/%s/terminal", esc);
        char *what = xasprintf ("container '%s'", name);
        rc = cli_terminal_run (&cli, path, what);
        free (what);
        free (path);
        free (esc);
    }
    cli_close (&cli);
    return rc;
}
