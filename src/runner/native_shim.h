/* native_shim.h - the shim of a native task: the process that creates the task cgroup,
 * opens the output files, starts the task, waits for it, cleans up and records the result
 * in the exit file (docs/native-executor.md). It runs either forked by the spawner helper
 * (native_shim_main as its handler) or as the small static executable hakuriver-shim
 * (src/shim_main.c), which the runner starts with posix_spawn. */
#ifndef HR_RUNNER_NATIVE_SHIM_H
#define HR_RUNNER_NATIVE_SHIM_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runner/cgroup.h"

#define NATIVE_MAX_GROUPS 256

/* What the task process reports when a step before execvp fails. */
struct start_error {
    int stage;
    int err;
};

/* Steps of a start; recorded in the exit file when one fails. */
enum {
    STAGE_CGROUP = 1,
    STAGE_AFFINITY,
    STAGE_MEMPOLICY,
    STAGE_STDIO,
    STAGE_CHDIR,
    STAGE_GROUPS,
    STAGE_SETGID,
    STAGE_SETUID,
    STAGE_EXEC,
    STAGE_FORK,
    STAGE_OUTPUT,
    STAGE_CGROUP_CREATE,
};

/* Words for a failed STAGE ("cannot switch user"). */
const char *native_stage_name (int stage);

/* Everything the shim needs, prepared by the runner (exec_native.c). Sent as one message:
 * the struct itself, then argv, envp, workdir, out_path and err_path as strings. */
struct native_launch {
    char **argv;
    char **envp;                   /* owned strings */
    size_t nenv;
    int out_fd, err_fd, null_fd;
    const char *workdir;
    bool switch_user;
    uid_t uid;
    gid_t gid;
    gid_t groups[NATIVE_MAX_GROUPS];
    int ngroups;
    bool bind_cpus;
    cpu_set_t cpus;
    unsigned long mems[64];        /* node mask for set_mempolicy(MPOL_BIND) */
    char procs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    int nprocs;
    char exit_path[CGROUP_PATH_MAX + 64];
    char exit_tmp[CGROUP_PATH_MAX + 80];
    struct cgroup_ctx cg;          /* the shim creates and removes the task cgroup */
    char cgroup_name[64];          /* "task-<id>-<attempt>" */
    char cgroup_rel[CGROUP_PATH_MAX]; /* what cgroup_create names it (cgroup_task_rel) */
    int cores;                     /* limits (struct cgroup_limits) */
    int64_t memory_bytes;
    char cpuset_cpus[4096], cpuset_mems[16]; /* "" = inherit */
    const char *out_path, *err_path; /* opened by the shim (sent as strings) */
};

/* The shim's entry point: unpacks the launch message MSG (LEN bytes; the pointers of the
 * launch point into it) and supervises the task; FDS are the two ends of the start pipe.
 * Never returns. */
_Noreturn void native_shim_main (char *msg, size_t len, const int *fds, int nfds);

#endif
