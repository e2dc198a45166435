/*
 * multiheap.c - one block heap per region, first fit across them by address
 * (multiheap.h). Calls heap.c through heap.h and heap_internal.h,
 * heap_index.c for indexed regions, heap_check.c and memory.c; writes no
 * table byte itself.
 */
#include "multiheap.h"
#include "heap_index.h"
#include "heap_setup.h"
#include "heap_status.h"

#include "../memory.h"

#define MULTIHEAP_BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)

/* The memory a region covers: its pool, its table entries, its index. All
 * of one region must be disjoint from all of every other (I3, I5). */
struct multiheap_span
{
    const void* at;
    size_t bytes;
};
#define MULTIHEAP_SPANS 3

static size_t multiheap_blocks_of(size_t size)
{
    return size / MULTIHEAP_BS + (size % MULTIHEAP_BS != 0);
}

static void multiheap_spans_of(const void* start, size_t blocks, const void* entries, const void* index,
                               struct multiheap_span out[MULTIHEAP_SPANS])
{
    out[0].at = start;
    out[0].bytes = blocks * MULTIHEAP_BS;
    out[1].at = entries;
    out[1].bytes = blocks;
    out[2].at = index;
    out[2].bytes = index != NULL ? heap_index_bytes(blocks) : 0;
}

static void multiheap_region_spans(const struct multiheap_region* r, struct multiheap_span out[MULTIHEAP_SPANS])
{
    multiheap_spans_of(r->heap.saddr, r->table.total, r->table.entries, r->heap.index, out);
}

static bool multiheap_spans_overlap(const struct multiheap_span a[MULTIHEAP_SPANS],
                                    const struct multiheap_span b[MULTIHEAP_SPANS])
{
    for (size_t i = 0; i < MULTIHEAP_SPANS; i++) {
        for (size_t j = 0; j < MULTIHEAP_SPANS; j++) {
            if (heap_ranges_overlap(a[i].at, a[i].bytes, b[j].at, b[j].bytes)) {
                return true;
            }
        }
    }
    return false;
}

/* The region of rank k (k-th by address). */
static const struct multiheap_region* multiheap_at(const struct multiheap* mh, size_t k)
{
    PEACHOS_HEAP_ASSERT(k < mh->count && mh->order[k] < MULTIHEAP_MAX_REGIONS);
    return &mh->slot[mh->order[k]];
}

static struct heap* multiheap_heap_at(struct multiheap* mh, size_t k)
{
    PEACHOS_HEAP_ASSERT(k < mh->count && mh->order[k] < MULTIHEAP_MAX_REGIONS);
    return &mh->slot[mh->order[k]].heap;
}

static uintptr_t multiheap_start(const struct multiheap* mh, size_t k)
{
    return (uintptr_t)multiheap_at(mh, k)->heap.saddr;
}

/* Rank of the region whose pool holds ptr, SIZE_MAX if none: the last
 * region starting at or below ptr, if ptr is inside it. O(log regions). */
static size_t multiheap_find(const struct multiheap* mh, const void* ptr)
{
    uintptr_t address = (uintptr_t)ptr;
    size_t lo = 0;
    size_t hi = mh->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (multiheap_start(mh, mid) <= address) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0 || (address - multiheap_start(mh, lo - 1)) / MULTIHEAP_BS >= multiheap_at(mh, lo - 1)->table.total) {
        return SIZE_MAX;
    }
    return lo - 1;
}

int multiheap_init(struct multiheap* mh)
{
    if (mh == NULL) {
        return -EINVARG;
    }
    memset(mh, 0, sizeof(*mh));
    return PEACHOS_ALL_OK;
}

/* May the region `spans` join: apart from *mh and from every region? */
static bool multiheap_room_for(const struct multiheap* mh, const struct multiheap_span spans[MULTIHEAP_SPANS])
{
    for (size_t i = 0; i < MULTIHEAP_SPANS; i++) {
        if (heap_ranges_overlap(spans[i].at, spans[i].bytes, mh, sizeof(*mh))) {
            return false;
        }
    }
    for (size_t k = 0; k < mh->count; k++) {
        struct multiheap_span other[MULTIHEAP_SPANS];
        multiheap_region_spans(multiheap_at(mh, k), other);
        if (multiheap_spans_overlap(spans, other)) {
            return false;
        }
    }
    return true;
}

/* Put slot `s`, starting at `start`, at its rank in order[]. */
static void multiheap_insert_sorted(struct multiheap* mh, size_t s, uintptr_t start)
{
    size_t k = mh->count;
    while (k > 0 && multiheap_start(mh, k - 1) > start) {
        mh->order[k] = mh->order[k - 1];
        k--;
    }
    mh->order[k] = s;
    mh->count++;
}

int multiheap_add_region(struct multiheap* mh, void* start, void* end, HEAP_BLOCK_TABLE_ENTRY* table_mem,
                         void* index_mem, size_t index_bytes)
{
    if (mh == NULL || mh->count >= MULTIHEAP_MAX_REGIONS) {
        return -EINVARG;
    }
    size_t bytes = (uintptr_t)end > (uintptr_t)start ? (size_t)((uintptr_t)end - (uintptr_t)start) : 0;
    size_t blocks = bytes / MULTIHEAP_BS;
    struct multiheap_span spans[MULTIHEAP_SPANS];
    multiheap_spans_of(start, blocks, table_mem, index_mem, spans);
    if (!multiheap_room_for(mh, spans)) {
        return -EINVARG;
    }
    size_t s = mh->count; /* regions are never removed: the next slot is free */
    struct multiheap_region* r = &mh->slot[s];
    int res = heap_setup(&r->heap, &r->table, start, end, table_mem, index_mem, index_bytes);
    if (res < 0) {
        return res; /* nothing written */
    }
    heap_set_report(&r->heap, mh->report, mh->report_ctx);
    mh->total_blocks += blocks;
    multiheap_insert_sorted(mh, s, (uintptr_t)start);
    return PEACHOS_ALL_OK;
}

/* Has this region a run of n free blocks? The index answers in O(1) (its
 * longest run); without one, the scan heap_malloc would make. Asking first
 * keeps a region's failed_allocs for requests it really failed. */
static bool multiheap_fits(const struct heap* heap, size_t n)
{
    if (heap->index == NULL) {
        return heap_scan_first_fit(heap->table, n) != SIZE_MAX;
    }
    struct heap_stats stats;
    heap_get_stats(heap, &stats);
    return stats.largest_free_run >= n;
}

/* First fit across the regions, lowest address first. A region whose
 * index claims a run its table lacks refuses (and reports) in heap_malloc;
 * the next region is tried. */
static void* multiheap_malloc_blocks(struct multiheap* mh, size_t n)
{
    PEACHOS_HEAP_ASSERT(n >= 1);
    for (size_t k = 0; k < mh->count; k++) {
        struct heap* heap = multiheap_heap_at(mh, k);
        void* ptr = multiheap_fits(heap, n) ? heap_malloc_blocks_typed(heap, n, HEAP_BLOCK_TYPE_PLAIN) : NULL;
        if (ptr != NULL) {
            return ptr;
        }
    }
    mh->failed_allocs++;
    return NULL;
}

void* multiheap_malloc(struct multiheap* mh, size_t size)
{
    size_t n = multiheap_blocks_of(size);
    if (mh == NULL || n == 0) {
        return NULL;
    }
    return multiheap_malloc_blocks(mh, n);
}

void* multiheap_zalloc(struct multiheap* mh, size_t size)
{
    void* ptr = multiheap_malloc(mh, size);
    if (ptr != NULL) {
        memset(ptr, 0x00, size);
    }
    return ptr;
}

static void multiheap_reject(struct multiheap* mh, const void* ptr)
{
    mh->rejected_outside++;
    if (mh->report != NULL) {
        struct heap_report report = { HEAP_REPORT_FREE_OUTSIDE, ptr, SIZE_MAX };
        mh->report(mh->report_ctx, &report);
    }
}

void multiheap_free(struct multiheap* mh, void* ptr)
{
    if (mh == NULL || ptr == NULL) {
        return;
    }
    size_t k = multiheap_find(mh, ptr);
    if (k == SIZE_MAX) {
        multiheap_reject(mh, ptr);
        return;
    }
    heap_free(multiheap_heap_at(mh, k), ptr);
}

/* Move the `have`-block allocation at ptr (in `heap`) to `want` blocks at
 * the first fit across the regions: copy, then free. */
static void* multiheap_move(struct multiheap* mh, struct heap* heap, void* ptr, size_t have, size_t want)
{
    void* moved = multiheap_malloc_blocks(mh, want);
    if (moved != NULL) {
        memcpy(moved, ptr, have * MULTIHEAP_BS);
        heap_free(heap, ptr);
    }
    return moved;
}

void* multiheap_realloc(struct multiheap* mh, void* ptr, size_t size)
{
    if (mh == NULL || ptr == NULL) {
        return multiheap_malloc(mh, size);
    }
    size_t k = multiheap_find(mh, ptr);
    if (k == SIZE_MAX) {
        multiheap_reject(mh, ptr);
        return NULL;
    }
    struct heap* heap = multiheap_heap_at(mh, k);
    size_t have = heap_allocation_size(heap, ptr) / MULTIHEAP_BS;
    size_t want = multiheap_blocks_of(size);
    if (have == 0 || want <= have) {
        return heap_realloc(heap, ptr, size); /* refuses, frees (size 0) or shrinks in place */
    }
    if (heap_grow_in_place(heap, heap_address_to_block(heap, ptr), have, want)) {
        return ptr;
    }
    return multiheap_move(mh, heap, ptr, have, want);
}

size_t multiheap_allocation_size(const struct multiheap* mh, const void* ptr)
{
    size_t k = mh != NULL && ptr != NULL ? multiheap_find(mh, ptr) : SIZE_MAX;
    return k == SIZE_MAX ? 0 : heap_allocation_size(&multiheap_at(mh, k)->heap, ptr);
}

bool multiheap_is_address_within_heap(const struct multiheap* mh, const void* ptr)
{
    return mh != NULL && multiheap_find(mh, ptr) != SIZE_MAX;
}

struct heap* multiheap_region(struct multiheap* mh, size_t k)
{
    return mh != NULL && k < mh->count ? multiheap_heap_at(mh, k) : NULL;
}

struct heap* multiheap_get_heap_for_address(struct multiheap* mh, const void* ptr)
{
    return mh != NULL ? multiheap_region(mh, multiheap_find(mh, ptr)) : NULL;
}

void multiheap_set_report(struct multiheap* mh, heap_report_fn fn, void* ctx)
{
    if (mh == NULL) {
        return;
    }
    mh->report = fn;
    mh->report_ctx = ctx;
    for (size_t k = 0; k < mh->count; k++) {
        heap_set_report(multiheap_heap_at(mh, k), fn, ctx);
    }
}

static void multiheap_add_stats(struct heap_stats* total, const struct heap_stats* s)
{
    total->total_blocks += s->total_blocks;
    total->free_blocks += s->free_blocks;
    total->used_blocks += s->used_blocks;
    total->live_allocations += s->live_allocations;
    total->rejected_frees += s->rejected_frees;
    if (s->largest_free_run > total->largest_free_run) {
        total->largest_free_run = s->largest_free_run;
    }
}

void multiheap_get_stats(const struct multiheap* mh, struct multiheap_stats* stats, struct heap_stats* regions,
                         size_t max_regions)
{
    PEACHOS_HEAP_ASSERT(mh != NULL && stats != NULL && (regions != NULL || max_regions == 0));
    memset(stats, 0, sizeof(*stats));
    stats->regions = mh->count;
    for (size_t k = 0; k < mh->count; k++) {
        struct heap_stats s;
        heap_get_stats(&multiheap_at(mh, k)->heap, &s);
        multiheap_add_stats(&stats->total, &s);
        if (k < max_regions) {
            regions[k] = s;
        }
    }
    stats->rejected_outside = mh->rejected_outside;
    stats->total.rejected_frees += mh->rejected_outside;
    stats->total.failed_allocs = mh->failed_allocs;
}

/* ----------------------------------------------------------------- checks */

static int multiheap_check_fail(size_t* bad_region, size_t region, size_t* bad_block, size_t block)
{
    if (bad_region != NULL) {
        *bad_region = region;
    }
    if (bad_block != NULL) {
        *bad_block = block;
    }
    return -ECORRUPT;
}

/* I1: count in range, order[0..count) a permutation of the slots. */
static bool multiheap_order_sound(const struct multiheap* mh)
{
    if (mh->count > MULTIHEAP_MAX_REGIONS) {
        return false;
    }
    bool seen[MULTIHEAP_MAX_REGIONS] = { false };
    for (size_t k = 0; k < mh->count; k++) {
        size_t s = mh->order[k];
        if (s >= mh->count || seen[s]) {
            return false;
        }
        seen[s] = true;
    }
    return true;
}

/* I3, I5: region k starts above region k-1 and shares no byte of pool,
 * table or index with any region before it. */
static bool multiheap_apart(const struct multiheap* mh, size_t k)
{
    struct multiheap_span spans[MULTIHEAP_SPANS];
    multiheap_region_spans(multiheap_at(mh, k), spans);
    if (k > 0 && multiheap_start(mh, k - 1) >= multiheap_start(mh, k)) {
        return false;
    }
    for (size_t j = 0; j < k; j++) {
        struct multiheap_span other[MULTIHEAP_SPANS];
        multiheap_region_spans(multiheap_at(mh, j), other);
        if (multiheap_spans_overlap(spans, other)) {
            return false;
        }
    }
    return true;
}

int multiheap_check(const struct multiheap* mh, size_t* bad_region, size_t* bad_block)
{
    if (mh == NULL) {
        return -EINVARG;
    }
    if (!multiheap_order_sound(mh)) {
        return multiheap_check_fail(bad_region, SIZE_MAX, bad_block, SIZE_MAX);
    }
    size_t blocks = 0;
    for (size_t k = 0; k < mh->count; k++) {
        const struct multiheap_region* r = multiheap_at(mh, k);
        size_t block = SIZE_MAX;
        if (r->heap.table != &r->table || heap_check(&r->heap, &block) != 0 || !multiheap_apart(mh, k)) {
            return multiheap_check_fail(bad_region, k, bad_block, block); /* I2, I3, I5 */
        }
        blocks += r->table.total;
    }
    if (blocks != mh->total_blocks) {
        return multiheap_check_fail(bad_region, SIZE_MAX, bad_block, SIZE_MAX); /* I4 */
    }
    return PEACHOS_ALL_OK;
}
