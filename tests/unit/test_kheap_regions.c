/*
 * test_kheap_regions.c - the kernel heap over several regions
 * (PEACHOS_KHEAP_REGIONS > 0: kheap_regions.c, the hosted port's
 * kheap_hosted_configure_regions). Built in that configuration by
 * `make test-unit-configs` (build/unit/regions/); in the default build
 * (PEACHOS_KHEAP_REGIONS = 0) it checks that the regions are ignored: one
 * region, kheap_port_region's, exactly as before.
 *
 * The hosted regions are separate mappings, so their order by address is
 * mmap's: the tests look the regions up by address (multiheap_region) and
 * by kheap_get() (the port's first region, the caches' home).
 */
#include "unit.h"

#include "hosted/kheap_hosted.h"

static void configure(size_t heap_bytes, bool fail_init)
{
    struct kheap_hosted_config config;
    memset(&config, 0, sizeof(config));
    config.heap_bytes = heap_bytes;
    config.indexed = true;
    config.fail_init = fail_init;
    config.quiet = true;
    kheap_hosted_configure(&config);
}

#if PEACHOS_KHEAP_REGIONS
/* Regions of 64, 32 and 128 blocks (the first the caches' home). */
static const size_t three[] = { 64 * UNIT_BS, 32 * UNIT_BS, 128 * UNIT_BS };

static int setup_three(void** state)
{
    (void)state;
    configure(64 * UNIT_BS, false);
    kheap_regions_first_only(false);
    if (kheap_hosted_configure_regions(three, 3) != 0) {
        return -1;
    }
    kheap_init();
    return kheap_ready() ? 0 : -1;
}

static int teardown(void** state)
{
    (void)state;
    kheap_regions_first_only(false);
    kheap_hosted_configure_regions(NULL, 0);
    return 0;
}

static struct heap* region(size_t k)
{
    return multiheap_region(kheap_regions(), k);
}

static uintptr_t pool_end(const struct heap* h)
{
    return (uintptr_t)h->saddr + h->table->total * UNIT_BS;
}

static void assert_clean(void)
{
    size_t bad = 12345;
    assert_int_equal(kheap_check(&bad), 0);
}

static void test_regions_built(void** state)
{
    (void)state;
    struct multiheap_stats stats;
    struct heap_stats per[3];
    multiheap_get_stats(kheap_regions(), &stats, per, 3);
    assert_int_equal(stats.regions, 3);
    assert_int_equal(stats.total.total_blocks, 64 + 32 + 128);
    assert_int_equal(stats.total.used_blocks, 0);
    assert_int_equal(kheap_get()->table->total, 64); /* the port's first region */
    assert_non_null(multiheap_get_heap_for_address(kheap_regions(), kheap_get()->saddr));
    for (size_t k = 0; k + 1 < 3; k++) {
        assert_true(pool_end(region(k)) <= (uintptr_t)region(k + 1)->saddr);
    }
    assert_clean();
}

static void test_first_fit_across_regions(void** state)
{
    (void)state;
    struct heap* low = region(0);
    struct heap* mid = region(1);
    struct heap* high = region(2);
    void* a = kmalloc(low->table->total * UNIT_BS); /* fills the lowest region */
    assert_ptr_equal(a, low->saddr);
    void* b = kmalloc(UNIT_BS); /* the next region by address */
    assert_ptr_equal(b, mid->saddr);
    size_t largest = high->table->total > mid->table->total ? high->table->total : mid->table->total;
    size_t failed = kheap_regions()->failed_allocs;
    assert_null(kmalloc((largest + 1) * UNIT_BS)); /* never spans two regions */
    assert_int_equal(kheap_regions()->failed_allocs, failed + 1);
    void* c = kzalloc(mid->table->total * UNIT_BS); /* no room left in mid: the next region with room */
    assert_ptr_equal(c, high->saddr);
    struct multiheap_stats stats;
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    assert_int_equal(stats.total.used_blocks, low->table->total + 1 + mid->table->total);
    assert_int_equal(stats.total.live_allocations, 3);
    assert_clean();
    kfree(a);
    kfree(b);
    kfree(c);
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    assert_int_equal(stats.total.used_blocks, 0);
    assert_int_equal(stats.total.rejected_frees, 0);
    assert_clean();
}

static void test_bad_frees_between_regions(void** state)
{
    (void)state;
    size_t reports = kheap_hosted_report_count();
    size_t outside = kheap_regions()->rejected_outside;
    for (size_t k = 0; k < 3; k++) {
        char* gap = (char*)pool_end(region(k)); /* the guard page after each pool: in no region */
        kfree(gap);
        assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_OUTSIDE);
        assert_ptr_equal(kheap_hosted_last_report().ptr, gap);
        assert_int_equal(ksize(gap), 0);
        assert_null(krealloc(gap, UNIT_BS));
    }
    assert_int_equal(kheap_regions()->rejected_outside, outside + 6);
    assert_int_equal(kheap_hosted_report_count(), reports + 6);
    /* A region refuses its own bad pointers, with its own report kinds. */
    char* p = kmalloc(2 * UNIT_BS + 1);
    struct heap* h = multiheap_get_heap_for_address(kheap_regions(), p);
    assert_non_null(h);
    size_t rejected = h->rejected_frees;
    kfree(p + UNIT_BS);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_INTERIOR);
    kfree(p + 8);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_UNALIGNED);
    kfree(p);
    kfree(p);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
    assert_int_equal(h->rejected_frees, rejected + 3);
    struct multiheap_stats stats;
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    assert_int_equal(stats.rejected_outside, outside + 6);
    assert_int_equal(stats.total.used_blocks, 0);
    kfree(NULL);
    assert_clean();
}

static void test_ksize_krealloc_across_regions(void** state)
{
    (void)state;
    struct heap* low = region(0);
    struct heap* mid = region(1);
    struct heap* high = region(2);
    void* fill = kmalloc(low->table->total * UNIT_BS);
    assert_ptr_equal(fill, low->saddr);
    unsigned char* p = kmalloc(3 * UNIT_BS);
    assert_ptr_equal(p, mid->saddr);
    assert_int_equal(ksize(p), 3 * UNIT_BS);
    for (size_t i = 0; i < 3 * UNIT_BS; i++) {
        p[i] = (unsigned char)(i * 7);
    }
    unsigned char* grown = krealloc(p, 5 * UNIT_BS); /* grows in place */
    assert_ptr_equal(grown, p);
    assert_int_equal(ksize(grown), 5 * UNIT_BS);
    unsigned char* moved = krealloc(grown, (mid->table->total + 1) * UNIT_BS); /* too big for mid: moves */
    assert_ptr_equal(moved, high->saddr);
    assert_int_equal(ksize(moved), (mid->table->total + 1) * UNIT_BS);
    for (size_t i = 0; i < 3 * UNIT_BS; i++) {
        assert_int_equal(moved[i], (unsigned char)(i * 7));
    }
    assert_int_equal(ksize(p), 0); /* the old one was freed */
    assert_null(krealloc(moved, (high->table->total + 1) * UNIT_BS)); /* no room anywhere: untouched */
    assert_int_equal(ksize(moved), (mid->table->total + 1) * UNIT_BS);
    unsigned char* shrunk = krealloc(moved, UNIT_BS);
    assert_ptr_equal(shrunk, moved);
    assert_int_equal(ksize(shrunk), UNIT_BS);
    assert_clean();
    assert_null(krealloc(shrunk, 0));
    assert_int_equal(ksize(shrunk), 0);
    kfree(fill);
    void* fresh = krealloc(NULL, UNIT_BS);
    assert_ptr_equal(fresh, low->saddr);
    kfree(fresh);
    assert_clean();
}

static void test_small_objects_on_the_first_region(void** state)
{
    (void)state;
    struct heap* first = kheap_get();
    char* s = kmalloc_small(40);
    assert_non_null(s);
    assert_true((uintptr_t)s >= (uintptr_t)first->saddr && (uintptr_t)s < pool_end(first));
    assert_int_equal(ksize(s), 48);
    char* t = krealloc(s, 44); /* stays put within its class */
    assert_ptr_equal(t, s);
    char* z = kzalloc_small(100);
    assert_non_null(z);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(z[i], 0);
    }
    char* big = kmalloc_small(3000); /* above the caches: whole blocks, any region */
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % UNIT_BS, 0);
    assert_int_equal(ksize(big), UNIT_BS);
    assert_clean();
    kfree(t);
    kfree(t); /* double free of a small object: the caches refuse it */
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_BAD_FREE);
    kfree(z);
    kfree(big);
    assert_int_equal(kheap_trim() > 0, 1);
    struct multiheap_stats stats;
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    assert_int_equal(stats.total.used_blocks, 0);
    assert_clean();
}

static void test_first_only(void** state)
{
    (void)state;
    struct heap* first = kheap_get();
    assert_false(kheap_regions_first_only(true));
    assert_null(kpalloc((first->table->total + 1) * UNIT_BS)); /* the others had room */
    void* p = kpalloc(UNIT_BS);
    assert_ptr_equal(p, first->saddr);
    void* all = kpalloc((first->table->total - 1) * UNIT_BS);
    assert_non_null(all);
    assert_null(kpalloc(UNIT_BS));
    assert_int_equal(ksize(all), (first->table->total - 1) * UNIT_BS);
    all = krealloc(all, UNIT_BS);
    assert_int_equal(ksize(all), UNIT_BS);
    assert_true(kheap_regions_first_only(false));
    void* q = kpalloc(first->table->total * UNIT_BS); /* now anywhere */
    assert_non_null(q);
    assert_true(multiheap_get_heap_for_address(kheap_regions(), q) != first);
    assert_true(kheap_regions_first_only(true) == false);
    kfree(q); /* another region's memory still goes back */
    size_t rejected = first->rejected_frees, outside = kheap_regions()->rejected_outside;
    kfree((char*)pool_end(region(0))); /* in no region: the first region refuses it, as one region would */
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_OUTSIDE);
    assert_int_equal(first->rejected_frees, rejected + 1);
    assert_int_equal(kheap_regions()->rejected_outside, outside);
    kfree(p);
    kfree(all);
    kheap_regions_first_only(false);
    struct multiheap_stats stats;
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    assert_int_equal(stats.total.used_blocks, 0);
    assert_clean();
}

/* A spare slab of the caches is given back when the blocks are needed. */
static void test_spare_slab_trimmed_for_blocks(void** state)
{
    (void)state;
    const size_t one[] = { 16 * UNIT_BS };
    kheap_hosted_configure_regions(one, 1);
    kheap_init();
    assert_true(kheap_ready());
    void* s = kmalloc_small(64);
    kfree(s); /* the slab stays, as the spare */
    assert_true(kheap_get()->used_blocks > 0);
    void* all = kpalloc(16 * UNIT_BS);
    assert_ptr_equal(all, kheap_get()->saddr);
    assert_null(kpalloc(UNIT_BS));
    kfree(all);
    assert_clean();
}

static void test_init_failure_and_bad_regions(void** state)
{
    (void)state;
    configure(64 * UNIT_BS, true);
    kheap_init();
    assert_false(kheap_ready());
    assert_null(kheap_regions());
    assert_null(kmalloc(UNIT_BS));
    assert_int_equal(kheap_check(NULL), -EINVARG);
    configure(64 * UNIT_BS, false);
    kheap_hosted_configure_regions(NULL, 0); /* the default: kheap_port_region, once */
    kheap_init();
    assert_true(kheap_ready());
    assert_int_equal(kheap_regions()->count, 1);
    kheap_hosted_bad_region(KHEAP_HOSTED_REGION_NO_TABLE);
    kheap_init();
    assert_false(kheap_ready());
    kheap_hosted_bad_region(KHEAP_HOSTED_REGION_END_BEFORE_START);
    kheap_init();
    assert_false(kheap_ready());
    const size_t too_many[] = { UNIT_BS, UNIT_BS, UNIT_BS, UNIT_BS, UNIT_BS };
    assert_int_equal(kheap_hosted_configure_regions(too_many, 5), 0);
    kheap_init(); /* the port gives at most PEACHOS_KHEAP_REGIONS */
    assert_true(kheap_ready());
    assert_int_equal(kheap_regions()->count, PEACHOS_KHEAP_REGIONS < 5 ? PEACHOS_KHEAP_REGIONS : 5);
    const size_t empty[] = { 0 };
    kheap_hosted_configure_regions(empty, 1);
    kheap_init(); /* a region of no block is refused */
    assert_false(kheap_ready());
    assert_int_equal(kheap_hosted_configure_regions(too_many, 17), -EINVARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_regions_built, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_first_fit_across_regions, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees_between_regions, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_ksize_krealloc_across_regions, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_small_objects_on_the_first_region, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_first_only, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_spare_slab_trimmed_for_blocks, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_init_failure_and_bad_regions, setup_three, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
/* Switch off: configured regions change nothing; kheap is the one region
 * of kheap_port_region, as every other test sees it. */
static void test_regions_ignored_when_off(void** state)
{
    (void)state;
    const size_t three[] = { 64 * UNIT_BS, 32 * UNIT_BS, 128 * UNIT_BS };
    configure(40 * UNIT_BS, false);
    assert_int_equal(kheap_hosted_configure_regions(three, 3), 0);
    kheap_init();
    assert_true(kheap_ready());
    assert_int_equal(kheap_get()->table->total, 40);
    void* p = kmalloc(41 * UNIT_BS);
    assert_null(p);
    p = kmalloc(40 * UNIT_BS);
    assert_ptr_equal(p, kheap_get()->saddr);
    kfree(p);
    assert_int_equal(kheap_check(NULL), 0);
    kheap_hosted_configure_regions(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regions_ignored_when_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
