/* tap.h - a tiny TAP producer for C unit tests (flux libtap API, libuv ASSERT_EQ style) */
#ifndef HR_TESTS_TAP_H
#define HR_TESTS_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_plan (int n) { printf ("1..%d\n", n); }

static inline int tap_ok (int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    printf ("%s %d - ", cond ? "ok" : "not ok", tap_n);
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    printf ("\n");
    if (!cond) {
        tap_failed++;
        printf ("#   failed at %s:%d\n", file, line);
    }
    fflush (stdout);
    return cond;
}

#define ok(cond, ...) tap_ok (!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                          \
    do {                                                                                \
        long long g_ = (long long)(got), w_ = (long long)(want);                        \
        if (!tap_ok (g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                        \
            printf ("#   got: %lld\n#   expected: %lld\n", g_, w_);                     \
    } while (0)
#define is_str(got, want, ...)                                                          \
    do {                                                                                \
        const char *g_ = (got), *w_ = (want);                                           \
        int c_ = (g_ && w_) ? strcmp (g_, w_) == 0 : g_ == w_;                          \
        if (!tap_ok (c_, __FILE__, __LINE__, __VA_ARGS__))                              \
            printf ("#   got: '%s'\n#   expected: '%s'\n", g_ ? g_ : "(null)",          \
                    w_ ? w_ : "(null)");                                                \
    } while (0)
#define like(got, substr, ...)                                                          \
    do {                                                                                \
        const char *g_ = (got), *s_ = (substr);                                         \
        if (!tap_ok (g_ && strstr (g_, s_) != NULL, __FILE__, __LINE__, __VA_ARGS__))   \
            printf ("#   '%s'\n#   does not contain '%s'\n", g_ ? g_ : "(null)", s_);   \
    } while (0)
#define skip(n, why)                                                                    \
    do {                                                                                \
        for (int i_ = 0; i_ < (n); i_++)                                                \
            printf ("ok %d # skip %s\n", ++tap_n, why);                                 \
    } while (0)
#define diag(...) do { printf ("# "); printf (__VA_ARGS__); printf ("\n"); } while (0)

static inline int done_testing (void)
{
    printf ("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
