/* main.c - one executable, dispatching on argv[0] (installed links) or a first word */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "entry.h"

struct entry {
    const char *name;
    int (*fn) (int argc, char **argv);
};

static const struct entry entries[] = {
    { "host", host_main },
    { "runner", runner_main },
    { "client", cli_client_main },
    { "task", cli_task_main },
    { "init", cli_init_main },
    { "docker", cli_docker_main },
    { "docker-shell", cli_docker_shell_main },
    { "vps", cli_vps_main },
    { "ssh", cli_ssh_main },
    { "hakurun", hakurun_main },
};

static int (*lookup (const char *name)) (int, char **)
{
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (strcmp (entries[i].name, name) == 0)
            return entries[i].fn;
    return NULL;
}

static void usage (FILE *out)
{
    fprintf (out,
             "usage: hakuriver COMMAND [ARGS...]\n"
             "       (or through the links hakuriver.host, hakuriver.runner, hakuriver.client,\n"
             "        hakuriver.task, hakuriver.init, hakuriver.docker, hakuriver.docker-shell,\n"
             "        hakuriver.vps, hakuriver.ssh, hakurun)\n"
             "commands: host runner client task init docker docker-shell vps ssh hakurun\n");
}

int main (int argc, char **argv)
{
    char *base = basename (argv[0]);
    if (strcmp (base, "hakurun") == 0)
        return hakurun_main (argc, argv);
    if (strncmp (base, "hakuriver.", 10) == 0) {
        int (*fn) (int, char **) = lookup (base + 10);
        if (fn)
            return fn (argc, argv);
        fprintf (stderr, "hakuriver: unknown command name `%s`\n", base);
        return 2;
    }
    if (argc < 2) {
        usage (stderr);
        return 2;
    }
    if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
        usage (stdout);
        return 0;
    }
    int (*fn) (int, char **) = lookup (argv[1]);
    if (!fn) {
        fprintf (stderr, "hakuriver: unknown command `%s`\n", argv[1]);
        usage (stderr);
        return 2;
    }
    return fn (argc - 1, argv + 1);
}
