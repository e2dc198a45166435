/*
 * kvmalloc.c - virtually contiguous allocations from scattered blocks
 * (kvmalloc.h). Calls heap.c through heap.h and heap_internal.h (the
 * window is a heap; the backing blocks are VMAP allocations of the source
 * heaps), heap_index.c for an indexed window, heap_check.c and memory.c.
 * Never reads or writes at a window address: the port's hooks map it, and
 * copies go through the backing blocks' own addresses.
 */
#include "kvmalloc.h"
#include "heap_index.h"
#include "heap_internal.h"
#include "heap_setup.h"
#include "heap_status.h"

#include "../memory.h"

#define KV_BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
/* The table byte of every backing block (V3). */
#define KV_BACKING_ENTRY ((HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_VMAP))

uint64_t kvmalloc_mix(const void* block)
{
    uint64_t x = (uint64_t)(uintptr_t)block;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static size_t kv_blocks_of(size_t size)
{
    return size / KV_BS + (size % KV_BS != 0);
}

static size_t kv_pool_bytes(const struct heap* heap)
{
    return heap->table->total * KV_BS;
}

/* --------------------------------------------------------------- set-up */

int kvmalloc_init(struct kvmalloc* kv, void* start, void* end, HEAP_BLOCK_TABLE_ENTRY* table_mem, void* index_mem,
                  size_t index_bytes, void** backing, const struct kvmalloc_ops* ops)
{
    if (kv == NULL || backing == NULL || ops == NULL || ops->map == NULL || ops->unmap == NULL) {
        return -EINVARG;
    }
    size_t bytes = (uintptr_t)end > (uintptr_t)start ? (size_t)((uintptr_t)end - (uintptr_t)start) : 0;
    size_t blocks = bytes / KV_BS;
    size_t record = KVMALLOC_BACKING_BYTES(blocks);
    if (heap_ranges_overlap(backing, record, start, bytes) || heap_ranges_overlap(backing, record, table_mem, blocks) ||
        heap_ranges_overlap(backing, record, index_mem, index_mem != NULL ? index_bytes : 0) ||
        heap_ranges_overlap(backing, record, kv, sizeof(*kv))) {
        return -EINVARG;
    }
    int res = heap_setup(&kv->window, &kv->window_table, start, end, table_mem, index_mem, index_bytes);
    if (res < 0) {
        return res; /* nothing written */
    }
    memset(backing, 0, record);
    kv->backing = backing;
    kv->sources = 0;
    kv->ops = *ops;
    kv->blocks = 0;
    kv->fingerprint = 0;
    kv->map_failures = 0;
    kv->failed_allocs = 0;
    return PEACHOS_ALL_OK;
}

/* May `heap` be a source: its pool apart from the window, its metadata,
 * the record, *kv and every other source's pool? */
static bool kv_source_apart(const struct kvmalloc* kv, const struct heap* heap)
{
    const void* pool = heap->saddr;
    size_t bytes = kv_pool_bytes(heap);
    const struct heap* w = &kv->window;
    size_t blocks = w->table->total;
    if (heap_ranges_overlap(pool, bytes, w->saddr, blocks * KV_BS) ||
        heap_ranges_overlap(pool, bytes, w->table->entries, blocks) ||
        heap_ranges_overlap(pool, bytes, w->index, w->index != NULL ? heap_index_bytes(blocks) : 0) ||
        heap_ranges_overlap(pool, bytes, kv->backing, KVMALLOC_BACKING_BYTES(blocks)) ||
        heap_ranges_overlap(pool, bytes, kv, sizeof(*kv))) {
        return false;
    }
    for (size_t k = 0; k < kv->sources; k++) {
        if (heap_ranges_overlap(pool, bytes, kv->source[k]->saddr, kv_pool_bytes(kv->source[k]))) {
            return false;
        }
    }
    return true;
}

int kvmalloc_add_source(struct kvmalloc* kv, struct heap* heap)
{
    if (kv == NULL || heap == NULL || kv->sources >= KVMALLOC_MAX_SOURCES || !kv_source_apart(kv, heap)) {
        return -EINVARG; /* a source twice overlaps itself */
    }
    size_t k = kv->sources;
    while (k > 0 && (uintptr_t)kv->source[k - 1]->saddr > (uintptr_t)heap->saddr) {
        kv->source[k] = kv->source[k - 1];
        k--;
    }
    kv->source[k] = heap;
    kv->sources++;
    return PEACHOS_ALL_OK;
}

void kvmalloc_set_report(struct kvmalloc* kv, heap_report_fn fn, void* ctx)
{
    if (kv != NULL) {
        heap_set_report(&kv->window, fn, ctx);
    }
}

bool kvmalloc_owns(const struct kvmalloc* kv, const void* ptr)
{
    uintptr_t start = kv != NULL ? (uintptr_t)kv->window.saddr : 0;
    return kv != NULL && (uintptr_t)ptr >= start && ((uintptr_t)ptr - start) / KV_BS < kv->window.table->total;
}

/* ------------------------------------------------------- backing blocks */

size_t kvmalloc_source_rank(const struct kvmalloc* kv, const void* block)
{
    for (size_t k = 0; k < kv->sources; k++) {
        const struct heap* heap = kv->source[k];
        uintptr_t start = (uintptr_t)heap->saddr;
        if ((uintptr_t)block >= start && ((uintptr_t)block - start) / KV_BS < heap->table->total) {
            return k;
        }
    }
    return SIZE_MAX;
}

/* The source whose pool holds `block`, NULL if none. */
static struct heap* kv_source_of(const struct kvmalloc* kv, const void* block)
{
    size_t k = kvmalloc_source_rank(kv, block);
    return k < kv->sources ? kv->source[k] : NULL;
}

/* V3: is `block` the start of a one-block VMAP allocation of a source? */
static bool kv_backing_ok(const struct kvmalloc* kv, const void* block)
{
    const struct heap* heap = block != NULL ? kv_source_of(kv, block) : NULL;
    if (heap == NULL || ((uintptr_t)block - (uintptr_t)heap->saddr) % KV_BS != 0) {
        return false;
    }
    return heap->table->entries[heap_address_to_block(heap, block)] == KV_BACKING_ENTRY;
}

/* V3 and V4 for the n blocks of the allocation at window block w0. */
static bool kv_record_sound(const struct kvmalloc* kv, size_t w0, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void* block = kv->backing[w0 + i];
        if (!kv_backing_ok(kv, block) || (i > 0 && (uintptr_t)block <= (uintptr_t)kv->backing[w0 + i - 1])) {
            return false;
        }
    }
    return true;
}

/* Is source k one the allocation may draw on (`only`, or all when NULL)? */
static bool kv_draws_on(const struct kvmalloc* kv, size_t k, const struct heap* only)
{
    return only == NULL || kv->source[k] == only;
}

static size_t kv_free_source_blocks(const struct kvmalloc* kv, const struct heap* only)
{
    size_t free = 0;
    for (size_t k = 0; k < kv->sources; k++) {
        free += kv_draws_on(kv, k, only) ? kv->source[k]->table->total - kv->source[k]->used_blocks : 0;
    }
    return free;
}

/* Back window blocks [w0, w0 + n) with the sources' lowest free blocks;
 * the caller made sure the sources have n free blocks. */
static void kv_take(struct kvmalloc* kv, size_t w0, size_t n, const struct heap* only)
{
    size_t got = 0;
    for (size_t k = 0; k < kv->sources && got < n; k++) {
        got += kv_draws_on(kv, k, only)
                   ? heap_take_blocks(kv->source[k], n - got, HEAP_BLOCK_TYPE_VMAP, &kv->backing[w0 + got])
                   : 0;
    }
    PEACHOS_HEAP_ASSERT(got == n);
    for (size_t i = 0; i < n; i++) {
        kv->fingerprint += kvmalloc_mix(kv->backing[w0 + i]);
    }
    kv->blocks += n;
}

/* Give back the backing blocks of window blocks [from, to) (record sound). */
static void kv_release(struct kvmalloc* kv, size_t from, size_t to)
{
    for (size_t w = from; w < to; w++) {
        void* block = kv->backing[w];
        heap_free_typed(kv_source_of(kv, block), block, HEAP_BLOCK_TYPE_VMAP);
        kv->fingerprint -= kvmalloc_mix(block);
        kv->backing[w] = NULL;
    }
    kv->blocks -= to - from;
}

static void kv_unmap(struct kvmalloc* kv, size_t from, size_t to)
{
    for (size_t w = from; w < to; w++) {
        kv->ops.unmap(kv->ops.ctx, heap_block_to_address(&kv->window, w));
    }
}

/* Map window blocks [w0, w0 + n); on a refusal, undo and return false. */
static bool kv_map(struct kvmalloc* kv, size_t w0, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (kv->ops.map(kv->ops.ctx, heap_block_to_address(&kv->window, w0 + i), kv->backing[w0 + i]) < 0) {
            kv_unmap(kv, w0, w0 + i);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------- the API */

void* kvmalloc_alloc(struct kvmalloc* kv, size_t size)
{
    return kvmalloc_alloc_from(kv, size, NULL);
}

void* kvmalloc_alloc_from(struct kvmalloc* kv, size_t size, const struct heap* only)
{
    size_t n = kv_blocks_of(size);
    if (kv == NULL || n == 0) {
        return NULL;
    }
    void* ptr = kv_free_source_blocks(kv, only) >= n ? heap_malloc_blocks_typed(&kv->window, n, HEAP_BLOCK_TYPE_PLAIN)
                                               : NULL;
    if (ptr == NULL) {
        kv->failed_allocs++;
        return NULL;
    }
    size_t w0 = heap_address_to_block(&kv->window, ptr);
    kv_take(kv, w0, n, only);
    if (!kv_map(kv, w0, n)) {
        kv_release(kv, w0, w0 + n);
        heap_free(&kv->window, ptr);
        kv->map_failures++;
        kv->failed_allocs++;
        return NULL;
    }
    return ptr;
}

size_t kvmalloc_size(const struct kvmalloc* kv, const void* ptr)
{
    return kv != NULL && ptr != NULL ? heap_allocation_size(&kv->window, ptr) : 0;
}

static void kv_reject_corrupt(struct kvmalloc* kv, const void* ptr, size_t w0)
{
    kv->window.rejected_frees++;
    if (kv->window.report != NULL) {
        struct heap_report report = { HEAP_REPORT_WINDOW_CORRUPT, ptr, w0 };
        kv->window.report(kv->window.report_ctx, &report);
    }
}

void kvmalloc_free(struct kvmalloc* kv, void* ptr)
{
    if (kv == NULL || ptr == NULL) {
        return;
    }
    size_t n = kvmalloc_size(kv, ptr) / KV_BS;
    if (n == 0) {
        heap_free(&kv->window, ptr); /* refuses it, with the window's report kind */
        return;
    }
    size_t w0 = heap_address_to_block(&kv->window, ptr);
    if (!kv_record_sound(kv, w0, n)) {
        kv_reject_corrupt(kv, ptr, w0);
        return;
    }
    kv_unmap(kv, w0, w0 + n);
    kv_release(kv, w0, w0 + n);
    heap_free(&kv->window, ptr);
}

/* Copy the first `n` blocks of window allocation w0 to w1, block by block
 * through their backing addresses (the window itself is never touched). */
static void kv_copy(const struct kvmalloc* kv, size_t w1, size_t w0, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(kv->backing[w1 + i], kv->backing[w0 + i], KV_BS);
    }
}

void* kvmalloc_realloc(struct kvmalloc* kv, void* ptr, size_t size)
{
    if (kv == NULL || ptr == NULL) {
        return kvmalloc_alloc(kv, size);
    }
    size_t have = kvmalloc_size(kv, ptr) / KV_BS;
    size_t w0 = heap_address_to_block(&kv->window, ptr);
    if (size == 0 || have == 0 || !kv_record_sound(kv, w0, have)) {
        kvmalloc_free(kv, ptr); /* frees it, or refuses and reports it */
        return NULL;
    }
    size_t want = kv_blocks_of(size);
    if (want <= have) {
        kv_unmap(kv, w0 + want, w0 + have);
        kv_release(kv, w0 + want, w0 + have);
        heap_shrink_in_place(&kv->window, w0, have, want);
        return ptr;
    }
    void* moved = kvmalloc_alloc(kv, size);
    if (moved != NULL) {
        kv_copy(kv, heap_address_to_block(&kv->window, moved), w0, have);
        kvmalloc_free(kv, ptr);
    }
    return moved;
}

void* kvmalloc_backing(const struct kvmalloc* kv, const void* ptr)
{
    return kvmalloc_owns(kv, ptr) ? kv->backing[heap_address_to_block(&kv->window, ptr)] : NULL;
}

/* ----------------------------------------------------------------- check */

static int kv_fail(size_t* bad, size_t block)
{
    if (bad != NULL) {
        *bad = block;
    }
    return -ECORRUPT;
}

/* V5's other side: the VMAP blocks in all the sources' tables. */
static size_t kv_count_vmap(const struct kvmalloc* kv)
{
    size_t count = 0;
    for (size_t k = 0; k < kv->sources; k++) {
        const struct heap_table* table = kv->source[k]->table;
        for (size_t b = 0; b < table->total; b++) {
            count += (table->entries[b] & (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_MASK)) ==
                     (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_VMAP);
        }
    }
    return count;
}

/* V6 at window block w: the port's page tables name `block` there. */
static bool kv_mapped_as(const struct kvmalloc* kv, size_t w, const void* block)
{
    return kv->ops.lookup == NULL || kv->ops.lookup(kv->ops.ctx, heap_block_to_address(&kv->window, w)) == block;
}

/* V1 (type), V3, V4, V6 for the allocation at w0; the fingerprint summed.
 * Returns the first bad window block, or SIZE_MAX. */
static size_t kv_check_allocation(const struct kvmalloc* kv, size_t w0, size_t n, uint64_t* fingerprint)
{
    if ((kv->window_table.entries[w0] & HEAP_BLOCK_TYPE_MASK) != HEAP_BLOCK_TYPE_PLAIN) {
        return w0;
    }
    for (size_t w = w0; w < w0 + n; w++) {
        const void* block = kv->backing[w];
        if (!kv_backing_ok(kv, block) || (w > w0 && (uintptr_t)block <= (uintptr_t)kv->backing[w - 1]) ||
            !kv_mapped_as(kv, w, block)) {
            return w;
        }
        *fingerprint += kvmalloc_mix(block);
    }
    return SIZE_MAX;
}

int kvmalloc_check(const struct kvmalloc* kv, size_t* bad)
{
    if (kv == NULL) {
        return -EINVARG;
    }
    size_t block = SIZE_MAX;
    if (heap_check(&kv->window, &block) != 0 || kv->window.table != &kv->window_table) {
        return kv_fail(bad, block); /* V1 */
    }
    uint64_t fingerprint = 0;
    size_t total = kv->window_table.total;
    for (size_t w = 0; w < total;) {
        size_t n = heap_allocation_blocks(&kv->window, w);
        if (n == 0 && (kv->backing[w] != NULL || !kv_mapped_as(kv, w, NULL))) {
            return kv_fail(bad, w); /* V2, V6: a free block holds nothing */
        }
        size_t at = n != 0 ? kv_check_allocation(kv, w, n, &fingerprint) : SIZE_MAX;
        if (at != SIZE_MAX) {
            return kv_fail(bad, at);
        }
        w += n != 0 ? n : 1;
    }
    if (kv->blocks != kv->window.used_blocks || fingerprint != kv->fingerprint || kv_count_vmap(kv) != kv->blocks) {
        return kv_fail(bad, SIZE_MAX); /* V5 */
    }
    return PEACHOS_ALL_OK;
}
