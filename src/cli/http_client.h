/* http_client.h - a small blocking HTTP/JSON client over one libcurl easy handle (CLI side) */
#ifndef HR_CLI_HTTP_CLIENT_H
#define HR_CLI_HTTP_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "common/err.h"

/* Timeouts (seconds). Connect: a LAN host answers in well under a second, 5 s covers a busy
 * one. Total: 30 s for ordinary calls; status polls use 10 s so --wait notices a dead host. */
#define HTTP_CLIENT_CONNECT_TIMEOUT 5
#define HTTP_CLIENT_TIMEOUT         30
#define HTTP_CLIENT_STATUS_TIMEOUT  10

/* Replies larger than this are refused (64 MiB: a 10,000-task listing is a few MiB). Bodies
 * streamed to a FILE (task logs) have no limit. */
#define HTTP_CLIENT_MAX_BODY (64u << 20)

typedef struct http_client http_client_t;

struct http_resp {
    long status;       /* HTTP status code */
    char *body;        /* NUL-terminated body (empty when streamed to a sink) */
    size_t len;        /* body length in bytes, without the NUL */
    char *next_before; /* value of the X-Next-Before header, NULL when absent */
};

/* Creates a client for BASE_URL ("http://10.0.0.1:8000", no trailing slash). TOKEN, when
 * non-NULL and non-empty, is sent as "Authorization: Bearer <token>" on every request.
 * Returns NULL with E set if libcurl cannot be initialised. */
http_client_t *http_client_create (const char *base_url, const char *token, struct err *e);
void http_client_destroy (http_client_t *c);

/* Returns the base URL the client was created with. */
const char *http_client_url (const http_client_t *c);

/* Performs METHOD ("GET", "POST", "PUT") on PATH (starting with '/', query included) with an
 * optional JSON BODY, waiting at most TIMEOUT_S seconds in total. Fills R (zeroed first;
 * release with http_resp_free) for any HTTP status, 2xx or not, and returns 0. Returns -1
 * when no HTTP reply was received, with e->code ECONNREFUSED (cannot connect or resolve),
 * ETIMEDOUT, EFBIG (reply over HTTP_CLIENT_MAX_BODY) or EIO, and e->text the curl error. */
int http_client_request (http_client_t *c, const char *method, const char *path,
                         const json_t *body, long timeout_s, struct http_resp *r, struct err *e);

/* Like http_client_request with GET, except that a 200 reply's body is written to SINK as
 * it arrives instead of being kept (r->body stays empty); other statuses are kept in R. A
 * write error on SINK fails with EIO. */
int http_client_get_to (http_client_t *c, const char *path, long timeout_s, FILE *sink,
                        struct http_resp *r, struct err *e);

void http_resp_free (struct http_resp *r);

#endif
