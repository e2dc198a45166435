/*
 * heap_index_tree.h - the placement index's tree of long runs, for requests
 * of more than 64 blocks (heap_index_tree.c). Private to the index: each
 * takes the layout heap_create_indexed computed (heap->index_layout).
 */
#ifndef PEACHOS_HEAP_INDEX_TREE_H
#define PEACHOS_HEAP_INDEX_TREE_H

#include "heap_index.h"

/* find's answer when the index contradicts itself (the descent reached no
 * run of n): past any table, so heap.c drops the index and scans. */
#define HEAP_INDEX_CONTRADICTED (SIZE_MAX - 1u)

/* Lowest block starting a run of n > 64 free blocks, SIZE_MAX if none, or
 * HEAP_INDEX_CONTRADICTED. O(log L). */
size_t heap_index_find_long(const struct heap_index_layout* at, size_t n);

/* Words [w0, w1] may have changed their prefix or suffix: refresh the
 * nodes above them. O(w1 - w0 + log L), less when a level comes out
 * unchanged. */
void heap_index_tree_refresh(const struct heap_index_layout* at, size_t w0, size_t w1);

/* For heap_check (PEACHOS_HEAP_CHECK): the longest free run that crosses a
 * word boundary (the root's best), and the tree's invariant. */
size_t heap_index_tree_best(const struct heap_index_layout* at);

/* The first word below a node that disagrees with its children, or SIZE_MAX. */
size_t heap_index_tree_verify(const struct heap_index_layout* at);

#endif /* PEACHOS_HEAP_INDEX_TREE_H */
