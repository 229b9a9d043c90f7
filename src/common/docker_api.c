/* docker_api.c - blocking Docker Engine API client over a unix socket (see docker_api.h) */
#include "common/docker_api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/xalloc.h"

struct docker {
    CURL *curl;
    char *socket;
};

/* A reply body collected in memory (bounded: engine replies we parse are small). */
#define REPLY_MAX (64u << 20)

struct buf {
    char *data;
    size_t len, cap;
    bool overflow;
};

static void buf_add (struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > REPLY_MAX) {
        b->overflow = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc (b->data, cap);
        b->cap = cap;
    }
    memcpy (b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

struct docker *docker_open (const char *socket_path, struct err *e)
{
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        err_set (e, EIO, "cannot initialise libcurl");
        return NULL;
    }
    const char *path = socket_path;
    const char *env = getenv ("DOCKER_HOST");
    if ((!path || !*path) && env && strncmp (env, "unix://", 7) == 0)
        path = env + 7;
    if (!path || !*path)
        path = DOCKER_DEFAULT_SOCKET;
    CURL *c = curl_easy_init ();
    if (!c) {
        curl_global_cleanup ();
        err_set (e, EIO, "cannot create a libcurl handle");
        return NULL;
    }
    struct docker *d = xcalloc (1, sizeof *d);
    d->curl = c;
    d->socket = xstrdup (path);
    return d;
}

void docker_close (struct docker *d)
{
    if (!d)
        return;
    curl_easy_cleanup (d->curl);
    curl_global_cleanup ();
    free (d->socket);
    free (d);
}

const char *docker_socket_path (const struct docker *d)
{
    return d->socket;
}

char *docker_escape (const char *s)
{
    size_t n = strlen (s);
    char *out = xmalloc (n * 3 + 1), *o = out;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum (c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- transfers ------------------------------------------------------------------------ */

struct xfer {
    struct docker *d;
    struct buf body;             /* reply body (errors, JSON) */
    docker_sink_fn sink;         /* streaming: 2xx bodies go here */
    void *arg;
    bool aborted;
    /* request body */
    const char *send;
    size_t send_len, sent;
    int send_fd;
};

static size_t on_write (char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (x->sink) {
        long code = 0;
        curl_easy_getinfo (x->d->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            if (x->sink (p, len, x->arg) < 0) {
                x->aborted = true;
                return 0;
            }
            return len;
        }
    }
    buf_add (&x->body, p, len);
    return len;
}

static size_t on_read (char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t want = size * n;
    if (x->send_fd >= 0) {
        for (;;) {
            ssize_t got = read (x->send_fd, p, want);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return CURL_READFUNC_ABORT;
            return (size_t)got;
        }
    }
    size_t left = x->send_len - x->sent;
    if (want > left)
        want = left;
    memcpy (p, x->send + x->sent, want);
    x->sent += want;
    return want;
}

/* Puts the engine's error message of reply X (status CODE) into E. */
static void reply_error (struct xfer *x, long code, const char *method, const char *path,
                         struct err *e)
{
    const char *msg = NULL;
    json_t *j = x->body.len ? json_loadb (x->body.data, x->body.len, 0, NULL) : NULL;
    if (json_is_object (j) && json_is_string (json_object_get (j, "message")))
        msg = json_string_value (json_object_get (j, "message"));
    char text[400];
    if (msg)
        snprintf (text, sizeof text, "%s", msg);
    else if (x->body.len)
        snprintf (text, sizeof text, "%.*s", (int)(x->body.len > 300 ? 300 : x->body.len),
                  x->body.data);
    else
        snprintf (text, sizeof text, "HTTP %ld", code);
    size_t tl = strlen (text);
    while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
        text[--tl] = '\0';
    err_http (e, (int)code, "%s", text);
    (void)method;
    (void)path;
    json_decref (j);
}

/* Runs one request. Returns the HTTP status or -1 (transport error). */
static long perform (struct docker *d, const char *method, const char *path, struct xfer *x,
                     bool has_body, const char *ctype, long timeout_ms, struct err *e)
{
    CURL *c = d->curl;
    curl_easy_reset (c);
    char url[4096];
    snprintf (url, sizeof url, "http://docker%s", path);
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (timeout_ms > 0)
        curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, timeout_ms);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append (hdrs, "Expect:");
    if (has_body) {
        char ct[128];
        snprintf (ct, sizeof ct, "Content-Type: %s", ctype);
        hdrs = curl_slist_append (hdrs, ct);
        curl_easy_setopt (c, CURLOPT_POST, 1L);
        curl_easy_setopt (c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt (c, CURLOPT_READDATA, x);
        if (x->send_fd < 0)
            curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->send_len);
        else
            hdrs = curl_slist_append (hdrs, "Transfer-Encoding: chunked");
    }
    if (strcmp (method, "GET") != 0 && !(has_body && strcmp (method, "POST") == 0))
        curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
    if (!has_body && strcmp (method, "POST") == 0)
        curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform (c);
    curl_slist_free_all (hdrs);
    long code = 0;
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK && !(x->aborted && code >= 200 && code < 300)) {
        if (rc == CURLE_COULDNT_CONNECT)
            err_set (e, ECONNREFUSED, "cannot connect to the Docker engine at %s (is dockerd "
                     "running, and may this user open its socket?)", d->socket);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            err_set (e, ETIMEDOUT, "the Docker engine did not answer %s %s within %ld ms",
                     method, path, timeout_ms);
        else
            err_set (e, EIO, "Docker engine request %s %s failed: %s", method, path,
                     curl_easy_strerror (rc));
        return -1;
    }
    return code;
}

int docker_request (struct docker *d, const char *method, const char *path, json_t *body,
                    json_t **out, long timeout_ms, struct err *e)
{
    if (out)
        *out = NULL;
    char *send = body ? json_dumps (body, JSON_COMPACT) : NULL;
    struct xfer x = { .d = d, .send = send, .send_len = send ? strlen (send) : 0,
                      .send_fd = -1 };
    long code = perform (d, method, path, &x, body != NULL, "application/json", timeout_ms, e);
    free (send);
    if (code < 0)
        goto done;
    if (code >= 400)
        reply_error (&x, code, method, path, e);
    else if (out && x.body.len)
        *out = json_loadb (x.body.data, x.body.len, 0, NULL);
done:
    free (x.body.data);
    return (int)code;
}

/* The next JSON object of a progress stream at *OFF (advanced past it and the following
 * white space), or NULL at the end or on bad JSON. */
static json_t *next_object (const char *body, size_t len, size_t *off)
{
    if (*off >= len)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb (body + *off, len - *off, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!j)
        return NULL;
    *off += jerr.position;
    while (*off < len && isspace ((unsigned char)body[*off]))
        (*off)++;
    return j;
}

int docker_progress_error (const char *body, size_t len, struct err *e)
{
    /* The stream is a sequence of JSON objects, usually one per line. */
    size_t off = 0;
    json_t *j;
    while ((j = next_object (body, len, &off))) {
        json_t *err = json_object_get (j, "error");
        if (!err)
            err = json_object_get (json_object_get (j, "errorDetail"), "message");
        if (json_is_string (err)) {
            char text[400];
            snprintf (text, sizeof text, "%s", json_string_value (err));
            json_decref (j);
            return err_set (e, EIO, "%s", text);
        }
        json_decref (j);
    }
    return 0;
}

static json_t *last_object (const char *body, size_t len)
{
    json_t *last = NULL, *j;
    size_t off = 0;
    while ((j = next_object (body, len, &off))) {
        json_decref (last);
        last = j;
    }
    return last;
}

int docker_upload (struct docker *d, const char *path, int fd, json_t **last, long timeout_ms,
                   struct err *e)
{
    if (last)
        *last = NULL;
    struct xfer x = { .d = d, .send_fd = fd };
    long code = perform (d, "POST", path, &x, true, "application/x-tar", timeout_ms, e);
    int rc = -1;
    if (code < 0)
        goto done;
    if (code >= 400) {
        reply_error (&x, code, "POST", path, e);
        goto done;
    }
    if (x.body.data && docker_progress_error (x.body.data, x.body.len, e) < 0)
        goto done;
    if (last && x.body.data)
        *last = last_object (x.body.data, x.body.len);
    rc = 0;
done:
    free (x.body.data);
    return rc;
}

int docker_stream (struct docker *d, const char *method, const char *path, docker_sink_fn sink,
                   void *arg, long timeout_ms, struct err *e)
{
    struct xfer x = { .d = d, .sink = sink, .arg = arg, .send_fd = -1 };
    long code = perform (d, method, path, &x, false, NULL, timeout_ms, e);
    if (code >= 400)
        reply_error (&x, code, method, path, e);
    else if (code >= 0 && x.aborted)
        code = err_set (e, ECANCELED, "%s %s: aborted by the receiver", method, path);
    free (x.body.data);
    return (int)code;
}

/* ---- stream helpers --------------------------------------------------------------------- */

int docker_demux_feed (struct docker_demux *m, const char *data, size_t len,
                       docker_frame_fn fn, void *arg)
{
    while (len) {
        if (m->left == 0) {
            size_t take = 8 - m->have_hdr;
            if (take > len)
                take = len;
            memcpy (m->hdr + m->have_hdr, data, take);
            m->have_hdr += take;
            data += take;
            len -= take;
            if (m->have_hdr < 8)
                return 0;
            m->have_hdr = 0;
            m->stream = m->hdr[0];
            m->left = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16
                      | (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
            continue;
        }
        size_t take = m->left < len ? m->left : len;
        if (fn (m->stream, data, take, arg) < 0)
            return -1;
        m->left -= (uint32_t)take;
        data += take;
        len -= take;
    }
    return 0;
}

int docker_parse_time (const char *s, double *out)
{
    struct tm tm = { 0 };
    const char *p = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        p++;
        if (!isdigit ((unsigned char)*p))
            return -1;
        while (isdigit ((unsigned char)*p)) {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf (p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    time_t t = timegm (&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (double)(t - offset) + frac;
    return 0;
}
