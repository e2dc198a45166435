/*
 * test_index_hostile.c - any bytes in the index memory. The index lives in
 * memory the caller gives (the kernel's sits right after the table), so a
 * stray write can reach every byte of it, its header included. Whatever it
 * writes there, heap_malloc, heap_free and heap_check must stay inside the
 * index memory and the table (guard bytes on both sides of the index
 * memory, poisoned for ASan too; the table is malloc'd to its exact size),
 * never hand out a block that is taken, and heap_check must say 0 or
 * -ECORRUPT, never crash.
 *
 * The header is a record that nothing but heap_check reads (the layout
 * comes from the table's block count), so after any write into it every
 * allocation is exactly heap_scan_first_fit's and heap_check reports
 * block 0 for as long as the index is kept. A write into the bitmap or the
 * nodes can cost placement (a node that understates a free run sends the
 * descent past it, to a later run or to NULL: docs/index.md), never safety:
 * the named run is free in the table, at or after the first fit, or the
 * index is dropped (HEAP_REPORT_INDEX_MISMATCH) and the scan places exactly.
 */
#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HOSTILE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HOSTILE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HOSTILE_POISON(p, n) ((void)(p), (void)(n))
#define HOSTILE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define GUARD 64 /* bytes each side; keeps the index 8-byte aligned */
#define GUARD_BYTE 0xA7
#define MAX_LIVE 64

struct hostile
{
    struct heap heap;
    struct heap_table table;
    size_t blocks;
    unsigned char* mem; /* GUARD | index memory | GUARD */
    unsigned char* index;
    size_t need;
    size_t header; /* bytes before the bitmap */
    struct unit_reports reports;
    void* live[MAX_LIVE];
    size_t nlive;
    unsigned char* before; /* the table before an allocation */
};

static void hostile_make(struct hostile* h, size_t blocks)
{
    memset(h, 0, sizeof(*h));
    h->blocks = blocks;
    h->table.entries = unit_xmalloc(blocks);
    h->table.total = blocks;
    h->before = unit_xmalloc(blocks);
    h->need = heap_index_bytes(blocks);
    assert_true(h->need > 0);
    h->header = (sizeof(struct index_mirror) + 7) / 8 * 8;
    h->mem = unit_xmalloc(GUARD + h->need + GUARD);
    memset(h->mem, GUARD_BYTE, GUARD + h->need + GUARD);
    h->index = h->mem + GUARD;
    void* end = (void*)(UNIT_POOL + blocks * UNIT_BS);
    assert_int_equal(heap_create_indexed(&h->heap, (void*)UNIT_POOL, end, &h->table, h->index, h->need), 0);
    /* the arrays start right after the header */
    assert_ptr_equal(((struct index_mirror*)(void*)h->index)->bitmap, (void*)(h->index + h->header));
    heap_set_report(&h->heap, unit_record_report, &h->reports);
    HOSTILE_POISON(h->mem, GUARD);
    HOSTILE_POISON(h->index + h->need, GUARD);
}

static void hostile_destroy(struct hostile* h)
{
    HOSTILE_UNPOISON(h->mem, GUARD);
    HOSTILE_UNPOISON(h->index + h->need, GUARD);
    free(h->mem);
    free(h->table.entries);
    free(h->before);
}

static void assert_guards(struct hostile* h)
{
    HOSTILE_UNPOISON(h->mem, GUARD);
    HOSTILE_UNPOISON(h->index + h->need, GUARD);
    for (size_t i = 0; i < GUARD; i++) {
        assert_int_equal(h->mem[i], GUARD_BYTE);
        assert_int_equal(h->index[h->need + i], GUARD_BYTE);
    }
    HOSTILE_POISON(h->mem, GUARD);
    HOSTILE_POISON(h->index + h->need, GUARD);
}

static size_t block_of(const void* p)
{
    uintptr_t offset = (uintptr_t)p - UNIT_POOL;
    assert_int_equal(offset % UNIT_BS, 0);
    return (size_t)(offset / UNIT_BS);
}

/*
 * `ops` random heap_malloc / heap_free calls. exact: every allocation must
 * be heap_scan_first_fit's. Otherwise only while the index is kept: the run
 * must have been free, at or after the first fit (or NULL); once the index
 * is dropped, exact again.
 */
static void hostile_run(struct hostile* h, uint64_t* rng, size_t ops, bool exact)
{
    for (size_t k = 0; k < ops; k++) {
        bool do_free = h->nlive == MAX_LIVE || (h->nlive > 0 && unit_rand(rng) % 3 == 0);
        if (do_free) {
            size_t j = unit_rand(rng) % h->nlive;
            size_t rejected = h->heap.rejected_frees;
            heap_free(&h->heap, h->live[j]);
            assert_int_equal(h->heap.rejected_frees, rejected); /* the table is sound: every free goes through */
            assert_int_equal(h->table.entries[block_of(h->live[j])], 0);
            h->live[j] = h->live[--h->nlive];
        } else {
            size_t cap = h->blocks < 20 ? h->blocks : 20;
            size_t n = unit_rand(rng) % 8 == 0 ? 1 + unit_rand(rng) % h->blocks : 1 + unit_rand(rng) % cap;
            size_t first = heap_scan_first_fit(&h->table, n);
            bool indexed = h->heap.index != NULL;
            memcpy(h->before, h->table.entries, h->blocks);
            void* p = heap_malloc(&h->heap, n * UNIT_BS);
            if (exact || !indexed) {
                assert_ptr_equal(p, first == SIZE_MAX ? NULL : (void*)(UNIT_POOL + first * UNIT_BS));
            } else if (p != NULL) {
                size_t b = block_of(p);
                assert_true(first != SIZE_MAX && b >= first && b + n <= h->blocks);
                for (size_t i = b; i < b + n; i++) {
                    assert_int_equal(h->before[i], 0); /* never a taken block */
                }
            }
            if (p != NULL) {
                h->live[h->nlive++] = p;
            }
        }
        assert_guards(h);
        size_t bad = 12345;
        int res = heap_check(&h->heap, &bad);
        assert_true(res == 0 || res == -ECORRUPT);
        if (h->heap.index == NULL) {
            assert_int_equal(res, 0); /* the table itself is sound */
        } else if (res != 0) {
            assert_true(bad < h->blocks);
        }
        struct heap_stats st;
        heap_get_stats(&h->heap, &st);
        assert_true(st.largest_free_run <= h->blocks);
        if (h->heap.index == NULL) {
            assert_int_equal(h->reports.count, 1);
            assert_int_equal(h->reports.last.kind, HEAP_REPORT_INDEX_MISMATCH);
        } else {
            assert_int_equal(h->reports.count, 0);
        }
    }
}

static const size_t sizes[] = { 1, 63, 64, 65, 129, 200, 700 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* A heap with some allocations in it (placed exactly: the index is sound). */
static void hostile_start(struct hostile* h, size_t blocks, uint64_t* rng)
{
    hostile_make(h, blocks);
    hostile_run(h, rng, 24, true);
    assert_int_equal(heap_check(&h->heap, NULL), 0);
}

/* After a write into the header: exact placement, and heap_check names
 * block 0 while the index is kept (if the write changed the record). */
static void hostile_after_header_write(struct hostile* h, const unsigned char* pristine, uint64_t* rng)
{
    bool changed = memcmp(pristine, h->index, sizeof(struct index_mirror)) != 0;
    for (int round = 0; round < 3; round++) {
        hostile_run(h, rng, 20, true);
        size_t bad = 12345;
        int res = heap_check(&h->heap, &bad);
        if (changed && h->heap.index != NULL) {
            assert_int_equal(res, -ECORRUPT);
            assert_int_equal(bad, 0);
        } else {
            assert_int_equal(res, 0);
        }
    }
}

/* Every byte of the header, each of several values. */
static void test_every_header_byte(void** state)
{
    (void)state;
    static const unsigned char values[] = { 0x00, 0xFF, 0x80, 0x7F, 0x01, 0x40 };
    uint64_t rng = 11;
    const size_t header = (sizeof(struct index_mirror) + 7) / 8 * 8;
    for (size_t s = 0; s < NSIZES; s++) {
        for (size_t off = 0; off < header; off++) {
            for (size_t v = 0; v <= sizeof(values); v++) {
                struct hostile h;
                hostile_start(&h, sizes[s], &rng);
                unsigned char pristine[64];
                memcpy(pristine, h.index, header);
                h.index[off] = v < sizeof(values) ? values[v] : (unsigned char)unit_rand(&rng);
                hostile_after_header_write(&h, pristine, &rng);
                hostile_destroy(&h);
            }
        }
    }
}

/* Every header field as a whole: counts of 0, 1, huge, of a larger heap;
 * pointers to NULL, into the pool, to the table, to the guards, to itself. */
static void test_header_fields(void** state)
{
    (void)state;
    uint64_t rng = 12;
    for (size_t s = 0; s < NSIZES; s++) {
        for (size_t field = 0; field < 5; field++) {
            for (size_t v = 0; v < 12; v++) {
                struct hostile h;
                hostile_start(&h, sizes[s], &rng);
                uintptr_t values[12] = {
                    0,
                    1,
                    UINTPTR_MAX,
                    UINTPTR_MAX / 2,
                    (uintptr_t)h.blocks * 2,
                    (uintptr_t)1 << (sizeof(uintptr_t) * 8 - 4),
                    UNIT_POOL,
                    UNIT_POOL + h.blocks * UNIT_BS / 2,
                    (uintptr_t)h.table.entries,
                    (uintptr_t)h.mem, /* the guard before */
                    (uintptr_t)(h.index + h.need), /* the guard after */
                    (uintptr_t)h.index + 8,
                };
                unsigned char pristine[64];
                memcpy(pristine, h.index, h.header);
                memcpy(h.index + field * sizeof(uintptr_t), &values[v], sizeof(uintptr_t));
                hostile_after_header_write(&h, pristine, &rng);
                hostile_destroy(&h);
            }
        }
        /* The whole header at once: zeros, ones, noise. */
        for (int fill = 0; fill < 3; fill++) {
            struct hostile h;
            hostile_start(&h, sizes[s], &rng);
            unsigned char pristine[64];
            memcpy(pristine, h.index, h.header);
            for (size_t i = 0; i < h.header; i++) {
                h.index[i] = fill == 0 ? 0 : fill == 1 ? 0xFF : (unsigned char)unit_rand(&rng);
            }
            hostile_after_header_write(&h, pristine, &rng);
            hostile_destroy(&h);
        }
    }
}

/* The bitmap and the nodes: every byte of small indexes and a sample of the
 * larger ones, bytes and whole words of garbage. */
static void test_bitmap_and_nodes(void** state)
{
    (void)state;
    uint64_t rng = 13;
    for (size_t s = 0; s < NSIZES; s++) {
        size_t need = heap_index_bytes(sizes[s]);
        size_t stride = need <= 400 ? 1 : 7;
        for (size_t off = (sizeof(struct index_mirror) + 7) / 8 * 8; off < need; off += stride) {
            for (int kind = 0; kind < 5; kind++) {
                struct hostile h;
                hostile_start(&h, sizes[s], &rng);
                if (kind < 3) {
                    h.index[off] = kind == 0 ? 0 : kind == 1 ? 0xFF : (unsigned char)unit_rand(&rng);
                } else {
                    size_t at = off / 8 * 8; /* a whole aligned word */
                    uint64_t word = kind == 3 ? UINT64_MAX : ((uint64_t)unit_rand(&rng) << 32 | unit_rand(&rng));
                    memcpy(h.index + at, &word, sizeof(word));
                }
                hostile_run(&h, &rng, 60, false);
                hostile_destroy(&h);
            }
        }
    }
}

/* Everything at once: the whole index memory noise, then zeros. */
static void test_whole_index(void** state)
{
    (void)state;
    uint64_t rng = 14;
    for (size_t s = 0; s < NSIZES; s++) {
        for (int round = 0; round < 20; round++) {
            struct hostile h;
            hostile_start(&h, sizes[s], &rng);
            for (size_t i = 0; i < h.need; i++) {
                h.index[i] = round == 0 ? 0 : round == 1 ? 0xFF : (unsigned char)unit_rand(&rng);
            }
            hostile_run(&h, &rng, 100, false);
            hostile_destroy(&h);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_header_byte),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_bitmap_and_nodes),
        cmocka_unit_test(test_whole_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
