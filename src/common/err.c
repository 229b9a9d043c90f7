/* err.c - caller-provided error context */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vset (struct err *e, const char *fmt, va_list ap)
{
    vsnprintf (e->text, sizeof e->text, fmt, ap);
}

int err_set (struct err *e, int code, const char *fmt, ...)
{
    int saved = errno;
    if (e) {
        va_list ap;
        va_start (ap, fmt);
        vset (e, fmt, ap);
        va_end (ap);
        e->code = code;
        e->status = 0;
    }
    errno = saved;
    return -1;
}

int err_http (struct err *e, int status, const char *fmt, ...)
{
    int saved = errno;
    if (e) {
        va_list ap;
        va_start (ap, fmt);
        vset (e, fmt, ap);
        va_end (ap);
        e->code = 0;
        e->status = status;
    }
    errno = saved;
    return -1;
}

int err_wrap (struct err *e, const char *fmt, ...)
{
    int saved = errno;
    if (e) {
        char prefix[256];
        char old[sizeof e->text];
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (prefix, sizeof prefix, fmt, ap);
        va_end (ap);
        memcpy (old, e->text, sizeof old);
        if (snprintf (e->text, sizeof e->text, "%s: %s", prefix, old) >= (int)sizeof e->text)
            memcpy (e->text + sizeof e->text - 4, "...", 4); /* mark the cut */
    }
    errno = saved;
    return -1;
}

void err_clear (struct err *e)
{
    if (e) {
        e->code = 0;
        e->status = 0;
        e->text[0] = '\0';
    }
}
