/* docker_worker.c - the host's Docker worker thread and the environment operations it runs */
#include "host/docker_worker.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/docker_api.h"
#include "common/log.h"
#include "common/tarballs.h"
#include "common/xalloc.h"
#include "host/http.h"

/* Engine call limits (ms). Quick calls (inspect, create, start, list, remove) answer in
 * milliseconds; 30 s only guards against a wedged engine. Stop waits STOP_GRACE_S for the
 * container before the engine kills it. Commit, save and import move whole file systems
 * (gigabytes for a CUDA image): an hour is far above any sane size and still ends a hang. */
#define T_QUICK_MS    30000L
#define STOP_GRACE_S  10
#define T_STOP_MS     ((STOP_GRACE_S + 30) * 1000L)
#define T_COMMIT_MS   (30L * 60 * 1000)
#define T_SAVE_MS     (60L * 60 * 1000)
#define T_IMPORT_MS   (60L * 60 * 1000)
/* At shutdown the running job gets this long to end: a save or pull notices at once, but
 * another engine call cannot be interrupted (docker_api has no cancel hook) and a wedged
 * engine would hold the exit for up to T_QUICK_MS or longer. */
#define STOP_JOIN_GRACE_S 5
/* A pull's progress stream is kept only as a tail: the error, if any, is at the end. */
#define PULL_KEEP_MAX (1u << 20)

#define LABEL_ENV    "hakuriver.environment"
#define LABEL_SHARED "hakuriver.shared_dir"

/* Internal operation beside the public ones: the default environment at host start. */
#define OP_DEFAULT_ENV (DOCKER_OP_DELETE_TAR + 100)

struct job {
    int op;                    /* enum docker_op or OP_DEFAULT_ENV */
    char *name, *image, *rootfs_tar;
    struct http_req *req;      /* loop thread only; NULL for background jobs or once answered */
    /* result, written by the worker thread */
    int status;                /* HTTP status */
    json_t *reply;             /* body when status < 400 */
    char detail[1024];         /* message when status >= 400 */
    char note[600];            /* state change to log once on completion, or "" */
    struct job *next;
};

struct docker_worker {
    pthread_t thread;
    int efd;                   /* eventfd: the worker finished a job */
    struct docker *docker;     /* the worker thread's engine client */
    char *socket;              /* for messages */
    char *shared_dir, *tar_dir;
    long pull_timeout_s;
    char *default_name, *default_image;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    struct job *queue_head, *queue_tail;
    int queued;
    struct job *running;
    struct job *done_head, *done_tail;
    bool stopping;
    /* lock-free flags */
    atomic_bool cancel;        /* the running job should give up (shutdown) */
    atomic_bool has_done;      /* done list may be non-empty */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void job_fail (struct job *j, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void job_fail (struct job *j, int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (j->detail, sizeof j->detail, fmt, ap);
    va_end (ap);
    j->status = status;
    json_decref (j->reply);
    j->reply = NULL;
}

static void job_ok (struct job *j, int status, json_t *reply)
{
    json_decref (j->reply);
    j->reply = reply;
    j->status = status;
}

static void job_free (struct job *j)
{
    if (!j)
        return;
    free (j->name);
    free (j->image);
    free (j->rootfs_tar);
    json_decref (j->reply);
    free (j);
}

static bool cancelled (struct docker_worker *w)
{
    return atomic_load (&w->cancel);
}

/* Maps a failed engine call to J's reply. RC is what docker_request/docker_stream returned
 * (-1: no reply, E->code says why; else the engine's HTTP status with its message in E).
 * WHAT names the action, e.g. "start container 'x'". */
static void engine_fail (struct docker_worker *w, struct job *j, int rc, const struct err *e,
                         const char *what)
{
    if (rc < 0) {
        if (e->code == ECONNREFUSED)
            job_fail (j, 503, "Docker engine not reachable at %s: %s", w->socket, e->text);
        else if (e->code == ETIMEDOUT)
            job_fail (j, 504, "%s: %s", what, e->text);
        else if (e->code == ECANCELED || cancelled (w))
            job_fail (j, 503, "%s: interrupted, the host is shutting down", what);
        else
            job_fail (j, 502, "%s: %s", what, e->text);
        return;
    }
    int st = rc == 404 ? 404 : rc == 409 ? 409 : rc == 400 ? 422 : 502;
    job_fail (j, st, "%s: %s", what, e->text);
}

static char *lowercase (const char *s)
{
    char *out = xstrdup (s);
    for (char *p = out; *p; p++)
        *p = (char)tolower ((unsigned char)*p);
    return out;
}

static int mkdir_p (const char *path, mode_t mode)
{
    char *buf = xstrdup (path);
    int rc = 0;
    for (char *p = buf + 1; *p && rc == 0; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir (buf, mode) < 0 && errno != EEXIST)
                rc = -1;
            *p = '/';
        }
    if (rc == 0 && mkdir (buf, mode) < 0 && errno != EEXIST)
        rc = -1;
    int saved = errno;
    free (buf);
    errno = saved;
    return rc;
}

/* Splits an image reference into the repo and tag query values of /images/create. A digest
 * reference ("repo@sha256:...") is passed whole with no tag; no tag means "latest" (without
 * one the engine would pull every tag of the repository). Caller frees both. */
static void split_image (const char *image, char **repo, char **tag)
{
    const char *slash = strrchr (image, '/');
    const char *colon = strrchr (slash ? slash : image, ':');
    if (strchr (image, '@')) {
        *repo = xstrdup (image);
        *tag = NULL;
    } else if (colon) {
        *repo = xstrndup (image, (size_t)(colon - image));
        *tag = xstrdup (colon + 1);
    } else {
        *repo = xstrdup (image);
        *tag = xstrdup ("latest");
    }
}

/* ---- names and tarballs (any thread) ----------------------------------------------------- */

int docker_worker_check_name (const char *name, struct err *e)
{
    size_t n = strlen (name);
    if (n < 2 || n > DOCKER_WORKER_NAME_MAX)
        return err_set (e, EINVAL, "must be 2 to %d characters long", DOCKER_WORKER_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum (c) && c != '.' && c != '_' && c != '-')
            return err_set (e, EINVAL, "may contain only letters, digits, '.', '_' and '-'");
    }
    if (!isalnum ((unsigned char)name[0]) || !isalnum ((unsigned char)name[n - 1]))
        return err_set (e, EINVAL, "must start and end with a letter or a digit");
    /* separator runs between alphanumerics: ".", "_", "__" or any number of '-' */
    for (size_t i = 0; i < n;) {
        if (isalnum ((unsigned char)name[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !isalnum ((unsigned char)name[j]))
            j++;
        size_t len = j - i;
        bool dashes = strspn (name + i, "-") >= len;
        bool ok = dashes || (len == 1) || (len == 2 && name[i] == '_' && name[i + 1] == '_');
        if (!ok)
            return err_set (e, EINVAL, "may not contain `%.*s`: separators are '.', '_', "
                            "'__' or dashes", (int)len, name + i);
        i = j;
    }
    return 0;
}

char *docker_worker_tar_dir (const struct conf *conf)
{
    return xasprintf ("%s/%s", conf->shared_dir, conf->container_dir);
}

static int tar_cmp (const void *a, const void *b)
{
    const struct docker_tar *x = a, *y = b;
    int c = strcmp (x->name, y->name);
    if (c)
        return c;
    return x->ts < y->ts ? 1 : x->ts > y->ts ? -1 : 0;
}

int docker_worker_list_tars (const char *dir, const char *name, struct docker_tar **out,
                             struct err *e)
{
    /* the file names are parsed by common/tarballs.c, as the runners do */
    *out = NULL;
    struct tarball *v;
    size_t nv;
    if (tarballs_list (dir, &v, &nv, e) < 0)
        return -1;
    struct docker_tar *tars = nv ? xcalloc (nv, sizeof *tars) : NULL;
    int n = 0;
    for (size_t i = 0; i < nv; i++) {
        bool want = name ? strcmp (v[i].name, name) == 0
                         : docker_worker_check_name (v[i].name, NULL) == 0;
        struct stat st;
        char *path = xasprintf ("%s/%s", dir, v[i].file);
        if (!want || stat (path, &st) < 0 || !S_ISREG (st.st_mode)) {
            free (path);
            continue;
        }
        tars[n++] = (struct docker_tar){ .name = xstrdup (v[i].name), .ts = v[i].ts,
                                         .size = st.st_size, .path = path };
    }
    free (v);
    if (n)
        qsort (tars, (size_t)n, sizeof *tars, tar_cmp);
    else
        FREE_NULL (tars);
    *out = tars;
    return n;
}

void docker_worker_tars_free (struct docker_tar *tars, int n)
{
    for (int i = 0; tars && i < n; i++) {
        free (tars[i].name);
        free (tars[i].path);
    }
    free (tars);
}

/* ---- engine steps (worker thread) -------------------------------------------------------- */

struct ctr_info {
    char id[80];
    char image[256];
    char state[32];
    bool ours;                 /* labelled hakuriver.environment=<its own name> */
};

/* Looks up the container named NAME. Returns 1 (found, *CI filled), 0 (none) or -1 (J's
 * reply set). The engine also resolves ID prefixes; only an exact name match counts. */
static int inspect_container (struct docker_worker *w, struct job *j, const char *name,
                              struct ctr_info *ci)
{
    char *esc = docker_escape (name);
    char *path = xasprintf ("/containers/%s/json", esc);
    struct err e = { 0 };
    json_t *o = NULL;
    int rc = docker_request (w->docker, "GET", path, NULL, &o, T_QUICK_MS, &e);
    free (esc);
    free (path);
    int found = 0;
    if (rc == 404)
        goto out;
    if (rc != 200 || !json_is_object (o)) {
        if (rc == 200)
            err_set (&e, EIO, "the engine's reply is not a JSON object");
        char what[128];
        snprintf (what, sizeof what, "inspect container '%s'", name);
        engine_fail (w, j, rc == 200 ? 502 : rc, &e, what);
        found = -1;
        goto out;
    }
    const char *cname = json_string_value (json_object_get (o, "Name"));
    if (!cname || strcmp (cname + (cname[0] == '/'), name) != 0)
        goto out;
    json_t *cfg = json_object_get (o, "Config");
    const char *label = json_string_value (json_object_get (json_object_get (cfg, "Labels"),
                                                            LABEL_ENV));
    memset (ci, 0, sizeof *ci);
    snprintf (ci->id, sizeof ci->id, "%s", json_string_value (json_object_get (o, "Id")) ?: "");
    snprintf (ci->image, sizeof ci->image, "%s",
              json_string_value (json_object_get (cfg, "Image")) ?: "?");
    snprintf (ci->state, sizeof ci->state, "%s",
              json_string_value (json_object_get (json_object_get (o, "State"), "Status")) ?: "?");
    ci->ours = label && strcmp (label, name) == 0;
    found = ci->id[0] ? 1 : 0;
out:
    json_decref (o);
    return found;
}

/* Finds the environment container NAME. Returns 0, or -1 with J's reply set (404 when there
 * is none, 409 when the container is not a HakuRiver environment). */
static int find_env (struct docker_worker *w, struct job *j, const char *name,
                     struct ctr_info *ci)
{
    int r = inspect_container (w, j, name, ci);
    if (r < 0)
        return -1;
    if (r == 0) {
        job_fail (j, 404, "No environment container named '%s' (hakuriver.docker "
                  "list-containers shows them)", name);
        return -1;
    }
    if (!ci->ours) {
        job_fail (j, 409, "Container '%s' is not a HakuRiver environment (it has no %s=%s "
                  "label); HakuRiver leaves it alone", name, LABEL_ENV, name);
        return -1;
    }
    return 0;
}

/* Returns 1 when IMAGE exists locally, 0 when not, -1 with J's reply set. */
static int image_present (struct docker_worker *w, struct job *j, const char *image)
{
    char *esc = docker_escape (image);
    char *path = xasprintf ("/images/%s/json", esc);
    struct err e = { 0 };
    int rc = docker_request (w->docker, "GET", path, NULL, NULL, T_QUICK_MS, &e);
    free (esc);
    free (path);
    if (rc == 200)
        return 1;
    if (rc == 404)
        return 0;
    char what[320];
    snprintf (what, sizeof what, "inspect image '%s'", image);
    engine_fail (w, j, rc, &e, what);
    return -1;
}

struct pull_sink {
    struct docker_worker *w;
    char *buf;
    size_t len;
};

static int pull_sink_cb (const char *data, size_t len, void *arg)
{
    struct pull_sink *s = arg;
    if (cancelled (s->w))
        return -1;
    s->buf = xrealloc (s->buf, s->len + len + 1);
    memcpy (s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    if (s->len > PULL_KEEP_MAX) {
        /* keep the last half, from a line start: progress objects are one per line */
        char *cut = memchr (s->buf + s->len / 2, '\n', s->len - s->len / 2);
        if (cut) {
            size_t keep = s->len - (size_t)(cut + 1 - s->buf);
            memmove (s->buf, cut + 1, keep);
            s->len = keep;
            s->buf[s->len] = '\0';
        }
    }
    return 0;
}

/* Pulls IMAGE within [docker] pull_timeout. Returns 0 or -1 with J's reply set. */
static int pull_image (struct docker_worker *w, struct job *j, const char *image)
{
    char *repo, *tag;
    split_image (image, &repo, &tag);
    char *erepo = docker_escape (repo);
    char *etag = tag ? docker_escape (tag) : NULL;
    char *path = xasprintf ("/images/create?fromImage=%s%s%s", erepo, etag ? "&tag=" : "",
                            etag ? etag : "");
    struct pull_sink s = { .w = w };
    struct err e = { 0 };
    log_info ("docker: pulling image %s (limit %ld s)", image, w->pull_timeout_s);
    int rc = docker_stream (w->docker, "POST", path, pull_sink_cb, &s, w->pull_timeout_s * 1000,
                            &e);
    free (repo);
    free (tag);
    free (erepo);
    free (etag);
    free (path);
    int ret = -1;
    if (rc < 0 && e.code == ETIMEDOUT)
        job_fail (j, 504, "pull of image '%s' did not finish within %ld s ([docker] "
                  "pull_timeout); is a registry reachable from the host?", image,
                  w->pull_timeout_s);
    else if (rc < 0 && e.code != ECONNREFUSED && !cancelled (w))
        job_fail (j, 502, "pull of image '%s' failed: %s", image, e.text);
    else if (rc < 0)
        engine_fail (w, j, rc, &e, "pull");
    else if (rc >= 400)
        job_fail (j, rc == 400 ? 422 : 502, "pull of image '%s' failed: %s", image, e.text);
    else if (s.buf && docker_progress_error (s.buf, s.len, &e) < 0)
        job_fail (j, 502, "pull of image '%s' failed: %s", image, e.text);
    else {
        int present = image_present (w, j, image);
        if (present == 0)
            job_fail (j, 502, "pull of image '%s' ended without the image being present", image);
        ret = present == 1 ? 0 : -1;
    }
    free (s.buf);
    return ret;
}

/* Imports J->rootfs_tar as image J->image. Returns 0 or -1 with J's reply set. */
static int import_rootfs (struct docker_worker *w, struct job *j)
{
    if (strchr (j->image, '@')) {
        job_fail (j, 422, "image_name '%s': an imported image needs a name[:tag], not a "
                  "digest", j->image);
        return -1;
    }
    int fd = open (j->rootfs_tar, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        const char *why = fd < 0 ? strerror (errno) : "not a regular file";
        job_fail (j, 422, "cannot read rootfs_tar `%s` on the host: %s", j->rootfs_tar, why);
        if (fd >= 0)
            close (fd);
        return -1;
    }
    char *repo, *tag;
    split_image (j->image, &repo, &tag);
    char *erepo = docker_escape (repo), *etag = docker_escape (tag);
    char *path = xasprintf ("/images/create?fromSrc=-&repo=%s&tag=%s", erepo, etag);
    struct err e = { 0 };
    char esc[600];
    log_info ("docker: importing %s as image %s:%s",
              log_escape (j->rootfs_tar, esc, sizeof esc), repo, tag);
    int rc = docker_upload (w->docker, path, fd, NULL, T_IMPORT_MS, &e);
    close (fd);
    free (erepo);
    free (etag);
    free (path);
    int ret = 0;
    if (rc < 0) {
        if (e.status) /* the engine refused the file */
            job_fail (j, 422, "cannot import rootfs_tar `%s` as image %s:%s: %s", j->rootfs_tar,
                      repo, tag, e.text);
        else
            engine_fail (w, j, -1, &e, "import rootfs_tar");
        ret = -1;
    }
    free (repo);
    free (tag);
    return ret;
}

/* Makes J->image available: imported from J->rootfs_tar, present locally, or pulled. */
static int ensure_image (struct docker_worker *w, struct job *j)
{
    if (j->rootfs_tar)
        return import_rootfs (w, j);
    int present = image_present (w, j, j->image);
    if (present < 0)
        return -1;
    return present ? 0 : pull_image (w, j, j->image);
}

/* Creates and starts environment container J->name running `sleep infinity` (0.3). Returns
 * 0 with *ID set (caller frees) or -1 with J's reply set. */
static int create_container (struct docker_worker *w, struct job *j, char **id)
{
    *id = NULL;
    /* Init: docker-init as PID 1 forwards SIGTERM, so `stop` does not wait out the grace
     * period of a `sleep` that ignores it as PID 1. HostConfig is not baked into commits. */
    json_t *body = json_pack ("{s:s, s:[s,s], s:{s:s, s:s}, s:{s:b}}", "Image", j->image, "Cmd",
                              "sleep", "infinity", "Labels", LABEL_ENV, j->name, LABEL_SHARED,
                              w->shared_dir, "HostConfig", "Init", 1);
    char *esc = docker_escape (j->name);
    char *path = xasprintf ("/containers/create?name=%s", esc);
    json_t *o = NULL;
    struct err e = { 0 };
    int rc = docker_request (w->docker, "POST", path, body, &o, T_QUICK_MS, &e);
    free (esc);
    free (path);
    json_decref (body);
    const char *cid = json_string_value (json_object_get (o, "Id"));
    if (rc != 201 || !cid) {
        char what[400];
        snprintf (what, sizeof what, "cannot create container '%s' from image '%s'", j->name,
                  j->image);
        if (rc == 201)
            err_set (&e, EIO, "the engine's reply has no Id");
        engine_fail (w, j, rc == 404 || rc == 201 ? 502 : rc, &e, what);
        json_decref (o);
        return -1;
    }
    char *cidc = xstrdup (cid);
    json_decref (o);
    path = xasprintf ("/containers/%s/start", cidc);
    rc = docker_request (w->docker, "POST", path, NULL, NULL, T_QUICK_MS, &e);
    free (path);
    if (rc != 204 && rc != 304) {
        char what[300];
        snprintf (what, sizeof what, "container '%s' was created but did not start (it was "
                  "removed again)", j->name);
        engine_fail (w, j, rc == 404 ? 502 : rc, &e, what);
        path = xasprintf ("/containers/%s?force=1&v=1", cidc);
        docker_request (w->docker, "DELETE", path, NULL, NULL, T_QUICK_MS, &e);
        free (path);
        free (cidc);
        return -1;
    }
    *id = cidc;
    return 0;
}

struct save_sink {
    struct docker_worker *w;
    int fd;
    int64_t written;
    int err;                   /* errno of a failed write, ECANCELED at shutdown */
};

static int save_sink_cb (const char *data, size_t len, void *arg)
{
    struct save_sink *s = arg;
    if (cancelled (s->w)) {
        s->err = ECANCELED;
        return -1;
    }
    while (len) {
        ssize_t n = write (s->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s->err = errno;
            return -1;
        }
        data += n;
        len -= (size_t)n;
        s->written += n;
    }
    return 0;
}

/* Removes leftovers ".<name>-<ts>.tar.partial" of an interrupted create-tar. */
static void remove_partials (const char *dir, const char *name)
{
    DIR *dp = opendir (dir);
    if (!dp)
        return;
    size_t nl = strlen (name);
    struct dirent *de;
    while ((de = readdir (dp))) {
        /* exactly ".<name>-<digits>.tar.partial" */
        const char *fn = de->d_name;
        if (fn[0] != '.' || strncmp (fn + 1, name, nl) != 0 || fn[nl + 1] != '-')
            continue;
        const char *p = fn + nl + 2;
        size_t digits = strspn (p, "0123456789");
        if (!digits || strcmp (p + digits, ".tar.partial") != 0)
            continue;
        char *path = xasprintf ("%s/%s", dir, fn);
        if (unlink (path) == 0)
            log_info ("docker: removed the leftover %s", path);
        free (path);
    }
    closedir (dp);
}

/* Returns the Id of IMAGE, or NULL when it is absent (caller frees). */
static char *image_id (struct docker_worker *w, const char *image)
{
    char *esc = docker_escape (image);
    char *path = xasprintf ("/images/%s/json", esc);
    json_t *o = NULL;
    struct err e = { 0 };
    int rc = docker_request (w->docker, "GET", path, NULL, &o, T_QUICK_MS, &e);
    free (esc);
    free (path);
    const char *id = rc == 200 ? json_string_value (json_object_get (o, "Id")) : NULL;
    char *out = id ? xstrdup (id) : NULL;
    json_decref (o);
    return out;
}

/* Commits container CID (environment NAME) to hakuriver/<name>:base and saves that image to
 * <tar_dir>/<name>-<ts>.tar through a fsynced partial file, then deletes NAME's older
 * tarballs. On failure the previous tarball stays and the partial file is removed. Returns
 * 0 with J's reply set to the result, or -1 with J's error set. */
static int make_tarball (struct docker_worker *w, struct job *j, const char *name,
                         const char *cid)
{
    char *lname = lowercase (name);
    char *image = xasprintf ("hakuriver/%s:base", lname);
    char *partial = NULL, *final = NULL, *old_id = NULL, *new_id = NULL;
    struct docker_tar *tars = NULL;
    int ntars = 0, fd = -1, ret = -1;
    struct err e = { 0 };

    if (mkdir_p (w->tar_dir, 0755) < 0) {
        job_fail (j, 500, "cannot create the container directory `%s`: %s", w->tar_dir,
                  strerror (errno));
        goto out;
    }
    remove_partials (w->tar_dir, name);
    /* ts is taken before the commit, so the image's Created time is >= ts: runners compare
     * the two to decide whether to load the tarball. It must also be newer than every
     * existing tarball of NAME (two create-tars in one second): then wait for the clock to
     * reach it when that is near, to keep Created >= ts. */
    int64_t now = (int64_t)time (NULL), ts = now;
    ntars = docker_worker_list_tars (w->tar_dir, name, &tars, &e);
    if (ntars < 0) {
        job_fail (j, 500, "%s", e.text);
        goto out;
    }
    if (ntars > 0 && tars[0].ts >= ts)
        ts = tars[0].ts + 1;
    while (ts > now && ts - now <= 2 && !cancelled (w)) {
        struct timespec nap = { 0, 100 * 1000 * 1000 };
        nanosleep (&nap, NULL);
        now = (int64_t)time (NULL);
    }
    if (cancelled (w)) {
        job_fail (j, 503, "create-tar of '%s' interrupted: the host is shutting down", name);
        goto out;
    }
    old_id = image_id (w, image);

    /* commit (the engine pauses the container meanwhile; it keeps running afterwards). The
     * environment labels are blanked in the image so that task containers made from it
     * are not taken for environments. */
    char *erepo = xasprintf ("hakuriver%%2F%s", lname); /* lname is [a-z0-9._-]: no escaping */
    char *ecomment = docker_escape (name);
    char *path = xasprintf ("/commit?container=%s&repo=%s&tag=base&pause=1"
                            "&comment=HakuRiver%%20environment%%20%s", cid, erepo, ecomment);
    free (erepo);
    free (ecomment);
    json_t *body = json_pack ("{s:{s:s, s:s}}", "Labels", LABEL_ENV, "", LABEL_SHARED, "");
    json_t *o = NULL;
    int rc = docker_request (w->docker, "POST", path, body, &o, T_COMMIT_MS, &e);
    free (path);
    json_decref (body);
    if (rc != 201 && rc != 200) {
        char what[200];
        snprintf (what, sizeof what, "commit of container '%s' failed", name);
        engine_fail (w, j, rc == 404 ? 502 : rc, &e, what);
        json_decref (o);
        goto out;
    }
    const char *nid = json_string_value (json_object_get (o, "Id"));
    new_id = nid ? xstrdup (nid) : NULL;
    json_decref (o);

    /* save, streamed into a partial file that only a complete save renames */
    partial = xasprintf ("%s/.%s-%" PRId64 ".tar.partial", w->tar_dir, name, ts);
    final = xasprintf ("%s/%s-%" PRId64 ".tar", w->tar_dir, name, ts);
    fd = open (partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        job_fail (j, 500, "cannot create `%s`: %s", partial, strerror (errno));
        goto out;
    }
    char *eimage = docker_escape (image);
    path = xasprintf ("/images/%s/get", eimage);
    free (eimage);
    struct save_sink s = { .w = w, .fd = fd };
    rc = docker_stream (w->docker, "GET", path, save_sink_cb, &s, T_SAVE_MS, &e);
    free (path);
    if (rc < 0 && s.err == ECANCELED) {
        job_fail (j, 503, "create-tar of '%s' interrupted: the host is shutting down", name);
        goto fail_partial;
    }
    if (rc < 0 && s.err) {
        job_fail (j, 500, "cannot write `%s`: %s", partial, strerror (s.err));
        goto fail_partial;
    }
    if (rc != 200) {
        char what[300];
        snprintf (what, sizeof what, "save of image %s failed", image);
        engine_fail (w, j, rc == 404 ? 502 : rc, &e, what);
        goto fail_partial;
    }
    if (fsync (fd) < 0 || close (fd) < 0) {
        fd = -1;
        job_fail (j, 500, "cannot write `%s`: %s", partial, strerror (errno));
        goto fail_partial;
    }
    fd = -1;
    if (rename (partial, final) < 0) {
        job_fail (j, 500, "cannot rename `%s` to `%s`: %s", partial, final, strerror (errno));
        goto fail_partial;
    }
    int dfd = open (w->tar_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync (dfd); /* the rename itself must survive a crash before older files go */
        close (dfd);
    }
    /* only now the older tarballs */
    for (int i = 0; i < ntars; i++)
        if (tars[i].ts < ts && unlink (tars[i].path) < 0 && errno != ENOENT)
            log_warn ("docker: cannot delete the old tarball %s: %s", tars[i].path,
                      strerror (errno));
    /* the previous commit is now unused: remove it unless something still uses it */
    if (old_id && new_id && strcmp (old_id, new_id) != 0) {
        path = xasprintf ("/images/%s", old_id);
        docker_request (w->docker, "DELETE", path, NULL, NULL, T_QUICK_MS, &e);
        free (path);
    }
    job_ok (j, 200, json_pack ("{s:s, s:s, s:I, s:I, s:s}", "message",
                               "Container tarball created/refreshed successfully.",
                               "tarball_path", final, "timestamp", (json_int_t)ts,
                               "size_bytes", (json_int_t)s.written, "image", image));
    snprintf (j->note, sizeof j->note, "environment %s: tarball %s (%" PRId64 " bytes)", name,
              final, s.written);
    ret = 0;
    goto out;

fail_partial:
    if (fd >= 0)
        close (fd);
    fd = -1;
    unlink (partial);
out:
    if (fd >= 0)
        close (fd);
    docker_worker_tars_free (tars, ntars > 0 ? ntars : 0);
    free (lname);
    free (image);
    free (partial);
    free (final);
    free (old_id);
    free (new_id);
    return ret;
}

/* ---- operations -------------------------------------------------------------------------- */

static int name_cmp (const void *a, const void *b)
{
    const char *x = json_string_value (json_object_get (*(json_t *const *)a, "name"));
    const char *y = json_string_value (json_object_get (*(json_t *const *)b, "name"));
    return strcmp (x ? x : "", y ? y : "");
}

static void op_list (struct docker_worker *w, struct job *j)
{
    json_t *filters = json_pack ("{s:[s,s+]}", "label", LABEL_ENV, LABEL_SHARED "=",
                                 w->shared_dir);
    char *f = json_dumps (filters, JSON_COMPACT);
    char *ef = docker_escape (f);
    char *path = xasprintf ("/containers/json?all=1&filters=%s", ef);
    json_t *list = NULL;
    struct err e = { 0 };
    int rc = docker_request (w->docker, "GET", path, NULL, &list, T_QUICK_MS, &e);
    free (f);
    free (ef);
    free (path);
    json_decref (filters);
    if (rc != 200 || !json_is_array (list)) {
        if (rc == 200)
            err_set (&e, EIO, "the engine's reply is not a JSON array");
        engine_fail (w, j, rc == 200 ? 502 : rc, &e, "list containers");
        json_decref (list);
        return;
    }
    size_t n = json_array_size (list), k = 0;
    json_t **items = xcalloc (n ? n : 1, sizeof *items);
    size_t i;
    json_t *c;
    json_array_foreach (list, i, c)
    {
        const char *name = json_string_value (json_array_get (json_object_get (c, "Names"), 0));
        const char *label = json_string_value (json_object_get (json_object_get (c, "Labels"),
                                                                LABEL_ENV));
        if (!name || !label)
            continue;
        name += name[0] == '/';
        if (strcmp (name, label) != 0)
            continue;
        const char *id = json_string_value (json_object_get (c, "Id"));
        char shortid[13];
        snprintf (shortid, sizeof shortid, "%s", id ? id : "");
        items[k++] = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", name, "id", shortid,
                                "image", json_string_value (json_object_get (c, "Image")) ?: "",
                                "state", json_string_value (json_object_get (c, "State")) ?: "",
                                "status", json_string_value (json_object_get (c, "Status")) ?: "",
                                "created",
                                json_integer_value (json_object_get (c, "Created")));
    }
    qsort (items, k, sizeof *items, name_cmp);
    json_t *out = json_array ();
    for (i = 0; i < k; i++)
        json_array_append_new (out, items[i]);
    free (items);
    json_decref (list);
    job_ok (j, 200, out);
}

static void op_create (struct docker_worker *w, struct job *j)
{
    struct ctr_info ci;
    int r = inspect_container (w, j, j->name, &ci);
    if (r < 0)
        return;
    if (r == 1 && ci.ours) {
        job_fail (j, 409, "Environment container '%s' already exists (image %s, %s): use it, "
                  "or delete it first with `hakuriver.docker delete-container %s`", j->name,
                  ci.image, ci.state, j->name);
        return;
    }
    if (r == 1) {
        job_fail (j, 409, "A container named '%s' already exists and is not a HakuRiver "
                  "environment: choose another name", j->name);
        return;
    }
    char *id = NULL;
    if (ensure_image (w, j) < 0 || create_container (w, j, &id) < 0)
        return;
    char msg[600];
    if (j->rootfs_tar)
        snprintf (msg, sizeof msg, "Image '%s' imported from %s; container '%s' created and "
                  "started.", j->image, j->rootfs_tar, j->name);
    else
        snprintf (msg, sizeof msg, "Container '%s' created from image '%s' and started.",
                  j->name, j->image);
    char shortid[13];
    snprintf (shortid, sizeof shortid, "%s", id);
    job_ok (j, 201, json_pack ("{s:s, s:s, s:s, s:s}", "message", msg, "container_name",
                               j->name, "image", j->image, "id", shortid));
    snprintf (j->note, sizeof j->note, "environment %s: container created from image %s%s%s",
              j->name, j->image, j->rootfs_tar ? " imported from " : "",
              j->rootfs_tar ? j->rootfs_tar : "");
    free (id);
}

static void op_start_stop (struct docker_worker *w, struct job *j)
{
    struct ctr_info ci;
    if (find_env (w, j, j->name, &ci) < 0)
        return;
    bool start = j->op == DOCKER_OP_START;
    char *path = start ? xasprintf ("/containers/%s/start", ci.id)
                       : xasprintf ("/containers/%s/stop?t=%d", ci.id, STOP_GRACE_S);
    struct err e = { 0 };
    int rc = docker_request (w->docker, "POST", path, NULL, NULL, start ? T_QUICK_MS : T_STOP_MS,
                             &e);
    free (path);
    if (rc != 204 && rc != 304) {
        char what[128];
        snprintf (what, sizeof what, "%s container '%s'", start ? "start" : "stop", j->name);
        engine_fail (w, j, rc, &e, what);
        return;
    }
    char msg[200];
    if (rc == 304)
        snprintf (msg, sizeof msg, "Container '%s' is already %s.", j->name,
                  start ? "running" : "stopped");
    else
        snprintf (msg, sizeof msg, "Container '%s' %s.", j->name, start ? "started" : "stopped");
    job_ok (j, 200, json_pack ("{s:s}", "message", msg));
    if (rc == 204)
        snprintf (j->note, sizeof j->note, "environment %s: container %s", j->name,
                  start ? "started" : "stopped");
}

static void op_delete (struct docker_worker *w, struct job *j)
{
    struct ctr_info ci;
    if (find_env (w, j, j->name, &ci) < 0)
        return;
    char *path = xasprintf ("/containers/%s?force=1&v=1", ci.id);
    struct err e = { 0 };
    int rc = docker_request (w->docker, "DELETE", path, NULL, NULL, T_QUICK_MS, &e);
    free (path);
    if (rc != 204) {
        char what[128];
        snprintf (what, sizeof what, "delete container '%s'", j->name);
        engine_fail (w, j, rc, &e, what);
        return;
    }
    char msg[200];
    snprintf (msg, sizeof msg, "Container '%s' deleted (its tarballs are kept).", j->name);
    job_ok (j, 200, json_pack ("{s:s}", "message", msg));
    snprintf (j->note, sizeof j->note, "environment %s: container deleted", j->name);
}

static void op_create_tar (struct docker_worker *w, struct job *j)
{
    struct ctr_info ci;
    if (find_env (w, j, j->name, &ci) < 0)
        return;
    make_tarball (w, j, j->name, ci.id);
}

static void op_delete_tar (struct docker_worker *w, struct job *j)
{
    struct docker_tar *tars;
    struct err e = { 0 };
    int n = docker_worker_list_tars (w->tar_dir, j->name, &tars, &e);
    if (n < 0) {
        job_fail (j, 500, "%s", e.text);
        return;
    }
    if (n == 0) {
        job_fail (j, 404, "No tarballs of environment '%s' in %s", j->name, w->tar_dir);
        return;
    }
    json_t *deleted = json_array ();
    for (int i = 0; i < n; i++) {
        if (unlink (tars[i].path) < 0 && errno != ENOENT) {
            job_fail (j, 500, "cannot delete `%s`: %s", tars[i].path, strerror (errno));
            json_decref (deleted);
            docker_worker_tars_free (tars, n);
            return;
        }
        json_array_append_new (deleted, json_string (tars[i].path));
    }
    char msg[200];
    snprintf (msg, sizeof msg, "Deleted %d tarball%s of '%s'.", n, n == 1 ? "" : "s", j->name);
    job_ok (j, 200, json_pack ("{s:s, s:o}", "message", msg, "deleted", deleted));
    snprintf (j->note, sizeof j->note, "environment %s: %d tarball%s deleted", j->name, n,
              n == 1 ? "" : "s");
    docker_worker_tars_free (tars, n);
}

/* Background, at host start: the default environment and its tarball unless one exists. */
static void op_default_env (struct docker_worker *w, struct job *j)
{
    struct err e = { 0 };
    if (docker_worker_check_name (j->name, &e) < 0) {
        job_fail (j, 422, "[docker] default_container_name `%s` %s", j->name, e.text);
        return;
    }
    struct docker_tar *tars;
    int n = docker_worker_list_tars (w->tar_dir, j->name, &tars, &e);
    if (n < 0) {
        job_fail (j, 500, "%s", e.text);
        return;
    }
    if (n > 0) {
        job_ok (j, 200, json_pack ("{s:s}", "tarball_path", tars[0].path));
        snprintf (j->note, sizeof j->note, "default environment %s: tarball %s exists", j->name,
                  tars[0].path);
        docker_worker_tars_free (tars, n);
        return;
    }
    struct ctr_info ci;
    int r = inspect_container (w, j, j->name, &ci);
    if (r < 0)
        return;
    char *id = NULL;
    if (r == 1 && !ci.ours) {
        job_fail (j, 409, "a container named '%s' exists and is not a HakuRiver environment",
                  j->name);
        return;
    }
    if (r == 1)
        id = xstrdup (ci.id); /* created by an earlier start whose tarball failed */
    else if (ensure_image (w, j) < 0 || create_container (w, j, &id) < 0)
        return;
    if (make_tarball (w, j, j->name, id) == 0)
        snprintf (j->note, sizeof j->note, "default environment %s created from %s: tarball %s",
                  j->name, j->image,
                  json_string_value (json_object_get (j->reply, "tarball_path")));
    free (id);
}

static void run_job (struct docker_worker *w, struct job *j)
{
    switch (j->op) {
    case DOCKER_OP_LIST: op_list (w, j); break;
    case DOCKER_OP_CREATE: op_create (w, j); break;
    case DOCKER_OP_START:
    case DOCKER_OP_STOP: op_start_stop (w, j); break;
    case DOCKER_OP_DELETE: op_delete (w, j); break;
    case DOCKER_OP_CREATE_TAR: op_create_tar (w, j); break;
    case DOCKER_OP_DELETE_TAR: op_delete_tar (w, j); break;
    case OP_DEFAULT_ENV: op_default_env (w, j); break;
    default: job_fail (j, 500, "unknown Docker operation %d", j->op); break;
    }
    if (!j->status)
        job_fail (j, 500, "Docker operation %d produced no result", j->op);
}

/* ---- the thread -------------------------------------------------------------------------- */

static void *worker_main (void *arg)
{
    struct docker_worker *w = arg;
    pthread_mutex_lock (&w->lock);
    for (;;) {
        while (!w->queue_head && !w->stopping)
            pthread_cond_wait (&w->cond, &w->lock);
        if (w->stopping)
            break; /* docker_worker_stop answers what is still queued */
        struct job *j = w->queue_head;
        w->queue_head = j->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        w->queued--;
        j->next = NULL;
        w->running = j;
        pthread_mutex_unlock (&w->lock);

        run_job (w, j);

        pthread_mutex_lock (&w->lock);
        w->running = NULL;
        if (w->done_tail)
            w->done_tail->next = j;
        else
            w->done_head = j;
        w->done_tail = j;
        pthread_mutex_unlock (&w->lock);
        /* wake the loop: the eventfd first, then the flag (docker_worker_complete reads the
         * flag first), so that a counter left in the eventfd always meets a set flag */
        uint64_t one = 1;
        if (write (w->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_warn ("docker worker: eventfd write: %s", strerror (errno));
        atomic_store (&w->has_done, true);
        pthread_mutex_lock (&w->lock);
    }
    pthread_mutex_unlock (&w->lock);
    return NULL;
}

static struct job *job_new (int op, const char *name, const char *image, const char *rootfs)
{
    struct job *j = xcalloc (1, sizeof *j);
    j->op = op;
    j->name = name ? xstrdup (name) : NULL;
    j->image = image ? xstrdup (image) : NULL;
    j->rootfs_tar = rootfs ? xstrdup (rootfs) : NULL;
    return j;
}

static void enqueue_locked (struct docker_worker *w, struct job *j)
{
    if (w->queue_tail)
        w->queue_tail->next = j;
    else
        w->queue_head = j;
    w->queue_tail = j;
    w->queued++;
    pthread_cond_signal (&w->cond);
}

struct docker_worker *docker_worker_start (const struct conf *conf, struct err *e)
{
    struct docker *d = docker_open (conf->docker_socket, e);
    if (!d)
        return NULL;
    struct docker_worker *w = xcalloc (1, sizeof *w);
    w->docker = d;
    w->socket = xstrdup (docker_socket_path (d));
    w->shared_dir = xstrdup (conf->shared_dir);
    w->tar_dir = docker_worker_tar_dir (conf);
    w->pull_timeout_s = conf->pull_timeout;
    w->default_name = xstrdup (conf->default_container_name ? conf->default_container_name : "");
    w->default_image = xstrdup (conf->initial_base_image ? conf->initial_base_image : "");
    atomic_init (&w->cancel, false);
    atomic_init (&w->has_done, false);
    w->efd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        err_set (e, errno, "cannot create the Docker worker's eventfd: %s", strerror (errno));
        goto error;
    }
    pthread_mutex_init (&w->lock, NULL);
    pthread_cond_init (&w->cond, NULL);
    if (conf->create_default_environment) {
        enqueue_locked (w, job_new (OP_DEFAULT_ENV, w->default_name, w->default_image, NULL));
        log_info ("default environment %s: checking in the background (from %s if missing)",
                  w->default_name, w->default_image);
    }
    /* the thread takes no signals: the loop thread reads them from its signalfd */
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int rc = pthread_create (&w->thread, NULL, worker_main, w);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        err_set (e, rc, "cannot start the Docker worker thread: %s", strerror (rc));
        pthread_mutex_destroy (&w->lock);
        pthread_cond_destroy (&w->cond);
        goto error;
    }
    return w;
error:
    while (w->queue_head) {
        struct job *j = w->queue_head;
        w->queue_head = j->next;
        job_free (j);
    }
    if (w->efd >= 0)
        close (w->efd);
    docker_close (w->docker);
    free (w->socket);
    free (w->shared_dir);
    free (w->tar_dir);
    free (w->default_name);
    free (w->default_image);
    free (w);
    return NULL;
}

int docker_worker_fd (const struct docker_worker *w)
{
    return w->efd;
}

int docker_worker_submit (struct docker_worker *w, const struct docker_op_args *a,
                          struct http_req *req, struct err *e)
{
    pthread_mutex_lock (&w->lock);
    if (w->queued >= DOCKER_WORKER_QUEUE_MAX || w->stopping) {
        pthread_mutex_unlock (&w->lock);
        return err_http (e, 503, "Too many Docker operations are waiting (%d); try again later",
                         DOCKER_WORKER_QUEUE_MAX);
    }
    struct job *j = job_new ((int)a->op, a->name, a->image, a->rootfs_tar);
    j->req = req;
    enqueue_locked (w, j);
    pthread_mutex_unlock (&w->lock);
    return 0;
}

/* Loop thread: delivers one finished job. */
static void finish (struct docker_worker *w, struct job *j)
{
    char esc[1100];
    if (j->note[0])
        log_info ("%s", log_escape (j->note, esc, sizeof esc));
    if (j->op == OP_DEFAULT_ENV) {
        if (j->status < 400)
            return;
        log_escape (j->detail, esc, sizeof esc);
        if (w->stopping)
            log_warn ("default environment %s: not finished before shutdown (%s)", j->name, esc);
        else
            log_err ("cannot create the default environment %s from %s: %s; create one with "
                     "`hakuriver.docker create-container IMAGE %s` and `hakuriver.docker "
                     "create-tar %s`, or set [docker] create_default_environment = false",
                     j->name, j->image, esc, j->name, j->name);
        return;
    }
    if (!j->req)
        return; /* already answered 503 at shutdown */
    if (j->status >= 500)
        log_warn ("docker: %s", log_escape (j->detail, esc, sizeof esc));
    if (j->status >= 400) {
        http_reply_error (j->req, j->status, "%s", j->detail);
    } else {
        http_reply_json (j->req, j->status, j->reply);
        j->reply = NULL;
    }
    http_release (j->req);
    j->req = NULL;
}

void docker_worker_complete (struct docker_worker *w)
{
    if (!w || !atomic_exchange (&w->has_done, false))
        return;
    uint64_t v;
    if (read (w->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_warn ("docker worker: eventfd read: %s", strerror (errno));
    pthread_mutex_lock (&w->lock);
    struct job *list = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock (&w->lock);
    while (list) {
        struct job *j = list;
        list = j->next;
        finish (w, j);
        job_free (j);
    }
}

static void answer_shutdown (struct http_req *req)
{
    http_reply_error (req, 503, "The host is shutting down; the Docker operation was not "
                      "completed");
    http_release (req);
}

void docker_worker_stop (struct docker_worker *w)
{
    if (!w)
        return;
    docker_worker_complete (w); /* what finished gets its real answer */
    pthread_mutex_lock (&w->lock);
    w->stopping = true;
    atomic_store (&w->cancel, true);
    struct job *queued = w->queue_head;
    w->queue_head = w->queue_tail = NULL;
    w->queued = 0;
    if (w->running && w->running->req) {
        /* req is touched only by this thread; the worker never reads it */
        answer_shutdown (w->running->req);
        w->running->req = NULL;
    }
    pthread_cond_broadcast (&w->cond);
    pthread_mutex_unlock (&w->lock);
    while (queued) {
        struct job *j = queued;
        queued = j->next;
        if (j->req)
            answer_shutdown (j->req);
        job_free (j);
    }
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += STOP_JOIN_GRACE_S;
    int rc = pthread_timedjoin_np (w->thread, NULL, &deadline);
    if (rc != 0) {
        /* The thread still owns W and its engine client: leave both to the exit. */
        log_warn ("docker worker: the engine call in progress did not end within %d s (%s); "
                  "exiting without it", STOP_JOIN_GRACE_S, strerror (rc));
        return;
    }
    atomic_store (&w->has_done, true);
    docker_worker_complete (w);
    pthread_mutex_destroy (&w->lock);
    pthread_cond_destroy (&w->cond);
    close (w->efd);
    docker_close (w->docker);
    free (w->socket);
    free (w->shared_dir);
    free (w->tar_dir);
    free (w->default_name);
    free (w->default_image);
    free (w);
}
