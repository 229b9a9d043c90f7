/* docker_api.h - a small blocking client for the Docker Engine API over its unix socket
 * (libcurl). Used by the runner's Docker executor (inside its per-task shim) and by the
 * host's environment workflow (in its worker thread). Never builds `docker` command lines.
 *
 * Paths are unversioned ("/containers/json"): the engine then speaks its own newest API
 * version, and every field used here has been stable since API 1.25. */
#ifndef HR_COMMON_DOCKER_API_H
#define HR_COMMON_DOCKER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"

struct docker;

/* Opens a client for SOCKET_PATH (NULL or "" = $DOCKER_HOST when it is unix://..., else
 * DOCKER_DEFAULT_SOCKET). Nothing is connected yet. Returns NULL with E set. */
struct docker *docker_open (const char *socket_path, struct err *e);
void docker_close (struct docker *d);
const char *docker_socket_path (const struct docker *d);

/* Returns a newly allocated URL-escaped copy of S (free with free()). */
char *docker_escape (const char *s);

/* METHOD PATH with BODY (JSON, may be NULL) and waits up to TIMEOUT_MS (0 = none).
 * Returns the HTTP status, or -1 when the engine could not be reached (E says why).
 * For a status >= 400, E holds the engine's "message" (E->status = the HTTP status).
 * *OUT (if OUT) receives the parsed JSON reply or NULL when it was empty/not JSON. */
int docker_request (struct docker *d, const char *method, const char *path, json_t *body,
                    json_t **out, long timeout_ms, struct err *e);

/* POSTs the contents of FD as the request body (an image tarball for /images/load, a root
 * file system tarball for /images/create?fromSrc=-) and reads the engine's progress stream.
 * Returns 0, or -1 when the transfer failed, the status was >= 400 or the stream carried an
 * "error" (E holds the engine's message). *LAST (if LAST) receives the last JSON object of
 * the stream. */
int docker_upload (struct docker *d, const char *path, int fd, json_t **last, long timeout_ms,
                   struct err *e);

/* Like docker_request without a body, but hands the reply body to SINK as it arrives
 * (SINK returns 0 to go on, -1 to abort). For 2xx replies only; an error reply is read into
 * E instead. Returns the HTTP status or -1. */
typedef int (*docker_sink_fn) (const char *data, size_t len, void *arg);
int docker_stream (struct docker *d, const char *method, const char *path, docker_sink_fn sink,
                   void *arg, long timeout_ms, struct err *e);

/* For endpoints that answer with a stream of JSON progress objects (pull, load, import):
 * scans BODY for an object with an "error" member. Returns 0 if none, -1 with E set. */
int docker_progress_error (const char *body, size_t len, struct err *e);

/* Demultiplexer for the 8-byte framed stdout/stderr stream of /logs and /attach (TTY off).
 * Feed any split of the byte stream; complete frames go to OUT(stream 1) / ERR(stream 2). */
struct docker_demux {
    unsigned char hdr[8];
    size_t have_hdr;
    uint32_t left;               /* payload bytes left in the current frame */
    int stream;
};
typedef int (*docker_frame_fn) (int stream, const char *data, size_t len, void *arg);
int docker_demux_feed (struct docker_demux *m, const char *data, size_t len,
                       docker_frame_fn fn, void *arg);

/* Parses an RFC 3339 time with up to 9 fractional digits ("2026-11-29T23:50:03.459413719Z",
 * or with a +hh:mm offset) into seconds since the epoch. Returns 0 or -1. */
int docker_parse_time (const char *s, double *out);

#endif
