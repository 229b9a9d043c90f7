/* sshkeys.h - checks OpenSSH public keys (authorized_keys lines) before they reach a VPS:
 * used by hakuriver.vps on the client and by the host's /submit. */
#ifndef HR_COMMON_SSHKEYS_H
#define HR_COMMON_SSHKEYS_H

#include <stddef.h>

#include "common/err.h"

#define SSHKEY_MAX_LINE 16384  /* longest key line accepted (an RSA-16384 key fits) */
#define SSHKEY_MAX_KEYS 64     /* keys per VPS */

/* Checks one key "TYPE BASE64 [COMMENT]" (LEN bytes, no newline): a known type, a base64
 * blob whose embedded type name equals TYPE, and a comment without control characters.
 * Options before the type (command="...") are refused. Returns 0, or -1 with E saying what
 * is wrong. */
int sshkey_check (const char *line, size_t len, struct err *e);

/* Checks TEXT holding one key per line (blank lines and lines starting with '#' ignored,
 * a trailing '\r' tolerated). Returns the number of keys (at least 1), or -1 with E naming
 * the line. */
int sshkey_check_list (const char *text, struct err *e);

#endif
