/* xalloc.h - allocation wrappers that abort on OOM (tmux xmalloc.c) */
#ifndef HR_COMMON_XALLOC_H
#define HR_COMMON_XALLOC_H

#include <stddef.h>

/* All abort with a message on allocation failure or size overflow. */
void *xmalloc (size_t size);
void *xcalloc (size_t n, size_t size);
void *xrealloc (void *p, size_t size);
void *xreallocarray (void *p, size_t n, size_t size);
char *xstrdup (const char *s);
char *xstrndup (const char *s, size_t n);
/* Returns a newly allocated formatted string; caller frees. */
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#define FREE_NULL(p) do { free (p); (p) = NULL; } while (0)

#endif
