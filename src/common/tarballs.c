/* tarballs.c - the <name>-<unix_ts>.tar files of a container_dir (see tarballs.h) */
#include "common/tarballs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

int tarballs_parse (const char *file, struct tarball *t)
{
    size_t len = strlen (file);
    if (len < 7 || len >= sizeof t->file || strcmp (file + len - 4, ".tar") != 0
        || file[0] == '.')
        return -1;
    const char *dash = NULL;
    for (const char *p = file; p < file + len - 4; p++)
        if (*p == '-')
            dash = p;
    if (!dash || dash == file || (size_t)(dash - file) >= sizeof t->name)
        return -1;
    const char *digits = dash + 1, *end = file + len - 4;
    if (digits == end || end - digits > 18)
        return -1;
    int64_t ts = 0;
    for (const char *p = digits; p < end; p++) {
        if (!isdigit ((unsigned char)*p))
            return -1;
        ts = ts * 10 + (*p - '0');
    }
    memcpy (t->name, file, (size_t)(dash - file));
    t->name[dash - file] = '\0';
    t->ts = ts;
    snprintf (t->file, sizeof t->file, "%s", file);
    return 0;
}

int tarballs_list (const char *dir, struct tarball **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    DIR *dp = opendir (dir);
    if (!dp) {
        if (errno == ENOENT)
            return 0;
        return err_set (e, errno, "cannot read %s: %s", dir, strerror (errno));
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir (dp))) {
        struct tarball t;
        if (tarballs_parse (de->d_name, &t) < 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xreallocarray (*out, cap, sizeof **out);
        }
        (*out)[(*n)++] = t;
    }
    closedir (dp);
    return 0;
}

int tarballs_newest (const char *dir, const char *name, int64_t *ts, char *path, size_t pn)
{
    struct tarball *v;
    size_t n;
    struct err e = { 0 };
    if (tarballs_list (dir, &v, &n, &e) < 0)
        return 0;
    int64_t best = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp (v[i].name, name) == 0 && v[i].ts > best) {
            best = v[i].ts;
            snprintf (path, pn, "%s/%s", dir, v[i].file);
        }
    free (v);
    if (best < 0)
        return 0;
    *ts = best;
    return 1;
}
