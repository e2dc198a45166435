/*
 * test_heap_index.c - the placement index (heap_index.h): heap_index_bytes,
 * heap_create_indexed's error paths (nothing written), and placement equal
 * to heap_scan_first_fit (the linear reference) on many tables and sizes.
 */
#include "unit.h"

#include "memory/heap/heap_index_bits.h"

/* Sizes around the 64-block words and the power-of-two leaf counts. */
static const size_t sizes[] = { 1, 2, 63, 64, 65, 127, 128, 129, 191, 192, 193, 256, 257, 300, 1000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_index_bytes(void** state)
{
    (void)state;
    assert_int_equal(heap_index_bytes(0), 0);
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
    /* x86_64: 40-byte header + 9 bytes per bitmap word (W: the word and its
     * best) + 8 bytes per word of counts (one byte per word, then one per
     * eight entries of the level below) + 12 bytes per leaf (L = W rounded
     * up to a power of two; node 0 unused), rounded up to whole words. */
    assert_int_equal(heap_index_bytes(1), 72);
    assert_int_equal(heap_index_bytes(63), 72);
    assert_int_equal(heap_index_bytes(64), 72);
    assert_int_equal(heap_index_bytes(65), 96);
    assert_int_equal(heap_index_bytes(128), 96);
    assert_int_equal(heap_index_bytes(129), 128); /* W = 3, L = 4: the padding leaf costs 12 bytes */
    assert_int_equal(heap_index_bytes(256), 136);
    assert_int_equal(heap_index_bytes(257), 192);
    assert_int_equal(heap_index_bytes(25600), 10240);  /* the default 100 MiB heap */
    assert_int_equal(heap_index_bytes(262144), 90728); /* 1 GiB */
    assert_int_equal(heap_index_bytes(262145), 139936); /* just past a power of two: the worst ratio */
    assert_int_equal(heap_index_bytes((size_t)UINT32_MAX - 64), 1485982016u); /* W = 2^26 - 1, L = 2^26 */
    assert_int_equal(heap_index_bytes((size_t)UINT32_MAX - 63), 0); /* too many blocks for 32-bit counts */
    assert_int_equal(heap_index_bytes((size_t)UINT32_MAX), 0);
    assert_int_equal(heap_index_bytes(SIZE_MAX), 0);
#else
    skip();
#endif
}

/*
 * The size goal: at most 1 byte of index per block. It holds for every
 * heap of HEAP_INDEX_ONE_BYTE_FROM blocks or more (below that the fixed
 * header dominates), and the index never exceeds 35/64 byte per block plus
 * the header and 32 bytes: checked for every size up to 2^20 blocks and
 * around every power of two above.
 */
static void check_index_size_bound(size_t n)
{
    size_t bytes = heap_index_bytes(n);
    size_t header = sizeof(void*) == 8 ? 40 : 24;
    if ((n >= HEAP_INDEX_ONE_BYTE_FROM && bytes > n) || 64 * (bytes - header) > 35 * n + 64 * 32) {
        print_error("heap_index_bytes(%zu) = %zu\n", n, bytes);
        fail();
    }
}

static void test_index_bytes_bound(void** state)
{
    (void)state;
    for (size_t n = 1; n <= ((size_t)1 << 20); n++) {
        check_index_size_bound(n);
    }
    for (size_t p = 21; p < 32; p++) {
        size_t n = (size_t)1 << p;
        for (size_t d = 0; d < 130; d++) {
            check_index_size_bound(n - 64 + d);
        }
    }
    assert_true(heap_index_bytes(HEAP_INDEX_ONE_BYTE_FROM - 1) > HEAP_INDEX_ONE_BYTE_FROM - 1);
}

/* heap_index_bytes is what heap_create_indexed needs: one byte less fails. */
static void test_index_bytes_is_exact(void** state)
{
    (void)state;
    for (size_t k = 0; k < NSIZES; k++) {
        size_t blocks = sizes[k];
        size_t need = heap_index_bytes(blocks);
        unsigned char* mem = unit_xmalloc(need + 16);
        HEAP_BLOCK_TABLE_ENTRY* entries = unit_xmalloc(blocks);
        struct heap_table table = { entries, blocks };
        struct heap heap;
        void* end = (void*)(UNIT_POOL + blocks * UNIT_BS);
        assert_int_equal(heap_create_indexed(&heap, (void*)UNIT_POOL, end, &table, mem, need - 1), -EINVARG);
        memset(mem, 0xC7, need + 16);
        assert_int_equal(heap_create_indexed(&heap, (void*)UNIT_POOL, end, &table, mem, need), 0);
        for (size_t i = need; i < need + 16; i++) { /* nothing past `need` */
            assert_int_equal(mem[i], 0xC7);
        }
        assert_ptr_equal(heap.index, mem);
        assert_non_null(heap.index_ops);
        unit_assert_clean(&heap);
        free(mem);
        free(entries);
    }
}

#define BLOCKS 100
#define HEAP_CANARY 0xA5
#define ENTRY_CANARY 0x5A
#define INDEX_CANARY 0x3C

struct fixture
{
    struct heap heap;
    struct heap heap_before;
    struct heap_table table;
    HEAP_BLOCK_TABLE_ENTRY entries[BLOCKS];
    uint64_t index[128]; /* 1024 bytes, 8-byte aligned; heap_index_bytes(100) is far less */
    size_t need;
};

static void fixture_init(struct fixture* f)
{
    memset(&f->heap, HEAP_CANARY, sizeof(f->heap));
    memset(&f->heap_before, HEAP_CANARY, sizeof(f->heap_before));
    memset(f->entries, ENTRY_CANARY, sizeof(f->entries));
    memset(f->index, INDEX_CANARY, sizeof(f->index));
    f->table.entries = f->entries;
    f->table.total = BLOCKS;
    f->need = heap_index_bytes(BLOCKS);
    assert_true(f->need > 0 && f->need + 8 <= sizeof(f->index));
}

static void assert_nothing_written(const struct fixture* f)
{
    assert_memory_equal(&f->heap, &f->heap_before, sizeof(f->heap));
    const unsigned char* e = f->entries;
    for (size_t i = 0; i < BLOCKS; i++) {
        assert_int_equal(e[i], ENTRY_CANARY);
    }
    const unsigned char* x = (const unsigned char*)f->index;
    for (size_t i = 0; i < sizeof(f->index); i++) {
        assert_int_equal(x[i], INDEX_CANARY);
    }
}

#define POOL ((void*)UNIT_POOL)
#define END ((void*)(UNIT_POOL + BLOCKS * UNIT_BS))

static void test_create_indexed_bad_index_memory(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    /* NULL index memory */
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, NULL, f.need), -EINVARG);
    assert_nothing_written(&f);
    /* misaligned (not a multiple of 8) */
    for (size_t off = 1; off < 8; off++) {
        void* mem = (unsigned char*)f.index + off;
        assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, mem, f.need), -EINVARG);
        assert_nothing_written(&f);
    }
    /* too small */
    static const size_t shorter[] = { 0, 1, 8, 40 };
    for (size_t k = 0; k < sizeof(shorter) / sizeof(shorter[0]); k++) {
        assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, shorter[k]), -EINVARG);
        assert_nothing_written(&f);
    }
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need - 1), -EINVARG);
    assert_nothing_written(&f);
}

/*
 * The index must lie apart from the pool, the entries, *table and *heap:
 * each overlap is refused with nothing written (an index "in the pool" is
 * at the fake pool's address, which is not mapped: a write would fault).
 * Adjacent is fine.
 */
static void test_create_indexed_index_overlaps_metadata(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    void* in_pool[] = { POOL, (char*)POOL + 8 * UNIT_BS, (char*)END - 8 };
    for (size_t k = 0; k < sizeof(in_pool) / sizeof(in_pool[0]); k++) {
        assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, in_pool[k], f.need), -EINVARG);
        assert_nothing_written(&f);
    }
    /* its last 8 bytes in the pool */
    void* straddle = (char*)POOL - ((f.need + 7) / 8 * 8 - 8);
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, straddle, f.need), -EINVARG);
    assert_nothing_written(&f);
    /* the entries inside the index's first need bytes (at its end, too) */
    HEAP_BLOCK_TABLE_ENTRY* inside[] = { (HEAP_BLOCK_TABLE_ENTRY*)f.index,
                                         (HEAP_BLOCK_TABLE_ENTRY*)f.index + f.need - 1 };
    for (size_t k = 0; k < 2; k++) {
        f.table.entries = inside[k];
        assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need), -EINVARG);
        f.table.entries = f.entries;
        assert_nothing_written(&f);
    }
    /* *table inside the index (and nothing else there), then *heap */
    struct heap_table* table_in_index = (struct heap_table*)(void*)&f.index[2];
    *table_in_index = f.table;
    uint64_t snapshot[sizeof(f.index) / sizeof(f.index[0])];
    memcpy(snapshot, f.index, sizeof(snapshot));
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, table_in_index, f.index, f.need), -EINVARG);
    assert_memory_equal(f.index, snapshot, sizeof(snapshot));
    memset(f.index, INDEX_CANARY, sizeof(f.index));
    assert_nothing_written(&f);
    struct heap* heap_in_index = (struct heap*)(void*)&f.index[4];
    assert_int_equal(heap_create_indexed(heap_in_index, POOL, END, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    /* entries right after the index's need bytes: apart, accepted */
    assert_true(f.need % 8 == 0 && f.need + BLOCKS <= sizeof(f.index));
    f.table.entries = (HEAP_BLOCK_TABLE_ENTRY*)f.index + f.need;
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need), 0);
    assert_int_equal(heap_check(&f.heap, NULL), 0);
}

/* heap_create's own refusals, through heap_create_indexed: still nothing written. */
static void test_create_indexed_bad_heap_arguments(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    assert_int_equal(heap_create_indexed(NULL, POOL, END, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, NULL, END, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, POOL, NULL, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, NULL, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, (char*)POOL + 1, END, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, POOL, (char*)END - 1, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    assert_int_equal(heap_create_indexed(&f.heap, END, POOL, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    f.table.total = BLOCKS - 1; /* wrong total (its index would fit) */
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    f.table.total = 0;
    assert_int_equal(heap_create_indexed(&f.heap, POOL, POOL, &f.table, f.index, f.need), -EINVARG);
    assert_nothing_written(&f);
    f.table.total = BLOCKS;
    f.table.entries = NULL;
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need), -EINVARG);
    f.table.entries = f.entries;
    assert_nothing_written(&f);
    /* And the same arguments, corrected, succeed. */
    assert_int_equal(heap_create_indexed(&f.heap, POOL, END, &f.table, f.index, f.need), 0);
    for (size_t i = 0; i < BLOCKS; i++) {
        assert_int_equal(f.entries[i], 0);
    }
    assert_ptr_equal(f.heap.index, f.index);
    unit_assert_clean(&f.heap);
}

/* Re-creating an indexed heap resets its index with the table. */
static void test_create_indexed_again(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 129, true);
    for (int i = 0; i < 129; i++) {
        assert_non_null(heap_malloc(&u.heap, 1));
    }
    assert_null(heap_malloc(&u.heap, 1));
    void* end = (void*)(UNIT_POOL + 129 * UNIT_BS);
    assert_int_equal(heap_create_indexed(&u.heap, (void*)UNIT_POOL, end, &u.table, u.index_mem, u.index_bytes), 0);
    unit_assert_clean(&u.heap);
    assert_ptr_equal(heap_malloc(&u.heap, 129 * UNIT_BS), (void*)UNIT_POOL);
    unit_assert_clean(&u.heap);
    unit_heap_destroy(&u);
}

/* For every n in 1..total+1: the indexed heap places an n-block request
 * where heap_scan_first_fit says (or refuses it when the scan finds none). */
static void assert_placement_matches_scan(struct unit_heap* u)
{
    size_t total = u->blocks;
    for (size_t n = 1; n <= total + 1; n++) {
        size_t want = heap_scan_first_fit(&u->table, n);
        void* p = heap_malloc_blocks_typed(&u->heap, n, HEAP_BLOCK_TYPE_PLAIN);
        if (want == SIZE_MAX) {
            if (p != NULL) {
                print_error("%zu blocks, n = %zu: index placed at %zu, scan finds nothing\n", total, n,
                            unit_block_of(u, p));
            }
            assert_null(p);
        } else {
            if (p == NULL || unit_block_of(u, p) != want) {
                print_error("%zu blocks, n = %zu: index %s, scan %zu\n", total, n, p == NULL ? "NULL" : "elsewhere",
                            want);
            }
            assert_ptr_equal(p, unit_ptr(u, want));
            heap_free(&u->heap, p);
        }
    }
}

/*
 * The index memory may hold anything before heap_create_indexed: a stale
 * index whose leaves are already right but whose summary nodes are wrong,
 * all zeros, all ones. The new index must be right in every case.
 */
static void test_create_indexed_over_stale_memory(void** state)
{
    (void)state;
    static const size_t totals[] = { 1, 65, 129, 300, 1000 };
    for (size_t k = 0; k < sizeof(totals) / sizeof(totals[0]); k++) {
        size_t total = totals[k];
        void* end = (void*)(UNIT_POOL + total * UNIT_BS);
        struct unit_heap u;
        unit_heap_make(&u, total, true);
        const struct heap_index_layout* at = &u.heap.index_layout;
        /* A summary node of each level made wrong, the rest left right. */
        for (size_t node = 1; node < at->leaves; node *= 2) {
            for (size_t j = node; j < 2 * node; j++) {
                at->nodes[j].best ^= 1;
                at->nodes[j].prefix ^= 2;
            }
            assert_int_equal(heap_check(&u.heap, NULL), -ECORRUPT);
            assert_int_equal(
                heap_create_indexed(&u.heap, (void*)UNIT_POOL, end, &u.table, u.index_mem, u.index_bytes), 0);
            unit_assert_clean(&u.heap);
            assert_placement_matches_scan(&u);
        }
        /* Every best and every count wrong too. */
        for (size_t w = 0; w < at->words; w++) {
            at->best[w] += 3;
        }
        size_t count_words = (size_t)((uint64_t*)(void*)at->nodes - at->counts);
        for (size_t i = 0; i < count_words; i++) {
            at->counts[i] += 0x0303030303030303ull;
        }
        assert_int_equal(heap_create_indexed(&u.heap, (void*)UNIT_POOL, end, &u.table, u.index_mem, u.index_bytes), 0);
        unit_assert_clean(&u.heap);
        /* A stale index of a full heap. */
        while (heap_malloc(&u.heap, 1) != NULL) {
        }
        assert_int_equal(heap_create_indexed(&u.heap, (void*)UNIT_POOL, end, &u.table, u.index_mem, u.index_bytes), 0);
        unit_assert_clean(&u.heap);
        assert_ptr_equal(heap_malloc(&u.heap, total * UNIT_BS), (void*)UNIT_POOL);
        /* All zeros, all ones. */
        static const int fills[] = { 0x00, 0xFF };
        for (size_t f = 0; f < 2; f++) {
            memset(u.index_mem, fills[f], u.index_bytes);
            assert_int_equal(
                heap_create_indexed(&u.heap, (void*)UNIT_POOL, end, &u.table, u.index_mem, u.index_bytes), 0);
            unit_assert_clean(&u.heap);
            assert_placement_matches_scan(&u);
        }
        unit_heap_destroy(&u);
    }
}

/* Heaps of 1, 63, 64, 65, 128, 129, ... blocks: fill, drain, whole-heap requests. */
static void test_index_heap_sizes(void** state)
{
    (void)state;
    for (size_t k = 0; k < NSIZES; k++) {
        size_t total = sizes[k];
        struct unit_heap u;
        unit_heap_make(&u, total, true);
        assert_placement_matches_scan(&u);
        for (size_t i = 0; i < total; i++) {
            assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, i));
        }
        assert_null(heap_malloc(&u.heap, 1)); /* padding past the end is not free */
        assert_placement_matches_scan(&u);
        /* Only the last block free: 1 fits there, 2 does not. */
        heap_free(&u.heap, unit_ptr(&u, total - 1));
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, total - 1));
        heap_free(&u.heap, unit_ptr(&u, total - 1));
        assert_null(heap_malloc(&u.heap, 2 * UNIT_BS));
        for (size_t i = 0; i + 1 < total; i++) {
            heap_free(&u.heap, unit_ptr(&u, i));
        }
        struct heap_stats st;
        heap_get_stats(&u.heap, &st);
        assert_int_equal(st.largest_free_run, total);
        assert_null(heap_malloc(&u.heap, (total + 1) * UNIT_BS));
        assert_ptr_equal(heap_malloc(&u.heap, total * UNIT_BS), unit_ptr(&u, 0));
        heap_get_stats(&u.heap, &st);
        assert_int_equal(st.largest_free_run, 0);
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/*
 * Free runs placed across word and leaf boundaries: allocate every block
 * singly, then free chosen ranges (half-open [from, to)).
 */
static void test_index_runs_across_boundaries(void** state)
{
    (void)state;
    static const struct
    {
        size_t from;
        size_t to;
    } runs[] = { { 3, 5 }, { 60, 70 }, { 100, 128 }, { 128, 131 }, { 190, 260 }, { 262, 263 }, { 300, 384 } };
    struct unit_heap u;
    unit_heap_make(&u, 400, true);
    for (size_t i = 0; i < 400; i++) {
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, i));
    }
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        for (size_t b = runs[r].from; b < runs[r].to; b++) {
            heap_free(&u.heap, unit_ptr(&u, b));
        }
    }
    /* Free runs now: [3,5) 2, [60,70) 10, [100,131) 31, [190,260) 70, [262,263) 1, [300,384) 84. */
    assert_placement_matches_scan(&u);
    assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 3));
    assert_ptr_equal(heap_malloc(&u.heap, 3 * UNIT_BS), unit_ptr(&u, 60));
    assert_ptr_equal(heap_malloc(&u.heap, 31 * UNIT_BS), unit_ptr(&u, 100));
    assert_ptr_equal(heap_malloc(&u.heap, 71 * UNIT_BS), unit_ptr(&u, 300));
    assert_ptr_equal(heap_malloc(&u.heap, 70 * UNIT_BS), unit_ptr(&u, 190));
    assert_null(heap_malloc(&u.heap, 14 * UNIT_BS));
    assert_ptr_equal(heap_malloc(&u.heap, 13 * UNIT_BS), unit_ptr(&u, 371));
    assert_placement_matches_scan(&u);
    unit_assert_clean(&u.heap);
    unit_heap_destroy(&u);
}

/* Longest free run of the table, the reference for largest_free_run. */
static size_t reference_largest(const struct unit_heap* u)
{
    size_t best = 0;
    size_t run = 0;
    for (size_t i = 0; i < u->blocks; i++) {
        run = u->table.entries[i] == 0 ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

/*
 * Bit patterns inside and across 64-block words: every single free run
 * [a, a + len) of a 64- and a 128-block heap (everything else taken), then
 * random masks. The index's longest run (largest_free_run) and its placement
 * must match the table.
 */
static void test_index_word_patterns(void** state)
{
    (void)state;
    static const size_t totals[] = { 64, 128 };
    for (size_t k = 0; k < 2; k++) {
        size_t total = totals[k];
        struct unit_heap u;
        unit_heap_make(&u, total, true);
        for (size_t i = 0; i < total; i++) {
            assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, i));
        }
        size_t step = total == 64 ? 1 : 3; /* all runs for 64 blocks, every third start for 128 */
        for (size_t a = 0; a < total; a += step) {
            for (size_t len = 1; a + len <= total; len++) {
                for (size_t b = a; b < a + len; b++) {
                    heap_free(&u.heap, unit_ptr(&u, b));
                }
                struct heap_stats st;
                heap_get_stats(&u.heap, &st);
                if (st.largest_free_run != len) {
                    print_error("%zu blocks, free run [%zu, %zu): largest %zu\n", total, a, a + len,
                                st.largest_free_run);
                }
                assert_int_equal(st.largest_free_run, len);
                assert_null(heap_malloc(&u.heap, (len + 1) * UNIT_BS));
                assert_ptr_equal(heap_malloc(&u.heap, len * UNIT_BS), unit_ptr(&u, a));
                heap_free(&u.heap, unit_ptr(&u, a));
                for (size_t b = a; b < a + len; b++) {
                    assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, b));
                }
            }
        }
        /* Random masks: free a random subset, compare, take it back. */
        uint64_t rng = 777 + total;
        for (int round = 0; round < 300; round++) {
            uint32_t density = 1 + unit_rand(&rng) % 7; /* free with probability density / 8 */
            for (size_t b = 0; b < total; b++) {
                if (unit_rand(&rng) % 8 < density) {
                    heap_free(&u.heap, unit_ptr(&u, b));
                }
            }
            struct heap_stats st;
            heap_get_stats(&u.heap, &st);
            assert_int_equal(st.largest_free_run, reference_largest(&u));
            if (round % 10 == 0) {
                assert_placement_matches_scan(&u);
            }
            for (size_t b = 0; b < total; b++) {
                if (u.table.entries[b] == 0) {
                    assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, b));
                }
            }
        }
        unit_assert_clean(&u.heap);
        unit_heap_destroy(&u);
    }
}

/* Random allocations and frees on an indexed and a plain heap in lockstep:
 * same pointers, same tables, placement equal to the scan at checkpoints. */
static void test_index_matches_scan_random(void** state)
{
    (void)state;
    for (size_t k = 0; k < NSIZES; k++) {
        size_t total = sizes[k];
        struct unit_heap idx;
        struct unit_heap lin;
        unit_heap_make(&idx, total, true);
        unit_heap_make(&lin, total, false);
        uint64_t rng = 0x5EED0000u + total;
        size_t max_run = total < 80 ? total : 80;
        for (int op = 0; op < 1500; op++) {
            uint32_t r = unit_rand(&rng);
            if (r % 5 < 3) {
                size_t n = 1 + unit_rand(&rng) % (unit_rand(&rng) % 4 == 0 ? max_run : 6);
                void* a = heap_malloc(&idx.heap, n * UNIT_BS);
                void* b = heap_malloc(&lin.heap, n * UNIT_BS);
                assert_int_equal((uintptr_t)a, (uintptr_t)b);
            } else {
                size_t at = unit_rand(&rng) % total;
                size_t first = heap_allocation_start(&lin.heap, unit_ptr(&lin, at));
                if (first != SIZE_MAX) {
                    heap_free(&idx.heap, unit_ptr(&idx, first));
                    heap_free(&lin.heap, unit_ptr(&lin, first));
                }
            }
            assert_memory_equal(idx.table.entries, lin.table.entries, total);
            if (op % 150 == 149) {
                assert_placement_matches_scan(&idx);
                unit_assert_clean(&idx.heap);
            }
        }
        unit_assert_clean(&idx.heap);
        unit_assert_clean(&lin.heap);
        unit_heap_destroy(&idx);
        unit_heap_destroy(&lin);
    }
}

/* The default heap size: long requests spanning many leaves. */
static void test_index_default_size(void** state)
{
    (void)state;
    const size_t total = PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE;
    struct unit_heap u;
    unit_heap_make(&u, total, true);
    void* a = heap_malloc(&u.heap, 5000 * UNIT_BS);
    void* b = heap_malloc(&u.heap, 1);
    void* c = heap_malloc(&u.heap, 12000 * UNIT_BS);
    assert_ptr_equal(a, unit_ptr(&u, 0));
    assert_ptr_equal(b, unit_ptr(&u, 5000));
    assert_ptr_equal(c, unit_ptr(&u, 5001));
    heap_free(&u.heap, a);
    /* 5000 free at 0, 8599 free at the end (17001..25599). */
    assert_ptr_equal(heap_malloc(&u.heap, 5001 * UNIT_BS), unit_ptr(&u, 17001));
    assert_ptr_equal(heap_malloc(&u.heap, 5000 * UNIT_BS), unit_ptr(&u, 0));
    assert_null(heap_malloc(&u.heap, 3599 * UNIT_BS));
    assert_ptr_equal(heap_malloc(&u.heap, 3598 * UNIT_BS), unit_ptr(&u, 22002));
    assert_null(heap_malloc(&u.heap, 1));
    unit_assert_clean(&u.heap);
    unit_heap_destroy(&u);
}

/* ------------------------------------------- an index that lies */

/*
 * Rebuild u's index memory as the fresh index of another heap `other` of
 * `blocks` blocks (all free) that shares it: from then on u's index and
 * table disagree, as after a stray write into the index.
 */
static void overwrite_index(struct unit_heap* u, struct heap* other, struct heap_table* other_table, size_t blocks)
{
    other_table->entries = unit_xmalloc(blocks);
    other_table->total = blocks;
    assert_true(heap_index_bytes(blocks) <= u->index_bytes);
    uintptr_t pool = UNIT_POOL + 0x1000000; /* apart from u's pool */
    void* end = (void*)(pool + blocks * UNIT_BS);
    assert_int_equal(heap_create_indexed(other, (void*)pool, end, other_table, u->index_mem, u->index_bytes), 0);
}

/* The index names taken blocks: reported once, dropped, the scan places. */
static void test_index_mismatch_taken_run(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 16, true);
    assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 0));
    struct heap other;
    struct heap_table other_table;
    overwrite_index(&u, &other, &other_table, 16); /* says: all free */
    void* p = heap_malloc(&u.heap, UNIT_BS);
    assert_ptr_equal(p, unit_ptr(&u, 2)); /* not block 0, which is taken */
    assert_int_equal(u.reports.count, 1);
    assert_int_equal(u.reports.last.kind, HEAP_REPORT_INDEX_MISMATCH);
    assert_int_equal(u.reports.last.block, 0);
    assert_ptr_equal(u.reports.last.ptr, unit_ptr(&u, 0));
    assert_null(u.heap.index);
    assert_null(u.heap.index_ops);
    assert_int_equal(u.heap.rejected_frees, 0); /* not a refused free */
    unit_assert_table(&u.heap, "C1 01 41 00 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(heap_check(&u.heap, NULL), 0);
    /* From now on the scan: first fit, frees, stats, all still right. */
    heap_free(&u.heap, unit_ptr(&u, 0));
    assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), unit_ptr(&u, 0));
    struct heap_stats st;
    heap_get_stats(&u.heap, &st);
    assert_int_equal(st.used_blocks, 3);
    assert_int_equal(st.largest_free_run, 13);
    assert_int_equal(u.reports.count, 1);
    assert_int_equal(heap_check(&u.heap, NULL), 0);
    free(other_table.entries);
    unit_heap_destroy(&u);
}

/* The index names a run past the table's end: nothing written there, and
 * the scan says there is no room (every block is taken). No report hook:
 * the heap still drops the index. */
static void test_index_mismatch_past_the_end(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, true);
    for (size_t b = 0; b < 4; b++) {
        assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, b));
    }
    struct heap other;
    struct heap_table other_table;
    overwrite_index(&u, &other, &other_table, 8); /* same index size, twice the blocks */
    for (size_t b = 0; b < 4; b++) {
        assert_non_null(heap_malloc(&other, 1)); /* other's first 4 taken: its first fit is block 4 */
    }
    assert_ptr_equal(heap_malloc(&u.heap, 2 * UNIT_BS), NULL);
    assert_int_equal(u.reports.count, 1);
    assert_int_equal(u.reports.last.kind, HEAP_REPORT_INDEX_MISMATCH);
    assert_int_equal(u.reports.last.block, SIZE_MAX); /* block 4 of a 4-block heap */
    assert_null(u.reports.last.ptr);
    assert_null(u.heap.index);
    assert_int_equal(u.heap.failed_allocs, 1);
    unit_assert_table(&u.heap, "41 41 41 41");
    assert_int_equal(heap_check(&u.heap, NULL), 0);
    /* Without a hook: dropped all the same. */
    struct unit_heap v;
    unit_heap_make(&v, 4, true);
    heap_set_report(&v.heap, NULL, NULL);
    assert_ptr_equal(heap_malloc(&v.heap, 1), unit_ptr(&v, 0));
    struct heap third;
    struct heap_table third_table;
    overwrite_index(&v, &third, &third_table, 4);
    assert_ptr_equal(heap_malloc(&v.heap, 1), unit_ptr(&v, 1));
    assert_null(v.heap.index);
    free(third_table.entries);
    free(other_table.entries);
    unit_heap_destroy(&v);
    unit_heap_destroy(&u);
}

/* Runs of every length 1..20 at every offset: a free run is accepted, one
 * taken byte anywhere in it is caught (the word-at-a-time check reads
 * exactly the run). */
static void test_index_mismatch_every_length(void** state)
{
    (void)state;
    enum { N = 40 };
    for (size_t n = 1; n <= 20; n++) {
        for (size_t taken = 0; taken < n; taken++) {
            struct unit_heap u;
            unit_heap_make(&u, N, true);
            /* take block `taken` of the first run, by hand, in table and index both:
             * allocate [0, taken] then free [0, taken) */
            void* head = taken > 0 ? heap_malloc(&u.heap, taken * UNIT_BS) : NULL;
            assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, taken));
            if (head != NULL) {
                heap_free(&u.heap, head);
            }
            struct heap other;
            struct heap_table other_table;
            overwrite_index(&u, &other, &other_table, N); /* says: all free */
            void* p = heap_malloc(&u.heap, n * UNIT_BS);
            assert_ptr_equal(p, unit_ptr(&u, taken + 1)); /* first fit past the taken block */
            assert_int_equal(u.reports.count, 1);
            assert_int_equal(u.reports.last.block, 0);
            assert_int_equal(heap_check(&u.heap, NULL), 0);
            free(other_table.entries);
            unit_heap_destroy(&u);
        }
    }
}

/* The heap reported the mismatch once, dropped the index, and is sound. */
static void assert_index_dropped(struct unit_heap* u)
{
    assert_int_equal(u->reports.count, 1);
    assert_int_equal(u->reports.last.kind, HEAP_REPORT_INDEX_MISMATCH);
    assert_null(u->heap.index);
    unit_assert_clean(&u->heap);
}

/* A bitmap word the descent reaches holds no run of n (zeroed by a stray
 * write, its leaf left alone): a mismatch, not ctz(0). Reported once, the
 * index dropped, the scan places. */
static void test_index_zero_word_is_mismatch(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 128, true);
    assert_ptr_equal(heap_malloc(&u.heap, UNIT_BS), unit_ptr(&u, 0));
    mirror(&u)->bitmap[0] = 0;
    assert_ptr_equal(heap_malloc(&u.heap, UNIT_BS), unit_ptr(&u, 1));
    assert_int_equal(u.reports.last.block, SIZE_MAX);
    assert_index_dropped(&u);
    unit_heap_destroy(&u);
}

/* Nodes that lead the descent for more than 64 blocks down to a leaf,
 * which holds no such run: a mismatch. */
static void test_index_leaf_asked_too_much(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 256, true);
    const struct heap_index_layout* at = &u.heap.index_layout;
    assert_int_equal(at->leaves, 4);
    at->nodes[2].best = 200; /* the left half claims 200: its leaves cannot hold them */
    assert_ptr_equal(heap_malloc(&u.heap, 200 * UNIT_BS), unit_ptr(&u, 0));
    assert_index_dropped(&u);
    unit_heap_destroy(&u);
}

/* Counts that lead the descent past the last word (a count in the padding
 * of a level), or to a word with no run of n, or claim a run the heap has
 * not: a mismatch, nothing read past the bitmap. */
static void test_index_descent_to_padding_count(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 129, true); /* 3 words: entries 3..7 of the only level are padding */
    assert_ptr_equal(heap_malloc(&u.heap, 128 * UNIT_BS), unit_ptr(&u, 0));
    const struct heap_index_layout* at = &u.heap.index_layout;
    assert_int_equal(at->levels, 1);
    at->counts[0] |= (uint64_t)5 << 24; /* entry 3 claims a run of 5 */
    assert_null(heap_malloc(&u.heap, 2 * UNIT_BS)); /* block 128 is the only free one */
    assert_index_dropped(&u);
    assert_ptr_equal(heap_malloc(&u.heap, UNIT_BS), unit_ptr(&u, 128));
    unit_heap_destroy(&u);

    unit_heap_make(&u, 130 * 64, true); /* 130 words, two levels: a top of 17 entries in 3 words */
    at = &u.heap.index_layout;
    assert_int_equal(at->levels, 2);
    assert_int_equal(at->level_len[1], 17);
    uint64_t* top = at->counts + at->level_at[1];
    top[0] = top[1] = 0;                  /* entries 0..15 hold nothing, */
    top[2] = (uint64_t)9 << 8;            /* entry 16 neither, entry 17 (past the 17) a run of 9 */
    assert_ptr_equal(heap_malloc(&u.heap, 9 * UNIT_BS), unit_ptr(&u, 0)); /* placed by the scan */
    assert_index_dropped(&u);
    unit_heap_destroy(&u);

    unit_heap_make(&u, 130 * 64, true);
    at = &u.heap.index_layout;
    at->counts[at->level_at[1]] &= ~(uint64_t)0xFF; /* entry 0 of the top says nothing below holds 9 */
    at->counts[0] = 0;                               /* entry 1 sends the descent to words 8..15 ... */
    at->counts[1] = 0;                               /* ... which say no word holds 9 */
    assert_ptr_equal(heap_malloc(&u.heap, 9 * UNIT_BS), unit_ptr(&u, 0));
    assert_index_dropped(&u);
    unit_heap_destroy(&u);
}

/* The header is a record: whatever it says, the layout comes from the
 * table's block count. A leaves count of SIZE_MAX, a bitmap pointer into
 * another buffer, a words count of 1: placement and frees unchanged, the
 * other buffer untouched, heap_check reports block 0. */
static void test_index_header_not_trusted(void** state)
{
    (void)state;
    for (size_t field = 0; field < 5; field++) {
        struct unit_heap u;
        unit_heap_make(&u, 300, true);
        unsigned char elsewhere[64];
        memset(elsewhere, 0x5C, sizeof(elsewhere));
        struct index_mirror* m = mirror(&u);
        switch (field) {
        case 0: m->total = 1; break;
        case 1: m->words = 1; break;
        case 2: m->leaves = SIZE_MAX; break;
        case 3: m->bitmap = (uint64_t*)(void*)elsewhere; break;
        default: m->nodes = (struct index_node_mirror*)(void*)elsewhere; break;
        }
        void* a = heap_malloc(&u.heap, 70 * UNIT_BS);
        void* b = heap_malloc(&u.heap, 3 * UNIT_BS);
        assert_ptr_equal(a, unit_ptr(&u, 0));
        assert_ptr_equal(b, unit_ptr(&u, 70));
        heap_free(&u.heap, a);
        assert_ptr_equal(heap_malloc(&u.heap, 64 * UNIT_BS), unit_ptr(&u, 0));
        assert_ptr_equal(heap_malloc(&u.heap, 200 * UNIT_BS), unit_ptr(&u, 73));
        for (size_t i = 0; i < sizeof(elsewhere); i++) {
            assert_int_equal(elsewhere[i], 0x5C);
        }
        assert_int_equal(u.reports.count, 0);
        assert_non_null(u.heap.index);
        size_t bad = SIZE_MAX;
        assert_int_equal(heap_check(&u.heap, &bad), -ECORRUPT);
        assert_int_equal(bad, 0);
        struct heap_stats st;
        heap_get_stats(&u.heap, &st);
        assert_int_equal(st.largest_free_run, 300 - 273);
        unit_heap_destroy(&u);
    }
}

/* ------------------------------------ the bit tricks and their plain twins */

/* Free blocks at the start and at the end of x, and its longest free run,
 * one bit at a time: what heap_index_bits.h's tricks must agree with. */
static void plain_leaf(uint64_t x, uint32_t* prefix, uint32_t* suffix)
{
    *prefix = 0;
    while (*prefix < 64 && ((x >> *prefix) & 1u)) {
        (*prefix)++;
    }
    *suffix = 0;
    while (*suffix < 64 && ((x >> (63 - *suffix)) & 1u)) {
        (*suffix)++;
    }
}

static void assert_leaf(uint64_t x, uint32_t prefix, uint32_t suffix, uint32_t best)
{
    uint32_t p, s;
    plain_leaf(x, &p, &s);
    uint32_t fast = heap_index_best_branchless(x);
    uint32_t plain = heap_index_best_loop(x);
    if (heap_index_prefix(x) != p || heap_index_suffix(x) != s || fast != plain ||
        (best != UINT32_MAX && (p != prefix || s != suffix || plain != best))) {
        print_error("word %016llx: prefix %u/%u suffix %u/%u best %u/%u, expected %u %u %u\n", (unsigned long long)x,
                    heap_index_prefix(x), p, heap_index_suffix(x), s, fast, plain, prefix, suffix, best);
        fail();
    }
}

/* Bits [from, from + len) of a word. */
static uint64_t run_bits(unsigned from, unsigned len)
{
    uint64_t ones = len == 64 ? UINT64_MAX : (((uint64_t)1 << len) - 1);
    return ones << from;
}

static uint64_t rand64(uint64_t* rng)
{
    return (uint64_t)unit_rand(rng) << 32 | unit_rand(rng);
}

/* The branch-free longest run and its loop agree, and prefix and suffix
 * are right (where the counts are easy to say): all free, all taken, every
 * single free run, every single taken run, every pair of free runs, the
 * alternating words and random words of every density. */
static void test_index_leaf_versions_agree(void** state)
{
    (void)state;
    assert_leaf(0, 0, 0, 0);
    assert_leaf(UINT64_MAX, 64, 64, 64);
    assert_leaf(0x5555555555555555ull, 1, 0, 1);
    assert_leaf(0xAAAAAAAAAAAAAAAAull, 0, 1, 1);
    assert_leaf((uint64_t)1 << 63, 0, 1, 1);
    assert_leaf(1, 1, 0, 1);
    for (unsigned from = 0; from < 64; from++) {
        for (unsigned len = 1; from + len <= 64; len++) {
            uint64_t x = run_bits(from, len);
            assert_leaf(x, from == 0 ? len : 0, from + len == 64 ? len : 0, len);
            uint64_t taken = ~x; /* one taken run: free before and after it */
            unsigned after = 64 - from - len;
            assert_leaf(taken, from, after, from > after ? from : after);
        }
    }
    for (unsigned a = 0; a < 64; a++) { /* two free runs, a gap between */
        for (unsigned alen = 1; a + alen < 64; alen++) {
            for (unsigned b = a + alen + 1; b < 64; b += 3) {
                for (unsigned blen = 1; b + blen <= 64; blen += 2) {
                    uint64_t x = run_bits(a, alen) | run_bits(b, blen);
                    assert_leaf(x, a == 0 ? alen : 0, b + blen == 64 ? blen : 0, alen > blen ? alen : blen);
                }
            }
        }
    }
    uint64_t rng = 99;
    for (int k = 0; k < 200000; k++) {
        uint64_t x = rand64(&rng);
        uint64_t y = rand64(&rng);
        uint64_t z = rand64(&rng);
        uint64_t words[] = { x, x & y, x | y, x & y & z, x | y | z };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            assert_leaf(words[i], 0, 0, UINT32_MAX);
        }
    }
}

/* Eight byte counts, each 0..64 (what the index writes) or anything (a
 * stray write: the top bit of each byte is ignored by both versions). */
static uint64_t random_counts(uint64_t* rng, bool any)
{
    uint64_t g = 0;
    for (unsigned k = 0; k < 8; k++) {
        uint64_t r = unit_rand(rng);
        uint64_t v = any ? r & 0xFF : (r % 3 == 0 ? 0 : r % 65);
        g |= v << (8 * k);
    }
    return g;
}

/* The word-at-a-time byte search and maximum agree with their loops on
 * every n, and on counts as the index writes them and as a stray write
 * may leave them. */
static void test_index_byte_versions_agree(void** state)
{
    (void)state;
    uint64_t rng = 7;
    for (int k = 0; k < 200000; k++) {
        uint64_t g = random_counts(&rng, k % 4 == 0);
        assert_int_equal(heap_index_byte_max_swar(g), heap_index_byte_max_loop(g));
        for (uint32_t n = 1; n <= 64; n += 1 + (uint32_t)(k % 5)) {
            uint32_t fast = heap_index_first_at_least_swar(g, n);
            assert_int_equal(fast, heap_index_first_at_least_loop(g, n));
            assert_true(fast == 8 || heap_index_byte(g, fast) >= n);
            assert_int_equal(heap_index_at_least_bits(g, n) != 0, heap_index_first_at_least_loop(g, n) < 8);
        }
    }
    assert_int_equal(heap_index_byte_max_swar(0x4040404040404040ull), 64);
    assert_int_equal(heap_index_first_at_least_swar(0x4000000000000000ull, 64), 7);
    assert_int_equal(heap_index_first_at_least_swar(0x3F3F3F3F3F3F3F3Full, 64), 8);
    assert_false(heap_index_at_least_bits(0x3F3F3F3F3F3F3F3Full, 64) != 0);
    assert_true(heap_index_at_least_bits(0x0000000000400000ull, 64) == 0x0000000000800000ull);
}

/* heap_index_prefix_touched and _suffix_touched never miss a change (the
 * tree of long runs would go stale): every single bit and random ranges of
 * bits flipped in random words. */
static void test_index_edges_touched(void** state)
{
    (void)state;
    uint64_t rng = 11;
    for (int k = 0; k < 400000; k++) {
        uint64_t x = rand64(&rng);
        x = k % 3 == 0 ? x | rand64(&rng) : k % 3 == 1 ? x & rand64(&rng) : x;
        x = k % 101 == 0 ? UINT64_MAX : k % 103 == 0 ? 0 : x;
        uint32_t from = unit_rand(&rng) % 64;
        uint32_t to = k % 2 == 0 ? from + 1 : from + 1 + unit_rand(&rng) % (64 - from);
        uint64_t mask = heap_index_mask(from, to);
        uint64_t y = k % 4 < 2 ? x & ~mask : x | mask;
        assert_true(heap_index_prefix(x) == heap_index_prefix(y) || heap_index_prefix_touched(x, x ^ y));
        assert_true(heap_index_suffix(x) == heap_index_suffix(y) || heap_index_suffix_touched(x, x ^ y));
    }
}

/* The longest run after a change, from the old longest run, equals the
 * runs counted afresh: random words, random ranges made taken (from free)
 * or free, runs touching either edge, the whole word. */
static void test_index_best_after(void** state)
{
    (void)state;
    uint64_t rng = 13;
    for (int k = 0; k < 400000; k++) {
        uint64_t x = rand64(&rng);
        x = k % 3 == 0 ? x | rand64(&rng) : k % 3 == 1 ? x & rand64(&rng) : x;
        uint32_t from = k % 7 == 0 ? 0 : unit_rand(&rng) % 64;
        uint32_t to = k % 5 == 0 ? 64 : from + 1 + unit_rand(&rng) % (64 - from);
        uint64_t mask = heap_index_mask(from, to);
        bool taken = k % 2 == 0;
        uint64_t before = taken ? x | mask : x & ~mask; /* the mask's bits were free / taken */
        uint64_t after = taken ? before & ~mask : before | mask;
        uint32_t best = heap_index_best_after(after, mask, taken, heap_index_best_loop(before));
        assert_int_equal(best, heap_index_best_loop(after));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_bytes),
        cmocka_unit_test(test_index_bytes_bound),
        cmocka_unit_test(test_index_bytes_is_exact),
        cmocka_unit_test(test_create_indexed_bad_index_memory),
        cmocka_unit_test(test_create_indexed_index_overlaps_metadata),
        cmocka_unit_test(test_create_indexed_bad_heap_arguments),
        cmocka_unit_test(test_create_indexed_again),
        cmocka_unit_test(test_create_indexed_over_stale_memory),
        cmocka_unit_test(test_index_heap_sizes),
        cmocka_unit_test(test_index_runs_across_boundaries),
        cmocka_unit_test(test_index_word_patterns),
        cmocka_unit_test(test_index_matches_scan_random),
        cmocka_unit_test(test_index_default_size),
        cmocka_unit_test(test_index_mismatch_taken_run),
        cmocka_unit_test(test_index_mismatch_past_the_end),
        cmocka_unit_test(test_index_mismatch_every_length),
        cmocka_unit_test(test_index_zero_word_is_mismatch),
        cmocka_unit_test(test_index_leaf_asked_too_much),
        cmocka_unit_test(test_index_descent_to_padding_count),
        cmocka_unit_test(test_index_header_not_trusted),
        cmocka_unit_test(test_index_leaf_versions_agree),
        cmocka_unit_test(test_index_byte_versions_agree),
        cmocka_unit_test(test_index_edges_touched),
        cmocka_unit_test(test_index_best_after),
    };
    return cmocka_run_group_tests_name("heap_index", tests, NULL, NULL);
}
