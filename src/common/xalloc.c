/* xalloc.c - allocation wrappers that abort on OOM */
#include "common/xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom (size_t n)
{
    fprintf (stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort ();
}

void *xmalloc (size_t size)
{
    void *p = malloc (size ? size : 1);
    if (!p)
        oom (size);
    return p;
}

void *xcalloc (size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n)
        oom (SIZE_MAX);
    void *p = calloc (n ? n : 1, size ? size : 1);
    if (!p)
        oom (n * size);
    return p;
}

void *xrealloc (void *p, size_t size)
{
    void *q = realloc (p, size ? size : 1);
    if (!q)
        oom (size);
    return q;
}

void *xreallocarray (void *p, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n)
        oom (SIZE_MAX);
    return xrealloc (p, n * size);
}

char *xstrdup (const char *s)
{
    char *d = strdup (s ? s : "");
    if (!d)
        oom (strlen (s));
    return d;
}

char *xstrndup (const char *s, size_t n)
{
    char *d = strndup (s, n);
    if (!d)
        oom (n);
    return d;
}

char *xasprintf (const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start (ap, fmt);
    int n = vasprintf (&s, fmt, ap);
    va_end (ap);
    if (n < 0)
        oom (0);
    return s;
}
