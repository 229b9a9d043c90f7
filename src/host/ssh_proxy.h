/* ssh_proxy.h - the host's TCP proxy to VPS tasks' SSH ports (HakuRiver 0.3 protocol plus
 * AUTH): threads accept and relay; the loop thread answers "where is task <id>?".
 *
 * Protocol (docs/ssh-proxy.md): the client sends an optional "AUTH <token>\n", then
 * "REQUEST_TUNNEL <task_id>\n"; the proxy answers "ERROR <reason>\n" and closes, or
 * connects to the runner and answers "SUCCESS\n", then relays raw bytes both ways.
 *
 * Threads: one acceptor, one per session. They never touch host state: a session that needs
 * a lookup queues it and writes the eventfd from ssh_proxy_fd(); the loop thread watches it
 * and calls ssh_proxy_answer(). Every thread blocks all signals (the host reads its signals
 * through a signalfd); every socket is close-on-exec. */
#ifndef HR_HOST_SSH_PROXY_H
#define HR_HOST_SSH_PROXY_H

#include "common/err.h"

/* Where a task's SSH server is, filled by the loop's lookup. */
struct ssh_proxy_target {
    char error[256];   /* "" = found; otherwise the reason sent after "ERROR " (newlines and
                          other control characters are sent as spaces) */
    char address[256]; /* runner address to connect to (IPv4/IPv6 literal or hostname) */
    char node[128];    /* node hostname, for messages */
    int port;          /* the VPS container's published SSH port on that runner */
};

/* Runs on the loop thread (inside ssh_proxy_answer); fills *OUT (zeroed before the call) for
 * TASK_ID, the text after REQUEST_TUNNEL, already checked to be 1-20 digits. Must not call
 * any ssh_proxy_* function. */
typedef void (*ssh_proxy_lookup_fn) (void *arg, const char *task_id,
                                     struct ssh_proxy_target *out);

struct ssh_proxy_opts {
    const char *bind_ip;      /* as [network] host_bind_ip: an IPv4 or IPv6 literal;
                                 NULL or "" = 0.0.0.0 */
    int port;                 /* [network] host_ssh_proxy_port; 0 = pick one (tests) */
    const char *token;        /* user API token; NULL or "" = no authentication. Copied. */
    int handshake_timeout_ms; /* the AUTH and REQUEST_TUNNEL lines must arrive within this
                                 time of the accept; 0 = 10000 */
    int connect_timeout_ms;   /* connecting to the runner, all its addresses together;
                                 0 = 15000 */
    int max_sessions;         /* sessions at once (handshake or relay); 0 = 1024; beyond
                                 it new connections get "ERROR Too many sessions." */
};

struct ssh_proxy;

/* Binds, listens and starts the acceptor thread. Returns the proxy (free it with
 * ssh_proxy_stop) or NULL with E set (e.g. the port is taken). */
struct ssh_proxy *ssh_proxy_start (const struct ssh_proxy_opts *o, struct err *e);

/* The bound TCP port (the chosen one when opts.port was 0). */
int ssh_proxy_port (const struct ssh_proxy *p);

/* An eventfd that becomes readable when sessions wait for a lookup; the loop watches it
 * (EPOLLIN) and then calls ssh_proxy_answer. Owned by the proxy. */
int ssh_proxy_fd (const struct ssh_proxy *p);

/* Loop thread: drains the eventfd and answers every waiting lookup by calling FN (ARG, id,
 * out) once per request. A spurious call (nothing waiting) is harmless. */
void ssh_proxy_answer (struct ssh_proxy *p, ssh_proxy_lookup_fn fn, void *arg);

/* Stops accepting, ends every session (a session waiting for a lookup gets "ERROR Server is
 * shutting down.", a relay is cut), joins every thread, closes every socket and frees P.
 * Call it from the thread that calls ssh_proxy_answer (never concurrently with it). Takes
 * well under a second unless a session is inside a DNS lookup of a runner hostname
 * (getaddrinfo cannot be interrupted). NULL is a no-op. */
void ssh_proxy_stop (struct ssh_proxy *p);

#endif
