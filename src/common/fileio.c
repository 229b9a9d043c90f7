/* fileio.c - small-file reads shared by the runner's sysfs, cgroupfs and state readers */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

ssize_t fileio_read_text (const char *path, char *buf, size_t size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read (fd, buf + n, size - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close (fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close (fd);
    buf[n] = '\0';
    return (ssize_t)n;
}
