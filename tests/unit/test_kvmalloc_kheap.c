/*
 * test_kvmalloc_kheap.c - the kernel heap's window (PEACHOS_KHEAP_VMALLOC
 * = 1: kheap_vmalloc.c). Built in that configuration, with one region and
 * with several, by `make test-unit-configs` (build/unit/vmalloc/, build/unit/vmalloc-regions/); in the
 * default build it checks that the window is left out: a fragmented heap
 * refuses what it cannot hold contiguously.
 *
 * The window is real: this file is the port's kheap_port_window. It
 * reserves an inaccessible range, and its map hook puts the pool's page
 * there a second time (mremap with old size 0 of the hosted port's shared
 * pool), so a window pointer reads and writes the heap block behind it,
 * exactly as the MMU would make it on bare metal. Fault injection: the map
 * hook refuses its n-th call when asked.
 */
#include "unit.h"
#include "unit_kheap.h"

#if PEACHOS_KHEAP_VMALLOC
#include <sys/mman.h>

#include "memory/heap/heap_course.h"
#include "memory/heap/kvmalloc.h"

#define W_BLOCKS 256

static unsigned char* window;
static HEAP_BLOCK_TABLE_ENTRY window_table[W_BLOCKS];
static void* window_backing[W_BLOCKS];
static void* shadow[W_BLOCKS]; /* what the hook mapped: the lookup hook's answer */
static size_t map_calls, map_fail_at = SIZE_MAX;
static bool window_offered = true;
static bool window_bad;
static bool window_over_pool; /* a window over the heap's own pool: refused by kvmalloc_add_source */
static bool window_after_paging; /* the course's order: the window waits for kheap_post_paging */

static int win_map(void* ctx, void* virt, void* block)
{
    (void)ctx;
    if (map_calls++ == map_fail_at) {
        return -ENOMEM;
    }
    if (mremap(block, 0, UNIT_BS, MREMAP_MAYMOVE | MREMAP_FIXED, virt) != virt) {
        return -ENOMEM;
    }
    shadow[((unsigned char*)virt - window) / UNIT_BS] = block;
    return 0;
}

static void win_unmap(void* ctx, void* virt)
{
    (void)ctx;
    assert_true(mmap(virt, UNIT_BS, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == virt);
    shadow[((unsigned char*)virt - window) / UNIT_BS] = NULL;
}

static void* win_lookup(void* ctx, const void* virt)
{
    (void)ctx;
    return shadow[((const unsigned char*)virt - window) / UNIT_BS];
}

int kheap_port_window(struct kheap_window* w)
{
    if (!window_offered) {
        return -EIO;
    }
    memset(shadow, 0, sizeof(shadow));
    w->start = window + (window_bad ? 8 : 0); /* a misaligned window is refused */
    w->end = window + W_BLOCKS * UNIT_BS;
    if (window_over_pool) {
        w->start = kheap_get()->saddr;
        w->end = (unsigned char*)w->start + W_BLOCKS * UNIT_BS;
    }
    w->table = window_table;
    w->index = NULL;
    w->index_bytes = 0;
    w->backing = window_backing;
    w->ops = (struct kvmalloc_ops){ win_map, win_unmap, win_lookup, NULL };
    if (window_after_paging) {
        w->after_paging = true; /* otherwise left as kheap found it: 0 */
    }
    return 0;
}

/* A 64-block heap (in the regions build: regions of 24, 16 and 24 blocks). */
static int setup(void** state)
{
    (void)state;
    if (window == NULL) {
        window = mmap(NULL, W_BLOCKS * UNIT_BS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        assert_true(window != MAP_FAILED);
    }
    struct kheap_hosted_config config = { 64 * UNIT_BS, true, false, true };
    kheap_hosted_configure(&config);
#if PEACHOS_KHEAP_REGIONS
    static const size_t three[] = { 24 * UNIT_BS, 16 * UNIT_BS, 24 * UNIT_BS };
    kheap_hosted_configure_regions(three, 3);
#endif
    window_offered = true;
    window_bad = false;
    window_over_pool = false;
    window_after_paging = false;
    map_fail_at = SIZE_MAX;
    kheap_init();
    return kheap_ready() && kheap_window() != NULL ? 0 : -1;
}

static int teardown(void** state)
{
    (void)state;
#if PEACHOS_KHEAP_REGIONS
    kheap_hosted_configure_regions(NULL, 0);
#endif
    return 0;
}

static size_t used_blocks(void)
{
#if PEACHOS_KHEAP_REGIONS
    struct multiheap_stats stats;
    multiheap_get_stats(kheap_regions(), &stats, NULL, 0);
    return stats.total.used_blocks;
#else
    return kheap_get()->used_blocks;
#endif
}

static size_t taken; /* blocks fragment() took: the heap's, less the caches' table */

/* Every block taken one by one, then every other one freed: at least 31
 * free blocks, no two adjacent. Returns the blocks, the odd ones taken. */
static void** fragment(void)
{
    static void* blocks[64];
    for (taken = 0; taken < 64 && (blocks[taken] = kpalloc(1)) != NULL; taken++) {
    }
    assert_true(taken >= 32);
    for (size_t i = 0; i < taken; i += 2) {
        memset(blocks[i], 0xEE, UNIT_BS); /* garbage kzalloc must clear */
        kfree(blocks[i]);
    }
    return blocks;
}

static void unfragment(void** blocks)
{
    for (size_t i = 1; i < taken; i += 2) {
        kfree(blocks[i]);
    }
    assert_int_equal(used_blocks(), 0);
    assert_kheap_clean();
}

static void test_kmalloc_falls_back(void** state)
{
    (void)state;
    void** blocks = fragment();
    assert_null(kpalloc(2 * UNIT_BS)); /* kpalloc never uses the window */
    size_t size = 10 * UNIT_BS - 100;
    unsigned char* p = kmalloc(size);
    assert_ptr_equal(p, window);
    assert_int_equal(ksize(p), 10 * UNIT_BS);
    for (size_t i = 0; i < size; i++) {
        p[i] = (unsigned char)(i * 7 + i / UNIT_BS);
    }
    const unsigned char* prev = NULL;
    for (size_t b = 0; b < 10; b++) { /* each window block is a free heap block, in address order */
        const unsigned char* block = kvmalloc_backing(kheap_window(), p + b * UNIT_BS);
        assert_true(block > prev);
        prev = block;
        for (size_t i = 0; i < UNIT_BS && b * UNIT_BS + i < size; i++) {
            assert_int_equal(block[i], (unsigned char)((b * UNIT_BS + i) * 7 + b));
        }
    }
    assert_kheap_clean();
    unsigned char* z = kzalloc(5 * UNIT_BS); /* the window's next blocks, zeroed */
    assert_ptr_equal(z, window + 10 * UNIT_BS);
    for (size_t i = 0; i < 5 * UNIT_BS; i++) {
        assert_int_equal(z[i], 0);
    }
    size_t left = (taken + 1) / 2 - 15;
    assert_null(kcalloc(left + 1, UNIT_BS));
    kfree(z);
    unsigned char* q = krealloc(p, 14 * UNIT_BS); /* grows: moves in the window */
    assert_non_null(q);
    assert_true(kvmalloc_owns(kheap_window(), q) && q != p);
    for (size_t i = 0; i < size; i++) {
        assert_int_equal(q[i], (unsigned char)(i * 7 + i / UNIT_BS));
    }
    assert_int_equal(ksize(p), 0);
    assert_ptr_equal(krealloc(q, UNIT_BS), q); /* shrinks in place */
    assert_int_equal(ksize(q), UNIT_BS);
    assert_kheap_clean();
    kvfree(q);
    assert_int_equal(used_blocks(), taken / 2);
    unfragment(blocks);
}

static void test_kvmalloc_prefers_contiguous(void** state)
{
    (void)state;
    unsigned char* p = kvmalloc(3 * UNIT_BS);
    assert_non_null(p);
    assert_false(kvmalloc_owns(kheap_window(), p));
    assert_null(kvmalloc(0));
    void** blocks = fragment();
    kvfree(p);
    unsigned char* v = kvmalloc(2 * UNIT_BS); /* p's 3 blocks are the only run */
    assert_ptr_equal(v, p);
    unsigned char* w = kvmalloc(4 * UNIT_BS);
    assert_true(kvmalloc_owns(kheap_window(), w));
    assert_null(kvmalloc(64 * UNIT_BS));
    kvfree(v);
    kvfree(w);
    unfragment(blocks);
}

/* Heap memory that can neither grow nor find a run moves into the window. */
static void test_krealloc_heap_to_window(void** state)
{
    (void)state;
    void** blocks = fragment();
    unsigned char* h = blocks[1];
    memset(h, 0x3C, UNIT_BS);
    unsigned char* v = krealloc(h, 6 * UNIT_BS);
    assert_true(kvmalloc_owns(kheap_window(), v));
    for (size_t i = 0; i < UNIT_BS; i++) {
        assert_int_equal(v[i], 0x3C);
    }
    assert_null(krealloc(blocks[3], 64 * UNIT_BS)); /* no room anywhere: untouched */
    assert_int_equal(ksize(blocks[3]), UNIT_BS);
    blocks[1] = kmalloc(UNIT_BS);
    assert_non_null(blocks[1]);
    kfree(v);
    unfragment(blocks);
}

static void test_window_bad_frees(void** state)
{
    (void)state;
    void** blocks = fragment();
    unsigned char* p = kmalloc(3 * UNIT_BS);
    assert_true(kvmalloc_owns(kheap_window(), p));
    size_t reports = kheap_hosted_report_count();
    kfree(p + UNIT_BS);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_INTERIOR);
    kfree(p + 8);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_UNALIGNED);
    kfree(p + 10 * UNIT_BS);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
    assert_null(krealloc(p + UNIT_BS, UNIT_BS));
    assert_int_equal(ksize(p + UNIT_BS), 0);
    void* block = kvmalloc_backing(kheap_window(), p);
    kfree(block); /* a backing block is the window's */
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_WRONG_OWNER);
    void* saved = window_backing[1];
    window_backing[1] = window_backing[0]; /* the record overwritten */
    kfree(p);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_WINDOW_CORRUPT);
    size_t bad = 0;
    assert_int_equal(kheap_check(&bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    window_backing[1] = saved;
    assert_int_equal(kheap_hosted_report_count(), reports + 6);
    assert_kheap_clean();
    kfree(p);
    kfree(p); /* double free */
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
    assert_ptr_equal(kheap_hosted_last_report().ptr, p);
    unfragment(blocks);
}

/* The map hook refusing its n-th call: NULL, nothing changed. */
static void test_map_failure(void** state)
{
    (void)state;
    void** blocks = fragment();
    size_t used = used_blocks();
    for (size_t n = 0; n < 6; n++) {
        map_calls = 0;
        map_fail_at = n;
        assert_null(kmalloc(6 * UNIT_BS));
        assert_int_equal(used_blocks(), used);
        assert_kheap_clean();
    }
    assert_int_equal(kheap_window()->map_failures, 6);
    map_fail_at = SIZE_MAX;
    void* p = kmalloc(6 * UNIT_BS);
    assert_non_null(p);
    kfree(p);
    unfragment(blocks);
}

/* A port without a window, with one kvmalloc_init refuses, or with one over
 * the heap's own pool (kvmalloc_add_source refuses): no fallback. */
static void test_no_window(void** state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        window_offered = k >= 1;
        window_bad = k == 1;
        window_over_pool = k == 2;
        kheap_init();
        assert_true(kheap_ready());
        assert_null(kheap_window());
        void** blocks = fragment();
        assert_null(kmalloc(2 * UNIT_BS));
        assert_null(kvmalloc(2 * UNIT_BS));
        assert_int_equal(ksize(window), 0);
        unfragment(blocks);
    }
}

/* A window given with after_paging: the heap has it (kheap_window, its
 * check) but neither kmalloc nor kvmalloc maps a page through it before
 * kheap_post_paging; from then on both do. A second kheap_init without the
 * flag needs no call. */
static void test_window_after_paging(void** state)
{
    (void)state;
    window_after_paging = true;
    kheap_init();
    assert_true(kheap_ready());
    assert_non_null(kheap_window());
    void** blocks = fragment();
    size_t calls = map_calls;
    assert_null(kmalloc(2 * UNIT_BS));
    assert_null(kvmalloc(2 * UNIT_BS));
    assert_int_equal(map_calls, calls); /* no page mapped */
    assert_int_equal(kheap_check(NULL), PEACHOS_ALL_OK);
    kheap_post_paging();
    void* p = kmalloc(2 * UNIT_BS);
    assert_non_null(p);
    assert_ptr_equal(p, window);
    assert_int_equal(map_calls, calls + 2);
    kfree(p);
    unfragment(blocks);
    assert_kheap_clean();

    window_after_paging = false;
    kheap_init();
    blocks = fragment();
    p = kmalloc(2 * UNIT_BS);
    assert_non_null(p);
    kfree(p);
    unfragment(blocks);
    assert_kheap_clean();
}

/* A kernel heap that failed to start has no window either. */
static void test_no_heap_no_window(void** state)
{
    (void)state;
    struct kheap_hosted_config config = { 64 * UNIT_BS, true, true, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_false(kheap_ready());
    assert_null(kheap_window());
    assert_null(kvmalloc(UNIT_BS));
    assert_null(kmalloc(UNIT_BS));
    config.fail_init = false;
    kheap_hosted_configure(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kmalloc_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvmalloc_prefers_contiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_krealloc_heap_to_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_bad_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_after_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_heap_no_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
/* Switch off: a fragmented heap has no fallback. */
static void test_window_left_out(void** state)
{
    (void)state;
    struct kheap_hosted_config config = { 8 * UNIT_BS, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    void* blocks[8];
    for (size_t i = 0; i < 8; i++) {
        blocks[i] = kpalloc(1); /* a whole block in every build */
    }
    for (size_t i = 0; i < 8; i += 2) {
        kfree(blocks[i]);
    }
    assert_null(kmalloc(2 * UNIT_BS));
    for (size_t i = 1; i < 8; i += 2) {
        kfree(blocks[i]);
    }
    assert_kheap_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
