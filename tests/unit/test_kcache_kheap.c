/*
 * tests/unit/test_kcache_kheap.c - the kmalloc family on the kernel heap
 * (kheap.c over the hosted port): kmalloc of small and large sizes, kpalloc,
 * kzalloc, kcalloc (overflow), krealloc, ksize, kheap_check, kheap_trim,
 * reports through the port, the fault hook and the hosted fault countdown
 * (surviving kheap_init), where the slab table lives, a corrupt slab-table
 * record and a stray write into a slab, behaviour before a successful
 * kheap_init, and small objects shared between threads.
 */
#include "unit.h"
#include "unit_kheap.h"

#include <pthread.h>

static void configure(size_t blocks, bool indexed, bool fail_init)
{
    struct kheap_hosted_config config = { blocks * UNIT_BS, indexed, fail_init, true };
    kheap_hosted_configure(&config);
}

static void init_heap(size_t blocks)
{
    configure(blocks, blocks % 2 == 0, false);
    kheap_init();
    assert_true(kheap_ready());
}

static bool fail_everything(void* ctx, enum kcache_fault_site site)
{
    size_t* calls = (size_t*)ctx;
    (*calls)++;
    (void)site;
    return true;
}

/* Before a successful kheap_init everything is refused harmlessly. */
static void test_not_ready(void** state)
{
    (void)state;
    configure(8, true, true);
    kheap_init();
    assert_false(kheap_ready());
    assert_null(kheap_cache());
    assert_null(kmalloc_small(16));
    assert_null(kmalloc_small(5000));
    assert_null(kzalloc_small(16));
    assert_null(kcalloc(2, 8));
    assert_null(kpalloc(1));
    assert_null(krealloc(NULL, 16));
    assert_null(krealloc((void*)0x1000, 16)); /* nothing to resize before the heap exists */
    assert_int_equal(ksize((void*)0x1000), 0);
    assert_int_equal(kheap_check(NULL), -EINVARG);
    assert_int_equal(kheap_trim(), 0);
    kfree((void*)0x1000);
    kfree(NULL);
    /* A fault hook set now applies from the next successful kheap_init. */
    size_t calls = 0;
    kheap_set_fault(fail_everything, &calls);
    init_heap(4);
    assert_null(kmalloc_small(16));
    assert_int_equal(calls, 1);
    kheap_set_fault(NULL, NULL);
}

static void test_kmalloc_small_and_large(void** state)
{
    (void)state;
    init_heap(8);
    struct kcache* kc = kheap_cache();
    assert_non_null(kc);
    assert_ptr_equal(kc->heap, kheap_get());
    unsigned char* s = kmalloc_small(24);
    assert_ptr_equal(s, pool()); /* a slab's first byte is its object 0 */
    assert_int_equal((uintptr_t)s % 16, 0);
    assert_int_equal(ksize(s), 32);
    unsigned char* l = kmalloc_small(KCACHE_MAX_SIZE + 1);
    assert_ptr_equal(l, pool() + UNIT_BS);
    assert_int_equal(ksize(l), UNIT_BS);
    unsigned char* p = kpalloc(10);
    assert_ptr_equal(p, pool() + 2 * UNIT_BS);
    unsigned char* q = kmalloc_small(2 * UNIT_BS);
    unit_assert_table(kheap_get(), "43 41 41 C1 01 00 00 00");
    assert_kheap_clean();
    kfree(s);
    kfree(l);
    kfree(p);
    kfree(q);
    unit_assert_table(kheap_get(), "43 00 00 00 00 00 00 00"); /* the spare */
    assert_int_equal(kheap_trim(), 1);
    unit_assert_table(kheap_get(), "00 00 00 00 00 00 00 00");
    assert_int_equal(kheap_trim(), 0);
    assert_int_equal(kheap_get()->rejected_frees, 0);
    assert_kheap_clean();
}

static void test_kzalloc(void** state)
{
    (void)state;
    init_heap(8);
    static const size_t sizes[] = { 1, 16, 100, 2048, 2049, UNIT_BS + 5 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char* p = kmalloc_small(sizes[i]);
        memset(p, 0xFF, sizes[i]);
        kfree(p);
        unsigned char* z = kzalloc_small(sizes[i]);
        assert_ptr_equal(z, p); /* the same memory, now zeroed */
        for (size_t j = 0; j < sizes[i]; j++) {
            assert_int_equal(z[j], 0);
        }
        kfree(z);
    }
    assert_null(kzalloc_small(0));
    assert_kheap_clean();
}

static void test_kcalloc(void** state)
{
    (void)state;
    init_heap(8);
    unsigned char* p = kmalloc_small(200);
    memset(p, 0xEE, 200);
    kfree(p);
    unsigned char* z = kcalloc(10, 20);
#if PEACHOS_KMALLOC_SMALL_OBJECTS
    assert_ptr_equal(z, p); /* kcalloc is small-object too: the freed object, zeroed */
#else
    assert_int_equal(ksize(z), UNIT_BS); /* the seed's contract: a whole block */
    assert_int_equal((uintptr_t)(z - pool()) % UNIT_BS, 0);
#endif
    for (size_t i = 0; i < 200; i++) {
        assert_int_equal(z[i], 0);
    }
    kfree(z);
    unsigned char* b = kcalloc(3, UNIT_BS);
    assert_non_null(b);
    assert_int_equal(ksize(b), 3 * UNIT_BS);
    for (size_t i = 0; i < 3 * UNIT_BS; i++) {
        assert_int_equal(b[i], 0);
    }
    kfree(b);
    size_t used = kheap_get()->used_blocks;
    size_t failed = kheap_get()->failed_allocs;
    assert_null(kcalloc(SIZE_MAX / 2 + 1, 2)); /* overflow: nothing is even tried */
    assert_null(kcalloc(2, SIZE_MAX / 2 + 1));
    assert_null(kcalloc(SIZE_MAX, SIZE_MAX));
    assert_null(kcalloc((SIZE_MAX >> 12) + 1, UNIT_BS));
    assert_int_equal(kheap_get()->failed_allocs, failed);
    assert_null(kcalloc(0, 5));
    assert_null(kcalloc(5, 0));
    assert_null(kcalloc(0, 0));
    assert_int_equal(kheap_get()->used_blocks, used);
    assert_true(used > 0); /* the spare slabs */
    assert_null(kcalloc(SIZE_MAX / 2, 2)); /* fits size_t, not the heap: tried, after a trim */
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_int_equal(kheap_get()->failed_allocs, failed + 2);
    assert_kheap_clean();
}

static void test_krealloc(void** state)
{
    (void)state;
    init_heap(8);
    unsigned char* n = krealloc(NULL, 10); /* kmalloc(10), whatever it gives */
    assert_int_equal(ksize(n), PEACHOS_KMALLOC_SMALL_OBJECTS ? 16 : UNIT_BS);
    kfree(n);
    unsigned char* p = krealloc(kmalloc_small(10), 10);
    assert_int_equal(ksize(p), 16);
    memcpy(p, "0123456789abcdef", 16);
    assert_ptr_equal(krealloc(p, 16), p);
    unsigned char* q = krealloc(p, 17);
    assert_ptr_not_equal(q, p);
    assert_memory_equal(q, "0123456789abcdef", 16);
    unsigned char* b = krealloc(q, 3 * UNIT_BS);
    assert_int_equal((uintptr_t)(b - pool()) % UNIT_BS, 0);
    assert_memory_equal(b, "0123456789abcdef", 16);
    assert_ptr_equal(krealloc(b, UNIT_BS), b);
    assert_null(krealloc(b, 0));
    assert_int_equal(ksize(b), 0);
    size_t reports = kheap_hosted_report_count();
    unsigned char* s = kmalloc_small(64);
    assert_null(krealloc(s + 8, 100)); /* refused, reported through the port */
    assert_int_equal(kheap_hosted_report_count(), reports + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_BAD_FREE);
    assert_ptr_equal(kheap_hosted_last_report().ptr, s + 8);
    assert_int_equal(ksize(s), 64);
    kfree(s);
    assert_kheap_clean();
}

/* Bad small-object frees go through the port like block ones. */
static void test_bad_frees_reported(void** state)
{
    (void)state;
    init_heap(4);
    unsigned char* a = kmalloc_small(100);
    size_t reports = kheap_hosted_report_count();
    size_t rejected = kheap_get()->rejected_frees;
    kfree(a + 4);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_BAD_FREE);
    assert_int_equal(kheap_hosted_last_report().block, 0);
    kfree(a);
    kfree(a); /* double free */
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_BAD_FREE);
    assert_ptr_equal(kheap_hosted_last_report().ptr, a);
    assert_int_equal(kheap_hosted_report_count(), reports + 2);
    assert_int_equal(kheap_get()->rejected_frees, rejected + 2);
    assert_kheap_clean();
}

/* A stray write into a slab changes nothing the caches decide (the slab
 * table is outside the pool); a slab-table record written by someone else
 * is named by kheap_check, and kfree refuses through the port what the
 * record no longer explains (docs/kcache.md). */
static void test_corruption(void** state)
{
    (void)state;
    init_heap(4);
    struct kcache* kc = kheap_cache();
    kpalloc(1);
    unsigned char* a = kmalloc_small(16);
    assert_ptr_equal(a, pool() + UNIT_BS);
    unsigned char* a2 = kmalloc_small(16);
    assert_ptr_equal(a2, a + 16);
    /* The first 64 bytes of the slab (object 0 and the next three: once the
     * slab's header), overwritten: not seen, not reported, not refused. */
    size_t reports = kheap_hosted_report_count();
    memset(pool() + UNIT_BS, 0xA5, 64);
    assert_kheap_clean();
    kfree(a2);
    unsigned char* b = kmalloc_small(16);
    assert_ptr_equal(b, a2); /* the lowest free slot, as ever */
    assert_int_equal(kheap_hosted_report_count(), reports);
    assert_int_equal(kheap_get()->rejected_frees, 0);
    /* The slab's record names no class: kheap_check names the block, kfree
     * refuses with HEAP_REPORT_FREE_CORRUPT and changes nothing. */
    struct kcache_slab* rec = &kc->slab_table[1];
    uint8_t shape = rec->shape;
    assert_int_equal(shape, 1); /* class 0, preferred geometry */
    rec->shape = (uint8_t)(2 * KCACHE_CLASSES + 1);
    size_t bad = 0;
    assert_int_equal(kheap_check(&bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    kfree(a);
    assert_int_equal(kheap_hosted_report_count(), reports + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT);
    assert_ptr_equal(kheap_hosted_last_report().ptr, a);
    assert_int_equal(kheap_hosted_last_report().block, 1);
    assert_int_equal(kheap_get()->rejected_frees, 1);
    assert_int_equal(kc->corruptions, 1);
    assert_int_equal(rec->inuse, 2);
    /* A wrong live count: only kheap_check sees it. */
    rec->shape = shape;
    rec->inuse = 3;
    assert_int_equal(kheap_check(&bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    rec->inuse = 2; /* put back: sound again */
    assert_kheap_clean();
    kfree(a);
    kfree(b); /* emptied: the spare */
    assert_int_equal(kheap_hosted_report_count(), reports + 1);
    assert_int_equal(kheap_trim(), 1);
    assert_int_equal(kheap_get()->used_blocks, 1);
    assert_kheap_clean();
}

/* The caches' slab table is the port's (the hosted port gives one outside
 * the pool), a record per block, cleared by every kheap_init. */
static void test_slab_table(void** state)
{
    (void)state;
    init_heap(4);
    struct kcache* kc = kheap_cache();
    size_t blocks = kheap_get()->table->total;
    assert_int_equal(blocks, 4);
    uintptr_t t = (uintptr_t)kc->slab_table;
    uintptr_t p = (uintptr_t)pool();
    assert_true(t + kcache_table_bytes(blocks) <= p || t >= p + blocks * UNIT_BS);
    assert_int_equal(t % sizeof(uintptr_t), 0);
    struct kcache_stats st;
    kcache_get_stats(kc, &st);
    assert_int_equal(st.table_bytes, kcache_table_bytes(blocks));
    assert_int_equal(st.table_bytes, blocks * sizeof(struct kcache_slab));
    void* a = kmalloc_small(100);
    assert_non_null(a);
    assert_int_not_equal(kc->slab_table[0].shape, 0);
    init_heap(4); /* a new heap: the slab table starts clear */
    kc = kheap_cache();
    for (size_t b = 0; b < 4; b++) {
        assert_int_equal(kc->slab_table[b].shape, 0);
        assert_int_equal(kc->slab_table[b].bits[0], 0);
    }
    assert_kheap_clean();
#if PEACHOS_KCACHE_POISON
    assert_int_equal(kheap_cache()->flags, KCACHE_FLAG_POISON);
#else
    assert_int_equal(kheap_cache()->flags, 0);
#endif
}

/*
 * A port that gives no slab table: kheap takes it from the top of the pool,
 * which shrinks to the blocks whose records fit beside them, and the caches
 * work as before over the smaller heap. That record is out of every
 * allocation: the last block's whole bytes can be written.
 */
static void test_slab_table_from_pool(void** state)
{
    (void)state;
    size_t reports = kheap_hosted_report_count();
    configure(64, false, false);
    kheap_hosted_slab_table_from_pool(true);
    kheap_init();
    kheap_hosted_slab_table_from_pool(false);
    assert_true(kheap_ready());
    size_t blocks = 64 * UNIT_BS / (UNIT_BS + sizeof(struct kcache_slab));
    assert_true(blocks < 64);
    assert_int_equal(kheap_get()->table->total, blocks);
    struct kcache* kc = kheap_cache();
    assert_ptr_equal(kc->slab_table, pool() + blocks * UNIT_BS);
    assert_true(kcache_table_bytes(blocks) <= (64 - blocks) * UNIT_BS);
    unsigned char* small = kmalloc_small(48);
    assert_non_null(small);
    unsigned char* rest = kmalloc((blocks - 1) * UNIT_BS); /* every other block */
    assert_non_null(rest);
    assert_null(kmalloc(1)); /* the table's blocks are no heap blocks */
    memset(rest, 0xA5, (blocks - 1) * UNIT_BS);
    assert_kheap_clean();
    kfree(rest);
    kfree(small);
    assert_kheap_clean();
    assert_int_equal(kheap_hosted_report_count(), reports);
    init_heap(4); /* back to a port that gives the table */
    assert_ptr_not_equal(kheap_cache()->slab_table, pool() + 4 * UNIT_BS);
}

/* kheap_set_fault: applies now and after every later kheap_init. */
static void test_fault_hook(void** state)
{
    (void)state;
    size_t calls = 0;
    init_heap(4);
    kheap_set_fault(fail_everything, &calls);
    assert_null(kmalloc_small(16));
    assert_null(kmalloc_small(5000));
    assert_null(kpalloc(1));
    assert_int_equal(calls, 3);
    init_heap(4);
    assert_null(kmalloc_small(16));
    assert_int_equal(calls, 4);
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_int_equal(kheap_get()->failed_allocs, 0); /* the heap was never asked */
    kheap_set_fault(NULL, NULL);
    void* p = kmalloc_small(16);
    assert_non_null(p);
    kfree(p);
    assert_kheap_clean();
}

/* The hosted countdown: n internal allocations succeed, then they fail,
 * each returning NULL with nothing lost and nothing leaked. */
static void test_hosted_countdown(void** state)
{
    (void)state;
    init_heap(16);
    kheap_hosted_fail_after(2, KHEAP_HOSTED_FAIL_ALL);
    unsigned char* a = kmalloc_small(16);   /* slab: 1st */
    unsigned char* b = kmalloc_small(5000); /* blocks: 2nd */
    assert_non_null(a);
    assert_non_null(b);
    unsigned char* c = kmalloc_small(16); /* no growth needed: not counted */
    assert_non_null(c);
    assert_null(kmalloc_small(100)); /* growth: fails */
    assert_null(kpalloc(1));
    memset(b, 0x77, 2 * UNIT_BS);
    assert_null(krealloc(b, 6 * UNIT_BS)); /* GROW fails, MOVE fails */
    assert_int_equal(ksize(b), 2 * UNIT_BS);
    assert_int_equal(b[2 * UNIT_BS - 1], 0x77);
    assert_int_equal(kheap_hosted_failures(), 4);
    struct kcache_stats st;
    kcache_get_stats(kheap_cache(), &st);
    assert_int_equal(st.forced_failures, 4);
    /* Only one site: the slab site. */
    kheap_hosted_fail_after(0, 1u << KCACHE_FAULT_SLAB);
    assert_null(kmalloc_small(300));
    unsigned char* d = kmalloc_small(3000);
    assert_non_null(d);
    kfree(d);
    kheap_hosted_fail_after(0, 1u << KCACHE_FAULT_SLAB);
    init_heap(4); /* survives kheap_init */
    assert_null(kmalloc_small(16));
    assert_int_equal(kheap_get()->used_blocks, 0);
    kheap_hosted_fail_reset();
    a = kmalloc_small(16);
    assert_non_null(a);
    kfree(a);
    assert_int_equal(kheap_trim(), 1);
    assert_int_equal(kheap_get()->used_blocks, 0); /* nothing leaked */
    assert_kheap_clean();
}

/* Small objects allocated, written, checked and freed by 4 threads at once,
 * some freeing each other's. A fixed amount of work, no timing. */
enum
{
    THREADS = 4,
    ROUNDS = 20000,
    SLOTS = 64,
};
static unsigned char* shared[THREADS][SLOTS];

struct worker
{
    size_t id;
    size_t errors;
};

static void* worker_main(void* arg)
{
    struct worker* w = (struct worker*)arg;
    uint64_t rng = 1000 + w->id;
    for (size_t r = 0; r < ROUNDS; r++) {
        size_t i = unit_rand(&rng) % SLOTS;
        unsigned char* p = shared[w->id][i];
        if (p != NULL) {
            size_t n = p[0];
            for (size_t j = 1; j < n; j++) {
                w->errors += p[j] != (unsigned char)(w->id + j);
            }
            kfree(p);
        }
        size_t n = 1 + unit_rand(&rng) % 255;
        p = kmalloc_small(n);
        if (p != NULL) {
            p[0] = (unsigned char)n;
            for (size_t j = 1; j < n; j++) {
                p[j] = (unsigned char)(w->id + j);
            }
        }
        shared[w->id][i] = p;
    }
    return NULL;
}

static void test_threads_small(void** state)
{
    (void)state;
    init_heap(256);
    memset(shared, 0, sizeof(shared));
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (size_t t = 0; t < THREADS; t++) {
        workers[t].id = t;
        workers[t].errors = 0;
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &workers[t]), 0);
    }
    for (size_t t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].errors, 0);
    }
    assert_kheap_clean();
    /* Free each other's: thread t's objects by the main thread, crosswise. */
    for (size_t t = 0; t < THREADS; t++) {
        for (size_t i = 0; i < SLOTS; i++) {
            kfree(shared[(t + 1) % THREADS][i]);
            shared[(t + 1) % THREADS][i] = NULL;
        }
    }
    assert_int_equal(kheap_get()->rejected_frees, 0);
    struct kcache_stats st;
    kcache_get_stats(kheap_cache(), &st);
    assert_int_equal(st.objects, 0);
    kheap_trim();
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_kheap_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_ready),
        cmocka_unit_test(test_kmalloc_small_and_large),
        cmocka_unit_test(test_kzalloc),
        cmocka_unit_test(test_kcalloc),
        cmocka_unit_test(test_krealloc),
        cmocka_unit_test(test_bad_frees_reported),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_slab_table),
        cmocka_unit_test(test_slab_table_from_pool),
        cmocka_unit_test(test_fault_hook),
        cmocka_unit_test(test_hosted_countdown),
        cmocka_unit_test(test_threads_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
