/*
 * bench/alloc_tlsf.c - "tlsf": Matthew Conte's TLSF 3.1 (two-level
 * segregated fit, O(1) good fit) over one fixed pool, for `make bench-tlsf
 * TLSF=DIR` (mk/tlsf.mk). TLSF is not a Debian package and is not in this
 * repository: tlsf.c and tlsf.h come from the directory the user gives, and
 * this file is linked with the harness and DIR/tlsf.c into
 * build/tlsf/bench-tlsf (never into `make bench`).
 *
 * The pool: TLSF keeps its metadata in band, the block heaps out of band,
 * so "the same heap" is the same data capacity plus what TLSF needs to hold
 * it. One mapping of
 *
 *     tlsf_size()                                 its control structure
 *   + blocks * (4096 + tlsf_alloc_overhead())     the heap's data, and one
 *                                                 8-byte header per block
 *   + tlsf_pool_overhead()                        the pool's end sentinel
 *
 * given to tlsf_create_with_pool. The block heap's out-of-band table (one
 * byte per block) and placement index are the counterpart of TLSF's
 * control structure and headers; a header per block is what TLSF needs to
 * hold as many allocations as the block heap has blocks (W3's fill: blocks -
 * 64 single blocks, then a 64-block tail). With it TLSF holds everything the
 * block heap holds: a request of n blocks (n * 4096 - r bytes, r in 0..63)
 * takes n * 4096 - r rounded up to 8, plus its 8-byte header, and no block
 * rounding. Its good-fit search rounds a request up to the next size class
 * (1/32 of a power of two), so it may refuse a request that exact first fit
 * places; the bench counts those as failures (docs/bench/tlsf.md).
 *
 * The pool's memory is TLSF's best case, as a kernel's heap mapping would
 * be: mapped read-write, madvise(MADV_HUGEPAGE) (transparent huge pages if
 * the kernel has them; ignored otherwise), then every byte written before
 * tlsf_create_with_pool, so no first-touch page fault lands in a timed
 * operation. TLSF reads and writes headers all over the pool, so its cost
 * depends on the pool's pages: on the machine of docs/bench/tlsf.md a pool
 * prefaulted with MAP_POPULATE instead (4 KiB pages) made a W1 pair at 1 GiB
 * about 8x slower (2.5 us against 0.32 us). The block heaps never touch
 * their pool (PROT_NONE in alloc_peach.c).
 *
 * check: tlsf_check and tlsf_check_pool, and a hash of the pool's walk
 * (offset, size, used of every block) as the end state.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "tlsf.h"

#ifndef BENCH_TLSF_SOURCE
#define BENCH_TLSF_SOURCE "TLSF source directory not recorded"
#endif

static tlsf_t tlsf_heap;
static void* tlsf_mem;
static size_t tlsf_mem_bytes;
static char tlsf_description[768];

static void tlsf_bench_destroy(void)
{
    if (tlsf_mem != NULL) {
        tlsf_destroy(tlsf_heap);
        munmap(tlsf_mem, tlsf_mem_bytes);
    }
    tlsf_mem = NULL;
    tlsf_heap = NULL;
}

static int tlsf_bench_create(size_t blocks)
{
    tlsf_mem_bytes = tlsf_size() + blocks * (BENCH_BLOCK_BYTES + tlsf_alloc_overhead()) + tlsf_pool_overhead();
    tlsf_mem = mmap(NULL, tlsf_mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tlsf_mem == MAP_FAILED) {
        tlsf_mem = NULL;
        return -1;
    }
    (void)madvise(tlsf_mem, tlsf_mem_bytes, MADV_HUGEPAGE); /* a hint: fine if it fails */
    memset(tlsf_mem, 0, tlsf_mem_bytes);
    size_t pool_bytes = tlsf_mem_bytes - tlsf_size() - tlsf_pool_overhead();
    if (pool_bytes < tlsf_block_size_min() || pool_bytes > tlsf_block_size_max()) {
        fprintf(stderr, "bench: a TLSF pool of %zu bytes is out of TLSF's range\n", pool_bytes);
        tlsf_bench_destroy();
        return -1;
    }
    tlsf_heap = tlsf_create_with_pool(tlsf_mem, tlsf_mem_bytes);
    if (tlsf_heap == NULL || tlsf_check(tlsf_heap) != 0 || tlsf_check_pool(tlsf_get_pool(tlsf_heap)) != 0) {
        fprintf(stderr, "bench: tlsf_create_with_pool failed on %zu bytes\n", tlsf_mem_bytes);
        tlsf_bench_destroy();
        return -1;
    }
    return 0;
}

static void* tlsf_bench_alloc(size_t bytes)
{
    return tlsf_malloc(tlsf_heap, bytes);
}

static void tlsf_bench_release(void* ptr)
{
    tlsf_free(tlsf_heap, ptr);
}

struct tlsf_walk_state
{
    uint64_t hash;
    const unsigned char* base;
};

static void tlsf_bench_walker(void* ptr, size_t size, int used, void* user)
{
    struct tlsf_walk_state* w = user;
    uint64_t fields[3] = { (uint64_t)((const unsigned char*)ptr - w->base), size, used != 0 };
    w->hash = bench_hash(w->hash, fields, sizeof(fields));
}

static int tlsf_bench_check(uint64_t* state)
{
    if (tlsf_check(tlsf_heap) != 0 || tlsf_check_pool(tlsf_get_pool(tlsf_heap)) != 0) {
        fprintf(stderr, "bench: tlsf_check failed\n");
        return -1;
    }
    struct tlsf_walk_state w = { BENCH_HASH_INIT, tlsf_mem };
    tlsf_walk_pool(tlsf_get_pool(tlsf_heap), tlsf_bench_walker, &w);
    *state = w.hash;
    return 0;
}

static const char* tlsf_bench_describe(void)
{
    if (tlsf_description[0] == '\0') {
        snprintf(tlsf_description, sizeof(tlsf_description),
                 "TLSF 3.1 tlsf_malloc/tlsf_free, %s; one pool of blocks * (4096 + %zu) + %zu bytes "
                 "(+ %zu control), MADV_HUGEPAGE, prefaulted",
                 BENCH_TLSF_SOURCE, tlsf_alloc_overhead(), tlsf_pool_overhead(), tlsf_size());
    }
    return tlsf_description;
}

static const struct bench_allocator bench_tlsf = {
    "tlsf", true, tlsf_bench_create, tlsf_bench_alloc, tlsf_bench_release, NULL, tlsf_bench_check,
    tlsf_bench_destroy, tlsf_bench_describe, NULL,
};
BENCH_ALLOCATOR(bench_tlsf)
