/* snowflake.c - monotonic 0.3-compatible task ids */
#include "host/snowflake.h"

void snowflake_init (struct snowflake *s, unsigned instance, uint64_t floor)
{
    s->instance = instance & 0x3ff;
    s->last_ms = (int64_t)(floor >> 22);
    s->seq = (unsigned)(floor & 0xfff);
}

uint64_t snowflake_next (struct snowflake *s, int64_t now_ms)
{
    if (now_ms > s->last_ms) {
        s->last_ms = now_ms;
        s->seq = 0;
    } else if (++s->seq > 0xfff) {
        s->last_ms++;          /* borrow the next millisecond */
        s->seq = 0;
    }
    return ((uint64_t)s->last_ms << 22) | ((uint64_t)s->instance << 12) | s->seq;
}
