/* fileio.h - small-file reads shared by the runner's sysfs, cgroupfs and state readers */
#ifndef HR_COMMON_FILEIO_H
#define HR_COMMON_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads at most SIZE-1 bytes of PATH into BUF (SIZE >= 1), NUL-terminated, retrying on
 * EINTR and short reads. Returns the number of bytes read, or -1 with errno set (BUF is
 * then unspecified). */
ssize_t fileio_read_text (const char *path, char *buf, size_t size);

#endif
