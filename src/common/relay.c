/* relay.c - poll()-based bidirectional byte relay with bounded ring buffers and half-close */
#include "common/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/xalloc.h"

/* 256 KiB per direction: enough to keep a loopback or LAN TCP stream busy (a read takes
 * whatever the kernel has queued, typically 64-128 KiB), small enough that 1024 SSH
 * sessions stay within 512 MiB even when every buffer is full. */
#define RELAY_BUF_DEFAULT ((size_t)256 << 10)

/* One direction: bytes read from IN wait in a ring of CAP bytes until OUT takes them. */
struct dir {
    const char *from, *to; /* "A" / "B", for error texts */
    int in, out;
    bool out_sock;         /* OUT is a socket: send with MSG_NOSIGNAL, shutdown at the end */
    char *buf;
    size_t cap;
    size_t head;           /* offset of the oldest byte */
    size_t len;            /* bytes waiting */
    bool eof;              /* IN reached end-of-file */
    bool done;             /* EOF seen and everything delivered (OUT shut down if a socket) */
    uint64_t delivered;
};

/* The descriptors whose file status flags we changed, in the order we changed them. */
struct saved_flags {
    int fd[4];
    int flags[4];
    int n;
};

static const char *why (int code)
{
    switch (code) {
    case EPIPE:
        return "the receiver closed the connection";
    case ECONNRESET:
        return "connection reset by the peer";
    case ETIMEDOUT:
        return "connection timed out";
    default:
        return strerror (code);
    }
}

/* Makes FD non-blocking, remembering its flags once per descriptor number. Returns 0 or -1
 * with E set. */
static int set_nonblock (struct saved_flags *s, int fd, struct err *e)
{
    for (int i = 0; i < s->n; i++)
        if (s->fd[i] == fd)
            return 0;
    int fl = fcntl (fd, F_GETFL);
    if (fl < 0)
        return err_set (e, errno, "relay: fd %d: %s", fd, strerror (errno));
    if (fl & O_NONBLOCK)
        return 0; /* already non-blocking (possibly because it shares a description with
                     a descriptor changed before it): nothing to restore */
    if (fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return err_set (e, errno, "relay: cannot make fd %d non-blocking: %s", fd,
                        strerror (errno));
    s->fd[s->n] = fd;
    s->flags[s->n] = fl;
    s->n++;
    return 0;
}

/* Restores in reverse order: when two descriptors share one open file description (stdin
 * and stdout on a terminal) only the first was changed and is the one restored. */
static void restore_flags (struct saved_flags *s)
{
    int saved = errno;
    for (int i = s->n - 1; i >= 0; i--)
        (void)fcntl (s->fd[i], F_SETFL, s->flags[i]);
    errno = saved;
}

static bool is_socket (int fd)
{
    struct stat st;
    return fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
}

/* Reads as much as fits. Returns 0 (progress, EOF or nothing to read) or -1 with E set. */
static int dir_read (struct dir *d, struct err *e)
{
    size_t space = d->cap - d->len;
    if (space == 0 || d->eof)
        return 0;
    size_t tail = d->head + d->len;
    if (tail >= d->cap)
        tail -= d->cap;
    struct iovec iov[2];
    int n = 1;
    size_t first = d->cap - tail < space ? d->cap - tail : space;
    iov[0].iov_base = d->buf + tail;
    iov[0].iov_len = first;
    if (space > first) {
        iov[1].iov_base = d->buf;
        iov[1].iov_len = space - first;
        n = 2;
    }
    ssize_t r;
    do
        r = readv (d->in, iov, n);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        d->len += (size_t)r;
        return 0;
    }
    if (r == 0) {
        d->eof = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return err_set (e, errno, "relay: reading from %s: %s", d->from, why (errno));
}

/* Writes as much of the buffer as OUT takes. Returns 0 or -1 with E set. */
static int dir_write (struct dir *d, struct err *e)
{
    if (d->len == 0)
        return 0;
    struct iovec iov[2];
    int n = 1;
    size_t first = d->cap - d->head < d->len ? d->cap - d->head : d->len;
    iov[0].iov_base = d->buf + d->head;
    iov[0].iov_len = first;
    if (d->len > first) {
        iov[1].iov_base = d->buf;
        iov[1].iov_len = d->len - first;
        n = 2;
    }
    ssize_t r;
    do {
        if (d->out_sock) {
            struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
            r = sendmsg (d->out, &m, MSG_NOSIGNAL);
        } else {
            r = writev (d->out, iov, n);
        }
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return err_set (e, errno, "relay: writing to %s: %s", d->to, why (errno));
    }
    d->delivered += (uint64_t)r;
    d->len -= (size_t)r;
    d->head += (size_t)r;
    if (d->head >= d->cap)
        d->head -= d->cap;
    if (d->len == 0)
        d->head = 0; /* the next read gets one contiguous piece */
    return 0;
}

/* Ends the direction once its input ended and everything was delivered. Returns 0 or -1. */
static int dir_finish (struct dir *d, struct err *e)
{
    if (d->done || !d->eof || d->len > 0)
        return 0;
    d->done = true;
    /* ENOTCONN: the peer already reset the connection; nothing is left to tell it */
    if (d->out_sock && shutdown (d->out, SHUT_WR) < 0 && errno != ENOTCONN)
        return err_set (e, errno, "relay: shutting down %s for writing: %s", d->to,
                        why (errno));
    return 0;
}

/* Adds FD with EVENTS to the poll set, merging with an entry for the same descriptor (a
 * socket is both an input and an output). Returns the entry's index. */
static int watch (struct pollfd *pf, int *n, int fd, short events)
{
    for (int i = 0; i < *n; i++)
        if (pf[i].fd == fd) {
            pf[i].events |= events;
            return i;
        }
    pf[*n].fd = fd;
    pf[*n].events = events;
    pf[*n].revents = 0;
    return (*n)++;
}

int relay_run (struct relay_end a, struct relay_end b, int stop_fd, size_t buf_max,
               struct relay_stats *stats, struct err *e)
{
    struct saved_flags saved = { .n = 0 };
    struct dir d[2];
    int rc = -1;
    if (stats)
        memset (stats, 0, sizeof *stats);
    if (a.in < 0 || a.out < 0 || b.in < 0 || b.out < 0)
        return err_set (e, EBADF, "relay: invalid descriptor");
    if (buf_max == 0)
        buf_max = RELAY_BUF_DEFAULT;
    memset (d, 0, sizeof d);
    d[0] = (struct dir){ .from = "A", .to = "B", .in = a.in, .out = b.out };
    d[1] = (struct dir){ .from = "B", .to = "A", .in = b.in, .out = a.out };
    int fds[4] = { a.in, a.out, b.in, b.out };
    for (int i = 0; i < 4; i++)
        if (set_nonblock (&saved, fds[i], e) < 0)
            goto out;
    for (int i = 0; i < 2; i++) {
        d[i].out_sock = is_socket (d[i].out);
        d[i].cap = buf_max;
        d[i].buf = xmalloc (buf_max); /* pages are touched only as data arrives */
    }
    for (;;) {
        if (d[0].done && d[1].done) {
            rc = 0;
            break;
        }
        struct pollfd pf[5];
        int n = 0, stop_idx = -1, in_idx[2] = { -1, -1 }, out_idx[2] = { -1, -1 };
        if (stop_fd >= 0)
            stop_idx = watch (pf, &n, stop_fd, POLLIN);
        for (int i = 0; i < 2; i++) {
            if (!d[i].eof && d[i].len < d[i].cap)
                in_idx[i] = watch (pf, &n, d[i].in, POLLIN);
            if (d[i].len > 0)
                out_idx[i] = watch (pf, &n, d[i].out, POLLOUT);
        }
        if (poll (pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            err_set (e, errno, "relay: poll: %s", strerror (errno));
            break;
        }
        if (stop_idx >= 0 && pf[stop_idx].revents) {
            rc = 1;
            break;
        }
        bool failed = false;
        for (int i = 0; i < n; i++)
            if (pf[i].revents & POLLNVAL) {
                err_set (e, EBADF, "relay: fd %d is not open", pf[i].fd);
                failed = true;
            }
        for (int i = 0; i < 2 && !failed; i++) {
            bool readable = in_idx[i] >= 0 && (pf[in_idx[i]].revents & (POLLIN | POLLHUP | POLLERR));
            bool writable = out_idx[i] >= 0 && (pf[out_idx[i]].revents & (POLLOUT | POLLHUP | POLLERR));
            if (readable) {
                size_t before = d[i].len;
                if (dir_read (&d[i], e) < 0) {
                    failed = true;
                    break;
                }
                /* fresh bytes: try to pass them on now rather than after another poll */
                writable = writable || d[i].len > before;
            }
            if (writable && dir_write (&d[i], e) < 0) {
                failed = true;
                break;
            }
            if (dir_finish (&d[i], e) < 0) {
                failed = true;
                break;
            }
        }
        if (failed)
            break;
    }
out:
    if (stats) {
        stats->a_to_b = d[0].delivered;
        stats->b_to_a = d[1].delivered;
    }
    free (d[0].buf);
    free (d[1].buf);
    restore_flags (&saved);
    return rc;
}
