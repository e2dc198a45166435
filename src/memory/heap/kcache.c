/*
 * kcache.c - small-object caches on heap blocks, and the kmalloc family.
 *
 * The design in short (docs/kcache.md has the rest):
 *   - a slab is a CACHE-typed heap allocation of 1..KCACHE_MAX_SLAB_BLOCKS
 *     blocks holding objects only;
 *   - what the caches know of a slab is its record in the slab table
 *     (struct kcache_slab, kcache.h), outside the pool: class, list links,
 *     live count and the allocation bitmap, the only record of which objects
 *     are live. So a free is checked exactly (start of an object, bit set)
 *     and no write into the pool can change what the caches decide;
 *   - class descriptors, list heads and counters live in struct kcache, also
 *     outside the pool.
 * The kmalloc family on top (size dispatch, whole blocks, krealloc) is in
 * kcache_front.c; kcache_check and the other read-only questions are in
 * kcache_check.c.
 * Needs memory.c and heap.c / heap_check.c only; no libc.
 */
#include "kcache_internal.h"
#include "heap_status.h"

#include "../memory.h"

/* Geometry fields are uint16_t and classes are at most half a block. */
_Static_assert(PEACHOS_HEAP_BLOCK_SIZE >= 2 * KCACHE_MAX_SIZE, "a block must hold two of the largest objects");
_Static_assert(PEACHOS_HEAP_BLOCK_SIZE <= 32768, "geometry is stored in 16-bit fields");
_Static_assert(KCACHE_MAX_SLAB_BLOCKS * PEACHOS_HEAP_BLOCK_SIZE / KCACHE_ALIGN <= UINT16_MAX, "inuse is 16 bits");
/* Slot numbers come from a 32-bit reciprocal: exact while offset * size < 2^32. */
_Static_assert((uint64_t)KCACHE_MAX_SLAB_BLOCKS * PEACHOS_HEAP_BLOCK_SIZE * KCACHE_MAX_SIZE < ((uint64_t)1 << 32),
               "reciprocal division is exact");

/* ---------------------------------------------------------------- classes */

static size_t kcache_class_size(size_t ci)
{
    if (ci < KCACHE_SMALL_CLASSES) {
        return (ci + 1) * KCACHE_SMALL_STEP;
    }
    size_t j = ci - KCACHE_SMALL_CLASSES;
    size_t base = (size_t)KCACHE_SMALL_MAX << (j / KCACHE_OCTAVE_CLASSES);
    return base + (j % KCACHE_OCTAVE_CLASSES + 1) * (base / KCACHE_OCTAVE_CLASSES);
}

size_t kcache_class_of(size_t size)
{
    if (size == 0 || size > KCACHE_MAX_SIZE) {
        return KCACHE_CLASSES;
    }
    if (size <= KCACHE_SMALL_MAX) {
        return (size - 1) / KCACHE_SMALL_STEP;
    }
    /* KCACHE_OCTAVE_CLASSES classes per power of two above KCACHE_SMALL_MAX
     * (two powers: the static assert in kcache.h). */
    if (size <= 2 * (size_t)KCACHE_SMALL_MAX) {
        return KCACHE_SMALL_CLASSES + (size - KCACHE_SMALL_MAX - 1) / (KCACHE_SMALL_MAX / KCACHE_OCTAVE_CLASSES);
    }
    return KCACHE_SMALL_CLASSES + KCACHE_OCTAVE_CLASSES +
           (size - 2 * (size_t)KCACHE_SMALL_MAX - 1) / (2 * (size_t)KCACHE_SMALL_MAX / KCACHE_OCTAVE_CLASSES);
}

/* The objects of `size` a slab of `blocks` blocks holds. */
static struct kcache_geometry kcache_geometry_for(size_t size, size_t blocks)
{
    size_t capacity = blocks * KCACHE_BS / size;
    size_t words = (capacity + KCACHE_WORD_BITS - 1) / KCACHE_WORD_BITS;
    struct kcache_geometry g = { (uint16_t)blocks, (uint16_t)capacity, (uint16_t)words };
    return g;
}

static size_t kcache_waste(size_t size, const struct kcache_geometry* g)
{
    return g->blocks * KCACHE_BS - g->capacity * size;
}

/*
 * The preferred slab: the shortest one wasting at most 1/50 of its bytes
 * (the tail past the last object), else the one wasting the smallest share.
 * Short slabs keep partially-used memory low and are easy to place; the 2%
 * bound is what W2's density goal leaves after class rounding.
 */
static bool kcache_wastes_little(size_t size, const struct kcache_geometry* g)
{
    return kcache_waste(size, g) * 50 <= g->blocks * KCACHE_BS;
}

static struct kcache_geometry kcache_pick_geometry(size_t size)
{
    struct kcache_geometry best = kcache_geometry_for(size, 1);
    for (size_t k = 2; k <= KCACHE_MAX_SLAB_BLOCKS && !kcache_wastes_little(size, &best); k++) {
        struct kcache_geometry g = kcache_geometry_for(size, k);
        if (kcache_wastes_little(size, &g) || kcache_waste(size, &g) * best.blocks < kcache_waste(size, &best) * k) {
            best = g;
        }
    }
    return best;
}

/* -------------------------------------------------------------- reporting */

static void kcache_report(const struct kcache* kc, enum heap_report_kind kind, const void* ptr)
{
    struct heap* heap = kc->heap;
    if (heap->report != NULL) {
        struct heap_report report = { kind, ptr, heap_address_to_block(heap, ptr) };
        heap->report(heap->report_ctx, &report);
    }
}

/* A refused free: counted with the heap's, reported, nothing changed. */
static void kcache_reject(struct kcache* kc, enum heap_report_kind kind, const void* ptr)
{
    kc->heap->rejected_frees++;
    kcache_report(kc, kind, ptr);
}

bool kcache_forced(struct kcache* kc, enum kcache_fault_site site)
{
    if (kc->fault != NULL && kc->fault(kc->fault_ctx, site)) {
        kc->forced_failures++;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------- init */

/* A record per block, and with the magazines the live bitmap after them. */
#define KCACHE_TABLE_BLOCK_BYTES (sizeof(struct kcache_slab) + PEACHOS_KCACHE_MAGAZINES * KCACHE_BLOCK_WORDS * sizeof(uintptr_t))

size_t kcache_table_bytes(size_t blocks)
{
    if (blocks >= KCACHE_NONE || blocks > SIZE_MAX / KCACHE_TABLE_BLOCK_BYTES) {
        return 0; /* list links are 32-bit block numbers */
    }
    return blocks * KCACHE_TABLE_BLOCK_BYTES;
}

/* [a, a + an) and [b, b + bn) share a byte. */
static bool kcache_overlap(uintptr_t a, size_t an, uintptr_t b, size_t bn)
{
    return an != 0 && bn != 0 && a < b + bn && b < a + an;
}

/* The slab table the caller gives: big enough, aligned, clear of the heap. */
static bool kcache_table_fits(const struct kcache* kc, const struct heap* heap, const void* mem, size_t bytes)
{
    size_t blocks = heap->table != NULL ? heap->table->total : 0;
    size_t need = kcache_table_bytes(blocks);
    uintptr_t at = (uintptr_t)mem;
    if (need == 0 || bytes < need || at % _Alignof(struct kcache_slab) != 0 || at > UINTPTR_MAX - need) {
        return false;
    }
    return !kcache_overlap(at, need, (uintptr_t)heap->saddr, blocks * KCACHE_BS) &&
           !kcache_overlap(at, need, (uintptr_t)heap->table->entries, blocks) &&
           !kcache_overlap(at, need, (uintptr_t)kc, sizeof(*kc)) &&
           !kcache_overlap(at, need, (uintptr_t)heap, sizeof(*heap));
}

int kcache_init(struct kcache* kc, struct heap* heap, void* slab_table, size_t table_bytes, unsigned flags)
{
    if (kc == NULL || heap == NULL || slab_table == NULL || (flags & ~KCACHE_FLAG_POISON) != 0 ||
        !kcache_table_fits(kc, heap, slab_table, table_bytes)) {
        return -EINVARG;
    }
    memset(kc, 0, sizeof(*kc));
    kc->heap = heap;
    kc->pool = (uintptr_t)heap->saddr;
    kc->entries = heap->table->entries;
    kc->blocks = heap->table->total;
    kc->slab_table = (struct kcache_slab*)slab_table;
#if PEACHOS_KCACHE_MAGAZINES
    kc->live = (uintptr_t*)(kc->slab_table + kc->blocks);
    kc->fast_blocks = (flags & KCACHE_FLAG_POISON) ? 0 : kc->blocks; /* poison: every free locked, one by one */
#endif
    kc->flags = flags;
    memset(slab_table, 0, kcache_table_bytes(kc->blocks));
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        struct kcache_class* c = &kc->classes[ci];
        c->size = (uint32_t)kcache_class_size(ci);
        c->reciprocal = UINT32_MAX / c->size + 1; /* = 2^32 / size, + 1 unless size is a power of two */
        c->geometry[KCACHE_PREFERRED] = kcache_pick_geometry(c->size);
        c->geometry[KCACHE_SINGLE] = kcache_geometry_for(c->size, 1);
        c->partial = KCACHE_NONE;
        c->spare = KCACHE_NONE;
#if PEACHOS_KCACHE_MAGAZINES
        /* Full at eight slabs' worth, at most KCACHE_MAG_SIZE: a refill
         * of the largest classes takes a few blocks, not a heap's worth. */
        uint32_t limit = 8u * c->geometry[KCACHE_PREFERRED].capacity;
        limit = limit > KCACHE_MAG_SIZE ? KCACHE_MAG_SIZE : limit;
        for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
            kc->cpus[cpu].mags[ci].limit = limit;
        }
#endif
    }
    return PEACHOS_ALL_OK;
}

void kcache_set_fault(struct kcache* kc, kcache_fault_fn fn, void* ctx)
{
    if (kc != NULL) {
        kc->fault = fn;
        kc->fault_ctx = ctx;
    }
}

/* ------------------------------------------------------------ heap access */

/* n blocks from the heap; if it is full, give the spare slabs back and retry. */
void* kcache_heap_blocks(struct kcache* kc, size_t n, HEAP_BLOCK_TABLE_ENTRY type)
{
    void* mem = heap_malloc_blocks_typed(kc->heap, n, type);
    if (mem == NULL && kcache_trim(kc) > 0) {
        mem = heap_malloc_blocks_typed(kc->heap, n, type);
    }
    return mem;
}

/* ------------------------------------------------------------------ slabs */

/* Write the record of a fresh slab at `first`: no live object, padding bits
 * set, on no list. Its blocks' records were all zero (the invariant). */
static void kcache_format(struct kcache* kc, size_t first, size_t ci, size_t which)
{
    struct kcache_class* c = &kc->classes[ci];
    const struct kcache_geometry* g = &c->geometry[which];
    struct kcache_slab* s = kcache_record(kc, first);
    s->shape = kcache_shape(ci, which);
    s->next = KCACHE_NONE;
    s->prev = KCACHE_NONE;
    for (size_t bit = g->capacity; bit < (size_t)g->words * KCACHE_WORD_BITS; bit++) {
        *kcache_word(kc, first, bit / KCACHE_WORD_BITS) |= (uintptr_t)1 << (bit % KCACHE_WORD_BITS);
    }
    if (kc->flags & KCACHE_FLAG_POISON) {
        memset(kcache_object(kc, first, c->size, 0), KCACHE_POISON_BYTE, (size_t)g->capacity * c->size);
    }
}

/* A new empty slab for class ci, preferred length first, then one block:
 * its first block, or KCACHE_NONE. */
static uint32_t kcache_grow(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    if (kcache_forced(kc, KCACHE_FAULT_SLAB)) {
        return KCACHE_NONE;
    }
    size_t which = KCACHE_PREFERRED;
    void* mem = kcache_heap_blocks(kc, c->geometry[which].blocks, HEAP_BLOCK_TYPE_CACHE);
    if (mem == NULL && c->geometry[which].blocks > 1) {
        which = KCACHE_SINGLE;
        mem = kcache_heap_blocks(kc, 1, HEAP_BLOCK_TYPE_CACHE);
    }
    if (mem == NULL) {
        return KCACHE_NONE;
    }
    size_t first = heap_address_to_block(kc->heap, mem);
    c->slabs++;
    kc->slabs++;
    kc->slab_blocks += c->geometry[which].blocks;
    kcache_format(kc, first, ci, which);
    return (uint32_t)first;
}

/* Give an empty, unlisted slab back to the heap; its records go back to 0. */
static void kcache_release(struct kcache* kc, size_t first)
{
    struct kcache_slab* s = kcache_record(kc, first);
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    size_t blocks = kcache_geometry_of(kc, s->shape)->blocks;
    memset(s, 0, blocks * sizeof(*s)); /* not the live bits: 0 already, as nothing is taken */
    heap_free_typed(kc->heap, kcache_object(kc, first, 0, 0), HEAP_BLOCK_TYPE_CACHE);
    c->slabs--;
    kc->slabs--;
    kc->slab_blocks -= blocks;
}

size_t kcache_trim(struct kcache* kc)
{
    size_t freed = 0;
    if (kc == NULL) {
        return 0;
    }
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        struct kcache_class* c = &kc->classes[ci];
        if (c->spare != KCACHE_NONE) {
            freed += kcache_geometry_of(kc, kcache_record(kc, c->spare)->shape)->blocks;
            kcache_release(kc, c->spare);
            c->spare = KCACHE_NONE;
        }
    }
    return freed;
}

/* ------------------------------------------------------------ partial list */

static void kcache_list_push(struct kcache* kc, struct kcache_class* c, uint32_t b)
{
    struct kcache_slab* s = kcache_record(kc, b);
    s->prev = KCACHE_NONE;
    s->next = c->partial;
    if (c->partial != KCACHE_NONE) {
        kcache_record(kc, c->partial)->prev = b;
    }
    c->partial = b;
    c->partial_slabs++;
}

KCACHE_HOT void kcache_list_unlink(struct kcache* kc, struct kcache_class* c, uint32_t b)
{
    struct kcache_slab* s = kcache_record(kc, b);
    if (s->prev != KCACHE_NONE) {
        kcache_record(kc, s->prev)->next = s->next;
    } else {
        c->partial = s->next;
    }
    if (s->next != KCACHE_NONE) {
        kcache_record(kc, s->next)->prev = s->prev;
    }
    s->next = KCACHE_NONE;
    s->prev = KCACHE_NONE;
    c->partial_slabs--;
}

/* An empty slab off the list: kept as the class's spare if it has none
 * (hysteresis: a class at the edge of a slab does not grow and give back
 * a slab on every call), else given back to the heap. */
static void kcache_retire(struct kcache* kc, struct kcache_class* c, uint32_t b)
{
    if (c->spare == KCACHE_NONE) {
        c->spare = b;
    } else {
        kcache_release(kc, b);
    }
}

/* --------------------------------------------------------- small objects */

/* Report a write after free if the poison of a free object was changed. */
static void kcache_check_poison(struct kcache* kc, const unsigned char* object, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (object[i] != KCACHE_POISON_BYTE) {
            kc->use_after_free++;
            kcache_report(kc, HEAP_REPORT_CACHE_USE_AFTER_FREE, object);
            return;
        }
    }
}

/* No partial slab: the spare, else a new slab. It becomes the class's only
 * partial slab (its links are KCACHE_NONE already). KCACHE_NONE if the heap
 * has no room. */
static uint32_t kcache_refill(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    uint32_t b = c->spare;
    if (b != KCACHE_NONE) {
        c->spare = KCACHE_NONE;
    } else {
        b = kcache_grow(kc, ci);
        if (b == KCACHE_NONE) {
            return KCACHE_NONE;
        }
    }
    c->partial = b;
    c->partial_slabs = 1;
    return b;
}

/* Lowest free slot of the non-full slab at `first`, marked taken. A slab
 * on the partial list has one (its invariant), so the search ends within
 * its words: the padding bits past the capacity are set. */
KCACHE_HOT size_t kcache_take_slot(struct kcache* kc, size_t first, const struct kcache_geometry* g)
{
    size_t w = 0;
    uintptr_t* word = kcache_word(kc, first, 0);
    /* cppcheck 2.10 wrongly takes ~*word for always non-zero: a word
     * whose bits are all set (64 taken objects) makes it 0. */
    // cppcheck-suppress knownConditionTrueFalse
    while (~*word == 0) {
        w++;
        PEACHOS_HEAP_ASSERT(w < g->words);
        word = kcache_word(kc, first, w);
    }
    (void)g; /* only the assertion reads it */
    size_t bit = (size_t)__builtin_ctzl((unsigned long)~*word);
    *word |= (uintptr_t)1 << bit;
    return w * KCACHE_WORD_BITS + bit;
}

/* A free slot of class ci, marked taken: its object, or NULL if the heap
 * has no room for a new slab. */
static unsigned char* kcache_take_object(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    uint32_t b = c->partial;
    if (KCACHE_UNLIKELY(b == KCACHE_NONE)) {
        b = kcache_refill(kc, ci);
        if (b == KCACHE_NONE) {
            return NULL;
        }
    }
    struct kcache_slab* s = kcache_record(kc, b);
    const struct kcache_geometry* g = kcache_geometry_of(kc, s->shape);
    size_t slot = kcache_take_slot(kc, b, g);
    if (++s->inuse == g->capacity) {
        kcache_list_unlink(kc, c, b); /* full slabs are on no list */
    }
    c->objects++;
    return kcache_object(kc, b, c->size, slot);
}

void* kcache_alloc_small(struct kcache* kc, size_t ci)
{
    unsigned char* object = kcache_take_object(kc, ci);
    if (KCACHE_UNLIKELY(object == NULL)) {
        return NULL;
    }
#if PEACHOS_KCACHE_MAGAZINES
    kcache_live_set(kc, object);
#endif
    if (KCACHE_UNLIKELY(kc->flags & KCACHE_FLAG_POISON)) {
        kcache_check_poison(kc, object, kc->classes[ci].size);
    }
    return object;
}

/* Clear the taken bit of `slot` of the slab at `first` and keep the lists. */
static void kcache_put_slot(struct kcache* kc, size_t first, size_t slot)
{
    struct kcache_slab* s = kcache_record(kc, first);
    const struct kcache_geometry* g = kcache_geometry_of(kc, s->shape);
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    bool was_full = s->inuse == g->capacity;
    *kcache_word(kc, first, slot / KCACHE_WORD_BITS) &= ~((uintptr_t)1 << (slot % KCACHE_WORD_BITS));
    s->inuse--;
    c->objects--;
    if (s->inuse == 0) {
        if (!was_full) {
            kcache_list_unlink(kc, c, (uint32_t)first);
        }
        kcache_retire(kc, c, (uint32_t)first);
    } else if (was_full) {
        kcache_list_push(kc, c, (uint32_t)first);
    }
}

void kcache_free_small(struct kcache* kc, void* ptr, size_t first)
{
    struct kcache_slab* s = kcache_record(kc, first);
    const struct kcache_geometry* g = kcache_geometry_of(kc, s->shape);
    if (KCACHE_UNLIKELY(g == NULL)) {
        kc->corruptions++;
        kcache_reject(kc, HEAP_REPORT_FREE_CORRUPT, ptr);
        return;
    }
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    size_t slot = kcache_slot_of(kc, first, g, c, ptr);
    if (KCACHE_UNLIKELY(slot == SIZE_MAX)) {
        kcache_reject(kc, HEAP_REPORT_CACHE_BAD_FREE, ptr);
        return;
    }
#if PEACHOS_KCACHE_MAGAZINES
    (void)kcache_live_clear(kc, (uintptr_t)ptr - kc->pool); /* set: kcache_slot_of, and we hold the lock */
#endif
    if (KCACHE_UNLIKELY(kc->flags & KCACHE_FLAG_POISON)) {
        memset(ptr, KCACHE_POISON_BYTE, c->size);
    }
    kcache_put_slot(kc, first, slot);
}

#if PEACHOS_KCACHE_MAGAZINES
void* kcache_take(struct kcache* kc, size_t ci)
{
    return kcache_take_object(kc, ci);
}

/* The object is taken, so its slab is sound and its first block is at most
 * KCACHE_MAX_SLAB_BLOCKS - 1 blocks back. */
void kcache_put(struct kcache* kc, void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - kc->pool;
    size_t first = offset / KCACHE_BS;
    while (!(kc->entries[first] & HEAP_BLOCK_IS_FIRST)) {
        first--;
    }
    const struct kcache_class* c = &kc->classes[kcache_shape_class(kcache_record(kc, first)->shape)];
    uint32_t slot = (uint32_t)(((uint64_t)(offset - first * KCACHE_BS) * c->reciprocal) >> 32);
    kcache_put_slot(kc, first, slot);
}
#endif
