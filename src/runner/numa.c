/* numa.c - NUMA topology from /sys/devices/system/node: CPU lists and per-node memory */
#include "runner/numa.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/xalloc.h"

#define NUMA_SYSFS "/sys/devices/system/node"

static int parse_id (const char **p, int *out)
{
    const char *s = *p;
    long v = 0;
    if (!isdigit ((unsigned char)*s))
        return -1;
    while (isdigit ((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v >= NUMA_MAX_CPU)
            return -1;
        s++;
    }
    *p = s;
    *out = (int)v;
    return 0;
}

int numa_parse_cpulist (const char *text, int **out, size_t *n, struct err *e)
{
    unsigned char *seen = NULL;
    const char *p = text;
    size_t count = 0;
    int *cpus = NULL;
    if (!text)
        return err_set (e, EINVAL, "empty CPU list");
    seen = xcalloc (NUMA_MAX_CPU, 1);
    /* Empty (memory-only node) or only whitespace: no CPUs. */
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p && *p != '\n') {
        for (;;) {
            int lo, hi;
            if (parse_id (&p, &lo) < 0)
                goto bad;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_id (&p, &hi) < 0 || hi < lo)
                    goto bad;
            }
            for (int c = lo; c <= hi; c++)
                seen[c] = 1;
            if (*p != ',')
                break;
            p++;
        }
    }
    while (*p == '\n' || *p == ' ' || *p == '\t')
        p++;
    if (*p)
        goto bad;
    for (int c = 0; c < NUMA_MAX_CPU; c++)
        count += seen[c];
    if (count) {
        size_t i = 0;
        cpus = xmalloc (count * sizeof *cpus);
        for (int c = 0; c < NUMA_MAX_CPU; c++)
            if (seen[c])
                cpus[i++] = c;
    }
    free (seen);
    *out = cpus;
    *n = count;
    return 0;
bad:
    free (seen);
    return err_set (e, EINVAL, "malformed CPU list `%.64s`", text);
}

int numa_format_cpulist (const int *cpus, size_t n, char *buf, size_t size, struct err *e)
{
    size_t len = 0;
    if (size == 0)
        return err_set (e, ERANGE, "CPU list buffer too small");
    buf[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
            j++;
        int w = j > i ? snprintf (buf + len, size - len, "%s%d-%d", len ? "," : "", cpus[i],
                                  cpus[j])
                      : snprintf (buf + len, size - len, "%s%d", len ? "," : "", cpus[i]);
        if (w < 0 || (size_t)w >= size - len) {
            buf[0] = '\0';
            return err_set (e, ERANGE, "CPU list buffer too small");
        }
        len += (size_t)w;
        i = j + 1;
    }
    return 0;
}


/* "Node 0 MemTotal:       16384000 kB" -> bytes; 0 when absent. */
static int64_t node_memtotal (const char *dir)
{
    char path[600], buf[4096];
    snprintf (path, sizeof path, "%s/meminfo", dir);
    if (fileio_read_text (path, buf, sizeof buf) < 0)
        return 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr (line, '\n');
        if (nl)
            *nl = '\0';
        char *m = strstr (line, "MemTotal:");
        if (m) {
            long long kb;
            if (sscanf (m + strlen ("MemTotal:"), "%lld", &kb) == 1 && kb >= 0)
                return (int64_t)kb * 1024;
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int node_cmp (const void *a, const void *b)
{
    const struct numa_node *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int numa_topology_read (const char *root, struct numa_topology *out, struct err *e)
{
    struct numa_topology t = { 0 };
    DIR *d;
    struct dirent *de;
    size_t cap = 0;
    if (!root)
        root = NUMA_SYSFS;
    d = opendir (root);
    if (!d) {
        if (errno == ENOENT) {
            *out = t;
            return 0;
        }
        return err_set (e, errno, "opendir `%s`: %s", root, strerror (errno));
    }
    while ((de = readdir (d))) {
        const char *s = de->d_name + 4;
        char *end;
        if (strncmp (de->d_name, "node", 4) != 0 || !isdigit ((unsigned char)*s))
            continue;
        errno = 0;
        long id = strtol (s, &end, 10);
        if (*end || errno || id < 0 || id > 65535)
            continue;
        char dir[512], path[600], buf[4096];
        snprintf (dir, sizeof dir, "%s/%s", root, de->d_name);
        snprintf (path, sizeof path, "%s/cpulist", dir);
        struct numa_node node = { .id = (int)id };
        if (fileio_read_text (path, buf, sizeof buf) < 0)
            buf[0] = '\0';   /* no cpulist: treat as a memory-only node */
        if (numa_parse_cpulist (buf, &node.cpus, &node.ncpus, e) < 0) {
            err_wrap (e, "%s", path);
            goto error;
        }
        node.memory_bytes = node_memtotal (dir);
        if (t.n == cap) {
            cap = cap ? cap * 2 : 4;
            t.nodes = xreallocarray (t.nodes, cap, sizeof *t.nodes);
        }
        t.nodes[t.n++] = node;
    }
    closedir (d);
    if (t.n)
        qsort (t.nodes, t.n, sizeof *t.nodes, node_cmp);
    *out = t;
    return 0;
error:
    closedir (d);
    numa_topology_clear (&t);
    return -1;
}

void numa_topology_clear (struct numa_topology *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free (t->nodes[i].cpus);
    free (t->nodes);
    t->nodes = NULL;
    t->n = 0;
}

const struct numa_node *numa_topology_find (const struct numa_topology *t, int id)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->nodes[i].id == id)
            return &t->nodes[i];
    return NULL;
}

json_t *numa_topology_json (const struct numa_topology *t)
{
    json_t *o;
    if (!t || t->n == 0)
        return json_null ();
    o = json_object ();
    for (size_t i = 0; i < t->n; i++) {
        const struct numa_node *nd = &t->nodes[i];
        json_t *cores = json_array ();
        char key[16];
        for (size_t j = 0; j < nd->ncpus; j++)
            json_array_append_new (cores, json_integer (nd->cpus[j]));
        snprintf (key, sizeof key, "%d", nd->id);
        json_object_set_new (o, key, json_pack ("{s:o, s:I}", "cores", cores, "memory_bytes",
                                                (json_int_t)nd->memory_bytes));
    }
    return o;
}
