/*
 * tests/model/model_regions.h - the regions of a multiheap as the model
 * tests keep them (multiheap_model.c, kvmalloc_model.c): each region's
 * memory, table and index, and the model's own map of its blocks, with the
 * model's first fit across the regions and its lookup of an address.
 */
#ifndef TESTS_MODEL_MODEL_REGIONS_H
#define TESTS_MODEL_MODEL_REGIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "memory/heap/heap_index.h"
#include "memory/heap/multiheap.h"

struct m_region
{
    unsigned char* start;
    size_t blocks;
    HEAP_BLOCK_TABLE_ENTRY* table;
    void* index;
    struct heap_table map; /* the model's map: 0 = free, nonzero = taken */
};

/* A region of `blocks` blocks at `start`, indexed or not, all free in the
 * model's map; false if memory for it ran out. */
static inline bool m_region_init(struct m_region* r, unsigned char* start, size_t blocks, bool indexed)
{
    r->start = start;
    r->blocks = blocks;
    r->table = malloc(blocks);
    r->index = indexed ? malloc(heap_index_bytes(blocks)) : NULL;
    r->map.entries = calloc(blocks, 1);
    r->map.total = blocks;
    return r->table != NULL && r->map.entries != NULL && (!indexed || r->index != NULL);
}

static inline void m_region_free(struct m_region* r)
{
    free(r->table);
    free(r->index);
    free(r->map.entries);
}

/* multiheap_add_region of the region, with its index if it has one. */
static inline int m_region_add(struct multiheap* mh, const struct m_region* r)
{
    return multiheap_add_region(mh, r->start, r->start + r->blocks * (size_t)PEACHOS_HEAP_BLOCK_SIZE, r->table,
                                r->index, r->index != NULL ? heap_index_bytes(r->blocks) : 0);
}

/* First fit across the nr regions r (in address order) on the model's
 * maps: the address, and in *region its region; NULL if none has the run. */
static inline unsigned char* m_regions_first_fit(const struct m_region* r, size_t nr, size_t n, size_t* region)
{
    for (size_t k = 0; k < nr; k++) {
        size_t b = heap_scan_first_fit(&r[k].map, n);
        if (b != SIZE_MAX) {
            *region = k;
            return r[k].start + b * (size_t)PEACHOS_HEAP_BLOCK_SIZE;
        }
    }
    return NULL;
}

/* The region of address p among the nr regions r, SIZE_MAX if none (the
 * model's own lookup). */
static inline size_t m_regions_find(const struct m_region* r, size_t nr, const unsigned char* p)
{
    for (size_t k = 0; k < nr; k++) {
        if (p >= r[k].start && p < r[k].start + r[k].blocks * (size_t)PEACHOS_HEAP_BLOCK_SIZE) {
            return k;
        }
    }
    return SIZE_MAX;
}

#endif
