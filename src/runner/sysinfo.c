/* sysinfo.c - host metrics from /proc and /sys: CPUs, memory, CPU load, temperatures */
#include "runner/sysinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"



int sysinfo_cpu_count (void)
{
    cpu_set_t set;
    if (sched_getaffinity (0, sizeof set, &set) == 0) {
        int n = CPU_COUNT (&set);
        if (n > 0)
            return n;
    }
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Finds "KEY:   <n> kB" at the start of a line. Returns 1 found, 0 absent, -1 malformed. */
static int meminfo_field (const char *text, const char *key, int64_t *out)
{
    size_t klen = strlen (key);
    for (const char *p = text; p && *p; p = strchr (p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp (p, key, klen) != 0 || p[klen] != ':')
            continue;
        const char *q = p + klen + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!isdigit ((unsigned char)*q))
            return -1;
        errno = 0;
        char *end;
        unsigned long long v = strtoull (q, &end, 10);
        if (errno || v > (unsigned long long)(INT64_MAX / 1024))
            return -1;
        while (*end == ' ')
            end++;
        int64_t mult = 1;
        if (strncmp (end, "kB", 2) == 0)
            mult = 1024;
        *out = (int64_t)v * mult;
        return 1;
    }
    return 0;
}

int sysinfo_parse_meminfo (const char *text, struct sysinfo_mem *out, struct err *e)
{
    int64_t total = 0, avail = 0, free_b = 0, buffers = 0, cached = 0;
    int rc = meminfo_field (text, "MemTotal", &total);
    if (rc <= 0 || total <= 0)
        return err_set (e, EINVAL, "meminfo: %s MemTotal", rc < 0 ? "malformed" : "no");
    rc = meminfo_field (text, "MemAvailable", &avail);
    if (rc < 0)
        return err_set (e, EINVAL, "meminfo: malformed MemAvailable");
    if (rc == 0) {
        /* Kernels before 3.14: approximate as psutil does. */
        if (meminfo_field (text, "MemFree", &free_b) < 0
            || meminfo_field (text, "Buffers", &buffers) < 0
            || meminfo_field (text, "Cached", &cached) < 0)
            return err_set (e, EINVAL, "meminfo: malformed MemFree/Buffers/Cached");
        avail = free_b + buffers + cached;
    }
    if (avail > total)
        avail = total;
    if (avail < 0)
        avail = 0;
    out->total_bytes = total;
    out->available_bytes = avail;
    out->used_bytes = total - avail;
    out->percent = (double)(total - avail) * 100.0 / (double)total;
    return 0;
}

int sysinfo_read_meminfo (const char *path, struct sysinfo_mem *out, struct err *e)
{
    char buf[8192];
    if (!path)
        path = "/proc/meminfo";
    if (fileio_read_text (path, buf, sizeof buf) < 0)
        return err_set (e, errno, "read `%s`: %s", path, strerror (errno));
    if (sysinfo_parse_meminfo (buf, out, e) < 0)
        return err_wrap (e, "%s", path);
    return 0;
}

int sysinfo_parse_stat (const char *text, struct sysinfo_cpu_sample *out, struct err *e)
{
    const char *p = text;
    while (p && strncmp (p, "cpu ", 4) != 0) {
        p = strchr (p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return err_set (e, EINVAL, "stat: no aggregate `cpu` line");
    p += 4;
    /* user nice system idle iowait irq softirq steal (guest time is already in user). */
    uint64_t v[8] = { 0 };
    int n = 0;
    while (n < 8) {
        while (*p == ' ')
            p++;
        if (*p == '\n' || *p == '\0')
            break;
        if (!isdigit ((unsigned char)*p))
            return err_set (e, EINVAL, "stat: malformed `cpu` line");
        char *end;
        errno = 0;
        v[n] = strtoull (p, &end, 10);
        if (errno)
            return err_set (e, EINVAL, "stat: counter out of range");
        p = end;
        n++;
    }
    if (n < 4)
        return err_set (e, EINVAL, "stat: `cpu` line has %d fields, expected at least 4", n);
    uint64_t idle = v[3] + v[4];
    uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    out->busy = busy;
    out->total = busy + idle;
    return 0;
}

int sysinfo_read_stat (const char *path, struct sysinfo_cpu_sample *out, struct err *e)
{
    char buf[4096]; /* the aggregate line comes first */
    if (!path)
        path = "/proc/stat";
    if (fileio_read_text (path, buf, sizeof buf) < 0)
        return err_set (e, errno, "read `%s`: %s", path, strerror (errno));
    if (sysinfo_parse_stat (buf, out, e) < 0)
        return err_wrap (e, "%s", path);
    return 0;
}

double sysinfo_cpu_percent (const struct sysinfo_cpu_sample *prev,
                            const struct sysinfo_cpu_sample *cur)
{
    if (cur->total <= prev->total || cur->busy < prev->busy)
        return -1;
    uint64_t dt = cur->total - prev->total;
    uint64_t db = cur->busy - prev->busy;
    if (db > dt)
        db = dt;
    return (double)db * 100.0 / (double)dt;
}

int sysinfo_temperatures (const char *root, double *avg, double *max)
{
    if (!root)
        root = "/sys/class/thermal";
    DIR *d = opendir (root);
    if (!d)
        return 0;
    int count = 0;
    double sum = 0, hi = 0;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (strncmp (de->d_name, "thermal_zone", 12) != 0)
            continue;
        char path[PATH_MAX], buf[64];
        snprintf (path, sizeof path, "%s/%s/temp", root, de->d_name);
        if (fileio_read_text (path, buf, sizeof buf) <= 0)
            continue;
        char *end;
        errno = 0;
        long mdeg = strtol (buf, &end, 10);
        if (errno || end == buf || (*end != '\n' && *end != '\0'))
            continue;
        double c = (double)mdeg / 1000.0;
        sum += c;
        if (count == 0 || c > hi)
            hi = c;
        count++;
    }
    closedir (d);
    if (count > 0) {
        *avg = sum / count;
        *max = hi;
    }
    return count;
}
