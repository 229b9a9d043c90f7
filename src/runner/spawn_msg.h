/* spawn_msg.h - building and reading the launch message a shim gets (from the spawner
 * helper, or on descriptor 3 of the hakuriver-shim executable). The message is private to
 * one build of HakuRiver: both ends are compiled from the same sources. */
#ifndef HR_RUNNER_SPAWN_MSG_H
#define HR_RUNNER_SPAWN_MSG_H

#include <stdbool.h>
#include <stddef.h>

struct spawn_msg {
    char *buf;
    size_t len, cap;
};
void spawn_msg_put (struct spawn_msg *m, const void *p, size_t n);
void spawn_msg_put_str (struct spawn_msg *m, const char *s);        /* NULL allowed */
void spawn_msg_put_strv (struct spawn_msg *m, char *const *v);      /* NULL allowed */
void spawn_msg_free (struct spawn_msg *m);

struct spawn_reader {
    const char *p;
    size_t left;
    bool bad;                         /* set when a read ran past the end */
};
void spawn_read (struct spawn_reader *r, void *out, size_t n);
/* Pointers into the message (NUL-terminated), or NULL for a NULL string. */
const char *spawn_read_str (struct spawn_reader *r);
/* A new NULL-terminated array of pointers into the message, or NULL for a NULL vector. */
char **spawn_read_strv (struct spawn_reader *r);

#endif
