/* span.h - the parameter-sweep argument language (span:{a..b}, span:[x,y]) shared by hakurun
 * and the host's --sweep submissions. Pure functions: no printing, no exiting.
 *
 * An argument that does not start with "span:" is one plain value. After "span:":
 *   {A..B}        the integers A, A+1, ..., B (decimal, optional sign, 64-bit); empty when
 *                 B < A, as in 0.3. Spaces around A and B are allowed.
 *   [X, Y, ...]   the items, in order. Items are separated by commas; spaces and tabs around
 *                 an item are dropped. A bare item is taken as written and cannot contain
 *                 `,` or `]`. An item in '...' or "..." is taken verbatim (commas, brackets,
 *                 spaces, the other quote), with backslash escaping the next character
 *                 (\' \" \\). `span:[]` is empty; `""` is an empty item.
 * Anything else after "span:" is an error (0.3 took it as a literal). An argument that must
 * start with "span:" literally is written as a one-item list: span:["span:x"].
 *
 * Combinations are the product of the arguments' values in argument order, the last argument
 * varying fastest (Python's itertools.product). See docs/hakurun.md. */
#ifndef HR_COMMON_SPAN_H
#define HR_COMMON_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SPAN_PREFIX "span:"

/* Limits of the two users (docs/hakurun.md, docs/protocol.md). */
#define SPAN_MAX_HOST    100000u   /* tasks one sweep submission may create */
#define SPAN_MAX_HAKURUN 1000000u  /* combinations one hakurun run may have */

/* Room for a range value in decimal: "-9223372036854775808" and the NUL. */
#define SPAN_VALUE_MAX 24

enum span_kind {
    SPAN_PLAIN,  /* not a span: one value, the argument itself */
    SPAN_RANGE,  /* span:{A..B} */
    SPAN_LIST,   /* span:[...] */
};

/* One parsed argument. */
struct span_arg {
    enum span_kind kind;
    uint64_t count;   /* number of values (1 for SPAN_PLAIN) */
    char *plain;      /* SPAN_PLAIN: copy of the argument */
    int64_t first;    /* SPAN_RANGE: the values are first .. first + count - 1 */
    char **items;     /* SPAN_LIST: COUNT strings (NULL when the list is empty) */
};

/* A parsed argument vector and its product. */
struct span_set {
    struct span_arg *args;
    size_t nargs;
    size_t nspans;    /* how many arguments were span: forms */
    uint64_t count;   /* number of combinations; 0 when some span is empty */
};

/* Whether ARG starts with "span:". */
bool span_is_span (const char *arg);

/* Parses one argument into OUT (zeroed first; release with span_arg_free). Returns 0, or -1
 * with E set to what is wrong ("range end `x` is not an integer at position 10") and *ERRPOS
 * (may be NULL) to the 1-based byte position of the problem in ARG. */
int span_arg_parse (const char *arg, struct span_arg *out, size_t *errpos, struct err *e);
/* Frees what OUT owns and zeroes it. Accepts NULL. */
void span_arg_free (struct span_arg *a);
/* Returns value K (< a->count) of A: a string owned by A, or for a range the number written
 * into BUF. */
const char *span_arg_value (const struct span_arg *a, uint64_t k, char buf[SPAN_VALUE_MAX]);

/* Parses NARGS arguments into S (release with span_set_free, also after a failure). Fails
 * with E naming the argument, 1-based, and the position ("argument 2 `span:{1..x}`: range
 * end `x` is not an integer at position 10"), or when the product exceeds MAX ("the spans
 * give more than 100000 combinations ..."). *ERRARG (may be NULL) is set to the 1-based
 * number of the bad argument, 0 for a product over MAX. Returns 0 or -1. */
int span_set_parse (struct span_set *s, size_t nargs, const char *const *args, uint64_t max,
                    size_t *errarg, struct err *e);
void span_set_free (struct span_set *s);

/* Returns combination INDEX (< s->count) as a NULL-terminated vector of s->nargs new
 * strings; the last argument varies fastest as INDEX grows. Free with span_argv_free. */
char **span_set_argv (const struct span_set *s, uint64_t index);
void span_argv_free (char **argv);

/* Returns a new argument that parses back to exactly VALUE as one plain value: VALUE itself,
 * or span:["..."] when VALUE starts with "span:". Caller frees. */
char *span_literal (const char *value);

#endif
