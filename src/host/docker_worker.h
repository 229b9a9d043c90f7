/* docker_worker.h - the host's Docker worker: one thread, with its own Engine API client,
 * that runs the environment operations (pull, create, commit, save...) so that the host's
 * loop never blocks on the engine.
 *
 * The loop thread queues an operation with the request to answer; the request stays
 * suspended (http.c) while the worker runs it. A finished job is handed back through an
 * eventfd that main.c watches, and docker_worker_complete() (loop thread) prepares the
 * reply and releases the request. Jobs never touch host state (tasks, nodes, store): they
 * get copies of the strings they need. */
#ifndef HR_HOST_DOCKER_WORKER_H
#define HR_HOST_DOCKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/err.h"

struct http_req;
struct docker_worker;

/* Longest environment name (a Docker container name, also the tarball prefix). */
#define DOCKER_WORKER_NAME_MAX 64
/* Jobs waiting behind the running one before new requests are refused with 503. */
#define DOCKER_WORKER_QUEUE_MAX 64

enum docker_op {
    DOCKER_OP_LIST,        /* GET /docker/host/containers */
    DOCKER_OP_CREATE,      /* POST /docker/host/create */
    DOCKER_OP_START,       /* POST /docker/host/start/NAME */
    DOCKER_OP_STOP,        /* POST /docker/host/stop/NAME */
    DOCKER_OP_DELETE,      /* POST /docker/host/delete/NAME */
    DOCKER_OP_CREATE_TAR,  /* POST /docker/create_tar/NAME */
    DOCKER_OP_DELETE_TAR,  /* POST /docker/delete_tar/NAME */
};

/* One operation's input (strings are copied by docker_worker_submit). */
struct docker_op_args {
    enum docker_op op;
    const char *name;        /* environment name, already checked with docker_worker_check_name */
    const char *image;       /* DOCKER_OP_CREATE: image reference (or the name to import as) */
    const char *rootfs_tar;  /* DOCKER_OP_CREATE: absolute path of a rootfs tarball, or NULL */
};

/* A tarball `<name>-<ts>.tar` in the container directory. */
struct docker_tar {
    char *name;
    int64_t ts;
    int64_t size;            /* bytes */
    char *path;              /* absolute */
};

/* Starts the worker with copies of what it needs from CONF ([paths] shared_dir, [docker]
 * container_dir, socket, pull_timeout, default environment keys). When
 * CONF->create_default_environment is set, queues the background job that creates the
 * default environment and its tarball unless a tarball of it exists (a failure is logged
 * once; the host keeps serving). Returns NULL with E set when the thread or its eventfd
 * cannot be created. */
struct docker_worker *docker_worker_start (const struct conf *conf, struct err *e);

/* Answers every queued job and the running one 503 ("host shutting down") and releases
 * their requests, asks the running job to give up (a save or pull in progress stops at its
 * next chunk; another engine call is waited for, 5 s at most: after that the thread and
 * what it uses are left to the process exit), joins the thread and frees everything.
 * The caller must run libmicrohttpd afterwards so that the 503s are sent. NULL is a no-op. */
void docker_worker_stop (struct docker_worker *w);

/* The eventfd to watch for EPOLLIN. */
int docker_worker_fd (const struct docker_worker *w);

/* Loop thread, once per iteration: answers the requests of finished jobs (http_release)
 * and logs background results. Cheap when nothing finished. */
void docker_worker_complete (struct docker_worker *w);

/* Queues ARGS for the worker; REQ is answered when it finishes and must stay suspended
 * until then (its handler leaves it unanswered). Returns 0, or -1 with E set (status 503)
 * when the queue holds DOCKER_WORKER_QUEUE_MAX jobs; nothing is queued then. */
int docker_worker_submit (struct docker_worker *w, const struct docker_op_args *args,
                          struct http_req *req, struct err *e);

/* Checks an environment name: 2 to 64 characters, letters, digits, '.', '_' and '-',
 * starting and ending with a letter or digit, with separators as Docker allows them in a
 * repository name ('.', '_', "__" or a run of '-' between letters and digits), so that the
 * container name and the image hakuriver/<lowercase name>:base are both valid. Returns 0
 * or -1 with E saying which rule NAME breaks. */
int docker_worker_check_name (const char *name, struct err *e);

/* Lists the tarballs in DIR, all environments when NAME is NULL, else only NAME's (exact,
 * case-sensitive match), sorted by name, newest first. A missing DIR has none. Returns the
 * count with *OUT set (free with docker_worker_tars_free), or -1 with E set. */
int docker_worker_list_tars (const char *dir, const char *name, struct docker_tar **out,
                             struct err *e);
void docker_worker_tars_free (struct docker_tar *tars, int n);

/* The directory holding the tarballs: <shared_dir>/<container_dir> (newly allocated). */
char *docker_worker_tar_dir (const struct conf *conf);

#endif
