/*
 * heap_check.c - read-only inspection: invariant checker and statistics.
 */
#include "heap_internal.h"
#include "heap_status.h"


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
        /* Not free: must start a well-formed chain of a known type. Catches
         * stray flags on free entries (no TAKEN) and orphan continuation
         * blocks (no IS_FIRST) at i. */
        size_t bad = SIZE_MAX;
        size_t n = heap_chain_length(table, i, e & HEAP_BLOCK_TYPE_MASK, &bad);
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
        size_t bad = heap->index_ops->verify(heap);
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
    stats->largest_free_run = heap->index != NULL ? heap->index_ops->largest(heap)
                                                  : heap_scan_largest_free_run(heap->table);
}
