/*
 * kcache_check.c - the checker of the small-object caches: every invariant
 * of docs/kcache.md ("kcache_check"), from the table up; and the other
 * questions that never write: what kfree would do with a pointer
 * (kcache_lookup, for ksize and krealloc), ksize, the counters.
 * Shares the slab header and its verification with kcache.c through
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
        const struct kcache_slab* s = kcache_slab_at(kc, first);
        const struct kcache_geometry* g = kcache_slab_ok(kc, s);
        if (g == NULL || kcache_slot_of(kc, s, g, ptr) == SIZE_MAX) {
            return false;
        }
        ref->small = true;
        ref->blocks = 0;
        ref->usable = kc->classes[kcache_shape_class(s->shape)].size;
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

/* Counters (O(KCACHE_CLASSES)): the caches' own, and the classes' summed. */
void kcache_get_stats(const struct kcache* kc, struct kcache_stats* stats)
{
    memset(stats, 0, sizeof(*stats));
    stats->slabs = kc->slabs;
    stats->slab_blocks = kc->slab_blocks;
    stats->corruptions = kc->corruptions;
    stats->use_after_free = kc->use_after_free;
    stats->forced_failures = kc->forced_failures;
    stats->list_rebuilds = kc->rebuilds;
    stats->rebuild_corrupt_slabs = kc->rebuild_corrupt;
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        const struct kcache_class* c = &kc->classes[ci];
        stats->quarantined_slabs += c->quarantined;
        stats->spare_slabs += c->spare != NULL;
        stats->objects += c->objects;
        stats->object_bytes += c->objects * c->size;
    }
}

/* What the table scan finds per class, compared with the class afterwards. */
struct kcache_census
{
    size_t slabs;
    size_t partial;
    size_t objects;
};

/* First byte of a free object that is not poison, or NULL. */
static const unsigned char* kcache_poison_broken(const struct kcache_slab* s, const struct kcache_geometry* g,
                                                 size_t size)
{
    for (size_t slot = 0; slot < g->capacity; slot++) {
        const unsigned char* object = kcache_object(s, g, size, slot);
        for (size_t i = 0; i < size && !kcache_slot_live(s, slot); i++) {
            if (object[i] != KCACHE_POISON_BYTE) {
                return &object[i];
            }
        }
    }
    return NULL;
}

/* One CACHE allocation of n blocks at `first`, on its own. Returns the bad
 * block or SIZE_MAX, and counts it into its class's census. */
static size_t kcache_check_slab(const struct kcache* kc, size_t first, size_t n, struct kcache_census* census)
{
    const struct kcache_slab* s = kcache_slab_at(kc, first);
    const struct kcache_geometry* g = kcache_slab_sound(kc, s, n);
    if (g == NULL) {
        return first;
    }
    size_t ci = kcache_shape_class(s->shape);
    bool listed = s->inuse > 0 && s->inuse < g->capacity;
    bool spare = s->inuse == 0;
    if ((spare && kc->classes[ci].spare != s) || (!listed && (s->next != NULL || s->prev != NULL))) {
        return first;
    }
    if (kc->flags & KCACHE_FLAG_POISON) {
        const unsigned char* broken = kcache_poison_broken(s, g, kc->classes[ci].size);
        if (broken != NULL) {
            return heap_address_to_block(kc->heap, broken);
        }
    }
    census[ci].slabs++;
    census[ci].partial += listed;
    census[ci].objects += s->inuse;
    return SIZE_MAX;
}

/* The class's list and spare against the census. On failure *bad is the
 * offending slab's block, or SIZE_MAX for a bad pointer or counter. */
static bool kcache_check_class(const struct kcache* kc, size_t ci, const struct kcache_census* census, size_t* bad)
{
    const struct kcache_class* c = &kc->classes[ci];
    const struct kcache_slab* prev = NULL;
    size_t count = 0;
    *bad = SIZE_MAX;
    for (const struct kcache_slab* s = c->partial; s != NULL; s = s->next) {
        size_t block = kcache_listed_block(kc, s);
        /* The table scan checked the header; here: it is of this class,
         * partial, linked both ways, and the walk cannot loop (count bound). */
        if (block == SIZE_MAX || kcache_shape_class(s->shape) != ci || s->inuse == 0 ||
            s->inuse >= kcache_geometry_of(kc, s->shape)->capacity || s->prev != prev || ++count > census->partial) {
            *bad = block;
            return false;
        }
        prev = s;
    }
    if (c->spare != NULL) {
        size_t block = kcache_listed_block(kc, c->spare);
        if (block == SIZE_MAX || kcache_shape_class(c->spare->shape) != ci || c->spare->inuse != 0) {
            *bad = block;
            return false;
        }
    }
    return count == census->partial && count == c->partial_slabs && census->slabs == c->slabs &&
           census->objects == c->objects;
}

static int kcache_check_fail(size_t* bad_block, size_t block)
{
    if (bad_block != NULL) {
        *bad_block = block;
    }
    return -ECORRUPT;
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
    size_t n;
    for (size_t i = 0, first; (first = kcache_next_slab(kc, &i, &n)) != SIZE_MAX;) {
        size_t bad = kcache_check_slab(kc, first, n, census);
        if (bad != SIZE_MAX) {
            return kcache_check_fail(bad_block, bad);
        }
        slabs++;
        blocks += n;
    }
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        size_t bad = SIZE_MAX;
        if (!kcache_check_class(kc, ci, &census[ci], &bad)) {
            return kcache_check_fail(bad_block, bad);
        }
    }
    if (slabs != kc->slabs || blocks != kc->slab_blocks) {
        return kcache_check_fail(bad_block, SIZE_MAX);
    }
    return PEACHOS_ALL_OK;
}
