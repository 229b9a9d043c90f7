/* idmap.h - open-addressing hash map from 64-bit task ids to pointers */
#ifndef HR_HOST_IDMAP_H
#define HR_HOST_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys;            /* 0 = empty slot, UINT64_MAX = tombstone */
    void **vals;
    size_t cap, count, used;   /* used counts tombstones too */
};

void idmap_init (struct idmap *m);
void idmap_free (struct idmap *m);
/* KEY must not be 0 or UINT64_MAX. Replaces an existing value. */
void idmap_put (struct idmap *m, uint64_t key, void *val);
void *idmap_get (const struct idmap *m, uint64_t key);
/* Returns the removed value or NULL. */
void *idmap_del (struct idmap *m, uint64_t key);
/* Iteration: start with *pos = 0; returns NULL at the end. */
void *idmap_next (const struct idmap *m, size_t *pos, uint64_t *key);

#endif
