/*
 * test_heap_check.c - heap_check (every kind of corruption, with the right
 * block; counters; the placement index) and heap_get_stats.
 */
#include "unit.h"

#include "memory/heap/heap_internal.h"

static const bool modes[] = { false, true };
#define FOR_EACH_MODE(indexed) for (size_t mode_ = 0; mode_ < 2 && ((indexed) = modes[mode_], 1); mode_++)

/* The bytes of struct heap that mean something: all of it but the padding
 * at the end of its index layout, which nobody writes (valgrind: a memcmp
 * of the whole struct reads uninitialised bytes). */
#define HEAP_MEANINGFUL_BYTES                                                                                    \
    (offsetof(struct heap, index_layout) + offsetof(struct heap_index_layout, level_len) +                     \
     sizeof(((const struct heap_index_layout*)NULL)->level_len))

/* heap_check must return -ECORRUPT at `block`, and write nothing. */
static void assert_corrupt_(struct unit_heap* u, size_t block, const char* file, int line)
{
    struct heap before;
    memcpy(&before, &u->heap, sizeof(before));
    unsigned char* table = unit_xmalloc(u->blocks);
    memcpy(table, u->table.entries, u->blocks);
    unsigned char* index = NULL;
    if (u->index_mem != NULL) {
        index = unit_xmalloc(u->index_bytes);
        memcpy(index, u->index_mem, u->index_bytes);
    }
    size_t bad = 0xBADBAD;
    int res = heap_check(&u->heap, &bad);
    bool unchanged = memcmp(&before, &u->heap, HEAP_MEANINGFUL_BYTES) == 0;
    unchanged = unchanged && memcmp(table, u->table.entries, u->blocks) == 0;
    unchanged = unchanged && (index == NULL || memcmp(index, u->index_mem, u->index_bytes) == 0);
    free(table);
    free(index);
    if (res != -ECORRUPT || bad != block || !unchanged) {
        print_error("heap_check: %d at block %zu, want %d at block %zu%s\n", res, bad, -ECORRUPT, block,
                    unchanged ? "" : " (and it wrote something)");
        unit_print_table("table", u->table.entries, u->blocks);
        _fail(file, line);
    }
    /* Also without a place to store the block. */
    if (heap_check(&u->heap, NULL) != -ECORRUPT) {
        print_error("heap_check(heap, NULL) did not return -ECORRUPT\n");
        _fail(file, line);
    }
}
#define assert_corrupt(u, block) assert_corrupt_((u), (block), __FILE__, __LINE__)

/* Table `hex` with counters that match a correct reading of it. */
struct corrupt_case
{
    const char* table;
    size_t used;
    size_t live;
    size_t bad;
};

static void run_cases(const struct corrupt_case* cases, size_t n)
{
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        for (size_t k = 0; k < n; k++) {
            struct unit_heap u;
            size_t blocks = (strlen(cases[k].table) + 1) / 3;
            unit_heap_make(&u, blocks, indexed);
            unit_set_table(&u.heap, cases[k].table);
            u.heap.used_blocks = cases[k].used;
            u.heap.live_allocations = cases[k].live;
            assert_corrupt(&u, cases[k].bad);
            unit_heap_destroy(&u);
        }
    }
}

static void test_check_clean_heaps(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 70, indexed);
        assert_int_equal(heap_check(&u.heap, NULL), 0);
        unit_assert_clean(&u.heap);
        void* p[10];
        for (size_t i = 0; i < 10; i++) {
            p[i] = heap_malloc_blocks_typed(&u.heap, i + 1, i % 3 == 0 ? HEAP_BLOCK_TYPE_CACHE : HEAP_BLOCK_TYPE_PLAIN);
            assert_non_null(p[i]);
            unit_assert_clean(&u.heap);
        }
        for (size_t i = 0; i < 10; i += 2) {
            heap_free_typed(&u.heap, p[i], i % 3 == 0 ? HEAP_BLOCK_TYPE_CACHE : HEAP_BLOCK_TYPE_PLAIN);
            unit_assert_clean(&u.heap);
        }
        heap_free(&u.heap, p[1] == NULL ? NULL : (char*)p[1] + 1); /* refused: still clean */
        unit_assert_clean(&u.heap);
        /* Fill the rest exactly. */
        while (heap_malloc(&u.heap, 1) != NULL) {
        }
        unit_assert_clean(&u.heap);
        assert_int_equal(u.heap.used_blocks, 70);
        unit_heap_destroy(&u);
    }
}

static void test_check_invalid_args(void** state)
{
    (void)state;
    size_t bad = 77;
    assert_int_equal(heap_check(NULL, &bad), -EINVARG);
    assert_int_equal(heap_check(NULL, NULL), -EINVARG);
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    struct heap copy = u.heap;
    copy.table = NULL;
    assert_int_equal(heap_check(&copy, &bad), -EINVARG);
    struct heap_table no_entries = { NULL, 4 };
    copy.table = &no_entries;
    assert_int_equal(heap_check(&copy, &bad), -EINVARG);
    unit_heap_destroy(&u);
}

/* Flags on a free block (no TAKEN): stray bits. */
static void test_check_stray_flags_on_free_entry(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "41 00 80 00", 1, 1, 2 }, { "41 00 40 00", 1, 1, 2 }, { "41 00 02 00", 1, 1, 2 },
        { "41 00 10 00", 1, 1, 2 }, { "41 00 20 00", 1, 1, 2 }, { "41 00 0E 00", 1, 1, 2 },
        { "41 00 C0 00", 1, 1, 2 }, { "00 00 00 C2", 0, 0, 3 }, { "42 00 00 00", 0, 0, 0 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A TAKEN block without IS_FIRST that no chain leads to. */
static void test_check_orphan_continuation(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "00 01 00 00", 0, 0, 1 }, /* after a free block */
        { "00 81 01 00", 0, 0, 1 }, /* a headless chain */
        { "41 01 00 00", 2, 1, 1 }, /* after a complete 1-block allocation */
        { "C1 01 01 00", 3, 1, 2 }, /* after a complete 2-block allocation */
        { "01 00 00 00", 0, 0, 0 }, /* at block 0 */
        { "00 00 00 03", 0, 0, 3 }, /* a cache continuation, at the end */
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* HAS_NEXT on the last block of the table. */
static void test_check_chain_off_the_end(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "00 00 C1 81", 2, 1, 3 },
        { "00 00 00 C1", 1, 1, 3 },
        { "C1 81 81 81", 4, 1, 3 },
        { "41 00 C3 83", 3, 2, 3 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A chain whose next block is another allocation's first, or free. */
static void test_check_continuation_with_is_first_or_free(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "C1 C1 01 00", 3, 1, 1 }, /* IS_FIRST inside a chain */
        { "C1 41 00 00", 2, 1, 1 }, /* chain runs into a 1-block allocation */
        { "C1 81 81 41", 4, 1, 3 }, /* the "C1 81 81" encoding next to a neighbour */
        { "C1 00 00 00", 2, 1, 1 }, /* chain runs into a free block */
        { "C1 80 01 00", 3, 1, 1 }, /* HAS_NEXT without TAKEN */
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_check_mixed_types(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "C1 83 01 00", 3, 1, 1 },
        { "C1 81 03 00", 3, 1, 2 },
        { "C3 81 03 00", 3, 1, 1 },
        { "C3 01 00 00", 2, 1, 1 },
        { "41 C3 83 01", 4, 2, 3 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_check_reserved_bits(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "51 00 00 00", 1, 1, 0 }, { "61 00 00 00", 1, 1, 0 }, { "00 F1 01 00", 2, 1, 1 },
        { "C1 91 01 00", 3, 1, 1 }, { "C1 21 00 00", 2, 1, 1 }, { "C1 81 31 00", 3, 1, 2 },
        { "00 00 00 53", 1, 1, 3 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Type bits 0x06, 0x08, 0x0A, 0x0C, 0x0E: no owner has them (0x04 is VMAP). */
static void test_check_unknown_type(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "4B 00 00 00", 1, 1, 0 }, { "CB 0B 00 00", 2, 1, 0 }, { "00 47 00 00", 1, 1, 1 },
        { "00 00 4F 00", 1, 1, 2 }, { "41 00 C9 09", 3, 2, 2 }, { "4D 00 00 00", 1, 1, 0 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* VMAP blocks (type 0x04, kvmalloc's backing blocks: table byte 45) are a
 * known type: a table of them is sound, and a VMAP chain follows the rule. */
static void test_check_vmap_blocks(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 8, indexed);
        void* out[3];
        assert_non_null(heap_malloc(&u.heap, UNIT_BS));
        assert_non_null(heap_malloc_blocks_typed(&u.heap, 2, HEAP_BLOCK_TYPE_VMAP));
        assert_int_equal(heap_take_blocks(&u.heap, 3, HEAP_BLOCK_TYPE_VMAP, out), 3);
        heap_free(&u.heap, unit_ptr(&u, 0));
        unit_assert_table(&u.heap, "00 C5 05 45 45 45 00 00");
        assert_int_equal(heap_check(&u.heap, NULL), 0);
        unit_heap_destroy(&u);
    }
    static const struct corrupt_case cases[] = {
        { "45 05 00 00", 2, 1, 1 }, /* a further VMAP block after a complete one */
        { "C5 01 00 00", 2, 1, 1 }, /* a VMAP chain that turns plain */
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The first offending block is reported. */
static void test_check_reports_first_fault(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "00 80 00 01", 0, 0, 1 },
        { "41 00 4B C1", 2, 2, 2 },
        { "C1 81 81 01 C1 01 20 00", 6, 2, 6 },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A well-formed table whose counters disagree: -ECORRUPT, block SIZE_MAX. */
static void test_check_counter_mismatch(void** state)
{
    (void)state;
    static const struct corrupt_case cases[] = {
        { "C1 01 41 00", 4, 2, SIZE_MAX }, /* used too high */
        { "C1 01 41 00", 2, 2, SIZE_MAX }, /* used too low */
        { "C1 01 41 00", 3, 3, SIZE_MAX }, /* live too high */
        { "C1 01 41 00", 3, 1, SIZE_MAX }, /* live too low */
        { "00 00 00 00", 0, 1, SIZE_MAX },
        { "00 00 00 00", SIZE_MAX, 0, SIZE_MAX },
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* And the same table with matching counters is clean. */
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    unit_set_table(&u.heap, "C1 01 41 00");
    u.heap.used_blocks = 3;
    u.heap.live_allocations = 2;
    unit_assert_clean(&u.heap);
    unit_heap_destroy(&u);
}

/* Indexed heap, table written behind the index's back (counters fixed). */
static void test_check_index_disagrees_with_table(void** state)
{
    (void)state;
    static const size_t sizes[] = { 1, 63, 64, 65, 128, 129, 300 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        /* A block marked taken in the table only: first, middle, last. */
        size_t blocks[] = { 0, n / 2, n - 1 };
        for (size_t j = 0; j < 3; j++) {
            struct unit_heap u;
            unit_heap_make(&u, n, true);
            u.table.entries[blocks[j]] = 0x41;
            u.heap.used_blocks = 1;
            u.heap.live_allocations = 1;
            assert_corrupt(&u, blocks[j]);
            unit_heap_destroy(&u);
        }
        /* An allocation freed in the table only. */
        if (n >= 3) {
            struct unit_heap u;
            unit_heap_make(&u, n, true);
            assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 0));
            assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 1));
            u.table.entries[1] = 0;
            u.table.entries[2] = 0;
            u.heap.used_blocks = 1;
            u.heap.live_allocations = 1;
            assert_corrupt(&u, 1);
            unit_heap_destroy(&u);
        }
    }
}

/* Bits flipped in the index's bitmap: caught, at the right block. */
static void test_check_index_bitmap_flipped(void** state)
{
    (void)state;
    static const size_t sizes[] = { 1, 63, 64, 65, 128, 129, 300 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        size_t blocks[] = { 0, n / 2, n - 1 };
        for (size_t j = 0; j < 3; j++) {
            struct unit_heap u;
            unit_heap_make(&u, n, true);
            struct index_mirror* m = mirror(&u);
            size_t b = blocks[j];
            m->bitmap[b / 64] ^= (uint64_t)1 << (b % 64);
            assert_corrupt(&u, b);
            unit_heap_destroy(&u);
        }
    }
}

/*
 * Bits past the last block (in the last word; leaves past the last word
 * have no stored bitmap word) must stay 0. A set one is corruption - and the block reported must be a block of the
 * table (heap_check's contract: "the first offending block"), not a number
 * past its end that a caller would use to index the table.
 */
static void test_check_index_padding_bit_set(void** state)
{
    (void)state;
    static const struct
    {
        size_t blocks;
        size_t bit; /* bitmap bit to set, >= blocks */
    } cases[] = {
        { 1, 1 }, { 1, 63 }, { 63, 63 }, { 65, 64 + 1 }, { 65, 127 }, { 129, 130 }, { 129, 191 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct unit_heap u;
        unit_heap_make(&u, cases[k].blocks, true);
        struct index_mirror* m = mirror(&u);
        assert_true(cases[k].bit / 64 < m->words);
        m->bitmap[cases[k].bit / 64] |= (uint64_t)1 << (cases[k].bit % 64);
        size_t bad = SIZE_MAX;
        assert_int_equal(heap_check(&u.heap, &bad), -ECORRUPT);
        if (bad >= cases[k].blocks) {
            print_error("heap of %zu blocks, padding bit %zu: heap_check reports block %zu\n", cases[k].blocks,
                        cases[k].bit, bad);
        }
        assert_true(bad < cases[k].blocks);
        unit_heap_destroy(&u);
    }
}

static void assert_caught_in_table(struct unit_heap* u, const char* what, size_t at)
{
    size_t bad = SIZE_MAX;
    assert_int_equal(heap_check(&u->heap, &bad), -ECORRUPT);
    if (bad >= u->blocks) {
        print_error("heap of %zu blocks, %s %zu: heap_check reports block %zu\n", u->blocks, what, at, bad);
    }
    assert_true(bad < u->blocks);
}

/* Every field of every summary node, every best and every run count (the
 * padding of each level too), flipped: caught, at a block of the table. */
static void test_check_index_node_corrupted(void** state)
{
    (void)state;
    static const size_t sizes[] = { 1, 64, 65, 129, 300, 1000, 5000 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        struct unit_heap u;
        unit_heap_make(&u, n, true);
        assert_non_null(heap_malloc(&u.heap, 1)); /* not all free: prefix != suffix somewhere */
        const struct heap_index_layout* at = &u.heap.index_layout;
        for (size_t node = 1; node < at->leaves; node++) {
            for (int field = 0; field < 3; field++) {
                uint32_t* f = field == 0 ? &at->nodes[node].prefix
                              : field == 1 ? &at->nodes[node].suffix
                                           : &at->nodes[node].best;
                *f ^= 1;
                assert_caught_in_table(&u, "node", node);
                *f ^= 1;
                unit_assert_clean(&u.heap);
            }
        }
        for (size_t w = 0; w < at->words; w++) {
            at->best[w] ^= 1;
            assert_caught_in_table(&u, "best of word", w);
            at->best[w] ^= 1;
        }
        size_t count_bytes = 8 * (size_t)((uint64_t*)(void*)at->nodes - at->counts);
        for (size_t i = 0; i < count_bytes; i++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                at->counts[i / 8] ^= (uint64_t)1 << (8 * (i % 8) + bit);
                assert_caught_in_table(&u, "count byte", i);
                at->counts[i / 8] ^= (uint64_t)1 << (8 * (i % 8) + bit);
            }
        }
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* An index for a different number of blocks. */
static void test_check_index_total_mismatch(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 70, true);
    mirror(&u)->total = 71;
    assert_corrupt(&u, 0);
    unit_heap_destroy(&u);
}

static void assert_stats(const struct heap* heap, size_t total, size_t used, size_t largest, size_t live,
                         size_t rejected, size_t failed)
{
    struct heap_stats st;
    memset(&st, 0xEE, sizeof(st));
    heap_get_stats(heap, &st);
    assert_int_equal(st.total_blocks, total);
    assert_int_equal(st.used_blocks, used);
    assert_int_equal(st.free_blocks, total - used);
    assert_int_equal(st.largest_free_run, largest);
    assert_int_equal(st.live_allocations, live);
    assert_int_equal(st.rejected_frees, rejected);
    assert_int_equal(st.failed_allocs, failed);
}

static void test_stats_basic(void** state)
{
    (void)state;
    bool indexed;
    FOR_EACH_MODE(indexed)
    {
        struct unit_heap u;
        unit_heap_make(&u, 10, indexed);
        assert_stats(&u.heap, 10, 0, 10, 0, 0, 0);
        void* a = heap_malloc(&u.heap, 2 * UNIT_BS);  /* 0..1 */
        void* b = heap_malloc(&u.heap, 1);            /* 2 */
        void* c = heap_malloc(&u.heap, 3 * UNIT_BS);  /* 3..5 */
        assert_stats(&u.heap, 10, 6, 4, 3, 0, 0);
        heap_free(&u.heap, b);
        assert_stats(&u.heap, 10, 5, 4, 2, 0, 0);
        heap_free(&u.heap, a);
        assert_stats(&u.heap, 10, 3, 4, 1, 0, 0); /* 0..2 free (3), 6..9 free (4) */
        heap_free(&u.heap, (char*)c + UNIT_BS); /* refused */
        heap_free(&u.heap, a);                 /* refused */
        assert_null(heap_malloc(&u.heap, 5 * UNIT_BS));
        assert_stats(&u.heap, 10, 3, 4, 1, 2, 1);
        heap_free(&u.heap, c);
        assert_stats(&u.heap, 10, 0, 10, 0, 2, 1);
        while (heap_malloc(&u.heap, 1) != NULL) {
        }
        assert_stats(&u.heap, 10, 10, 0, 10, 2, 2);
        unit_heap_destroy(&u);
    }
}

/* largest_free_run across 64-block word boundaries, plain and indexed agree. */
static void test_stats_largest_free_run(void** state)
{
    (void)state;
    static const size_t sizes[] = { 1, 63, 64, 65, 128, 129, 200 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        struct unit_heap plain;
        struct unit_heap indexed;
        unit_heap_make(&plain, n, false);
        unit_heap_make(&indexed, n, true);
        uint64_t rng = 1000 + n;
        for (int step = 0; step < 400; step++) {
            size_t want = 1 + unit_rand(&rng) % 70;
            size_t at = unit_rand(&rng) % n;
            if (unit_rand(&rng) % 2 == 0) {
                void* p = heap_malloc(&plain.heap, want * UNIT_BS);
                void* q = heap_malloc(&indexed.heap, want * UNIT_BS);
                assert_int_equal((uintptr_t)p, (uintptr_t)q);
            } else {
                size_t first = heap_allocation_start(&plain.heap, unit_ptr(&plain, at));
                if (first != SIZE_MAX) {
                    heap_free(&plain.heap, unit_ptr(&plain, first));
                    heap_free(&indexed.heap, unit_ptr(&indexed, first));
                }
            }
            /* Reference: the longest run of 00 in the table. */
            size_t best = 0;
            size_t run = 0;
            for (size_t i = 0; i < n; i++) {
                run = plain.table.entries[i] == 0 ? run + 1 : 0;
                best = run > best ? run : best;
            }
            struct heap_stats a;
            struct heap_stats b;
            heap_get_stats(&plain.heap, &a);
            heap_get_stats(&indexed.heap, &b);
            assert_int_equal(a.largest_free_run, best);
            assert_int_equal(b.largest_free_run, best);
            assert_memory_equal(&a, &b, sizeof(a));
            assert_memory_equal(plain.table.entries, indexed.table.entries, n);
        }
        unit_assert_clean(&plain.heap);
        unit_assert_clean(&indexed.heap);
        unit_heap_destroy(&plain);
        unit_heap_destroy(&indexed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_clean_heaps),
        cmocka_unit_test(test_check_invalid_args),
        cmocka_unit_test(test_check_stray_flags_on_free_entry),
        cmocka_unit_test(test_check_orphan_continuation),
        cmocka_unit_test(test_check_chain_off_the_end),
        cmocka_unit_test(test_check_continuation_with_is_first_or_free),
        cmocka_unit_test(test_check_mixed_types),
        cmocka_unit_test(test_check_reserved_bits),
        cmocka_unit_test(test_check_unknown_type),
        cmocka_unit_test(test_check_vmap_blocks),
        cmocka_unit_test(test_check_reports_first_fault),
        cmocka_unit_test(test_check_counter_mismatch),
        cmocka_unit_test(test_check_index_disagrees_with_table),
        cmocka_unit_test(test_check_index_bitmap_flipped),
        cmocka_unit_test(test_check_index_padding_bit_set),
        cmocka_unit_test(test_check_index_node_corrupted),
        cmocka_unit_test(test_check_index_total_mismatch),
        cmocka_unit_test(test_stats_basic),
        cmocka_unit_test(test_stats_largest_free_run),
    };
    return cmocka_run_group_tests_name("heap_check", tests, NULL, NULL);
}
