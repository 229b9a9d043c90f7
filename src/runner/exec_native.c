/* exec_native.c - the native executor: a task runs as a plain process tree in its own
 * cgroup, supervised by a small "shim" process that outlives the runner.
 *
 *   runner ──spawner──> shim (setsid, comm "hr-shim", outside the task cgroup; forked by
 *                        │   the hr-spawner helper, see spawner.h)
 *                        └─vfork──> task (joins the task cgroup, drops privileges, execvp)
 *
 * The shim opens the task's output files, starts the task, waits for it, reads the OOM
 * counter of its cgroup, removes the cgroup (killing what the task left behind) and writes
 * <state_dir>/<id>-<attempt>.exit (see shim_record, renamed into place), then exits. The
 * runner watches the shim through a pidfd, so a restarted runner re-attaches by pid (adopt)
 * and still learns the result from the exit file; when a shim ended without cleaning up
 * (killed), the runner reads the counter and removes the cgroup itself. Limits, pause
 * (freezer) and kill go through the task cgroup (cgroup.c), never through the shim. The
 * per-task file and cgroup work happens in the shim so that the runner's single loop
 * does not serialise it across tasks.
 *
 * start() does not wait for the exec: the task writes its errno to a close-on-exec pipe
 * when a step before execvp fails (the pipe simply closes when execvp succeeds); the shim
 * reads it and records it in the exit file, so collect() reports "cannot execute ...".
 * What can be checked up front (user lookup, environment, paths) happens in the runner;
 * the shim gets the prepared launch as a message (native_shim_main) and from then on only
 * makes system calls; a failure there (output files included) reaches collect() as a
 * stage of the exit file. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
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
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/exec.h"
#include "runner/numa.h"
#include "runner/shim.h"
#include "runner/spawner.h"

extern char **environ;


#define MAX_GROUPS 256

struct user_cache {                /* the last runner_user lookup */
    char *name, *home;
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int ngroups;
    time_t at;
};

struct native {
    char *state_dir;
    struct user_cache user;
    struct cgroup_ctx cg;
    struct numa_topology topo;
    /* Exit files of collected tasks, unlinked once the runner has committed their result. */
    struct shim_exit_files done;       /* exit files to unlink after the runner committed */
};

/* What the task process reports when a step before execvp fails. */
struct start_error {
    int stage;
    int err;
};

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

static const char *stage_name (int stage)
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

static void exit_path (struct native *n, uint64_t id, int attempt, char *buf, size_t size)
{
    snprintf (buf, size, "%s/%" PRIu64 "-%d.exit", n->state_dir, id, attempt);
}

/* ---- everything prepared before fork --------------------------------------------------- */

struct launch {
    char **argv;
    char **envp;                   /* owned strings */
    size_t nenv;
    int out_fd, err_fd, null_fd;
    const char *workdir;
    bool switch_user;
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
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

static void env_add (struct launch *l, size_t *cap, char *kv)
{
    /* A later KEY=... replaces an earlier one. */
    size_t klen = strcspn (kv, "=");
    for (size_t i = 0; i < l->nenv; i++)
        if (strncmp (l->envp[i], kv, klen) == 0 && l->envp[i][klen] == '=') {
            free (l->envp[i]);
            l->envp[i] = kv;
            return;
        }
    if (l->nenv + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 64;
        l->envp = xreallocarray (l->envp, *cap, sizeof *l->envp);
    }
    l->envp[l->nenv++] = kv;
    l->envp[l->nenv] = NULL;
}

static void launch_free (struct launch *l)
{
    for (size_t i = 0; i < l->nenv; i++)
        free (l->envp[i]);
    free (l->envp);
    if (l->out_fd >= 0)
        close (l->out_fd);
    if (l->err_fd >= 0)
        close (l->err_fd);
    if (l->null_fd >= 0)
        close (l->null_fd);
}

static int open_output (const char *path)
{
    return open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
}

/* Resolves the user to run as and refuses root unless allowed. The lookup (NSS: files,
 * nscd, LDAP...) is cached for USER_CACHE_S seconds: one per task was a measurable part
 * of a start. */
#define USER_CACHE_S 60

static int resolve_user (struct native *n, const struct exec_spec *s, struct launch *l,
                         const char **home, const char **name, struct err *e)
{
    *home = NULL;
    *name = NULL;
    if (s->user && *s->user) {
        struct user_cache *u = &n->user;
        time_t now = time (NULL);
        if (!u->name || strcmp (u->name, s->user) != 0 || now - u->at > USER_CACHE_S
            || now < u->at) {
            char pwbuf[4096];
            struct passwd pw, *res = NULL;
            int rc = getpwnam_r (s->user, &pw, pwbuf, sizeof pwbuf, &res);
            if (rc != 0 || !res)
                return err_set (e, rc ? rc : ENOENT, "runner_user `%s` does not exist on "
                                "this runner", s->user);
            free (u->name);
            free (u->home);
            u->name = xstrdup (s->user);
            u->home = xstrdup (res->pw_dir);
            u->uid = res->pw_uid;
            u->gid = res->pw_gid;
            int ng = MAX_GROUPS;
            if (getgrouplist (res->pw_name, res->pw_gid, u->groups, &ng) < 0)
                ng = 1, u->groups[0] = res->pw_gid;
            u->ngroups = ng;
            u->at = now;
        }
        if (u->uid == 0 && !s->allow_root)
            return err_set (e, EPERM, "refusing to run a task as root (runner_user `%s` is "
                            "root); set [environment] allow_root_tasks = true to allow it",
                            s->user);
        l->uid = u->uid;
        l->gid = u->gid;
        l->switch_user = u->uid != geteuid () || u->gid != getegid ();
        memcpy (l->groups, u->groups, sizeof l->groups);
        l->ngroups = u->ngroups;
        *home = u->home;
        *name = u->name;
        return 0;
    }
    if (geteuid () == 0 && !s->allow_root)
        return err_set (e, EPERM, "refusing to run a task as root: set [environment] "
                        "runner_user to an unprivileged user (or allow_root_tasks = true)");
    return 0;
}

static int launch_prepare (struct native *n, const struct exec_spec *s, const char *rel,
                           struct launch *l, struct err *e)
{
    memset (l, 0, sizeof *l);
    l->out_fd = l->err_fd = l->null_fd = -1;
    l->argv = s->argv;
    l->workdir = s->workdir && *s->workdir ? s->workdir : "/";

    const char *home, *name;
    if (resolve_user (n, s, l, &home, &name, e) < 0)
        return -1;

    /* Environment: the runner's own minus every HAKURIVER_* (tokens live there), then the
     * task's --env, then what HakuRiver sets (these win, as in 0.3). */
    size_t cap = 0;
    for (char **p = environ; p && *p; p++)
        if (strncmp (*p, "HAKURIVER_", 10) != 0 && strchr (*p, '='))
            env_add (l, &cap, xstrdup (*p));
    if (l->switch_user && name) {
        env_add (l, &cap, xasprintf ("HOME=%s", home));
        env_add (l, &cap, xasprintf ("USER=%s", name));
        env_add (l, &cap, xasprintf ("LOGNAME=%s", name));
    }
    if (!getenv ("PATH"))
        env_add (l, &cap, xstrdup ("PATH=/usr/local/bin:/usr/bin:/bin"));
    for (char **p = s->env; p && *p; p++)
        env_add (l, &cap, xstrdup (*p));
    env_add (l, &cap, xasprintf ("HAKURIVER_TASK_ID=%" PRIu64, s->task_id));
    env_add (l, &cap, xasprintf ("HAKURIVER_TASK_ATTEMPT=%d", s->attempt));
    if (s->local_temp_dir)
        env_add (l, &cap, xasprintf ("HAKURIVER_LOCAL_TEMP_DIR=%s", s->local_temp_dir));
    if (s->shared_dir)
        env_add (l, &cap, xasprintf ("HAKURIVER_SHARED_DIR=%s", s->shared_dir));
    if (s->numa >= 0)
        env_add (l, &cap, xasprintf ("HAKURIVER_TARGET_NUMA_NODE=%d", s->numa));
    if (s->ngpus > 0) {
        char list[1024] = "";
        size_t off = 0;
        for (int i = 0; i < s->ngpus && off < sizeof list - 8; i++)
            off += (size_t)snprintf (list + off, sizeof list - off, "%s%d", i ? "," : "",
                                     s->gpus[i]);
        env_add (l, &cap, xasprintf ("CUDA_VISIBLE_DEVICES=%s", list));
    }
    if (!l->envp)
        env_add (l, &cap, xstrdup ("PATH=/usr/local/bin:/usr/bin:/bin"));

    if (s->numa >= 0) {
        const struct numa_node *node = numa_topology_find (&n->topo, s->numa);
        if (!node || node->ncpus == 0)
            return err_set (e, EINVAL, "NUMA node %d does not exist on this runner (or has no "
                            "CPUs)", s->numa);
        CPU_ZERO (&l->cpus);
        for (size_t i = 0; i < node->ncpus; i++)
            if (node->cpus[i] < CPU_SETSIZE)
                CPU_SET (node->cpus[i], &l->cpus);
        l->bind_cpus = true;
        if (s->numa < (int)(sizeof l->mems * 8))
            l->mems[s->numa / (8 * sizeof (unsigned long))] |= 1UL << (s->numa % (8 * sizeof (unsigned long)));
    }

    exit_path (n, s->task_id, s->attempt, l->exit_path, sizeof l->exit_path);
    snprintf (l->exit_tmp, sizeof l->exit_tmp, "%s.tmp", l->exit_path);
    l->cg = n->cg;
    snprintf (l->cgroup_rel, sizeof l->cgroup_rel, "%s", rel ? rel : "");
    l->out_path = s->stdout_path;
    l->err_path = s->stderr_path;
    if (!l->out_path || !*l->out_path || !l->err_path || !*l->err_path)
        return err_set (e, EINVAL, "no output file paths");
    return 0;
}

/* ---- the forked side: system calls only ---------------------------------------------- */

static _Noreturn void child_fail (int errfd, int stage)
{
    struct start_error se = { stage, errno };
    shim_write_all (errfd, &se, sizeof se);
    _exit (127);
}

/* The task process. ERRFD is close-on-exec: it closes by itself when execvp succeeds. */
static _Noreturn void run_task (const struct launch *l, int errfd)
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
    const struct launch *l;
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
static pid_t start_task_process (const struct launch *l, int err_r, int err_w)
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

static void shim_cleanup (const struct launch *l, struct shim_cleanup *c)
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
static void shim_record (const struct launch *l, int code, int sig, int stage, int err,
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
static _Noreturn void run_shim (struct launch *l, int err_r, int err_w)
{
    setsid ();
    prctl (PR_SET_NAME, SHIM_COMM, 0, 0, 0);
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

/* The spawner's handler (see spawner.h): MSG is what native_start packed. */
static int native_spawn_kind = -1;

static void native_shim_main (char *msg, size_t len, const int *fds, int nfds)
{
    struct spawn_reader r = { .p = msg, .left = len };
    struct launch l;
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

/* ---- executor operations ------------------------------------------------------------- */

static int native_start (struct executor *ex, const struct exec_spec *s, struct exec_task *out,
                         struct err *e)
{
    struct native *n = ex->impl;
    if (!s->argv || !s->argv[0] || !*s->argv[0])
        return err_set (e, EINVAL, "empty command");

    char name[64], rel[CGROUP_PATH_MAX] = "";
    snprintf (name, sizeof name, "task-%" PRIu64 "-%d", s->task_id, s->attempt);
    char cpus[4096] = "", mems[16] = "";
    struct cgroup_limits lim = { .cores = s->cores, .memory_bytes = s->memory_bytes };
    if (s->numa >= 0) {
        const struct numa_node *node = numa_topology_find (&n->topo, s->numa);
        if (!node || node->ncpus == 0)
            return err_set (e, EINVAL, "NUMA node %d does not exist on this runner", s->numa);
        if (numa_format_cpulist (node->cpus, node->ncpus, cpus, sizeof cpus, e) < 0)
            return -1;
        snprintf (mems, sizeof mems, "%d", s->numa);
        lim.cpus = cpus;
        lim.mems = mems;
    }
    if (n->cg.mode == CGROUP_MODE_NONE)
        return err_set (e, ENOTSUP, "no usable cgroup hierarchy on this runner: native tasks "
                        "need cgroups for limits, pause and kill");
    if (lim.cores > 0 && n->cg.mode == CGROUP_MODE_V1 && !n->cg.mount[CGROUP_CPU][0])
        return err_set (e, ENOTSUP, "cannot create the task cgroup: a CPU limit needs the "
                        "cgroup v1 cpu controller");
    if (lim.memory_bytes > 0 && n->cg.mode == CGROUP_MODE_V1 && !n->cg.mount[CGROUP_MEMORY][0])
        return err_set (e, ENOTSUP, "cannot create the task cgroup: a memory limit needs the "
                        "cgroup v1 memory controller");
    /* The shim creates the cgroup (run_shim); REL must also fit exec_task.cgroup, which the
     * runner persists. */
    if (cgroup_task_rel (&n->cg, name, rel, sizeof ((struct exec_task *)0)->cgroup, e) < 0)
        return err_wrap (e, "cannot create the task cgroup");

    struct launch l;
    if (launch_prepare (n, s, rel, &l, e) < 0)
        goto fail_launch;
    snprintf (l.cgroup_name, sizeof l.cgroup_name, "%s", name);
    l.cores = lim.cores;
    l.memory_bytes = lim.memory_bytes;
    snprintf (l.cpuset_cpus, sizeof l.cpuset_cpus, "%s", cpus);
    snprintf (l.cpuset_mems, sizeof l.cpuset_mems, "%s", mems);
    unlink (l.exit_path);

    int pfd[2];
    if (pipe2 (pfd, O_CLOEXEC) < 0) {
        err_set (e, errno, "pipe: %s", strerror (errno));
        goto fail_launch;
    }
    struct spawn_msg m = { 0 };
    spawn_msg_put (&m, &l, sizeof l);
    spawn_msg_put_strv (&m, l.argv);
    spawn_msg_put_strv (&m, l.envp);
    spawn_msg_put_str (&m, l.workdir);
    spawn_msg_put_str (&m, l.out_path);
    spawn_msg_put_str (&m, l.err_path);
    int fds[2] = { pfd[0], pfd[1] };
    int pidfd = -1;
    pid_t shim = spawner_spawn (native_spawn_kind, m.buf, m.len, fds, 2, &pidfd, e);
    spawn_msg_free (&m);
    /* The runner does not wait for the exec (moving the task into its v1 cgroups can take
     * a while): a failure before execvp reaches collect() through the exit file. */
    close (pfd[0]);
    close (pfd[1]);
    if (shim < 0)
        goto fail_launch;

    out->task_id = s->task_id;
    out->attempt = s->attempt;
    out->shim_pid = shim;
    out->pidfd = pidfd;
    out->start_fd = -1;
    memcpy (out->cgroup, rel, strlen (rel) + 1);
    log_escape (s->argv[0], out->command, sizeof out->command);
    if (out->pidfd < 0)
        log_warn ("task %" PRIu64 ".%d: pidfd_open: %s; checking the shim once a second",
                  s->task_id, s->attempt, strerror (errno));
    launch_free (&l);
    return 0;

fail_launch:
    launch_free (&l);
    return -1;
}

static int native_adopt (struct executor *ex, struct exec_task *t, const struct exec_spec *spec,
                         struct err *e)
{
    struct native *n = ex->impl;
    char path[CGROUP_PATH_MAX + 64];
    exit_path (n, t->task_id, t->attempt, path, sizeof path);
    t->pidfd = -1;
    if (access (path, F_OK) == 0)
        return 0;
    if (t->shim_pid <= 0)
        return err_set (e, ESRCH, "no shim process recorded");
    int fd = shim_pidfd_open (t->shim_pid);
    if (fd < 0) {
        if (errno == ESRCH)
            return 0;
        return err_set (e, errno, "pidfd_open(%d): %s", (int)t->shim_pid, strerror (errno));
    }
    /* Checked after opening the pidfd, so a reused pid cannot slip in between. */
    if (!shim_is_ours (t->shim_pid)) {
        close (fd);
        return 0;
    }
    t->pidfd = fd;
    return 1;
}

static int native_collect (struct executor *ex, struct exec_task *t, struct exec_result *res,
                           struct err *e)
{
    struct native *n = ex->impl;
    memset (res, 0, sizeof *res);
    if (t->pidfd >= 0)
        close (t->pidfd);
    t->pidfd = -1;
    /* Reap the shim when it is our child; an adopted one belongs to init (ECHILD). */
    if (t->shim_pid > 0)
        while (waitpid (t->shim_pid, NULL, WNOHANG) < 0 && errno == EINTR)
            ;

    char path[CGROUP_PATH_MAX + 64];
    exit_path (n, t->task_id, t->attempt, path, sizeof path);
    FILE *f = fopen (path, "re");
    int code = 0, sig = 0, stage = 0, serr = 0, cleaned = 0, used = 0;
    long long fkills = 0, flimit = 0;
    bool have = false;
    char line[800] = "", *detail = NULL;
    if (f) {
        if (fgets (line, sizeof line, f)) {
            line[strcspn (line, "\n")] = '\0';
            int nf = sscanf (line, "%d %d %d %d %lld %lld %d%n", &code, &sig, &stage, &serr,
                             &fkills, &flimit, &cleaned, &used);
            have = nf >= 2;
            if (nf < 7)
                cleaned = 0;
            else if (line[used] == ' ' && line[used + 1])
                detail = line + used + 1;
        }
        fclose (f);
    }
    int64_t kills = fkills, limit = flimit;
    struct err oe = { 0 };
    /* A shim that did not clean up (killed, or of an earlier version): do it here. The
     * counter read fails (ignored) when the cgroup is gone. */
    if (!cleaned && t->cgroup[0])
        (void)cgroup_oom (&n->cg, t->cgroup, &kills, &limit, &oe);

    if (!have) {
        res->exit_code = -1;
        snprintf (res->message, sizeof res->message,
                  "The task's supervisor process ended without recording a result (killed "
                  "from outside HakuRiver?).");
    } else {
        res->exit_code = code;
        res->term_signal = sig;
        if (stage == STAGE_EXEC && t->command[0])
            snprintf (res->message, sizeof res->message, "Failed to start task: cannot "
                      "execute `%s`: %s", t->command, strerror (serr));
        else if (stage && detail)
            snprintf (res->message, sizeof res->message, "Failed to start task: %s: %s",
                      stage_name (stage), detail);
        else if (stage)
            snprintf (res->message, sizeof res->message, "Failed to start task: %s: %s",
                      stage_name (stage), strerror (serr));
    }
    res->oom_killed = kills > 0;
    if (res->oom_killed && limit > 0)
        snprintf (res->message, sizeof res->message, "memory limit %" PRId64 " bytes", limit);

    /* Whatever the task left behind (background children) goes with it. */
    if (!cleaned && t->cgroup[0] && cgroup_remove (&n->cg, t->cgroup, e) < 0)
        log_warn ("task %" PRIu64 ".%d: %s", t->task_id, t->attempt, e->text);
    if (f) {
        shim_exit_files_add (&n->done, path);
    }
    return 0;
}

static void native_committed (struct executor *ex)
{
    struct native *n = ex->impl;
    shim_exit_files_flush (&n->done);
}

static int native_signal (struct executor *ex, struct exec_task *t, int sig, struct err *e)
{
    struct native *n = ex->impl;
    if (!t->cgroup[0])
        return err_set (e, ENOENT, "task has no cgroup");
    struct err ke = { 0 };
    if (cgroup_kill (&n->cg, t->cgroup, sig, &ke) == 0)
        return 0;
    /* Gone: the task ended and its shim removed the cgroup; nothing is left to signal. */
    if (ke.code == ENOENT)
        return 0;
    if (e)
        *e = ke;
    return -1;
}

static int native_pause (struct executor *ex, struct exec_task *t, struct err *e)
{
    struct native *n = ex->impl;
    return cgroup_freeze (&n->cg, t->cgroup, true, e);
}

static int native_resume (struct executor *ex, struct exec_task *t, struct err *e)
{
    struct native *n = ex->impl;
    return cgroup_freeze (&n->cg, t->cgroup, false, e);
}

static void native_destroy (struct executor *ex)
{
    if (!ex)
        return;
    struct native *n = ex->impl;
    native_committed (ex);
    shim_exit_files_free (&n->done);
    numa_topology_clear (&n->topo);
    free (n->user.name);
    free (n->user.home);
    free (n->state_dir);
    free (n);
    free (ex);
}

static const struct exec_ops native_ops = {
    .name = "native",
    .start = native_start,
    .adopt = native_adopt,
    .collect = native_collect,
    .committed = native_committed,
    .signal = native_signal,
    .pause = native_pause,
    .resume = native_resume,
    .destroy = native_destroy,
};

struct executor *exec_native_create (const char *state_dir, const char *cgroup_root,
                                     struct err *e)
{
    native_spawn_kind = spawner_register (native_shim_main);
    struct native *n = xcalloc (1, sizeof *n);
    n->state_dir = xstrdup (state_dir);
    if (cgroup_detect (cgroup_root, NULL, NULL, &n->cg, e) < 0) {
        log_warn ("%s: native tasks cannot start until cgroups are available", e->text);
        n->cg.mode = CGROUP_MODE_NONE;
        *e = (struct err){ 0 };
    }
    if (numa_topology_read (NULL, &n->topo, e) < 0) {
        log_warn ("cannot read the NUMA topology (%s); NUMA binding is unavailable", e->text);
        numa_topology_clear (&n->topo);
        *e = (struct err){ 0 };
    }
    struct executor *ex = xcalloc (1, sizeof *ex);
    ex->ops = &native_ops;
    ex->impl = n;
    return ex;
}
