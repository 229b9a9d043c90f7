/* native_shim.c - the shim of a native task (see native_shim.h): system calls only, from
 * the prepared launch to the exit file */
#include "runner/native_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <numaif.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/shim.h"
#include "runner/spawn_msg.h"

extern char **environ;

const char *native_stage_name (int stage)
{
    switch (stage) {
    case STAGE_CGROUP: return "cannot join the task cgroup";
    case STAGE_AFFINITY: return "cannot bind to the NUMA node's CPUs";
    case STAGE_MEMPOLICY: return "cannot bind memory to the NUMA node";
    case STAGE_STDIO: return "cannot set up stdin/stdout/stderr";
    case STAGE_CHDIR: return "cannot enter the working directory";
    case STAGE_GROUPS: return "cannot set supplementary groups";
    case STAGE_SETGID: return "cannot switch group";
    case STAGE_SETUID: return "cannot switch user";
    case STAGE_EXEC: return "cannot execute";
    case STAGE_FORK: return "cannot fork the task process";
    case STAGE_OUTPUT: return "cannot open the output files (task_outputs/, task_errors/)";
    case STAGE_CGROUP_CREATE: return "cannot create the task cgroup";
    }
    return "cannot start";
}

static int open_output (const char *path)
{
    return open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
}

/* ---- the forked side: system calls only ---------------------------------------------- */

static _Noreturn void child_fail (int errfd, int stage)
{
    struct start_error se = { stage, errno };
    shim_write_all (errfd, &se, sizeof se);
    _exit (127);
}

/* The task process. ERRFD is close-on-exec: it closes by itself when execvp succeeds. */
static _Noreturn void run_task (const struct native_launch *l, int errfd)
{
    sigset_t all;
    sigemptyset (&all);
    for (int sig = 1; sig < NSIG; sig++)
        signal (sig, SIG_DFL);
    sigprocmask (SIG_SETMASK, &all, NULL);

    char pid[32];
    int len = snprintf (pid, sizeof pid, "%d", (int)getpid ());
    for (int i = 0; i < l->nprocs; i++) {
        int fd = open (l->procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write (fd, pid, (size_t)len) != len)
            child_fail (errfd, STAGE_CGROUP);
        close (fd);
    }
    /* Also where cpuset is not delegated (v2 without the cpuset controller): CPUs by
     * affinity, memory by policy. */
    if (l->bind_cpus && sched_setaffinity (0, sizeof l->cpus, &l->cpus) < 0)
        child_fail (errfd, STAGE_AFFINITY);
    if (l->bind_cpus
        && syscall (SYS_set_mempolicy, MPOL_BIND, l->mems, (unsigned long)(sizeof l->mems * 8)) < 0
        && errno != ENOSYS)
        child_fail (errfd, STAGE_MEMPOLICY);
    if (dup2 (l->null_fd, 0) < 0 || dup2 (l->out_fd, 1) < 0 || dup2 (l->err_fd, 2) < 0)
        child_fail (errfd, STAGE_STDIO);
    if (chdir (l->workdir) < 0)
        child_fail (errfd, STAGE_CHDIR);
    if (l->switch_user) {
        if (setgroups ((size_t)l->ngroups, l->groups) < 0)
            child_fail (errfd, STAGE_GROUPS);
        if (setresgid (l->gid, l->gid, l->gid) < 0)
            child_fail (errfd, STAGE_SETGID);
        if (setresuid (l->uid, l->uid, l->uid) < 0)
            child_fail (errfd, STAGE_SETUID);
    }
    environ = l->envp;
    execvp (l->argv[0], l->argv);
    child_fail (errfd, STAGE_EXEC);
}

struct task_args {
    const struct native_launch *l;
    int err_r, err_w;
};

static int task_entry (void *arg)
{
    struct task_args *a = arg;
    close (a->err_r);
    run_task (a->l, a->err_w);
}

/* Starts the task process. It shares the shim's memory until its execvp (clone with
 * CLONE_VM | CLONE_VFORK on a stack of its own, as posix_spawn does): nothing is copied,
 * and run_task only makes system calls. Sanitizer builds fork instead (their runtime keeps
 * per-thread state that such a child would share). Returns the pid or -1. */
static pid_t start_task_process (const struct native_launch *l, int err_r, int err_w)
{
    struct task_args a = { l, err_r, err_w };
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    pid_t pid = fork ();
    if (pid == 0)
        task_entry (&a);
    return pid;
#else
    enum { STACK = 256 * 1024 };
    /* Not unmapped: the shim exits soon after its task. */
    char *stack = mmap (NULL, STACK, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    return clone (task_entry, stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
#endif
}

/* Reads the OOM counter of the task cgroup, then removes it: whatever the task left behind
 * (background children) is killed with it. Fills the clean-up fields of the exit record. */
struct shim_cleanup {
    long long oom_kills, mem_limit;
    int cleaned;                   /* 1: the cgroup is gone and the counter was read */
};

static void shim_cleanup (const struct native_launch *l, struct shim_cleanup *c)
{
    struct err e = { 0 };
    int64_t kills = 0, limit = 0;
    memset (c, 0, sizeof *c);
    if (!l->cgroup_rel[0])
        return;
    if (cgroup_oom (&l->cg, l->cgroup_rel, &kills, &limit, &e) < 0)
        return;
    c->oom_kills = kills;
    c->mem_limit = limit;
    c->cleaned = cgroup_remove (&l->cg, l->cgroup_rel, &e) == 0;
}

/* Writes "<exit code> <signal> <stage> <errno> <oom kills> <memory limit> <cleaned>
 * [<detail>]\n" to the exit file, atomically (rename). STAGE is non-zero when the task
 * failed before execvp, DETAIL (may be NULL; one line) then says what exactly; CLEANED 1
 * says the shim read the OOM counter and removed the cgroup (runner: nothing left to do).
 * Shims of earlier versions wrote only the first two or four fields. */
static void shim_record (const struct native_launch *l, int code, int sig, int stage, int err,
                         const char *detail)
{
    char buf[700];
    struct shim_cleanup c;
    shim_cleanup (l, &c);
    int len = snprintf (buf, sizeof buf, "%d %d %d %d %lld %lld %d%s%.600s\n", code, sig,
                        stage, err, c.oom_kills, c.mem_limit, c.cleaned,
                        detail && *detail ? " " : "", detail ? detail : "");
    for (int i = 0; i < len - 1; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
    int fd = open (l->exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    shim_write_all (fd, buf, (size_t)len);
    /* No fsync: the file only has to outlive a runner crash, and the page cache does; a
     * machine crash ends the task too. */
    close (fd);
    rename (l->exit_tmp, l->exit_path);
}

/* The shim: forks the task, learns through the close-on-exec pipe (ERR_R, ERR_W) whether
 * it reached execvp, waits for it and records the result. */
static _Noreturn void run_shim (struct native_launch *l, int err_r, int err_w)
{
    setsid ();
    prctl (PR_SET_NAME, SHIM_COMM, 0, 0, 0);
    /* The task must not inherit the start pipe past its exec: the shim learns that the
     * exec happened from the pipe's end of file (hakuriver-shim gets them by dup2, which
     * clears the flag). */
    fcntl (err_r, F_SETFD, FD_CLOEXEC);
    fcntl (err_w, F_SETFD, FD_CLOEXEC);
    /* The shim must outlive terminals and stop requests; only the task gets signals. It
     * keeps the runner's blocked signal mask, so nothing but SIGKILL reaches it. */
    signal (SIGPIPE, SIG_IGN);
    signal (SIGHUP, SIG_IGN);
    signal (SIGINT, SIG_IGN);
    signal (SIGTERM, SIG_IGN);

    /* Drop every descriptor inherited from the runner (its database, sockets) except the
     * ones the task needs. */
    int keep[] = { err_r, err_w };
    const int nkeep = (int)(sizeof keep / sizeof keep[0]);
    for (int i = 0; i < nkeep; i++)      /* sort the descriptors */
        for (int j = i + 1; j < nkeep; j++)
            if (keep[j] < keep[i]) {
                int x = keep[i];
                keep[i] = keep[j];
                keep[j] = x;
            }
    unsigned from = 3;
    for (int i = 0; i < nkeep; i++) {
        if ((unsigned)keep[i] > from)
            syscall (SYS_close_range, from, (unsigned)keep[i] - 1, 0);
        if ((unsigned)keep[i] + 1 > from)
            from = (unsigned)keep[i] + 1;
    }
    syscall (SYS_close_range, from, ~0U, 0);

    /* The task cgroup, and the cgroup.procs files the task process writes itself into. */
    struct err e = { 0 };
    char rel[CGROUP_PATH_MAX], dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    struct cgroup_limits lim = { .cores = l->cores, .memory_bytes = l->memory_bytes,
                                 .cpus = l->cpuset_cpus[0] ? l->cpuset_cpus : NULL,
                                 .mems = l->cpuset_mems[0] ? l->cpuset_mems : NULL };
    if (cgroup_create (&l->cg, l->cgroup_name, &lim, rel, sizeof rel, &e) < 0
        || strcmp (rel, l->cgroup_rel) != 0) {
        if (!e.code) { /* cannot happen: cgroup_task_rel computes what cgroup_create makes */
            struct err ignore = { 0 };
            err_set (&e, EINVAL, "cgroup `%s` is not the expected `%s`", rel, l->cgroup_rel);
            cgroup_remove (&l->cg, rel, &ignore);
        }
        l->cgroup_rel[0] = '\0'; /* nothing of ours to clean up */
        shim_record (l, 127, 0, STAGE_CGROUP_CREATE, e.code, e.text);
        _exit (0);
    }
    int nd = cgroup_dirs (&l->cg, rel, dirs, &e);
    for (int i = 0; i < nd && i < CGROUP_NCTRL; i++)
        snprintf (l->procs[i], sizeof l->procs[i], "%.*s/cgroup.procs",
                  (int)(sizeof l->procs[i] - 16), dirs[i]);
    l->nprocs = nd > 0 ? nd : 0;

    if ((l->out_fd = open_output (l->out_path)) < 0 || (l->err_fd = open_output (l->err_path)) < 0
        || (l->null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        int err = errno;
        char what[600];
        snprintf (what, sizeof what, "`%s`: %s", l->out_fd < 0 ? l->out_path : l->err_path,
                  strerror (err));
        shim_record (l, 127, 0, STAGE_OUTPUT, err, what);
        _exit (0);
    }

    pid_t child = start_task_process (l, err_r, err_w);
    if (child < 0) {
        shim_record (l, 127, 0, STAGE_FORK, errno, NULL);
        _exit (0);
    }
    close (err_w);
    close (l->out_fd);
    close (l->err_fd);
    close (l->null_fd);

    struct start_error se = { 0 };
    size_t have = 0;
    while (have < sizeof se) {
        ssize_t got = read (err_r, (char *)&se + have, sizeof se - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t)got;
    }
    close (err_r);

    int st = 0;
    while (waitpid (child, &st, 0) < 0)
        if (errno != EINTR) {
            shim_record (l, 255, 0, 0, 0, NULL);
            _exit (0);
        }
    if (have == sizeof se)
        shim_record (l, 127, 0, se.stage, se.err, NULL);
    else if (WIFSIGNALED (st))
        shim_record (l, 128 + WTERMSIG (st), WTERMSIG (st), 0, 0, NULL);
    else
        shim_record (l, WEXITSTATUS (st), 0, 0, 0, NULL);
    _exit (0);
}

/* The spawner's handler (see spawner.h), and what hakuriver-shim runs: MSG is what
 * native_start packed. */

void native_shim_main (char *msg, size_t len, const int *fds, int nfds)
{
    struct spawn_reader r = { .p = msg, .left = len };
    struct native_launch l;
    spawn_read (&r, &l, sizeof l);
    l.argv = spawn_read_strv (&r);
    l.envp = spawn_read_strv (&r);
    l.workdir = spawn_read_str (&r);
    l.out_path = spawn_read_str (&r);
    l.err_path = spawn_read_str (&r);
    if (r.bad || nfds != 2 || !l.argv || !l.envp || !l.workdir || !l.out_path || !l.err_path)
        _exit (127);
    l.out_fd = l.err_fd = l.null_fd = -1;
    run_shim (&l, fds[0], fds[1]);
}
