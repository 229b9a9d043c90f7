/* websocket.c - RFC 6455 framing, handshake keys (SHA-1, base64) and UTF-8 cleaning */
#include "common/websocket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/xalloc.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- SHA-1 (FIPS 180-4) ------------------------------------------------------------------ */

struct sha1 {
    uint32_t h[5];
    uint64_t bytes;
    unsigned char block[64];
    size_t fill;
};

static uint32_t rol (uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block (struct sha1 *s, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
               | (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol (a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol (b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_update (struct sha1 *s, const unsigned char *p, size_t len)
{
    s->bytes += len;
    while (len) {
        size_t take = 64 - s->fill;
        if (take > len)
            take = len;
        memcpy (s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        len -= take;
        if (s->fill == 64) {
            sha1_block (s, s->block);
            s->fill = 0;
        }
    }
}

void ws_sha1 (const void *data, size_t len, unsigned char out[20])
{
    struct sha1 s = { .h = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 } };
    sha1_update (&s, data, len);
    uint64_t bits = s.bytes * 8;
    unsigned char pad[72] = { 0x80 };
    size_t padlen = (s.fill < 56 ? 56 : 120) - s.fill;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update (&s, pad, padlen + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s.h[i];
    }
}

/* ---- base64 and handshake keys ------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws_base64 (const void *data, size_t len, char *out)
{
    const unsigned char *p = data;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value (char c)
{
    const char *p = c ? strchr (b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

long ws_base64_decode (const char *s, unsigned char *out, size_t max)
{
    size_t n = strlen (s), o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[i + (size_t)j];
            if (c == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64_value (c)) < 0) {
                return -1; /* a character after '=' or outside the alphabet */
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6
                     | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        if (o + take > max)
            return -1;
        for (size_t j = 0; j < take; j++)
            out[o++] = (unsigned char)(x >> (16 - 8 * j));
    }
    return (long)o;
}

bool ws_key_valid (const char *key)
{
    unsigned char raw[18];
    return key && strlen (key) == 24 && ws_base64_decode (key, raw, sizeof raw) == 16;
}

void ws_accept_key (const char *key, char out[29])
{
    size_t kl = strlen (key), gl = strlen (WS_GUID);
    char *cat = xmalloc (kl + gl + 1);
    memcpy (cat, key, kl);
    memcpy (cat + kl, WS_GUID, gl + 1);
    unsigned char digest[20];
    ws_sha1 (cat, kl + gl, digest);
    free (cat);
    ws_base64 (digest, sizeof digest, out);
}

/* Fills BUF with random bytes; falls back to a weak source only if getrandom fails (the
 * key and masks defend against proxy cache poisoning, not against the peer). */
static void random_bytes (unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom (buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n) {
        static unsigned seed;
        if (!seed)
            seed = (unsigned)time (NULL) ^ (unsigned)(uintptr_t)buf;
        for (; got < n; got++)
            buf[got] = (unsigned char)(rand_r (&seed) >> 7);
    }
}

void ws_make_key (char out[25])
{
    unsigned char raw[16];
    random_bytes (raw, sizeof raw);
    ws_base64 (raw, sizeof raw, out);
}

/* ---- buffer and encoding ------------------------------------------------------------------ */

void ws_buf_add (struct ws_buf *b, const void *data, size_t len)
{
    if (!len)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        b->data = xrealloc (b->data, cap);
        b->cap = cap;
    }
    memcpy (b->data + b->len, data, len);
    b->len += len;
}

void ws_buf_consume (struct ws_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove (b->data, b->data + n, b->len - n);
    b->len -= n;
}

void ws_buf_free (struct ws_buf *b)
{
    free (b->data);
    memset (b, 0, sizeof *b);
}

void ws_frame_append (struct ws_buf *b, int opcode, bool fin, const void *payload, size_t len,
                      bool mask)
{
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        hdr[h++] = (unsigned char)(m | len);
    } else if (len <= 0xffff) {
        hdr[h++] = m | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char key[4];
    if (mask) {
        random_bytes (key, sizeof key);
        memcpy (hdr + h, key, 4);
        h += 4;
    }
    ws_buf_add (b, hdr, h);
    if (!len)
        return;
    size_t start = b->len;
    ws_buf_add (b, payload, len);
    if (mask)
        for (size_t i = 0; i < len; i++)
            b->data[start + i] ^= key[i & 3];
}

void ws_close_append (struct ws_buf *b, int code, const char *reason, bool mask)
{
    unsigned char p[125];
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    size_t rl = reason ? strlen (reason) : 0;
    if (rl > sizeof p - 2) {
        rl = sizeof p - 2;
        /* do not cut a UTF-8 sequence: back up to the start of a character */
        while (rl && ((unsigned char)reason[rl] & 0xc0) == 0x80)
            rl--;
    }
    if (rl)
        memcpy (p + 2, reason, rl);
    ws_frame_append (b, WS_OP_CLOSE, true, p, rl + 2, mask);
}

/* ---- reading ------------------------------------------------------------------------------ */

static int bad (int *close_code, int code, struct err *e, const char *what)
{
    *close_code = code;
    return err_set (e, EPROTO, "%s", what);
}

int ws_frame_header (const unsigned char *buf, size_t len, struct ws_frame *f, int *close_code,
                     struct err *e)
{
    if (len < 2)
        return 0;
    struct ws_frame fr = { 0 };
    fr.fin = buf[0] & 0x80;
    fr.opcode = buf[0] & 0x0f;
    fr.masked = buf[1] & 0x80;
    if (buf[0] & 0x70)
        return bad (close_code, WS_CLOSE_PROTOCOL, e,
                    "reserved bits set (no extension was negotiated)");
    switch (fr.opcode) {
    case WS_OP_CONT: case WS_OP_TEXT: case WS_OP_BINARY:
    case WS_OP_CLOSE: case WS_OP_PING: case WS_OP_PONG:
        break;
    default:
        return bad (close_code, WS_CLOSE_PROTOCOL, e, "unknown opcode");
    }
    uint64_t l = buf[1] & 0x7f;
    size_t h = 2;
    if (l == 126) {
        if (len < 4)
            return 0;
        l = (uint64_t)buf[2] << 8 | buf[3];
        h = 4;
        if (l < 126)
            return bad (close_code, WS_CLOSE_PROTOCOL, e, "length not in its minimal form");
    } else if (l == 127) {
        if (len < 10)
            return 0;
        l = 0;
        for (int i = 0; i < 8; i++)
            l = l << 8 | buf[2 + i];
        h = 10;
        if (l >> 63)
            return bad (close_code, WS_CLOSE_PROTOCOL, e,
                        "length has its most significant bit set");
        if (l <= 0xffff)
            return bad (close_code, WS_CLOSE_PROTOCOL, e, "length not in its minimal form");
    }
    if (fr.opcode >= WS_OP_CLOSE) {
        if (!fr.fin)
            return bad (close_code, WS_CLOSE_PROTOCOL, e, "fragmented control frame");
        if (l > 125)
            return bad (close_code, WS_CLOSE_PROTOCOL, e, "control frame over 125 bytes");
    }
    if (fr.masked) {
        if (len < h + 4)
            return 0;
        memcpy (fr.mask, buf + h, 4);
        h += 4;
    }
    fr.len = l;
    fr.hdr_len = h;
    *f = fr;
    return 1;
}

void ws_reader_init (struct ws_reader *r, bool server, size_t max)
{
    memset (r, 0, sizeof *r);
    r->server = server;
    r->max = max ? max : WS_MAX_MESSAGE;
}

void ws_reader_free (struct ws_reader *r)
{
    ws_buf_free (&r->in);
    ws_buf_free (&r->msg);
}

void ws_reader_feed (struct ws_reader *r, const void *data, size_t len)
{
    if (r->drop) {
        ws_buf_consume (&r->in, r->drop);
        r->drop = 0;
    }
    ws_buf_add (&r->in, data, len);
}

int ws_reader_next (struct ws_reader *r, struct ws_msg *m, int *close_code, struct err *e)
{
    if (r->drop) {
        ws_buf_consume (&r->in, r->drop);
        r->drop = 0;
    }
    for (;;) {
        struct ws_frame f;
        int rc = ws_frame_header (r->in.data, r->in.len, &f, close_code, e);
        if (rc <= 0)
            return rc;
        if (f.masked != r->server)
            return bad (close_code, WS_CLOSE_PROTOCOL, e,
                        r->server ? "client frame not masked" : "server frame masked");
        /* the size is checked before buffering the payload, so that memory stays bounded */
        if (f.len > r->max || (f.opcode == WS_OP_CONT && r->msg.len + f.len > r->max))
            return bad (close_code, WS_CLOSE_TOO_BIG, e, "message too big");
        if (r->in.len - f.hdr_len < f.len)
            return 0;
        unsigned char *p = r->in.data + f.hdr_len;
        size_t n = (size_t)f.len;
        if (f.masked)
            for (size_t i = 0; i < n; i++)
                p[i] ^= f.mask[i & 3];
        size_t frame_len = f.hdr_len + n;
        if (f.opcode >= WS_OP_CLOSE) {
            memset (m, 0, sizeof *m);
            m->opcode = f.opcode;
            m->data = p;
            m->len = n;
            if (f.opcode == WS_OP_CLOSE) {
                if (n == 1)
                    return bad (close_code, WS_CLOSE_PROTOCOL, e, "close frame of 1 byte");
                m->close_code = WS_CLOSE_NO_STATUS;
                if (n >= 2) {
                    m->close_code = p[0] << 8 | p[1];
                    m->data = p + 2;
                    m->len = n - 2;
                    if (!ws_utf8_valid (m->data, m->len))
                        return bad (close_code, WS_CLOSE_INVALID_DATA, e,
                                    "close reason is not UTF-8");
                }
            }
            r->drop = frame_len;
            return 1;
        }
        if (f.opcode == WS_OP_CONT) {
            if (!r->msg_op)
                return bad (close_code, WS_CLOSE_PROTOCOL, e, "continuation without a message");
        } else if (r->msg_op) {
            return bad (close_code, WS_CLOSE_PROTOCOL, e, "new message inside a fragmented one");
        }
        if (f.opcode != WS_OP_CONT && f.fin) {
            /* an unfragmented message: hand it out from the input buffer, no copy */
            if (f.opcode == WS_OP_TEXT && !ws_utf8_valid (p, n))
                return bad (close_code, WS_CLOSE_INVALID_DATA, e, "text message is not UTF-8");
            memset (m, 0, sizeof *m);
            m->opcode = f.opcode;
            m->data = p;
            m->len = n;
            r->drop = frame_len;
            return 1;
        }
        if (f.opcode != WS_OP_CONT)
            r->msg_op = f.opcode;
        ws_buf_add (&r->msg, p, n);
        ws_buf_consume (&r->in, frame_len);
        if (!f.fin)
            continue;
        int op = r->msg_op;
        r->msg_op = 0;
        if (op == WS_OP_TEXT && !ws_utf8_valid (r->msg.data, r->msg.len))
            return bad (close_code, WS_CLOSE_INVALID_DATA, e, "text message is not UTF-8");
        /* hand out the reassembled message; it is dropped at the next call */
        struct ws_buf whole = r->msg;
        memset (&r->msg, 0, sizeof r->msg);
        /* keep it alive until the next call by moving it to the front of IN */
        struct ws_buf rest = r->in;
        r->in = whole;
        ws_buf_add (&r->in, rest.data, rest.len);
        ws_buf_free (&rest);
        memset (m, 0, sizeof *m);
        m->opcode = op;
        m->data = r->in.data;
        m->len = whole.len;
        r->drop = whole.len;
        return 1;
    }
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* For lead byte C: the number of continuation bytes and the range of the first of them
 * (RFC 3629 table). Returns -1 for a byte that cannot start a sequence. */
static int utf8_lead (unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        return 1;
    if (c == 0xe0) {
        *lo = 0xa0;
        return 2;
    }
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        return 2;
    if (c == 0xed) {
        *hi = 0x9f; /* no surrogates */
        return 2;
    }
    if (c == 0xf0) {
        *lo = 0x90;
        return 3;
    }
    if (c >= 0xf1 && c <= 0xf3)
        return 3;
    if (c == 0xf4) {
        *hi = 0x8f; /* nothing above U+10FFFF */
        return 3;
    }
    return -1;
}

/* Length of the well-formed sequence at P (N bytes available): > 0 when complete, 0 when it
 * is a valid prefix cut by the end, -K when the first K bytes are a maximal invalid part. */
static long utf8_seq (const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    unsigned char lo, hi;
    int need = utf8_lead (p[0], &lo, &hi);
    if (need < 0)
        return -1;
    for (int j = 1; j <= need; j++) {
        if ((size_t)j >= n)
            return 0;
        unsigned char c = p[j];
        if (c < (j == 1 ? lo : 0x80) || c > (j == 1 ? hi : 0xbf))
            return -j;
    }
    return need + 1;
}

bool ws_utf8_valid (const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        long k = utf8_seq (p + i, len - i);
        if (k <= 0)
            return false;
        i += (size_t)k;
    }
    return true;
}

size_t ws_utf8_clean (const void *in, size_t len, bool final, struct ws_buf *out)
{
    static const unsigned char repl[3] = { 0xef, 0xbf, 0xbd };
    const unsigned char *p = in;
    size_t i = 0, run = 0; /* run: start of the valid bytes not yet copied */
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        long k = utf8_seq (p + i, len - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        ws_buf_add (out, p + run, i - run);
        if (k == 0 && !final)
            return i; /* a character cut by the end of this chunk: keep it for the next */
        ws_buf_add (out, repl, sizeof repl);
        i += k == 0 ? len - i : (size_t)-k;
        run = i;
    }
    ws_buf_add (out, p + run, i - run);
    return i;
}
