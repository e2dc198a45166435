/*
 * tests/fuzz/fuzz_table_check.c - arbitrary bytes as a pre-existing block
 * table: heap_check must judge it exactly as the encoding in heap.h says,
 * and heap_dump_map must print exactly the specified picture of it.
 *
 * Input layout (reads past the end give zeros):
 *   u8  flags   bit 0: counters are the table's true counts (else from input)
 *               bit 1: map every table byte onto the 9 meaningful entries
 *                      (00 41 C1 81 01 43 C3 83 03) so valid tables are common
 *               bit 2: give the heap a placement index that agrees with the table
 *               bit 3: ...then flip one block's state in the index (corruption)
 *               bit 4: heap_dump_map with blocks_per_char = 0 (automatic)
 *   u64 used_blocks, u64 live_allocations, u64 rejected_frees (raw counters)
 *   u16 index block to flip (mod total)
 *   u8  blocks_per_char, u16 width, u64 max_lines (map parameters)
 *   rest: the table, one byte per block (0 .. ~64 K blocks)
 *
 * Checks:
 *   - heap_check returns 0 exactly when the independent checker
 *     (fuzz_check_table) accepts the table, the counters equal its counts and
 *     the index (if any) agrees; -ECORRUPT otherwise, with *bad_block being
 *     the first offending block (which is in range) or SIZE_MAX for a counter;
 *   - heap_check never writes (the table is compared before/after);
 *   - heap_check with a NULL heap / table / entries returns -EINVARG;
 *   - heap_dump_map prints byte for byte what fuzz_render_map prints;
 *   - neither touches the data pool (it is a PROT_NONE mapping).
 */
#define _DEFAULT_SOURCE
#include <sys/mman.h>

#include "fuzz_common.h"
#include "memory/heap/heap_index.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#define TC_MAX_BLOCKS (1u << 16)

static uint8_t tc_table[TC_MAX_BLOCKS];
static uint8_t tc_before[TC_MAX_BLOCKS];
static uint8_t tc_view_free[TC_MAX_BLOCKS];
static uint64_t tc_index_mem[(TC_MAX_BLOCKS / 64) * 4 + 64]; /* 8-byte aligned */

/* The data pool is reserved PROT_NONE: touching it would crash. */
static uintptr_t tc_pool(void)
{
    static void* pool;
    if (pool == NULL) {
        pool = mmap(NULL, (TC_MAX_BLOCKS + 2) * FUZZ_BS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
        FUZZ_CHECK(pool != MAP_FAILED);
    }
    return ((uintptr_t)pool + FUZZ_BS) & ~(uintptr_t)(FUZZ_BS - 1);
}

static const uint8_t tc_alphabet[9] = { 0x00, 0x41, 0xC1, 0x81, 0x01, 0x43, 0xC3, 0x83, 0x03 };

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    uint8_t flags = fuzz_u8(&in);
    uint64_t raw_used = fuzz_u64(&in);
    uint64_t raw_live = fuzz_u64(&in);
    uint64_t raw_rejected = fuzz_u64(&in);
    uint16_t flip = fuzz_u16(&in);
    uint8_t k = fuzz_u8(&in);
    uint16_t width = fuzz_u16(&in);
    uint64_t max_lines = fuzz_u64(&in);

    size_t total = in.size - in.pos;
    if (in.pos > in.size) {
        total = 0;
    }
    if (total > TC_MAX_BLOCKS) {
        total = TC_MAX_BLOCKS;
    }
    for (size_t i = 0; i < total; i++) {
        uint8_t e = in.data[in.pos + i];
        tc_table[i] = (flags & 2) ? tc_alphabet[e % 9] : e;
    }

    struct fuzz_table_facts facts = fuzz_check_table(tc_table, total);

    /* Build the heap by hand, as a table found in memory would be. */
    struct heap_table table = { tc_table, total };
    struct heap heap;
    memset(&heap, 0, sizeof(heap));
    int indexed = (flags & 4) && total > 0;
    size_t flipped = SIZE_MAX;
    uintptr_t pool = tc_pool();
    if (indexed) {
        /* heap_create_indexed builds an all-free index (it clears the table:
         * give it a scratch one), then we mark the taken blocks. */
        static uint8_t scratch[TC_MAX_BLOCKS];
        struct heap_table scratch_table = { scratch, total };
        size_t need = heap_index_bytes(total);
        FUZZ_CHECK(need != 0 && need <= sizeof(tc_index_mem));
        FUZZ_CHECK(heap_create_indexed(&heap, (void*)pool, (void*)(pool + total * FUZZ_BS), &scratch_table,
                                       tc_index_mem, sizeof(tc_index_mem)) == PEACHOS_ALL_OK);
        heap.table = &table;
        for (size_t i = 0; i < total; i++) {
            if (tc_table[i] != 0) {
                heap.index_ops->mark(&heap, i, 1, true);
            }
        }
        if (flags & 8) {
            flipped = flip % total;
            heap.index_ops->mark(&heap, flipped, 1, tc_table[flipped] == 0);
        }
    } else {
        heap.table = &table;
        heap.saddr = (void*)pool;
    }
    if (flags & 1) {
        heap.used_blocks = facts.used;
        heap.live_allocations = facts.allocations;
    } else {
        heap.used_blocks = (size_t)raw_used;
        heap.live_allocations = (size_t)raw_live;
    }
    heap.rejected_frees = (size_t)raw_rejected;

    /* What heap_check must say. */
    int want_res = PEACHOS_ALL_OK;
    size_t want_bad = 0x5A5A5A5A; /* untouched on success */
    if (facts.bad != SIZE_MAX) {
        want_res = -ECORRUPT;
        want_bad = facts.bad;
    } else if (facts.used != heap.used_blocks || facts.allocations != heap.live_allocations) {
        want_res = -ECORRUPT;
        want_bad = SIZE_MAX;
    } else if (flipped != SIZE_MAX) {
        want_res = -ECORRUPT;
        want_bad = flipped;
    }

    memcpy(tc_before, tc_table, total);
    size_t bad = 0x5A5A5A5A;
    int res = heap_check(&heap, &bad);
    if (res != want_res || bad != want_bad) {
        fprintf(stderr, "heap_check: got %d bad %zu, want %d bad %zu (total %zu, flags %#x)\n", res, bad,
                want_res, want_bad, total, flags);
    }
    FUZZ_CHECK(res == want_res);
    FUZZ_CHECK(bad == want_bad);
    FUZZ_CHECK(res == PEACHOS_ALL_OK || bad == SIZE_MAX || bad < total);
    FUZZ_CHECK(heap_check(&heap, NULL) == want_res);
    FUZZ_CHECK(memcmp(tc_before, tc_table, total) == 0);

    /* Malformed heaps are refused, not followed. */
    FUZZ_CHECK(heap_check(NULL, &bad) == -EINVARG);
    struct heap no_table = heap;
    no_table.table = NULL;
    FUZZ_CHECK(heap_check(&no_table, &bad) == -EINVARG);
    struct heap_table null_entries = { NULL, total };
    no_table.table = &null_entries;
    FUZZ_CHECK(heap_check(&no_table, &bad) == -EINVARG);

    /* The map, against the independent renderer. Statistics come from the
     * counters and, for largest_free, from the index's view if there is one. */
    for (size_t i = 0; i < total; i++) {
        tc_view_free[i] = tc_table[i] == 0;
    }
    if (flipped != SIZE_MAX) {
        tc_view_free[flipped] = !tc_view_free[flipped];
    }
    struct fuzz_map_stats stats = { heap.used_blocks, total - heap.used_blocks, fuzz_longest_run(tc_view_free, total),
                                    heap.live_allocations, heap.rejected_frees };
    struct heap_stats hs;
    heap_get_stats(&heap, &hs);
    FUZZ_CHECK(hs.total_blocks == total && hs.used_blocks == stats.used && hs.free_blocks == stats.free);
    FUZZ_CHECK(hs.largest_free_run == stats.largest && hs.live_allocations == stats.allocations);
    size_t per_char = (flags & 16) ? 0 : (size_t)k;
    fuzz_compare_map(&heap, tc_table, total, per_char, width, (size_t)max_lines, &stats);
    fuzz_compare_map(&heap, tc_table, total, 1, 64, 0, &stats);
    FUZZ_CHECK(memcmp(tc_before, tc_table, total) == 0);

    /* heap_dump_map with nothing to print to / no heap does nothing. */
    heap_dump_map(NULL, fuzz_buf_write, NULL, 1, 64, 1);
    heap_dump_map(&heap, NULL, NULL, 1, 64, 1);
    return 0;
}
