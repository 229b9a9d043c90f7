/* docker_exec.h - an interactive shell in a running container (a Docker exec with a TTY) and
 * the relay between it and a WebSocket speaking the terminal messages (docs/docker-shell.md):
 * client -> shell {"type":"input","data":S}, {"type":"resize","rows":R,"cols":C}; shell ->
 * client {"type":"output","data":S} (UTF-8, never cut inside a character), {"type":"error",
 * "data":S}, {"type":"exit","code":N} then close 1000.
 *
 * Shared by the host (hakuriver.docker-shell: host/api_terminal.c, the WebSocket server role)
 * and the runner (task connect: runner/terminal.c, which dials the host and is the client
 * role). Every call blocks on the engine or the socket: run it on a thread of its own. Never
 * logs; the outcome says what happened. */
#ifndef HR_COMMON_DOCKER_EXEC_H
#define HR_COMMON_DOCKER_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/docker_api.h"
#include "common/err.h"

/* Inspects CONTAINER (a name or id: must be running and not paused), picks /bin/bash when it
 * exists there, else /bin/sh, and creates an exec of it with a TTY and TERM=xterm. Returns
 * the exec id (caller frees) with *SHELL the shell's path (a static string), or NULL with E
 * set: E->text is a message for the user, E->status the HTTP status that fits: 404 no such
 * container, 409 not running or no shell, 502 engine error, 503 engine unreachable. */
char *docker_exec_create (struct docker *d, const char *container, const char **shell,
                          struct err *e);

/* One relay: what it needs, and what happened. */
struct docker_exec_relay {
    /* in */
    struct docker *d;            /* the engine client (docker_exec_create's) */
    const char *container;       /* for messages */
    const char *exec_id;
    int ws;                      /* the WebSocket's socket; used non-blocking, never closed */
    bool server;                 /* WebSocket role: a server reads masked frames and sends
                                    unmasked ones, a client the reverse (RFC 6455 5.3) */
    const void *early;           /* WebSocket bytes read with the handshake, may be NULL */
    size_t early_len;
    int stop_fd;                 /* readable = stop now (the daemon is stopping); -1 = none */
    const char *stop_message;    /* the error message sent then, before close 1001 */
    const char *gone_message;    /* sent as an error message when the shell's stream ends
                                    because the container stopped; NULL = "Container 'NAME'
                                    stopped." */
    int rows, cols;              /* initial terminal size, 0 = none */
    /* out */
    int exit_code;               /* the shell's exit status, -1 when unknown or none */
    bool started;                /* the exec's stream was opened */
    const char *why;             /* how the session ended (static text, for the log) */
    struct err err;              /* why the shell did not start, or a hang-up failure */
};

/* Starts the exec (POST /exec/ID/start hijacked, raw TTY bytes) and relays between it and
 * the WebSocket until the shell ends (exit message + close 1000), the peer closes or
 * vanishes, STOP_FD fires, or a protocol error (close 1002/1007/1009). A shell still running
 * at the end is hung up (SIGHUP, SIGKILL after 1 s): the engine would leave it running. When
 * the exec cannot start, an error message and close 1011 are sent. Returns 0, or -1 when the
 * shell did not start (R->err says why). */
int docker_exec_relay (struct docker_exec_relay *r);

/* Sends MESSAGE as an error message and closes the WebSocket on WS with CODE, then waits up
 * to 2 s for the peer's close (frames masked unless SERVER), reading what the peer sends
 * (after the EARLY_LEN bytes at EARLY, read with the handshake) and dropping it. For a
 * session refused before any shell exists. Returns 0, or -1 when the socket failed. */
int docker_exec_send_error (int ws, bool server, const void *early, size_t early_len,
                            const char *message, int code);

#endif
