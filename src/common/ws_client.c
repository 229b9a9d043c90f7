/* ws_client.c - WebSocket client handshake over TCP (connect, upgrade request, 101 check) */
#include "common/ws_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/tcp.h"
#include "common/xalloc.h"

#define HEADERS_MAX 16384      /* reply headers we read; the host sends a few hundred bytes */
#define BODY_MAX 65536         /* error reply body kept for the message */

void ws_client_hostport (const char *addr, int port, char *out, size_t n)
{
    bool v6 = strchr (addr, ':') && addr[0] != '[';
    snprintf (out, n, "%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "", port);
}

int ws_client_connect (const char *addr, int port, int timeout_ms, struct err *e)
{
    return tcp_connect (addr, port, timeout_ms, -1, e);
}

/* The value of header NAME in the header block HDRS (NUL-terminated, lines end in \r\n),
 * copied into OUT (N bytes). Returns OUT or NULL when absent. */
static char *header_value (const char *hdrs, const char *name, char *out, size_t n)
{
    size_t nl = strlen (name);
    for (const char *line = strstr (hdrs, "\r\n"); line && line[2];
         line = strstr (line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp (p, name, nl) != 0 || p[nl] != ':')
            continue;
        p += nl + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strstr (p, "\r\n");
        size_t len = end ? (size_t)(end - p) : strlen (p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len >= n)
            len = n - 1;
        memcpy (out, p, len);
        out[len] = '\0';
        return out;
    }
    return NULL;
}

/* True when the comma-separated VALUE lists TOKEN (case-insensitive). */
static bool list_has (const char *value, const char *token)
{
    size_t tl = strlen (token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if ((size_t)(end - p) == tl && strncasecmp (p, token, tl) == 0)
            return true;
        p = end;
    }
    return false;
}

void ws_client_refusal_free (struct ws_client_refusal *r)
{
    if (!r)
        return;
    free (r->body);
    r->body = NULL;
    r->len = 0;
}

int ws_client_handshake (int fd, const char *hostport, const char *path, const char *token,
                         const char *agent, int timeout_ms, struct ws_buf *early,
                         struct ws_client_refusal *refusal, struct err *e)
{
    char key[25], accept[29];
    ws_make_key (key);
    ws_accept_key (key, accept);
    if (refusal)
        *refusal = (struct ws_client_refusal){ 0 };
    char *auth = token && *token ? xasprintf ("Authorization: Bearer %s\r\n", token) : NULL;
    char *req = xasprintf ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                           path, hostport, agent, key, auth ? auth : "");
    if (auth) {
        explicit_bzero (auth, strlen (auth)); /* the token is a secret */
        free (auth);
    }
    int64_t deadline = tcp_mono_ms () + timeout_ms;
    size_t len = strlen (req), off = 0;
    int rc = -1;
    char *hdr = xmalloc (HEADERS_MAX);
    size_t have = 0;
    char *end = NULL;
    while (off < len) {
        ssize_t w = send (fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (tcp_wait (fd, POLLOUT, -1, deadline) < 0)
                goto io_error;
            continue;
        }
        if (w < 0)
            goto io_error;
        off += (size_t)w;
    }
    while (!end) {
        if (have == HEADERS_MAX - 1) {
            err_set (e, EPROTO, "host %s sent reply headers over %zu bytes", hostport, have);
            goto out;
        }
        ssize_t n = recv (fd, hdr + have, HEADERS_MAX - 1 - have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (tcp_wait (fd, POLLIN, -1, deadline) < 0)
                goto io_error;
            continue;
        }
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            goto io_error;
        }
        have += (size_t)n;
        hdr[have] = '\0';
        end = strstr (hdr, "\r\n\r\n");
    }
    end[2] = '\0'; /* the header block keeps its last \r\n */
    const char *rest = end + 4;
    size_t nrest = have - (size_t)(rest - hdr);
    int status = 0;
    if (sscanf (hdr, "HTTP/%*d.%*d %d", &status) != 1) {
        err_set (e, EPROTO, "host %s did not answer with HTTP", hostport);
        goto out;
    }
    if (status != 101) {
        /* an error reply: read its body (the host sends Content-Length) for the detail */
        char cl[32];
        size_t want = header_value (hdr, "Content-Length", cl, sizeof cl)
                          ? (size_t)strtoul (cl, NULL, 10) : 0;
        if (want > BODY_MAX)
            want = BODY_MAX;
        if (nrest > want)
            want = nrest;
        char *body = xmalloc (want + 1);
        memcpy (body, rest, nrest);
        size_t got = nrest;
        while (got < want) {
            ssize_t n = recv (fd, body + got, want - got, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (tcp_wait (fd, POLLIN, -1, deadline) < 0)
                    break;
                continue;
            }
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        body[got] = '\0';
        if (refusal) {
            refusal->status = status;
            refusal->body = body;
            refusal->len = got;
        } else {
            free (body);
        }
        err_set (e, EPROTO, "HTTP %d", status);
        goto out;
    }
    char v[128];
    if (!header_value (hdr, "Upgrade", v, sizeof v) || strcasecmp (v, "websocket") != 0
        || !header_value (hdr, "Connection", v, sizeof v) || !list_has (v, "upgrade")
        || !header_value (hdr, "Sec-WebSocket-Accept", v, sizeof v) || strcmp (v, accept) != 0) {
        err_set (e, EPROTO, "host %s answered 101 without a valid WebSocket handshake",
                 hostport);
        goto out;
    }
    ws_buf_add (early, rest, nrest);
    rc = 0;
    goto out;
io_error:
    err_set (e, errno, "no answer from host %s: %s", hostport, strerror (errno));
out:
    explicit_bzero (req, len);
    free (req);
    free (hdr);
    return rc;
}
