/* tcp.c - TCP connect with a deadline and a stop descriptor (see tcp.h) */
#include "common/tcp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t tcp_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tcp_wait (int fd, short events, int stop_fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - tcp_mono_ms ();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p[2] = { { .fd = fd, .events = events },
                               { .fd = stop_fd, .events = POLLIN } };
        int n = poll (p, stop_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && stop_fd >= 0 && p[1].revents)
            return 1;
        if (n > 0 && p[0].revents)
            return 0;
    }
}

int tcp_connect (const char *host, int port, int timeout_ms, int stop_fd, struct err *e)
{
    char service[16];
    snprintf (service, sizeof service, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo (host, service, &hints, &res);
    if (gai != 0)
        return err_set (e, ENOENT, "%s", gai == EAI_SYSTEM ? strerror (errno)
                                                          : gai_strerror (gai));
    int fd = -1, why = ECONNREFUSED;
    int64_t deadline = tcp_mono_ms () + timeout_ms;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                     ai->ai_protocol);
        if (fd < 0) {
            why = errno;
            continue;
        }
        int w = 0;
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            why = errno;
        } else if ((w = tcp_wait (fd, POLLOUT, stop_fd, deadline)) != 0) {
            why = errno;
        } else {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (!soerr)
                break;
            why = soerr;
        }
        close (fd);
        fd = -1;
        if (w == 1) {
            freeaddrinfo (res);
            return -2;
        }
    }
    freeaddrinfo (res);
    if (fd < 0)
        return err_set (e, why, "%s", strerror (why));
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}
