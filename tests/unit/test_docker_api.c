/* test_docker_api.c - the Docker client's pure parts: log stream demultiplexing, RFC 3339
 * times with nanoseconds, progress-stream errors, URL escaping and tarball names */
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include "common/docker_api.h"
#include "common/tarballs.h"

struct collected {
    char out[256], err[256];
    size_t nout, nerr;
};

static int collect (int stream, const char *data, size_t len, void *arg)
{
    struct collected *c = arg;
    if (stream == 2) {
        memcpy (c->err + c->nerr, data, len);
        c->nerr += len;
    } else {
        memcpy (c->out + c->nout, data, len);
        c->nout += len;
    }
    return 0;
}

static size_t frame (unsigned char *buf, int stream, const char *payload)
{
    size_t n = strlen (payload);
    memset (buf, 0, 8);
    buf[0] = (unsigned char)stream;
    buf[4] = (unsigned char)(n >> 24);
    buf[5] = (unsigned char)(n >> 16);
    buf[6] = (unsigned char)(n >> 8);
    buf[7] = (unsigned char)n;
    memcpy (buf + 8, payload, n);
    return 8 + n;
}

int main (void)
{
    unsigned char stream[256];
    size_t len = frame (stream, 1, "hello ");
    len += frame (stream + len, 2, "oops\n");
    len += frame (stream + len, 1, "world\n");
    for (size_t split = 1; split <= len; split++) {
        struct docker_demux m = { 0 };
        struct collected c = { 0 };
        /* feed in pieces of SPLIT bytes: headers and payloads cut anywhere */
        for (size_t off = 0; off < len; off += split)
            docker_demux_feed (&m, (const char *)stream + off, off + split > len ? len - off : split,
                               collect, &c);
        if (c.nout != 12 || memcmp (c.out, "hello world\n", 12) != 0 || c.nerr != 5
            || memcmp (c.err, "oops\n", 5) != 0) {
            ok (0, "demux with %zu-byte pieces", split);
            goto demux_done;
        }
    }
    ok (1, "demux: stdout and stderr frames split at every possible point");
demux_done:;

    double t;
    ok (docker_parse_time ("2026-11-29T23:50:03.459413719Z", &t) == 0, "nanosecond time parses");
    ok (t > 1795996203.45 && t < 1795996203.46, "  to the right second and fraction (%.6f)", t);
    ok (docker_parse_time ("2026-11-29T23:50:03Z", &t) == 0 && t == 1795996203.0,
        "time without a fraction");
    ok (docker_parse_time ("2026-11-30T01:50:03.5+02:00", &t) == 0 && t == 1795996203.5,
        "time with an offset");
    ok (docker_parse_time ("2026-11-29 23:50:03", &t) < 0, "no T: refused");
    ok (docker_parse_time ("2026-11-29T23:50:03.Z", &t) < 0, "empty fraction: refused");
    ok (docker_parse_time ("2026-11-29T23:50:03Zjunk", &t) < 0, "trailing bytes: refused");

    struct err e = { 0 };
    const char *good = "{\"stream\":\"Loaded image: a:b\\n\"}\r\n{\"status\":\"done\"}\n";
    ok (docker_progress_error (good, strlen (good), &e) == 0, "progress without error");
    const char *bad = "{\"status\":\"x\"}\n{\"errorDetail\":{\"message\":\"unexpected EOF\"},"
                      "\"error\":\"unexpected EOF\"}\n";
    ok (docker_progress_error (bad, strlen (bad), &e) < 0 && strcmp (e.text, "unexpected EOF") == 0,
        "progress error found: %s", e.text);

    char *esc = docker_escape ("hakuriver/env:base @x");
    is_str (esc, "hakuriver%2Fenv%3Abase%20%40x", "escape");
    free (esc);

    struct tarball tb;
    ok (tarballs_parse ("my-env-1700000000.tar", &tb) == 0 && strcmp (tb.name, "my-env") == 0
            && tb.ts == 1700000000,
        "tarball name with dashes splits at the last dash");
    ok (tarballs_parse ("env-.tar", &tb) < 0, "no timestamp: refused");
    ok (tarballs_parse ("env-12a.tar", &tb) < 0, "non-digit timestamp: refused");
    ok (tarballs_parse ("-1700000000.tar", &tb) < 0, "empty name: refused");
    ok (tarballs_parse (".env-1700000000.tar", &tb) < 0, "hidden (partial) file: refused");
    ok (tarballs_parse ("env-1700000000.tar.partial", &tb) < 0, "other suffix: refused");
    return done_testing ();
}
