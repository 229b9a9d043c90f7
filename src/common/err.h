/* err.h - caller-provided error context (flux flux_error_t + crun error wrap) */
#ifndef HR_COMMON_ERR_H
#define HR_COMMON_ERR_H

#include <stddef.h>

struct err {
    int code;        /* errno-style value, 0 if none */
    int status;      /* HTTP status hint for API errors, 0 if none */
    char text[512];  /* human-readable, includes context */
};

/* Sets the error (e may be NULL). Always returns -1. */
int err_set (struct err *e, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Sets the error with an HTTP status hint. Always returns -1. */
int err_http (struct err *e, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Prefixes "fmt: " to the current text. Always returns -1. */
int err_wrap (struct err *e, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void err_clear (struct err *e);

#endif
