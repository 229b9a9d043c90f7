/* test_spawner.c - the shim spawner: message packing, children started by the helper (pid,
 * pidfd, descriptors, -1 entries, big messages), the helper's name and fate, replacement of a
 * killed helper, the fork fallback, bad requests */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/spawner.h"
#include "tap.h"

/* The child: writes "<ppid> <message> <fd1 is -1>" to fds[0], then exits 7. */
static void echo_handler (char *msg, size_t len, const int *fds, int nfds)
{
    char buf[256];
    int n = snprintf (buf, sizeof buf, "%d %zu %.40s %d %d", (int)getppid (), len, msg,
                      nfds, nfds > 1 ? fds[1] : -2);
    if (write (fds[0], buf, (size_t)n) != n)
        _exit (1);
    _exit (7);
}

/* The child: unpacks a message built with spawn_msg_put_* and writes what it read. */
static void unpack_handler (char *msg, size_t len, const int *fds, int nfds)
{
    struct spawn_reader r = { .p = msg, .left = len };
    int x = 0;
    spawn_read (&r, &x, sizeof x);
    const char *s = spawn_read_str (&r);
    const char *null = spawn_read_str (&r);
    char **v = spawn_read_strv (&r);
    char **nv = spawn_read_strv (&r);
    char buf[512];
    int n = snprintf (buf, sizeof buf, "%d|%s|%s|%s,%s,%s|%s|%d", x, s ? s : "?",
                      null ? "notnull" : "null", v && v[0] ? v[0] : "?",
                      v && v[1] ? v[1] : "?", v && v[2] ? "more" : "end", nv ? "notnull" : "null",
                      r.bad);
    if (write (fds[0], buf, (size_t)n) != n)
        _exit (1);
    _exit (0);
}

static int k_echo, k_unpack;

static int wait_pidfd (int pidfd, int ms)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll (&p, 1, ms);
}

static void read_all (int fd, char *buf, size_t size)
{
    size_t have = 0;
    ssize_t got;
    while (have + 1 < size && (got = read (fd, buf + have, size - 1 - have)) > 0)
        have += (size_t)got;
    buf[have] = '\0';
}

/* Spawns the echo handler with MSG; returns the text it wrote, in BUF. */
static pid_t run_echo (const char *msg, int extra_fd, char *buf, size_t size, int *pidfd)
{
    int p[2];
    if (pipe2 (p, O_CLOEXEC) < 0)
        return -1;
    int fds[2] = { p[1], extra_fd };
    struct err e = { 0 };
    pid_t pid = spawner_spawn (k_echo, msg, strlen (msg) + 1, fds, 2, pidfd, &e);
    close (p[1]);
    if (pid < 0) {
        diag ("spawn: %s", e.text);
        close (p[0]);
        return -1;
    }
    read_all (p[0], buf, size);
    close (p[0]);
    return pid;
}

int main (void)
{
    signal (SIGPIPE, SIG_IGN);
    k_echo = spawner_register (echo_handler);
    k_unpack = spawner_register (unpack_handler);
    ok (k_echo == 0 && k_unpack == 1, "handlers get numbers in order");
    is_int (spawner_register (echo_handler), k_echo, "registering again gives the same number");
    is_int (spawner_pid (), -1, "no helper before spawner_start");

    /* Fallback: no helper, the test process forks the child itself. */
    char buf[512];
    int pidfd = -1;
    pid_t pid = run_echo ("direct", -1, buf, sizeof buf, &pidfd);
    ok (pid > 0, "without a helper the child is forked directly");
    char want[256];
    snprintf (want, sizeof want, "%d 7 direct 2 -1", (int)getpid ());
    is_str (buf, want, "direct child ran the handler with the message and a -1 descriptor");
    ok (pidfd >= 0 && wait_pidfd (pidfd, 5000) == 1, "pidfd of the direct child signals its end");
    int st = 0;
    ok (waitpid (pid, &st, 0) == pid && WIFEXITED (st) && WEXITSTATUS (st) == 7,
        "direct child is ours and exits with the handler's status");
    close (pidfd);

    struct err e = { 0 };
    ok (spawner_start (-1, &e) == 0, "spawner_start");
    pid_t helper = spawner_pid ();
    ok (helper > 0, "helper pid %d", (int)helper);
    char comm[64] = "", path[64];
    snprintf (path, sizeof path, "/proc/%d/comm", (int)helper);
    for (int i = 0; i < 100; i++) {   /* it renames itself right after the fork */
        FILE *f = fopen (path, "r");
        if (f) {
            if (!fgets (comm, sizeof comm, f))
                comm[0] = '\0';
            fclose (f);
        }
        if (strcmp (comm, SPAWNER_COMM "\n") == 0)
            break;
        usleep (10000);
    }
    is_str (comm, SPAWNER_COMM "\n", "helper is named " SPAWNER_COMM);

    int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    pid = run_echo ("through the helper", devnull, buf, sizeof buf, &pidfd);
    ok (pid > 0, "child started by the helper");
    snprintf (want, sizeof want, "%d 19 through the helper 2 ", (int)helper);
    ok (strncmp (buf, want, strlen (want)) == 0 && atoi (buf + strlen (want)) >= 3,
        "its parent is the helper, it got the message and a real second descriptor (%s)", buf);
    ok (pidfd >= 0 && wait_pidfd (pidfd, 5000) == 1, "pidfd from the helper signals the end");
    ok (waitpid (pid, NULL, WNOHANG) < 0 && errno == ECHILD, "the child is not ours");
    close (pidfd);

    /* A message far bigger than a socket buffer. */
    size_t big = 4u << 20;
    char *m = malloc (big);
    memset (m, 'x', big - 1);
    m[big - 1] = '\0';
    pid = run_echo (m, -1, buf, sizeof buf, &pidfd);
    snprintf (want, sizeof want, "%d %zu xxxx", (int)helper, big);
    ok (pid > 0 && strncmp (buf, want, strlen (want)) == 0, "4 MiB message arrives whole");
    if (pidfd >= 0)
        close (pidfd);
    free (m);

    /* Packing helpers. */
    struct spawn_msg sm = { 0 };
    int x = 42;
    spawn_msg_put (&sm, &x, sizeof x);
    spawn_msg_put_str (&sm, "hello");
    spawn_msg_put_str (&sm, NULL);
    char *vec[] = { "a", "bb", NULL };
    spawn_msg_put_strv (&sm, vec);
    spawn_msg_put_strv (&sm, NULL);
    int p[2];
    ok (pipe2 (p, O_CLOEXEC) == 0, "pipe");
    int fds1[1] = { p[1] };
    pid = spawner_spawn (k_unpack, sm.buf, sm.len, fds1, 1, &pidfd, &e);
    close (p[1]);
    read_all (p[0], buf, sizeof buf);
    close (p[0]);
    is_str (buf, "42|hello|null|a,bb,end|null|0", "message packed and unpacked");
    if (pidfd >= 0)
        close (pidfd);
    struct spawn_reader r = { .p = sm.buf, .left = sm.len - 3 };
    int y;
    spawn_read (&r, &y, sizeof y);
    spawn_read_str (&r);
    spawn_read_str (&r);
    char **v = spawn_read_strv (&r);
    ok (!r.bad && v && v[2] == NULL, "the complete part reads back");
    free (v);
    char **nv = spawn_read_strv (&r);
    ok (r.bad && !nv, "a truncated message is detected");
    spawn_msg_free (&sm);

    /* Bad requests. */
    ok (spawner_spawn (99, "x", 1, NULL, 0, &pidfd, &e) < 0 && pidfd == -1,
        "unknown handler refused");
    int many[SPAWN_MAX_FDS + 1] = { 0 };
    ok (spawner_spawn (k_echo, "x", 1, many, SPAWN_MAX_FDS + 1, &pidfd, &e) < 0,
        "too many descriptors refused");

    /* A killed helper is replaced on the next spawn. */
    kill (helper, SIGKILL);
    usleep (100000);
    pid = run_echo ("after kill", -1, buf, sizeof buf, &pidfd);
    pid_t helper2 = spawner_pid ();
    ok (pid > 0 && helper2 > 0 && helper2 != helper, "a new helper (%d) replaced the killed one",
        (int)helper2);
    snprintf (want, sizeof want, "%d 11 after kill", (int)helper2);
    ok (strncmp (buf, want, strlen (want)) == 0, "the child came from the new helper (%s)", buf);
    if (pidfd >= 0)
        close (pidfd);

    /* Children outlive the helper; the helper ends when we stop it. */
    int hold[2];
    ok (pipe2 (hold, O_CLOEXEC) == 0, "pipe");
    int fds2[2] = { hold[1], -1 };
    pid = spawner_spawn (k_echo, "bye", 4, fds2, 2, &pidfd, &e);
    close (hold[1]);
    read_all (hold[0], buf, sizeof buf);
    close (hold[0]);
    spawner_stop ();
    ok (spawner_pid () == -1 && kill (helper2, 0) < 0, "spawner_stop ends the helper");
    ok (pidfd >= 0 && wait_pidfd (pidfd, 5000) == 1, "the last child still ended normally");
    if (pidfd >= 0)
        close (pidfd);
    close (devnull);
    return done_testing ();
}
