/* spawn_msg.c - the launch message a shim gets: fixed-size structs, strings and string
 * vectors packed one after the other (see spawn_msg.h) */
#include "runner/spawn_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void spawn_msg_put (struct spawn_msg *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        while (cap < m->len + n)
            cap *= 2;
        m->buf = xrealloc (m->buf, cap);
        m->cap = cap;
    }
    if (n)
        memcpy (m->buf + m->len, p, n);
    m->len += n;
}

void spawn_msg_put_str (struct spawn_msg *m, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen (s) : UINT32_MAX;
    spawn_msg_put (m, &n, sizeof n);
    if (s)
        spawn_msg_put (m, s, (size_t)n + 1);
}

void spawn_msg_put_strv (struct spawn_msg *m, char *const *v)
{
    uint32_t n = 0;
    if (!v)
        n = UINT32_MAX;
    else
        while (v[n])
            n++;
    spawn_msg_put (m, &n, sizeof n);
    for (uint32_t i = 0; v && i < n; i++)
        spawn_msg_put_str (m, v[i]);
}

void spawn_msg_free (struct spawn_msg *m)
{
    free (m->buf);
    *m = (struct spawn_msg){ 0 };
}

void spawn_read (struct spawn_reader *r, void *out, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        memset (out, 0, n);
        return;
    }
    memcpy (out, r->p, n);
    r->p += n;
    r->left -= n;
}

const char *spawn_read_str (struct spawn_reader *r)
{
    uint32_t n = 0;
    spawn_read (r, &n, sizeof n);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    if ((size_t)n + 1 > r->left || r->p[n] != '\0') {
        r->bad = true;
        return NULL;
    }
    const char *s = r->p;
    r->p += (size_t)n + 1;
    r->left -= (size_t)n + 1;
    return s;
}

char **spawn_read_strv (struct spawn_reader *r)
{
    uint32_t n = 0;
    spawn_read (r, &n, sizeof n);
    if (r->bad || n == UINT32_MAX || n > r->left)
        return NULL;
    char **v = xcalloc ((size_t)n + 1, sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        const char *s = spawn_read_str (r);
        if (!s) {
            r->bad = true;
            free (v);
            return NULL;
        }
        v[i] = (char *)s;
    }
    return v;
}
