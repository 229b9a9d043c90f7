/* cgroup.h - cgroup v1/v2 detection, task cgroups, limits, freezer, kill, OOM counters
 * (crun cgroup-utils.c).
 *
 * Task cgroups live under the runner's own cgroup: <runner cgroup>/hakuriver/task-<id>-<n>.
 * Names passed around as REL:
 *   v2: the task cgroup relative to the cgroup2 mount ("system.slice/x/hakuriver/task-1-1"),
 *       so a restarted runner finds it wherever it now runs;
 *   v1: relative to the runner's cgroup in each hierarchy ("hakuriver/task-1-1"), since that
 *       cgroup differs per controller (e.g. memory:/a/b but cpu:/).
 * Every function takes the paths from a struct cgroup_ctx, so tests can point it at a fake
 * directory tree. */
#ifndef HR_RUNNER_CGROUP_H
#define HR_RUNNER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define CGROUP_PATH_MAX 512

enum cgroup_mode {
    CGROUP_MODE_NONE = 0,          /* nothing usable found */
    CGROUP_MODE_V1,                /* per-controller hierarchies (hybrid hosts included) */
    CGROUP_MODE_V2,                /* the unified hierarchy is mounted at the root */
};

enum cgroup_ctrl {                 /* v1 controllers we place tasks in */
    CGROUP_CPU = 0,
    CGROUP_CPUACCT,
    CGROUP_CPUSET,
    CGROUP_MEMORY,
    CGROUP_FREEZER,
    CGROUP_PIDS,
    CGROUP_NCTRL,
};

struct cgroup_ctx {
    enum cgroup_mode mode;
    /* V2: index 0 only: the cgroup2 mount and the runner's cgroup relative to it ("" for
     * the root cgroup; a trailing "runner" leaf that we created is stripped).
     * V1: per controller; mount "" when that controller is not mounted. */
    char mount[CGROUP_NCTRL][CGROUP_PATH_MAX];
    char base[CGROUP_NCTRL][CGROUP_PATH_MAX];
};

/* One cgroup or cgroup2 line of /proc/self/mountinfo. */
struct cgroup_mount_info {
    char mount_point[CGROUP_PATH_MAX];   /* octal escapes (\040) decoded */
    char root[CGROUP_PATH_MAX];          /* the hierarchy path mounted there ("/" usually) */
    bool v2;                             /* fstype cgroup2 */
    char options[256];                   /* super options, e.g. "rw,cpu,cpuacct" */
};

struct cgroup_limits {
    int cores;                     /* CPU quota in cores; 0 = none */
    int64_t memory_bytes;          /* memory limit, swap disabled; 0 = none */
    const char *cpus;              /* cpuset.cpus for the task (NUMA node), NULL = inherit */
    const char *mems;              /* cpuset.mems, NULL = inherit */
};

/* Parses one mountinfo line. Returns 1 for a cgroup/cgroup2 mount (*OUT filled), 0 for any
 * other filesystem, -1 when malformed. */
int cgroup_parse_mountinfo_line (const char *line, struct cgroup_mount_info *out);
/* Parses one /proc/<pid>/cgroup line "ID:CONTROLLERS:PATH" (trailing newline allowed).
 * CONTROLLERS is "" for v2's "0::/x". Returns 0, or -1 when malformed or too long. */
int cgroup_parse_proc_line (const char *line, char *controllers, size_t csize, char *path,
                            size_t psize);
/* Name of controller C ("cpu", "memory", ...). */
const char *cgroup_ctrl_name (enum cgroup_ctrl c);

/* Detects the layout under ROOT (normally /sys/fs/cgroup) from MOUNTINFO and SELF (NULL =
 * /proc/self/mountinfo and /proc/self/cgroup): v2 when cgroup2 is mounted at ROOT, v1 when
 * cgroup v1 controllers are mounted below ROOT (an extra cgroup2 at ROOT/unified, as on
 * hybrid hosts, is ignored). Returns 0, or -1 (ENOENT) when neither is found. */
int cgroup_detect (const char *root, const char *mountinfo, const char *self,
                   struct cgroup_ctx *out, struct err *e);
/* Fills *CG for a v2 tree at MOUNT with the runner cgroup BASE ("" = root); for tests. */
void cgroup_ctx_v2 (struct cgroup_ctx *cg, const char *mount, const char *base);

/* The REL name cgroup_create would give the task cgroup NAME, without creating anything.
 * Returns 0 or -1 (EINVAL, ENAMETOOLONG when it does not fit RSIZE). */
int cgroup_task_rel (const struct cgroup_ctx *cg, const char *name, char *rel, size_t rsize,
                     struct err *e);
/* Creates the task cgroup NAME ("task-1-1") under <base>/hakuriver, enabling controllers
 * along the path (v2; moves the processes of the runner's cgroup into a "runner" leaf when
 * the no-internal-process rule requires it) or initialising cpuset (v1), then applies LIM.
 * REL (size RSIZE) receives the name to pass to the other functions. On failure nothing is
 * left behind. Returns 0 or -1. */
int cgroup_create (const struct cgroup_ctx *cg, const char *name, const struct cgroup_limits *lim,
                   char *rel, size_t rsize, struct err *e);
/* Fills DIRS with the distinct directories of the task cgroup REL (1 for v2, one per
 * mounted controller for v1). Returns their number, or -1 when REL is invalid. */
int cgroup_dirs (const struct cgroup_ctx *cg, const char *rel, char dirs[][CGROUP_PATH_MAX],
                 struct err *e);
/* Returns 1 when the task cgroup exists, 0 when not. */
int cgroup_exists (const struct cgroup_ctx *cg, const char *rel);
/* Freezes (FREEZE true; waits up to 2 s until the kernel reports it frozen) or thaws.
 * Returns 0 or -1. */
int cgroup_freeze (const struct cgroup_ctx *cg, const char *rel, bool freeze, struct err *e);
/* Sends SIG to every process in the cgroup, re-reading cgroup.procs until no new process
 * appears. SIGKILL uses v2 cgroup.kill when present and thaws a frozen v1 cgroup so the
 * processes can die. Returns 0, or -1 (ENOENT when the cgroup does not exist). */
int cgroup_kill (const struct cgroup_ctx *cg, const char *rel, int sig, struct err *e);
/* Reads the kernel's OOM-kill counter (v2 memory.events, v1 memory.oom_control) into *KILLS
 * and the memory limit into *LIMIT (0 = none or unknown). Returns 0 or -1. */
int cgroup_oom (const struct cgroup_ctx *cg, const char *rel, int64_t *kills, int64_t *limit,
                struct err *e);
/* Removes the cgroup's directories; one still populated (processes left behind) has them
 * killed and is retried for up to 1 s while they exit. Absent directories are fine.
 * Returns 0 or -1. */
int cgroup_remove (const struct cgroup_ctx *cg, const char *rel, struct err *e);

#endif
