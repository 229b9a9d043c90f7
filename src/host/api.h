/* api.h - helpers shared by the route files (api.c, api_task.c, api_runner.c) */
#ifndef HR_HOST_API_H
#define HR_HOST_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/host.h"
#include "host/http.h"

/* Field kinds accepted by api_check_fields. */
enum {
    F_STR = 1, F_INT = 2, F_BOOL = 4, F_ARR = 8, F_OBJ = 16, F_NULL = 32, F_NUM = 64
};
struct field_spec {
    const char *name;
    int kinds;
};

/* Parses REQ's body as a JSON object. Replies 422 and returns NULL when it is not one. */
json_t *api_body_object (struct http_req *req);
/* Checks that every key of O is listed in SPECS with an allowed kind. STRICT rejects unknown
 * keys. Replies 422 naming the field and returns -1 on the first problem. */
int api_check_fields (struct http_req *req, json_t *o, const struct field_spec *specs,
                      bool strict);
/* Parses a decimal task id (1..2^63-1). Returns 0 or -1. */
int api_parse_id (const char *s, uint64_t *out);
/* Loads a task from memory or the store. *owned tells whether the caller must destroy it.
 * Replies 404/500 and returns NULL when it cannot. */
struct task *api_load_task (struct host *h, struct http_req *req, const char *idtext,
                            bool *owned);

void api_submit (struct host *h, struct http_req *req);
void api_status (struct host *h, struct http_req *req, const char *id);
void api_vps_list (struct host *h, struct http_req *req, bool active_only);
void api_tasks (struct host *h, struct http_req *req);
void api_kill (struct host *h, struct http_req *req, const char *id);
/* POST /kill_batch/ID: kills every task of the batch that is not final; replies the counts. */
void api_kill_batch (struct host *h, struct http_req *req, const char *id);
void api_command (struct host *h, struct http_req *req, const char *id, const char *cmd);
void api_task_log (struct host *h, struct http_req *req, const char *id, bool err);
void api_nodes (struct host *h, struct http_req *req);
void api_health (struct host *h, struct http_req *req);

void api_register (struct host *h, struct http_req *req);
void api_heartbeat (struct host *h, struct http_req *req, const char *hostname);
void api_poll (struct host *h, struct http_req *req, const char *hostname);
void api_update (struct host *h, struct http_req *req);
/* api_docker.c: the environment workflow under /docker/ (hakuriver.docker). Runs Docker
 * Engine calls in the host's Docker worker thread; replies when they finish. */
void api_docker (struct host *h, struct http_req *req);
/* api_terminal.c: WebSocket terminal into a host environment container
 * (GET /docker/host/containers/NAME/terminal, hakuriver.docker-shell). */
void api_terminal (struct host *h, struct http_req *req, const char *container);

/* Before the held replies are released (after the scheduling pass): adds each node's
 * commands not yet sent to the replies of its runner's POST /update?ack=..., so a runner
 * gets the next task with the answer to its report instead of through its long-poll. */
void api_attach_commands (struct host *h);
/* Answers held long-polls whose node has commands (woken) or whose deadline passed. */
void api_answer_polls (struct host *h, bool only_expired);

#endif
