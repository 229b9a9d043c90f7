/* http_client.c - a small blocking HTTP/JSON client over one libcurl easy handle (CLI side) */
#include "cli/http_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/xalloc.h"

struct http_client {
    CURL *curl;
    char *base_url;
    char *auth_header; /* "Authorization: Bearer ...", NULL when no token */
};

/* Per-request transfer state handed to the curl callbacks. */
struct xfer {
    struct http_resp *r;
    size_t cap;
    FILE *sink;       /* 200 replies go here when set */
    bool too_big;
    bool sink_failed;
    CURL *curl;
};

http_client_t *http_client_create (const char *base_url, const char *token, struct err *e)
{
    /* curl_global_init is reference counted; the matching cleanup is in destroy */
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        err_set (e, EIO, "cannot initialise libcurl");
        return NULL;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        curl_global_cleanup ();
        err_set (e, EIO, "cannot create a libcurl handle");
        return NULL;
    }
    http_client_t *c = xcalloc (1, sizeof *c);
    c->curl = curl;
    c->base_url = xstrdup (base_url);
    if (token && *token)
        c->auth_header = xasprintf ("Authorization: Bearer %s", token);
    return c;
}

void http_client_destroy (http_client_t *c)
{
    if (!c)
        return;
    int saved = errno;
    curl_easy_cleanup (c->curl);
    curl_global_cleanup ();
    free (c->base_url);
    if (c->auth_header) {
        /* the token is a secret: do not leave it lying in freed heap memory */
        explicit_bzero (c->auth_header, strlen (c->auth_header));
        free (c->auth_header);
    }
    free (c);
    errno = saved;
}

const char *http_client_url (const http_client_t *c)
{
    return c->base_url;
}

void http_resp_free (struct http_resp *r)
{
    if (!r)
        return;
    FREE_NULL (r->body);
    FREE_NULL (r->next_before);
    r->len = 0;
}

static bool keep_body (struct xfer *x)
{
    long code = 0;
    if (!x->sink)
        return true;
    curl_easy_getinfo (x->curl, CURLINFO_RESPONSE_CODE, &code);
    return code != 200;
}

static size_t write_cb (char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    if (!keep_body (x)) {
        if (fwrite (data, 1, n, x->sink) != n) {
            x->sink_failed = true;
            return 0;
        }
        return n;
    }
    struct http_resp *r = x->r;
    if (r->len + n > HTTP_CLIENT_MAX_BODY) {
        x->too_big = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        r->body = xrealloc (r->body, cap);
        x->cap = cap;
    }
    memcpy (r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t header_cb (char *data, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    static const char name[] = "X-Next-Before:";
    if (n > sizeof name - 1 && strncasecmp (data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t len = n - (sizeof name - 1);
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        free (x->r->next_before);
        x->r->next_before = xstrndup (v, len);
    }
    return n;
}

static int perform (http_client_t *c, const char *method, const char *path, const json_t *body,
                    long timeout_s, FILE *sink, struct http_resp *r, struct err *e)
{
    CURL *curl = c->curl;
    struct curl_slist *hdrs = NULL;
    char *url = xasprintf ("%s%s", c->base_url, path);
    char *payload = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct xfer x = { .r = r, .sink = sink, .curl = curl };
    int rc = -1;

    memset (r, 0, sizeof *r);
    r->body = xstrdup ("");
    x.cap = 1;
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, (long)HTTP_CLIENT_CONNECT_TIMEOUT);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "hakuriver-c-cli");
    /* only plain HTTP to the configured host; never follow a redirect elsewhere with the token */
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");

    hdrs = curl_slist_append (hdrs, "Accept: application/json, text/plain");
    hdrs = curl_slist_append (hdrs, "Expect:"); /* no 100-continue round trip */
    if (c->auth_header)
        hdrs = curl_slist_append (hdrs, c->auth_header);

    if (strcmp (method, "GET") == 0)
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
    else {
        payload = body ? json_dumps (body, JSON_COMPACT) : xstrdup ("");
        if (!payload) {
            err_set (e, EINVAL, "cannot encode the request body as JSON");
            goto out;
        }
        if (body)
            hdrs = curl_slist_append (hdrs, "Content-Type: application/json");
        curl_easy_setopt (curl, CURLOPT_POST, 1L);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long)strlen (payload));
        if (strcmp (method, "POST") != 0)
            curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform (curl);
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror (cc);
        if (x.too_big)
            err_set (e, EFBIG, "reply larger than %u bytes", HTTP_CLIENT_MAX_BODY);
        else if (x.sink_failed)
            err_set (e, EIO, "cannot write the reply: %s", strerror (errno));
        else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
            err_set (e, ECONNREFUSED, "%s", why);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            err_set (e, ETIMEDOUT, "%s", why);
        else
            err_set (e, EIO, "%s", why);
        goto out;
    }
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &r->status);
    rc = 0;
out:
    if (rc < 0)
        http_resp_free (r);
    /* the handle keeps pointers to these; drop them before they are freed */
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all (hdrs);
    free (payload);
    free (url);
    return rc;
}

int http_client_request (http_client_t *c, const char *method, const char *path,
                         const json_t *body, long timeout_s, struct http_resp *r, struct err *e)
{
    return perform (c, method, path, body, timeout_s, NULL, r, e);
}

int http_client_get_to (http_client_t *c, const char *path, long timeout_s, FILE *sink,
                        struct http_resp *r, struct err *e)
{
    return perform (c, "GET", path, NULL, timeout_s, sink, r, e);
}
