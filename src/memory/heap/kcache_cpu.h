/*
 * kcache_cpu.h - the lock-free halves of the per-CPU magazines
 * (kcache_cpu.c has the design), inline so that kmalloc_small and kfree
 * pay no call for them. For kheap.c and kcache_cpu.c only.
 */
#ifndef PEACHOS_KCACHE_CPU_H
#define PEACHOS_KCACHE_CPU_H

#include "kcache_internal.h"

#if PEACHOS_KCACHE_MAGAZINES
KCACHE_HOT struct kcache_mag* kcache_mag(struct kcache* kc, unsigned cpu, size_t ci)
{
    return &kc->cpus[cpu].mags[ci];
}

/* Pop an object of class ci and make it live; NULL if the magazine is
 * empty (then kcache_cpu_alloc_locked, with the lock). */
KCACHE_HOT void* kcache_cpu_alloc_fast(struct kcache* kc, unsigned cpu, size_t ci)
{
    struct kcache_mag* m = kcache_mag(kc, cpu, ci);
    if (KCACHE_UNLIKELY(m->count == 0)) {
        return NULL;
    }
    void* object = m->objects[--m->count];
    KCACHE_ASSUME(object != NULL); /* magazines hold objects: lets kmalloc_small skip its NULL test */
    kcache_live_set(kc, object);
    return object;
}

/* 0: freed onto the magazine; -1: not a live small object (the locked
 * path decides: blocks, and every bad free, refused and reported there);
 * ci + 1: freed, and the magazine of class ci is now full (call
 * kcache_cpu_drain with the lock). */
KCACHE_HOT int kcache_cpu_free_fast(struct kcache* kc, unsigned cpu, void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - kc->pool; /* below the pool wraps high */
    if (KCACHE_UNLIKELY(offset / KCACHE_BS >= kc->fast_blocks || offset % KCACHE_ALIGN != 0)) {
        return -1;
    }
    if (KCACHE_UNLIKELY(!kcache_live_clear(kc, offset))) {
        return -1;
    }
    size_t first = offset / KCACHE_BS;
    while (!(kc->entries[first] & HEAP_BLOCK_IS_FIRST)) {
        first--; /* a slab of the object's: at most KCACHE_MAX_SLAB_BLOCKS - 1 steps */
    }
    size_t ci = kcache_shape_class(kcache_record(kc, first)->shape);
    struct kcache_mag* m = kcache_mag(kc, cpu, ci);
    m->objects[m->count++] = ptr;
    return KCACHE_UNLIKELY(m->count == m->limit) ? (int)ci + 1 : 0;
}

#endif

#endif /* PEACHOS_KCACHE_CPU_H */
