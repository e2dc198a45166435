/*
 * heap_index.h - optional placement index: exact first fit in O(log n).
 *
 * Design (docs/index.md has pictures and the proof):
 *   - a free bitmap, 1 bit per block (1 = free), in 64-block words;
 *   - for requests of up to 64 blocks, run counts in levels of bytes: per
 *     word, the longest run of up to 64 free blocks that starts in it, then
 *     the largest of every eight, up to a top of at most 64 (eight words);
 *     the search takes the first count >= n at each level, in a few word
 *     operations;
 *   - for longer requests, which always cross a word boundary, a binary
 *     tree over the words' free prefixes and suffixes (heap_index_tree.c),
 *     updated only when a mark reaches a word's edge.
 * Either way the answer is the lowest-addressed run of n free blocks - the
 * very block the linear scan (heap_scan_first_fit) finds - in O(log n) for
 * any n. Marking n blocks costs O(n/64 + log n). Building the index is O(n).
 *
 * Size: with W = bitmap words (blocks / 64, rounded up) and L = W rounded up
 * to a power of two, 8 bytes per word for the bitmap, 1 for its longest
 * run, about 8/7 for the counts, 12 per tree node (L nodes), plus a 24-byte
 * (i686) or 40-byte (x86_64) header: under 35/64 byte per block plus the
 * header and 32 bytes (from 0.35 byte per block at a power of two words).
 * That is at most 1 byte per block for every heap of
 * HEAP_INDEX_ONE_BYTE_FROM blocks or more (96 on x86_64, 80 on i686); smaller
 * heaps pay the header. The default 100 MiB heap (25,600 blocks) needs
 * 10,224 bytes on i686 (0.40 byte per block); 1 GiB (262,144 blocks) 90,728
 * on x86_64 (0.35). heap_index_bytes() gives the exact figure.
 *
 * The index lives outside the data pool, in memory the caller provides
 * (kheap: PEACHOS_HEAP_INDEX_ADDRESS), so no caller's overrun reaches it,
 * and heap_check() verifies it against the table. A stray write can still
 * reach it, so nothing the index addresses by is read from that memory:
 * the layout is computed once from the table's block count and kept in
 * struct heap (heap->index_layout), and what the arrays say is bounded
 * before use (docs/index.md, "Any bytes in the index memory").
 */
#ifndef PEACHOS_HEAP_INDEX_H
#define PEACHOS_HEAP_INDEX_H

#include "heap_internal.h"

/*
 * The index's checker (heap_check's verification of the index, and the
 * largest free run for heap_get_stats) is compiled only if heap_check.c,
 * its only caller, is linked: PeachOS's drop-in without its `check` part
 * sets PEACHOS_HEAP_CHECK to 0 in config.h, about 900 bytes less of a
 * kernel.bin that must stay within 51,200 bytes.
 */
#ifndef PEACHOS_HEAP_CHECK
#define PEACHOS_HEAP_CHECK 1
#endif

/* Heaps of at least this many blocks need at most 1 byte of index per block
 * (tests/unit/test_heap_index.c checks every size up to 2^20 blocks). */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define HEAP_INDEX_ONE_BYTE_FROM 96u
#else
#define HEAP_INDEX_ONE_BYTE_FROM 80u
#endif

/* Bytes of index memory a heap of `total_blocks` blocks needs (0 if it
 * cannot be indexed: 0 blocks or more than 2^32 - 64). */
size_t heap_index_bytes(size_t total_blocks);

/*
 * heap_create plus an index in [index_mem, index_mem + index_bytes), which
 * must be 8-byte aligned and at least heap_index_bytes(table->total) long.
 * Its first heap_index_bytes(table->total) bytes must not overlap the pool,
 * the table entries, *table or *heap (checked). Returns 0 or -EINVARG, in
 * which case nothing at all was written. Cost: O(table->total).
 */
int heap_create_indexed(struct heap* heap, void* ptr, void* end, struct heap_table* table, void* index_mem,
                        size_t index_bytes);

/* A node of the index's tree of long runs (heap_index.c). */
struct heap_index_node
{
    uint32_t prefix; /* free blocks at the start of the node's range */
    uint32_t suffix; /* free blocks at its end */
    uint32_t best;   /* longest free run crossing a word boundary inside it if > 64, else 0 (0 in a leaf) */
};

#endif /* PEACHOS_HEAP_INDEX_H */
