/*
 * heap_check.c - read-only inspection: invariant checker and statistics.
 */
#include "heap.h"
#include "heap_status.h"


static bool heap_type_is_known(HEAP_BLOCK_TABLE_ENTRY type)
{
    return type == HEAP_BLOCK_TYPE_PLAIN || type == HEAP_BLOCK_TYPE_CACHE;
}

/*
 * Check the allocation whose IS_FIRST block is `first`. Returns the number
 * of blocks it spans, or 0 with *bad set to the offending block.
 */
static size_t heap_check_allocation(const struct heap_table* table, size_t first, size_t* bad)
{
    const HEAP_BLOCK_TABLE_ENTRY* entries = table->entries;
    HEAP_BLOCK_TABLE_ENTRY type = entries[first] & HEAP_BLOCK_TYPE_MASK;
    if (!heap_type_is_known(type)) {
        *bad = first;
        return 0;
    }
    size_t i = first;
    while (entries[i] & HEAP_BLOCK_HAS_NEXT) {
        i++;
        if (i == table->total) { /* chain runs off the end of the table */
            *bad = i - 1;
            return 0;
        }
        HEAP_BLOCK_TABLE_ENTRY e = entries[i];
        if ((e & ~HEAP_BLOCK_KNOWN_BITS) != 0 || !(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) ||
            (e & HEAP_BLOCK_IS_FIRST) || (e & HEAP_BLOCK_TYPE_MASK) != type) {
            *bad = i;
            return 0;
        }
    }
    return i - first + 1;
}

static int heap_check_fail(size_t* bad_block, size_t block)
{
    if (bad_block != NULL) {
        *bad_block = block;
    }
    return -ECORRUPT;
}

int heap_check(const struct heap* heap, size_t* bad_block)
{
    if (heap == NULL || heap->table == NULL || heap->table->entries == NULL) {
        return -EINVARG;
    }
    const struct heap_table* table = heap->table;
    size_t used = 0;
    size_t allocations = 0;
    size_t i = 0;
    while (i < table->total) {
        HEAP_BLOCK_TABLE_ENTRY e = table->entries[i];
        if (e == HEAP_BLOCK_TABLE_ENTRY_FREE) {
            i++;
            continue;
        }
        /* Not free: must be a well-formed first block. Catches stray flags on
         * free entries (no TAKEN) and orphan continuation blocks. */
        if ((e & ~HEAP_BLOCK_KNOWN_BITS) != 0 || !(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) ||
            !(e & HEAP_BLOCK_IS_FIRST)) {
            return heap_check_fail(bad_block, i);
        }
        size_t bad = SIZE_MAX;
        size_t n = heap_check_allocation(table, i, &bad);
        if (n == 0) {
            return heap_check_fail(bad_block, bad);
        }
        used += n;
        allocations++;
        i += n;
    }
    if (used != heap->used_blocks || allocations != heap->live_allocations) {
        return heap_check_fail(bad_block, SIZE_MAX);
    }
    if (heap->index != NULL) {
        size_t bad = heap->index_ops->verify(heap->index, table);
        if (bad != SIZE_MAX) {
            return heap_check_fail(bad_block, bad);
        }
    }
    return PEACHOS_ALL_OK;
}

static size_t heap_scan_largest_free_run(const struct heap_table* table)
{
    size_t best = 0;
    size_t run = 0;
    for (size_t i = 0; i < table->total; i++) {
        run = (table->entries[i] == HEAP_BLOCK_TABLE_ENTRY_FREE) ? run + 1 : 0;
        if (run > best) {
            best = run;
        }
    }
    return best;
}

void heap_get_stats(const struct heap* heap, struct heap_stats* stats)
{
    size_t total = heap->table->total;
    stats->total_blocks = total;
    stats->used_blocks = heap->used_blocks;
    stats->free_blocks = total - heap->used_blocks;
    stats->live_allocations = heap->live_allocations;
    stats->rejected_frees = heap->rejected_frees;
    stats->failed_allocs = heap->failed_allocs;
    stats->largest_free_run = heap->index != NULL ? heap->index_ops->largest(heap->index)
                                                  : heap_scan_largest_free_run(heap->table);
}
