/*
 * kcache.c - small-object caches on heap blocks, and the kmalloc family.
 *
 * The design in short (docs/kcache.md has the rest):
 *   - a slab is a CACHE-typed heap allocation of 1..KCACHE_MAX_SLAB_BLOCKS
 *     blocks; its first bytes are the header (kcache_internal.h), then the
 *     objects;
 *   - the allocation bitmap in the header is the only record of which
 *     objects are live, so a free is checked exactly (start of an object,
 *     bit set) and nothing the allocator follows lives in a free object;
 *   - the header is sealed with a checksum keyed by the cache's secret and
 *     the slab's address, verified before every use of the header: a header
 *     changed by a stray write (say, an overrun of the memory just below the
 *     slab) is reported and never followed;
 *   - a class that meets such a header where it needs one (its partial-list
 *     head, its spare, a neighbour of a slab that empties) quarantines the slab and rebuilds its partial list
 *     from the table (see "quarantine" below), so one overrun costs a slab,
 *     not the whole size class;
 *   - class descriptors, list heads, keys and counters live in struct
 *     kcache, outside the pool.
 * kcache_check and its helpers are in kcache_check.c. Needs memory.c and
 * heap.c / heap_check.c only; no libc.
 */
#include "kcache_internal.h"
#include "heap_status.h"

#include "../memory.h"

/* Geometry fields are uint16_t and classes are at most half a block. */
_Static_assert(PEACHOS_HEAP_BLOCK_SIZE >= 2 * KCACHE_MAX_SIZE, "a block must hold two of the largest objects");
_Static_assert(PEACHOS_HEAP_BLOCK_SIZE <= 32768, "geometry is stored in 16-bit fields");
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

static size_t kcache_round_align(size_t n)
{
    return (n + KCACHE_ALIGN - 1) & ~(size_t)(KCACHE_ALIGN - 1);
}

/* Most objects of `size` a slab of `blocks` blocks holds after its header. */
static struct kcache_geometry kcache_geometry_for(size_t size, size_t blocks)
{
    size_t bytes = blocks * KCACHE_BS;
    size_t capacity = bytes / size;
    size_t words = 0;
    size_t offset = 0;
    for (; capacity > 0; capacity--) {
        words = (capacity + KCACHE_WORD_BITS - 1) / KCACHE_WORD_BITS;
        offset = kcache_round_align(KCACHE_HEADER_BYTES + words * sizeof(uintptr_t));
        if (offset + capacity * size <= bytes) {
            break;
        }
    }
    struct kcache_geometry g = { (uint16_t)blocks, (uint16_t)capacity, (uint16_t)offset, (uint16_t)words };
    return g;
}

static size_t kcache_waste(size_t size, const struct kcache_geometry* g)
{
    return g->blocks * KCACHE_BS - g->capacity * size;
}

/*
 * The preferred slab: the shortest one wasting at most 1/50 of its bytes
 * (header, bitmap and tail), else the one wasting the smallest share.
 * Short slabs keep partially-used memory low and are easy to place; the 2%
 * bound is what W2's density goal leaves after class rounding.
 */
static struct kcache_geometry kcache_pick_geometry(size_t size)
{
    struct kcache_geometry best = kcache_geometry_for(size, 1);
    for (size_t k = 1; k <= KCACHE_MAX_SLAB_BLOCKS; k++) {
        struct kcache_geometry g = kcache_geometry_for(size, k);
        size_t waste = kcache_waste(size, &g);
        if (waste * 50 <= k * KCACHE_BS) {
            return g;
        }
        if (waste * best.blocks < kcache_waste(size, &best) * k) {
            best = g;
        }
    }
    return best;
}

/* ---------------------------------------------------------------- sealing */

/* splitmix64's finaliser: spreads a secret into unrelated keys. */
static uint64_t kcache_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Link setters keep the check in step (list moves are not the hot path). */
static void kcache_set_next(const struct kcache* kc, struct kcache_slab* s, struct kcache_slab* next)
{
    s->check += ((uintptr_t)next - (uintptr_t)s->next) * kc->keys[KCACHE_W_NEXT];
    s->next = next;
}

static void kcache_set_prev(const struct kcache* kc, struct kcache_slab* s, struct kcache_slab* prev)
{
    s->check += ((uintptr_t)prev - (uintptr_t)s->prev) * kc->keys[KCACHE_W_PREV];
    s->prev = prev;
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

/* A header that fails its check where an allocation needed it: counted,
 * reported (CACHE_QUARANTINE, ptr = slab). Not a refused free: nobody freed
 * anything, so rejected_frees is left alone. */
static void kcache_corrupt(struct kcache* kc, const struct kcache_slab* s)
{
    kc->corruptions++;
    kcache_report(kc, HEAP_REPORT_CACHE_QUARANTINE, s);
}

/*
 * Quarantine: class c met the corrupt header of s where it needed it (its
 * partial-list head or its spare). Reported once, here; then abandoned: s
 * stays allocated in the table for ever (still counted in c->slabs, its
 * objects in c->objects), nothing is read from or written to it again, kfree
 * into it stays refused by its check, and kcache_check keeps naming it. The
 * caller drops it from the list by rebuilding the list (kcache_rebuild).
 */
static void kcache_quarantine(struct kcache* kc, struct kcache_class* c, const struct kcache_slab* s)
{
    kcache_corrupt(kc, s);
    c->quarantined++;
    if (c->spare == s) {
        c->spare = NULL;
    }
}

static bool kcache_forced(struct kcache* kc, enum kcache_fault_site site)
{
    if (kc->fault != NULL && kc->fault(kc->fault_ctx, site)) {
        kc->forced_failures++;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------- init */

int kcache_init(struct kcache* kc, struct heap* heap, uintptr_t secret, unsigned flags)
{
    if (kc == NULL || heap == NULL || (flags & ~KCACHE_FLAG_POISON) != 0) {
        return -EINVARG;
    }
    memset(kc, 0, sizeof(*kc));
    kc->heap = heap;
    kc->pool = (uintptr_t)heap->saddr;
    kc->entries = heap->table != NULL ? heap->table->entries : NULL;
    kc->blocks = heap->table != NULL ? heap->table->total : 0;
    kc->flags = flags;
    uint64_t seed = kcache_mix((uint64_t)secret + 0x9E3779B97F4A7C15ull);
    kc->key_final = (uintptr_t)seed;
    for (size_t i = 0; i < KCACHE_HEADER_WORDS; i++) {
        seed = kcache_mix(seed + 0x9E3779B97F4A7C15ull);
        kc->keys[i] = (uintptr_t)seed | 1u; /* odd */
    }
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        struct kcache_class* c = &kc->classes[ci];
        c->size = (uint32_t)kcache_class_size(ci);
        c->reciprocal = UINT32_MAX / c->size + 1; /* = 2^32 / size, + 1 unless size is a power of two */
        c->geometry[KCACHE_PREFERRED] = kcache_pick_geometry(c->size);
        c->geometry[KCACHE_SINGLE] = kcache_geometry_for(c->size, 1);
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
static void* kcache_heap_blocks(struct kcache* kc, size_t n, HEAP_BLOCK_TABLE_ENTRY type)
{
    void* mem = heap_malloc_blocks_typed(kc->heap, n, type);
    if (mem == NULL && kcache_trim(kc) > 0) {
        mem = heap_malloc_blocks_typed(kc->heap, n, type);
    }
    return mem;
}

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

/* ------------------------------------------------------------------ slabs */

/* Lay out a fresh slab in `mem`: zero header, padding bits set, sealed. */
static struct kcache_slab* kcache_format(struct kcache* kc, void* mem, size_t ci, size_t which)
{
    struct kcache_slab* s = (struct kcache_slab*)mem;
    const struct kcache_geometry* g = &kc->classes[ci].geometry[which];
    size_t size = kc->classes[ci].size;
    memset(s, 0, g->offset);
    s->shape = (uintptr_t)(ci << 1 | which);
    for (size_t bit = g->capacity; bit < (size_t)g->words * KCACHE_WORD_BITS; bit++) {
        s->bitmap[bit / KCACHE_WORD_BITS] |= (uintptr_t)1 << (bit % KCACHE_WORD_BITS);
    }
    if (kc->flags & KCACHE_FLAG_POISON) {
        memset(kcache_object(s, g, size, 0), KCACHE_POISON_BYTE, (size_t)g->capacity * size);
    }
    s->check = kcache_seal_value(kc, s, g->words);
    return s;
}

/* A new empty slab for class ci, preferred length first, then one block. */
static struct kcache_slab* kcache_grow(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    if (kcache_forced(kc, KCACHE_FAULT_SLAB)) {
        return NULL;
    }
    size_t which = KCACHE_PREFERRED;
    void* mem = kcache_heap_blocks(kc, c->geometry[which].blocks, HEAP_BLOCK_TYPE_CACHE);
    if (mem == NULL && c->geometry[which].blocks > 1) {
        which = KCACHE_SINGLE;
        mem = kcache_heap_blocks(kc, 1, HEAP_BLOCK_TYPE_CACHE);
    }
    if (mem == NULL) {
        return NULL;
    }
    c->slabs++;
    kc->slabs++;
    kc->slab_blocks += c->geometry[which].blocks;
    return kcache_format(kc, mem, ci, which);
}

/* Give an empty, unlisted, verified slab back to the heap. The header is
 * wiped first so that no stale copy of it can pass a check later. */
static void kcache_release(struct kcache* kc, struct kcache_slab* s, const struct kcache_geometry* g)
{
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    memset(s, 0, g->offset);
    heap_free_typed(kc->heap, s, HEAP_BLOCK_TYPE_CACHE);
    c->slabs--;
    kc->slabs--;
    kc->slab_blocks -= g->blocks;
}

size_t kcache_trim(struct kcache* kc)
{
    size_t freed = 0;
    if (kc == NULL) {
        return 0;
    }
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        struct kcache_slab* s = kc->classes[ci].spare;
        if (s == NULL) {
            continue;
        }
        const struct kcache_geometry* g = kcache_slab_ok(kc, s);
        if (g == NULL) {
            kcache_quarantine(kc, &kc->classes[ci], s); /* no longer the spare, never freed */
            continue;
        }
        kc->classes[ci].spare = NULL;
        freed += g->blocks;
        kcache_release(kc, s, g);
    }
    return freed;
}

/* ------------------------------------------------------------ partial list */

/*
 * Callers have verified s, whose links name the neighbours. A neighbour's
 * link is written without verifying the neighbour first: nothing is read
 * from it but the old value of that link, and the setter adds the change to
 * its check, so a neighbour that was corrupt stays exactly as corrupt and is
 * caught when it is next used. That saves two checks per list move. (Its
 * links are never trusted: a slab that empties has both neighbours
 * verified before it is unlinked, kcache_link_of.)
 */
static void kcache_list_push(const struct kcache* kc, struct kcache_class* c, struct kcache_slab* s)
{
    struct kcache_slab* head = c->partial;
    kcache_set_prev(kc, s, NULL);
    kcache_set_next(kc, s, head);
    if (head != NULL) {
        kcache_set_prev(kc, head, s);
    }
    c->partial = s;
    c->partial_slabs++;
}

static void kcache_list_unlink(const struct kcache* kc, struct kcache_class* c, struct kcache_slab* s)
{
    struct kcache_slab* prev = s->prev;
    struct kcache_slab* next = s->next;
    if (prev != NULL) {
        kcache_set_next(kc, prev, next);
    } else {
        c->partial = next;
    }
    if (next != NULL) {
        kcache_set_prev(kc, next, prev);
    }
    kcache_set_next(kc, s, NULL);
    kcache_set_prev(kc, s, NULL);
    c->partial_slabs--;
}

/* What one link of a slab says about its place on the partial list. */
enum kcache_link
{
    KCACHE_LINK_BACK,    /* the neighbour is a sound slab of the class linking back (or NULL, rightly) */
    KCACHE_LINK_STALE,   /* it is not: the slab is off the list, its links stale */
    KCACHE_LINK_CORRUPT, /* the neighbour is a slab whose header fails its check: nothing known */
};

/*
 * The verified slab s of class c is emptying; its next (next_side) or prev
 * link names a neighbour. Is s on the list, as that link says? A slab is
 * off the list, with stale links, when a rebuild left it out because its
 * header was corrupt then and the header was put back since. The neighbour
 * is verified before its link is read: a corrupt neighbour's links say
 * nothing (an overrun may have rewritten them), so neither answer may be
 * built on them. A neighbour that is no slab, of another class or linking
 * elsewhere proves s off the list; a NULL prev is right only for the head.
 */
static enum kcache_link kcache_link_of(const struct kcache* kc, const struct kcache_class* c,
                                       const struct kcache_slab* s, bool next_side)
{
    const struct kcache_slab* n = next_side ? s->next : s->prev;
    if (n == NULL) {
        return next_side || c->partial == s ? KCACHE_LINK_BACK : KCACHE_LINK_STALE;
    }
    if (kcache_listed_block(kc, n) == SIZE_MAX) {
        return KCACHE_LINK_STALE; /* no slab starts there (any more) */
    }
    if (kcache_slab_ok(kc, n) == NULL) {
        return KCACHE_LINK_CORRUPT;
    }
    const struct kcache_slab* back = next_side ? n->prev : n->next;
    return back == s && &kc->classes[kcache_shape_class(n->shape)] == c ? KCACHE_LINK_BACK : KCACHE_LINK_STALE;
}

/*
 * Rebuild the partial list of class ci from the table, after a quarantine:
 * the corrupt slab's links cannot be trusted, so the list is not repaired
 * around it but made again. Every CACHE allocation in the table is looked
 * at; its header must be sound (kcache_slab_sound) before anything is read
 * from it; a corrupt one is skipped and counted (its class is unknown, it
 * is never linked). Each sound slab of class ci gets fresh links through the
 * setters (which keep its check): 0 < inuse < capacity -> appended to the
 * list (table order); empty -> the spare if the class has none (else given
 * back to the heap); full -> on no list. Other classes are not touched.
 * O(table + headers of all slabs): only ever after a reported corruption.
 */
static void kcache_rebuild(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    struct kcache_slab* tail = NULL;
    size_t corrupt = 0;
    c->partial = NULL;
    c->partial_slabs = 0;
    size_t n;
    for (size_t i = 0, first; (first = kcache_next_slab(kc, &i, &n)) != SIZE_MAX;) {
        struct kcache_slab* s = kcache_slab_at(kc, first);
        const struct kcache_geometry* g = kcache_slab_sound(kc, s, n);
        if (g == NULL) {
            corrupt++;
            continue;
        }
        if (kcache_shape_class(s->shape) != ci) {
            continue;
        }
        kcache_set_next(kc, s, NULL);
        kcache_set_prev(kc, s, NULL);
        if (s->inuse == 0) {
            if (c->spare == NULL) {
                c->spare = s;
            } else if (c->spare != s) {
                kcache_release(kc, s, g);
            }
        } else if (s->inuse < g->capacity) {
            kcache_set_prev(kc, s, tail);
            if (tail != NULL) {
                kcache_set_next(kc, tail, s);
            } else {
                c->partial = s;
            }
            tail = s;
            c->partial_slabs++;
        }
    }
    kc->rebuilds++;
    kc->rebuild_corrupt = corrupt;
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

/*
 * No partial slab: the spare (verified before it moves), else a new slab.
 * It becomes the class's only partial slab; its links are already NULL. A
 * corrupt spare is quarantined and the list rebuilt, which may find partial
 * slabs or an empty one to use (both verified by the rebuild).
 */
static struct kcache_slab* kcache_refill(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    struct kcache_slab* s = c->spare;
    if (s != NULL && KCACHE_UNLIKELY(kcache_slab_ok(kc, s) == NULL)) {
        kcache_quarantine(kc, c, s);
        kcache_rebuild(kc, ci);
        if (c->partial != NULL) {
            return c->partial;
        }
        s = c->spare;
    }
    if (s != NULL) {
        c->spare = NULL;
    } else {
        s = kcache_grow(kc, ci);
        if (s == NULL) {
            return NULL;
        }
    }
    c->partial = s;
    c->partial_slabs = 1;
    return s;
}

/* Lowest free slot of a verified, non-full slab, marked live; the check is
 * updated for the bitmap word and inuse. SIZE_MAX if the bitmap is full. */
KCACHE_HOT size_t kcache_take_slot(const struct kcache* kc, struct kcache_slab* s, const struct kcache_geometry* g)
{
    for (size_t w = 0; w < g->words; w++) {
        uintptr_t bits = s->bitmap[w];
        /* cppcheck 2.10 wrongly takes ~bits for always non-zero: a word
         * whose bits are all set (64 live objects) makes it 0. */
        // cppcheck-suppress knownConditionTrueFalse
        if (~bits != 0) {
            size_t bit = (size_t)__builtin_ctzl((unsigned long)~bits);
            uintptr_t mask = (uintptr_t)1 << bit;
            s->bitmap[w] = bits | mask;
            s->inuse++;
            s->check += mask * kc->keys[KCACHE_W_BITMAP + w] + kc->keys[KCACHE_W_INUSE];
            return w * KCACHE_WORD_BITS + bit;
        }
    }
    return SIZE_MAX;
}

/* Slot `slot` of the verified slab s has just been taken: s leaves the
 * list if that filled it; the object (its poison checked). */
KCACHE_HOT void* kcache_hand_out(struct kcache* kc, struct kcache_class* c, struct kcache_slab* s,
                                 const struct kcache_geometry* g, size_t slot)
{
    if (s->inuse == g->capacity) {
        kcache_list_unlink(kc, c, s); /* full slabs are on no list */
    }
    c->objects++;
    unsigned char* object = kcache_object(s, g, c->size, slot);
    if (KCACHE_UNLIKELY(kc->flags & KCACHE_FLAG_POISON)) {
        kcache_check_poison(kc, object, c->size);
    }
    return object;
}

/*
 * The slab `bad` that class ci was about to use (its partial-list head, or
 * the slab its refill returned) failed its check: quarantine it, rebuild the
 * list, and take the object from the rebuilt list, or the refill. Out of
 * line and reached by a tail call, so that the fast path keeps nothing
 * across it. The loop runs once: every slab the rebuild links, and every
 * spare it keeps, has just passed kcache_slab_sound, which implies the
 * checks below, and the refill quarantines an unverified spare itself.
 * (Each further pass would quarantine a different slab, so it ends anyway.)
 */
static __attribute__((noinline, cold)) void* kcache_alloc_recover(struct kcache* kc, size_t ci, struct kcache_slab* bad)
{
    struct kcache_class* c = &kc->classes[ci];
    struct kcache_slab* s = bad;
    const struct kcache_geometry* g;
    size_t slot;
    do {
        kcache_quarantine(kc, c, s);
        kcache_rebuild(kc, ci);
        s = c->partial != NULL ? c->partial : kcache_refill(kc, ci);
        if (s == NULL) {
            return NULL; /* no sound slab left and no room for a new one */
        }
        g = kcache_slab_ok(kc, s);
        slot = g != NULL && s->inuse < g->capacity ? kcache_take_slot(kc, s, g) : SIZE_MAX;
    } while (slot == SIZE_MAX);
    return kcache_hand_out(kc, c, s, g, slot);
}

KCACHE_HOT void* kcache_alloc_small(struct kcache* kc, size_t ci)
{
    struct kcache_class* c = &kc->classes[ci];
    struct kcache_slab* s = c->partial;
    if (KCACHE_UNLIKELY(s == NULL)) {
        s = kcache_refill(kc, ci);
        if (s == NULL) {
            return NULL;
        }
    }
    /* Verify before changing anything; a sealed partial slab is never full. */
    const struct kcache_geometry* g = kcache_slab_ok(kc, s);
    if (KCACHE_UNLIKELY(g == NULL || s->inuse >= g->capacity)) {
        return kcache_alloc_recover(kc, ci, s);
    }
    size_t slot = kcache_take_slot(kc, s, g);
    if (KCACHE_UNLIKELY(slot == SIZE_MAX)) { /* a sealed bitmap that disagrees with inuse */
        return kcache_alloc_recover(kc, ci, s);
    }
    return kcache_hand_out(kc, c, s, g, slot);
}

/*
 * The verified slab s has just emptied, and a neighbour its links name is
 * a slab whose header fails its check (the other links back, or is corrupt
 * too): whether s is on the list cannot be known, and unlinking it would
 * trust a corrupt header's links, keeping it would leave a link to s behind
 * if it is. So each corrupt neighbour is quarantined (reported once) and the
 * class's list rebuilt from the table, as when kmalloc meets a corrupt head;
 * the rebuild makes s the spare or gives it back. Cold: only after a
 * corruption.
 */
static __attribute__((noinline, cold)) void kcache_free_recover(struct kcache* kc, struct kcache_class* c,
                                                                struct kcache_slab* s, enum kcache_link prev,
                                                                enum kcache_link next)
{
    if (prev == KCACHE_LINK_CORRUPT) {
        kcache_quarantine(kc, c, s->prev);
    }
    if (next == KCACHE_LINK_CORRUPT) {
        kcache_quarantine(kc, c, s->next);
    }
    kcache_rebuild(kc, (size_t)(c - kc->classes));
}

/* s went from full to partial, or to empty: move it (list, spare, heap). */
static void kcache_free_moved(struct kcache* kc, struct kcache_slab* s, const struct kcache_geometry* g,
                              bool was_full)
{
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    if (s->inuse != 0) {
        kcache_list_push(kc, c, s);
        return;
    }
    enum kcache_link prev = was_full ? KCACHE_LINK_STALE : kcache_link_of(kc, c, s, false);
    enum kcache_link next = was_full ? KCACHE_LINK_STALE : kcache_link_of(kc, c, s, true);
    if (prev == KCACHE_LINK_BACK && next == KCACHE_LINK_BACK) {
        kcache_list_unlink(kc, c, s); /* both neighbours verified */
    } else if (prev != KCACHE_LINK_STALE && next != KCACHE_LINK_STALE) {
        kcache_free_recover(kc, c, s, prev, next);
        return;
    } else { /* full: links NULL already; off the list: stale links, never followed */
        kcache_set_next(kc, s, NULL);
        kcache_set_prev(kc, s, NULL);
    }
    if (c->spare == NULL) { /* hysteresis: keep one empty slab per class */
        c->spare = s;
    } else {
        kcache_release(kc, s, g);
    }
}

KCACHE_HOT void kcache_free_small(struct kcache* kc, void* ptr, size_t first)
{
    struct kcache_slab* s = kcache_slab_at(kc, first);
    const struct kcache_geometry* g = kcache_slab_ok(kc, s);
    if (KCACHE_UNLIKELY(g == NULL)) {
        kc->corruptions++;
        kcache_reject(kc, HEAP_REPORT_FREE_CORRUPT, ptr);
        return;
    }
    size_t slot = kcache_slot_of(kc, s, g, ptr);
    if (KCACHE_UNLIKELY(slot == SIZE_MAX)) {
        kcache_reject(kc, HEAP_REPORT_CACHE_BAD_FREE, ptr);
        return;
    }
    struct kcache_class* c = &kc->classes[kcache_shape_class(s->shape)];
    size_t w = slot / KCACHE_WORD_BITS;
    uintptr_t mask = (uintptr_t)1 << (slot % KCACHE_WORD_BITS);
    bool was_full = s->inuse == g->capacity;
    s->bitmap[w] &= ~mask;
    s->inuse--;
    s->check -= mask * kc->keys[KCACHE_W_BITMAP + w] + kc->keys[KCACHE_W_INUSE];
    c->objects--;
    if (KCACHE_UNLIKELY(kc->flags & KCACHE_FLAG_POISON)) {
        memset(kcache_object(s, g, c->size, slot), KCACHE_POISON_BYTE, c->size);
    }
    if (was_full || s->inuse == 0) {
        kcache_free_moved(kc, s, g, was_full);
    }
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
