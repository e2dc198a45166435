/*
 * heap_setup.h - a heap whose table descriptor the caller keeps next to it
 * (a multiheap region's, the kvmalloc window's): one function for both, so
 * that the rule "fill in the descriptor, create, and on a refusal put the
 * descriptor back" lives in one place. Header-only (static inline): the
 * block heap alone links without heap_index.c, and so does every file that
 * includes this one but never calls it.
 */
#ifndef PEACHOS_HEAP_SETUP_H
#define PEACHOS_HEAP_SETUP_H

#include "heap_index.h"

/*
 * *table becomes { entries, (end - start) / block size } and *heap a heap
 * over [start, end) with that table: heap_create, or heap_create_indexed
 * with the index_bytes at index_mem when index_mem is not NULL. Returns
 * 0, or the create's error with *table as it was and *heap untouched
 * (heap_create writes nothing when it refuses): nothing written.
 */
static inline int heap_setup(struct heap* heap, struct heap_table* table, void* start, void* end,
                             HEAP_BLOCK_TABLE_ENTRY* entries, void* index_mem, size_t index_bytes)
{
    size_t bytes = (uintptr_t)end > (uintptr_t)start ? (size_t)((uintptr_t)end - (uintptr_t)start) : 0;
    struct heap_table before = *table;
    table->entries = entries;
    table->total = bytes / (size_t)PEACHOS_HEAP_BLOCK_SIZE;
    int res = index_mem == NULL ? heap_create(heap, start, end, table)
                                : heap_create_indexed(heap, start, end, table, index_mem, index_bytes);
    if (res < 0) {
        *table = before;
    }
    return res;
}

#endif /* PEACHOS_HEAP_SETUP_H */
