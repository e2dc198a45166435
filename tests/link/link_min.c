/*
 * tests/link/link_min.c - proves that memory.c + heap/heap.c link into a
 * program with nothing else: no libc, no crt, no kernel symbols.
 * Built with -nostdlib -static; _start is the whole program.
 */
#include "memory/heap/heap.h"

static HEAP_BLOCK_TABLE_ENTRY link_min_entries[4];
static struct heap_table link_min_table = { link_min_entries, 4 };
static struct heap link_min_heap;

void _start(void);
void _start(void)
{
    void* pool = (void*)(uintptr_t)0x10000000; /* never dereferenced by the heap */
    void* end = (void*)(uintptr_t)(0x10000000 + 4 * PEACHOS_HEAP_BLOCK_SIZE);
    if (heap_create(&link_min_heap, pool, end, &link_min_table) == 0) {
        heap_free(&link_min_heap, heap_malloc(&link_min_heap, 1));
    }
    for (;;) {
    }
}
