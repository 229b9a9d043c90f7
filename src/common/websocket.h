/* websocket.h - RFC 6455 pieces for both roles: SHA-1, base64, the handshake keys, frame
 * encoding, a frame/message reader and UTF-8 cleaning. No I/O: the host's terminal sessions
 * (server role) and hakuriver.docker-shell (client role) own their sockets. */
#ifndef HR_COMMON_WEBSOCKET_H
#define HR_COMMON_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The largest message either side accepts (after reassembling fragments): 1 MiB. A terminal
 * sends keystrokes and 4 KiB output chunks; a bigger message is a broken or hostile peer,
 * closed with WS_CLOSE_TOO_BIG. */
#define WS_MAX_MESSAGE (1u << 20)

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,      /* the host is shutting down */
    WS_CLOSE_PROTOCOL = 1002,        /* malformed frame */
    WS_CLOSE_NO_STATUS = 1005,       /* (received only) a close frame without a code */
    WS_CLOSE_ABNORMAL = 1006,        /* (never sent) the connection dropped */
    WS_CLOSE_INVALID_DATA = 1007,    /* a text message that is not UTF-8 */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,         /* over WS_MAX_MESSAGE */
    WS_CLOSE_INTERNAL = 1011,
};

/* ---- hashing and keys ---- */

/* SHA-1 of LEN bytes of DATA into OUT. */
void ws_sha1 (const void *data, size_t len, unsigned char out[20]);
/* Base64 (RFC 4648, padded) of LEN bytes into OUT, which needs 4 * ((LEN + 2) / 3) + 1
 * bytes. Returns the length written, without the NUL. */
size_t ws_base64 (const void *data, size_t len, char *out);
/* Decodes padded base64 S into OUT (room for MAX bytes). Returns the decoded length, or -1
 * when S is not base64 or does not fit. */
long ws_base64_decode (const char *s, unsigned char *out, size_t max);
/* True when KEY is a valid Sec-WebSocket-Key: the base64 of 16 bytes. */
bool ws_key_valid (const char *key);
/* The Sec-WebSocket-Accept value for KEY (28 characters + NUL). */
void ws_accept_key (const char *key, char out[29]);
/* A fresh random Sec-WebSocket-Key (24 characters + NUL) for the client role. */
void ws_make_key (char out[25]);

/* ---- output buffer and frame encoding ---- */

/* A growable byte buffer; zero-initialise, release with ws_buf_free. */
struct ws_buf {
    unsigned char *data;
    size_t len, cap;
};
void ws_buf_add (struct ws_buf *b, const void *data, size_t len);
/* Drops the first N bytes (sent ones). */
void ws_buf_consume (struct ws_buf *b, size_t n);
void ws_buf_free (struct ws_buf *b);

/* Appends one frame. MASK (client role, RFC 6455 5.3) masks the payload with a random key;
 * the server role sends unmasked frames. The length uses the 7, 16 or 64-bit form. */
void ws_frame_append (struct ws_buf *b, int opcode, bool fin, const void *payload, size_t len,
                      bool mask);
/* Appends a close frame with CODE and REASON (cut to fit the 125-byte control limit). */
void ws_close_append (struct ws_buf *b, int code, const char *reason, bool mask);

/* ---- reading ---- */

/* One frame header, as parsed by ws_frame_header. */
struct ws_frame {
    bool fin;
    int opcode;
    bool masked;
    unsigned char mask[4];
    uint64_t len;          /* payload length */
    size_t hdr_len;        /* bytes before the payload: 2 to 14 */
};

/* Parses the frame header at the start of BUF (LEN bytes available). Returns 1 with *F set,
 * 0 when more bytes are needed, -1 when the header is malformed (reserved bits, unknown
 * opcode, a fragmented or over-125-byte control frame, a non-minimal or 2^63+ length) with
 * E set and *CLOSE_CODE the code to close with. Masking and size are checked by the reader. */
int ws_frame_header (const unsigned char *buf, size_t len, struct ws_frame *f, int *close_code,
                     struct err *e);

/* Reassembles messages from a byte stream. Control frames between fragments are delivered at
 * once. Text messages are checked to be UTF-8. */
struct ws_reader {
    bool server;           /* server role: frames must be masked; client role: must not be */
    size_t max;            /* largest message */
    struct ws_buf in;      /* bytes not parsed yet */
    struct ws_buf msg;     /* fragments of the message in progress */
    int msg_op;            /* its opcode, 0 when none is in progress */
    size_t drop;           /* bytes of IN to drop before parsing again (the last frame) */
};

struct ws_msg {
    int opcode;                  /* TEXT or BINARY (a whole message), CLOSE, PING or PONG */
    const unsigned char *data;   /* valid until the next ws_reader call */
    size_t len;
    int close_code;              /* CLOSE: the peer's code, WS_CLOSE_NO_STATUS if none */
};

/* SERVER selects the role; MAX is the largest message accepted (0 = WS_MAX_MESSAGE). */
void ws_reader_init (struct ws_reader *r, bool server, size_t max);
void ws_reader_free (struct ws_reader *r);
void ws_reader_feed (struct ws_reader *r, const void *data, size_t len);
/* Returns 1 with the next message in *M, 0 when more bytes are needed, or -1 on a protocol
 * violation with *CLOSE_CODE set (1002 protocol, 1007 bad UTF-8, 1009 too big) and E saying
 * why; the connection must then be closed with that code. */
int ws_reader_next (struct ws_reader *r, struct ws_msg *m, int *close_code, struct err *e);

/* ---- UTF-8 ---- */

/* True when LEN bytes at S are well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF). */
bool ws_utf8_valid (const void *s, size_t len);
/* Appends IN to OUT as well-formed UTF-8, each maximal invalid subsequence replaced by U+FFFD
 * (as Python's errors="replace" does). A valid sequence cut by the end of IN is not consumed
 * unless FINAL, so that output read in chunks is never split inside a character. Returns the
 * number of bytes of IN consumed (LEN when FINAL; at most 3 fewer otherwise). */
size_t ws_utf8_clean (const void *in, size_t len, bool final, struct ws_buf *out);

#endif
