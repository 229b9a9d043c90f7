/* api_docker.c - the environment workflow under /docker/ (hakuriver.docker): routes and
 * input checks here, the Engine calls in the Docker worker thread (docker_worker.c).
 *
 *   GET  /docker/host/containers                 environment containers of this host
 *   POST /docker/host/create                     {image_name, container_name[, rootfs_tar]}
 *   POST /docker/host/{start,stop,delete}/NAME
 *   GET  /docker/host/containers/NAME/terminal   WebSocket shell (api_terminal.c)
 *   GET  /docker/list                            tarballs in <shared_dir>/<container_dir>
 *   POST /docker/create_tar/NAME                 commit + save NAME to NAME-<ts>.tar
 *   POST /docker/delete_tar/NAME                 delete every tarball of NAME
 *
 * A handler that queues a job leaves the request unanswered: http.c suspends it, and the
 * loop thread answers it when the worker is done (docker_worker_complete). */
#include <ctype.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "host/api.h"
#include "host/docker_worker.h"

/* Docker image references are at most 255 characters in practice (registry host, path,
 * tag); the engine checks the exact grammar. */
#define IMAGE_MAX 255

static void queue (struct host *h, struct http_req *req, const struct docker_op_args *a)
{
    struct err e = { 0 };
    if (!h->docker) {
        http_reply_error (req, 503, "The Docker worker is not running (see the host log); "
                          "Docker environments are unavailable");
        return;
    }
    if (docker_worker_submit (h->docker, a, req, &e) < 0)
        http_reply_error (req, e.status ? e.status : 503, "%s", e.text);
    /* else: left unanswered until the worker finishes */
}

/* Checks NAME from a URL or body field WHAT. Replies 422 and returns -1 when it is bad. */
static int check_name (struct http_req *req, const char *what, const char *name)
{
    struct err e = { 0 };
    if (docker_worker_check_name (name, &e) == 0)
        return 0;
    char esc[300];
    http_reply_error (req, 422, "Invalid %s '%s': an environment name %s", what,
                      log_escape (name, esc, sizeof esc), e.text);
    return -1;
}

static int check_image (struct http_req *req, const char *image)
{
    size_t n = strlen (image);
    bool ok = n > 0 && n <= IMAGE_MAX && isalnum ((unsigned char)image[0]);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)image[i];
        ok = isalnum (c) || strchr ("._-/:@", c);
    }
    if (ok)
        return 0;
    char esc[300];
    http_reply_error (req, 422, "Invalid image_name '%s': expected an image reference such as "
                      "'alpine:3.20' or 'registry.example.com/team/env:v1' (letters, digits and "
                      "._-/:@, at most %d characters)", log_escape (image, esc, sizeof esc),
                      IMAGE_MAX);
    return -1;
}

/* A required string field; replies 422 and returns NULL when it is missing, empty or holds
 * a NUL byte. */
static const char *string_field (struct http_req *req, json_t *o, const char *key,
                                 const char *what)
{
    json_t *v = json_object_get (o, key);
    const char *s = json_string_value (v);
    if (!s || !*s) {
        http_reply_error (req, 422, "Field '%s' is required (%s)", key, what);
        return NULL;
    }
    if (strlen (s) != json_string_length (v)) {
        http_reply_error (req, 422, "Field '%s' contains a NUL character", key);
        return NULL;
    }
    return s;
}

static void create (struct host *h, struct http_req *req)
{
    static const struct field_spec fields[] = {
        { "image_name", F_STR },
        { "container_name", F_STR },
        { "rootfs_tar", F_STR | F_NULL },
        { NULL, 0 },
    };
    json_t *o = api_body_object (req);
    if (!o)
        return;
    struct docker_op_args a = { .op = DOCKER_OP_CREATE };
    if (api_check_fields (req, o, fields, true) < 0)
        goto out;
    if (!(a.image = string_field (req, o, "image_name", "the image to create the environment "
                                  "from, or the name to import rootfs_tar as"))
        || check_image (req, a.image) < 0)
        goto out;
    if (!(a.name = string_field (req, o, "container_name", "the environment's name"))
        || check_name (req, "container_name", a.name) < 0)
        goto out;
    if (json_is_string (json_object_get (o, "rootfs_tar"))) {
        if (!(a.rootfs_tar = string_field (req, o, "rootfs_tar", "a root file system tarball "
                                           "on the host")))
            goto out;
        if (a.rootfs_tar[0] != '/') {
            char esc[300];
            http_reply_error (req, 422, "Field 'rootfs_tar' must be an absolute path on the "
                              "host, not '%s'", log_escape (a.rootfs_tar, esc, sizeof esc));
            goto out;
        }
    }
    queue (h, req, &a); /* copies the strings */
out:
    json_decref (o);
}

/* GET /docker/list: runs here rather than in the worker (a directory listing is quick, and
 * it should not wait behind a long save). Shape (0.3 keys, plus sizes and the image):
 * {"NAME": {"latest_timestamp": TS, "latest_tarball": PATH, "latest_size_bytes": N,
 *           "image": "hakuriver/<name>:base",
 *           "all_versions": [{"timestamp": TS, "tarball": PATH, "size_bytes": N}, ...]}},
 * names sorted, versions newest first. */
static void list_tars (struct host *h, struct http_req *req)
{
    char *dir = docker_worker_tar_dir (h->conf);
    struct docker_tar *tars;
    struct err e = { 0 };
    int n = docker_worker_list_tars (dir, NULL, &tars, &e);
    if (n < 0) {
        http_reply_error (req, 500, "Cannot list the container directory: %s", e.text);
        free (dir);
        return;
    }
    json_t *out = json_object ();
    json_t *entry = NULL, *versions = NULL;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp (tars[i].name, tars[i - 1].name) != 0) {
            char *lname = xstrdup (tars[i].name);
            for (char *p = lname; *p; p++)
                *p = (char)tolower ((unsigned char)*p);
            versions = json_array ();
            entry = json_pack ("{s:I, s:s, s:I, s:s++, s:o}", "latest_timestamp",
                               (json_int_t)tars[i].ts, "latest_tarball", tars[i].path,
                               "latest_size_bytes", (json_int_t)tars[i].size, "image",
                               "hakuriver/", lname, ":base", "all_versions", versions);
            free (lname);
            json_object_set_new (out, tars[i].name, entry);
        }
        json_array_append_new (versions, json_pack ("{s:I, s:s, s:I}", "timestamp",
                                                    (json_int_t)tars[i].ts, "tarball",
                                                    tars[i].path, "size_bytes",
                                                    (json_int_t)tars[i].size));
    }
    docker_worker_tars_free (tars, n);
    free (dir);
    http_reply_json (req, 200, out);
}

/* Splits PATH ("host/start/x") into at most 4 segments. Returns the count, or -1 when there
 * are more or one is empty or too long. */
static int split (const char *path, char seg[4][256])
{
    int n = 0;
    const char *p = path;
    if (!*p)
        return 0;
    for (;;) {
        const char *slash = strchr (p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen (p);
        if (n == 4 || len == 0 || len >= 256)
            return -1;
        memcpy (seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

void api_docker (struct host *h, struct http_req *req)
{
    const char *m = req->method;
    bool get = strcmp (m, "GET") == 0, post = strcmp (m, "POST") == 0;
    char seg[4][256];
    int n = split (req->url + strlen (PATH_DOCKER_PREFIX), seg);
    struct docker_op_args a = { 0 };
    char esc[300];

    if (n == 1 && strcmp (seg[0], "list") == 0)
        return get ? list_tars (h, req) : http_reply_error (req, 405, "Use GET %s", req->url);
    if (n == 2 && (strcmp (seg[0], "create_tar") == 0 || strcmp (seg[0], "delete_tar") == 0)) {
        if (!post)
            return http_reply_error (req, 405, "Use POST %s", req->url);
        if (check_name (req, "container name", seg[1]) < 0)
            return;
        a.op = seg[0][0] == 'c' ? DOCKER_OP_CREATE_TAR : DOCKER_OP_DELETE_TAR;
        a.name = seg[1];
        return queue (h, req, &a);
    }
    if (n >= 2 && strcmp (seg[0], "host") == 0) {
        if (n == 2 && strcmp (seg[1], "create") == 0)
            return post ? create (h, req) : http_reply_error (req, 405, "Use POST %s", req->url);
        if (n == 2 && strcmp (seg[1], "containers") == 0) {
            if (!get)
                return http_reply_error (req, 405, "Use GET %s", req->url);
            a.op = DOCKER_OP_LIST;
            return queue (h, req, &a);
        }
        if (n == 4 && strcmp (seg[1], "containers") == 0 && strcmp (seg[3], "terminal") == 0) {
            if (!get)
                return http_reply_error (req, 405, "Use GET %s (a WebSocket)", req->url);
            if (check_name (req, "container name", seg[2]) < 0)
                return;
            return api_terminal (h, req, seg[2]);
        }
        if (n == 3 && (strcmp (seg[1], "start") == 0 || strcmp (seg[1], "stop") == 0
                       || strcmp (seg[1], "delete") == 0)) {
            if (!post)
                return http_reply_error (req, 405, "Use POST %s", req->url);
            if (check_name (req, "container name", seg[2]) < 0)
                return;
            a.op = seg[1][0] == 's' ? (seg[1][2] == 'a' ? DOCKER_OP_START : DOCKER_OP_STOP)
                                    : DOCKER_OP_DELETE;
            a.name = seg[2];
            return queue (h, req, &a);
        }
    }
    http_reply_error (req, 404, "Not Found: %s %s", m, log_escape (req->url, esc, sizeof esc));
}
