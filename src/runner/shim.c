/* shim.c - helpers shared by the executors' per-task shim processes (see shim.h) */
#include "runner/shim.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/xalloc.h"

bool shim_is_ours (pid_t pid)
{
    char path[64], comm[32] = "", stat[256] = "";
    snprintf (path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen (path, "re");
    if (!f)
        return false;
    bool ok = fgets (comm, sizeof comm, f) && strcmp (comm, SHIM_COMM "\n") == 0;
    fclose (f);
    snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
    if (ok && (f = fopen (path, "re"))) {
        const char *close_paren = fgets (stat, sizeof stat, f) ? strrchr (stat, ')') : NULL;
        if (close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X'))
            ok = false;
        fclose (f);
    }
    return ok;
}

int shim_pidfd_open (pid_t pid)
{
    return (int)syscall (SYS_pidfd_open, pid, 0);
}

void shim_write_all (int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write (fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

void shim_exit_files_add (struct shim_exit_files *f, const char *path)
{
    f->paths = xreallocarray (f->paths, f->n + 1, sizeof *f->paths);
    f->paths[f->n++] = xstrdup (path);
}

void shim_exit_files_flush (struct shim_exit_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        unlink (f->paths[i]);
        free (f->paths[i]);
    }
    f->n = 0;
}

void shim_exit_files_free (struct shim_exit_files *f)
{
    shim_exit_files_flush (f);
    free (f->paths);
    f->paths = NULL;
}
