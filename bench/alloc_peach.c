/*
 * bench/alloc_peach.c - the PeachOS block-table heap, twice:
 *   "scan"    heap_create: the seed's linear first-fit scan (the reference);
 *   "indexed" heap_create_indexed: the O(log n) placement index.
 *
 * The data pool is a PROT_NONE, MAP_NORESERVE mapping: the heap keeps all
 * its metadata out of band and never touches the pool, and this proves it
 * (any access would fault). Table and index come from malloc.
 *
 * Set-up of the scan heap: the unmeasured phases (W1's warm-up, W3's fill)
 * cost O(n) per op with the scan, O(n^2) in all (W3 at 1 GiB: 262,080
 * allocations, each scanning the filled part of a 262,144-byte table). Placement is exactly first fit with or without the index (the
 * differential test checks the table bytes are identical), so by default the
 * scan heap is created with an index for set-up and the index is detached
 * in measure_begin: every measured operation runs heap_scan_first_fit.
 * --scan-real-setup creates it with plain heap_create instead; both give the
 * same end_state hash (test-bench-build checks it).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "memory/heap/heap.h"
#include "memory/heap/heap_index.h"

static struct heap peach_heap;
static struct heap_table peach_table;
static void* peach_pool;
static size_t peach_pool_bytes;
static void* peach_index_mem;

static void peach_destroy(void)
{
    if (peach_pool != NULL) {
        munmap(peach_pool, peach_pool_bytes);
    }
    free(peach_table.entries);
    free(peach_index_mem);
    peach_pool = NULL;
    peach_table.entries = NULL;
    peach_index_mem = NULL;
}

static int peach_create(size_t blocks, bool indexed)
{
    peach_pool_bytes = blocks * BENCH_BLOCK_BYTES;
    peach_pool = mmap(NULL, peach_pool_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (peach_pool == MAP_FAILED) {
        peach_pool = NULL;
        return -1;
    }
    peach_table.entries = malloc(blocks);
    peach_table.total = blocks;
    if (peach_table.entries == NULL) {
        peach_destroy();
        return -1;
    }
    void* end = (unsigned char*)peach_pool + peach_pool_bytes;
    int res;
    if (indexed) {
        size_t bytes = (heap_index_bytes(blocks) + 63) / 64 * 64;
        peach_index_mem = aligned_alloc(64, bytes);
        res = peach_index_mem ? heap_create_indexed(&peach_heap, peach_pool, end, &peach_table, peach_index_mem, bytes)
                              : -1;
    } else {
        res = heap_create(&peach_heap, peach_pool, end, &peach_table);
    }
    if (res != 0) {
        peach_destroy();
        return -1;
    }
    return 0;
}

static int scan_create(size_t blocks)
{
    return peach_create(blocks, !bench_opt.scan_real_setup);
}

static int indexed_create(size_t blocks)
{
    return peach_create(blocks, true);
}

static void scan_measure_begin(void)
{
    /* Detach the set-up index: from here on heap_malloc scans the table. */
    peach_heap.index = NULL;
    peach_heap.index_ops = NULL;
}

static void* peach_alloc(size_t bytes)
{
    return heap_malloc(&peach_heap, bytes);
}

static void peach_release(void* ptr)
{
    heap_free(&peach_heap, ptr);
}

static int peach_check(uint64_t* state)
{
    size_t bad = 0;
    if (heap_check(&peach_heap, &bad) != 0) {
        fprintf(stderr, "bench: heap_check failed at block %zu\n", bad);
        return -1;
    }
    if (peach_heap.rejected_frees != 0) {
        fprintf(stderr, "bench: %zu frees were rejected\n", peach_heap.rejected_frees);
        return -1;
    }
    *state = bench_hash(BENCH_HASH_INIT, peach_table.entries, peach_table.total);
    return 0;
}

static const unsigned char* peach_table_entries(size_t* blocks)
{
    *blocks = peach_table.total;
    return peach_table.entries;
}

static const char* scan_describe(void)
{
    return bench_opt.scan_real_setup ? "heap_create (seed linear scan; set-up with the scan too)"
                                     : "heap_create semantics (seed linear scan; index detached before measuring)";
}

static const char* indexed_describe(void)
{
    return "heap_create_indexed (placement index)";
}

static const struct bench_allocator bench_scan = {
    "scan", true, scan_create, peach_alloc, peach_release, scan_measure_begin, peach_check, peach_destroy,
    scan_describe, peach_table_entries,
};
static const struct bench_allocator bench_indexed = {
    "indexed", true, indexed_create, peach_alloc, peach_release, NULL, peach_check, peach_destroy,
    indexed_describe, peach_table_entries,
};
BENCH_ALLOCATOR(bench_scan)
BENCH_ALLOCATOR(bench_indexed)
