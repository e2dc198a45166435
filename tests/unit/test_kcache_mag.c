/*
 * tests/unit/test_kcache_mag.c - the per-CPU magazines
 * (PEACHOS_KCACHE_MAGAZINES=1: kcache_cpu.c, the live bitmap and its
 * checks in kcache_check.c, the CPU hooks of kheap.c). Built only in the
 * magazine builds (mk/unit.mk UNIT_MAG_NAMES and UNIT_NOCPU_NAMES; left out
 * of the plain wildcard): there is nothing to test without magazines.
 *
 * On caches of its own over real memory (kcache_cpu_alloc_locked fills a
 * CPU's magazine as kheap's refill does):
 *   - a refill takes half a magazine, hands one out live, keeps the rest
 *     taken and not live; kcache_cpu_held and the stats count them;
 *     kcache_cpu_flush gives them back;
 *   - with KCACHE_FLAG_POISON every object is handed out one by one,
 *     nothing stays in a magazine;
 *   - kcache_check against each magazine invariant, corrupted in turn and
 *     put back (clean again): a live bit outside slabs (names the block),
 *     inside a slab but not at the start of a taken object (interior,
 *     free slot, past the capacity: names the slab), on an object in a
 *     magazine (names it); a magazine entry outside the pool (SIZE_MAX),
 *     misaligned, in a free block, in a block allocation, interior, past
 *     the capacity, on a free slot, of another class, live, or twice (in
 *     one magazine or two: names the entry's block); a count at the limit,
 *     limits that differ or exceed KCACHE_MAG_SIZE (SIZE_MAX); taken !=
 *     live + held (SIZE_MAX); a busy CPU's magazine is not read, and the
 *     count is then checked as at least.
 * Through kheap on the hosted port: with the port's CPUs (UNIT_MAG) a
 * kfree'd object rests in the thread's magazine; built with
 * PEACHOS_HOSTED_NO_CPUS=1 (UNIT_NOCPU: the port defines no CPU hooks, so
 * kheap.c's weak defaults are linked) there is no CPU and nothing is ever
 * held in a magazine.
 */
#include "unit.h"
#include "unit_kheap.h"

#if !PEACHOS_KCACHE_MAGAZINES
#error "test_kcache_mag.c is built only with PEACHOS_KCACHE_MAGAZINES=1 (mk/unit.mk)"
#endif

#define WORD_BITS (sizeof(uintptr_t) * 8u)
#define BLOCKS 32
#define SIZE 48 /* one-block slabs of 85 objects: a 16-byte tail past the capacity */

struct env
{
    struct unit_heap u;
    unsigned char* pool;
    void* slabs;
    struct kcache kc;
    size_t ci;
    struct kcache_mag* m0; /* CPU 0's magazine of class ci */
    void* live;            /* the object the refill handed out */
    size_t slab;           /* its slab's first block */
};

static struct env* env_make(unsigned flags)
{
    struct env* e = unit_xmalloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    e->pool = aligned_alloc(UNIT_BS, BLOCKS * UNIT_BS);
    assert_non_null(e->pool);
    e->slabs = unit_xmalloc(kcache_table_bytes(BLOCKS));
    unit_heap_make_at(&e->u, BLOCKS, true, (uintptr_t)e->pool);
    assert_int_equal(kcache_init(&e->kc, &e->u.heap, e->slabs, kcache_table_bytes(BLOCKS), flags), 0);
    e->ci = kcache_class_of(SIZE);
    e->m0 = &e->kc.cpus[0].mags[e->ci];
    return e;
}

/* env_make, then a refill of CPU 0's magazine of class ci. */
static struct env* env_filled(void)
{
    struct env* e = env_make(0);
    e->live = kcache_cpu_alloc_locked(&e->kc, 0, e->ci);
    assert_non_null(e->live);
    e->slab = unit_block_of(&e->u, e->live);
    assert_true(e->m0->count > 2);
    return e;
}

static void env_destroy(struct env* e)
{
    unit_heap_destroy(&e->u);
    free(e->pool);
    free(e->slabs);
    free(e);
}

static void assert_clean_(struct env* e, const char* file, int line)
{
    size_t bad = 12345;
    int res = kcache_check(&e->kc, &bad);
    if (res != 0) {
        print_error("%s:%d: kcache_check: %d at block %zu\n", file, line, res, bad);
    }
    assert_int_equal(res, 0);
}
#define assert_clean(e) assert_clean_((e), __FILE__, __LINE__)

/* kcache_check fails and names `block` (SIZE_MAX: a counter or a pointer
 * outside the pool). */
static void assert_corrupt_at_(struct env* e, size_t block, const char* file, int line)
{
    size_t bad = 12345;
    int res = kcache_check(&e->kc, &bad);
    if (res != -ECORRUPT || bad != block) {
        print_error("%s:%d: kcache_check: %d at block %zu, want -ECORRUPT at %zu\n", file, line, res, bad, block);
    }
    assert_int_equal(res, -ECORRUPT);
    assert_int_equal(bad, block);
}
#define assert_corrupt_at(e, block) assert_corrupt_at_((e), (block), __FILE__, __LINE__)

/* Flip the live bit of the 16 bytes at p (anywhere in the pool). */
static void live_flip(struct env* e, const void* p)
{
    uintptr_t unit = ((uintptr_t)p - e->kc.pool) / KCACHE_ALIGN;
    e->kc.live[unit / WORD_BITS] ^= (uintptr_t)1 << (unit % WORD_BITS);
}

static unsigned char* block_ptr(struct env* e, size_t block)
{
    return e->pool + block * UNIT_BS;
}

/* --------------------------------------------------------- the refill */

static void test_refill_and_flush(void** state)
{
    (void)state;
    struct env* e = env_make(0);
    const struct kcache_class* c = &e->kc.classes[e->ci];
    assert_int_equal(e->m0->limit, KCACHE_MAG_SIZE); /* 8 slabs of 85 > 63 */
    assert_int_equal(kcache_cpu_held(&e->kc, e->ci), 0);

    e->live = kcache_cpu_alloc_locked(&e->kc, 0, e->ci);
    assert_non_null(e->live);
    /* Half a magazine taken, the lowest slot handed out, the rest held. */
    assert_ptr_equal(e->live, e->pool + unit_block_of(&e->u, e->live) * UNIT_BS);
    assert_int_equal(c->objects, e->m0->limit / 2);
    assert_int_equal(e->m0->count, e->m0->limit / 2 - 1);
    assert_int_equal(kcache_cpu_held(&e->kc, e->ci), e->m0->limit / 2 - 1);
    assert_int_equal(kcache_cpu_held(&e->kc, kcache_class_of(16)), 0);
    assert_int_equal(kcache_size(&e->kc, e->live), SIZE);
    assert_int_equal(kcache_size(&e->kc, e->m0->objects[0]), 0); /* held: not live, refused as freed */
    struct kcache_stats stats;
    kcache_get_stats(&e->kc, &stats);
    assert_int_equal(stats.objects, 1);
    assert_clean(e);

    /* A magazine that is not empty: the next object from it, no refill. */
    void* next = kcache_cpu_alloc_locked(&e->kc, 0, e->ci);
    assert_ptr_equal(next, (unsigned char*)e->live + SIZE);
    assert_int_equal(e->m0->count, e->m0->limit / 2 - 2);
    assert_int_equal(c->objects, e->m0->limit / 2);
    assert_clean(e);
    kcache_free(&e->kc, next);
    assert_int_equal(c->objects, e->m0->limit / 2 - 1);
    assert_clean(e);

    /* A second CPU: kcache_cpu_held sums the CPUs. */
    void* other = kcache_cpu_alloc_locked(&e->kc, 1, e->ci);
    assert_non_null(other);
    assert_ptr_not_equal(other, e->live);
    assert_int_equal(kcache_cpu_held(&e->kc, e->ci), 2 * (e->m0->limit / 2 - 1) - 1);
    assert_clean(e);

    /* CPU 0's magazines back into the slabs. */
    assert_int_equal(kcache_cpu_flush(&e->kc, 0), e->m0->limit / 2 - 2);
    assert_int_equal(e->m0->count, 0);
    assert_int_equal(kcache_cpu_held(&e->kc, e->ci), e->m0->limit / 2 - 1);
    assert_int_equal(c->objects, e->m0->limit / 2 + 1);
    assert_clean(e);
    kcache_free(&e->kc, e->live);
    kcache_free(&e->kc, other);
    assert_int_equal(kcache_cpu_flush(&e->kc, 1), e->m0->limit / 2 - 1);
    assert_int_equal(c->objects, 0);
    assert_clean(e);
    env_destroy(e);
}

/* With poison, objects are handed out one by one (the poison is checked
 * object by object): the magazine stays empty. */
static void test_poison_unbatched(void** state)
{
    (void)state;
    struct env* e = env_make(KCACHE_FLAG_POISON);
    void* a = kcache_cpu_alloc_locked(&e->kc, 0, e->ci);
    void* b = kcache_cpu_alloc_locked(&e->kc, 0, e->ci);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal((unsigned char*)b, (unsigned char*)a + SIZE); /* the next free slot of the slab */
    assert_int_equal(e->m0->count, 0);
    assert_int_equal(kcache_cpu_held(&e->kc, e->ci), 0);
    assert_int_equal(e->kc.classes[e->ci].objects, 2);
    assert_int_equal(kcache_size(&e->kc, a), SIZE);
    assert_clean(e);
    kcache_free(&e->kc, a);
    kcache_free(&e->kc, b);
    assert_int_equal(e->kc.classes[e->ci].objects, 0);
    assert_int_equal(e->u.reports.count, 0);
    assert_clean(e);
    env_destroy(e);
}

/* ---------------------------------------------------- the live bitmap */

/* A live bit in a block of no slab: before the first slab, between two,
 * after the last, in a block allocation. kcache_check names the block. */
static void test_check_live_outside_slabs(void** state)
{
    (void)state;
    struct env* e = env_make(0);
    unsigned char* blocks = kcache_palloc(&e->kc, UNIT_BS); /* block 0 */
    assert_ptr_equal(blocks, block_ptr(e, 0));
    e->live = kcache_cpu_alloc_locked(&e->kc, 0, e->ci); /* block 1 */
    assert_ptr_equal(e->live, block_ptr(e, 1));
    void* small = kcache_alloc(&e->kc, 16); /* block 2 */
    assert_ptr_equal(small, block_ptr(e, 2));
    assert_clean(e);

    const struct {
        size_t block;
        size_t offset;
    } cases[] = {
        { 0, 0 },                   /* a block allocation, before the first slab */
        { 0, UNIT_BS - KCACHE_ALIGN }, /* its last bit (the last word of the block) */
        { 3, 0 },                   /* free, after the last slab */
        { BLOCKS - 1, 2 * KCACHE_ALIGN },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned char* p = block_ptr(e, cases[k].block) + cases[k].offset;
        live_flip(e, p);
        assert_corrupt_at(e, cases[k].block);
        live_flip(e, p);
        assert_clean(e);
    }
    /* Between two slabs: give block 1's slab back, block 1 is free. */
    kcache_free(&e->kc, e->live);
    assert_int_equal(kcache_cpu_flush(&e->kc, 0), KCACHE_MAG_SIZE / 2 - 1);
    assert_int_equal(kcache_trim(&e->kc), 1);
    assert_clean(e);
    live_flip(e, block_ptr(e, 1) + 5 * KCACHE_ALIGN);
    assert_corrupt_at(e, 1);
    live_flip(e, block_ptr(e, 1) + 5 * KCACHE_ALIGN);
    assert_clean(e);
    env_destroy(e);
}

/* A live bit in a slab but not at the start of a taken object: kcache_check
 * names the slab. On an object in a magazine: names that object's block. */
static void test_check_live_misplaced(void** state)
{
    (void)state;
    struct env* e = env_filled();
    const struct kcache_geometry* g = &e->kc.classes[e->ci].geometry[KCACHE_PREFERRED];
    assert_int_equal(g->blocks, 1);
    assert_int_equal(g->capacity, UNIT_BS / SIZE);
    unsigned char* slab = block_ptr(e, e->slab);
    size_t taken = e->kc.classes[e->ci].objects;
    unsigned char* misplaced[] = {
        (unsigned char*)e->live + KCACHE_ALIGN,   /* inside the live object */
        slab + (taken - 1) * SIZE + KCACHE_ALIGN, /* inside a held object */
        slab + taken * SIZE,                      /* the start of a free slot */
        slab + (size_t)g->capacity * SIZE,        /* the tail past the capacity (a multiple of SIZE) */
    };
    assert_true((size_t)g->capacity * SIZE < UNIT_BS);
    for (size_t k = 0; k < sizeof(misplaced) / sizeof(misplaced[0]); k++) {
        live_flip(e, misplaced[k]);
        assert_corrupt_at(e, e->slab);
        live_flip(e, misplaced[k]);
        assert_clean(e);
    }
    /* The start of a taken object in the magazine: live and held at once. */
    void* held = e->m0->objects[3];
    live_flip(e, held);
    assert_corrupt_at(e, e->slab);
    live_flip(e, held);
    assert_clean(e);
    env_destroy(e);
}

/* --------------------------------------------------------- magazines */

/* Entry i of CPU 0's magazine replaced by p: kcache_check names `block`. */
static void assert_entry_named(struct env* e, size_t i, void* p, size_t block)
{
    void* was = e->m0->objects[i];
    e->m0->objects[i] = p;
    assert_corrupt_at(e, block);
    e->m0->objects[i] = was;
    assert_clean(e);
}

static void test_check_mag_entries(void** state)
{
    (void)state;
    struct env* e = env_filled();
    unsigned char* slab = block_ptr(e, e->slab);
    unsigned char* blocks = kcache_palloc(&e->kc, 2 * UNIT_BS);
    assert_non_null(blocks);
    size_t blocks_at = unit_block_of(&e->u, blocks);
    unsigned char* other_class = kcache_alloc(&e->kc, 16);
    assert_non_null(other_class);
    size_t other_at = unit_block_of(&e->u, other_class);
    assert_int_not_equal(other_at, e->slab);
    size_t free_at = BLOCKS - 1;
    assert_int_equal(e->u.heap.table->entries[free_at], HEAP_BLOCK_TABLE_ENTRY_FREE);
    size_t taken = e->kc.classes[e->ci].objects;
    size_t capacity = e->kc.classes[e->ci].geometry[KCACHE_PREFERRED].capacity;
    assert_clean(e);

    /* Outside the pool, below and past it: no block to name. */
    assert_entry_named(e, 0, e->pool - KCACHE_ALIGN, SIZE_MAX);
    assert_entry_named(e, 1, e->pool + BLOCKS * UNIT_BS, SIZE_MAX);
    /* In the pool: the entry's block. */
    assert_entry_named(e, 2, slab + SIZE + 8, e->slab);                    /* misaligned */
    assert_entry_named(e, 0, block_ptr(e, free_at), free_at);              /* a free block */
    assert_entry_named(e, 1, blocks + UNIT_BS, blocks_at + 1);             /* a block allocation */
    assert_entry_named(e, 2, slab + SIZE + KCACHE_ALIGN, e->slab);         /* inside an object */
    assert_entry_named(e, 0, slab + capacity * SIZE, e->slab);             /* past the capacity */
    assert_entry_named(e, 1, slab + taken * SIZE, e->slab);                /* a free slot */
    assert_entry_named(e, 2, other_class, other_at);                       /* of another class */
    assert_entry_named(e, 0, e->live, e->slab);                            /* live */

    /* An object twice: in one magazine, then in two CPUs' magazines. */
    assert_entry_named(e, 4, e->m0->objects[1], e->slab);
    void* other = kcache_cpu_alloc_locked(&e->kc, 1, e->ci);
    assert_non_null(other);
    struct kcache_mag* m1 = &e->kc.cpus[1].mags[e->ci];
    assert_clean(e);
    void* was = m1->objects[2];
    m1->objects[2] = e->m0->objects[5];
    assert_corrupt_at(e, e->slab);
    m1->objects[2] = was;
    assert_clean(e);
    env_destroy(e);
}

/* A count at the limit, a limit unlike CPU 0's, a limit past
 * KCACHE_MAG_SIZE: SIZE_MAX. */
static void test_check_mag_limits(void** state)
{
    (void)state;
    struct env* e = env_filled();
    uint32_t count = e->m0->count;
    uint32_t limit = e->m0->limit;

    e->m0->count = limit;
    assert_corrupt_at(e, SIZE_MAX);
    e->m0->count = count;
    assert_clean(e);

    e->kc.cpus[PEACHOS_KCACHE_CPUS - 1].mags[e->ci].limit = limit - 1;
    assert_corrupt_at(e, SIZE_MAX);
    e->kc.cpus[PEACHOS_KCACHE_CPUS - 1].mags[e->ci].limit = limit;
    assert_clean(e);

    for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
        e->kc.cpus[cpu].mags[e->ci].limit = KCACHE_MAG_SIZE + 1;
    }
    assert_corrupt_at(e, SIZE_MAX);
    for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
        e->kc.cpus[cpu].mags[e->ci].limit = limit;
    }
    assert_clean(e);
    env_destroy(e);
}

/* Taken = live + held: an object lost from a magazine (taken, neither live
 * nor held), or the live object's bit cleared, is a count wrong: SIZE_MAX. */
static void test_check_mag_count(void** state)
{
    (void)state;
    struct env* e = env_filled();
    e->m0->count--;
    assert_corrupt_at(e, SIZE_MAX);
    e->m0->count++;
    assert_clean(e);

    live_flip(e, e->live);
    assert_corrupt_at(e, SIZE_MAX);
    live_flip(e, e->live);
    assert_clean(e);
    env_destroy(e);
}

static uint32_t busy_cpu0(void)
{
    return 1u << 0;
}

static uint32_t busy_cpu1(void)
{
    return 1u << 1;
}

/* A busy CPU's magazines are not read (they may be changing), and the count
 * is checked as at least: taken - live >= what the quiet CPUs hold. */
static void test_check_busy_cpu(void** state)
{
    (void)state;
    struct env* e = env_filled();
    assert_non_null(kcache_cpu_alloc_locked(&e->kc, 1, e->ci));
    struct kcache_mag* m1 = &e->kc.cpus[1].mags[e->ci];
    uint32_t count = m1->count;
    void* first = m1->objects[0];
    kcache_set_busy(&e->kc, busy_cpu1);
    assert_clean(e);

    /* What CPU 1 holds is not counted: still at least. */
    m1->count = 0;
    assert_clean(e);
    /* Nor read: an entry in a free block, a count past its limit. */
    m1->objects[0] = block_ptr(e, BLOCKS - 1);
    m1->count = m1->limit + 1;
    assert_clean(e);
    /* Quiet again: both are seen. */
    kcache_set_busy(&e->kc, NULL);
    assert_corrupt_at(e, SIZE_MAX);
    m1->count = count;
    assert_corrupt_at(e, BLOCKS - 1);
    m1->objects[0] = first;
    assert_clean(e);
    /* Busy, the quiet CPU 0 still checked. */
    kcache_set_busy(&e->kc, busy_cpu1);
    e->m0->count--;
    assert_clean(e); /* one taken object unaccounted: at least still holds */
    e->m0->count++;
    void* was = e->m0->objects[0];
    e->m0->objects[0] = e->live;
    assert_corrupt_at(e, e->slab);
    e->m0->objects[0] = was;
    assert_clean(e);
    /* CPU 0 busy, CPU 1 quiet: CPU 1's entries are checked for repeats in
     * the quiet magazines only, CPU 0's is not read. */
    kcache_set_busy(&e->kc, busy_cpu0);
    e->m0->objects[0] = m1->objects[0]; /* CPU 0 and CPU 1 share an entry */
    assert_clean(e);
    void* was1 = m1->objects[1];
    m1->objects[1] = m1->objects[0];
    assert_corrupt_at(e, e->slab);
    m1->objects[1] = was1;
    assert_clean(e);
    /* Quiet: the shared entry is seen. */
    kcache_set_busy(&e->kc, NULL);
    assert_corrupt_at(e, e->slab);
    e->m0->objects[0] = was;
    assert_clean(e);
    env_destroy(e);
}

/* ----------------------------------------------- kheap's CPU hooks */

static void kheap_start(void)
{
    struct kheap_hosted_config config = { 64 * UNIT_BS, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_true(kheap_ready());
}

/* With the hosted port's CPUs, a freed small object rests in this thread's
 * magazine; without CPU hooks in the port (kheap.c's weak defaults: no
 * CPU, nothing busy), kmalloc and kfree take the locked path and no
 * magazine ever holds anything. */
static void test_kheap_cpu_hooks(void** state)
{
    (void)state;
    kheap_start();
    size_t ci = kcache_class_of(SIZE);
    struct kcache* kc = kheap_cache();
    uintptr_t section = 12345;
    unsigned cpu = kheap_port_cpu_enter(&section);
    assert_int_equal(section, 0);
    kheap_port_cpu_leave(section);
    assert_int_equal(kheap_port_cpus_busy(), 0); /* no other thread has a CPU */

    void* p = kmalloc(SIZE);
    assert_non_null(p);
    assert_int_equal(ksize(p), SIZE);
    assert_kheap_clean();
#if PEACHOS_HOSTED_NO_CPUS
    assert_int_equal(cpu, KCACHE_NO_CPU);
    assert_int_equal(kcache_cpu_held(kc, ci), 0);
    assert_int_equal(kc->classes[ci].objects, 1);
#else
    assert_true(cpu < PEACHOS_KCACHE_CPUS);
    assert_int_equal(kcache_cpu_held(kc, ci), kc->cpus[cpu].mags[ci].limit / 2 - 1);
#endif
    kfree(p);
    assert_int_equal(ksize(p), 0);
    assert_kheap_clean();
#if PEACHOS_HOSTED_NO_CPUS
    assert_int_equal(kcache_cpu_held(kc, ci), 0);
    assert_int_equal(kc->classes[ci].objects, 0);
#else
    assert_int_equal(kcache_cpu_held(kc, ci), kc->cpus[cpu].mags[ci].limit / 2);
    kheap_cpu_flush(cpu);
    assert_int_equal(kcache_cpu_held(kc, ci), 0);
#endif
    assert_int_equal(kheap_hosted_report_count(), 0);
    assert_kheap_clean();

    /* Before the heap is ready a flush has nothing to give back. */
    struct kheap_hosted_config config = { 64 * UNIT_BS, true, true, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_false(kheap_ready());
    kheap_cpu_flush(0);
    assert_null(kmalloc(SIZE));
    assert_false(kheap_ready());
    kheap_start();
    assert_kheap_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refill_and_flush),
        cmocka_unit_test(test_poison_unbatched),
        cmocka_unit_test(test_check_live_outside_slabs),
        cmocka_unit_test(test_check_live_misplaced),
        cmocka_unit_test(test_check_mag_entries),
        cmocka_unit_test(test_check_mag_limits),
        cmocka_unit_test(test_check_mag_count),
        cmocka_unit_test(test_check_busy_cpu),
        cmocka_unit_test(test_kheap_cpu_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
