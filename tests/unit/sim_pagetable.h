/*
 * tests/unit/sim_pagetable.h - a simulated page table behind kvmalloc's
 * paging hooks (kvmalloc.h), shared by test_kvmalloc.c and
 * tests/model/kvmalloc_model.c.
 *
 * The window is a virtual range nobody dereferences (a test may reserve it
 * PROT_NONE, so that a stray access faults). pte[p] is the block mapped at
 * window page p, NULL if none. The map hook refuses (through `misuse`, which
 * must not return: a cmocka failure, or the model's exit) a page outside
 * the window or not at a page start, a page mapped twice, a block outside
 * [lo, lo + bytes) or not block-aligned; the unmap hook a page not mapped.
 * sim_pt_translate is the MMU: the byte behind a window address. Fault
 * injection: the map hook returns -ENOMEM on its call number fail_at
 * (SIZE_MAX: never), having mapped nothing.
 *
 * Header-only (static inline), no cmocka: include it after the library's
 * headers.
 */
#ifndef PEACHOS_SIM_PAGETABLE_H
#define PEACHOS_SIM_PAGETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "memory/heap/kvmalloc.h"
#include "status.h"

struct sim_pt
{
    uintptr_t base;            /* the window's first address */
    size_t pages;              /* its blocks */
    void** pte;                /* [pages] */
    const unsigned char* lo;   /* the memory the blocks may come from */
    size_t bytes;
    size_t mapped;             /* pages mapped now */
    size_t calls;              /* map calls so far */
    size_t fail_at;            /* refuse the map call with this number (SIZE_MAX: never) */
    void (*misuse)(const char* what); /* a hook misused: must not return */
};

static inline void sim_pt_init(struct sim_pt* s, uintptr_t base, void** pte, size_t pages, const void* lo,
                               size_t bytes, void (*misuse)(const char* what))
{
    s->base = base;
    s->pages = pages;
    s->pte = pte;
    s->lo = (const unsigned char*)lo;
    s->bytes = bytes;
    s->mapped = 0;
    s->calls = 0;
    s->fail_at = SIZE_MAX;
    s->misuse = misuse;
    for (size_t p = 0; p < pages; p++) {
        pte[p] = NULL;
    }
}

/* The window page of `virt`; misuse if outside the window. */
static inline size_t sim_pt_page(const struct sim_pt* s, const void* virt)
{
    uintptr_t v = (uintptr_t)virt;
    if (v < s->base || (v - s->base) / PEACHOS_HEAP_BLOCK_SIZE >= s->pages) {
        s->misuse("a window address outside the window");
    }
    return (v - s->base) / PEACHOS_HEAP_BLOCK_SIZE;
}

static inline int sim_pt_map(void* ctx, void* virt, void* block)
{
    struct sim_pt* s = (struct sim_pt*)ctx;
    size_t page = sim_pt_page(s, virt);
    const unsigned char* b = (const unsigned char*)block;
    if (((uintptr_t)virt - s->base) % PEACHOS_HEAP_BLOCK_SIZE != 0) {
        s->misuse("map of an address that is not a page start");
    }
    if (s->pte[page] != NULL) {
        s->misuse("map of a page mapped already");
    }
    if (b < s->lo || (size_t)(b - s->lo) >= s->bytes || (size_t)(b - s->lo) % PEACHOS_HEAP_BLOCK_SIZE != 0) {
        s->misuse("map of a block outside the sources' memory, or not block-aligned");
    }
    if (s->calls++ == s->fail_at) {
        return -ENOMEM;
    }
    s->pte[page] = block;
    s->mapped++;
    return 0;
}

static inline void sim_pt_unmap(void* ctx, void* virt)
{
    struct sim_pt* s = (struct sim_pt*)ctx;
    size_t page = sim_pt_page(s, virt);
    if (s->pte[page] == NULL) {
        s->misuse("unmap of a page not mapped");
    }
    s->pte[page] = NULL;
    s->mapped--;
}

static inline void* sim_pt_lookup(void* ctx, const void* virt)
{
    const struct sim_pt* s = (const struct sim_pt*)ctx;
    return s->pte[sim_pt_page(s, virt)];
}

/* What the MMU would do: the byte behind window address v (misuse if v's
 * page is not mapped). */
static inline unsigned char* sim_pt_translate(const struct sim_pt* s, const void* v)
{
    size_t page = sim_pt_page(s, v);
    if (s->pte[page] == NULL) {
        s->misuse("an access through a page not mapped");
    }
    return (unsigned char*)s->pte[page] + ((uintptr_t)v - s->base) % PEACHOS_HEAP_BLOCK_SIZE;
}

/* The hooks, with the simulation as their context. */
static inline struct kvmalloc_ops sim_pt_ops(struct sim_pt* s)
{
    struct kvmalloc_ops ops = { sim_pt_map, sim_pt_unmap, sim_pt_lookup, s };
    return ops;
}

#endif /* PEACHOS_SIM_PAGETABLE_H */
