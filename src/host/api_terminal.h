/* api_terminal.h - the host's WebSocket terminals: hakuriver.docker-shell into a host
 * environment container (api_terminal.c; its route is declared in api.h) and task connect,
 * a shell in a running task's container relayed through its runner (api_task_terminal.c,
 * docs/terminal.md). */
#ifndef HR_HOST_API_TERMINAL_H
#define HR_HOST_API_TERMINAL_H

#include <stddef.h>

#include "host/host.h"
#include "host/http.h"

/* Checks that REQ is a WebSocket upgrade request (RFC 6455: GET, Upgrade: websocket,
 * Connection: Upgrade, version 13, a valid key); WHAT names the endpoint in the message for
 * a plain request. Returns 0 with ACCEPT (the Sec-WebSocket-Accept value), or the HTTP status
 * to reply (400 or 405) with DETAIL (N bytes) saying why; a wrong version also adds the
 * Sec-WebSocket-Version: 13 header to REQ's reply. */
int api_ws_check (struct http_req *req, const char *what, char accept[29], char *detail,
                  size_t n);

/* GET /task/ID/terminal (user API): validates the task (404 unknown, 409 not running, native
 * or its node offline), queues a "term" command for its node and upgrades; a thread relays
 * once the runner dialled back (or sends an error after 15 s). */
void api_task_terminal (struct host *h, struct http_req *req, const char *id);

/* GET /runner/terminal/SESSION?hostname=H&node_id=N (runner channel, join token): the
 * runner's half of a session opened for its node. 404 unknown or expired session, 403 a
 * session of another node, 409 already attached. */
void api_runner_terminal (struct host *h, struct http_req *req, const char *session);

#endif
