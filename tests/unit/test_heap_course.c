/*
 * test_heap_course.c - the 64-bit course's names (heap_course.h) on real
 * heaps: heap_total_* equal the counters in bytes at every step, the pool
 * bounds, the block alignment at its edges, multiheap_alloc placing as
 * multiheap_malloc, multiheap_add laying a region out with its table at
 * its start (and refusing, with nothing written, what it must), and
 * kheap_post_paging leaving the kernel heap as it was.
 */
#include "unit.h"
#include "unit_kheap.h"

#include "memory/heap/heap_course.h"

/* An arena of `blocks` blocks, block-aligned, filled with 0xEE. */
static unsigned char* arena(size_t blocks)
{
    unsigned char* a = aligned_alloc(UNIT_BS, blocks * UNIT_BS);
    assert_non_null(a);
    memset(a, 0xEE, blocks * UNIT_BS);
    return a;
}

static void test_totals(void** state)
{
    (void)state;
    struct unit_heap u;
    unsigned char* pool_mem = arena(40); /* heap_zalloc writes: real memory */
    unit_heap_make_at(&u, 40, true, (uintptr_t)pool_mem);
    assert_int_equal(heap_total_size(&u.heap), 40 * UNIT_BS);
    assert_int_equal(heap_total_used(&u.heap), 0);
    assert_int_equal(heap_total_available(&u.heap), 40 * UNIT_BS);
    void* a = heap_malloc(&u.heap, 3 * UNIT_BS);
    void* b = heap_zalloc(&u.heap, 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(heap_total_used(&u.heap), 4 * UNIT_BS);
    assert_int_equal(heap_total_available(&u.heap), 36 * UNIT_BS);
    heap_free(&u.heap, a);
    assert_int_equal(heap_total_used(&u.heap), UNIT_BS);
    assert_int_equal(heap_total_size(&u.heap), heap_total_used(&u.heap) + heap_total_available(&u.heap));
    unit_heap_destroy(&u);
    free(pool_mem);
}

static void test_bounds_and_alignment(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 8, false);
    char* start = u.heap.saddr;
    assert_ptr_equal(heap_eaddr(&u.heap), start + 8 * UNIT_BS);
    assert_true(heap_is_address_within_heap(&u.heap, start));
    assert_true(heap_is_address_within_heap(&u.heap, start + 8 * UNIT_BS - 1));
    assert_false(heap_is_address_within_heap(&u.heap, start + 8 * UNIT_BS));
    assert_false(heap_is_address_within_heap(&u.heap, start - 1));
    assert_int_equal(heap_align_value_to_lower(UNIT_BS + 1), UNIT_BS);
    assert_int_equal(heap_align_value_to_upper(UNIT_BS + 1), 2 * UNIT_BS);
    assert_int_equal(heap_align_value_to_upper(2 * UNIT_BS), 2 * UNIT_BS);
    assert_int_equal(heap_align_value_to_upper(0), 0);
    /* no wrap at the top of the address space: the highest multiple */
    assert_int_equal(heap_align_value_to_upper(UINTPTR_MAX), UINTPTR_MAX - (UNIT_BS - 1));
    unit_heap_destroy(&u);
}

static void test_multiheap_add(void** state)
{
    (void)state;
    struct multiheap mh;
    assert_int_equal(multiheap_init(&mh), 0);
    unsigned char* a = arena(4200); /* 4200 table bytes: two blocks of table, 4198 of pool */
    assert_int_equal(multiheap_add(&mh, a, a + 4200 * UNIT_BS, MULTIHEAP_HEAP_FLAG_DEFRAGMENT_WITH_PAGING), 0);
    struct heap* h = multiheap_region(&mh, 0);
    assert_ptr_equal(h->saddr, a + 2 * UNIT_BS);
    assert_ptr_equal(h->table->entries, a);
    assert_int_equal(h->table->total, 4198);
    assert_ptr_equal(heap_eaddr(h), a + 4200 * UNIT_BS);
    /* multiheap_alloc is multiheap_malloc: the first fit, whole blocks */
    unsigned char* p = multiheap_alloc(&mh, UNIT_BS + 1);
    assert_ptr_equal(p, a + 2 * UNIT_BS);
    memset(p, 0x5A, 2 * UNIT_BS);
    assert_int_equal(a[0], 0xC1); /* the region's own table, at its start */
    assert_int_equal(a[1], 0x01);
    assert_int_equal(heap_total_used(h), 2 * UNIT_BS);
    multiheap_free(&mh, p);
    assert_int_equal(multiheap_check(&mh, NULL, NULL), 0);
    free(a);
}

static void test_multiheap_add_refusals(void** state)
{
    (void)state;
    struct multiheap mh;
    assert_int_equal(multiheap_init(&mh), 0);
    unsigned char* a = arena(8);
    unsigned char copy[8 * 4096];
    assert_true(sizeof(copy) >= 8 * UNIT_BS);
    memcpy(copy, a, 8 * UNIT_BS);
    assert_int_equal(multiheap_add(&mh, a + 1, a + 8 * UNIT_BS, 0), -EINVARG);
    assert_int_equal(multiheap_add(&mh, a, a + 8 * UNIT_BS - 1, 0), -EINVARG);
    assert_int_equal(multiheap_add(&mh, a, a, 0), -EINVARG);
    assert_int_equal(multiheap_add(&mh, a, a + UNIT_BS, 0), -EINVARG); /* the table takes it all */
    assert_int_equal(multiheap_add(&mh, a, a + 8 * UNIT_BS, MULTIHEAP_HEAP_FLAG_EXTERNALLY_OWNED), -EINVARG);
    assert_int_equal(multiheap_add(&mh, a, a + 8 * UNIT_BS, 0x40), -EINVARG);
    assert_memory_equal(a, copy, 8 * UNIT_BS); /* nothing written */
    assert_int_equal(mh.count, 0);
    assert_int_equal(multiheap_add(&mh, a, a + 2 * UNIT_BS, 0), 0); /* one block of table, one of pool */
    assert_int_equal(multiheap_add(&mh, a, a + 2 * UNIT_BS, 0), -EINVARG); /* overlaps: multiheap_add_region's refusal */
    assert_int_equal(mh.count, 1);
    free(a);
}

static void test_kheap_post_paging(void** state)
{
    (void)state;
    kheap_init();
    assert_true(kheap_ready());
    void* p = kpzalloc(3 * UNIT_BS);
    assert_non_null(p);
    size_t used = kheap_get()->used_blocks;
    kheap_post_paging();
    assert_true(kheap_ready());
    assert_int_equal(kheap_get()->used_blocks, used);
    assert_int_equal(ksize(p), 3 * UNIT_BS);
    kfree(p);
    assert_kheap_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_bounds_and_alignment),
        cmocka_unit_test(test_multiheap_add),
        cmocka_unit_test(test_multiheap_add_refusals),
        cmocka_unit_test(test_kheap_post_paging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
