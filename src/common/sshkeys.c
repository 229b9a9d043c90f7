/* sshkeys.c - OpenSSH public key lines: type, base64 blob and comment checks */
#include "common/sshkeys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/websocket.h"
#include "common/xalloc.h"

static const char *const key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
};

static bool known_type (const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof key_types / sizeof key_types[0]; i++)
        if (strlen (key_types[i]) == len && memcmp (key_types[i], s, len) == 0)
            return true;
    return false;
}

int sshkey_check (const char *line, size_t len, struct err *e)
{
    if (len == 0)
        return err_set (e, EINVAL, "empty key");
    if (len > SSHKEY_MAX_LINE)
        return err_set (e, EINVAL, "key is longer than %d bytes", SSHKEY_MAX_LINE);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return err_set (e, EINVAL, "key contains a control character at byte %zu", i + 1);
    }
    size_t tl = strcspn (line, " \t");
    if (tl > len)
        tl = len;
    if (!known_type (line, tl)) {
        if (tl > 40)
            tl = 40;
        return err_set (e, EINVAL, "`%.*s` is not an OpenSSH public key type (expected e.g. "
                        "ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256; key options are not "
                        "accepted)", (int)tl, line);
    }
    size_t p = tl;
    while (p < len && (line[p] == ' ' || line[p] == '\t'))
        p++;
    size_t bl = 0;
    while (p + bl < len && line[p + bl] != ' ' && line[p + bl] != '\t')
        bl++;
    if (bl == 0)
        return err_set (e, EINVAL, "%.*s key has no base64 data", (int)tl, line);
    char *b64 = xmalloc (bl + 1);
    memcpy (b64, line + p, bl);
    b64[bl] = '\0';
    unsigned char *blob = xmalloc (bl);
    long n = ws_base64_decode (b64, blob, bl);
    free (b64);
    int rc = 0;
    if (n < 4) {
        rc = err_set (e, EINVAL, "%.*s key data is not valid base64", (int)tl, line);
    } else {
        uint32_t nl = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16
                      | (uint32_t)blob[2] << 8 | blob[3];
        if (nl != tl || (size_t)n < 4 + (size_t)nl || memcmp (blob + 4, line, tl) != 0
            || (size_t)n == 4 + (size_t)nl)
            rc = err_set (e, EINVAL, "%.*s key data does not hold a %.*s key (damaged or "
                          "truncated?)", (int)tl, line, (int)tl, line);
    }
    free (blob);
    return rc;
}

int sshkey_check_list (const char *text, struct err *e)
{
    int count = 0, lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr (p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen (p);
        lineno++;
        size_t l = len;
        if (l > 0 && p[l - 1] == '\r')
            l--;
        size_t s = 0;
        while (s < l && (p[s] == ' ' || p[s] == '\t'))
            s++;
        while (l > s && (p[l - 1] == ' ' || p[l - 1] == '\t'))
            l--;
        if (l > s && p[s] != '#') {
            if (sshkey_check (p + s, l - s, e) < 0)
                return err_wrap (e, "public key on line %d", lineno);
            if (++count > SSHKEY_MAX_KEYS)
                return err_set (e, EINVAL, "more than %d public keys", SSHKEY_MAX_KEYS);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (count == 0)
        return err_set (e, EINVAL, "no public key given");
    return count;
}
