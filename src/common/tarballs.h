/* tarballs.h - the container environment tarballs <name>-<unix_ts>.tar of a container_dir
 * (written by the host's create-tar, loaded by the runners) */
#ifndef HR_COMMON_TARBALLS_H
#define HR_COMMON_TARBALLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct tarball {
    char name[129];              /* environment name (case kept) */
    int64_t ts;                  /* unix seconds from the file name */
    char file[160];              /* file name inside the directory */
};

/* Lists the tarballs in DIR (unordered; other files are ignored; a missing DIR gives none).
 * *OUT is malloc'ed (free it). Returns 0 or -1. */
int tarballs_list (const char *dir, struct tarball **out, size_t *n, struct err *e);
/* The newest tarball of NAME in DIR: sets *TS and PATH ("DIR/file"). Returns 1, or 0 when
 * NAME has none. */
int tarballs_newest (const char *dir, const char *name, int64_t *ts, char *path, size_t pn);
/* Parses FILE as "<name>-<ts>.tar" into T. Returns 0 or -1. */
int tarballs_parse (const char *file, struct tarball *t);

#endif
