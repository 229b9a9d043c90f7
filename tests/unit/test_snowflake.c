/* test_snowflake.c - 0.3 id layout, monotonicity, overflow and clock skew */
#include "tap.h"

#include "host/idmap.h"
#include "host/snowflake.h"

int main (void)
{
    struct snowflake s;
    snowflake_init (&s, 0, 0);
    int64_t ms = 1746118000000LL;
    uint64_t a = snowflake_next (&s, ms);
    is_int ((int64_t)(a >> 22), ms, "timestamp in the high bits");
    is_int ((int64_t)((a >> 12) & 0x3ff), 0, "instance 0");
    uint64_t prev = a;
    int mono = 1;
    for (int i = 0; i < 10000; i++) { /* overflows 4096 in one millisecond */
        uint64_t b = snowflake_next (&s, ms);
        mono &= b > prev;
        prev = b;
    }
    ok (mono, "ids stay increasing through sequence overflow");
    uint64_t back = snowflake_next (&s, ms - 5000);
    ok (back > prev, "a clock that goes backwards still gives a larger id");
    struct snowflake r;
    snowflake_init (&r, 0, back);
    ok (snowflake_next (&r, ms - 10000) > back, "restart with a floor never reuses ids");
    ok ((int64_t)a > 0, "ids fit in a signed 63-bit integer");

    struct idmap m;
    idmap_init (&m);
    int vals[5000];
    for (int i = 0; i < 5000; i++)
        idmap_put (&m, (uint64_t)i * 7919 + 1, &vals[i]);
    is_int ((long long)m.count, 5000, "5000 entries");
    int found = 1;
    for (int i = 0; i < 5000; i++)
        found &= idmap_get (&m, (uint64_t)i * 7919 + 1) == &vals[i];
    ok (found, "every entry found after growth");
    for (int i = 0; i < 5000; i += 2)
        idmap_del (&m, (uint64_t)i * 7919 + 1);
    is_int ((long long)m.count, 2500, "deletes counted");
    ok (idmap_get (&m, 1) == NULL, "deleted entry is gone");
    ok (idmap_get (&m, 7919 + 1) == &vals[1], "other entries survive deletes");
    size_t pos = 0, n = 0;
    while (idmap_next (&m, &pos, NULL))
        n++;
    is_int ((long long)n, 2500, "iteration visits each live entry once");
    ok (idmap_get (&m, 0) == NULL && idmap_del (&m, 0) == NULL, "key 0 is never present");
    idmap_free (&m);
    return done_testing ();
}
