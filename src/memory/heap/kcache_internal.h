/*
 * kcache_internal.h - what kcache.c (the engine) and kcache_check.c (the
 * checker) share: the slab header, its seal and the reads that verify a
 * header. Private to those two files; docs/kcache.md has the design.
 * Everything here is inline and needs only heap_internal.h, so
 * kcache_check.c links without kcache.c.
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

/*
 * Slab header, at the start of the slab's first block. Every field is a
 * whole word, so that the checksum can be updated word by word. Invariants
 * (checked by kcache_check):
 *   check == kcache_seal_value();
 *   shape == class << 1 | KCACHE_PREFERRED or KCACHE_SINGLE, and that
 *     geometry's length is the length of the CACHE allocation in the table;
 *   inuse == number of 1 bits of bitmap below the capacity; the bits from
 *     the capacity to the end of the last word are 1 (so the free-slot
 *     search needs no bound);
 *   next/prev link the class's partial list; NULL when full or the spare;
 *   the bytes between the bitmap and the first object are 0.
 */
struct kcache_slab
{
    uintptr_t check;          /* keyed checksum of the words below and the slab's address */
    struct kcache_slab* next; /* partial list */
    struct kcache_slab* prev;
    uintptr_t shape;          /* class << 1 | geometry, fixed when the slab is made */
    uintptr_t inuse;          /* live objects */
    uintptr_t bitmap[];       /* 1 = live object */
};

/* Word numbers of the header fields, for the checksum keys. */
enum
{
    KCACHE_W_NEXT = 1,
    KCACHE_W_PREV = 2,
    KCACHE_W_SHAPE = 3,
    KCACHE_W_INUSE = 4,
    KCACHE_W_BITMAP = 5,
};
#define KCACHE_HEADER_BYTES (offsetof(struct kcache_slab, bitmap))
_Static_assert(KCACHE_HEADER_BYTES == KCACHE_W_BITMAP * sizeof(uintptr_t), "header is whole words");
_Static_assert(offsetof(struct kcache_slab, inuse) == KCACHE_W_INUSE * sizeof(uintptr_t), "word numbers");
_Static_assert(KCACHE_W_BITMAP + (KCACHE_MAX_SLAB_BLOCKS * KCACHE_BS / KCACHE_ALIGN + KCACHE_WORD_BITS - 1) /
                       KCACHE_WORD_BITS <=
                   KCACHE_HEADER_WORDS,
               "a key for every header word");

/* The geometry a shape word names, or NULL if it names none. */
KCACHE_HOT const struct kcache_geometry* kcache_geometry_of(const struct kcache* kc, uintptr_t shape)
{
    if (KCACHE_UNLIKELY(shape >= 2 * (uintptr_t)KCACHE_CLASSES)) {
        return NULL;
    }
    return &kc->classes[shape >> 1].geometry[shape & 1];
}

KCACHE_HOT size_t kcache_shape_class(uintptr_t shape)
{
    return (size_t)(shape >> 1);
}

/*
 * check = key_final * (address + 1) + sum(word_i * keys[i]), i >= 1.
 * The keys are odd, so a change of any one word always changes the sum (odd
 * numbers are invertible modulo 2^n); the sum is linear in each word, so a
 * store updates it in O(1); without the keys nobody can compute the check
 * of a forged header. Independent multiplies: about a cycle per word.
 */
KCACHE_HOT uintptr_t kcache_seal_value(const struct kcache* kc, const struct kcache_slab* s, size_t words)
{
    const uintptr_t* k = kc->keys;
    uintptr_t sum = kc->key_final * ((uintptr_t)s + 1);
    sum += (uintptr_t)s->next * k[KCACHE_W_NEXT] + (uintptr_t)s->prev * k[KCACHE_W_PREV];
    sum += s->shape * k[KCACHE_W_SHAPE] + s->inuse * k[KCACHE_W_INUSE];
    sum += s->bitmap[0] * k[KCACHE_W_BITMAP]; /* every slab has a word; most have one */
    for (size_t i = 1; i < words; i++) {
        sum += s->bitmap[i] * k[KCACHE_W_BITMAP + i];
    }
    return sum;
}

/*
 * Verify a header before using it: its shape must name a geometry (which
 * then bounds the words read) and its check must match. Returns the
 * geometry, or NULL for a corrupt header.
 */
KCACHE_HOT const struct kcache_geometry* kcache_slab_ok(const struct kcache* kc, const struct kcache_slab* s)
{
    const struct kcache_geometry* g = kcache_geometry_of(kc, s->shape);
    if (KCACHE_UNLIKELY(g == NULL || s->check != kcache_seal_value(kc, s, g->words))) {
        return NULL;
    }
    return g;
}

KCACHE_HOT struct kcache_slab* kcache_slab_at(const struct kcache* kc, size_t first)
{
    return (struct kcache_slab*)(kc->pool + first * KCACHE_BS);
}

KCACHE_HOT unsigned char* kcache_object(const struct kcache_slab* s, const struct kcache_geometry* g, size_t size,
                                        size_t slot)
{
    return (unsigned char*)s + g->offset + slot * size;
}

KCACHE_HOT bool kcache_slot_live(const struct kcache_slab* s, size_t slot)
{
    return (s->bitmap[slot / KCACHE_WORD_BITS] >> (slot % KCACHE_WORD_BITS)) & 1u;
}

/* Slot of the live object starting at ptr in a verified slab, or SIZE_MAX. */
KCACHE_HOT size_t kcache_slot_of(const struct kcache* kc, const struct kcache_slab* s,
                                 const struct kcache_geometry* g, const void* ptr)
{
    uintptr_t base = (uintptr_t)s + g->offset;
    uintptr_t p = (uintptr_t)ptr;
    if (p < base) {
        return SIZE_MAX; /* inside the header */
    }
    const struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    uint32_t offset = (uint32_t)(p - base); /* < slab bytes, see the static assert */
    uint32_t slot = (uint32_t)(((uint64_t)offset * c->reciprocal) >> 32);
    if (offset != slot * c->size || slot >= g->capacity || !kcache_slot_live(s, slot)) {
        return SIZE_MAX; /* interior pointer, slab tail, or not live (double free) */
    }
    return slot;
}

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

static inline size_t kcache_popcount(uintptr_t w)
{
    size_t n = 0;
    for (; w != 0; w &= w - 1) {
        n++;
    }
    return n;
}

/* Bitmap agrees with inuse, padding bits are set, header gap is zero. */
static inline bool kcache_bitmap_ok(const struct kcache_slab* s, const struct kcache_geometry* g)
{
    size_t live = 0;
    for (size_t w = 0; w < g->words; w++) {
        live += kcache_popcount(s->bitmap[w]);
    }
    for (size_t bit = g->capacity; bit < (size_t)g->words * KCACHE_WORD_BITS; bit++) {
        if (!kcache_slot_live(s, bit)) {
            return false;
        }
        live--;
    }
    const unsigned char* gap = (const unsigned char*)&s->bitmap[g->words];
    for (const unsigned char* p = gap; p < (const unsigned char*)s + g->offset; p++) {
        if (*p != 0) {
            return false;
        }
    }
    return live == s->inuse;
}

/*
 * The whole header of the CACHE allocation of n blocks at s is sound: it
 * passes its check, its geometry is n blocks long, inuse <= capacity and
 * the bitmap agrees (kcache_bitmap_ok). Its geometry, or NULL. What
 * kcache_check wants of every slab, and what a rebuild wants before it
 * links one: a slab that passes has a free slot whenever inuse < capacity.
 */
static inline const struct kcache_geometry* kcache_slab_sound(const struct kcache* kc, const struct kcache_slab* s,
                                                              size_t n)
{
    const struct kcache_geometry* g = kcache_slab_ok(kc, s);
    if (g == NULL || g->blocks != n || s->inuse > g->capacity || !kcache_bitmap_ok(s, g)) {
        return NULL;
    }
    return g;
}

/* Block of a slab pointer (a link, a list head, a spare): SIZE_MAX unless
 * it is the start of a CACHE allocation in the table, the only place a
 * slab header can be. Reads nothing at s. */
static inline size_t kcache_listed_block(const struct kcache* kc, const struct kcache_slab* s)
{
    const struct heap* heap = kc->heap;
    uintptr_t start = (uintptr_t)heap->saddr;
    uintptr_t p = (uintptr_t)s;
    if (p < start || (p - start) % KCACHE_BS != 0 || (p - start) / KCACHE_BS >= heap->table->total) {
        return SIZE_MAX;
    }
    size_t block = heap_address_to_block(heap, s);
    HEAP_BLOCK_TABLE_ENTRY e = heap->table->entries[block];
    HEAP_BLOCK_TABLE_ENTRY want = HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_CACHE;
    return (e & (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT) == want ? block : SIZE_MAX;
}

/* The table scan of the rebuild and of kcache_check: the first block of the
 * next CACHE allocation at or after block *i, its length in *n, and *i moved
 * past it (before the caller may free it); SIZE_MAX after the last one. */
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
