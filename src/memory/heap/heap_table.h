/*
 * heap_table.h - runs of table bytes, the inner loops of heap.c: fill a run,
 * test that a run is free, measure how far a byte repeats. Each comes twice:
 * a word at a time (the speed trick) and a plain byte loop (the obvious
 * version). HEAP_TABLE_WORDS chooses which one heap.c calls (1, the default:
 * words); both are always compiled, and tests/unit/test_heap_table.c checks
 * that they agree on every length at every offset. Private to the library.
 */
#ifndef PEACHOS_HEAP_TABLE_H
#define PEACHOS_HEAP_TABLE_H

#include "heap.h"

#ifndef HEAP_TABLE_WORDS
#define HEAP_TABLE_WORDS 1
#endif

/* Set bytes [p, p + n) to `value`; n >= 1. */
void heap_table_fill_words(HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value);
void heap_table_fill_bytes(HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value);

/* Are bytes [p, p + n) all zero (free)? n >= 1; nothing outside is read. */
bool heap_table_all_free_words(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n);
bool heap_table_all_free_bytes(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n);

/* How many bytes from p, at most n, equal `value` before the first that
 * does not; nothing past p + n is read. */
size_t heap_table_span_words(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value);
size_t heap_table_span_bytes(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value);

#if HEAP_TABLE_WORDS
#define heap_table_fill heap_table_fill_words
#define heap_table_all_free heap_table_all_free_words
#define heap_table_span heap_table_span_words
#else
#define heap_table_fill heap_table_fill_bytes
#define heap_table_all_free heap_table_all_free_bytes
#define heap_table_span heap_table_span_bytes
#endif

#endif /* PEACHOS_HEAP_TABLE_H */
