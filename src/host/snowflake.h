/* snowflake.h - 0.3 task ids: (unix_ms << 22) | (instance << 12) | seq */
#ifndef HR_HOST_SNOWFLAKE_H
#define HR_HOST_SNOWFLAKE_H

#include <stdint.h>

struct snowflake {
    int64_t last_ms;
    unsigned seq;
    unsigned instance;         /* 10 bits */
};

/* Starts the generator so that every id it returns is greater than FLOOR (the largest id
 * already stored). */
void snowflake_init (struct snowflake *s, unsigned instance, uint64_t floor);
/* Returns a new id, strictly greater than every earlier one. Never fails: on sequence
 * overflow or a clock that went backwards it borrows the next millisecond (0.3 returned None). */
uint64_t snowflake_next (struct snowflake *s, int64_t now_ms);

#endif
