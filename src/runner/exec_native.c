/* exec_native.c - the native executor: a task runs as a plain process tree in its own
 * cgroup, supervised by a small "shim" process that outlives the runner.
 *
 *   runner ──posix_spawn──> hakuriver-shim (setsid, comm "hr-shim", outside the task
 *                            │   cgroup; runner/native_shim.c, src/shim_main.c; forked by
 *                            │   the hr-spawner helper when the executable is missing)
 *                            └─vfork──> task (joins the task cgroup, drops privileges, execvp)
 *
 * The shim creates the task cgroup, opens the task's output files, starts the task, waits
 * for it, reads the OOM
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
#include <limits.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/exec.h"
#include "runner/native_shim.h"
#include "runner/numa.h"
#include "runner/shim.h"
#include "runner/spawner.h"

extern char **environ;

struct user_cache {                /* the last runner_user lookup */
    char *name, *home;
    uid_t uid;
    gid_t gid;
    gid_t groups[NATIVE_MAX_GROUPS];
    int ngroups;
    time_t at;
};

struct native {
    char *state_dir;
    char *shim_exe;                    /* hakuriver-shim, or NULL: the spawner forks shims */
    char **shim_env;                   /* its environment: ours without HAKURIVER_* */
    struct user_cache user;
    struct cgroup_ctx cg;
    struct numa_topology topo;
    /* Exit files of collected tasks, unlinked once the runner has committed their result. */
    struct shim_exit_files done;       /* exit files to unlink after the runner committed */
};

static void exit_path (struct native *n, uint64_t id, int attempt, char *buf, size_t size)
{
    snprintf (buf, size, "%s/%" PRIu64 "-%d.exit", n->state_dir, id, attempt);
}

/* ---- everything prepared before fork --------------------------------------------------- */


/* Appends KV (owned) to the environment without looking for its key. */
static void env_append (struct native_launch *l, size_t *cap, char *kv)
{
    if (l->nenv + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 64;
        l->envp = xreallocarray (l->envp, *cap, sizeof *l->envp);
    }
    l->envp[l->nenv++] = kv;
    l->envp[l->nenv] = NULL;
}

static void env_add (struct native_launch *l, size_t *cap, char *kv)
{
    /* A later KEY=... replaces an earlier one. */
    size_t klen = strcspn (kv, "=");
    for (size_t i = 0; i < l->nenv; i++)
        if (strncmp (l->envp[i], kv, klen) == 0 && l->envp[i][klen] == '=') {
            free (l->envp[i]);
            l->envp[i] = kv;
            return;
        }
    env_append (l, cap, kv);
}

static void launch_free (struct native_launch *l)
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

/* Resolves the user to run as and refuses root unless allowed. The lookup (NSS: files,
 * nscd, LDAP...) is cached for USER_CACHE_S seconds: one per task was a measurable part
 * of a start. */
#define USER_CACHE_S 60

static int resolve_user (struct native *n, const struct exec_spec *s, struct native_launch *l,
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
            int ng = NATIVE_MAX_GROUPS;
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
                           struct native_launch *l, struct err *e)
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
            env_append (l, &cap, xstrdup (*p)); /* keys of environ are distinct */
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

static int native_spawn_kind = -1;

/* Starts EXE (hakuriver-shim) with posix_spawn in a new session, the launch message on
 * descriptor 3 and the start pipe on 4 and 5. glibc's posix_spawn shares our memory with
 * the child until its exec (CLONE_VM | CLONE_VFORK): nothing is copied. Returns the pid,
 * or -1 with E set. */
static pid_t spawn_shim_exe (struct native *n, const struct spawn_msg *m, const int pipe_fds[2],
                             struct err *e)
{
    int fds[3] = { -1, -1, -1 }, rc;
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    fds[0] = memfd_create ("hr-launch", MFD_CLOEXEC);
    if (fds[0] < 0)
        return err_set (e, errno, "memfd_create: %s", strerror (errno));
    size_t off = 0;
    while (off < m->len) {
        ssize_t w = write (fds[0], m->buf + off, m->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err_set (e, errno, "writing the launch message: %s", strerror (errno));
            close (fds[0]);
            return -1;
        }
        off += (size_t)w;
    }
    /* Sources above 5, so that no dup2 below overwrites another's source. */
    for (int i = 0; i < 3; i++) {
        int src = i == 0 ? fds[0] : pipe_fds[i - 1];
        fds[i] = fcntl (src, F_DUPFD_CLOEXEC, 10);
        if (i == 0)
            close (src);
        if (fds[i] < 0) {
            err_set (e, errno, "fcntl(F_DUPFD): %s", strerror (errno));
            goto out;
        }
    }
    posix_spawn_file_actions_init (&fa);
    posix_spawnattr_init (&attr);
    for (int i = 0; i < 3; i++)
        posix_spawn_file_actions_adddup2 (&fa, fds[i], 3 + i);
    /* Signal mask inherited: the runner blocks everything it reads from its signalfd, and
     * a shim must only die of SIGKILL (run_shim). */
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSID);
    char *argv[] = { (char *)SHIM_COMM, NULL };
    rc = posix_spawn (&pid, n->shim_exe, &fa, &attr, argv, n->shim_env);
    posix_spawn_file_actions_destroy (&fa);
    posix_spawnattr_destroy (&attr);
    if (rc != 0) {
        err_set (e, rc, "cannot start `%s`: %s", n->shim_exe, strerror (rc));
        pid = -1;
    }
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close (fds[i]);
    return pid;
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

    struct native_launch l;
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
    pid_t shim = -1;
    int pidfd_err = 0;
    if (n->shim_exe) {
        shim = spawn_shim_exe (n, &m, fds, e);
        if (shim > 0 && (pidfd = shim_pidfd_open (shim)) < 0)
            pidfd_err = errno;
        else if (shim < 0)
            log_warn ("task %" PRIu64 ".%d: %s; forking the shim instead", s->task_id,
                      s->attempt, e->text);
    }
    if (shim < 0) {
        shim = spawner_spawn (native_spawn_kind, m.buf, m.len, fds, 2, &pidfd, e);
        pidfd_err = errno;
    }
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
                  s->task_id, s->attempt, strerror (pidfd_err));
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
                      native_stage_name (stage), detail);
        else if (stage)
            snprintf (res->message, sizeof res->message, "Failed to start task: %s: %s",
                      native_stage_name (stage), strerror (serr));
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
    free (n->shim_exe);
    for (char **p = n->shim_env; p && *p; p++)
        free (*p);
    free (n->shim_env);
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

/* hakuriver-shim next to our executable (build tree), else in ../libexec/hakuriver/ (make
 * install). Without it, shims are forked by the spawner helper, as before it existed. */
static void find_shim_exe (struct native *n)
{
    char self[PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr (self, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = { "/hakuriver-shim", "/../libexec/hakuriver/hakuriver-shim" };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0] && !n->shim_exe; i++) {
            char *p = xasprintf ("%s%s", self, rel[i]);
            if (access (p, X_OK) == 0)
                n->shim_exe = p;
            else
                free (p);
        }
    }
    if (!n->shim_exe) {
        log_warn ("hakuriver-shim not found next to the runner or in ../libexec/hakuriver/: "
                  "native task shims are forked instead (slower starts)");
        return;
    }
    size_t cnt = 0;
    for (char **p = environ; p && *p; p++)
        cnt++;
    n->shim_env = xcalloc (cnt + 1, sizeof *n->shim_env);
    cnt = 0;
    for (char **p = environ; p && *p; p++)
        if (strncmp (*p, "HAKURIVER_", 10) != 0)
            n->shim_env[cnt++] = xstrdup (*p);
    log_debug ("native task shims: %s", n->shim_exe);
}

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
    find_shim_exe (n);
    struct executor *ex = xcalloc (1, sizeof *ex);
    ex->ops = &native_ops;
    ex->impl = n;
    return ex;
}
