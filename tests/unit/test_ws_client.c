/* test_ws_client.c - the WebSocket client handshake (common/ws_client.c) against a scripted
 * server thread on a socketpair, and docker_exec_send_error's frames and close wait */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/docker_exec.h"
#include "common/websocket.h"
#include "common/ws_client.h"
#include "common/xalloc.h"
#include "tap.h"

enum reply_kind { SRV_OK, SRV_BAD_ACCEPT, SRV_REFUSE, SRV_CLOSE };

struct server {
    int fd;
    enum reply_kind kind;
    char request[4096];          /* what the client sent */
};

/* Reads the request headers, answers as KIND says. */
static void *server_main (void *arg)
{
    struct server *s = arg;
    size_t have = 0;
    while (have < sizeof s->request - 1 && !strstr (s->request, "\r\n\r\n")) {
        ssize_t n = read (s->fd, s->request + have, sizeof s->request - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        s->request[have] = '\0';
    }
    char key[64] = "", accept[29], reply[512];
    const char *k = strcasestr (s->request, "Sec-WebSocket-Key: ");
    if (k)
        sscanf (k + 19, "%63[^\r]", key);
    ws_accept_key (key, accept);
    switch (s->kind) {
    case SRV_OK:
    case SRV_BAD_ACCEPT:
        snprintf (reply, sizeof reply, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\nEARLY",
                  s->kind == SRV_OK ? accept : "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        break;
    case SRV_REFUSE:
        snprintf (reply, sizeof reply, "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                  "Content-Length: 30\r\n\r\n{\"detail\": \"Task 7 is paused\"}");
        break;
    case SRV_CLOSE:
        reply[0] = '\0';
        break;
    }
    if (reply[0] && write (s->fd, reply, strlen (reply)) < 0)
        diag ("server write: %s", strerror (errno));
    shutdown (s->fd, SHUT_WR);
    return NULL;
}

/* Runs one handshake against a server answering KIND. */
static int handshake (enum reply_kind kind, struct server *s, struct ws_buf *early,
                      struct ws_client_refusal *ref, struct err *e)
{
    int sv[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -2;
    memset (s, 0, sizeof *s);
    s->fd = sv[1];
    s->kind = kind;
    pthread_t t;
    pthread_create (&t, NULL, server_main, s);
    int rc = ws_client_handshake (sv[0], "h:1", "/task/7/terminal?rows=2&cols=3", "sekret",
                                  "test-agent", 5000, early, ref, e);
    pthread_join (t, NULL);
    close (sv[0]);
    close (sv[1]);
    return rc;
}

static void test_handshake (void)
{
    struct server s;
    struct ws_buf early = { 0 };
    struct ws_client_refusal ref = { 0 };
    struct err e = { 0 };

    is_int (handshake (SRV_OK, &s, &early, &ref, &e), 0, "101 with the right accept: open");
    like (s.request, "GET /task/7/terminal?rows=2&cols=3 HTTP/1.1\r\n", "request line");
    like (s.request, "Authorization: Bearer sekret\r\n", "bearer token sent");
    like (s.request, "Upgrade: websocket\r\n", "upgrade header");
    like (s.request, "Sec-WebSocket-Version: 13\r\n", "version 13");
    like (s.request, "User-Agent: test-agent\r\n", "user agent");
    ok (early.len == 5 && memcmp (early.data, "EARLY", 5) == 0,
        "bytes after the headers go to EARLY");
    ws_buf_free (&early);

    is_int (handshake (SRV_BAD_ACCEPT, &s, &early, &ref, &e), -1, "101 with a wrong accept fails");
    is_int (ref.status, 0, "... with no HTTP status");
    like (e.text, "without a valid WebSocket handshake", "... and says why");
    is_int ((int)early.len, 0, "... and nothing in EARLY");

    err_clear (&e);
    is_int (handshake (SRV_REFUSE, &s, &early, &ref, &e), -1, "409 fails");
    is_int (ref.status, 409, "... with the status");
    is_str (ref.body, "{\"detail\": \"Task 7 is paused\"}", "... and the body");
    is_str (e.text, "HTTP 409", "... E says the status");
    ws_client_refusal_free (&ref);
    ok (ref.body == NULL, "refusal_free clears the body");

    err_clear (&e);
    is_int (handshake (SRV_CLOSE, &s, &early, &ref, &e), -1, "no answer fails");
    like (e.text, "no answer from host h:1", "... naming the host");
    ws_buf_free (&early);
}

static void test_hostport (void)
{
    char b[64];
    ws_client_hostport ("127.0.0.1", 8000, b, sizeof b);
    is_str (b, "127.0.0.1:8000", "IPv4 host:port");
    ws_client_hostport ("::1", 8000, b, sizeof b);
    is_str (b, "[::1]:8000", "IPv6 literal in brackets");
}

static void test_connect_refused (void)
{
    struct err e = { 0 };
    /* port 1 on loopback: nothing listens there in a test environment */
    int fd = ws_client_connect ("127.0.0.1", 1, 2000, &e);
    ok (fd < 0 && e.text[0], "connect to a closed port fails with a reason (%s)", e.text);
    if (fd >= 0)
        close (fd);
}

/* The peer of docker_exec_send_error: reads frames (a server reads masked ones), answers
 * the close. */
struct peer {
    int fd;
    char text[256];
    int close_code;
    bool masked;
};

static void *peer_main (void *arg)
{
    struct peer *p = arg;
    struct ws_reader rd;
    ws_reader_init (&rd, true, 0);
    unsigned char buf[4096];
    bool done = false;
    while (!done) {
        ssize_t n = read (p->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        struct ws_frame f;
        int cc;
        if (ws_frame_header (buf, (size_t)n, &f, &cc, NULL) == 1)
            p->masked = p->masked || f.masked;
        ws_reader_feed (&rd, buf, (size_t)n);
        struct ws_msg m;
        struct err e = { 0 };
        while (ws_reader_next (&rd, &m, &cc, &e) == 1) {
            if (m.opcode == WS_OP_TEXT)
                snprintf (p->text, sizeof p->text, "%.*s", (int)m.len, (const char *)m.data);
            if (m.opcode == WS_OP_CLOSE) {
                p->close_code = m.close_code;
                struct ws_buf out = { 0 };
                ws_close_append (&out, m.close_code, "", false);
                if (write (p->fd, out.data, out.len) < 0)
                    diag ("peer write: %s", strerror (errno));
                ws_buf_free (&out);
                done = true;
            }
        }
    }
    ws_reader_free (&rd);
    return NULL;
}

static void test_send_error (void)
{
    int sv[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        skip (4, "no socketpair");
        return;
    }
    struct peer p = { .fd = sv[1] };
    pthread_t t;
    pthread_create (&t, NULL, peer_main, &p);
    int rc = docker_exec_send_error (sv[0], false, NULL, 0, "Task 7 is paused.",
                                     WS_CLOSE_INTERNAL);
    pthread_join (t, NULL);
    close (sv[0]);
    close (sv[1]);
    is_int (rc, 0, "send_error: the peer answered the close");
    is_str (p.text, "{\"type\":\"error\",\"data\":\"Task 7 is paused.\"}", "... error message");
    is_int (p.close_code, WS_CLOSE_INTERNAL, "... then close 1011");
    ok (p.masked, "... masked frames from the client role");
}

int main (void)
{
    test_handshake ();
    test_hostport ();
    test_connect_refused ();
    test_send_error ();
    return done_testing ();
}
