/* stamp.c - latency probe task: writes its CLOCK_REALTIME start time to DIR/$HAKURIVER_TASK_ID */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main (int argc, char **argv)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);    /* first thing: the start is what is measured */
    const char *id = getenv ("HAKURIVER_TASK_ID");
    if (argc < 2 || !id)
        return 2;
    char path[4096], line[64];
    snprintf (path, sizeof path, "%s/%s.tmp", argv[1], id);
    int n = snprintf (line, sizeof line, "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write (fd, line, (size_t)n) != n || close (fd) < 0)
        return 1;
    char final[4096];
    snprintf (final, sizeof final, "%s/%s", argv[1], id);
    return rename (path, final) < 0;    /* the reader never sees a half-written file */
}
