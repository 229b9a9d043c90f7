/* exec.h - executor interface on the runner: native (exec_native.c) and Docker (exec_docker.c) */
#ifndef HR_RUNNER_EXEC_H
#define HR_RUNNER_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* What to run. Everything here is already validated by the runner. */
struct exec_spec {
    uint64_t task_id;
    int attempt;
    char **argv;                 /* NULL-terminated; argv[0] resolved through PATH; no shell */
    char **env;                  /* NULL-terminated "K=V" from the task's --env */
    int cores;                   /* 0 = no CPU limit */
    int64_t memory_bytes;        /* 0 = no memory limit; otherwise limit with swap disabled */
    int numa;                    /* -1 = no binding */
    const int *gpus;             /* GPU ids (sets CUDA_VISIBLE_DEVICES), may be NULL */
    int ngpus;
    const char *stdout_path;     /* created/truncated by the executor, owned by the runner */
    const char *stderr_path;
    const char *workdir;         /* <shared_dir>/shared_data */
    const char *shared_dir;
    const char *local_temp_dir;
    const char *user;            /* run as this user; NULL/"" = the runner's user */
    bool allow_root;             /* else refuse when the effective user is root */
    /* Docker only */
    const char *image;           /* image reference to run */
    const char *environment;     /* environment whose tarballs provide IMAGE; NULL = IMAGE
                                    as is (pulled when missing) */
    char **mounts;               /* extra "HOST:CONTAINER[:ro|rw]" binds, NULL-terminated */
    bool privileged;
    /* VPS only (Docker): ARGV is ignored; the container runs sshd (exec_docker.c) */
    bool vps;
    const char *ssh_keys;        /* authorized keys, one per line (checked by the host) */
    int ready_timeout;           /* seconds from container start to the SSH banner */
    const char *publish_ip;      /* host address the SSH port is published on */
};

/* A started task as the runner tracks (and persists) it. */
struct exec_task {
    uint64_t task_id;
    int attempt;
    pid_t shim_pid;              /* supervising process; survives a runner restart */
    int pidfd;                   /* pidfd of the shim, -1 when not open; readable on exit */
    int start_fd;                /* docker: readable once the container has started (or the
                                    shim ended first); -1 = started at once (native) */
    char cgroup[256];            /* native: cgroup name relative to the hierarchy roots;
                                    docker: the container name */
    char command[128];           /* argv[0], escaped, for messages; "" after adoption */
    int ssh_port;                /* VPS: the published SSH port, once the shim reported it */
};

struct exec_result {
    int exit_code;               /* exit status, or 128+signal when killed by a signal */
    int term_signal;             /* 0 if it exited normally */
    bool oom_killed;             /* read from the kernel's cgroup counters */
    char message[256];           /* human-readable summary */
};

struct executor;

struct exec_ops {
    const char *name;
    /* Starts the task (creates its cgroup, forks the shim). Fills *out. Returns 0 or -1. */
    int (*start) (struct executor *ex, const struct exec_spec *spec, struct exec_task *out,
                  struct err *e);
    /* Re-attaches to a task from a previous runner life: reopens out->pidfd from
     * shim_pid (after checking it is still our shim). SPEC (may be NULL) is the task as
     * received. Returns 1 if still running, 0 if it ended (collect() then gives the
     * result), -1 on error. */
    int (*adopt) (struct executor *ex, struct exec_task *task, const struct exec_spec *spec,
                  struct err *e);
    /* (A Docker adopt may set task->start_fd again: a new shim that follows the container
     * says through it when the container runs, e.g. a VPS after a node reboot.) */
    /* After the shim exited: reads the result, removes the cgroup, closes pidfd.
     * Returns 0 or -1. */
    int (*collect) (struct executor *ex, struct exec_task *task, struct exec_result *res,
                    struct err *e);
    /* Called after the runner committed the results collect() returned; lets the executor
     * drop what it kept so a crash in between could not lose them. May be NULL. */
    void (*committed) (struct executor *ex);
    /* Sends SIG to every process of the task (thawing first for SIGKILL). */
    int (*signal) (struct executor *ex, struct exec_task *task, int sig, struct err *e);
    int (*pause) (struct executor *ex, struct exec_task *task, struct err *e);
    int (*resume) (struct executor *ex, struct exec_task *task, struct err *e);
    void (*destroy) (struct executor *ex);
};

struct executor {
    const struct exec_ops *ops;
    void *impl;
};

/* Creates the native executor. STATE_DIR holds the shims' exit files; CGROUP_ROOT is
 * normally "/sys/fs/cgroup" (tests pass a fake tree). Detects cgroup v1/v2.
 * Returns NULL on error. */
struct executor *exec_native_create (const char *state_dir, const char *cgroup_root,
                                     struct err *e);

/* Docker executor settings (copied). */
struct exec_docker_conf {
    char *state_dir;             /* exit files, image locks */
    char *socket;                /* Engine API socket; NULL/"" = default */
    char *tar_dir;               /* <shared_dir>/<container_dir> */
    char *node_id, *hostname;    /* container labels */
    int pull_timeout;            /* seconds */
};

/* Creates the Docker executor (nothing is connected yet). Returns NULL on error. */
struct executor *exec_docker_create (const struct exec_docker_conf *conf, struct err *e);
/* Removes this node's task containers (by label) for which KEEP returns false: leftovers of
 * tasks this runner no longer supervises. Returns how many were removed, or -1. */
int exec_docker_sweep (struct executor *ex, bool (*keep) (uint64_t task_id, int attempt, void *arg),
                       void *arg, struct err *e);
/* Whether the engine answers. Returns 0 or -1 with E set. */
int exec_docker_ping (struct executor *ex, struct err *e);

#endif
