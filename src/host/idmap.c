/* idmap.c - open-addressing hash map from 64-bit task ids to pointers (linear probing) */
#include "host/idmap.h"

#include <stdlib.h>

#include "common/xalloc.h"

#define TOMB UINT64_MAX

static size_t slot (uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void idmap_init (struct idmap *m)
{
    m->cap = 64;
    m->count = m->used = 0;
    m->keys = xcalloc (m->cap, sizeof *m->keys);
    m->vals = xcalloc (m->cap, sizeof *m->vals);
}

void idmap_free (struct idmap *m)
{
    free (m->keys);
    free (m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = m->used = 0;
}

static void grow (struct idmap *m, size_t ncap)
{
    uint64_t *ok = m->keys;
    void **ov = m->vals;
    size_t ocap = m->cap;
    m->keys = xcalloc (ncap, sizeof *m->keys);
    m->vals = xcalloc (ncap, sizeof *m->vals);
    m->cap = ncap;
    m->count = m->used = 0;
    for (size_t i = 0; i < ocap; i++)
        if (ok[i] && ok[i] != TOMB)
            idmap_put (m, ok[i], ov[i]);
    free (ok);
    free (ov);
}

void idmap_put (struct idmap *m, uint64_t key, void *val)
{
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow (m, m->count * 2 + 1 >= m->cap / 2 ? m->cap * 2 : m->cap);
    size_t i = slot (key, m->cap), tomb = (size_t)-1;
    for (;; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
        if (m->keys[i] == TOMB && tomb == (size_t)-1)
            tomb = i;
        if (m->keys[i] == 0)
            break;
    }
    if (tomb != (size_t)-1)
        i = tomb;
    else
        m->used++;
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
}

void *idmap_get (const struct idmap *m, uint64_t key)
{
    if (!m->cap || key == 0 || key == TOMB)
        return NULL;
    for (size_t i = slot (key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

void *idmap_del (struct idmap *m, uint64_t key)
{
    if (!m->cap || key == 0 || key == TOMB)
        return NULL;
    for (size_t i = slot (key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            void *v = m->vals[i];
            m->keys[i] = TOMB;
            m->vals[i] = NULL;
            m->count--;
            return v;
        }
        if (m->keys[i] == 0)
            return NULL;
    }
}

void *idmap_next (const struct idmap *m, size_t *pos, uint64_t *key)
{
    for (; *pos < m->cap; (*pos)++) {
        size_t i = *pos;
        if (m->keys[i] && m->keys[i] != TOMB) {
            (*pos)++;
            if (key)
                *key = m->keys[i];
            return m->vals[i];
        }
    }
    return NULL;
}
