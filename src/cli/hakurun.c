/* hakurun.c - hakurun: local argument-spanning runner. PLACEHOLDER: being written. */
#include <stdio.h>

#include "entry.h"

int hakurun_main (int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf (stderr, "hakurun: not available yet\n");
    return 1;
}
