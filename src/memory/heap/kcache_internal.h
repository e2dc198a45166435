/*
 * kcache_internal.h - what kcache.c (the engine) and kcache_check.c (the
 * checker) share: the reads of the slab table (struct kcache_slab, kcache.h)
 * and the rules that turn a pointer into a slab and an object. Private to
 * those two files; docs/kcache.md has the design. Everything here is inline
 * and needs only heap_internal.h, so kcache_check.c links without kcache.c.
 */
#ifndef PEACHOS_KCACHE_INTERNAL_H
#define PEACHOS_KCACHE_INTERNAL_H

#include "heap_internal.h"
#include "kcache.h"

#define KCACHE_BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define KCACHE_WORD_BITS (sizeof(uintptr_t) * 8u)

/* The few helpers on the kmalloc/kfree fast path: always inlined, since a
 * call costs about as much as their body. */
#define KCACHE_HOT static inline __attribute__((always_inline))
#define KCACHE_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Tell the compiler cond holds (no code; undefined if it does not). One
 * expression, so that it is no line of its own that no test can run. */
#define KCACHE_ASSUME(cond) ((cond) ? (void)0 : __builtin_unreachable())

/* Any slab's bitmap fits in its own blocks' records: a slab of k blocks has
 * at most k * block size / KCACHE_ALIGN objects. */
_Static_assert(KCACHE_BLOCK_WORDS * 8 * sizeof(uintptr_t) * KCACHE_ALIGN == PEACHOS_HEAP_BLOCK_SIZE,
               "a bit per KCACHE_ALIGN bytes of a block");
_Static_assert(2 * KCACHE_CLASSES < 255, "shape fits in a byte with 0 for no slab");

/* The shape byte of a slab of class ci and geometry `which`. */
KCACHE_HOT uint8_t kcache_shape(size_t ci, size_t which)
{
    return (uint8_t)((ci << 1 | which) + 1);
}

KCACHE_HOT size_t kcache_shape_class(uint8_t shape)
{
    return ((size_t)shape - 1) >> 1;
}

/* The geometry a shape names, or NULL if it names none (0: no slab). */
KCACHE_HOT const struct kcache_geometry* kcache_geometry_of(const struct kcache* kc, uint8_t shape)
{
    if (KCACHE_UNLIKELY(shape == 0 || shape > 2 * KCACHE_CLASSES)) {
        return NULL;
    }
    return &kc->classes[kcache_shape_class(shape)].geometry[(shape - 1) & 1];
}

KCACHE_HOT struct kcache_slab* kcache_record(const struct kcache* kc, size_t block)
{
    return &kc->slab_table[block];
}

/* Word w of the bitmap of the slab starting at block `first`. */
KCACHE_HOT uintptr_t* kcache_word(const struct kcache* kc, size_t first, size_t w)
{
    return &kc->slab_table[first + w / KCACHE_BLOCK_WORDS].bits[w % KCACHE_BLOCK_WORDS];
}

KCACHE_HOT bool kcache_slot_live(const struct kcache* kc, size_t first, size_t slot)
{
    return (*kcache_word(kc, first, slot / KCACHE_WORD_BITS) >> (slot % KCACHE_WORD_BITS)) & 1u;
}

#if PEACHOS_KCACHE_MAGAZINES
/* The live word (struct kcache.live) of the object at byte `offset`
 * of the pool (a multiple of KCACHE_ALIGN), and its bit. */
KCACHE_HOT uintptr_t* kcache_live_word(const struct kcache* kc, uintptr_t offset)
{
    return &kc->live[offset / KCACHE_ALIGN / KCACHE_WORD_BITS];
}

KCACHE_HOT uintptr_t kcache_live_mask(uintptr_t offset)
{
    return (uintptr_t)1 << (offset / KCACHE_ALIGN % KCACHE_WORD_BITS);
}

/* Acquire/release: a CPU that frees an object another CPU allocated then
 * reads the slab's record as the allocating CPU's lock left it. */
KCACHE_HOT void kcache_live_set(const struct kcache* kc, const void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - kc->pool;
    __atomic_fetch_or(kcache_live_word(kc, offset), kcache_live_mask(offset), __ATOMIC_ACQ_REL);
}

/* Clear the bit; true iff it was set (exactly one of two racing frees wins). */
KCACHE_HOT bool kcache_live_clear(const struct kcache* kc, uintptr_t offset)
{
    uintptr_t mask = kcache_live_mask(offset);
    return (__atomic_fetch_and(kcache_live_word(kc, offset), ~mask, __ATOMIC_ACQ_REL) & mask) != 0;
}

KCACHE_HOT bool kcache_is_live(const struct kcache* kc, const void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - kc->pool;
    return (__atomic_load_n(kcache_live_word(kc, offset), __ATOMIC_ACQUIRE) & kcache_live_mask(offset)) != 0;
}

/* Held by the caller: the live bit (taken alone may mean a magazine). */
#define KCACHE_HELD(kc, first, slot, ptr) kcache_is_live((kc), (ptr))
#else
#define KCACHE_HELD(kc, first, slot, ptr) kcache_slot_live((kc), (first), (slot))
#endif

KCACHE_HOT unsigned char* kcache_object(const struct kcache* kc, size_t first, size_t size, size_t slot)
{
    return (unsigned char*)(kc->pool + first * KCACHE_BS) + slot * size;
}

/* Slot of the live object starting at ptr in the slab at `first` (geometry
 * g, class size `size`), or SIZE_MAX: an interior pointer, the slab's tail
 * past the last object, or a free object (double free). */
KCACHE_HOT size_t kcache_slot_of(const struct kcache* kc, size_t first, const struct kcache_geometry* g,
                                 const struct kcache_class* c, const void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - (kc->pool + first * KCACHE_BS);
    if (offset >= (uintptr_t)g->blocks * KCACHE_BS) {
        return SIZE_MAX; /* past the slab (its record and the table disagree) */
    }
    uint32_t slot = (uint32_t)(((uint64_t)offset * c->reciprocal) >> 32); /* exact: kcache.c's static assert */
    if (offset != (uintptr_t)slot * c->size || slot >= g->capacity || !KCACHE_HELD(kc, first, slot, ptr)) {
        return SIZE_MAX;
    }
    return slot;
}

/* The engine (kcache.c), for the front end (kcache_front.c). */

/* An object of class ci, or NULL if the heap has no room for a new slab. */
void* kcache_alloc_small(struct kcache* kc, size_t ci);

/* Free ptr, inside the CACHE allocation starting at block `first`, or
 * refuse and report it. O(1). */
void kcache_free_small(struct kcache* kc, void* ptr, size_t first);

#if PEACHOS_KCACHE_MAGAZINES
/* For the magazines (kcache_cpu.c), with the lock held: take a free slot
 * of class ci (taken, not live; NULL if the heap has no room for a new
 * slab), and put back a taken, not live object. */
void* kcache_take(struct kcache* kc, size_t ci);
void kcache_put(struct kcache* kc, void* ptr);
#endif

/* n blocks of `type` from the heap; when it is full, the spare slabs are
 * given back and the heap asked once more. */
void* kcache_heap_blocks(struct kcache* kc, size_t n, HEAP_BLOCK_TABLE_ENTRY type);

/* The fault hook wants this attempt at `site` to fail (counted). */
bool kcache_forced(struct kcache* kc, enum kcache_fault_site site);

/* A pointer kcache_free would accept: a small object or a block allocation. */
struct kcache_ref
{
    bool small;
    size_t first;  /* first block of the allocation */
    size_t blocks; /* block allocation: its length */
    size_t usable; /* ksize */
};

/* Fill *ref and return true iff kcache_free(ptr) would free something
 * (kcache_check.c; krealloc and ksize use it). */
bool kcache_lookup(const struct kcache* kc, const void* ptr, struct kcache_ref* ref);

/* The table scan of kcache_check: the first block of the next CACHE
 * allocation at or after block *i, its length in *n, and *i moved past it;
 * SIZE_MAX after the last one. */
static inline size_t kcache_next_slab(const struct kcache* kc, size_t* i, size_t* n)
{
    const struct heap_table* table = kc->heap->table;
    while (*i < table->total) {
        size_t first = *i;
        *n = heap_allocation_blocks(kc->heap, first);
        *i += *n != 0 ? *n : 1;
        if (*n != 0 && (table->entries[first] & HEAP_BLOCK_TYPE_MASK) == HEAP_BLOCK_TYPE_CACHE) {
            return first;
        }
    }
    return SIZE_MAX;
}

#endif /* PEACHOS_KCACHE_INTERNAL_H */
