/* shim_main.c - hakuriver-shim: the shim of a native task as a small static executable.
 *
 * The runner starts it with posix_spawn (runner/exec_native.c): nothing of the runner's
 * memory is copied and nothing is loaded dynamically, which makes a start much cheaper than
 * forking a process that maps the runner's libraries. Descriptor 3 holds the launch message
 * (a memfd), 4 and 5 are the two ends of the start pipe. Everything else is
 * runner/native_shim.c, the same code the spawner helper runs when this file is missing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/native_shim.h"

#define MAX_LAUNCH_BYTES (64u << 20)

int main (int argc, char **argv)
{
    struct stat sb;
    (void)argv;
    if (argc != 1 || fstat (3, &sb) < 0 || sb.st_size <= 0
        || (unsigned long long)sb.st_size > MAX_LAUNCH_BYTES) {
        fputs ("hakuriver-shim: supervises one native task; only hakuriver.runner starts it\n",
               stderr);
        return 2;
    }
    size_t len = (size_t)sb.st_size, have = 0;
    char *msg = malloc (len + 1);
    if (!msg)
        return 1;
    while (have < len) {
        ssize_t got = pread (3, msg + have, len - have, (off_t)have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 1;
        have += (size_t)got;
    }
    msg[len] = '\0';
    close (3);
    int fds[2] = { 4, 5 };
    native_shim_main (msg, len, fds, 2);
}
