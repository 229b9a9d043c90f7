/* relay.h - copies bytes both ways between two connections, with back-pressure and
 * half-close: used by the host's SSH proxy (host/ssh_proxy.c) and by hakuriver.ssh
 * (cli/cmd_ssh.c), for socket<->socket and stdin/stdout<->socket. */
#ifndef HR_COMMON_RELAY_H
#define HR_COMMON_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* One side of the relay: where its bytes come from and where bytes for it go. For a socket
 * IN == OUT. For a ProxyCommand it is stdin (IN) and stdout (OUT). */
struct relay_end {
    int in;
    int out;
};

struct relay_stats {
    uint64_t a_to_b;   /* bytes delivered from A to B */
    uint64_t b_to_a;
};

/* Relays until both directions have seen end-of-file and delivered everything, an error
 * occurs, or STOP_FD (an eventfd/pipe, -1 = none) becomes readable; STOP_FD is only polled,
 * never read, so one stop descriptor can serve many relays.
 *
 * Half-close: when one side's input ends and the bytes in flight are delivered, the other
 * side's output is shut down for writing (shutdown(SHUT_WR)) when it is a socket. A
 * non-socket output (a pipe, stdout) is left open and simply no longer written: the
 * descriptors stay the caller's, so its reader sees end-of-file only when the caller closes
 * it after relay_run returns.
 *
 * Back-pressure: at most BUF_MAX bytes (0 = 256 KiB) wait per direction; while a
 * direction's buffer is full its input is not read, so a slow reader stops the fast writer
 * instead of growing memory.
 *
 * The descriptors are made non-blocking during the relay and get their original file
 * status flags back before it returns (also when two of them share one open file
 * description, as stdin and stdout on a terminal do); they are never closed. Socket outputs
 * are written with MSG_NOSIGNAL; a write to a pipe whose reader is gone raises SIGPIPE, so
 * a caller relaying into a pipe ignores or blocks SIGPIPE. Thread-safe: no shared state.
 *
 * Returns 0 (both directions ended), 1 (stopped through STOP_FD) or -1 with E set (a read
 * or write failed; e->code is the errno, e.g. EPIPE or ECONNRESET, and the text names the
 * side, "A" or "B"). STATS (may be NULL) always says what was delivered. */
int relay_run (struct relay_end a, struct relay_end b, int stop_fd, size_t buf_max,
               struct relay_stats *stats, struct err *e);

#endif
