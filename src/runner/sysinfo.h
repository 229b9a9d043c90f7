/* sysinfo.h - cheap host metrics for registration and heartbeats (no processes spawned).
 * The NUMA topology comes from runner/numa.h. */
#ifndef HR_RUNNER_SYSINFO_H
#define HR_RUNNER_SYSINFO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct sysinfo_mem {
    int64_t total_bytes;       /* MemTotal */
    int64_t available_bytes;   /* MemAvailable (MemFree + Buffers + Cached on old kernels) */
    int64_t used_bytes;        /* total - available, as psutil's "percent" counts it */
    double percent;            /* used / total * 100 */
};

/* One /proc/stat "cpu" line reduced to two counters (clock ticks since boot). */
struct sysinfo_cpu_sample {
    uint64_t busy;             /* user+nice+system+irq+softirq+steal */
    uint64_t total;            /* busy + idle + iowait */
};

/* Number of CPUs this process may run on (sched_getaffinity), else online CPUs; >= 1. */
int sysinfo_cpu_count (void);

/* Parses /proc/meminfo text. Returns 0, or -1 when MemTotal is missing or malformed.
 * *OUT is assigned only on success. */
int sysinfo_parse_meminfo (const char *text, struct sysinfo_mem *out, struct err *e);
/* Reads and parses PATH (NULL = /proc/meminfo). Returns 0 or -1. */
int sysinfo_read_meminfo (const char *path, struct sysinfo_mem *out, struct err *e);

/* Parses the aggregate "cpu " line of /proc/stat text. Returns 0 or -1. */
int sysinfo_parse_stat (const char *text, struct sysinfo_cpu_sample *out, struct err *e);
/* Reads and parses PATH (NULL = /proc/stat). Returns 0 or -1. */
int sysinfo_read_stat (const char *path, struct sysinfo_cpu_sample *out, struct err *e);
/* CPU utilisation between two samples in percent (0..100), or -1 when undefined
 * (no ticks elapsed or counters went backwards). */
double sysinfo_cpu_percent (const struct sysinfo_cpu_sample *prev,
                            const struct sysinfo_cpu_sample *cur);

/* Reads every ROOT/thermal_zone<N>/temp (ROOT NULL = /sys/class/thermal; millidegrees C).
 * Returns the number of readable sensors (0 = none: *AVG and *MAX untouched). */
int sysinfo_temperatures (const char *root, double *avg, double *max);

#endif
