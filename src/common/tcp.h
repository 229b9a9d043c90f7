/* tcp.h - the TCP client side shared by the CLI and the runner: a connect with a deadline
 * that a stop descriptor can interrupt (hakuriver.ssh's tunnels, the WebSocket terminals),
 * and the wait it is built on */
#ifndef HR_COMMON_TCP_H
#define HR_COMMON_TCP_H

#include <stdint.h>

#include "common/err.h"

/* CLOCK_MONOTONIC in milliseconds. */
int64_t tcp_mono_ms (void);

/* Waits until FD is ready for EVENTS (poll flags), STOP_FD (-1 = none) is readable, or
 * DEADLINE (tcp_mono_ms time) passes. Returns 0 when FD is ready, 1 when stopped, -1 with
 * errno (ETIMEDOUT, or poll's) otherwise. */
int tcp_wait (int fd, short events, int stop_fd, int64_t deadline);

/* Connects to HOST:PORT (a name or an IPv4/IPv6 literal; every address it resolves to is
 * tried in turn), waiting at most TIMEOUT_MS in all. Returns a non-blocking socket with
 * TCP_NODELAY set; -2 when STOP_FD (-1 = none) became readable first; or -1 with E set:
 * E->code is ETIMEDOUT when nothing answered in time, ENOENT when HOST does not resolve,
 * else the system's errno, and E->text the resolver's or the system's reason. */
int tcp_connect (const char *host, int port, int timeout_ms, int stop_fd, struct err *e);

#endif
