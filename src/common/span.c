/* span.c - parse span:{a..b} and span:[...] arguments and walk the product of their values */
#include "common/span.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

#define PREFIX_LEN (sizeof SPAN_PREFIX - 1)

/* How much of an offending argument or token an error message quotes. */
#define QUOTE_MAX 80

bool span_is_span (const char *arg)
{
    return arg && strncmp (arg, SPAN_PREFIX, PREFIX_LEN) == 0;
}

/* Copies at most QUOTE_MAX bytes of S (N bytes, or up to its NUL when N is SIZE_MAX) with
 * control characters escaped, "..." marking a cut. */
static char *quote (const char *s, size_t n, char *buf, size_t bufsize)
{
    char tmp[QUOTE_MAX + 1];
    size_t len = strnlen (s, n);
    size_t take = len > QUOTE_MAX ? QUOTE_MAX - 3 : len;
    memcpy (tmp, s, take);
    tmp[take] = '\0';
    log_escape (tmp, buf, (unsigned)bufsize);
    if (take < len && strlen (buf) + 4 <= bufsize)
        strcat (buf, "...");
    return buf;
}

/* Sets E to "WHAT at position POS" and *ERRPOS to POS (1-based). Returns -1. */
static int fail (struct err *e, size_t *errpos, size_t pos, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static int fail (struct err *e, size_t *errpos, size_t pos, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (what, sizeof what, fmt, ap);
    va_end (ap);
    if (errpos)
        *errpos = pos;
    return err_set (e, EINVAL, "%s at position %zu", what, pos);
}

static const char *skip_space (const char *p)
{
    while (*p && isspace ((unsigned char)*p))
        p++;
    return p;
}

/* Parses [+-]?[0-9]+ (all of the N bytes at S) into *OUT. Returns 0, or -1 when it is not
 * such a number or does not fit in 64 bits. */
static int parse_int64 (const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0, limit = (uint64_t)INT64_MAX;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == n)
        return -1;
    if (neg)
        limit++; /* |INT64_MIN| */
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* span:{A..B}; P points at the '{'. */
static int parse_range (const char *arg, const char *p, struct span_arg *out, size_t *errpos,
                        struct err *e)
{
    char q[QUOTE_MAX * 4 + 8];
    size_t len = strlen (arg);
#define POS(ptr) ((size_t)((ptr) - arg) + 1)
    const char *a = skip_space (p + 1), *a_end = a;
    while (*a_end && !isspace ((unsigned char)*a_end) && *a_end != '}'
           && strncmp (a_end, "..", 2) != 0)
        a_end++;
    if (a_end == a) {
        if (!*a)
            return fail (e, errpos, len + 1, "unterminated range: expected `{START..END}`");
        return fail (e, errpos, POS (a), "missing range start: expected `{START..END}`");
    }
    int64_t first, last;
    if (parse_int64 (a, (size_t)(a_end - a), &first) < 0)
        return fail (e, errpos, POS (a), "range start `%s` is not a 64-bit integer",
                     quote (a, (size_t)(a_end - a), q, sizeof q));
    const char *dots = skip_space (a_end);
    if (strncmp (dots, "..", 2) != 0)
        return fail (e, errpos, *dots ? POS (dots) : len + 1,
                     "expected `..` after the range start: `{START..END}`");
    const char *b = skip_space (dots + 2), *b_end = b;
    while (*b_end && !isspace ((unsigned char)*b_end) && *b_end != '}')
        b_end++;
    if (b_end == b)
        return fail (e, errpos, *b ? POS (b) : len + 1,
                     "missing range end: expected `{START..END}`");
    if (parse_int64 (b, (size_t)(b_end - b), &last) < 0)
        return fail (e, errpos, POS (b), "range end `%s` is not a 64-bit integer%s",
                     quote (b, (size_t)(b_end - b), q, sizeof q),
                     memchr (b, '.', (size_t)(b_end - b)) ? " (a step is not supported)" : "");
    const char *close = skip_space (b_end);
    if (*close != '}')
        return fail (e, errpos, *close ? POS (close) : len + 1,
                     *close ? "expected `}` after the range end" : "unterminated range: missing `}`");
    if (close[1])
        return fail (e, errpos, POS (close + 1), "unexpected text `%s` after `}`",
                     quote (close + 1, SIZE_MAX, q, sizeof q));
#undef POS
    out->kind = SPAN_RANGE;
    out->first = first;
    if (last < first)
        out->count = 0; /* as 0.3: range(a, b + 1) is empty */
    else {
        uint64_t diff = (uint64_t)last - (uint64_t)first;
        out->count = diff == UINT64_MAX ? UINT64_MAX : diff + 1;
    }
    return 0;
}

static void push_item (struct span_arg *out, size_t *cap, char *item)
{
    if (out->count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        out->items = xreallocarray (out->items, *cap, sizeof *out->items);
    }
    out->items[out->count++] = item;
}

/* span:[...]; P points at the '['. */
static int parse_list (const char *arg, const char *p, struct span_arg *out, size_t *errpos,
                       struct err *e)
{
    char q[QUOTE_MAX * 4 + 8];
    size_t len = strlen (arg), cap = 0;
    char *buf = xmalloc (len + 1); /* an item is never longer than the argument */
#define POS(ptr) ((size_t)((ptr) - arg) + 1)
    out->kind = SPAN_LIST;
    p = skip_space (p + 1);
    if (*p == ']')
        p++;
    else
        for (;;) {
            const char *start = p;
            size_t n = 0;
            if (!*p) {
                fail (e, errpos, len + 1, "unterminated list: missing `]`");
                goto error;
            }
            if (*p == '"' || *p == '\'') {
                char quote_ch = *p++;
                while (*p && *p != quote_ch) {
                    if (*p == '\\' && p[1])
                        p++;
                    buf[n++] = *p++;
                }
                if (!*p) {
                    fail (e, errpos, POS (start), "unterminated %s-quoted item (no closing `%c`)",
                          quote_ch == '"' ? "double" : "single", quote_ch);
                    goto error;
                }
                p = skip_space (p + 1);
                if (*p && *p != ',' && *p != ']') {
                    fail (e, errpos, POS (p), "unexpected `%c` after a quoted item (expected `,` "
                          "or `]`)", *p);
                    goto error;
                }
            } else {
                while (*p && *p != ',' && *p != ']')
                    buf[n++] = *p++;
                while (n > 0 && isspace ((unsigned char)buf[n - 1]))
                    n--;
                if (n == 0) {
                    fail (e, errpos, POS (start), "empty item (write \"\" for an empty string)");
                    goto error;
                }
            }
            push_item (out, &cap, xstrndup (buf, n));
            if (*p == ']') {
                p++;
                break;
            }
            if (!*p) {
                fail (e, errpos, len + 1, "unterminated list: missing `]`");
                goto error;
            }
            p = skip_space (p + 1); /* after the comma */
        }
    if (*p) {
        fail (e, errpos, POS (p), "unexpected text `%s` after `]` (quote an item that "
              "contains `]` or `,`)", quote (p, SIZE_MAX, q, sizeof q));
        goto error;
    }
#undef POS
    free (buf);
    return 0;
error:
    free (buf);
    return -1;
}

int span_arg_parse (const char *arg, struct span_arg *out, size_t *errpos, struct err *e)
{
    struct span_arg a = { .kind = SPAN_PLAIN };
    memset (out, 0, sizeof *out);
    if (!span_is_span (arg)) {
        a.plain = xstrdup (arg);
        a.count = 1;
        *out = a;
        return 0;
    }
    const char *p = arg + PREFIX_LEN;
    int rc;
    if (*p == '{')
        rc = parse_range (arg, p, &a, errpos, e);
    else if (*p == '[')
        rc = parse_list (arg, p, &a, errpos, e);
    else
        rc = fail (e, errpos, PREFIX_LEN + 1, "expected `{START..END}` or `[ITEM,...]` after "
                   "`span:` (a value that starts with `span:` is written span:[\"span:...\"])");
    if (rc < 0) {
        span_arg_free (&a);
        return -1;
    }
    *out = a;
    return 0;
}

void span_arg_free (struct span_arg *a)
{
    if (!a)
        return;
    int saved = errno;
    free (a->plain);
    if (a->kind == SPAN_LIST)
        for (uint64_t i = 0; i < a->count; i++)
            free (a->items[i]);
    free (a->items);
    memset (a, 0, sizeof *a);
    errno = saved;
}

const char *span_arg_value (const struct span_arg *a, uint64_t k, char buf[SPAN_VALUE_MAX])
{
    switch (a->kind) {
    case SPAN_PLAIN:
        return a->plain;
    case SPAN_LIST:
        return a->items[k];
    case SPAN_RANGE:
        /* unsigned arithmetic: first + k stays within [first, last], never overflows int64 */
        snprintf (buf, SPAN_VALUE_MAX, "%" PRId64, (int64_t)((uint64_t)a->first + k));
        return buf;
    }
    return "";
}

int span_set_parse (struct span_set *s, size_t nargs, const char *const *args, uint64_t max,
                    size_t *errarg, struct err *e)
{
    memset (s, 0, sizeof *s);
    s->args = nargs ? xcalloc (nargs, sizeof *s->args) : NULL;
    uint64_t count = 1;
    bool over = false, empty = false;
    for (size_t i = 0; i < nargs; i++) {
        char q[QUOTE_MAX * 4 + 8];
        if (span_arg_parse (args[i], &s->args[i], NULL, e) < 0) {
            if (errarg)
                *errarg = i + 1;
            return err_wrap (e, "argument %zu `%s`", i + 1, quote (args[i], SIZE_MAX, q, sizeof q));
        }
        s->nargs = i + 1;
        if (s->args[i].kind != SPAN_PLAIN)
            s->nspans++;
        uint64_t c = s->args[i].count;
        if (c == 0)
            empty = true;
        else if (!over && __builtin_mul_overflow (count, c, &count))
            over = true;
    }
    if (empty) {
        s->count = 0;
        return 0;
    }
    if (over || count > max) {
        if (errarg)
            *errarg = 0;
        if (over)
            return err_set (e, E2BIG, "the spans give more than %" PRIu64 " combinations (over"
                            " 2^64), more than the limit of %" PRIu64, UINT64_MAX, max);
        return err_set (e, E2BIG, "the spans give %" PRIu64 " combinations, more than the "
                        "limit of %" PRIu64, count, max);
    }
    s->count = count;
    return 0;
}

void span_set_free (struct span_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nargs; i++)
        span_arg_free (&s->args[i]);
    free (s->args);
    memset (s, 0, sizeof *s);
}

char **span_set_argv (const struct span_set *s, uint64_t index)
{
    char **v = xcalloc (s->nargs + 1, sizeof *v);
    for (size_t i = s->nargs; i-- > 0;) {
        const struct span_arg *a = &s->args[i];
        char buf[SPAN_VALUE_MAX];
        uint64_t k = a->count ? index % a->count : 0;
        index = a->count ? index / a->count : 0;
        v[i] = xstrdup (a->count ? span_arg_value (a, k, buf) : "");
    }
    return v;
}

void span_argv_free (char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free (*p);
    free (argv);
}

char *span_literal (const char *value)
{
    if (!span_is_span (value))
        return xstrdup (value);
    size_t len = strlen (value);
    char *out = xmalloc (2 * len + sizeof "span:[\"\"]");
    char *o = out;
    o += sprintf (o, "span:[\"");
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    strcpy (o, "\"]");
    return out;
}
