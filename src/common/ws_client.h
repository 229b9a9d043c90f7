/* ws_client.h - the client side of a WebSocket handshake over TCP: connect with a timeout,
 * send the upgrade request (with an optional bearer token), check the 101 reply. Used by the
 * CLI's terminals (cli/terminal.c) and by the runner dialling back to the host for a task's
 * terminal (runner/terminal.c). Framing is in common/websocket.h. */
#ifndef HR_COMMON_WS_CLIENT_H
#define HR_COMMON_WS_CLIENT_H

#include <stddef.h>

#include "common/err.h"
#include "common/websocket.h"

/* Connects to ADDR:PORT (a name or an IPv4/IPv6 literal), waiting at most TIMEOUT_MS.
 * Returns a non-blocking socket with TCP_NODELAY set, or -1 with E set (E->text is the
 * resolver's or the system's reason). */
int ws_client_connect (const char *addr, int port, int timeout_ms, struct err *e);

/* What ws_client_handshake learnt when it did not get a WebSocket. */
struct ws_client_refusal {
    int status;          /* the HTTP status of a non-101 reply; 0 when none could be read */
    char *body;          /* its body (at most 64 KiB, NUL-terminated; caller frees), or NULL */
    size_t len;
};

/* Sends "GET PATH" with the upgrade headers on FD (a socket from ws_client_connect), with
 * "Host: HOSTPORT", "User-Agent: AGENT" and "Authorization: Bearer TOKEN" when TOKEN is
 * neither NULL nor empty (the request is wiped from memory after sending), and reads the
 * reply, all within TIMEOUT_MS. Returns 0 when the WebSocket is open: the bytes the host sent
 * after its headers are in EARLY (append-only). Returns -1 otherwise with E set: when the
 * reply was an HTTP status other than 101, REFUSAL (may be NULL) gets it and its body and E
 * says "HTTP <status>"; otherwise REFUSAL->status is 0 and E says what went wrong (no answer,
 * not HTTP, a 101 without a valid handshake). */
int ws_client_handshake (int fd, const char *hostport, const char *path, const char *token,
                         const char *agent, int timeout_ms, struct ws_buf *early,
                         struct ws_client_refusal *refusal, struct err *e);

/* Frees REFUSAL's body (not REFUSAL). */
void ws_client_refusal_free (struct ws_client_refusal *refusal);

/* Formats "ADDR:PORT" into OUT (N bytes), with brackets around an IPv6 literal. */
void ws_client_hostport (const char *addr, int port, char *out, size_t n);

#endif
