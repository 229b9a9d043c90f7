/* cmd_docker.c - hakuriver.docker. PLACEHOLDER: being written. */
#include <stdio.h>

#include "entry.h"

int cli_docker_main (int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf (stderr, "hakuriver.docker: not available yet\n");
    return 1;
}
