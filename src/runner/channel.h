/* channel.h - the runner's HTTP client to the host: libcurl multi, one reusable easy
 * handle per request kind (keep-alive), driven from the runner's single-threaded loop. */
#ifndef HR_RUNNER_CHANNEL_H
#define HR_RUNNER_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "common/err.h"

struct channel;
struct channel_req;

/* Called once per finished request, from channel_run(), after the transfer was detached:
 * the callback may start the same request again. */
typedef void (*channel_done_f) (struct channel_req *req, void *arg);

/* BASE_URL is "http://addr:port" (no trailing slash). TOKEN (NULL or "" = none) is kept
 * only inside an in-memory "Authorization: Bearer" header, wiped on destroy.
 * Returns NULL on error. */
struct channel *channel_create (const char *base_url, const char *token, struct err *e);
/* Aborts transfers in flight and frees every request. Accepts NULL. */
void channel_destroy (struct channel *ch);

/* A request slot; NAME (static string) appears in logs. Owned by CH. */
struct channel_req *channel_req_create (struct channel *ch, const char *name, channel_done_f cb,
                                        void *arg);

/* Starts METHOD ("GET", "POST", "PUT") on PATH (already URL-encoded, starting with "/").
 * Takes ownership of BODY (may be NULL; freed with free()). TIMEOUT_MS bounds the whole
 * transfer. Returns 0, or -1 when the slot is busy or curl refuses the request. */
int channel_req_start (struct channel_req *req, const char *method, const char *path,
                       char *body, long timeout_ms, struct err *e);
/* True between channel_req_start() and the completion callback. */
bool channel_req_busy (const struct channel_req *req);
/* Results, valid in the callback and until the next start: HTTP status (0 when no reply
 * arrived), the transport error text ("" when a reply arrived), the reply body (never NULL,
 * NUL-terminated), and the request name. */
long channel_req_status (const struct channel_req *req);
const char *channel_req_error (const struct channel_req *req);
const char *channel_req_body (const struct channel_req *req);
const char *channel_req_name (const struct channel_req *req);
/* Seconds the last transfer took. */
double channel_req_elapsed (const struct channel_req *req);

/* Waits up to TIMEOUT_MS for network activity or for one of EXTRA (NEXTRA entries; their
 * revents are filled in), performs transfers and runs the callbacks of finished requests.
 * Returns 0 or -1 on a curl multi error. */
int channel_run (struct channel *ch, struct curl_waitfd *extra, unsigned nextra, int timeout_ms,
                 struct err *e);

/* URL-encodes S into a new string (caller frees). */
char *channel_escape (struct channel *ch, const char *s);

#endif
