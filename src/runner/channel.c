/* channel.c - HTTP requests to the host over libcurl multi (keep-alive, no signals) */
#include "runner/channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Replies larger than this are cut off and treated as a transport error: the largest
 * legitimate reply is a poll batch of run commands, well under the host's 4 MiB limit
 * on what it accepts. */
#define MAX_REPLY_BYTES (64u << 20)
#define MAX_REQS        8

struct channel_req {
    struct channel *ch;
    const char *name;
    channel_done_f cb;
    void *arg;
    CURL *easy;
    bool busy;
    char *req_body;
    char *reply;
    size_t reply_len, reply_cap;
    bool reply_overflow;
    long status;
    char curl_err[CURL_ERROR_SIZE];
    char error[CURL_ERROR_SIZE + 64];
    double elapsed;
};

struct channel {
    CURLM *multi;
    char *base_url;
    struct curl_slist *headers;
    char *auth_header;   /* wiped on destroy */
    struct channel_req *reqs[MAX_REQS];
    int nreqs;
};

static bool curl_initialized;

static size_t write_cb (char *data, size_t size, size_t nmemb, void *userp)
{
    struct channel_req *req = userp;
    size_t n = size * nmemb;
    if (req->reply_len + n + 1 > MAX_REPLY_BYTES) {
        req->reply_overflow = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (req->reply_len + n + 1 > req->reply_cap) {
        size_t cap = req->reply_cap ? req->reply_cap : 4096;
        while (cap < req->reply_len + n + 1)
            cap *= 2;
        req->reply = xrealloc (req->reply, cap);
        req->reply_cap = cap;
    }
    memcpy (req->reply + req->reply_len, data, n);
    req->reply_len += n;
    req->reply[req->reply_len] = '\0';
    return n;
}

struct channel *channel_create (const char *base_url, const char *token, struct err *e)
{
    if (!curl_initialized) {
        if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            err_set (e, EIO, "curl_global_init failed");
            return NULL;
        }
        curl_initialized = true;
    }
    struct channel *ch = xcalloc (1, sizeof *ch);
    ch->multi = curl_multi_init ();
    if (!ch->multi) {
        err_set (e, ENOMEM, "curl_multi_init failed");
        goto error;
    }
    /* A few connections suffice: the long poll holds one, updates/heartbeats share others. */
    curl_multi_setopt (ch->multi, CURLMOPT_MAXCONNECTS, 8L);
    ch->base_url = xstrdup (base_url);
    ch->headers = curl_slist_append (NULL, "Content-Type: application/json");
    ch->headers = curl_slist_append (ch->headers, "Accept: application/json");
    ch->headers = curl_slist_append (ch->headers, "Expect:"); /* no 100-continue round trip */
    if (token && *token) {
        ch->auth_header = xasprintf ("Authorization: Bearer %s", token);
        ch->headers = curl_slist_append (ch->headers, ch->auth_header);
    }
    if (!ch->headers) {
        err_set (e, ENOMEM, "curl_slist_append failed");
        goto error;
    }
    return ch;
error:
    channel_destroy (ch);
    return NULL;
}

static void req_free (struct channel_req *req)
{
    if (req->easy) {
        if (req->busy)
            curl_multi_remove_handle (req->ch->multi, req->easy);
        curl_easy_cleanup (req->easy);
    }
    free (req->req_body);
    free (req->reply);
    free (req);
}

/* Overwrites a secret in a way the compiler may not elide. */
static void wipe (char *s)
{
    if (s)
        explicit_bzero (s, strlen (s));
}

void channel_destroy (struct channel *ch)
{
    if (!ch)
        return;
    int saved = errno;
    for (int i = 0; i < ch->nreqs; i++)
        req_free (ch->reqs[i]);
    if (ch->multi)
        curl_multi_cleanup (ch->multi);
    /* curl_slist_append copied the header: wipe that copy too. */
    for (struct curl_slist *l = ch->headers; l; l = l->next)
        wipe (l->data);
    curl_slist_free_all (ch->headers);
    wipe (ch->auth_header);
    free (ch->auth_header);
    free (ch->base_url);
    free (ch);
    errno = saved;
}

struct channel_req *channel_req_create (struct channel *ch, const char *name, channel_done_f cb,
                                        void *arg)
{
    if (ch->nreqs == MAX_REQS)
        return NULL;
    struct channel_req *req = xcalloc (1, sizeof *req);
    req->ch = ch;
    req->name = name;
    req->cb = cb;
    req->arg = arg;
    req->reply = xstrdup ("");
    req->reply_cap = 1;
    req->easy = curl_easy_init ();
    if (!req->easy) {
        req_free (req);
        return NULL;
    }
    CURL *h = req->easy;
    curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (h, CURLOPT_PRIVATE, req);
    curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt (h, CURLOPT_WRITEDATA, req);
    curl_easy_setopt (h, CURLOPT_ERRORBUFFER, req->curl_err);
    curl_easy_setopt (h, CURLOPT_HTTPHEADER, ch->headers);
    curl_easy_setopt (h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
    /* Never read proxy settings from the environment: runner traffic goes to the host. */
    curl_easy_setopt (h, CURLOPT_PROXY, "");
    ch->reqs[ch->nreqs++] = req;
    return req;
}

int channel_req_start (struct channel_req *req, const char *method, const char *path,
                       char *body, long timeout_ms, struct err *e)
{
    if (req->busy) {
        free (body);
        return err_set (e, EBUSY, "%s: request already in flight", req->name);
    }
    CURL *h = req->easy;
    char *url = xasprintf ("%s%s", req->ch->base_url, path);
    free (req->req_body);
    req->req_body = body;
    req->reply_len = 0;
    req->reply[0] = '\0';
    req->reply_overflow = false;
    req->status = 0;
    req->curl_err[0] = '\0';
    req->error[0] = '\0';
    req->elapsed = 0;

    curl_easy_setopt (h, CURLOPT_URL, url);
    free (url); /* curl copies string options */
    curl_easy_setopt (h, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (strcmp (method, "GET") == 0) {
        curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt (h, CURLOPT_HTTPGET, 1L);
    } else {
        const char *data = body ? body : "";
        curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen (data));
        curl_easy_setopt (h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, strcmp (method, "POST") == 0 ? NULL : method);
    }
    CURLMcode mc = curl_multi_add_handle (req->ch->multi, h);
    if (mc != CURLM_OK)
        return err_set (e, EIO, "%s: curl_multi_add_handle: %s", req->name,
                        curl_multi_strerror (mc));
    req->busy = true;
    return 0;
}

bool channel_req_busy (const struct channel_req *req)
{
    return req->busy;
}

long channel_req_status (const struct channel_req *req)
{
    return req->status;
}

const char *channel_req_error (const struct channel_req *req)
{
    return req->error;
}

const char *channel_req_body (const struct channel_req *req)
{
    return req->reply;
}

const char *channel_req_name (const struct channel_req *req)
{
    return req->name;
}

double channel_req_elapsed (const struct channel_req *req)
{
    return req->elapsed;
}

/* Moves every finished transfer of CH into DONE (at most MAX_REQS - *NDONE more), detached
 * from the multi handle with its status or error recorded; callbacks are not run here. */
static void collect_done (struct channel *ch, struct channel_req **done, int *ndone)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (ch->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct channel_req *req = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle (ch->multi, msg->easy_handle);
        if (!req)
            continue;
        req->busy = false;
        curl_easy_getinfo (req->easy, CURLINFO_TOTAL_TIME, &req->elapsed);
        if (rc == CURLE_OK) {
            curl_easy_getinfo (req->easy, CURLINFO_RESPONSE_CODE, &req->status);
        } else {
            req->status = 0;
            if (req->reply_overflow)
                snprintf (req->error, sizeof req->error, "reply larger than %u bytes",
                          MAX_REPLY_BYTES);
            else
                snprintf (req->error, sizeof req->error, "%s",
                          req->curl_err[0] ? req->curl_err : curl_easy_strerror (rc));
        }
        if (*ndone < MAX_REQS)
            done[(*ndone)++] = req;
    }
}

int channel_run (struct channel *ch, struct curl_waitfd *extra, unsigned nextra, int timeout_ms,
                 struct err *e)
{
    int running;
    struct channel_req *done[MAX_REQS];
    int ndone = 0;

    /* The first perform starts the requests added since the last call. On a reused
     * keep-alive connection the whole reply may arrive within it: that transfer is then
     * finished and its socket no longer in curl's wait set, so sleeping now would delay its
     * callback by the whole timeout. Collect such transfers first and only wait when there
     * is none. */
    CURLMcode mc = curl_multi_perform (ch->multi, &running);
    if (mc == CURLM_OK)
        collect_done (ch, done, &ndone);
    if (mc == CURLM_OK)
        mc = curl_multi_poll (ch->multi, extra, nextra, ndone ? 0 : timeout_ms, NULL);
    if (mc == CURLM_OK)
        mc = curl_multi_perform (ch->multi, &running);
    if (mc != CURLM_OK)
        return err_set (e, EIO, "curl multi: %s", curl_multi_strerror (mc));

    /* Detach every finished transfer first, then run callbacks, so that a callback may
     * restart its own request. */
    collect_done (ch, done, &ndone);
    for (int i = 0; i < ndone; i++)
        if (done[i]->cb)
            done[i]->cb (done[i], done[i]->arg);
    return 0;
}

char *channel_escape (struct channel *ch, const char *s)
{
    (void)ch;
    char *esc = curl_easy_escape (NULL, s, 0);
    if (!esc)
        return xstrdup (s);
    char *out = xstrdup (esc);
    curl_free (esc);
    return out;
}
