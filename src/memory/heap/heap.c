/*
 * heap.c - the block-table heap: creation, first-fit allocation, checked free.
 *
 * Needs nothing but memory.c: no kernel symbol, no libc. The optional
 * placement index is reached only through heap->index_ops, so this file
 * links without heap_index.c.
 */
#include "heap_internal.h"
#include "heap_table.h"
#include "heap_status.h"

#include "../memory.h"

/* The owners heap_check knows (heap.h): any other type in the table is corrupt. */
static bool heap_type_known(HEAP_BLOCK_TABLE_ENTRY type)
{
    return type == HEAP_BLOCK_TYPE_PLAIN || type == HEAP_BLOCK_TYPE_CACHE || type == HEAP_BLOCK_TYPE_VMAP;
}

static bool heap_validate_alignment(const void* ptr)
{
    return ((uintptr_t)ptr % PEACHOS_HEAP_BLOCK_SIZE) == 0;
}

bool heap_ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes)
{
    uintptr_t x = (uintptr_t)a;
    uintptr_t y = (uintptr_t)b;
    if (a_bytes == 0 || b_bytes == 0) {
        return false;
    }
    return x <= y ? y - x < a_bytes : x - y < b_bytes;
}

/*
 * The table describes the pool, and every byte heap_create writes (*heap
 * and the entries) lies outside the pool and apart from the rest, *table
 * included (clearing *heap would change the table's size): a caller
 * who overruns an allocation must not reach the metadata, and clearing the
 * table must not clear the heap or its own descriptor.
 */
static int heap_validate_table(const struct heap* heap, const void* ptr, const void* end,
                               const struct heap_table* table)
{
    if (table->entries == NULL || (uintptr_t)end <= (uintptr_t)ptr) {
        return -EINVARG;
    }
    size_t pool_bytes = (size_t)((uintptr_t)end - (uintptr_t)ptr);
    if (table->total != pool_bytes / PEACHOS_HEAP_BLOCK_SIZE) {
        return -EINVARG;
    }
    const void* entries = table->entries;
    size_t entries_bytes = table->total * sizeof(HEAP_BLOCK_TABLE_ENTRY);
    if (heap_ranges_overlap(entries, entries_bytes, ptr, pool_bytes) ||
        heap_ranges_overlap(heap, sizeof(*heap), ptr, pool_bytes) ||
        heap_ranges_overlap(table, sizeof(*table), ptr, pool_bytes) ||
        heap_ranges_overlap(heap, sizeof(*heap), entries, entries_bytes) ||
        heap_ranges_overlap(table, sizeof(*table), entries, entries_bytes) ||
        heap_ranges_overlap(heap, sizeof(*heap), table, sizeof(*table))) {
        return -EINVARG;
    }
    return PEACHOS_ALL_OK;
}

int heap_create(struct heap* heap, void* ptr, void* end, struct heap_table* table)
{
    /* Validate everything first: on failure nothing at all is written. */
    if (heap == NULL || ptr == NULL || end == NULL || table == NULL) {
        return -EINVARG;
    }
    if (!heap_validate_alignment(ptr) || !heap_validate_alignment(end)) {
        return -EINVARG;
    }
    int res = heap_validate_table(heap, ptr, end, table);
    if (res < 0) {
        return res;
    }

    memset(heap, 0, sizeof(struct heap));
    heap->saddr = ptr;
    heap->table = table;
    memset(table->entries, HEAP_BLOCK_TABLE_ENTRY_FREE, sizeof(HEAP_BLOCK_TABLE_ENTRY) * table->total);
    return PEACHOS_ALL_OK;
}

void heap_set_report(struct heap* heap, heap_report_fn fn, void* ctx)
{
    if (heap != NULL) {
        heap->report = fn;
        heap->report_ctx = ctx;
    }
}

void* heap_block_to_address(const struct heap* heap, size_t block)
{
    return (void*)((uintptr_t)heap->saddr + block * (uintptr_t)PEACHOS_HEAP_BLOCK_SIZE);
}

size_t heap_address_to_block(const struct heap* heap, const void* address)
{
    return ((uintptr_t)address - (uintptr_t)heap->saddr) / PEACHOS_HEAP_BLOCK_SIZE;
}

size_t heap_scan_first_fit(const struct heap_table* table, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < table->total; i++) {
        if (table->entries[i] != HEAP_BLOCK_TABLE_ENTRY_FREE) {
            run = 0;
            continue;
        }
        run++;
        if (run == n) {
            return i + 1 - n;
        }
    }
    return SIZE_MAX; /* the seed returned a run cut short by the end here */
}

/*
 * The index is trusted for speed, not blindly: the run it names must lie
 * inside the table and be free there. If it is not, the index or the table
 * was overwritten (both live outside the pool, where nothing else should
 * write), and writing the chain there could hand out taken blocks, or write
 * past the table. So the heap reports it once (HEAP_REPORT_INDEX_MISMATCH),
 * drops the index and goes on with the linear scan of the table, which
 * never takes a nonzero entry: the same placement as long as the table is
 * sound, at O(N). The check costs n table bytes per allocation, read a
 * word at a time.
 */
static void heap_index_distrusted(struct heap* heap, size_t start)
{
    size_t total = heap->table->total;
    heap->index = NULL;
    heap->index_ops = NULL;
    if (heap->report != NULL) {
        const void* named = start < total ? heap_block_to_address(heap, start) : NULL;
        struct heap_report report = { HEAP_REPORT_INDEX_MISMATCH, named, start < total ? start : SIZE_MAX };
        heap->report(heap->report_ctx, &report);
    }
}

static size_t heap_get_start_block(struct heap* heap, size_t total_blocks)
{
    const struct heap_table* table = heap->table;
    if (total_blocks > table->total) {
        return SIZE_MAX;
    }
    if (heap->index != NULL) {
        size_t start = heap->index_ops->find(heap, total_blocks);
        if (start == SIZE_MAX ||
            (start <= table->total - total_blocks && heap_table_all_free(&table->entries[start], total_blocks))) {
            return start;
        }
        heap_index_distrusted(heap, start);
    }
    return heap_scan_first_fit(table, total_blocks);
}

/* Write the encoding of an n-block allocation at `start` (see heap.h). */
static void heap_write_chain(HEAP_BLOCK_TABLE_ENTRY* entries, size_t start, size_t n, HEAP_BLOCK_TABLE_ENTRY type)
{
    PEACHOS_HEAP_ASSERT(n >= 1);
    heap_table_fill(&entries[start], n, (HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_HAS_NEXT | type));
    entries[start] |= HEAP_BLOCK_IS_FIRST;
    entries[start + n - 1] &= (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT;
}

/* Blocks [start, start+n) are now taken: tell the index, count them. */
static void heap_note_taken(struct heap* heap, size_t start, size_t n)
{
    if (heap->index != NULL) {
        heap->index_ops->mark(heap, start, n, true);
    }
    heap->used_blocks += n;
}

static void heap_mark_range_free(struct heap* heap, size_t start, size_t n)
{
    PEACHOS_HEAP_ASSERT(n >= 1 && start < heap->table->total && n <= heap->table->total - start);
    heap_table_fill(&heap->table->entries[start], n, HEAP_BLOCK_TABLE_ENTRY_FREE);
    if (heap->index != NULL) {
        heap->index_ops->mark(heap, start, n, false);
    }
    heap->used_blocks -= n;
}

void* heap_malloc_blocks_typed(struct heap* heap, size_t total_blocks, HEAP_BLOCK_TABLE_ENTRY type)
{
    /* Only the types heap_check knows: any other would write a table that
     * heap_check reports as corrupt (found by tests/fuzz/fuzz_heap_ops). */
    if (heap == NULL || total_blocks == 0 || !heap_type_known(type)) {
        return NULL;
    }
    size_t start = heap_get_start_block(heap, total_blocks);
    if (start == SIZE_MAX) {
        heap->failed_allocs++;
        return NULL;
    }
    heap_write_chain(heap->table->entries, start, total_blocks, type);
    heap_note_taken(heap, start, total_blocks);
    heap->live_allocations++;
    return heap_block_to_address(heap, start);
}

void* heap_malloc(struct heap* heap, size_t size)
{
    /* Round up without overflow: sizes near SIZE_MAX must not wrap to 0. */
    size_t total_blocks = size / PEACHOS_HEAP_BLOCK_SIZE + (size % PEACHOS_HEAP_BLOCK_SIZE != 0);
    return heap_malloc_blocks_typed(heap, total_blocks, HEAP_BLOCK_TYPE_PLAIN);
}

size_t heap_allocation_blocks(const struct heap* heap, size_t first)
{
    const HEAP_BLOCK_TABLE_ENTRY* entries = heap->table->entries;
    size_t total = heap->table->total;
    if (first >= total || (entries[first] & (HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TABLE_ENTRY_TAKEN)) !=
                              (HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TABLE_ENTRY_TAKEN)) {
        return 0;
    }
    size_t n = 1;
    while ((entries[first + n - 1] & HEAP_BLOCK_HAS_NEXT) && first + n < total) {
        n++;
    }
    return n;
}

/*
 * The one rule for a well-formed allocation chain, used by heap_free,
 * heap_check and the caches' lookup: every block TAKEN with the given type
 * (PLAIN or CACHE) and no reserved bit, IS_FIRST on the first block only,
 * HAS_NEXT on every block but the last, the last inside the table. Returns
 * the chain's length, or 0 with *bad the first block that breaks it. A
 * broken chain means the table was overwritten: freeing along it would free
 * someone else's blocks. One pass, a word at a time: this is on every free.
 */
size_t heap_chain_length(const struct heap_table* table, size_t first, HEAP_BLOCK_TABLE_ENTRY type, size_t* bad)
{
    const HEAP_BLOCK_TABLE_ENTRY* entries = table->entries;
    const HEAP_BLOCK_TABLE_ENTRY head = (HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | type);
    const HEAP_BLOCK_TABLE_ENTRY body = (HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | type);
    size_t total = table->total;
    *bad = first;
    if (first >= total || !heap_type_known(type) ||
        (entries[first] & (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT) != head) {
        return 0;
    }
    if (!(entries[first] & HEAP_BLOCK_HAS_NEXT)) {
        return 1;
    }
    /* The first byte after `first` that is not `body | HAS_NEXT` ends the
     * chain if it is `body`, and breaks it otherwise. */
    size_t end = first + 1 + heap_table_span(entries + first + 1, total - first - 1,
                                             (HEAP_BLOCK_TABLE_ENTRY)(body | HEAP_BLOCK_HAS_NEXT));
    if (end == total) {
        *bad = total - 1; /* HAS_NEXT on the table's last block */
        return 0;
    }
    *bad = end;
    return entries[end] == body ? end - first + 1 : 0;
}

static void heap_reject(struct heap* heap, enum heap_report_kind kind, const void* ptr, size_t block)
{
    heap->rejected_frees++;
    if (heap->report != NULL) {
        struct heap_report report = { kind, ptr, block };
        heap->report(heap->report_ctx, &report);
    }
}

/*
 * Would heap_free_typed(heap, ptr, type) free something? 0 if ptr is the
 * start of a live allocation of `type` with a sound chain (its first block
 * in *block, its length in *n); otherwise the report kind the refusal gets,
 * *block set to ptr's block (SIZE_MAX outside the pool). ptr is not NULL.
 */
static int heap_classify(const struct heap* heap, const void* ptr, HEAP_BLOCK_TABLE_ENTRY type, size_t* block,
                         size_t* n)
{
    uintptr_t start = (uintptr_t)heap->saddr;
    uintptr_t address = (uintptr_t)ptr;
    *block = SIZE_MAX;
    if (address < start || (address - start) / PEACHOS_HEAP_BLOCK_SIZE >= heap->table->total) {
        return HEAP_REPORT_FREE_OUTSIDE;
    }
    *block = heap_address_to_block(heap, ptr);
    HEAP_BLOCK_TABLE_ENTRY entry = heap->table->entries[*block];
    if (!heap_validate_alignment((const void*)(address - start))) {
        return HEAP_REPORT_FREE_UNALIGNED;
    }
    if (!(entry & HEAP_BLOCK_TABLE_ENTRY_TAKEN)) {
        return HEAP_REPORT_FREE_NOT_ALLOCATED;
    }
    if (!(entry & HEAP_BLOCK_IS_FIRST)) {
        return HEAP_REPORT_FREE_INTERIOR;
    }
    if ((entry & HEAP_BLOCK_TYPE_MASK) != type) {
        return HEAP_REPORT_FREE_WRONG_OWNER;
    }
    size_t bad;
    *n = heap_chain_length(heap->table, *block, type, &bad);
    return *n == 0 ? HEAP_REPORT_FREE_CORRUPT : 0;
}

void heap_free_typed(struct heap* heap, void* ptr, HEAP_BLOCK_TABLE_ENTRY type)
{
    if (heap == NULL || ptr == NULL) {
        return;
    }
    size_t block;
    size_t n = 0;
    int refused = heap_classify(heap, ptr, type, &block, &n);
    if (refused != 0) {
        heap_reject(heap, (enum heap_report_kind)refused, ptr, block);
        return;
    }
    heap_mark_range_free(heap, block, n);
    heap->live_allocations--;
}

void heap_free(struct heap* heap, void* ptr)
{
    heap_free_typed(heap, ptr, HEAP_BLOCK_TYPE_PLAIN);
}

/*
 * Scattered blocks: each free block from the lowest up becomes a one-block
 * allocation of `type` (table byte TAKEN | IS_FIRST | type), until n are
 * taken; a run of free blocks is written and told to the index at once.
 */
size_t heap_take_blocks(struct heap* heap, size_t n, HEAP_BLOCK_TABLE_ENTRY type, void** out)
{
    PEACHOS_HEAP_ASSERT(heap_type_known(type) && (n == 0 || out != NULL));
    HEAP_BLOCK_TABLE_ENTRY* entries = heap->table->entries;
    size_t total = heap->table->total;
    size_t taken = 0;
    for (size_t b = 0; b < total && taken < n;) {
        if (entries[b] != HEAP_BLOCK_TABLE_ENTRY_FREE) {
            b++;
            continue;
        }
        size_t start = b;
        for (; b < total && taken < n && entries[b] == HEAP_BLOCK_TABLE_ENTRY_FREE; b++) {
            entries[b] = (HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | type);
            out[taken++] = heap_block_to_address(heap, b);
        }
        heap_note_taken(heap, start, b - start);
        heap->live_allocations += b - start;
    }
    return taken;
}

size_t heap_allocation_start(const struct heap* heap, const void* ptr)
{
    uintptr_t start = (uintptr_t)heap->saddr;
    uintptr_t address = (uintptr_t)ptr;
    if (address < start || (address - start) / PEACHOS_HEAP_BLOCK_SIZE >= heap->table->total) {
        return SIZE_MAX;
    }
    const HEAP_BLOCK_TABLE_ENTRY* entries = heap->table->entries;
    size_t block = heap_address_to_block(heap, ptr);
    if (!(entries[block] & HEAP_BLOCK_TABLE_ENTRY_TAKEN)) {
        return SIZE_MAX;
    }
    while (!(entries[block] & HEAP_BLOCK_IS_FIRST)) {
        if (block == 0 || !(entries[block - 1] & HEAP_BLOCK_HAS_NEXT)) {
            return SIZE_MAX; /* broken chain */
        }
        block--;
    }
    return block;
}

bool heap_grow_in_place(struct heap* heap, size_t first, size_t have, size_t want)
{
    HEAP_BLOCK_TABLE_ENTRY* entries = heap->table->entries;
    size_t total = heap->table->total;
    PEACHOS_HEAP_ASSERT(first < total && have >= 1 && have <= total - first);
    if (want <= have || first >= total || want > total - first ||
        !heap_table_all_free(&entries[first + have], want - have)) {
        return false;
    }
    heap_write_chain(entries, first, want, entries[first] & HEAP_BLOCK_TYPE_MASK);
    heap_note_taken(heap, first + have, want - have);
    return true;
}

void heap_shrink_in_place(struct heap* heap, size_t first, size_t have, size_t want)
{
    if (want == 0 || want >= have) {
        return;
    }
    heap_mark_range_free(heap, first + want, have - want);
    heap->table->entries[first + want - 1] &= (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT;
}

/* ------------------------------------------ the rest of the block-level API */

size_t heap_allocation_size(const struct heap* heap, const void* ptr)
{
    size_t block;
    size_t n = 0;
    if (heap == NULL || ptr == NULL || heap_classify(heap, ptr, HEAP_BLOCK_TYPE_PLAIN, &block, &n) != 0) {
        return 0;
    }
    return n * PEACHOS_HEAP_BLOCK_SIZE;
}

void* heap_zalloc(struct heap* heap, size_t size)
{
    void* ptr = heap_malloc(heap, size);
    if (ptr != NULL) {
        memset(ptr, 0x00, size);
    }
    return ptr;
}

/* Resize to `want` blocks (>= 1) in place, or move: copy, then free. */
static void* heap_resize(struct heap* heap, void* ptr, size_t first, size_t have, size_t want)
{
    if (want <= have) {
        heap_shrink_in_place(heap, first, have, want);
        return ptr;
    }
    if (heap_grow_in_place(heap, first, have, want)) {
        return ptr;
    }
    void* moved = heap_malloc_blocks_typed(heap, want, HEAP_BLOCK_TYPE_PLAIN);
    if (moved != NULL) {
        memcpy(moved, ptr, have * PEACHOS_HEAP_BLOCK_SIZE);
        heap_free(heap, ptr);
    }
    return moved;
}

void* heap_realloc(struct heap* heap, void* ptr, size_t size)
{
    if (heap == NULL) {
        return NULL;
    }
    if (ptr == NULL) {
        return heap_malloc(heap, size);
    }
    size_t block;
    size_t have = 0;
    if (size == 0 || heap_classify(heap, ptr, HEAP_BLOCK_TYPE_PLAIN, &block, &have) != 0) {
        heap_free(heap, ptr); /* frees it, or refuses it with heap_free's report */
        return NULL;
    }
    size_t want = size / PEACHOS_HEAP_BLOCK_SIZE + (size % PEACHOS_HEAP_BLOCK_SIZE != 0);
    return heap_resize(heap, ptr, block, have, want);
}
