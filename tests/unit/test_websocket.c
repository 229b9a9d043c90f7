/* test_websocket.c - SHA-1, base64, handshake keys, frame encoding/reading, UTF-8 cleaning */
#include <string.h>

#include "common/websocket.h"
#include "common/xalloc.h"
#include "tap.h"

static void hex (const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf (out + 2 * i, "%02x", d[i]);
}

static const char *sha1_hex (const void *data, size_t len)
{
    static char out[41];
    unsigned char d[20];
    ws_sha1 (data, len, d);
    hex (d, 20, out);
    return out;
}

static void test_sha1 (void)
{
    is_str (sha1_hex ("", 0), "da39a3ee5e6b4b0d3255bfef95601890afd80709", "SHA-1 of empty");
    is_str (sha1_hex ("abc", 3), "a9993e364706816aba3e25717850c26c9cd0d89d", "SHA-1 of abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    is_str (sha1_hex (two, strlen (two)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            "SHA-1 of the two-block FIPS vector");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    is_str (sha1_hex (fox, strlen (fox)), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            "SHA-1 of the quick brown fox");
    /* padding edges: 55/56 bytes (length fits or not in the first block), 63/64/65, 119/120 */
    static const struct { size_t n; const char *want; } edges[] = {
        { 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a" },
        { 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699" },
        { 63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5" },
        { 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d" },
        { 65, "11655326c708d70319be2610e8a57d9a5b959d3b" },
        { 119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56" },
        { 120, "f34c1488385346a55709ba056ddd08280dd4c6d6" },
    };
    char as[128];
    memset (as, 'a', sizeof as);
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        is_str (sha1_hex (as, edges[i].n), edges[i].want, "SHA-1 of %zu x 'a'", edges[i].n);
    char *million = xmalloc (1000000);
    memset (million, 'a', 1000000);
    is_str (sha1_hex (million, 1000000), "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
            "SHA-1 of a million 'a'");
    free (million);
}

static void test_base64_and_keys (void)
{
    char out[64];
    static const struct { const char *in, *want; } v[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ws_base64 (v[i].in, strlen (v[i].in), out);
        is_str (out, v[i].want, "base64 of '%s' (RFC 4648 vector)", v[i].in);
        unsigned char back[16];
        long n = ws_base64_decode (v[i].want, back, sizeof back);
        ok (n == (long)strlen (v[i].in) && memcmp (back, v[i].in, (size_t)n) == 0,
            "base64 decode of '%s'", v[i].want);
    }
    unsigned char raw[16];
    ok (ws_base64_decode ("Zm9", raw, sizeof raw) < 0, "base64 decode: bad length refused");
    ok (ws_base64_decode ("Zm9v!A==", raw, sizeof raw) < 0, "base64 decode: bad char refused");
    ok (ws_base64_decode ("Zg==Zg==", raw, sizeof raw) < 0, "base64 decode: inner padding refused");
    ok (ws_base64_decode ("Zm9vYmFy", raw, 5) < 0, "base64 decode: too long for the buffer");

    char acc[29];
    ws_accept_key ("dGhlIHNhbXBsZSBub25jZQ==", acc);
    /* RFC 6455 1.3; the same value Python computes with hashlib and base64 */
    is_str (acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 accept key example");
    ok (ws_key_valid ("dGhlIHNhbXBsZSBub25jZQ=="), "RFC example key is valid");
    ok (!ws_key_valid ("dGhlIHNhbXBsZSBub25jZQ="), "a 23-character key is invalid");
    ok (!ws_key_valid ("dGhlIHNhbXBsZSBub25jZ==="), "a key with bad padding is invalid");
    ok (!ws_key_valid ("aGVsbG8gd29ybGQhISEhISE="), "the base64 of 17 bytes is invalid");
    ok (!ws_key_valid (""), "an empty key is invalid");
    ok (!ws_key_valid (NULL), "no key is invalid");
    char k1[25], k2[25];
    ws_make_key (k1);
    ws_make_key (k2);
    ok (ws_key_valid (k1) && strcmp (k1, k2) != 0, "generated keys are valid and differ");
}

/* Reads every message from the bytes of B with a reader of ROLE, feeding them in pieces
 * of STEP bytes. Returns the concatenated TEXT/BINARY payloads; *NMSG the count. */
static char *read_all (const struct ws_buf *b, bool server, size_t step, int *nmsg, int *err)
{
    struct ws_reader r;
    ws_reader_init (&r, server, 0);
    struct ws_buf got = { 0 };
    *nmsg = 0;
    *err = 0;
    for (size_t off = 0; off < b->len && !*err; off += step) {
        size_t n = b->len - off < step ? b->len - off : step;
        ws_reader_feed (&r, b->data + off, n);
        struct ws_msg m;
        int cc, rc;
        struct err e;
        while ((rc = ws_reader_next (&r, &m, &cc, &e)) == 1) {
            ws_buf_add (&got, m.data, m.len);
            (*nmsg)++;
        }
        if (rc < 0)
            *err = cc;
    }
    ws_buf_add (&got, "", 1);
    ws_reader_free (&r);
    return (char *)got.data;
}

static void test_frames (void)
{
    /* 7-bit length, unmasked (server to client) */
    struct ws_buf b = { 0 };
    ws_frame_append (&b, WS_OP_TEXT, true, "Hello", 5, false);
    static const unsigned char hello[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    ok (b.len == sizeof hello && memcmp (b.data, hello, sizeof hello) == 0,
        "unmasked 'Hello' matches RFC 6455 5.7");
    struct ws_frame f;
    int cc = 0;
    struct err e;
    ok (ws_frame_header (b.data, 1, &f, &cc, &e) == 0, "one byte is not a header yet");
    ok (ws_frame_header (b.data, b.len, &f, &cc, &e) == 1 && f.fin && f.opcode == WS_OP_TEXT
            && !f.masked && f.len == 5 && f.hdr_len == 2,
        "header parsed");
    ws_buf_free (&b);

    /* the RFC's masked example decodes to Hello */
    static const unsigned char masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                            0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    struct ws_reader r;
    ws_reader_init (&r, true, 0);
    ws_reader_feed (&r, masked, sizeof masked);
    struct ws_msg m;
    ok (ws_reader_next (&r, &m, &cc, &e) == 1 && m.opcode == WS_OP_TEXT && m.len == 5
            && memcmp (m.data, "Hello", 5) == 0,
        "RFC 6455 masked example reads as Hello");
    ok (ws_reader_next (&r, &m, &cc, &e) == 0, "then nothing more");
    ws_reader_free (&r);

    /* a client reader refuses masked frames; a server reader refuses unmasked ones */
    ws_reader_init (&r, false, 0);
    ws_reader_feed (&r, masked, sizeof masked);
    ok (ws_reader_next (&r, &m, &cc, &e) == -1 && cc == WS_CLOSE_PROTOCOL,
        "client role: a masked frame is a protocol error");
    ws_reader_free (&r);
    ws_reader_init (&r, true, 0);
    ws_reader_feed (&r, hello, sizeof hello);
    ok (ws_reader_next (&r, &m, &cc, &e) == -1 && cc == WS_CLOSE_PROTOCOL,
        "server role: an unmasked frame is a protocol error");
    ws_reader_free (&r);

    /* round trips at the length boundaries, masked and not, fed byte by byte and at once */
    static const size_t sizes[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *payload = xmalloc (n + 1);
        for (size_t j = 0; j < n; j++)
            payload[j] = (char)('a' + j % 26);
        payload[n] = '\0';
        for (int mask = 0; mask < 2; mask++) {
            struct ws_buf enc = { 0 };
            ws_frame_append (&enc, WS_OP_BINARY, true, payload, n, mask);
            size_t want_hdr = (n < 126 ? 2 : n <= 65535 ? 4 : 10) + (mask ? 4 : 0);
            ok (enc.len == want_hdr + n, "%zu bytes %s: header is %zu bytes", n,
                mask ? "masked" : "unmasked", want_hdr);
            int nm, err;
            char *got = read_all (&enc, mask, n > 1000 ? 4096 : 1, &nm, &err);
            ok (nm == 1 && err == 0 && strcmp (got, payload) == 0, "%zu bytes %s round trip",
                n, mask ? "masked" : "unmasked");
            free (got);
            ws_buf_free (&enc);
        }
        free (payload);
    }

    /* fragmentation with a ping in the middle */
    struct ws_buf fr = { 0 };
    ws_frame_append (&fr, WS_OP_TEXT, false, "Hel", 3, true);
    ws_frame_append (&fr, WS_OP_PING, true, "p", 1, true);
    ws_frame_append (&fr, WS_OP_CONT, false, "lo, ", 4, true);
    ws_frame_append (&fr, WS_OP_CONT, true, "world", 5, true);
    ws_frame_append (&fr, WS_OP_TEXT, true, "!", 1, true);
    for (int step = 1; step <= 64; step *= 4) {
        ws_reader_init (&r, true, 0);
        int seen = 0, rc = 0;
        bool good = true;
        for (size_t off = 0; off < fr.len; off += (size_t)step) {
            size_t n = fr.len - off < (size_t)step ? fr.len - off : (size_t)step;
            ws_reader_feed (&r, fr.data + off, n);
            while ((rc = ws_reader_next (&r, &m, &cc, &e)) == 1) {
                if (seen == 0)
                    good &= m.opcode == WS_OP_PING && m.len == 1 && m.data[0] == 'p';
                else if (seen == 1)
                    good &= m.opcode == WS_OP_TEXT && m.len == 12
                            && memcmp (m.data, "Hello, world", 12) == 0;
                else if (seen == 2)
                    good &= m.opcode == WS_OP_TEXT && m.len == 1 && m.data[0] == '!';
                seen++;
            }
            good &= rc == 0;
        }
        ok (good && seen == 3, "fragmented message with an interleaved ping (feed step %d)", step);
        ws_reader_free (&r);
    }
    ws_buf_free (&fr);

    /* close frames */
    struct ws_buf cl = { 0 };
    ws_close_append (&cl, WS_CLOSE_NORMAL, "bye", true);
    ws_reader_init (&r, true, 0);
    ws_reader_feed (&r, cl.data, cl.len);
    ok (ws_reader_next (&r, &m, &cc, &e) == 1 && m.opcode == WS_OP_CLOSE && m.close_code == 1000
            && m.len == 3 && memcmp (m.data, "bye", 3) == 0,
        "close frame carries code 1000 and its reason");
    ws_reader_free (&r);
    ws_buf_free (&cl);
    char longreason[300];
    memset (longreason, 'x', sizeof longreason - 1);
    longreason[sizeof longreason - 1] = '\0';
    ws_close_append (&cl, WS_CLOSE_INTERNAL, longreason, false);
    ok (cl.len == 2 + 125, "a long close reason is cut to the 125-byte control limit");
    ws_buf_free (&cl);
    ws_frame_append (&cl, WS_OP_CLOSE, true, NULL, 0, false);
    ws_reader_init (&r, false, 0);
    ws_reader_feed (&r, cl.data, cl.len);
    ok (ws_reader_next (&r, &m, &cc, &e) == 1 && m.close_code == WS_CLOSE_NO_STATUS,
        "an empty close frame reads as 1005");
    ws_reader_free (&r);
    ws_buf_free (&cl);
}

/* Feeds raw bytes to a reader of ROLE and returns the close code of the error, 0 if none. */
static int error_of (const void *bytes, size_t n, bool server, size_t max)
{
    struct ws_reader r;
    ws_reader_init (&r, server, max);
    ws_reader_feed (&r, bytes, n);
    struct ws_msg m;
    int cc = 0, rc;
    struct err e;
    while ((rc = ws_reader_next (&r, &m, &cc, &e)) == 1)
        ;
    ws_reader_free (&r);
    return rc < 0 ? cc : 0;
}

static void test_bad_frames (void)
{
    static const unsigned char rsv[] = { 0xc1, 0x00 };
    is_int (error_of (rsv, sizeof rsv, false, 0), WS_CLOSE_PROTOCOL, "RSV1 set: 1002");
    static const unsigned char op3[] = { 0x83, 0x00 };
    is_int (error_of (op3, sizeof op3, false, 0), WS_CLOSE_PROTOCOL, "opcode 3: 1002");
    static const unsigned char fragping[] = { 0x09, 0x00 };
    is_int (error_of (fragping, sizeof fragping, false, 0), WS_CLOSE_PROTOCOL,
            "fragmented ping: 1002");
    static const unsigned char bigping[] = { 0x89, 0x7e, 0x00, 0x7e };
    is_int (error_of (bigping, sizeof bigping, false, 0), WS_CLOSE_PROTOCOL,
            "126-byte ping: 1002");
    static const unsigned char nonmin16[] = { 0x82, 0x7e, 0x00, 0x05, 1, 2, 3, 4, 5 };
    is_int (error_of (nonmin16, sizeof nonmin16, false, 0), WS_CLOSE_PROTOCOL,
            "16-bit length under 126: 1002");
    static const unsigned char nonmin64[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x00 };
    is_int (error_of (nonmin64, sizeof nonmin64, false, 0), WS_CLOSE_PROTOCOL,
            "64-bit length under 65536: 1002");
    static const unsigned char msb64[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    is_int (error_of (msb64, sizeof msb64, false, 0), WS_CLOSE_PROTOCOL,
            "64-bit length with the top bit: 1002");
    static const unsigned char huge[] = { 0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0 };
    is_int (error_of (huge, sizeof huge, false, 0), WS_CLOSE_TOO_BIG,
            "a 4 GiB frame is refused from its header alone: 1009");
    /* over the limit by fragments */
    struct ws_buf b = { 0 };
    char chunk[600];
    memset (chunk, 'z', sizeof chunk);
    ws_frame_append (&b, WS_OP_TEXT, false, chunk, sizeof chunk, true);
    ws_frame_append (&b, WS_OP_CONT, true, chunk, sizeof chunk, true);
    is_int (error_of (b.data, b.len, true, 1000), WS_CLOSE_TOO_BIG,
            "fragments adding up over the limit: 1009");
    is_int (error_of (b.data, b.len, true, 2000), 0, "the same under a larger limit is fine");
    ws_buf_free (&b);
    static const unsigned char cont[] = { 0x80, 0x00 };
    is_int (error_of (cont, sizeof cont, false, 0), WS_CLOSE_PROTOCOL,
            "continuation without a message: 1002");
    static const unsigned char twostarts[] = { 0x01, 0x01, 'a', 0x01, 0x01, 'b' };
    is_int (error_of (twostarts, sizeof twostarts, false, 0), WS_CLOSE_PROTOCOL,
            "a new message inside a fragmented one: 1002");
    static const unsigned char badtext[] = { 0x81, 0x02, 0xc3, 0x28 };
    is_int (error_of (badtext, sizeof badtext, false, 0), WS_CLOSE_INVALID_DATA,
            "a text message that is not UTF-8: 1007");
    static const unsigned char badfrag[] = { 0x01, 0x01, 0xe2, 0x80, 0x01, 0x82 };
    is_int (error_of (badfrag, sizeof badfrag, false, 0), WS_CLOSE_INVALID_DATA,
            "a fragmented text message with a bad sequence: 1007");
    static const unsigned char splitok[] = { 0x01, 0x02, 0xe2, 0x82, 0x80, 0x01, 0xac };
    is_int (error_of (splitok, sizeof splitok, false, 0), 0,
            "a character split across fragments is fine");
    static const unsigned char close1[] = { 0x88, 0x01, 0x03 };
    is_int (error_of (close1, sizeof close1, false, 0), WS_CLOSE_PROTOCOL,
            "a 1-byte close frame: 1002");
    static const unsigned char binok[] = { 0x82, 0x02, 0xc3, 0x28 };
    is_int (error_of (binok, sizeof binok, false, 0), 0, "binary messages are not checked");
}

static const char *clean (const char *in, size_t len, bool final, size_t *consumed)
{
    static char out[256];
    struct ws_buf b = { 0 };
    *consumed = ws_utf8_clean (in, len, final, &b);
    memcpy (out, b.data ? (char *)b.data : "", b.len);
    out[b.len] = '\0';
    ws_buf_free (&b);
    return out;
}

static void test_utf8 (void)
{
    ok (ws_utf8_valid ("plain", 5), "ASCII is valid");
    ok (ws_utf8_valid ("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12),
        "2, 3 and 4-byte characters");
    ok (!ws_utf8_valid ("\xc0\xaf", 2), "an overlong '/' is invalid");
    ok (!ws_utf8_valid ("\xed\xa0\x80", 3), "a surrogate is invalid");
    ok (!ws_utf8_valid ("\xf4\x90\x80\x80", 4), "above U+10FFFF is invalid");
    ok (!ws_utf8_valid ("\xe2\x82", 2), "a truncated character is invalid");

    size_t used;
    is_str (clean ("abc", 3, false, &used), "abc", "clean ASCII passes");
    is_str (clean ("a\xe2\x82", 3, false, &used), "a", "a cut euro sign waits for more");
    is_int (used, 1, "only the complete part is consumed");
    is_str (clean ("a\xe2\x82", 3, true, &used), "a\xef\xbf\xbd", "at the end it becomes U+FFFD");
    is_int (used, 3, "and everything is consumed");
    is_str (clean ("\xe2\x82\xac!", 4, false, &used), "\xe2\x82\xac!", "a whole euro sign passes");
    is_str (clean ("a\xffz", 3, false, &used), "a\xef\xbf\xbdz", "an invalid byte becomes U+FFFD");
    is_str (clean ("\xe2\x82(", 3, false, &used), "\xef\xbf\xbd(",
            "a broken sequence is one U+FFFD (maximal subpart)");
    is_str (clean ("\xc0\xaf", 2, false, &used), "\xef\xbf\xbd\xef\xbf\xbd",
            "an overlong: one U+FFFD per byte, as Python does");
    is_str (clean ("\xed\xa0\x80", 3, false, &used), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
            "a surrogate: three U+FFFD, as Python does");
    /* any split of a valid text reassembles to the same text */
    const char *text = "x\xf0\x9f\x98\x80y\xe2\x82\xacz\xc3\xa9";
    size_t tl = strlen (text);
    bool all = true;
    for (size_t cut = 0; cut <= tl; cut++) {
        struct ws_buf b = { 0 };
        size_t u1 = ws_utf8_clean (text, cut, false, &b);
        struct ws_buf rest = { 0 };
        ws_buf_add (&rest, text + u1, tl - u1);
        size_t u2 = ws_utf8_clean (rest.data, rest.len, true, &b);
        all &= u1 + u2 == tl && b.len == tl && memcmp (b.data, text, tl) == 0;
        ws_buf_free (&b);
        ws_buf_free (&rest);
    }
    ok (all, "every split point of a mixed text is rejoined without loss");
}

int main (void)
{
    test_sha1 ();
    test_base64_and_keys ();
    test_frames ();
    test_bad_frames ();
    test_utf8 ();
    return done_testing ();
}
