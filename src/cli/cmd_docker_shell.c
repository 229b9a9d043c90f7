/* cmd_docker_shell.c - hakuriver.docker-shell. PLACEHOLDER: being written. */
#include <stdio.h>

#include "entry.h"

int cli_docker_shell_main (int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf (stderr, "hakuriver.docker-shell: not available yet\n");
    return 1;
}
