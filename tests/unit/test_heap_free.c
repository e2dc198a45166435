/*
 * test_heap_free.c - heap_free / heap_free_typed (exact frees, the seed's
 * free(NULL) and bad-free defects, every report kind), heap_set_report, heap_allocation_start,
 * heap_allocation_blocks, heap_grow_in_place, heap_shrink_in_place.
 *
 * Plain and indexed heaps throughout: the index must follow every change.
 */
#include "unit.h"

static const bool modes[] = { false, true };
#define FOR_EACH_MODE(indexed) for (size_t mode_ = 0; mode_ < 2 && ((indexed) = modes[mode_], 1); mode_++)

/* A(1) B(3) C(2) D(1) E(1) on 9 blocks: 41 C1 81 01 C1 01 41 41 00. */
static void make_abcde(struct unit_heap* u, bool indexed, void* p[5])
{
    unit_heap_make(u, 9, indexed);
    static const size_t sizes[] = { 1, 3, 2, 1, 1 };
    static const size_t starts[] = { 0, 1, 4, 6, 7 };
    for (size_t i = 0; i < 5; i++) {
        p[i] = heap_malloc(&u->heap, sizes[i] * UNIT_BS);
        assert_ptr_equal(p[i], unit_ptr(u, starts[i]));
    }
    unit_assert_table(&u->heap, "41 C1 81 01 C1 01 41 41 00");
}

/* heap_free frees exactly its allocation: neighbours keep every bit. */
static void test_free_exactly_the_allocation(void** state)
{
    (void)state;
    static const struct
    {
        size_t victim;
        const char* table;
        size_t used;
    } cases[] = {
        { 0, "00 C1 81 01 C1 01 41 41 00", 7 },
        { 1, "41 00 00 00 C1 01 41 41 00", 5 },
        { 2, "41 C1 81 01 00 00 41 41 00", 6 },
        { 3, "41 C1 81 01 C1 01 00 41 00", 7 },
        { 4, "41 C1 81 01 C1 01 41 00 00", 7 },
    };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            struct unit_heap u;
            void* p[5];
            make_abcde(&u, indexed, p);
            heap_free(&u.heap, p[cases[k].victim]);
            unit_assert_table(&u.heap, cases[k].table);
            assert_int_equal(u.heap.used_blocks, cases[k].used);
            assert_int_equal(u.heap.live_allocations, 4);
            assert_int_equal(u.heap.rejected_frees, 0);
            assert_int_equal(u.reports.count, 0);
            unit_assert_clean(&u.heap);
            unit_heap_destroy(&u);
        }
    }
}

/* The encoding C1 81 01 ends the chain: a 3-block free must not spill into a
 * following allocation (the "C1 81 81" encoding would). */
static void test_free_does_not_spill_into_next(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 6, indexed);
        void* a = heap_malloc(&u.heap, 3 * UNIT_BS);
        void* b = heap_malloc(&u.heap, 1);
        void* c = heap_malloc(&u.heap, 2 * UNIT_BS);
        unit_assert_table(&u.heap, "C1 81 01 41 C1 01");
        heap_free(&u.heap, a);
        unit_assert_table(&u.heap, "00 00 00 41 C1 01");
        heap_free(&u.heap, c);
        unit_assert_table(&u.heap, "00 00 00 41 00 00");
        heap_free(&u.heap, b);
        unit_assert_table(&u.heap, "00 00 00 00 00 00");
        assert_int_equal(u.heap.used_blocks, 0);
        assert_int_equal(u.heap.live_allocations, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Free everything, in an order, and the freed space is reused first fit. */
static void test_free_then_reuse(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        heap_free(&u.heap, p[1]);
        heap_free(&u.heap, p[2]);
        unit_assert_table(&u.heap, "41 00 00 00 00 00 41 41 00");
        assert_ptr_equal(heap_malloc(&u.heap, 5 * UNIT_BS), unit_ptr(&u, 1));
        unit_assert_table(&u.heap, "41 C1 81 81 81 01 41 41 00");
        heap_free(&u.heap, unit_ptr(&u, 1));
        heap_free(&u.heap, p[0]);
        heap_free(&u.heap, p[3]);
        heap_free(&u.heap, p[4]);
        unit_assert_table(&u.heap, "00 00 00 00 00 00 00 00 00");
        assert_ptr_equal(heap_malloc(&u.heap, 9 * UNIT_BS), unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "C1 81 81 81 81 81 81 81 01");
        assert_int_equal(u.heap.rejected_frees, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 4: heap_free(NULL) wrote below the table. It does nothing at all. */
static void test_free_defect4_null(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        /* The table sits inside a buffer with guards on both sides. */
        unsigned char buf[16 + 4 + 16];
        memset(buf, 0x77, sizeof(buf));
        struct heap_table table = { buf + 16, 4 };
        struct heap heap;
        struct unit_reports reports = { 0 };
        void* index = NULL;
        size_t index_bytes = heap_index_bytes(4);
        if (indexed) {
            index = unit_xmalloc(index_bytes);
            assert_int_equal(heap_create_indexed(&heap, (void*)UNIT_POOL, (void*)(UNIT_POOL + 4 * UNIT_BS), &table,
                                                 index, index_bytes),
                             0);
        } else {
            assert_int_equal(heap_create(&heap, (void*)UNIT_POOL, (void*)(UNIT_POOL + 4 * UNIT_BS), &table), 0);
        }
        heap_set_report(&heap, unit_record_report, &reports);
        assert_non_null(heap_malloc(&heap, 2 * UNIT_BS));
        struct heap before = heap;
        heap_free(&heap, NULL);
        heap_free_typed(&heap, NULL, HEAP_BLOCK_TYPE_CACHE);
        assert_memory_equal(&heap, &before, sizeof(heap));
        unit_assert_table(&heap, "C1 01 00 00");
        for (size_t i = 0; i < 16; i++) {
            assert_int_equal(buf[i], 0x77);
            assert_int_equal(buf[16 + 4 + i], 0x77);
        }
        assert_int_equal(reports.count, 0);
        assert_int_equal(heap.rejected_frees, 0);
        unit_assert_clean(&heap);
        free(index);
    }
}

/* A NULL heap: nothing to free, nothing to report, no crash, and a real
 * heap whose live allocation sits at that very pointer is left alone. */
static void test_free_null_heap(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, true);
    void* p = heap_malloc(&u.heap, 2 * UNIT_BS);
    assert_ptr_equal(p, (void*)UNIT_POOL);
    heap_free(NULL, NULL);
    heap_free(NULL, p);
    heap_free_typed(NULL, p, HEAP_BLOCK_TYPE_CACHE);
    unit_assert_table(&u.heap, "C1 01 00 00");
    assert_int_equal(u.heap.live_allocations, 1);
    assert_int_equal(u.heap.rejected_frees, 0);
    assert_int_equal(u.reports.count, 0);
    unit_assert_clean(&u.heap);
    unit_heap_destroy(&u);
}

/* Defect 5: an interior (block-aligned) pointer of a live allocation. */
static void test_free_defect5_interior(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        unit_assert_refused_free(&u, unit_ptr(&u, 2), HEAP_REPORT_FREE_INTERIOR, 2);
        unit_assert_refused_free(&u, unit_ptr(&u, 3), HEAP_REPORT_FREE_INTERIOR, 3);
        unit_assert_refused_free(&u, unit_ptr(&u, 5), HEAP_REPORT_FREE_INTERIOR, 5);
        unit_assert_table(&u.heap, "41 C1 81 01 C1 01 41 41 00");
        assert_int_equal(u.heap.rejected_frees, 3);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 5: a pointer inside the pool but not at a block start. */
static void test_free_defect5_unaligned(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        char* base = (char*)u.heap.saddr;
        unit_assert_refused_free(&u, base + 1, HEAP_REPORT_FREE_UNALIGNED, 0);
        unit_assert_refused_free(&u, base + UNIT_BS + 8, HEAP_REPORT_FREE_UNALIGNED, 1);
        unit_assert_refused_free(&u, base + 2 * UNIT_BS - 1, HEAP_REPORT_FREE_UNALIGNED, 1);
        unit_assert_refused_free(&u, base + 2 * UNIT_BS + 2048, HEAP_REPORT_FREE_UNALIGNED, 2);
        unit_assert_refused_free(&u, base + 8 * UNIT_BS + 16, HEAP_REPORT_FREE_UNALIGNED, 8); /* free block */
        unit_assert_refused_free(&u, base + 9 * UNIT_BS - 1, HEAP_REPORT_FREE_UNALIGNED, 8); /* last byte */
        assert_int_equal(u.heap.rejected_frees, 6);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 5: pointers before and after the pool. */
static void test_free_defect5_outside(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        char* base = (char*)u.heap.saddr;
        unit_assert_refused_free(&u, base - 1, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, base - UNIT_BS, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, (void*)(uintptr_t)0x1000, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, base + 9 * UNIT_BS, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX); /* end */
        unit_assert_refused_free(&u, base + 9 * UNIT_BS + 1, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, base + 100 * UNIT_BS, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, (void*)UINTPTR_MAX, HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        unit_assert_refused_free(&u, (void*)(UINTPTR_MAX - UNIT_BS + 1), HEAP_REPORT_FREE_OUTSIDE, SIZE_MAX);
        assert_int_equal(u.heap.rejected_frees, 8);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Defect 5: a free block (never allocated). */
static void test_free_defect5_free_block(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        unit_assert_refused_free(&u, unit_ptr(&u, 8), HEAP_REPORT_FREE_NOT_ALLOCATED, 8);
        heap_free(&u.heap, p[1]);
        unit_assert_table(&u.heap, "41 00 00 00 C1 01 41 41 00");
        /* Blocks of a freed allocation are free blocks now, first or not. */
        unit_assert_refused_free(&u, unit_ptr(&u, 2), HEAP_REPORT_FREE_NOT_ALLOCATED, 2);
        unit_assert_refused_free(&u, unit_ptr(&u, 3), HEAP_REPORT_FREE_NOT_ALLOCATED, 3);
        unit_heap_destroy(&u);
    }
}

/* Defect 5: a second free of the same pointer. */
static void test_free_defect5_double_free(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p);
        heap_free(&u.heap, p[2]);
        unit_assert_table(&u.heap, "41 C1 81 01 00 00 41 41 00");
        unit_assert_refused_free(&u, p[2], HEAP_REPORT_FREE_NOT_ALLOCATED, 4);
        unit_assert_refused_free(&u, p[2], HEAP_REPORT_FREE_NOT_ALLOCATED, 4);
        unit_assert_table(&u.heap, "41 C1 81 01 00 00 41 41 00");
        assert_int_equal(u.heap.used_blocks, 6);
        assert_int_equal(u.heap.live_allocations, 4);
        assert_int_equal(u.heap.rejected_frees, 2);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* heap_free on a block of the small-object cache: wrong owner, and back. */
static void test_free_wrong_owner(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 6, indexed);
        void* cache = heap_malloc_blocks_typed(&u.heap, 2, HEAP_BLOCK_TYPE_CACHE);
        void* plain = heap_malloc(&u.heap, 3 * UNIT_BS);
        assert_ptr_equal(cache, unit_ptr(&u, 0));
        assert_ptr_equal(plain, unit_ptr(&u, 2));
        unit_assert_table(&u.heap, "C3 03 C1 81 01 00");
        unit_assert_refused_free(&u, cache, HEAP_REPORT_FREE_WRONG_OWNER, 0);
        unit_assert_refused_free_typed(&u, plain, HEAP_BLOCK_TYPE_CACHE, HEAP_REPORT_FREE_WRONG_OWNER, 2);
        /* Interior / unaligned / outside / free checks apply to typed frees too. */
        unit_assert_refused_free_typed(&u, unit_ptr(&u, 1), HEAP_BLOCK_TYPE_CACHE, HEAP_REPORT_FREE_INTERIOR, 1);
        unit_assert_refused_free_typed(&u, unit_ptr(&u, 5), HEAP_BLOCK_TYPE_CACHE, HEAP_REPORT_FREE_NOT_ALLOCATED,
                                       5);
        unit_assert_refused_free_typed(&u, (char*)cache + 3, HEAP_BLOCK_TYPE_CACHE, HEAP_REPORT_FREE_UNALIGNED, 0);
        unit_assert_refused_free_typed(&u, unit_ptr(&u, 6), HEAP_BLOCK_TYPE_CACHE, HEAP_REPORT_FREE_OUTSIDE,
                                       SIZE_MAX);
        /* The right owner frees each. */
        heap_free_typed(&u.heap, cache, HEAP_BLOCK_TYPE_CACHE);
        unit_assert_table(&u.heap, "00 00 C1 81 01 00");
        heap_free(&u.heap, plain);
        unit_assert_table(&u.heap, "00 00 00 00 00 00");
        assert_int_equal(u.heap.rejected_frees, 6);
        assert_int_equal(u.heap.used_blocks, 0);
        assert_int_equal(u.heap.live_allocations, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/*
 * A chain broken on purpose: heap_free must not follow it (it would free
 * someone else's blocks). Each case: table before (counters made to match),
 * pointer block, expected report block.
 */
static void test_free_corrupt_chain(void** state)
{
    (void)state;
    static const struct
    {
        const char* table;
        size_t used;
        size_t live;
        size_t free_block;
    } cases[] = {
        { "C1 00 00 41 00 00", 2, 2, 0 },    /* chain into a free block */
        { "C1 81 81 41 00 00", 4, 2, 0 },    /* "C1 81 81": runs into the next allocation */
        { "C1 81 C1 01 00 00", 4, 2, 0 },    /* continuation with IS_FIRST */
        { "00 00 00 00 C1 81", 2, 1, 4 },    /* chain runs off the end of the table */
        { "00 00 00 00 00 C1", 1, 1, 5 },    /* single block with HAS_NEXT at the end */
        { "C1 83 01 00 00 00", 3, 1, 0 },    /* continuation of another type */
        { "C1 A1 01 00 00 00", 3, 1, 0 },    /* reserved bit in a continuation */
        { "71 00 00 00 00 00", 1, 1, 0 },    /* reserved bits in the first block */
        { "C1 80 01 00 00 00", 3, 1, 0 },    /* continuation without TAKEN */
    };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            struct unit_heap u;
            unit_heap_make(&u, 6, indexed);
            unit_set_table(&u.heap, cases[k].table);
            u.heap.used_blocks = cases[k].used;
            u.heap.live_allocations = cases[k].live;
            unit_assert_refused_free(&u, unit_ptr(&u, cases[k].free_block), HEAP_REPORT_FREE_CORRUPT,
                                     cases[k].free_block);
            unit_assert_table(&u.heap, cases[k].table);
            unit_heap_destroy(&u);
        }
    }
}

/* Without a hook, refused frees are only counted. */
/*
 * heap.c writes and checks table bytes a word at a time (8 bytes), the last
 * few bytes of the table one by one: every allocation length at every
 * offset of a 24-block table (so chains start and end inside a word, across
 * words and in the byte-by-byte tail), written exactly, freed exactly, and
 * refused as corrupt whichever continuation byte is broken or when the
 * table's last block claims a successor. ASan sees any access past the
 * table (unit_heap_make gives it exactly `blocks` bytes).
 */
static void test_chain_every_length_and_offset(void** state)
{
    (void)state;
    enum { BLOCKS = 24 };
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t start = 0; start < BLOCKS; start++) {
            for (size_t n = 1; start + n <= BLOCKS; n++) {
                struct unit_heap u;
                unit_heap_make(&u, BLOCKS, indexed);
                HEAP_BLOCK_TABLE_ENTRY* e = u.heap.table->entries;
                if (start > 0) {
                    assert_ptr_equal(heap_malloc(&u.heap, start * UNIT_BS), unit_ptr(&u, 0));
                }
                void* p = heap_malloc(&u.heap, n * UNIT_BS);
                assert_ptr_equal(p, unit_ptr(&u, start));
                for (size_t i = 0; i < BLOCKS; i++) {
                    HEAP_BLOCK_TABLE_ENTRY want = 0x00;
                    if (i + 1 < start) {
                        want = (HEAP_BLOCK_TABLE_ENTRY)(i == 0 ? 0xC1 : 0x81);
                    } else if (i + 1 == start) {
                        want = (HEAP_BLOCK_TABLE_ENTRY)(i == 0 ? 0x41 : 0x01);
                    } else if (i >= start && i < start + n) {
                        want = (HEAP_BLOCK_TABLE_ENTRY)((i == start ? 0x41 : 0x01) | (i + 1 < start + n ? 0x80 : 0));
                    }
                    assert_int_equal(e[i], want);
                }
                assert_int_equal(heap_allocation_blocks(&u.heap, start), n);
                /* Break each continuation in turn (free, IS_FIRST, other type). */
                static const HEAP_BLOCK_TABLE_ENTRY broken[] = { 0x00, 0x40, 0x02 };
                for (size_t k = 1; k < n; k++) {
                    for (size_t b = 0; b < sizeof(broken) / sizeof(broken[0]); b++) {
                        HEAP_BLOCK_TABLE_ENTRY keep = e[start + k];
                        e[start + k] = (HEAP_BLOCK_TABLE_ENTRY)(b == 0 ? 0x00 : keep ^ broken[b]);
                        unit_assert_refused_free(&u, p, HEAP_REPORT_FREE_CORRUPT, start);
                        e[start + k] = keep;
                    }
                }
                if (start + n == BLOCKS) {
                    e[BLOCKS - 1] |= HEAP_BLOCK_HAS_NEXT; /* a successor past the table */
                    unit_assert_refused_free(&u, p, HEAP_REPORT_FREE_CORRUPT, start);
                    e[BLOCKS - 1] &= (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT;
                }
                u.heap.rejected_frees = 0;
                unit_assert_clean(&u.heap);
                heap_free(&u.heap, p);
                for (size_t i = start; i < BLOCKS; i++) {
                    assert_int_equal(e[i], 0x00);
                }
                assert_int_equal(u.heap.used_blocks, start);
                assert_int_equal(u.heap.live_allocations, start > 0 ? 1 : 0);
                assert_int_equal(u.heap.rejected_frees, 0);
                unit_assert_clean(&u.heap);
                unit_heap_destroy(&u);
            }
        }
    }
}

static void test_free_refused_without_hook(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    heap_set_report(&u.heap, NULL, NULL);
    assert_null(u.heap.report);
    void* a = heap_malloc(&u.heap, 2 * UNIT_BS);
    heap_free(&u.heap, (char*)a + UNIT_BS);
    heap_free(&u.heap, (char*)a + 1);
    heap_free(&u.heap, unit_ptr(&u, 3));
    heap_free(&u.heap, unit_ptr(&u, 4));
    unit_assert_table(&u.heap, "C1 01 00 00");
    assert_int_equal(u.heap.rejected_frees, 4);
    assert_int_equal(u.reports.count, 0);
    heap_free(&u.heap, a);
    heap_free(&u.heap, a);
    assert_int_equal(u.heap.rejected_frees, 5);
    unit_assert_table(&u.heap, "00 00 00 00");
    unit_heap_destroy(&u);
}

/* heap_set_report: installs fn and ctx; ctx reaches the hook; NULL heap is harmless. */
static int other_ctx_calls;
static void other_hook(void* ctx, const struct heap_report* report)
{
    assert_ptr_equal(ctx, &other_ctx_calls);
    assert_int_equal(report->kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
    other_ctx_calls++;
}

static void test_set_report(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    assert_ptr_equal(u.heap.report, unit_record_report);
    assert_ptr_equal(u.heap.report_ctx, &u.reports);
    heap_free(&u.heap, unit_ptr(&u, 0));
    assert_int_equal(u.reports.count, 1);
    heap_set_report(&u.heap, other_hook, &other_ctx_calls);
    assert_ptr_equal(u.heap.report, other_hook);
    assert_ptr_equal(u.heap.report_ctx, &other_ctx_calls);
    heap_free(&u.heap, unit_ptr(&u, 0));
    heap_free(&u.heap, unit_ptr(&u, 1));
    assert_int_equal(other_ctx_calls, 2);
    assert_int_equal(u.reports.count, 1); /* the old hook is no longer called */
    assert_int_equal(u.heap.rejected_frees, 3);
    heap_set_report(NULL, other_hook, NULL); /* no crash */
    unit_heap_destroy(&u);
}

static void test_allocation_start(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        void* p[5];
        make_abcde(&u, indexed, p); /* 41 C1 81 01 C1 01 41 41 00 */
        char* base = (char*)u.heap.saddr;
        static const size_t owner[9] = { 0, 1, 1, 1, 4, 4, 6, 7, SIZE_MAX };
        for (size_t b = 0; b < 9; b++) {
            assert_int_equal(heap_allocation_start(&u.heap, base + b * UNIT_BS), owner[b]);
            assert_int_equal(heap_allocation_start(&u.heap, base + b * UNIT_BS + 1), owner[b]);
            assert_int_equal(heap_allocation_start(&u.heap, base + b * UNIT_BS + UNIT_BS - 1), owner[b]);
        }
        assert_int_equal(heap_allocation_start(&u.heap, base - 1), SIZE_MAX);
        assert_int_equal(heap_allocation_start(&u.heap, base + 9 * UNIT_BS), SIZE_MAX);
        assert_int_equal(heap_allocation_start(&u.heap, NULL), SIZE_MAX);
        unit_heap_destroy(&u);
    }
}

/* Broken chains: an orphan continuation has no allocation start. */
static void test_allocation_start_broken_chain(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 6, false);
    unit_set_table(&u.heap, "01 00 81 01 41 01");
    assert_int_equal(heap_allocation_start(&u.heap, unit_ptr(&u, 0)), SIZE_MAX); /* block 0, not first */
    assert_int_equal(heap_allocation_start(&u.heap, unit_ptr(&u, 2)), SIZE_MAX); /* previous is free */
    assert_int_equal(heap_allocation_start(&u.heap, unit_ptr(&u, 3)), SIZE_MAX); /* walks to 2, then free 1 */
    assert_int_equal(heap_allocation_start(&u.heap, unit_ptr(&u, 4)), 4);
    assert_int_equal(heap_allocation_start(&u.heap, unit_ptr(&u, 5)), SIZE_MAX); /* 41 has no HAS_NEXT */
    unit_heap_destroy(&u);
}

static void test_allocation_blocks(void** state)
{
    (void)state;
    struct unit_heap u;
    void* p[5];
    make_abcde(&u, false, p); /* 41 C1 81 01 C1 01 41 41 00 */
    static const size_t blocks[9] = { 1, 3, 0, 0, 2, 0, 1, 1, 0 };
    for (size_t b = 0; b < 9; b++) {
        assert_int_equal(heap_allocation_blocks(&u.heap, b), blocks[b]);
    }
    assert_int_equal(heap_allocation_blocks(&u.heap, 9), 0);
    assert_int_equal(heap_allocation_blocks(&u.heap, SIZE_MAX), 0);
    /* Cache allocations count the same way. */
    heap_free(&u.heap, p[1]);
    assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 3, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 1));
    assert_int_equal(heap_allocation_blocks(&u.heap, 1), 3);
    /* A chain that runs off the end stops at the end of the table. */
    unit_set_table(&u.heap, "00 00 00 00 00 00 00 C1 81");
    assert_int_equal(heap_allocation_blocks(&u.heap, 7), 2);
    /* IS_FIRST without TAKEN is no allocation. */
    unit_set_table(&u.heap, "40 00 00 00 00 00 00 00 00");
    assert_int_equal(heap_allocation_blocks(&u.heap, 0), 0);
    unit_heap_destroy(&u);
}

static void test_grow_in_place(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 8, indexed);
        void* a = heap_malloc(&u.heap, 1);
        assert_ptr_equal(a, unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "41 00 00 00 00 00 00 00");
        assert_true(heap_grow_in_place(&u.heap, 0, 1, 3));
        unit_assert_table(&u.heap, "C1 81 01 00 00 00 00 00");
        assert_int_equal(u.heap.used_blocks, 3);
        assert_int_equal(u.heap.live_allocations, 1);
        unit_assert_clean(&u.heap);
        assert_true(heap_grow_in_place(&u.heap, 0, 3, 4));
        unit_assert_table(&u.heap, "C1 81 81 01 00 00 00 00");
        /* The index knows: the next allocation goes after the grown one. */
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 4));
        unit_assert_table(&u.heap, "C1 81 81 01 41 00 00 00");
        /* Blocked by a neighbour: false, nothing changes. */
        assert_false(heap_grow_in_place(&u.heap, 0, 4, 5));
        unit_assert_table(&u.heap, "C1 81 81 01 41 00 00 00");
        /* want <= have: false. */
        assert_false(heap_grow_in_place(&u.heap, 4, 1, 1));
        assert_false(heap_grow_in_place(&u.heap, 4, 1, 0));
        /* Up to the end of the table, and not one block further. */
        assert_false(heap_grow_in_place(&u.heap, 4, 1, 5));
        assert_false(heap_grow_in_place(&u.heap, 4, 1, SIZE_MAX));
        unit_assert_table(&u.heap, "C1 81 81 01 41 00 00 00");
        assert_true(heap_grow_in_place(&u.heap, 4, 1, 4));
        unit_assert_table(&u.heap, "C1 81 81 01 C1 81 81 01");
        assert_int_equal(u.heap.used_blocks, 8);
        assert_int_equal(u.heap.live_allocations, 2);
        unit_assert_clean(&u.heap);
        heap_free(&u.heap, a);
        unit_assert_table(&u.heap, "00 00 00 00 C1 81 81 01");
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

static void test_grow_in_place_keeps_type(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 1, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 0));
        assert_true(heap_grow_in_place(&u.heap, 0, 1, 3));
        unit_assert_table(&u.heap, "C3 83 03 00");
        unit_assert_clean(&u.heap);
        heap_free_typed(&u.heap, unit_ptr(&u, 0), HEAP_BLOCK_TYPE_CACHE);
        unit_assert_table(&u.heap, "00 00 00 00");
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

static void test_shrink_in_place(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 7, indexed);
        assert_ptr_equal(heap_malloc(&u.heap, 4 * UNIT_BS), unit_ptr(&u, 0));
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 4));
        unit_assert_table(&u.heap, "C1 81 81 01 41 00 00");
        heap_shrink_in_place(&u.heap, 0, 4, 0); /* want 0: no-op */
        heap_shrink_in_place(&u.heap, 0, 4, 4); /* want == have: no-op */
        heap_shrink_in_place(&u.heap, 0, 4, 5); /* want > have: no-op */
        unit_assert_table(&u.heap, "C1 81 81 01 41 00 00");
        assert_int_equal(u.heap.used_blocks, 5);
        heap_shrink_in_place(&u.heap, 0, 4, 3);
        unit_assert_table(&u.heap, "C1 81 01 00 41 00 00");
        assert_int_equal(u.heap.used_blocks, 4);
        unit_assert_clean(&u.heap);
        heap_shrink_in_place(&u.heap, 0, 3, 2);
        unit_assert_table(&u.heap, "C1 01 00 00 41 00 00");
        unit_assert_clean(&u.heap);
        /* The freed tail is reusable (the index knows). */
        assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 2));
        unit_assert_table(&u.heap, "C1 01 C1 01 41 00 00");
        heap_free(&u.heap, unit_ptr(&u, 2));
        heap_shrink_in_place(&u.heap, 0, 2, 1);
        unit_assert_table(&u.heap, "41 00 00 00 41 00 00");
        assert_int_equal(u.heap.used_blocks, 2);
        assert_int_equal(u.heap.live_allocations, 2);
        unit_assert_clean(&u.heap);
        assert_ptr_equal(heap_malloc(&u.heap, 3 * UNIT_BS), unit_ptr(&u, 1));
        unit_heap_destroy(&u);
    }
}

static void test_shrink_in_place_keeps_type(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 4, indexed);
        assert_ptr_equal(heap_malloc_blocks_typed(&u.heap, 4, HEAP_BLOCK_TYPE_CACHE), unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "C3 83 83 03");
        heap_shrink_in_place(&u.heap, 0, 4, 2);
        unit_assert_table(&u.heap, "C3 03 00 00");
        heap_shrink_in_place(&u.heap, 0, 2, 1);
        unit_assert_table(&u.heap, "43 00 00 00");
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_exactly_the_allocation),
        cmocka_unit_test(test_free_does_not_spill_into_next),
        cmocka_unit_test(test_free_then_reuse),
        cmocka_unit_test(test_free_defect4_null),
        cmocka_unit_test(test_free_null_heap),
        cmocka_unit_test(test_free_defect5_interior),
        cmocka_unit_test(test_free_defect5_unaligned),
        cmocka_unit_test(test_free_defect5_outside),
        cmocka_unit_test(test_free_defect5_free_block),
        cmocka_unit_test(test_free_defect5_double_free),
        cmocka_unit_test(test_free_wrong_owner),
        cmocka_unit_test(test_free_corrupt_chain),
        cmocka_unit_test(test_chain_every_length_and_offset),
        cmocka_unit_test(test_free_refused_without_hook),
        cmocka_unit_test(test_set_report),
        cmocka_unit_test(test_allocation_start),
        cmocka_unit_test(test_allocation_start_broken_chain),
        cmocka_unit_test(test_allocation_blocks),
        cmocka_unit_test(test_grow_in_place),
        cmocka_unit_test(test_grow_in_place_keeps_type),
        cmocka_unit_test(test_shrink_in_place),
        cmocka_unit_test(test_shrink_in_place_keeps_type),
    };
    return cmocka_run_group_tests_name("heap_free", tests, NULL, NULL);
}
