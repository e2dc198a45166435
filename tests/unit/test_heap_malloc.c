/*
 * test_heap_malloc.c - heap_malloc / heap_malloc_blocks_typed: rounding,
 * first fit, alignment, the exact table encoding, the seed's defects (a run
 * cut short by the table's end, malloc(0), sizes near SIZE_MAX, 64-bit
 * sizes), heap_scan_first_fit, heap_block_to_address / heap_address_to_block.
 *
 * Every test runs on a plain heap and on an indexed one (the placement index
 * must give the very same results).
 */
#include "unit.h"

static const bool modes[] = { false, true };
#define FOR_EACH_MODE(indexed) for (size_t mode_ = 0; mode_ < 2 && ((indexed) = modes[mode_], 1); mode_++)

static void test_malloc_rounds_up_to_blocks(void** state)
{
    (void)state;
    static const struct
    {
        size_t size;
        const char* table;
    } cases[] = {
        { 1, "41 00 00 00 00 00" },
        { 100, "41 00 00 00 00 00" },
        { 4095, "41 00 00 00 00 00" },
        { 4096, "41 00 00 00 00 00" },
        { 4097, "C1 01 00 00 00 00" },
        { 8191, "C1 01 00 00 00 00" },
        { 8192, "C1 01 00 00 00 00" },
        { 8193, "C1 81 01 00 00 00" },
        { 3 * 4096, "C1 81 01 00 00 00" },
        { 3 * 4096 + 1, "C1 81 81 01 00 00" },
        { 5 * 4096 - 7, "C1 81 81 81 01 00" },
        { 6 * 4096, "C1 81 81 81 81 01" },
    };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            struct unit_heap u;
            unit_heap_make(&u, 6, indexed);
            assert_ptr_equal(heap_malloc(&u.heap, cases[k].size), unit_ptr(&u, 0));
            unit_assert_table(&u.heap, cases[k].table);
            unit_assert_clean(&u.heap);
            unit_heap_destroy(&u);
        }
    }
}

/* 1 block 41, 2 blocks C1 01, 3 blocks C1 81 01, n blocks C1 81.. 01: in a row. */
static void test_malloc_exact_encodings(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 16, indexed);
        assert_ptr_equal(heap_malloc(&u.heap, 1 * UNIT_BS), unit_ptr(&u, 0));
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 1));
        assert_ptr_equal(heap_malloc(&u.heap, 3 * UNIT_BS), unit_ptr(&u, 3));
        assert_ptr_equal(heap_malloc(&u.heap, 4 * UNIT_BS), unit_ptr(&u, 6));
        assert_ptr_equal(heap_malloc(&u.heap, 5 * UNIT_BS), unit_ptr(&u, 10));
        unit_assert_table(&u.heap, "41 C1 01 C1 81 01 C1 81 81 01 C1 81 81 81 01 00");
        assert_int_equal(u.heap.used_blocks, 15);
        assert_int_equal(u.heap.live_allocations, 5);
        assert_int_equal(u.heap.failed_allocs, 0);
        unit_assert_clean(&u.heap);
        /* The last free block, then nothing. */
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 15));
        unit_assert_table(&u.heap, "41 C1 01 C1 81 01 C1 81 81 01 C1 81 81 81 01 41");
        assert_null(heap_malloc(&u.heap, 1));
        assert_int_equal(u.heap.failed_allocs, 1);
        unit_heap_destroy(&u);
    }
}

/* A long chain: 200 blocks = C1, 198 x 81, 01. */
static void test_malloc_long_chain(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 203, indexed);
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 0));
        assert_ptr_equal(heap_malloc(&u.heap, 200 * UNIT_BS - 1), unit_ptr(&u, 1));
        const HEAP_BLOCK_TABLE_ENTRY* e = u.table.entries;
        assert_int_equal(e[0], 0x41);
        assert_int_equal(e[1], 0xC1);
        for (size_t i = 2; i < 200; i++) {
            assert_int_equal(e[i], 0x81);
        }
        assert_int_equal(e[200], 0x01);
        assert_int_equal(e[201], 0x00);
        assert_int_equal(e[202], 0x00);
        assert_int_equal(u.heap.used_blocks, 201);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* First fit: the lowest-addressed run long enough, not the best fitting one. */
static void test_malloc_first_fit(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 12, indexed);
        void* a = heap_malloc(&u.heap, 1 * UNIT_BS); /* 0 */
        void* b = heap_malloc(&u.heap, 3 * UNIT_BS); /* 1..3 */
        void* c = heap_malloc(&u.heap, 1 * UNIT_BS); /* 4 */
        void* d = heap_malloc(&u.heap, 2 * UNIT_BS); /* 5..6 */
        void* e = heap_malloc(&u.heap, 1 * UNIT_BS); /* 7 */
        assert_ptr_equal(a, unit_ptr(&u, 0));
        assert_ptr_equal(b, unit_ptr(&u, 1));
        assert_ptr_equal(c, unit_ptr(&u, 4));
        assert_ptr_equal(d, unit_ptr(&u, 5));
        assert_ptr_equal(e, unit_ptr(&u, 7));
        heap_free(&u.heap, b);
        heap_free(&u.heap, d);
        unit_assert_table(&u.heap, "41 00 00 00 41 00 00 41 00 00 00 00");
        /* Holes: 1..3 (3 blocks), 5..6 (2 blocks), 8..11 (4 blocks). A 2-block
         * request takes the first hole that fits (1), not the exact fit (5). */
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 1));
        unit_assert_table(&u.heap, "41 C1 01 00 41 00 00 41 00 00 00 00");
        /* 2 blocks: hole 3 has only 1, so 5..6. */
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 5));
        /* 3 blocks: only 8..10. */
        assert_ptr_equal(heap_malloc(&u.heap, 3 * UNIT_BS), unit_ptr(&u, 8));
        /* 1 block: the lowest free block, 3. */
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 3));
        unit_assert_table(&u.heap, "41 C1 01 41 41 C1 01 41 C1 81 01 00");
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 11));
        assert_null(heap_malloc(&u.heap, 1));
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Pointers are block-aligned, also for a pool that is not at a round address. */
static void test_malloc_block_alignment(void** state)
{
    (void)state;
    static const uintptr_t pools[] = { 0x1000, 0x7000, 0x10000000, 0x12345000 };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t k = 0; k < sizeof(pools) / sizeof(pools[0]); k++) {
            struct unit_heap u;
            unit_heap_make_at(&u, 64, indexed, pools[k]);
            size_t sizes[] = { 1, 4096, 4097, 100, 12288, 7, 30000 };
            for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                void* p = heap_malloc(&u.heap, sizes[s]);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % UNIT_BS, 0);
                assert_true((uintptr_t)p >= pools[k] && (uintptr_t)p < pools[k] + 64 * UNIT_BS);
            }
            unit_heap_destroy(&u);
        }
    }
}

/*
 * Defect 1: the seed's scan returned the start of the trailing free run even
 * when it was too short, handing out memory past the end of the pool.
 */
static void test_malloc_defect1_trailing_run_too_short(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "C1 01 00 00");
        assert_null(heap_malloc(&u.heap, 3 * UNIT_BS));
        assert_null(heap_malloc(&u.heap, 3 * UNIT_BS - 1));
        assert_null(heap_malloc(&u.heap, 4 * UNIT_BS));
        assert_null(heap_malloc(&u.heap, 5 * UNIT_BS));
        unit_assert_table(&u.heap, "C1 01 00 00");
        assert_int_equal(u.heap.used_blocks, 2);
        assert_int_equal(u.heap.live_allocations, 1);
        assert_int_equal(u.heap.failed_allocs, 4);
        /* What does fit still works. */
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 2));
        unit_assert_table(&u.heap, "C1 01 C1 01");
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 1 with free blocks in the middle: none of the short runs may be used. */
static void test_malloc_defect1_no_run_long_enough(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 9, indexed);
        for (size_t i = 0; i < 9; i++) {
            assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, i));
        }
        heap_free(&u.heap, unit_ptr(&u, 1));
        heap_free(&u.heap, unit_ptr(&u, 2));
        heap_free(&u.heap, unit_ptr(&u, 4));
        heap_free(&u.heap, unit_ptr(&u, 6));
        heap_free(&u.heap, unit_ptr(&u, 7));
        heap_free(&u.heap, unit_ptr(&u, 8));
        unit_assert_table(&u.heap, "41 00 00 41 00 41 00 00 00");
        assert_null(heap_malloc(&u.heap, 4 * UNIT_BS));
        unit_assert_table(&u.heap, "41 00 00 41 00 41 00 00 00");
        assert_ptr_equal(heap_malloc(&u.heap, 3 * UNIT_BS), unit_ptr(&u, 6));
        unit_assert_table(&u.heap, "41 00 00 41 00 41 C1 81 01");
        unit_heap_destroy(&u);
    }
}

/* A request larger than the whole heap, on an empty heap. */
static void test_malloc_larger_than_heap(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 5, indexed);
        assert_null(heap_malloc(&u.heap, 5 * UNIT_BS + 1));
        assert_null(heap_malloc_blocks_typed(&u.heap, 6, HEAP_BLOCK_TYPE_PLAIN));
        assert_null(heap_malloc_blocks_typed(&u.heap, SIZE_MAX, HEAP_BLOCK_TYPE_PLAIN));
        unit_assert_table(&u.heap, "00 00 00 00 00");
        assert_int_equal(u.heap.failed_allocs, 3);
        assert_ptr_equal(heap_malloc(&u.heap, 5 * UNIT_BS), unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "C1 81 81 81 01");
        unit_heap_destroy(&u);
    }
}

/* Defect 2: heap_malloc(0) returned a block never marked taken. */
static void test_malloc_defect2_size_zero(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        assert_null(heap_malloc(&u.heap, 0));
        unit_assert_table(&u.heap, "00 00 00 00");
        assert_int_equal(u.heap.used_blocks, 0);
        assert_int_equal(u.heap.live_allocations, 0);
        assert_int_equal(u.heap.failed_allocs, 0);
        assert_null(heap_malloc_blocks_typed(&u.heap, 0, HEAP_BLOCK_TYPE_PLAIN));
        assert_null(heap_malloc_blocks_typed(&u.heap, 0, HEAP_BLOCK_TYPE_CACHE));
        /* Also on a partly used heap, and the next allocation is unaffected. */
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 0));
        assert_null(heap_malloc(&u.heap, 0));
        unit_assert_table(&u.heap, "41 00 00 00");
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 1));
        unit_assert_table(&u.heap, "41 41 00 00");
        assert_int_equal(u.heap.failed_allocs, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 3: sizes near SIZE_MAX wrapped to 0 blocks when rounded up. */
static void test_malloc_defect3_huge_sizes(void** state)
{
    (void)state;
    const size_t sizes[] = {
        SIZE_MAX,
        SIZE_MAX - 1,
        SIZE_MAX - 4094,
        SIZE_MAX - 4095,
        SIZE_MAX - 4096,
        SIZE_MAX - 2 * 4096 + 1,
        SIZE_MAX / 2,
        SIZE_MAX / 2 + 1,
        (SIZE_MAX / 4096) * 4096, /* largest multiple of the block size */
        ((size_t)1 << (sizeof(size_t) * 8 - 1)) + 1,
    };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 0));
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            assert_null(heap_malloc(&u.heap, sizes[k]));
            unit_assert_table(&u.heap, "41 00 00 00");
        }
        assert_int_equal(u.heap.used_blocks, 1);
        assert_int_equal(u.heap.live_allocations, 1);
        assert_int_equal(u.heap.failed_allocs, sizeof(sizes) / sizeof(sizes[0]));
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

static void test_malloc_null_heap(void** state)
{
    (void)state;
    assert_null(heap_malloc(NULL, 1));
    assert_null(heap_malloc(NULL, 0));
    assert_null(heap_malloc(NULL, SIZE_MAX));
    assert_null(heap_malloc_blocks_typed(NULL, 1, HEAP_BLOCK_TYPE_PLAIN));
    assert_null(heap_malloc_blocks_typed(NULL, 1, HEAP_BLOCK_TYPE_CACHE));
}

/* Typed allocations carry the type on every block: 43, C3 03, C3 83 03. */
static void test_malloc_typed_encodings(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 8, indexed);
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 1, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 0));
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 2, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 1));
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 3, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 3));
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 2, HEAP_BLOCK_TYPE_PLAIN), unit_ptr(&u, 6));
        unit_assert_table(&u.heap, "43 C3 03 C3 83 03 C1 01");
        assert_int_equal(u.heap.used_blocks, 8);
        assert_int_equal(u.heap.live_allocations, 4);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* A type other than PLAIN, CACHE or VMAP (outside the mask, or a type
 * heap_check does not know) is refused, uncounted; nothing changes. */
static void test_malloc_typed_bad_type(void** state)
{
    (void)state;
    static const HEAP_BLOCK_TABLE_ENTRY bad[] = {
        0x01, 0x10, 0x20, 0x40, 0x80, 0x03, 0xFF, 0x0F, /* outside the mask */
        0x06, 0x08, 0x0A, 0x0C, 0x0E,                   /* unknown types */
    };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            assert_null(heap_malloc_blocks_typed(&u.heap, 1, bad[k]));
        }
        unit_assert_table(&u.heap, "00 00 00 00");
        assert_int_equal(u.heap.used_blocks, 0);
        assert_int_equal(u.heap.live_allocations, 0);
        assert_int_equal(u.heap.failed_allocs, 0);
        unit_heap_destroy(&u);
    }
}

/* failed_allocs counts only refusals for lack of space. */
static void test_malloc_failed_allocs_counter(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 2, false);
    assert_null(heap_malloc(&u.heap, 0));
    assert_null(heap_malloc_blocks_typed(&u.heap, 1, 0x10));
    assert_int_equal(u.heap.failed_allocs, 0);
    assert_null(heap_malloc(&u.heap, 3 * UNIT_BS));
    assert_int_equal(u.heap.failed_allocs, 1);
    assert_non_null(heap_malloc(&u.heap, 2 * UNIT_BS));
    assert_null(heap_malloc(&u.heap, 1));
    assert_int_equal(u.heap.failed_allocs, 2);
    struct heap_stats st;
    heap_get_stats(&u.heap, &st);
    assert_int_equal(st.failed_allocs, 2);
    unit_heap_destroy(&u);
}

/*
 * Defect 6: the seed cast pointers to unsigned int. A pool above 4 GiB (a
 * fake address: the heap never dereferences the pool) must give back full
 * 64-bit pointers that free correctly; so must a pool straddling 4 GiB.
 */
static void test_malloc_defect6_pool_above_4gib(void** state)
{
    (void)state;
#if UINTPTR_MAX <= 0xFFFFFFFFu
    skip();
#else
    const uintptr_t pool = (uintptr_t)0x100010000000ull; /* low 32 bits: 0x10000000 */
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make_at(&u, 8, indexed, pool);
        assert_ptr_equal(u.heap.saddr, (void*)pool);
        void* a = heap_malloc(&u.heap, 1);
        void* b = heap_malloc(&u.heap, 2 * UNIT_BS);
        void* c = heap_malloc(&u.heap, 1);
        assert_ptr_equal(a, (void*)pool);
        assert_ptr_equal(b, (void*)(pool + UNIT_BS));
        assert_ptr_equal(c, (void*)(pool + 3 * UNIT_BS));
        unit_assert_table(&u.heap, "41 C1 01 41 00 00 00 00");
        assert_int_equal(heap_address_to_block(&u.heap, c), 3);
        assert_ptr_equal(heap_block_to_address(&u.heap, 3), c);
        assert_int_equal(heap_allocation_start(&u.heap, (char*)b + UNIT_BS + 5), 1);
        heap_free(&u.heap, b);
        unit_assert_table(&u.heap, "41 00 00 41 00 00 00 00");
        /* The same low 32 bits below 4 GiB are outside the pool. */
        heap_free(&u.heap, (void*)(pool & 0xFFFFFFFFu));
        assert_int_equal(u.reports.count, 1);
        assert_int_equal(u.reports.last.kind, HEAP_REPORT_FREE_OUTSIDE);
        heap_free(&u.heap, a);
        heap_free(&u.heap, c);
        unit_assert_table(&u.heap, "00 00 00 00 00 00 00 00");
        assert_int_equal(u.heap.rejected_frees, 1);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
#endif
}

static void test_malloc_defect6_pool_straddling_4gib(void** state)
{
    (void)state;
#if UINTPTR_MAX <= 0xFFFFFFFFu
    skip();
#else
    const uintptr_t pool = (uintptr_t)0x100000000ull - 2 * UNIT_BS; /* blocks 2.. are above 4 GiB */
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make_at(&u, 6, indexed, pool);
        void* a = heap_malloc(&u.heap, 2 * UNIT_BS);
        void* b = heap_malloc(&u.heap, 3 * UNIT_BS);
        assert_ptr_equal(a, (void*)pool);
        assert_ptr_equal(b, (void*)(uintptr_t)0x100000000ull);
        assert_int_equal(heap_address_to_block(&u.heap, b), 2);
        assert_int_equal(heap_allocation_start(&u.heap, (char*)b + 2 * UNIT_BS), 2);
        assert_int_equal(heap_allocation_start(&u.heap, (char*)a + UNIT_BS), 0);
        unit_assert_table(&u.heap, "C1 01 C1 81 01 00");
        heap_free(&u.heap, b);
        unit_assert_table(&u.heap, "C1 01 00 00 00 00");
        heap_free(&u.heap, a);
        unit_assert_table(&u.heap, "00 00 00 00 00 00");
        assert_int_equal(u.heap.rejected_frees, 0);
        unit_heap_destroy(&u);
    }
#endif
}

/* A heap larger than 4 GiB of pool: block numbers and addresses beyond 2^32 bytes. */
static void test_malloc_defect6_pool_larger_than_4gib(void** state)
{
    (void)state;
#if UINTPTR_MAX <= 0xFFFFFFFFu
    skip();
#else
    const size_t blocks = ((size_t)1 << 20) + 4; /* 4 GiB + 16 KiB of (fake) pool */
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make_at(&u, blocks, indexed, (uintptr_t)0x200000000000ull);
        void* big = heap_malloc(&u.heap, ((size_t)1 << 32)); /* 2^20 blocks */
        assert_ptr_equal(big, (void*)(uintptr_t)0x200000000000ull);
        void* after = heap_malloc(&u.heap, 1);
        assert_ptr_equal(after, (void*)((uintptr_t)0x200000000000ull + ((uintptr_t)1 << 32)));
        assert_int_equal(heap_address_to_block(&u.heap, after), (size_t)1 << 20);
        assert_int_equal(u.table.entries[(size_t)1 << 20], 0x41);
        assert_int_equal(u.table.entries[((size_t)1 << 20) - 1], 0x01);
        heap_free(&u.heap, after);
        heap_free(&u.heap, big);
        assert_int_equal(u.heap.used_blocks, 0);
        assert_int_equal(u.heap.rejected_frees, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
#endif
}

static void test_block_address_conversions(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make_at(&u, 16, false, 0x40000);
    assert_ptr_equal(heap_block_to_address(&u.heap, 0), (void*)0x40000);
    assert_ptr_equal(heap_block_to_address(&u.heap, 1), (void*)0x41000);
    assert_ptr_equal(heap_block_to_address(&u.heap, 15), (void*)0x4F000);
    assert_int_equal(heap_address_to_block(&u.heap, (void*)0x40000), 0);
    assert_int_equal(heap_address_to_block(&u.heap, (void*)0x40FFF), 0);
    assert_int_equal(heap_address_to_block(&u.heap, (void*)0x41000), 1);
    assert_int_equal(heap_address_to_block(&u.heap, (void*)0x4F123), 15);
    for (size_t b = 0; b < 16; b++) {
        assert_int_equal(heap_address_to_block(&u.heap, heap_block_to_address(&u.heap, b)), b);
    }
    unit_heap_destroy(&u);
}

static void test_scan_first_fit(void** state)
{
    (void)state;
    unsigned char e[10];
    struct heap_table t = { e, 10 };
    unit_parse_hex("00 00 00 00 00 00 00 00 00 00", e, 10);
    assert_int_equal(heap_scan_first_fit(&t, 1), 0);
    assert_int_equal(heap_scan_first_fit(&t, 10), 0);
    assert_int_equal(heap_scan_first_fit(&t, 11), SIZE_MAX);
    assert_int_equal(heap_scan_first_fit(&t, SIZE_MAX), SIZE_MAX);

    unit_parse_hex("41 00 C1 01 00 00 41 00 00 00", e, 10);
    assert_int_equal(heap_scan_first_fit(&t, 1), 1);
    assert_int_equal(heap_scan_first_fit(&t, 2), 4);
    assert_int_equal(heap_scan_first_fit(&t, 3), 7);
    assert_int_equal(heap_scan_first_fit(&t, 4), SIZE_MAX); /* defect 1: trailing run is 3 */

    /* Any non-zero entry counts as not free, even corrupt ones. */
    unit_parse_hex("80 00 40 00 02 00 10 00 01 00", e, 10);
    assert_int_equal(heap_scan_first_fit(&t, 1), 1);
    assert_int_equal(heap_scan_first_fit(&t, 2), SIZE_MAX);

    unit_parse_hex("41 41 41 41 41 41 41 41 41 00", e, 10);
    assert_int_equal(heap_scan_first_fit(&t, 1), 9);
    assert_int_equal(heap_scan_first_fit(&t, 2), SIZE_MAX);

    unit_parse_hex("41 41 41 41 41 41 41 41 41 41", e, 10);
    assert_int_equal(heap_scan_first_fit(&t, 1), SIZE_MAX);

    struct heap_table one = { e, 1 };
    e[0] = 0;
    assert_int_equal(heap_scan_first_fit(&one, 1), 0);
    assert_int_equal(heap_scan_first_fit(&one, 2), SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_rounds_up_to_blocks),
        cmocka_unit_test(test_malloc_exact_encodings),
        cmocka_unit_test(test_malloc_long_chain),
        cmocka_unit_test(test_malloc_first_fit),
        cmocka_unit_test(test_malloc_block_alignment),
        cmocka_unit_test(test_malloc_defect1_trailing_run_too_short),
        cmocka_unit_test(test_malloc_defect1_no_run_long_enough),
        cmocka_unit_test(test_malloc_larger_than_heap),
        cmocka_unit_test(test_malloc_defect2_size_zero),
        cmocka_unit_test(test_malloc_defect3_huge_sizes),
        cmocka_unit_test(test_malloc_null_heap),
        cmocka_unit_test(test_malloc_typed_encodings),
        cmocka_unit_test(test_malloc_typed_bad_type),
        cmocka_unit_test(test_malloc_failed_allocs_counter),
        cmocka_unit_test(test_malloc_defect6_pool_above_4gib),
        cmocka_unit_test(test_malloc_defect6_pool_straddling_4gib),
        cmocka_unit_test(test_malloc_defect6_pool_larger_than_4gib),
        cmocka_unit_test(test_block_address_conversions),
        cmocka_unit_test(test_scan_first_fit),
    };
    return cmocka_run_group_tests_name("heap_malloc", tests, NULL, NULL);
}
