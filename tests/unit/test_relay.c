/* test_relay.c - relay_run: data both ways, half-close, pipes as ends, back-pressure, flag
 * restoration, stop descriptor, errors, throughput (HR_RELAY_BENCH_MB=N for a bigger run) */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/relay.h"
#include "common/xalloc.h"
#include "tap.h"

#define PERIOD 65521 /* prime: a misplaced chunk of any power-of-two size shows up */

static unsigned char pattern[2][PERIOD];

static void pattern_init (void)
{
    uint32_t x = 12345;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PERIOD; i++) {
            x = x * 1103515245u + 12345u;
            pattern[k][i] = (unsigned char)(x >> 16);
        }
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all (int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write (fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until EOF or N bytes. Returns the count, -1 on error. */
static ssize_t read_full (int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read (fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- relay in a thread -------------------------------------------------------------------- */

struct rt {
    struct relay_end a, b;
    int stop;
    size_t buf_max;
    int rc;
    struct relay_stats st;
    struct err e;
    pthread_t t;
};

static void *rt_main (void *arg)
{
    struct rt *r = arg;
    r->rc = relay_run (r->a, r->b, r->stop, r->buf_max, &r->st, &r->e);
    return NULL;
}

static void rt_start (struct rt *r, int ain, int aout, int bin, int bout, int stop, size_t max)
{
    memset (r, 0, sizeof *r);
    r->a = (struct relay_end){ ain, aout };
    r->b = (struct relay_end){ bin, bout };
    r->stop = stop;
    r->buf_max = max;
    pthread_create (&r->t, NULL, rt_main, r);
}

/* ---- pumps: write a pattern / read and check it ------------------------------------------- */

struct pump {
    int fd;
    int k;            /* pattern index */
    uint64_t n;       /* bytes to write / bytes read */
    size_t chunk;
    bool check;       /* reader: compare with the pattern */
    bool close_after; /* writer: close FD (a pipe) instead of shutdown(SHUT_WR) */
    bool bad;
    pthread_t t;
};

static void *writer_main (void *arg)
{
    struct pump *p = arg;
    uint64_t off = 0;
    while (off < p->n) {
        size_t at = (size_t)(off % PERIOD);
        size_t len = PERIOD - at;
        if (len > p->chunk)
            len = p->chunk;
        if (len > p->n - off)
            len = (size_t)(p->n - off);
        if (write_all (p->fd, pattern[p->k] + at, len) < 0) {
            p->bad = true;
            break;
        }
        off += len;
    }
    if (p->close_after)
        close (p->fd);
    else
        shutdown (p->fd, SHUT_WR);
    return NULL;
}

static void *reader_main (void *arg)
{
    struct pump *p = arg;
    char *buf = xmalloc (p->chunk);
    p->n = 0;
    for (;;) {
        ssize_t r = read (p->fd, buf, p->chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            p->bad = true;
            break;
        }
        if (r == 0)
            break;
        if (p->check) {
            size_t done = 0;
            while (done < (size_t)r) {
                size_t at = (size_t)((p->n + done) % PERIOD);
                size_t len = PERIOD - at;
                if (len > (size_t)r - done)
                    len = (size_t)r - done;
                if (memcmp (buf + done, pattern[p->k] + at, len) != 0)
                    p->bad = true;
                done += len;
            }
        }
        p->n += (uint64_t)r;
    }
    free (buf);
    return NULL;
}

static void pump_start (struct pump *p, void *(*fn) (void *), int fd, int k, uint64_t n,
                        size_t chunk, bool check)
{
    memset (p, 0, sizeof *p);
    p->fd = fd;
    p->k = k;
    p->n = n;
    p->chunk = chunk;
    p->check = check;
    pthread_create (&p->t, NULL, fn, p);
}

static int flags (int fd)
{
    return fcntl (fd, F_GETFL);
}

/* ---- tests -------------------------------------------------------------------------------- */

/* X -- sp1 -- [A relay B] -- sp2 -- Y */
static void test_both_ways_and_half_close (void)
{
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    int x = sp1[0], y = sp2[0];
    /* one relay-side descriptor already non-blocking: it must stay so */
    fcntl (sp2[1], F_SETFL, flags (sp2[1]) | O_NONBLOCK);
    int f_a = flags (sp1[1]), f_b = flags (sp2[1]);
    struct rt r;
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], -1, 0);
    char buf[64];
    write_all (x, "hello", 5);
    shutdown (x, SHUT_WR);
    ssize_t n = read_full (y, buf, sizeof buf);
    ok (n == 5 && memcmp (buf, "hello", 5) == 0, "A's bytes reach B");
    /* read_full returned at EOF: the relay shut B down for writing after A's EOF */
    ok (n == 5, "A's EOF reaches B as EOF (shutdown) once the bytes are delivered");
    write_all (y, "world, still talking", 20);
    n = read (x, buf, sizeof buf);
    ok (n == 20 && memcmp (buf, "world, still talking", 20) == 0,
        "after A's half-close, B's bytes still reach A");
    shutdown (y, SHUT_WR);
    n = read (x, buf, sizeof buf);
    is_int (n, 0, "B's EOF reaches A as EOF");
    pthread_join (r.t, NULL);
    is_int (r.rc, 0, "relay ends with 0 when both directions ended");
    is_int (r.st.a_to_b, 5, "stats: A to B bytes");
    is_int (r.st.b_to_a, 20, "stats: B to A bytes");
    is_int (flags (sp1[1]), f_a, "blocking descriptor is blocking again");
    is_int (flags (sp2[1]), f_b, "non-blocking descriptor is still non-blocking");
    ok (fcntl (sp1[1], F_GETFD) >= 0 && fcntl (sp2[1], F_GETFD) >= 0,
        "relay closed no descriptor");
    close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
}

/* A = (stdin-like pipe, stdout-like pipe), B = socket: the ProxyCommand shape. */
static void test_pipe_ends (void)
{
    int in[2], outp[2], sp[2];
    pipe2 (in, O_CLOEXEC);
    pipe2 (outp, O_CLOEXEC);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
    int f_in = flags (in[0]), f_out = flags (outp[1]);
    struct rt r;
    rt_start (&r, in[0], outp[1], sp[1], sp[1], -1, 0);
    char buf[64];
    write_all (in[1], "request", 7);
    close (in[1]); /* stdin ends */
    ssize_t n = read_full (sp[0], buf, sizeof buf);
    ok (n == 7 && memcmp (buf, "request", 7) == 0,
        "pipe input reaches the socket, then its EOF as shutdown");
    write_all (sp[0], "reply", 5);
    shutdown (sp[0], SHUT_WR);
    pthread_join (r.t, NULL);
    is_int (r.rc, 0, "relay with pipe ends returns 0 after both EOFs");
    ok (fcntl (in[0], F_GETFD) >= 0 && fcntl (outp[1], F_GETFD) >= 0,
        "the pipe descriptors stay open (they are the caller's)");
    is_int (flags (in[0]), f_in, "stdin-like pipe: flags restored");
    is_int (flags (outp[1]), f_out, "stdout-like pipe: flags restored");
    fcntl (outp[0], F_SETFL, flags (outp[0]) | O_NONBLOCK);
    n = read (outp[0], buf, sizeof buf);
    ok (n == 5 && memcmp (buf, "reply", 5) == 0, "socket bytes reach the pipe output");
    n = read (outp[0], buf, sizeof buf);
    ok (n < 0 && errno == EAGAIN, "no EOF on the pipe output while the caller holds it");
    close (outp[1]);
    n = read (outp[0], buf, sizeof buf);
    is_int (n, 0, "EOF on the pipe output once the caller closes it");
    close (in[0]), close (outp[0]), close (sp[0]), close (sp[1]);
}

/* Two descriptors of one open file description (stdin and stdout of a terminal): the
 * original blocking mode must come back, not the one seen through the second descriptor. */
static void test_shared_description (void)
{
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    int dupfd = fcntl (sp1[1], F_DUPFD_CLOEXEC, 0);
    struct rt r;
    rt_start (&r, sp1[1], dupfd, sp2[1], sp2[1], -1, 0);
    char buf[8];
    write_all (sp1[0], "x", 1);
    ok (read_full (sp2[0], buf, 1) == 1 && buf[0] == 'x', "relay through dup'ed ends works");
    shutdown (sp1[0], SHUT_WR);
    shutdown (sp2[0], SHUT_WR);
    pthread_join (r.t, NULL);
    is_int (r.rc, 0, "relay ended");
    ok (!(flags (sp1[1]) & O_NONBLOCK) && !(flags (dupfd) & O_NONBLOCK),
        "shared description is blocking again through both descriptors");
    close (dupfd);
    close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
}

static void small_bufs (int sp[2])
{
    int sz = 4096; /* the kernel doubles it; keeps what the sockets hold small and known */
    for (int i = 0; i < 2; i++) {
        setsockopt (sp[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt (sp[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
}

/* B's peer never reads: the writer must be stopped, and the relay must hold at most
 * BUF_MAX bytes. Counted exactly: written = still queued towards the relay + held in the
 * relay + delivered to B. */
static void test_back_pressure (void)
{
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    small_bufs (sp1);
    small_bufs (sp2);
    int stop = eventfd (0, EFD_CLOEXEC);
    const size_t max = 10000;
    struct rt r;
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], stop, max);
    fcntl (sp1[0], F_SETFL, flags (sp1[0]) | O_NONBLOCK);
    static char chunk[65536];
    uint64_t written = 0;
    int idle_rounds = 0;
    while (idle_rounds < 4) { /* no progress for 4 x 50 ms: the writer is stopped */
        ssize_t w = write (sp1[0], chunk, sizeof chunk);
        if (w > 0) {
            written += (uint64_t)w;
            idle_rounds = 0;
            continue;
        }
        idle_rounds++;
        poll (NULL, 0, 50);
        if (written > (64u << 20))
            break;
    }
    ok (written < (4u << 20), "writer stopped after %llu bytes (the far end reads nothing)",
        (unsigned long long)written);
    uint64_t one = 1;
    write (stop, &one, sizeof one);
    pthread_join (r.t, NULL);
    is_int (r.rc, 1, "relay returns 1 through the stop descriptor");
    int queued = 0;
    ioctl (sp1[1], FIONREAD, &queued);
    uint64_t held = written - (uint64_t)queued - r.st.a_to_b;
    ok (held <= max, "relay held %llu bytes <= buf_max %zu (written %llu, queued %d, "
        "delivered %llu)", (unsigned long long)held, max, (unsigned long long)written,
        queued, (unsigned long long)r.st.a_to_b);
    ok (held == max, "and its buffer was full (%llu)", (unsigned long long)held);
    close (stop);
    close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
}

/* Tiny buffers (1 byte, an odd size) and a slow-ish writer: order and content hold while
 * the ring wraps, both directions at once. */
static void test_small_buffers (size_t max, uint64_t n)
{
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    struct rt r;
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], -1, max);
    struct pump wx, wy, rx, ry;
    pump_start (&wx, writer_main, sp1[0], 0, n, 7777, true);
    pump_start (&wy, writer_main, sp2[0], 1, n, 100000, true);
    pump_start (&rx, reader_main, sp1[0], 1, 0, 3000, true);
    pump_start (&ry, reader_main, sp2[0], 0, 0, 65536, true);
    pthread_join (wx.t, NULL), pthread_join (wy.t, NULL);
    pthread_join (rx.t, NULL), pthread_join (ry.t, NULL);
    pthread_join (r.t, NULL);
    is_int (r.rc, 0, "buf_max %zu: relay ended", max);
    ok (!wx.bad && !wy.bad && ry.n == n && rx.n == n && !rx.bad && !ry.bad,
        "buf_max %zu: %llu bytes each way arrive intact (got %llu and %llu)", max,
        (unsigned long long)n, (unsigned long long)ry.n, (unsigned long long)rx.n);
    ok (r.st.a_to_b == n && r.st.b_to_a == n, "buf_max %zu: stats count every byte", max);
    close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
}

static void test_stop (void)
{
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    int stop = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct rt r;
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], stop, 0);
    poll (NULL, 0, 20);
    double t0 = now_s ();
    uint64_t one = 1;
    write (stop, &one, sizeof one);
    pthread_join (r.t, NULL);
    is_int (r.rc, 1, "stop descriptor readable: relay returns 1");
    ok (now_s () - t0 < 1.0, "and promptly (%.3f s)", now_s () - t0);
    struct pollfd pf = { .fd = stop, .events = POLLIN };
    ok (poll (&pf, 1, 0) == 1, "the stop descriptor was not consumed");
    ok (!(flags (sp1[1]) & O_NONBLOCK), "flags restored after a stop");
    /* already readable before the start: returns at once */
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], stop, 0);
    pthread_join (r.t, NULL);
    is_int (r.rc, 1, "a stop descriptor readable at start stops at once");
    close (stop);
    close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
}

static void test_epipe (void)
{
    /* SIGPIPE keeps its default action here: a socket write without MSG_NOSIGNAL would
     * kill the test */
    signal (SIGPIPE, SIG_DFL);
    int sp1[2], sp2[2];
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
    close (sp2[0]); /* B's peer is gone */
    struct rt r;
    rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], -1, 0);
    write_all (sp1[0], "data for nobody", 15);
    pthread_join (r.t, NULL);
    is_int (r.rc, -1, "writing to a closed peer fails");
    is_int (r.e.code, EPIPE, "with EPIPE");
    like (r.e.text, "writing to B: the receiver closed the connection", "and says so: %s",
          r.e.text);
    ok (!(flags (sp1[1]) & O_NONBLOCK), "flags restored after an error");
    close (sp1[0]), close (sp1[1]), close (sp2[1]);
}

static int tcp_pair (int *client, int *server)
{
    int l = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    if (bind (l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (l, 1) < 0 ||
        getsockname (l, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    *client = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect (*client, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    *server = accept4 (l, NULL, NULL, SOCK_CLOEXEC);
    close (l);
    return *server < 0 ? -1 : 0;
}

static void test_reset (void)
{
    int sp[2], c, s;
    socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
    if (tcp_pair (&c, &s) < 0) {
        skip (3, "no loopback TCP");
        return;
    }
    struct rt r;
    rt_start (&r, sp[1], sp[1], s, s, -1, 0);
    /* unread data at close makes the kernel send RST; SO_LINGER 0 makes sure */
    struct linger lg = { 1, 0 };
    setsockopt (c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    poll (NULL, 0, 20);
    close (c);
    pthread_join (r.t, NULL);
    is_int (r.rc, -1, "a reset connection fails the relay");
    is_int (r.e.code, ECONNRESET, "with ECONNRESET");
    like (r.e.text, "reading from B: connection reset by the peer", "and says so: %s",
          r.e.text);
    close (s), close (sp[0]), close (sp[1]);
}

static void test_bad_fd (void)
{
    struct err e = { 0 };
    struct relay_stats st = { 1, 1 };
    int rc = relay_run ((struct relay_end){ -1, -1 }, (struct relay_end){ 0, 1 }, -1, 0, &st, &e);
    ok (rc == -1 && e.code == EBADF && st.a_to_b == 0, "negative descriptor refused: %s",
        e.text);
    int p[2];
    pipe2 (p, O_CLOEXEC);
    close (p[0]);
    close (p[1]);
    rc = relay_run ((struct relay_end){ p[0], p[1] }, (struct relay_end){ p[0], p[1] }, -1, 0,
                    NULL, &e);
    ok (rc == -1 && e.code == EBADF, "closed descriptor refused: %s", e.text);
}

/* MB/s through the relay (socketpair -> relay -> socketpair) and directly (one socketpair),
 * same sizes and chunking. */
static void bench (uint64_t n)
{
    double direct = 0, relayed = 0;
    for (int mode = 0; mode < 2; mode++) {
        int sp1[2], sp2[2];
        socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp1);
        socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2);
        struct rt r;
        struct pump w, rd;
        double t0 = now_s ();
        if (mode == 1)
            rt_start (&r, sp1[1], sp1[1], sp2[1], sp2[1], -1, 0);
        pump_start (&w, writer_main, sp1[0], 0, n, 65536, false);
        pump_start (&rd, reader_main, mode ? sp2[0] : sp1[1], 0, 0, 65536, false);
        pthread_join (w.t, NULL);
        pthread_join (rd.t, NULL);
        if (mode == 1) {
            shutdown (sp2[0], SHUT_WR);
            pthread_join (r.t, NULL);
        }
        double dt = now_s () - t0;
        double mbs = (double)n / 1e6 / dt;
        ok (rd.n == n, "%s: %llu bytes in %.3f s = %.0f MB/s", mode ? "relayed" : "direct",
            (unsigned long long)rd.n, dt, mbs);
        if (mode)
            relayed = mbs;
        else
            direct = mbs;
        close (sp1[0]), close (sp1[1]), close (sp2[0]), close (sp2[1]);
    }
    diag ("relay throughput: %.0f MB/s relayed vs %.0f MB/s direct (%.0f%%)", relayed, direct,
          direct > 0 ? 100 * relayed / direct : 0);
}

int main (void)
{
    alarm (300); /* every test has a timeout; valgrind makes this one slow */
    pattern_init ();
    test_both_ways_and_half_close ();
    test_pipe_ends ();
    test_shared_description ();
    test_back_pressure ();
    test_small_buffers (1, 65536);
    test_small_buffers (4093, 4u << 20);
    test_small_buffers (0, 16u << 20);
    test_stop ();
    test_epipe ();
    test_reset ();
    test_bad_fd ();
    const char *mb = getenv ("HR_RELAY_BENCH_MB");
    bench ((uint64_t)(mb ? atoi (mb) : 64) << 20);
    return done_testing ();
}
