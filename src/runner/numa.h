/* numa.h - NUMA topology from sysfs (node CPUs and memory) for binding and reporting */
#ifndef HR_RUNNER_NUMA_H
#define HR_RUNNER_NUMA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

#define NUMA_MAX_CPU 8192          /* highest CPU id accepted + 1 (kernel NR_CPUS max) */

struct numa_node {
    int id;                        /* N of /sys/devices/system/node/nodeN */
    int *cpus;                     /* ascending CPU ids; owned; NULL when ncpus == 0 */
    size_t ncpus;                  /* 0 for a memory-only node */
    int64_t memory_bytes;          /* "Node N MemTotal" of nodeN/meminfo, 0 if unreadable */
};

struct numa_topology {
    struct numa_node *nodes;       /* ascending by id; owned */
    size_t n;                      /* 0 when the machine exposes no node directories */
};

/* Parses a kernel CPU list ("0-3,8,10-11", trailing newline allowed, "" = empty) into a
 * new ascending, de-duplicated array (*OUT NULL when *N is 0; caller frees). Rejects
 * reversed ranges, ids >= NUMA_MAX_CPU and any stray character. Returns 0 or -1 (EINVAL);
 * outputs are assigned only on success. */
int numa_parse_cpulist (const char *text, int **out, size_t *n, struct err *e);

/* Formats CPUS (ascending) as a kernel CPU list ("0-3,8") into BUF. Returns 0, or -1
 * (ERANGE) when BUF is too small. */
int numa_format_cpulist (const int *cpus, size_t n, char *buf, size_t size, struct err *e);

/* Reads ROOT/node<N>/{cpulist,meminfo} (ROOT NULL = /sys/devices/system/node) into *OUT
 * (clear with numa_topology_clear). A missing ROOT gives n == 0 and returns 0. Returns 0
 * or -1 (malformed cpulist); *OUT is assigned only on success. */
int numa_topology_read (const char *root, struct numa_topology *out, struct err *e);
/* Frees what *T owns and zeroes it. Accepts NULL. */
void numa_topology_clear (struct numa_topology *t);
/* The node with id ID, or NULL. */
const struct numa_node *numa_topology_find (const struct numa_topology *t, int id);
/* The 0.3 wire form {"0": {"cores": [0,1], "memory_bytes": N}, ...}: a new reference,
 * json_null() when T has no nodes. */
json_t *numa_topology_json (const struct numa_topology *t);

#endif
