/*
 * kcache_front.c - the kmalloc family on a struct kcache: a size goes to
 * a small-object class (kcache.c) or to whole blocks of the heap; kfree
 * tells a small object from a block allocation by the table's type bits;
 * krealloc keeps each kind what it is. docs/kcache.md has the rules.
 * Needs kcache.c, kcache_check.c (the lookup) and heap.c; no libc but
 * memory.c.
 */
#include "kcache_internal.h"

#include "../memory.h"

static size_t kcache_blocks_for(size_t size)
{
    return size / KCACHE_BS + (size % KCACHE_BS != 0); /* no overflow near SIZE_MAX */
}

static void* kcache_alloc_blocks(struct kcache* kc, size_t size, enum kcache_fault_site site)
{
    if (kcache_forced(kc, site)) {
        return NULL;
    }
    return kcache_heap_blocks(kc, kcache_blocks_for(size), HEAP_BLOCK_TYPE_PLAIN);
}

/* First block of the CACHE allocation holding ptr, or SIZE_MAX if ptr is
 * not inside one. A pointer into a slab's first block is one table read. */
KCACHE_HOT size_t kcache_cache_start(const struct kcache* kc, const void* ptr)
{
    size_t block = (size_t)(((uintptr_t)ptr - kc->pool) / KCACHE_BS); /* below the pool wraps high */
    if (block >= kc->blocks) {
        return SIZE_MAX;
    }
    HEAP_BLOCK_TABLE_ENTRY e = kc->entries[block];
    if ((e & (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_MASK)) !=
        (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_CACHE)) {
        return SIZE_MAX;
    }
    if (e & HEAP_BLOCK_IS_FIRST) {
        return block;
    }
    size_t first = heap_allocation_start(kc->heap, ptr);
    if (first == SIZE_MAX || (kc->entries[first] & HEAP_BLOCK_TYPE_MASK) != HEAP_BLOCK_TYPE_CACHE) {
        return SIZE_MAX;
    }
    return first;
}

/* ----------------------------------------------------------------- public */

void* kcache_alloc(struct kcache* kc, size_t size)
{
    if (kc == NULL || size == 0) {
        return NULL;
    }
    size_t ci = kcache_class_of(size);
    if (ci < KCACHE_CLASSES) {
        return kcache_alloc_small(kc, ci);
    }
    return kcache_alloc_blocks(kc, size, KCACHE_FAULT_BLOCKS);
}

void* kcache_palloc(struct kcache* kc, size_t size)
{
    if (kc == NULL || size == 0) {
        return NULL;
    }
    return kcache_alloc_blocks(kc, size, KCACHE_FAULT_BLOCKS);
}

void kcache_free(struct kcache* kc, void* ptr)
{
    if (kc == NULL || ptr == NULL) {
        return;
    }
    size_t first = kcache_cache_start(kc, ptr);
    if (first != SIZE_MAX) {
        kcache_free_small(kc, ptr, first);
        return;
    }
    heap_free(kc->heap, ptr); /* block allocations, and every refusal of a non-cache pointer */
}

/* Move to new memory: copy the old usable bytes, free the old. */
static void* kcache_move(struct kcache* kc, void* ptr, const struct kcache_ref* ref, size_t size)
{
    if (kcache_forced(kc, KCACHE_FAULT_MOVE)) {
        return NULL;
    }
    void* moved = ref->small ? kcache_alloc(kc, size)
                             : kcache_heap_blocks(kc, kcache_blocks_for(size), HEAP_BLOCK_TYPE_PLAIN);
    if (moved == NULL) {
        return NULL;
    }
    memcpy(moved, ptr, ref->usable); /* usable < size: we only move to grow */
    kcache_free(kc, ptr);
    return moved;
}

static void* kcache_realloc_blocks(struct kcache* kc, void* ptr, const struct kcache_ref* ref, size_t size)
{
    size_t want = kcache_blocks_for(size);
    if (want <= ref->blocks) {
        heap_shrink_in_place(kc->heap, ref->first, ref->blocks, want);
        return ptr;
    }
    if (!kcache_forced(kc, KCACHE_FAULT_GROW) && heap_grow_in_place(kc->heap, ref->first, ref->blocks, want)) {
        return ptr;
    }
    return kcache_move(kc, ptr, ref, size);
}

void* kcache_realloc(struct kcache* kc, void* ptr, size_t size)
{
    if (kc == NULL) {
        return NULL;
    }
    if (ptr == NULL) {
        return kcache_alloc(kc, size);
    }
    if (size == 0) {
        kcache_free(kc, ptr);
        return NULL;
    }
    struct kcache_ref ref;
    if (!kcache_lookup(kc, ptr, &ref)) {
        kcache_free(kc, ptr); /* refuses it, with the report kfree would give */
        return NULL;
    }
    if (!ref.small) {
        return kcache_realloc_blocks(kc, ptr, &ref, size);
    }
    if (size <= ref.usable) {
        return ptr; /* the class still fits: never move to shrink */
    }
    return kcache_move(kc, ptr, &ref, size);
}
