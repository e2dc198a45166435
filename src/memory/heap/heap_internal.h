/*
 * heap_internal.h - what the library's layers share beyond the public
 * contract of heap.h: typed allocation for the caches, the chain rule,
 * block arithmetic, in-place resizing, the reference scan and the index's
 * operations. Not for kernels: these trust their arguments (the
 * preconditions are checked with PEACHOS_HEAP_ASSERT).
 */
#ifndef PEACHOS_HEAP_INTERNAL_H
#define PEACHOS_HEAP_INTERNAL_H

#include "heap.h"

/*
 * What heap.c needs from a placement index; installed by heap_index.c. Each
 * takes the heap: the index lives in heap->index, memory the caller gave,
 * and reads its layout from heap->index_layout (computed once from
 * heap->table->total), never from that memory.
 */
struct heap_index_ops
{
    /* Lowest block starting a run of n free blocks, or SIZE_MAX. Any other
     * answer past the table means the index contradicts itself. */
    size_t (*find)(const struct heap* heap, size_t n);
    /* Blocks [start, start+n) (inside the table) became taken (taken=true) or free. */
    void (*mark)(struct heap* heap, size_t start, size_t n, bool taken);
    /* Index agrees with the table? Returns first disagreeing block or SIZE_MAX. */
    size_t (*verify)(const struct heap* heap);
    /* Length of the longest free run, in blocks. */
    size_t (*largest)(const struct heap* heap);
};

/* heap_malloc, counted in blocks; the table's type bits are set to `type`,
 * which must be HEAP_BLOCK_TYPE_PLAIN or HEAP_BLOCK_TYPE_CACHE (any other
 * value returns NULL and is not counted in failed_allocs). */
void* heap_malloc_blocks_typed(struct heap* heap, size_t total_blocks, HEAP_BLOCK_TABLE_ENTRY type);

/*
 * Take up to n free blocks of the heap, lowest address first, each its own
 * one-block allocation of `type` (HEAP_BLOCK_TYPE_VMAP for kvmalloc), their
 * addresses in out[0..]; returns how many (fewer only if the heap has fewer
 * free blocks). Counted in used_blocks and live_allocations, never in
 * failed_allocs. Freed one by one with heap_free_typed. O(blocks up to the
 * last one taken), plus the index's mark once per run of free blocks.
 */
size_t heap_take_blocks(struct heap* heap, size_t n, HEAP_BLOCK_TABLE_ENTRY type, void** out);

/* heap_free for allocations of the given type (used by the cache layer). */
void heap_free_typed(struct heap* heap, void* ptr, HEAP_BLOCK_TABLE_ENTRY type);

/*
 * Block lookup for a pointer anywhere inside the pool: the number of the
 * first block of the allocation containing it, or SIZE_MAX if ptr is outside
 * the pool or in a free block. O(length of that allocation).
 */
size_t heap_allocation_start(const struct heap* heap, const void* ptr);

/* The one rule for a well-formed allocation chain of `type` starting at
 * `first` (heap.c): its length, or 0 with *bad the first block that breaks
 * it. heap_free, heap_check and the caches' lookup all use it. */
size_t heap_chain_length(const struct heap_table* table, size_t first, HEAP_BLOCK_TABLE_ENTRY type, size_t* bad);

/* Number of blocks of the allocation starting at block `first` (0 if none). */
size_t heap_allocation_blocks(const struct heap* heap, size_t first);

/*
 * Do [a, a + a_bytes) and [b, b + b_bytes) share a byte? (False if either is
 * empty.) No end address is computed, so a range that ends at the top of
 * the address space is handled too. heap_create and heap_create_indexed
 * use it to refuse metadata that overlaps the pool or other metadata.
 */
bool heap_ranges_overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes);

/* Address of block b / block of an address inside the pool (no checks). */
void* heap_block_to_address(const struct heap* heap, size_t block);
size_t heap_address_to_block(const struct heap* heap, const void* address);

/* Try to grow the allocation starting at block `first` from `have` to
 * `want` blocks in place (the blocks after it must be free). Returns true
 * on success, false (nothing changed) otherwise. */
bool heap_grow_in_place(struct heap* heap, size_t first, size_t have, size_t want);

/* Shrink the allocation starting at `first` from `have` to `want` >= 1 blocks,
 * freeing its tail. */
void heap_shrink_in_place(struct heap* heap, size_t first, size_t have, size_t want);

/*
 * The reference placement: the seed's linear scan, fixed. Lowest block that
 * starts a run of n free blocks in `table`, or SIZE_MAX. O(total).
 */
size_t heap_scan_first_fit(const struct heap_table* table, size_t n);

#endif /* PEACHOS_HEAP_INTERNAL_H */
