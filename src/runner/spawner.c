/* spawner.c - the resident helper that forks the executors' shims (see spawner.h) */
#include "runner/spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"

#define REPLY_TIMEOUT_MS 10000     /* a helper that does not answer is replaced */

struct spawn_req {
    uint32_t kind;
    uint32_t len;                  /* message bytes, in the first descriptor (a memfd) */
    uint32_t fdmask;               /* bit i: fds[i] was sent (in order after the memfd) */
    uint32_t nfds;
};

struct spawn_rep {
    int32_t pid;                   /* > 0, or -1 with err */
    int32_t err;
};

static spawn_handler handlers[SPAWN_MAX_HANDLERS];
static int nhandlers;
static int helper_sock = -1;       /* the runner's end */
static pid_t helper = -1;
static int helper_keep = -1;
static bool helper_wanted;         /* started and not stopped: replace it when it dies */

int spawner_register (spawn_handler fn)
{
    for (int i = 0; i < nhandlers; i++)
        if (handlers[i] == fn)
            return i;
    if (nhandlers == SPAWN_MAX_HANDLERS)
        return -1;
    handlers[nhandlers] = fn;
    return nhandlers++;
}

pid_t spawner_pid (void)
{
    return helper;
}

static int pidfd_open_ (pid_t pid)
{
    return (int)syscall (SYS_pidfd_open, pid, 0);
}

/* ---- the helper ---------------------------------------------------------------------- */

static void close_all_but (const int *keep, int nkeep)
{
    int k[4];
    int n = 0;
    for (int i = 0; i < nkeep && n < 4; i++)
        if (keep[i] > 2)
            k[n++] = keep[i];
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (k[j] < k[i]) {
                int x = k[i];
                k[i] = k[j];
                k[j] = x;
            }
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if ((unsigned)k[i] > from)
            syscall (SYS_close_range, from, (unsigned)k[i] - 1, 0);
        if ((unsigned)k[i] + 1 > from)
            from = (unsigned)k[i] + 1;
    }
    syscall (SYS_close_range, from, ~0U, 0);
}

static int read_full (int fd, char *buf, size_t len)
{
    size_t have = 0;
    while (have < len) {
        ssize_t got = pread (fd, buf + have, len - have, (off_t)have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        have += (size_t)got;
    }
    return 0;
}

/* The new child: reads the message and becomes the handler. */
static _Noreturn void helper_child (int sock, const struct spawn_req *q, int memfd,
                                    const int *fds)
{
    close (sock);
    char *msg = xmalloc ((size_t)q->len + 1);
    if (read_full (memfd, msg, q->len) < 0)
        _exit (127);
    msg[q->len] = '\0';
    close (memfd);
    handlers[q->kind](msg, q->len, fds, (int)q->nfds);
    _exit (127);
}

static void reply (int sock, pid_t pid, int err, int pidfd)
{
    struct spawn_rep rep = { .pid = pid, .err = err };
    struct iovec iov = { &rep, sizeof rep };
    union {
        char buf[CMSG_SPACE (sizeof (int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (pidfd >= 0) {
        memset (&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR (&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN (sizeof (int));
        memcpy (CMSG_DATA (c), &pidfd, sizeof pidfd);
    }
    while (sendmsg (sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

static _Noreturn void helper_main (int sock, pid_t parent)
{
    prctl (PR_SET_NAME, SPAWNER_COMM, 0, 0, 0);
    prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid () != parent)
        _exit (0);
    int keep[2] = { sock, helper_keep };
    close_all_but (keep, 2);

    for (;;) {
        struct pollfd p = { .fd = sock, .events = POLLIN };
        int r = poll (&p, 1, 1000);
        /* Shims are our children: reap those that ended (their result is in their exit
         * file; the runner watches them through the pidfds it got). */
        while (waitpid (-1, NULL, WNOHANG) > 0)
            ;
        if (r <= 0)
            continue;

        struct spawn_req q;
        struct iovec iov = { &q, sizeof q };
        union {
            char buf[CMSG_SPACE (sizeof (int) * (SPAWN_MAX_FDS + 1))];
            struct cmsghdr align;
        } u;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                             .msg_controllen = sizeof u.buf };
        ssize_t got = recvmsg (sock, &mh, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            _exit (0);               /* the runner closed its end */

        int recv_fds[SPAWN_MAX_FDS + 1];
        int nrecv = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int n = (int)((c->cmsg_len - CMSG_LEN (0)) / sizeof (int));
                for (int i = 0; i < n && nrecv < SPAWN_MAX_FDS + 1; i++)
                    memcpy (&recv_fds[nrecv++], CMSG_DATA (c) + i * sizeof (int), sizeof (int));
            }
        int fds[SPAWN_MAX_FDS];
        int next = 1;
        bool ok = got == (ssize_t)sizeof q && !(mh.msg_flags & MSG_CTRUNC) && nrecv >= 1
                  && q.kind < (uint32_t)nhandlers && q.nfds <= SPAWN_MAX_FDS;
        for (uint32_t i = 0; ok && i < q.nfds; i++) {
            if (q.fdmask & (1u << i)) {
                if (next >= nrecv)
                    ok = false;
                else
                    fds[i] = recv_fds[next++];
            } else {
                fds[i] = -1;
            }
        }
        if (!ok) {
            for (int i = 0; i < nrecv; i++)
                close (recv_fds[i]);
            reply (sock, -1, EPROTO, -1);
            continue;
        }
        pid_t pid = fork ();
        if (pid == 0)
            helper_child (sock, &q, recv_fds[0], fds);
        int err = errno;
        int pidfd = pid > 0 ? pidfd_open_ (pid) : -1;
        if (pid > 0)
            err = pidfd < 0 ? errno : 0;  /* why there is no pidfd (ENOSYS under valgrind) */
        for (int i = 0; i < nrecv; i++)
            close (recv_fds[i]);
        reply (sock, pid > 0 ? pid : -1, err, pidfd);
        if (pidfd >= 0)
            close (pidfd);
    }
}

int spawner_start (int keep_fd, struct err *e)
{
    if (helper > 0)
        return 0;
    int sv[2];
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return err_set (e, errno, "socketpair: %s", strerror (errno));
    helper_keep = keep_fd;
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        int err = errno;
        close (sv[0]);
        close (sv[1]);
        return err_set (e, err, "fork: %s", strerror (err));
    }
    if (pid == 0) {
        close (sv[0]);
        helper_main (sv[1], parent);
    }
    close (sv[1]);
    helper_sock = sv[0];
    helper = pid;
    helper_wanted = true;
    return 0;
}

static void helper_end (void)
{
    if (helper_sock >= 0)
        close (helper_sock);
    helper_sock = -1;
    if (helper > 0)
        while (waitpid (helper, NULL, 0) < 0 && errno == EINTR)
            ;
    helper = -1;
}

void spawner_stop (void)
{
    helper_wanted = false;
    helper_end ();
}

/* Ends a helper that misbehaved; the next spawn starts a new one. */
static void helper_drop (const char *why)
{
    log_warn ("shim spawner (pid %d): %s; starting a new one", (int)helper, why);
    if (helper > 0)
        kill (helper, SIGKILL);
    helper_end ();
}

static void helper_restart (void)
{
    struct err se = { 0 };
    if (spawner_start (helper_keep, &se) < 0) {
        log_warn ("cannot start a new shim spawner: %s; forking this shim from the runner",
                  se.text);
    }
}

/* Sends the request; 1 when the helper took it, 0 when it could not be sent at all (the
 * helper is gone: no child was started), -1 with E for other errors. */
static int send_req (int kind, const void *msg, size_t len, const int *fds, int nfds,
                     struct err *e)
{
    int memfd = (int)syscall (SYS_memfd_create, "hr-spawn", MFD_CLOEXEC);
    if (memfd < 0)
        return err_set (e, errno, "memfd_create: %s", strerror (errno));
    const char *p = msg;
    size_t left = len;
    while (left) {
        ssize_t w = write (memfd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = errno;
            close (memfd);
            return err_set (e, err, "memfd write: %s", strerror (err));
        }
        p += w;
        left -= (size_t)w;
    }
    struct spawn_req q = { .kind = (uint32_t)kind, .len = (uint32_t)len,
                           .nfds = (uint32_t)nfds };
    int send_fds[SPAWN_MAX_FDS + 1];
    int ns = 0;
    send_fds[ns++] = memfd;
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0) {
            q.fdmask |= 1u << i;
            send_fds[ns++] = fds[i];
        }
    struct iovec iov = { &q, sizeof q };
    union {
        char buf[CMSG_SPACE (sizeof (int) * (SPAWN_MAX_FDS + 1))];
        struct cmsghdr align;
    } u;
    memset (&u, 0, sizeof u);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = CMSG_SPACE (sizeof (int) * (size_t)ns) };
    struct cmsghdr *c = CMSG_FIRSTHDR (&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN (sizeof (int) * (size_t)ns);
    memcpy (CMSG_DATA (c), send_fds, sizeof (int) * (size_t)ns);
    ssize_t w;
    while ((w = sendmsg (helper_sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    int err = errno;
    close (memfd);
    if (w == (ssize_t)sizeof q)
        return 1;
    if (w < 0 && (err == EPIPE || err == ECONNRESET || err == ENOTCONN))
        return 0;
    return err_set (e, err, "sending to the shim spawner: %s", strerror (err));
}

static pid_t recv_rep (int *pidfd, struct err *e)
{
    struct pollfd p = { .fd = helper_sock, .events = POLLIN };
    int r;
    while ((r = poll (&p, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (r == 0) {
        helper_drop ("no answer");
        return err_set (e, ETIMEDOUT, "the shim spawner did not answer");
    }
    struct spawn_rep rep = { 0 };
    struct iovec iov = { &rep, sizeof rep };
    union {
        char buf[CMSG_SPACE (sizeof (int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf };
    ssize_t got;
    while ((got = recvmsg (helper_sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
            && c->cmsg_len >= CMSG_LEN (sizeof (int)))
            memcpy (pidfd, CMSG_DATA (c), sizeof (int));
    if (got != (ssize_t)sizeof rep) {
        /* It may have started the child before it died: do not start another. */
        helper_drop (got == 0 ? "it exited" : "bad answer");
        return err_set (e, EPIPE, "the shim spawner ended while starting the shim");
    }
    if (rep.pid <= 0)
        return err_set (e, rep.err, "the shim spawner cannot fork: %s", strerror (rep.err));
    if (*pidfd < 0)
        errno = rep.err ? rep.err : EBADF;   /* for the caller's message */
    return rep.pid;
}

/* Without a helper: fork the runner itself. */
static pid_t spawn_direct (int kind, const void *msg, size_t len, const int *fds, int nfds,
                           int *pidfd, struct err *e)
{
    pid_t pid = fork ();
    if (pid < 0)
        return err_set (e, errno, "fork: %s", strerror (errno));
    if (pid == 0) {
        char *copy = xmalloc (len + 1);
        memcpy (copy, msg, len);
        copy[len] = '\0';
        handlers[kind](copy, len, fds, nfds);
        _exit (127);
    }
    *pidfd = pidfd_open_ (pid);
    return pid;
}

pid_t spawner_spawn (int kind, const void *msg, size_t len, const int *fds, int nfds,
                     int *pidfd, struct err *e)
{
    *pidfd = -1;
    if (kind < 0 || kind >= nhandlers || nfds < 0 || nfds > SPAWN_MAX_FDS || len > UINT32_MAX)
        return err_set (e, EINVAL, "bad spawn request");
    if (helper_wanted && helper_sock < 0)
        helper_restart ();
    for (int attempt = 0; attempt < 2 && helper_sock >= 0; attempt++) {
        int s = send_req (kind, msg, len, fds, nfds, e);
        if (s < 0)
            return -1;
        if (s == 1)
            return recv_rep (pidfd, e);
        /* The helper is gone and took nothing: start a new one and try again. */
        helper_drop ("it is gone");
        helper_restart ();
    }
    return spawn_direct (kind, msg, len, fds, nfds, pidfd, e);
}
