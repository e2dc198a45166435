/*
 * kcache_check.c - the checker of the small-object caches: every invariant
 * of docs/kcache.md ("kcache_check"), from the block table and the slab
 * table up; and the other questions that never write: what kfree would do
 * with a pointer (kcache_lookup, for ksize and krealloc), ksize, the
 * counters. Shares the reads of the slab table with kcache.c through
 * kcache_internal.h; needs heap.c / heap_check.c only, not kcache.c.
 */
#include "kcache_internal.h"
#include "heap_status.h"

#include "../memory.h"

/* What kcache_free would do with ptr, without doing it (kcache_internal.h). */
bool kcache_lookup(const struct kcache* kc, const void* ptr, struct kcache_ref* ref)
{
    const struct heap* heap = kc->heap;
    size_t first = heap_allocation_start(heap, ptr);
    if (first == SIZE_MAX) {
        return false;
    }
    ref->first = first;
    if ((heap->table->entries[first] & HEAP_BLOCK_TYPE_MASK) == HEAP_BLOCK_TYPE_CACHE) {
        uint8_t shape = kcache_record(kc, first)->shape;
        const struct kcache_geometry* g = kcache_geometry_of(kc, shape);
        const struct kcache_class* c = &kc->classes[kcache_shape_class(shape)];
        if (g == NULL || kcache_slot_of(kc, first, g, c, ptr) == SIZE_MAX) {
            return false;
        }
        ref->small = true;
        ref->blocks = 0;
        ref->usable = c->size;
        return true;
    }
    size_t bad;
    size_t n = heap_chain_length(heap->table, first, HEAP_BLOCK_TYPE_PLAIN, &bad); /* as heap_free decides */
    if (n == 0 || ptr != heap_block_to_address(heap, first)) {
        return false;
    }
    ref->small = false;
    ref->blocks = n;
    ref->usable = n * KCACHE_BS;
    return true;
}

size_t kcache_size(const struct kcache* kc, const void* ptr)
{
    struct kcache_ref ref;
    if (kc == NULL || ptr == NULL || !kcache_lookup(kc, ptr, &ref)) {
        return 0;
    }
    return ref.usable;
}

/* Objects of class ci in the CPUs' magazines (exact while they are quiet). */
static size_t kcache_held(const struct kcache* kc, size_t ci)
{
    size_t n = 0;
#if PEACHOS_KCACHE_MAGAZINES
    for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
        n += kc->cpus[cpu].mags[ci].count;
    }
#else
    (void)kc;
    (void)ci;
#endif
    return n;
}

/* Counters (O(KCACHE_CLASSES)): the caches' own, and the classes' summed. */
void kcache_get_stats(const struct kcache* kc, struct kcache_stats* stats)
{
    memset(stats, 0, sizeof(*stats));
    stats->slabs = kc->slabs;
    stats->slab_blocks = kc->slab_blocks;
    stats->corruptions = kc->corruptions;
    stats->use_after_free = kc->use_after_free;
    stats->forced_failures = kc->forced_failures;
    stats->table_bytes = kcache_table_bytes(kc->blocks);
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        const struct kcache_class* c = &kc->classes[ci];
        stats->spare_slabs += c->spare != KCACHE_NONE;
        size_t objects = c->objects - kcache_held(kc, ci); /* live: taken, not in a magazine */
        stats->objects += objects;
        stats->object_bytes += objects * c->size;
    }
}

/* What the table scan finds per class, compared with the class afterwards. */
struct kcache_census
{
    size_t slabs;
    size_t partial;
    size_t objects; /* taken */
    size_t live;    /* held by callers (the magazine build; = objects otherwise) */
};

/* First byte of a free object that is not poison, or NULL. */
static const unsigned char* kcache_poison_broken(const struct kcache* kc, size_t first,
                                                 const struct kcache_geometry* g, size_t size)
{
    for (size_t slot = 0; slot < g->capacity; slot++) {
        const unsigned char* object = kcache_object(kc, first, size, slot);
        for (size_t i = 0; i < size && !kcache_slot_live(kc, first, slot); i++) {
            if (object[i] != KCACHE_POISON_BYTE) {
                return &object[i];
            }
        }
    }
    return NULL;
}

static size_t kcache_popcount(uintptr_t w)
{
    size_t n = 0;
    for (; w != 0; w &= w - 1) {
        n++;
    }
    return n;
}

/* Live objects the bitmap of the slab at `first` holds, or SIZE_MAX if a
 * padding bit (from the capacity to the end of its words) is clear or a
 * word after them is not 0. */
static size_t kcache_bitmap_live(const struct kcache* kc, size_t first, const struct kcache_geometry* g)
{
    size_t live = 0;
    for (size_t w = 0; w < (size_t)g->blocks * KCACHE_BLOCK_WORDS; w++) {
        uintptr_t word = *kcache_word(kc, first, w);
        if (w >= g->words && word != 0) {
            return SIZE_MAX;
        }
        live += kcache_popcount(word);
    }
    for (size_t bit = g->capacity; bit < (size_t)g->words * KCACHE_WORD_BITS; bit++) {
        if (!kcache_slot_live(kc, first, bit)) {
            return SIZE_MAX;
        }
        live--;
    }
    return live;
}

#if PEACHOS_KCACHE_MAGAZINES
/* Atomic: the per-CPU paths change live words without the lock. */
static uintptr_t kcache_live_load(const struct kcache* kc, size_t block, size_t w)
{
    return __atomic_load_n(&kc->live[block * KCACHE_BLOCK_WORDS + w], __ATOMIC_ACQUIRE);
}

/* The live objects of the slab at `first` (n blocks, geometry g, class
 * size `size`), or SIZE_MAX if a live bit is set anywhere but at the
 * start of a taken object. Sound while CPUs run: a bit is set only on a
 * taken object, and taken changes only under the lock. */
static size_t kcache_slab_live(const struct kcache* kc, size_t first, size_t n, const struct kcache_geometry* g,
                               size_t size)
{
    size_t live = 0;
    for (size_t b = 0; b < n; b++) {
        for (size_t w = 0; w < KCACHE_BLOCK_WORDS; w++) {
            for (uintptr_t word = kcache_live_load(kc, first + b, w); word != 0; word &= word - 1) {
                size_t at = b * KCACHE_BS + (w * KCACHE_WORD_BITS + (size_t)__builtin_ctzl((unsigned long)word)) * KCACHE_ALIGN;
                if (at % size != 0 || at / size >= g->capacity || !kcache_slot_live(kc, first, at / size)) {
                    return SIZE_MAX;
                }
                live++;
            }
        }
    }
    return live;
}

static bool kcache_live_clear_words(const struct kcache* kc, size_t b)
{
    for (size_t w = 0; w < KCACHE_BLOCK_WORDS; w++) {
        if (kcache_live_load(kc, b, w) != 0) {
            return false;
        }
    }
    return true;
}
#define KCACHE_SLAB_LIVE(kc, first, n, g, size, inuse) kcache_slab_live((kc), (first), (n), (g), (size))
#define KCACHE_LIVE_CLEAR(kc, b) kcache_live_clear_words((kc), (b))
#else
#define KCACHE_SLAB_LIVE(kc, first, n, g, size, inuse) ((size_t)(inuse))
#define KCACHE_LIVE_CLEAR(kc, b) true
#endif

/* The first of the records [from, to) that is not clear, or SIZE_MAX. A
 * clear record has every field 0 and, with `words`, its words too (the
 * words of a slab's other blocks hold its bitmap). */
static size_t kcache_unclear_record(const struct kcache* kc, size_t from, size_t to, bool words)
{
    for (size_t b = from; b < to; b++) {
        const struct kcache_slab* s = kcache_record(kc, b);
        bool clear = s->next == 0 && s->prev == 0 && s->inuse == 0 && s->shape == 0 && s->unused == 0;
        for (size_t w = 0; words && w < KCACHE_BLOCK_WORDS; w++) {
            clear = clear && s->bits[w] == 0;
        }
        clear = clear && (!words || KCACHE_LIVE_CLEAR(kc, b));
        if (!clear) {
            return b;
        }
    }
    return SIZE_MAX;
}

/* The slab at `first` (its record sound) has free and live objects. */
static bool kcache_partial(const struct kcache* kc, size_t first)
{
    const struct kcache_slab* s = kcache_record(kc, first);
    return s->inuse > 0 && s->inuse < kcache_geometry_of(kc, s->shape)->capacity;
}

/* The record of the CACHE allocation of n blocks at `first`: a geometry n
 * blocks long, inuse <= capacity and matching the bitmap, links as its
 * state wants (none unless partial), the other blocks' records clear. */
static const struct kcache_geometry* kcache_slab_sound(const struct kcache* kc, size_t first, size_t n)
{
    const struct kcache_slab* s = kcache_record(kc, first);
    const struct kcache_geometry* g = kcache_geometry_of(kc, s->shape);
    if (g == NULL || g->blocks != n || s->unused != 0 || s->inuse > g->capacity ||
        kcache_bitmap_live(kc, first, g) != s->inuse || kcache_unclear_record(kc, first + 1, first + n, false) != SIZE_MAX) {
        return NULL;
    }
    bool listed = kcache_partial(kc, first);
    bool unlinked = s->next == KCACHE_NONE && s->prev == KCACHE_NONE;
    return listed || unlinked ? g : NULL;
}

/* One CACHE allocation of n blocks at `first`, on its own. Returns the bad
 * block or SIZE_MAX, and counts it into its class's census. */
static size_t kcache_check_slab(const struct kcache* kc, size_t first, size_t n, struct kcache_census* census)
{
    const struct kcache_geometry* g = kcache_slab_sound(kc, first, n);
    if (g == NULL) {
        return first;
    }
    const struct kcache_slab* s = kcache_record(kc, first);
    size_t ci = kcache_shape_class(s->shape);
    if (s->inuse == 0 && kc->classes[ci].spare != first) {
        return first;
    }
    if (kc->flags & KCACHE_FLAG_POISON) {
        const unsigned char* broken = kcache_poison_broken(kc, first, g, kc->classes[ci].size);
        if (broken != NULL) {
            return heap_address_to_block(kc->heap, broken);
        }
    }
    size_t live = KCACHE_SLAB_LIVE(kc, first, n, g, kc->classes[ci].size, s->inuse);
    if (live == SIZE_MAX) {
        return first;
    }
    census[ci].slabs++;
    census[ci].partial += kcache_partial(kc, first);
    census[ci].objects += s->inuse;
    census[ci].live += live;
    return SIZE_MAX;
}

/* A block named by a list head, a link or a spare: the start of a sound
 * slab (the table scan has checked every one) of class ci. */
static bool kcache_names_slab(const struct kcache* kc, uint32_t b, size_t ci)
{
    if (b >= kc->blocks) {
        return false;
    }
    const struct heap_table* table = kc->heap->table;
    HEAP_BLOCK_TABLE_ENTRY want = HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_CACHE;
    uint8_t shape = kcache_record(kc, b)->shape;
    return (table->entries[b] & (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT) == want && shape != 0 &&
           kcache_shape_class(shape) == ci;
}

/* The class's list and spare against the census. On failure *bad is the
 * block whose record holds the bad link (a forward link naming no partial
 * slab of the class, or one too many; a wrong back link), the block a bad
 * list head or spare names, or SIZE_MAX for one past the heap or a counter. */
static bool kcache_check_class(const struct kcache* kc, size_t ci, const struct kcache_census* census, size_t* bad)
{
    const struct kcache_class* c = &kc->classes[ci];
    uint32_t prev = KCACHE_NONE;
    size_t count = 0;
    *bad = SIZE_MAX;
    for (uint32_t b = c->partial; b != KCACHE_NONE; b = kcache_record(kc, b)->next) {
        /* The table scan checked the record; here: it is of this class,
         * partial, linked both ways, and the walk cannot loop (count bound). */
        if (!kcache_names_slab(kc, b, ci) || !kcache_partial(kc, b) || ++count > census->partial) {
            /* The record holding the bad link; for a bad head, the block it names. */
            *bad = prev != KCACHE_NONE ? prev : b < kc->blocks ? b : SIZE_MAX;
            return false;
        }
        if (kcache_record(kc, b)->prev != prev) {
            *bad = b; /* a partial slab of the class whose back link is wrong */
            return false;
        }
        prev = b;
    }
    if (c->spare != KCACHE_NONE && (!kcache_names_slab(kc, c->spare, ci) || kcache_record(kc, c->spare)->inuse != 0)) {
        *bad = c->spare < kc->blocks ? c->spare : SIZE_MAX;
        return false;
    }
    return count == census->partial && count == c->partial_slabs && census->slabs == c->slabs &&
           census->objects == c->objects;
}

#if PEACHOS_KCACHE_MAGAZINES
/* A magazine entry of class ci: the start of a taken, not live object of
 * a slab of that class. */
static bool kcache_mag_entry_sound(const struct kcache* kc, size_t ci, const void* p)
{
    uintptr_t offset = (uintptr_t)p - kc->pool;
    if (offset / KCACHE_BS >= kc->blocks || offset % KCACHE_ALIGN != 0) {
        return false;
    }
    size_t first = heap_allocation_start(kc->heap, p);
    if (first == SIZE_MAX || (kc->entries[first] & HEAP_BLOCK_TYPE_MASK) != HEAP_BLOCK_TYPE_CACHE) {
        return false;
    }
    uint8_t shape = kcache_record(kc, first)->shape;
    const struct kcache_geometry* g = kcache_geometry_of(kc, shape);
    size_t size = kc->classes[ci].size;
    size_t at = offset - first * KCACHE_BS;
    return g != NULL && kcache_shape_class(shape) == ci && at % size == 0 && at / size < g->capacity &&
           kcache_slot_live(kc, first, at / size) && !kcache_is_live(kc, p);
}

/* Entry i of CPU cpu's magazine of class ci appears in no quiet magazine
 * before it (other classes cannot hold it: the class is checked). */
static bool kcache_mag_entry_unique(const struct kcache* kc, uint32_t busy, size_t ci, size_t cpu, size_t i)
{
    const void* p = kc->cpus[cpu].mags[ci].objects[i];
    for (size_t k = 0; k <= cpu; k++) {
        const struct kcache_mag* m = &kc->cpus[k].mags[ci];
        for (size_t j = 0; !(busy >> k & 1u) && j < (k == cpu ? i : m->count); j++) {
            if (m->objects[j] == p) {
                return false;
            }
        }
    }
    return true;
}

/* The magazines of class ci of every quiet CPU (not in `busy`): sound,
 * unique entries, and taken = live + in a magazine (with busy CPUs, whose
 * magazines cannot be read: at least). *bad as kcache_check_class's. */
static bool kcache_check_mags(const struct kcache* kc, uint32_t busy, size_t ci, const struct kcache_census* census,
                              size_t* bad)
{
    size_t held = 0;
    *bad = SIZE_MAX;
    for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
        const struct kcache_mag* m = &kc->cpus[cpu].mags[ci];
        if (busy >> cpu & 1u) {
            continue;
        }
        if (m->count >= m->limit || m->limit != kc->cpus[0].mags[ci].limit || m->limit > KCACHE_MAG_SIZE) {
            return false;
        }
        for (size_t i = 0; i < m->count; i++) {
            const void* p = m->objects[i];
            if (!kcache_mag_entry_sound(kc, ci, p) || !kcache_mag_entry_unique(kc, busy, ci, cpu, i)) {
                *bad = (uintptr_t)p - kc->pool < kc->blocks * KCACHE_BS ? ((uintptr_t)p - kc->pool) / KCACHE_BS
                                                                         : SIZE_MAX;
                return false;
            }
        }
        held += m->count;
    }
    size_t unheld = census->objects - census->live; /* taken, not live: in magazines */
    return census->live <= census->objects && (busy != 0 ? unheld >= held : unheld == held);
}
#define KCACHE_CHECK_MAGS(kc, busy, ci, census, bad) kcache_check_mags((kc), (busy), (ci), (census), (bad))
#define KCACHE_BUSY(kc) ((kc)->busy != NULL ? (kc)->busy() : 0u)
#else
#define KCACHE_CHECK_MAGS(kc, busy, ci, census, bad) ((void)(busy), true)
#define KCACHE_BUSY(kc) 0u
#endif

static int kcache_check_fail(size_t* bad_block, size_t block)
{
    if (bad_block != NULL) {
        *bad_block = block;
    }
    return -ECORRUPT;
}

/* Every slab of the table, and the records between them. The bad block,
 * or SIZE_MAX; the census and the totals filled. */
static size_t kcache_check_table(const struct kcache* kc, struct kcache_census* census, size_t* slabs,
                                 size_t* blocks)
{
    size_t n;
    size_t end = 0; /* first block after the last slab checked */
    for (size_t i = 0, first; (first = kcache_next_slab(kc, &i, &n)) != SIZE_MAX;) {
        size_t bad = kcache_unclear_record(kc, end, first, true);
        if (bad == SIZE_MAX) {
            bad = kcache_check_slab(kc, first, n, census);
        }
        if (bad != SIZE_MAX) {
            return bad;
        }
        (*slabs)++;
        *blocks += n;
        end = first + n;
    }
    return kcache_unclear_record(kc, end, kc->blocks, true);
}

int kcache_check(const struct kcache* kc, size_t* bad_block)
{
    if (kc == NULL || kc->heap == NULL) {
        return -EINVARG;
    }
    int res = heap_check(kc->heap, bad_block);
    if (res != PEACHOS_ALL_OK) {
        return res;
    }
    const struct heap_table* table = kc->heap->table;
    if (kc->pool != (uintptr_t)kc->heap->saddr || kc->entries != table->entries || kc->blocks != table->total) {
        return kcache_check_fail(bad_block, SIZE_MAX); /* the copies of the heap's geometry */
    }
    struct kcache_census census[KCACHE_CLASSES];
    memset(census, 0, sizeof(census));
    size_t slabs = 0;
    size_t blocks = 0;
    size_t bad = kcache_check_table(kc, census, &slabs, &blocks);
    if (bad != SIZE_MAX) {
        return kcache_check_fail(bad_block, bad);
    }
    uint32_t busy = KCACHE_BUSY(kc); /* CPUs whose magazines may be changing now */
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        if (!kcache_check_class(kc, ci, &census[ci], &bad) || !KCACHE_CHECK_MAGS(kc, busy, ci, &census[ci], &bad)) {
            return kcache_check_fail(bad_block, bad);
        }
    }
    if (slabs != kc->slabs || blocks != kc->slab_blocks) {
        return kcache_check_fail(bad_block, SIZE_MAX);
    }
    return PEACHOS_ALL_OK;
}
