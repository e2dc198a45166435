/*
 * test_heap_realloc.c - the block layer's whole-block helpers that the
 * kernel heap uses when built without the caches: heap_allocation_size,
 * heap_zalloc and heap_realloc, on a heap over real memory.
 */
#include "unit.h"

#define BLOCKS 16

struct real_heap
{
    struct unit_heap u;
    unsigned char* pool;
};

static void real_heap_make(struct real_heap* r, bool indexed)
{
    r->pool = aligned_alloc(UNIT_BS, BLOCKS * UNIT_BS);
    assert_non_null(r->pool);
    memset(r->pool, 0xEE, BLOCKS * UNIT_BS);
    unit_heap_make_at(&r->u, BLOCKS, indexed, (uintptr_t)r->pool);
}

static void real_heap_destroy(struct real_heap* r)
{
    unit_assert_clean(&r->u.heap);
    unit_heap_destroy(&r->u);
    free(r->pool);
}

static void test_allocation_size(void** state)
{
    (void)state;
    struct real_heap r;
    real_heap_make(&r, true);
    struct heap* heap = &r.u.heap;
    unsigned char* p = heap_malloc(heap, 2 * UNIT_BS + 1);
    assert_int_equal(heap_allocation_size(heap, p), 3 * UNIT_BS);
    assert_int_equal(heap_allocation_size(heap, p + UNIT_BS), 0); /* interior */
    assert_int_equal(heap_allocation_size(heap, p + 1), 0);       /* unaligned */
    assert_int_equal(heap_allocation_size(heap, p + 3 * UNIT_BS), 0); /* free block */
    assert_int_equal(heap_allocation_size(heap, r.pool - UNIT_BS), 0); /* outside */
    assert_int_equal(heap_allocation_size(heap, NULL), 0);
    assert_int_equal(heap_allocation_size(NULL, p), 0);
    assert_int_equal(r.u.reports.count, 0); /* asking reports nothing */
    assert_int_equal(heap->rejected_frees, 0);
    heap_free(heap, p);
    assert_int_equal(heap_allocation_size(heap, p), 0); /* freed */
    real_heap_destroy(&r);
}

static void test_zalloc(void** state)
{
    (void)state;
    struct real_heap r;
    real_heap_make(&r, false);
    unsigned char* z = heap_zalloc(&r.u.heap, 5000);
    assert_non_null(z);
    for (size_t i = 0; i < 5000; i++) {
        assert_int_equal(z[i], 0);
    }
    assert_null(heap_zalloc(&r.u.heap, 0));
    assert_null(heap_zalloc(&r.u.heap, (BLOCKS + 1) * UNIT_BS));
    assert_null(heap_zalloc(NULL, 1));
    unit_assert_table(&r.u.heap, "C1 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    heap_free(&r.u.heap, z);
    real_heap_destroy(&r);
}

/* Shrinks and grows in place, moves when it must (data kept, old freed),
 * NULL and 0 behave as malloc and free, and a failure changes nothing. */
static void test_heap_realloc_cases(void** state)
{
    (void)state;
    for (int indexed = 0; indexed < 2; indexed++) {
        struct real_heap r;
        real_heap_make(&r, indexed);
        struct heap* heap = &r.u.heap;
        unsigned char* p = heap_realloc(heap, NULL, 100); /* = heap_malloc */
        assert_ptr_equal(p, r.pool);
        memset(p, 0x11, UNIT_BS);
        assert_ptr_equal(heap_realloc(heap, p, 3 * UNIT_BS), p); /* grown in place */
        unit_assert_table(heap, "C1 81 01 00 00 00 00 00 00 00 00 00 00 00 00 00");
        assert_int_equal(p[UNIT_BS - 1], 0x11);
        assert_ptr_equal(heap_realloc(heap, p, UNIT_BS + 1), p); /* shrunk in place */
        unit_assert_table(heap, "C1 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
        unsigned char* q = heap_malloc(heap, UNIT_BS); /* blocks growth in place */
        assert_ptr_equal(q, r.pool + 2 * UNIT_BS);
        unsigned char* moved = heap_realloc(heap, p, 4 * UNIT_BS);
        assert_ptr_equal(moved, r.pool + 3 * UNIT_BS); /* first fit after q */
        assert_int_equal(moved[0], 0x11);
        assert_int_equal(moved[UNIT_BS - 1], 0x11);
        unit_assert_table(heap, "00 00 41 C1 81 81 01 00 00 00 00 00 00 00 00 00");
        /* No room to grow: NULL, nothing changed, the data intact. */
        struct unit_snapshot before;
        unit_snapshot_take(heap, &before);
        assert_null(heap_realloc(heap, moved, 14 * UNIT_BS)); /* 4 + 9 free after it, 2 before */
        assert_memory_equal(before.entries, heap->table->entries, BLOCKS);
        assert_int_equal(moved[0], 0x11);
        /* Bad pointers are refused as heap_free refuses them. */
        size_t reports = r.u.reports.count;
        assert_null(heap_realloc(heap, moved + UNIT_BS, 10));
        assert_int_equal(r.u.reports.count, reports + 1);
        assert_int_equal(r.u.reports.last.kind, HEAP_REPORT_FREE_INTERIOR);
        assert_null(heap_realloc(heap, moved + 1, 10));
        assert_int_equal(r.u.reports.last.kind, HEAP_REPORT_FREE_UNALIGNED);
        assert_memory_equal(before.entries, heap->table->entries, BLOCKS);
        /* Size 0 frees. */
        assert_null(heap_realloc(heap, moved, 0));
        assert_null(heap_realloc(heap, q, 0));
        assert_int_equal(heap->used_blocks, 0);
        assert_null(heap_realloc(NULL, NULL, 10));
        assert_null(heap_realloc(heap, moved, 10)); /* a double free is refused */
        assert_int_equal(r.u.reports.last.kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
        real_heap_destroy(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocation_size),
        cmocka_unit_test(test_zalloc),
        cmocka_unit_test(test_heap_realloc_cases),
    };
    return cmocka_run_group_tests_name("heap_realloc", tests, NULL, NULL);
}
