/*
 * heap_index.h - optional placement index: exact first fit in O(log n).
 *
 * Design (docs/index.md has pictures):
 *   - a free bitmap, 1 bit per block (1 = free), in 64-block words;
 *   - a complete binary tree over the words (leaves padded to a power of
 *     two), each node holding the free run at its start (prefix), at its end
 *     (suffix) and its longest free run (best), as 32-bit counts.
 * heap_malloc descends the tree: go left if the left child holds a run of n,
 * else take the run that straddles the middle if it is long enough, else go
 * right. That yields the lowest-addressed run of n free blocks - the very
 * block the linear scan (heap_scan_first_fit) finds - in O(log n) for any n.
 * Marking n blocks costs O(n/64 + log n). Building the index is O(n).
 *
 * Size: with L = next_pow2(words), 8 bytes per leaf for the bitmap plus
 * 12 bytes per tree node (2 * L nodes): 32 * L bytes, between 0.5 and just
 * under 1 byte per block (the worst case is a heap just past a power of two
 * words), plus a 24-byte (i686) or 40-byte (x86_64) header, which makes
 * heaps of 64 blocks or fewer cost more than 1 byte per block. The
 * default 100 MiB heap (25,600 blocks) needs 16,408 bytes on i686 (0.64
 * bytes per block); 1 GiB (262,144 blocks) 131,112 on x86_64 (0.50).
 * heap_index_bytes() gives the exact figure.
 *
 * The index lives outside the data pool, in memory the caller provides
 * (kheap: PEACHOS_HEAP_INDEX_ADDRESS), so no caller's overrun reaches it,
 * and heap_check() verifies it against the table.
 */
#ifndef PEACHOS_HEAP_INDEX_H
#define PEACHOS_HEAP_INDEX_H

#include "heap.h"

/* Bytes of index memory a heap of `total_blocks` blocks needs (0 if it
 * cannot be indexed: 0 blocks or more than 2^32 - 64). */
size_t heap_index_bytes(size_t total_blocks);

/*
 * heap_create plus an index in [index_mem, index_mem + index_bytes), which
 * must be 8-byte aligned, at least heap_index_bytes(table->total) long and
 * not overlap the pool or the table. Returns 0 or -EINVARG, in which case
 * nothing at all was written. Cost: O(table->total).
 */
int heap_create_indexed(struct heap* heap, void* ptr, void* end, struct heap_table* table, void* index_mem,
                        size_t index_bytes);

#endif /* PEACHOS_HEAP_INDEX_H */
