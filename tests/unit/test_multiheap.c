/*
 * test_multiheap.c - the multiheap (multiheap.h): regions kept in address
 * order, overlaps refused with nothing written, first fit across regions
 * (never spanning two, even adjacent ones), frees dispatched by address and
 * every bad free refused, realloc in place and across regions, stats, and
 * multiheap_check finding each broken invariant. Regions are carved out of
 * one arena of real memory, so contents can be checked.
 */
#include "unit.h"

#include "memory/heap/multiheap.h"

#define ARENA_BLOCKS 192

struct fixture
{
    struct multiheap* mh;
    unsigned char* arena; /* ARENA_BLOCKS blocks, block-aligned */
    HEAP_BLOCK_TABLE_ENTRY* tables[MULTIHEAP_MAX_REGIONS + 1];
    void* indexes[MULTIHEAP_MAX_REGIONS + 1];
    size_t n;
    struct unit_reports reports;
};

static void fx_make(struct fixture* f)
{
    memset(f, 0, sizeof(*f));
    f->mh = unit_xmalloc(sizeof(*f->mh));
    memset(f->mh, 0xEE, sizeof(*f->mh));
    assert_int_equal(multiheap_init(f->mh), 0);
    f->arena = aligned_alloc(UNIT_BS, ARENA_BLOCKS * UNIT_BS);
    assert_non_null(f->arena);
    memset(f->arena, 0xEE, ARENA_BLOCKS * UNIT_BS);
    multiheap_set_report(f->mh, unit_record_report, &f->reports);
}

static unsigned char* fx_at(const struct fixture* f, size_t block)
{
    return f->arena + block * UNIT_BS;
}

/* Add the region of `blocks` blocks at arena block `first`, with its own
 * table (and index) from malloc; returns what multiheap_add_region did. */
static int fx_add(struct fixture* f, size_t first, size_t blocks, bool indexed)
{
    assert_true(f->n <= MULTIHEAP_MAX_REGIONS);
    HEAP_BLOCK_TABLE_ENTRY* table = unit_xmalloc(blocks);
    memset(table, 0xEE, blocks);
    size_t index_bytes = indexed ? heap_index_bytes(blocks) : 0;
    void* index = indexed ? unit_xmalloc(index_bytes) : NULL;
    int res = multiheap_add_region(f->mh, fx_at(f, first), fx_at(f, first + blocks), table, index, index_bytes);
    f->tables[f->n] = table;
    f->indexes[f->n] = index;
    f->n++;
    return res;
}

static void fx_assert_clean(const struct fixture* f)
{
    size_t region = 12345;
    size_t block = 12345;
    int res = multiheap_check(f->mh, &region, &block);
    if (res != 0) {
        print_error("multiheap_check: %d at region %zu block %zu\n", res, region, block);
    }
    assert_int_equal(res, 0);
}

static void fx_destroy(struct fixture* f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->tables[i]);
        free(f->indexes[i]);
    }
    free(f->arena);
    free(f->mh);
}

/* cmocka fixtures: a fresh multiheap and arena per test, which must end sound. */
static int fx_setup(void** state)
{
    struct fixture* f = unit_xmalloc(sizeof(*f));
    fx_make(f);
    *state = f;
    return 0;
}

static int fx_teardown(void** state)
{
    struct fixture* f = *state;
    fx_assert_clean(f);
    fx_destroy(f);
    free(f);
    return 0;
}

static struct heap* region(struct fixture* f, size_t k)
{
    struct heap* heap = multiheap_region(f->mh, k);
    assert_non_null(heap);
    return heap;
}

/* ------------------------------------------------------------- the tests */

static void test_null_and_empty(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(multiheap_init(NULL), -EINVARG);
    assert_int_equal(multiheap_add_region(NULL, fx_at(f, 0), fx_at(f, 1), f->arena, NULL, 0), -EINVARG);
    assert_null(multiheap_malloc(NULL, 1));
    assert_null(multiheap_zalloc(NULL, 1));
    assert_null(multiheap_realloc(NULL, NULL, 1));
    assert_null(multiheap_realloc(NULL, f->arena, 1));
    multiheap_free(NULL, f->arena);
    multiheap_set_report(NULL, NULL, NULL);
    assert_int_equal(multiheap_allocation_size(NULL, f->arena), 0);
    assert_false(multiheap_is_address_within_heap(NULL, f->arena));
    assert_null(multiheap_get_heap_for_address(NULL, f->arena));
    assert_null(multiheap_region(NULL, 0));
    assert_int_equal(multiheap_check(NULL, NULL, NULL), -EINVARG);
    /* No region: every request fails and is counted, nothing is inside. */
    fx_assert_clean(f);
    assert_null(multiheap_malloc(f->mh, 1));
    assert_int_equal(f->mh->failed_allocs, 1);
    assert_null(multiheap_malloc(f->mh, 0)); /* size 0: not counted */
    assert_int_equal(f->mh->failed_allocs, 1);
    assert_null(multiheap_region(f->mh, 0));
    assert_false(multiheap_is_address_within_heap(f->mh, f->arena));
    multiheap_free(f->mh, NULL); /* silent */
    assert_int_equal(f->reports.count, 0);
    multiheap_free(f->mh, f->arena);
    assert_int_equal(f->reports.count, 1);
    assert_int_equal(f->reports.last.kind, HEAP_REPORT_FREE_OUTSIDE);
}

/* Added in the order 2, 0, 1 (by address), kept as 0, 1, 2. */
static void test_region_ordering(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 40, 8, true), 0);
    assert_int_equal(fx_add(f, 0, 4, false), 0);
    assert_int_equal(fx_add(f, 20, 6, true), 0);
    assert_int_equal(f->mh->count, 3);
    assert_int_equal(f->mh->total_blocks, 18);
    assert_ptr_equal(region(f, 0)->saddr, fx_at(f, 0));
    assert_ptr_equal(region(f, 1)->saddr, fx_at(f, 20));
    assert_ptr_equal(region(f, 2)->saddr, fx_at(f, 40));
    assert_null(multiheap_region(f->mh, 3));
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(region(f, k)->table->entries[0], 0); /* tables cleared */
    }
    assert_ptr_equal(multiheap_get_heap_for_address(f->mh, fx_at(f, 25) + 17), region(f, 1));
    assert_ptr_equal(multiheap_get_heap_for_address(f->mh, fx_at(f, 47) + UNIT_BS - 1), region(f, 2));
    assert_null(multiheap_get_heap_for_address(f->mh, fx_at(f, 48)));
    assert_null(multiheap_get_heap_for_address(f->mh, fx_at(f, 10)));
    fx_assert_clean(f);
}

/* A refused region writes nothing: not *mh, not its table. */
static void fx_assert_refused(struct fixture* f, size_t first, size_t blocks, bool indexed)
{
    struct multiheap* before = unit_xmalloc(sizeof(*before));
    memcpy(before, f->mh, sizeof(*before));
    assert_int_equal(fx_add(f, first, blocks, indexed), -EINVARG);
    assert_memory_equal(before, f->mh, sizeof(*before));
    for (size_t i = 0; i < blocks; i++) {
        assert_int_equal(f->tables[f->n - 1][i], 0xEE);
    }
    free(before);
}

/* Like fx_assert_refused, for hand-made table and index pointers. */
static void fx_assert_refused_mem(struct fixture* f, size_t first, size_t blocks, void* table, void* index)
{
    struct multiheap* before = unit_xmalloc(sizeof(*before));
    memcpy(before, f->mh, sizeof(*before));
    int res = multiheap_add_region(f->mh, fx_at(f, first), fx_at(f, first + blocks), table, index,
                                   index != NULL ? heap_index_bytes(blocks) : 0);
    assert_int_equal(res, -EINVARG);
    assert_memory_equal(before, f->mh, sizeof(*before));
    free(before);
}

static void test_overlap_refused(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 10, 10, true), 0); /* [10, 20) */
    assert_int_equal(fx_add(f, 30, 4, false), 0); /* [30, 34) */
    fx_assert_refused(f, 10, 10, false); /* the same */
    fx_assert_refused(f, 5, 6, false);   /* over its start */
    fx_assert_refused(f, 19, 3, true);   /* over its end */
    fx_assert_refused(f, 12, 2, false);  /* inside */
    fx_assert_refused(f, 8, 30, false);  /* around both */
    fx_assert_refused(f, 33, 1, false);  /* the last block of the second */
    /* Metadata in another region's pool, or a pool over another's metadata. */
    HEAP_BLOCK_TABLE_ENTRY spare[8];
    fx_assert_refused_mem(f, 40, 4, fx_at(f, 12), NULL);
    fx_assert_refused_mem(f, 40, 4, spare, fx_at(f, 12)); /* index in [10, 20) */
    fx_assert_refused_mem(f, 40, 4, f->tables[0] + 2, NULL);            /* table over another's table */
    fx_assert_refused_mem(f, 40, 4, fx_at(f, 50), f->indexes[0]);      /* index over another's index */
    fx_assert_refused_mem(f, 40, 4, (HEAP_BLOCK_TABLE_ENTRY*)f->mh, NULL); /* table in *mh */
    /* Alignment, size and NULL, as heap_create refuses them. */
    assert_int_equal(multiheap_add_region(f->mh, fx_at(f, 40) + 1, fx_at(f, 42), spare, NULL, 0), -EINVARG);
    assert_int_equal(multiheap_add_region(f->mh, fx_at(f, 42), fx_at(f, 40), spare, NULL, 0), -EINVARG);
    assert_int_equal(multiheap_add_region(f->mh, fx_at(f, 40), fx_at(f, 42), NULL, NULL, 0), -EINVARG);
    assert_int_equal(multiheap_add_region(f->mh, fx_at(f, 40), fx_at(f, 42), spare, spare, 1), -EINVARG);
    assert_int_equal(f->mh->count, 2);
    /* Adjacent on both sides is fine. */
    assert_int_equal(fx_add(f, 20, 10, false), 0);
    assert_int_equal(fx_add(f, 9, 1, true), 0);
    assert_int_equal(f->mh->count, 4);
}

/* A pool that would hold *mh is refused (its memory would be handed out). */
static void test_pool_over_multiheap_refused(void** state)
{
    (void)state;
    unsigned char* arena = aligned_alloc(UNIT_BS, 4 * UNIT_BS);
    assert_non_null(arena);
    struct multiheap* mh = (struct multiheap*)(arena + UNIT_BS);
    assert_true(sizeof(*mh) <= 2 * UNIT_BS);
    assert_int_equal(multiheap_init(mh), 0);
    HEAP_BLOCK_TABLE_ENTRY table[4];
    assert_int_equal(multiheap_add_region(mh, arena, arena + 4 * UNIT_BS, table, NULL, 0), -EINVARG);
    assert_int_equal(multiheap_add_region(mh, arena, arena + UNIT_BS, table, NULL, 0), 0);
    free(arena);
}

static void test_full(void** state)
{
    struct fixture* f = *state;
    for (size_t i = 0; i < MULTIHEAP_MAX_REGIONS; i++) {
        assert_int_equal(fx_add(f, MULTIHEAP_MAX_REGIONS - 1 - i, 1, i % 2 == 0), 0);
    }
    fx_assert_refused(f, MULTIHEAP_MAX_REGIONS + 1, 1, false);
    for (size_t k = 0; k < MULTIHEAP_MAX_REGIONS; k++) {
        assert_ptr_equal(region(f, k)->saddr, fx_at(f, k));
    }
}

/* Lowest region with room, lowest run inside it; never across two. */
static void first_fit_across_regions(struct fixture* f, bool indexed)
{
    assert_int_equal(fx_add(f, 20, 8, indexed), 0); /* region 1 */
    assert_int_equal(fx_add(f, 0, 4, !indexed), 0); /* region 0 */
    assert_ptr_equal(multiheap_malloc(f->mh, 2 * UNIT_BS), fx_at(f, 0));
    assert_ptr_equal(multiheap_malloc(f->mh, 3 * UNIT_BS), fx_at(f, 20)); /* 2 left in region 0 */
    assert_ptr_equal(multiheap_malloc(f->mh, UNIT_BS + 1), fx_at(f, 2));
    assert_ptr_equal(multiheap_malloc(f->mh, 1), fx_at(f, 23));
    unit_assert_table(region(f, 0), "C1 01 C1 01");
    unit_assert_table(region(f, 1), "C1 81 01 41 00 00 00 00");
    multiheap_free(f->mh, fx_at(f, 0));
    assert_ptr_equal(multiheap_malloc(f->mh, 1), fx_at(f, 0)); /* back to the lowest */
    assert_int_equal(f->mh->failed_allocs, 0);
    assert_int_equal(region(f, 0)->failed_allocs, 0); /* passing a region over is no failure */
}

static void test_first_fit_indexed_above(void** state)
{
    first_fit_across_regions(*state, true);
}

static void test_first_fit_indexed_below(void** state)
{
    first_fit_across_regions(*state, false);
}

/* More than any one region holds, though the regions hold it together. */
static void test_too_big_for_any_region(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 0, 4, true), 0);
    assert_int_equal(fx_add(f, 10, 5, false), 0);
    assert_null(multiheap_malloc(f->mh, 6 * UNIT_BS));
    assert_null(multiheap_zalloc(f->mh, 6 * UNIT_BS));
    assert_null(multiheap_malloc(f->mh, SIZE_MAX));
    assert_int_equal(f->mh->failed_allocs, 3);
    assert_int_equal(region(f, 0)->failed_allocs, 0);
    assert_int_equal(region(f, 1)->failed_allocs, 0);
    assert_ptr_equal(multiheap_malloc(f->mh, 5 * UNIT_BS), fx_at(f, 10)); /* the largest fits */
    struct multiheap_stats stats;
    multiheap_get_stats(f->mh, &stats, NULL, 0);
    assert_int_equal(stats.total.failed_allocs, 3);
}

/* Regions of one block, adjacent: two free neighbours are no run of 2. */
static void test_one_block_regions(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 1, 1, false), 0);
    assert_int_equal(fx_add(f, 0, 1, true), 0);
    assert_int_equal(fx_add(f, 2, 1, true), 0);
    assert_null(multiheap_malloc(f->mh, 2 * UNIT_BS));
    assert_int_equal(f->mh->failed_allocs, 1);
    for (size_t b = 0; b < 3; b++) {
        void* p = multiheap_malloc(f->mh, UNIT_BS);
        assert_ptr_equal(p, fx_at(f, b));
        unit_assert_table(region(f, b), "41");
    }
    assert_null(multiheap_malloc(f->mh, 1));
    multiheap_free(f->mh, fx_at(f, 1));
    unit_assert_table(region(f, 1), "00");
    unit_assert_table(region(f, 0), "41");
    assert_ptr_equal(multiheap_realloc(f->mh, fx_at(f, 0), 2 * UNIT_BS), NULL); /* cannot grow into region 1 */
    unit_assert_table(region(f, 1), "00");
    fx_assert_clean(f);
}

static void fill_pattern(unsigned char* p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(i * 7 + i / 4096);
    }
}

static void assert_pattern(const unsigned char* p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i], (unsigned char)(i * 7 + i / 4096));
    }
}

/* Adjacent regions: the end of one is the start of the next. */
static void test_adjacent_regions(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 4, 6, true), 0);
    assert_int_equal(fx_add(f, 0, 4, false), 0);
    unsigned char* a = multiheap_malloc(f->mh, 3 * UNIT_BS);
    assert_ptr_equal(a, fx_at(f, 0));
    unsigned char* b = multiheap_malloc(f->mh, 2 * UNIT_BS); /* not block 3 + block 4 */
    assert_ptr_equal(b, fx_at(f, 4));
    unit_assert_table(region(f, 0), "C1 81 01 00");
    unit_assert_table(region(f, 1), "C1 01 00 00 00 00");
    assert_ptr_equal(multiheap_get_heap_for_address(f->mh, fx_at(f, 4)), region(f, 1));
    assert_ptr_equal(multiheap_get_heap_for_address(f->mh, fx_at(f, 4) - 1), region(f, 0));
    /* a grows in place to 4 blocks, not 5 (block 4 is another region's). */
    assert_ptr_equal(multiheap_realloc(f->mh, a, 4 * UNIT_BS), a);
    unit_assert_table(region(f, 0), "C1 81 81 01");
    fill_pattern(a, 4 * UNIT_BS);
    multiheap_free(f->mh, b);
    unsigned char* c = multiheap_realloc(f->mh, a, 5 * UNIT_BS); /* region 1 is empty now */
    assert_ptr_equal(c, fx_at(f, 4));
    assert_pattern(c, 4 * UNIT_BS);
    unit_assert_table(region(f, 0), "00 00 00 00");
    unit_assert_table(region(f, 1), "C1 81 81 81 01 00");
}

static void test_free_dispatch(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 30, 5, true), 0);
    assert_int_equal(fx_add(f, 10, 3, false), 0);
    assert_int_equal(fx_add(f, 20, 7, true), 0);
    void* p[7];
    for (size_t i = 0; i < 7; i++) {
        p[i] = multiheap_malloc(f->mh, 2 * UNIT_BS);
    }
    assert_ptr_equal(p[0], fx_at(f, 10));
    assert_ptr_equal(p[1], fx_at(f, 20));
    assert_ptr_equal(p[4], fx_at(f, 30));
    assert_ptr_equal(p[5], fx_at(f, 32));
    assert_null(p[6]);
    multiheap_free(f->mh, p[2]);
    unit_assert_table(region(f, 1), "C1 01 00 00 C1 01 00");
    multiheap_free(f->mh, p[4]);
    unit_assert_table(region(f, 2), "00 00 C1 01 00");
    multiheap_free(f->mh, p[0]);
    unit_assert_table(region(f, 0), "00 00 00");
    assert_int_equal(f->reports.count, 0);
    struct multiheap_stats stats;
    multiheap_get_stats(f->mh, &stats, NULL, 0);
    assert_int_equal(stats.total.live_allocations, 3);
    assert_int_equal(stats.total.used_blocks, 6);
    fx_assert_clean(f);
}

/* Every table byte and counter, to show a refused free changed nothing. */
struct mh_snapshot
{
    unsigned char tables[3][64];
    struct multiheap_stats stats;
};

static void mh_snapshot_take(struct fixture* f, struct mh_snapshot* s)
{
    memset(s, 0, sizeof(*s));
    for (size_t k = 0; k < f->mh->count; k++) {
        memcpy(s->tables[k], region(f, k)->table->entries, region(f, k)->table->total);
    }
    multiheap_get_stats(f->mh, &s->stats, NULL, 0);
}

static void fx_assert_bad_free(struct fixture* f, void* ptr, enum heap_report_kind kind, bool outside)
{
    struct mh_snapshot before;
    struct mh_snapshot after;
    mh_snapshot_take(f, &before);
    size_t reports = f->reports.count;
    multiheap_free(f->mh, ptr);
    mh_snapshot_take(f, &after);
    assert_int_equal(f->reports.count, reports + 1);
    assert_int_equal(f->reports.last.kind, kind);
    assert_ptr_equal(f->reports.last.ptr, ptr);
    assert_memory_equal(before.tables, after.tables, sizeof(before.tables));
    assert_int_equal(after.stats.total.rejected_frees, before.stats.total.rejected_frees + 1);
    assert_int_equal(after.stats.rejected_outside, before.stats.rejected_outside + (outside ? 1 : 0));
    assert_int_equal(after.stats.total.used_blocks, before.stats.total.used_blocks);
    assert_int_equal(after.stats.total.live_allocations, before.stats.total.live_allocations);
    if (outside) {
        assert_int_equal(f->reports.last.block, SIZE_MAX);
    }
}

static void test_bad_frees(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 8, 4, true), 0);   /* [8, 12) */
    assert_int_equal(fx_add(f, 16, 4, false), 0); /* [16, 20): a gap before it */
    assert_int_equal(fx_add(f, 20, 2, true), 0);  /* [20, 22): adjacent */
    unsigned char* a = multiheap_malloc(f->mh, 3 * UNIT_BS);
    unsigned char* b = multiheap_malloc(f->mh, 2 * UNIT_BS);
    assert_ptr_equal(b, fx_at(f, 16));
    fx_assert_bad_free(f, fx_at(f, 0), HEAP_REPORT_FREE_OUTSIDE, true);       /* below the first */
    fx_assert_bad_free(f, fx_at(f, 8) - 1, HEAP_REPORT_FREE_OUTSIDE, true);   /* one byte below */
    fx_assert_bad_free(f, fx_at(f, 12), HEAP_REPORT_FREE_OUTSIDE, true);      /* between two */
    fx_assert_bad_free(f, fx_at(f, 15) + 8, HEAP_REPORT_FREE_OUTSIDE, true);  /* between two */
    fx_assert_bad_free(f, fx_at(f, 22), HEAP_REPORT_FREE_OUTSIDE, true);      /* one past the last */
    fx_assert_bad_free(f, (void*)UINTPTR_MAX, HEAP_REPORT_FREE_OUTSIDE, true); /* the top */
    fx_assert_bad_free(f, a + 1, HEAP_REPORT_FREE_UNALIGNED, false);
    fx_assert_bad_free(f, a + UNIT_BS, HEAP_REPORT_FREE_INTERIOR, false);
    fx_assert_bad_free(f, b + UNIT_BS, HEAP_REPORT_FREE_INTERIOR, false);
    fx_assert_bad_free(f, fx_at(f, 21), HEAP_REPORT_FREE_NOT_ALLOCATED, false); /* never allocated */
    assert_int_equal(f->reports.last.block, 1); /* its block in its own region */
    multiheap_free(f->mh, b);
    fx_assert_bad_free(f, b, HEAP_REPORT_FREE_NOT_ALLOCATED, false); /* double free */
    /* Without a hook: only counted. */
    multiheap_set_report(f->mh, NULL, NULL);
    size_t reports = f->reports.count;
    multiheap_free(f->mh, fx_at(f, 12));
    multiheap_free(f->mh, b);
    assert_int_equal(f->reports.count, reports);
    struct multiheap_stats stats;
    multiheap_get_stats(f->mh, &stats, NULL, 0);
    assert_int_equal(stats.rejected_outside, 7);
    assert_int_equal(stats.total.rejected_frees, 7 + 6);
    multiheap_free(f->mh, a);
    fx_assert_clean(f);
}

static void fill(unsigned char* p, size_t n, unsigned char v)
{
    memset(p, v, n);
}

static void assert_filled(const unsigned char* p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != v) {
            print_error("byte %zu is %02X, want %02X\n", i, p[i], v);
            fail();
        }
    }
}

static void test_multiheap_realloc(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 0, 4, true), 0);   /* region 0: [0, 4) */
    assert_int_equal(fx_add(f, 10, 8, false), 0); /* region 1: [10, 18) */
    unsigned char* p = multiheap_realloc(f->mh, NULL, 100); /* = malloc */
    assert_ptr_equal(p, fx_at(f, 0));
    fill(p, UNIT_BS, 0x11);
    assert_ptr_equal(multiheap_realloc(f->mh, p, 3 * UNIT_BS), p); /* grown in place */
    fill(p, 3 * UNIT_BS, 0x22);
    assert_ptr_equal(multiheap_realloc(f->mh, p, UNIT_BS + 1), p); /* shrunk in place */
    assert_ptr_equal(multiheap_realloc(f->mh, p, 2 * UNIT_BS), p); /* the same: stays */
    unit_assert_table(region(f, 0), "C1 01 00 00");
    unsigned char* q = multiheap_malloc(f->mh, UNIT_BS);
    assert_ptr_equal(q, fx_at(f, 2));
    /* No room after it in region 0: moved to region 1, data kept. */
    unsigned char* moved = multiheap_realloc(f->mh, p, 5 * UNIT_BS);
    assert_ptr_equal(moved, fx_at(f, 10));
    assert_filled(moved, 2 * UNIT_BS, 0x22);
    unit_assert_table(region(f, 0), "00 00 41 00");
    unit_assert_table(region(f, 1), "C1 81 81 81 01 00 00 00");
    /* Moving down: the first fit is in region 0 once it has room. */
    fill(moved, 5 * UNIT_BS, 0x33);
    multiheap_free(f->mh, q);
    unsigned char* t = multiheap_malloc(f->mh, UNIT_BS);
    unsigned char* t2 = multiheap_malloc(f->mh, UNIT_BS);
    assert_ptr_equal(t2, fx_at(f, 1));
    multiheap_free(f->mh, t); /* region 0: 00 41 00 00, no run of 3 */
    unsigned char* s = multiheap_malloc(f->mh, 3 * UNIT_BS);
    assert_ptr_equal(s, fx_at(f, 15));
    fill(s, 3 * UNIT_BS, 0x44);
    multiheap_free(f->mh, t2);
    unsigned char* back = multiheap_realloc(f->mh, s, 4 * UNIT_BS); /* no room after it in region 1 */
    assert_ptr_equal(back, fx_at(f, 0));
    assert_filled(back, 3 * UNIT_BS, 0x44);
    unit_assert_table(region(f, 0), "C1 81 81 01");
    unit_assert_table(region(f, 1), "C1 81 81 81 01 00 00 00");
    /* No room anywhere: NULL, counted, nothing changed. */
    struct mh_snapshot before;
    struct mh_snapshot after;
    mh_snapshot_take(f, &before);
    assert_null(multiheap_realloc(f->mh, moved, 9 * UNIT_BS));
    mh_snapshot_take(f, &after);
    assert_memory_equal(before.tables, after.tables, sizeof(before.tables));
    assert_int_equal(f->mh->failed_allocs, 1);
    assert_filled(moved, 5 * UNIT_BS, 0x33);
    /* Bad pointers: refused as multiheap_free refuses them. */
    assert_null(multiheap_realloc(f->mh, fx_at(f, 5), 10));
    assert_int_equal(f->reports.last.kind, HEAP_REPORT_FREE_OUTSIDE);
    assert_null(multiheap_realloc(f->mh, moved + UNIT_BS, 10 * UNIT_BS));
    assert_int_equal(f->reports.last.kind, HEAP_REPORT_FREE_INTERIOR);
    assert_int_equal(f->reports.count, 2);
    mh_snapshot_take(f, &after);
    assert_memory_equal(before.tables, after.tables, sizeof(before.tables));
    /* Size 0 frees. */
    assert_null(multiheap_realloc(f->mh, moved, 0));
    assert_null(multiheap_realloc(f->mh, back, 0));
    unit_assert_table(region(f, 0), "00 00 00 00");
    unit_assert_table(region(f, 1), "00 00 00 00 00 00 00 00");
    assert_null(multiheap_realloc(f->mh, moved, 10)); /* then it is a double free */
    assert_int_equal(f->reports.last.kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
}

static void test_zalloc_and_size(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 3, 3, false), 0);
    unsigned char* z = multiheap_zalloc(f->mh, 2 * UNIT_BS + 5);
    assert_ptr_equal(z, fx_at(f, 3));
    assert_filled(z, 2 * UNIT_BS + 5, 0);
    assert_int_equal(z[2 * UNIT_BS + 5], 0xEE); /* only what was asked */
    assert_int_equal(multiheap_allocation_size(f->mh, z), 3 * UNIT_BS);
    assert_int_equal(multiheap_allocation_size(f->mh, z + UNIT_BS), 0);
    assert_int_equal(multiheap_allocation_size(f->mh, fx_at(f, 2)), 0);
    assert_int_equal(multiheap_allocation_size(f->mh, fx_at(f, 6)), 0);
    assert_int_equal(multiheap_allocation_size(f->mh, NULL), 0);
    assert_true(multiheap_is_address_within_heap(f->mh, z));
    assert_true(multiheap_is_address_within_heap(f->mh, fx_at(f, 6) - 1));
    assert_false(multiheap_is_address_within_heap(f->mh, fx_at(f, 6)));
    assert_false(multiheap_is_address_within_heap(f->mh, fx_at(f, 3) - 1));
    assert_false(multiheap_is_address_within_heap(f->mh, NULL));
    assert_int_equal(f->reports.count, 0); /* asking reports nothing */
    multiheap_free(f->mh, z);
    assert_int_equal(multiheap_allocation_size(f->mh, z), 0);
}

static void test_stats(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 10, 6, false), 0);
    assert_int_equal(fx_add(f, 0, 3, true), 0);
    void* a = multiheap_malloc(f->mh, 2 * UNIT_BS); /* region 0 [0, 2) */
    void* b = multiheap_malloc(f->mh, 2 * UNIT_BS); /* region 1 [10, 12) */
    assert_non_null(multiheap_malloc(f->mh, UNIT_BS)); /* region 0 [2, 3) */
    assert_null(multiheap_malloc(f->mh, 5 * UNIT_BS));
    multiheap_free(f->mh, fx_at(f, 8));
    multiheap_free(f->mh, (unsigned char*)b + 1);
    struct multiheap_stats stats;
    struct heap_stats per[3];
    memset(per, 0x5A, sizeof(per));
    multiheap_get_stats(f->mh, &stats, per, 3);
    assert_int_equal(stats.regions, 2);
    assert_int_equal(stats.total.total_blocks, 9);
    assert_int_equal(stats.total.used_blocks, 5);
    assert_int_equal(stats.total.free_blocks, 4);
    assert_int_equal(stats.total.live_allocations, 3);
    assert_int_equal(stats.total.largest_free_run, 4);
    assert_int_equal(stats.total.rejected_frees, 2);
    assert_int_equal(stats.total.failed_allocs, 1);
    assert_int_equal(stats.rejected_outside, 1);
    assert_int_equal(per[0].total_blocks, 3);
    assert_int_equal(per[0].free_blocks, 0);
    assert_int_equal(per[0].largest_free_run, 0);
    assert_int_equal(per[1].total_blocks, 6);
    assert_int_equal(per[1].live_allocations, 1);
    assert_int_equal(per[1].rejected_frees, 1);
    assert_int_equal(per[2].total_blocks, (size_t)0x5A5A5A5A5A5A5A5Aull); /* past the regions: untouched */
    memset(per, 0x5A, sizeof(per));
    multiheap_get_stats(f->mh, &stats, per, 1); /* only as many as asked */
    assert_int_equal(per[0].total_blocks, 3);
    assert_int_equal(per[1].total_blocks, (size_t)0x5A5A5A5A5A5A5A5Aull);
    (void)a;
}

/* Regions of sizes that are not multiples of 64 (an index word): 65, 100, 1. */
static void test_odd_sizes(void** state)
{
    struct fixture* f = *state;
    assert_true(65 + 1 + 100 + 1 + 1 <= ARENA_BLOCKS);
    assert_int_equal(fx_add(f, 66, 100, true), 0);
    assert_int_equal(fx_add(f, 0, 65, true), 0);
    assert_int_equal(fx_add(f, 167, 1, false), 0);
    void* p[200];
    size_t n = 0;
    while ((p[n] = multiheap_malloc(f->mh, UNIT_BS)) != NULL) {
        n++;
    }
    assert_int_equal(n, 166);
    assert_ptr_equal(p[64], fx_at(f, 64));
    assert_ptr_equal(p[65], fx_at(f, 66));
    assert_ptr_equal(p[165], fx_at(f, 167));
    for (size_t i = 0; i < n; i += 2) {
        multiheap_free(f->mh, p[i]);
    }
    assert_null(multiheap_malloc(f->mh, 2 * UNIT_BS));
    multiheap_free(f->mh, p[99]); /* block 100: with 99 and 101, region 1's blocks 33..35 */
    assert_ptr_equal(multiheap_malloc(f->mh, 3 * UNIT_BS), fx_at(f, 99));
}

/* A region whose index claims room its table lacks refuses (and reports
 * the mismatch); the next region takes the request. */
static void test_index_lies(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 0, 4, true), 0);
    assert_int_equal(fx_add(f, 8, 4, true), 0);
    struct heap* h0 = region(f, 0);
    unit_set_table(h0, "41 41 41 41"); /* behind the counters' and the index's back */
    assert_ptr_equal(multiheap_malloc(f->mh, 1), fx_at(f, 8));
    assert_int_equal(f->reports.last.kind, HEAP_REPORT_INDEX_MISMATCH);
    assert_null(h0->index); /* dropped */
    assert_int_equal(h0->failed_allocs, 1);
    assert_int_equal(f->mh->failed_allocs, 0);
    size_t bad_region = 0;
    size_t bad_block = 0;
    assert_int_equal(multiheap_check(f->mh, &bad_region, &bad_block), -ECORRUPT);
    assert_int_equal(bad_region, 0);
    assert_int_equal(bad_block, SIZE_MAX); /* the counters disagree with the table */
    unit_set_table(h0, "00 00 00 00");
    assert_ptr_equal(multiheap_malloc(f->mh, 1), fx_at(f, 0)); /* the scan now */
    fx_assert_clean(f);
}

static void fx_assert_corrupt(struct fixture* f, size_t want_region, size_t want_block)
{
    size_t bad_region = 12345;
    size_t bad_block = 12345;
    assert_int_equal(multiheap_check(f->mh, &bad_region, &bad_block), -ECORRUPT);
    assert_int_equal(bad_region, want_region);
    assert_int_equal(bad_block, want_block);
    assert_int_equal(multiheap_check(f->mh, NULL, NULL), -ECORRUPT);
}

/* Each invariant broken on purpose, then repaired. */
static void test_check_catches(void** state)
{
    struct fixture* f = *state;
    assert_int_equal(fx_add(f, 20, 4, false), 0);
    assert_int_equal(fx_add(f, 0, 4, true), 0);
    assert_int_equal(fx_add(f, 10, 4, false), 0);
    struct multiheap* mh = f->mh;
    assert_non_null(multiheap_malloc(mh, 2 * UNIT_BS));
    fx_assert_clean(f);
    /* A region's table (I2). */
    struct heap* h1 = region(f, 1);
    h1->table->entries[2] = 0x01; /* an orphan continuation block */
    fx_assert_corrupt(f, 1, 2);
    h1->table->entries[2] = 0x00;
    h1->table = &region(f, 2)->table[0]; /* another region's table */
    fx_assert_corrupt(f, 1, SIZE_MAX);
    h1->table = &mh->slot[mh->order[1]].table;
    /* The order (I1, I3). */
    size_t order0 = mh->order[0];
    mh->order[0] = mh->order[1];
    fx_assert_corrupt(f, SIZE_MAX, SIZE_MAX); /* a slot twice */
    mh->order[0] = MULTIHEAP_MAX_REGIONS + 7;
    fx_assert_corrupt(f, SIZE_MAX, SIZE_MAX); /* no slot */
    mh->order[0] = mh->order[1];
    mh->order[1] = order0;
    fx_assert_corrupt(f, 1, SIZE_MAX); /* swapped: not sorted */
    mh->order[1] = mh->order[0];
    mh->order[0] = order0;
    mh->count = MULTIHEAP_MAX_REGIONS + 1;
    fx_assert_corrupt(f, SIZE_MAX, SIZE_MAX);
    mh->count = 3;
    /* The block count (I4). */
    mh->total_blocks++;
    fx_assert_corrupt(f, SIZE_MAX, SIZE_MAX);
    mh->total_blocks--;
    fx_assert_clean(f);
    /* Metadata in another region's pool (I5): region 2's table moved into
     * region 0's pool (zeroed there, so heap_check alone passes). */
    struct heap* h2 = region(f, 2);
    HEAP_BLOCK_TABLE_ENTRY* entries = h2->table->entries;
    memset(fx_at(f, 3), 0, 4);
    mh->slot[mh->order[2]].table.entries = fx_at(f, 3);
    fx_assert_corrupt(f, 2, SIZE_MAX);
    mh->slot[mh->order[2]].table.entries = entries;
    fx_assert_clean(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_null_and_empty, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_region_ordering, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overlap_refused, fx_setup, fx_teardown),
        cmocka_unit_test(test_pool_over_multiheap_refused),
        cmocka_unit_test_setup_teardown(test_full, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_first_fit_indexed_above, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_first_fit_indexed_below, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_too_big_for_any_region, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_one_block_regions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_adjacent_regions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_free_dispatch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_multiheap_realloc, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zalloc_and_size, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stats, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_odd_sizes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_index_lies, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_check_catches, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests_name("multiheap", tests, NULL, NULL);
}
