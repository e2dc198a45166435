/*
 * tests/unit/test_kcache_overrun.c - "a corrupt slab header costs that slab
 * only" (docs/kcache.md, Quarantine), as a stray write makes it happen.
 *
 * For every small-object class, on the kernel heap of the hosted port: a
 * one-block buffer, then three slabs of the class S1, S2, S3 right above it,
 * each with one free slot, so that the partial list is S3 -> S2 -> S1. The
 * buffer is overrun by every length from 1 to a block + 64 bytes: the write
 * runs into S1's header (check, next, prev, ...), its objects, and past
 * S1's first block (S2's header for one-block slabs). Nothing is restored.
 * Then only ordinary calls: every object of S2 is freed (S2 empties while
 * S1's links are garbage), then a seeded random run of kmalloc_small and
 * kfree of the class, of other classes and of whole blocks.
 *
 * Passes only if no allocation ever overlaps a live one (a shadow map of
 * the pool, 16-byte granules), every object keeps its pattern to its free
 * (or to the end) except the bytes the overrun itself wrote, every refused
 * free and every report concerns a slab whose header the overrun reached
 * (HEAP_REPORT_FREE_CORRUPT, HEAP_REPORT_CACHE_QUARANTINE; nothing else is
 * refused), and kheap_check is clean or names such a slab.
 *
 * About 166,000 cases; under valgrind (UNIT_VALGRIND), ASan and at -O0 (the
 * coverage build) every 127th length and the lengths that reach the header
 * words and the next block are run.
 */
#include "unit.h"
#include "unit_kheap.h"

#define OV_BLOCKS 64                               /* heap size of each case */
#define OV_GRANULE 16                              /* shadow map resolution: KCACHE_ALIGN */
#define OV_GRANULES (OV_BLOCKS * UNIT_BS / OV_GRANULE)
#define OV_MAX_LIVE 4096
#define OV_RANDOM_OPS 100

/* The calls a case makes: the kernel heap's, or its engine's on a heap of
 * the test's own (the same code without the lock and a fresh mapping per
 * case, whose page faults would cost most of the run). */
struct ov_api
{
    void* (*alloc)(size_t size);
    void (*free)(void* ptr);
    size_t (*size)(const void* ptr);
    int (*check)(size_t* bad_block);
};

struct ov_object
{
    unsigned char* p;
    size_t n;       /* bytes owned: ksize */
    uint64_t seed;  /* pattern */
    bool clobbered; /* live when the overrun wrote into it */
    bool stuck;     /* its free was refused (a corrupt slab): live for ever */
};

struct ov_case
{
    const struct ov_api* api;
    struct heap* heap;
    unsigned char* pool;
    const unsigned char* hit; /* the overrun: [hit, hit + len) */
    size_t len;
    struct ov_object live[OV_MAX_LIVE];
    size_t nlive;
    /* Owner (index + 1 in live[]) of each granule, valid in generation `gen`. */
    uint32_t shadow_gen[OV_GRANULES];
    uint16_t shadow[OV_GRANULES];
    uint32_t gen;
    size_t reports;
    bool bad_report; /* a report that names no overrun slab */
    struct heap_report first_bad;
    uint64_t rng;
};

static struct ov_case ov;

static uint64_t ov_next(void)
{
    ov.rng ^= ov.rng << 13;
    ov.rng ^= ov.rng >> 7;
    ov.rng ^= ov.rng << 17;
    return ov.rng;
}

static size_t ov_below(size_t n)
{
    return (size_t)(ov_next() % n);
}

/* The pattern: word i of an object with `seed`. */
static uint64_t ov_word(uint64_t seed, size_t i)
{
    return (seed + i) * 0x9E3779B97F4A7C15ull;
}

static bool ov_in_hit(const unsigned char* p)
{
    return p >= ov.hit && p < ov.hit + ov.len;
}

/* Did the overrun reach the header of the slab starting at `slab`? */
static bool ov_header_hit(const void* slab)
{
    return ov_in_hit((const unsigned char*)slab) && ((const unsigned char*)slab - ov.pool) % UNIT_BS == 0;
}

/* First block of the allocation holding p, from the table. */
static const unsigned char* ov_allocation_start(const void* p)
{
    const HEAP_BLOCK_TABLE_ENTRY* t = ov.heap->table->entries;
    size_t b = (size_t)((const unsigned char*)p - ov.pool) / UNIT_BS;
    while (b > 0 && !(t[b] & HEAP_BLOCK_IS_FIRST)) {
        b--;
    }
    return ov.pool + b * UNIT_BS;
}

/* Every report must concern a slab whose header the overrun reached: a
 * quarantine of it, or a refused free into it. Checked after each call (a
 * failure inside the hook would leave the kernel heap's lock taken). */
static void ov_record(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    ov.reports++;
    bool fine = report->kind == HEAP_REPORT_CACHE_QUARANTINE
                    ? ov_header_hit(report->ptr)
                    : report->kind == HEAP_REPORT_FREE_CORRUPT && ov_header_hit(ov_allocation_start(report->ptr));
    if (!fine && !ov.bad_report) {
        ov.bad_report = true;
        ov.first_bad = *report;
    }
}

static void ov_assert_reports_fine(void)
{
    if (ov.bad_report) {
        print_error("report kind %d ptr %p block %zu; overrun of %zu at %p\n", (int)ov.first_bad.kind,
                    ov.first_bad.ptr, ov.first_bad.block, ov.len, (const void*)ov.hit);
        fail();
    }
}

static void ov_shadow(size_t index, uint16_t owner)
{
    const struct ov_object* o = &ov.live[index];
    size_t g0 = (size_t)(o->p - ov.pool) / OV_GRANULE;
    for (size_t g = g0; g < g0 + o->n / OV_GRANULE; g++) {
        ov.shadow[g] = owner;
        ov.shadow_gen[g] = ov.gen;
    }
}

/* An allocation: NULL only when full; else overlapping nothing live,
 * filled with its pattern, tracked. */
static void ov_alloc(size_t size)
{
    unsigned char* p = ov.api->alloc(size);
    ov_assert_reports_fine();
    if (p == NULL) {
        return; /* a small heap fills up; nothing to check */
    }
    size_t n = ov.api->size(p);
    assert_true(n >= size && n % OV_GRANULE == 0);
    assert_true(p >= ov.pool && p + n <= ov.pool + OV_BLOCKS * UNIT_BS);
    assert_int_equal((uintptr_t)p % OV_GRANULE, 0);
    assert_true(ov.nlive < OV_MAX_LIVE);
    size_t g0 = (size_t)(p - ov.pool) / OV_GRANULE;
    for (size_t g = g0; g < g0 + n / OV_GRANULE; g++) {
        if (ov.shadow_gen[g] == ov.gen && ov.shadow[g] != 0) {
            const struct ov_object* o = &ov.live[ov.shadow[g] - 1];
            print_error("alloc(%zu) = %p (+%zu) overlaps the live %p (+%zu); overrun of %zu\n", size, (void*)p, n,
                        (void*)o->p, o->n, ov.len);
            fail();
        }
    }
    struct ov_object* o = &ov.live[ov.nlive];
    o->p = p;
    o->n = n;
    o->seed = ov_next();
    o->clobbered = false;
    o->stuck = false;
    for (size_t i = 0; i < n / 8; i++) {
        uint64_t w = ov_word(o->seed, i);
        memcpy(p + 8 * i, &w, 8);
    }
    ov.nlive++;
    ov_shadow(ov.nlive - 1, (uint16_t)ov.nlive);
}

/* The object's pattern, except where the overrun wrote while it was live. */
static void ov_verify(const struct ov_object* o)
{
    for (size_t i = 0; i < o->n / 8; i++) {
        uint64_t want = ov_word(o->seed, i);
        if (memcmp(o->p + 8 * i, &want, 8) == 0) {
            continue;
        }
        for (size_t j = 0; j < 8; j++) {
            const unsigned char* b = o->p + 8 * i + j;
            if (*b != (unsigned char)(want >> (8 * j)) && !(o->clobbered && ov_in_hit(b))) {
                print_error("%p (+%zu): byte %zu changed; overrun of %zu at %p\n", (void*)o->p, o->n, 8 * i + j,
                            ov.len, (const void*)ov.hit);
                fail();
            }
        }
    }
}

/* Verify and free live[index]. Refused only inside a slab whose header the
 * overrun reached (ov_record checks the report): the object stays live. */
static void ov_free(size_t index)
{
    struct ov_object* o = &ov.live[index];
    if (o->stuck) {
        return;
    }
    ov_verify(o);
    size_t rejected = ov.heap->rejected_frees;
    size_t reports = ov.reports;
    ov.api->free(o->p);
    ov_assert_reports_fine();
    if (ov.heap->rejected_frees != rejected) {
        assert_int_equal(ov.heap->rejected_frees, rejected + 1);
        assert_int_equal(ov.reports, reports + 1);
        o->stuck = true;
        return;
    }
    ov_shadow(index, 0);
    ov.nlive--;
    if (index != ov.nlive) {
        ov.live[index] = ov.live[ov.nlive];
        ov_shadow(index, (uint16_t)(index + 1));
    }
}

/* The engine on a heap of the test's own, over one pool for every case. */
static struct unit_heap ov_heap;
static struct kcache ov_kc;
static unsigned char* ov_pool;

static void* ov_kc_alloc(size_t size)
{
    return kcache_alloc(&ov_kc, size);
}

static void ov_kc_free(void* ptr)
{
    kcache_free(&ov_kc, ptr);
}

static size_t ov_kc_size(const void* ptr)
{
    return kcache_size(&ov_kc, ptr);
}

static int ov_kc_check(size_t* bad_block)
{
    return kcache_check(&ov_kc, bad_block);
}

static const struct ov_api ov_engine = { ov_kc_alloc, ov_kc_free, ov_kc_size, ov_kc_check };
static const struct ov_api ov_kernel_heap = { kmalloc_small, kfree, ksize, kheap_check };

/* A fresh heap of OV_BLOCKS blocks with its caches, for api. */
static struct kcache* ov_heap_make(const struct ov_api* api)
{
    if (api == &ov_kernel_heap) {
        struct kheap_hosted_config config = { OV_BLOCKS * UNIT_BS, false, false, true };
        kheap_hosted_configure(&config);
        kheap_init();
        assert_true(kheap_ready());
        ov.heap = kheap_get();
        ov.pool = pool();
        heap_set_report(ov.heap, ov_record, NULL);
        return kheap_cache();
    }
    if (ov_pool == NULL) {
        ov_pool = aligned_alloc(UNIT_BS, OV_BLOCKS * UNIT_BS);
        assert_non_null(ov_pool);
    }
    unit_heap_destroy(&ov_heap);
    unit_heap_make_at(&ov_heap, OV_BLOCKS, false, (uintptr_t)ov_pool);
    heap_set_report(&ov_heap.heap, ov_record, NULL);
    assert_int_equal(kcache_init(&ov_kc, &ov_heap.heap, 0x0BE4u, 0), 0);
    ov.heap = &ov_heap.heap;
    ov.pool = ov_pool;
    return &ov_kc;
}

/* Sizes of class ci: (previous class size, its size]. */
static size_t ov_size_in(const struct kcache* kc, size_t ci)
{
    size_t low = ci == 0 ? 0 : kc->classes[ci - 1].size;
    return low + 1 + ov_below(kc->classes[ci].size - low);
}

static void ov_case_run(const struct ov_api* api, size_t ci, size_t len, uint64_t seed)
{
    ov.api = api;
    struct kcache* kc = ov_heap_make(api);
    ov.gen++;
    ov.nlive = 0;
    ov.reports = 0;
    ov.bad_report = false;
    ov.hit = NULL;
    ov.len = 0;
    ov.rng = seed;

    /* The buffer, then S1, S2, S3 of class ci, each with one free slot. */
    ov_alloc(UNIT_BS);
    assert_ptr_equal(ov.live[0].p, ov.pool);
    const struct kcache_class* c = &kc->classes[ci];
    size_t cap = c->geometry[KCACHE_PREFERRED].capacity;
    size_t nb = c->geometry[KCACHE_PREFERRED].blocks;
    for (size_t i = 0; i < 3 * cap; i++) {
        ov_alloc(c->size);
        assert_int_equal(ov.nlive, i + 2);
    }
    unsigned char* s1 = ov.pool + UNIT_BS;
    assert_ptr_equal(ov.live[3 * cap].p, s1 + 2 * nb * UNIT_BS + c->geometry[KCACHE_PREFERRED].offset +
                                             (cap - 1) * c->size);
    for (size_t k = 0; k < 3; k++) {
        ov_free(1 + k * cap + ov_below(cap - 2)); /* swaps the last object (in S3) in: not reached again */
    }
    assert_ptr_equal(c->partial, s1 + 2 * nb * UNIT_BS);
    assert_int_equal(c->partial_slabs, 3);

    /* The overrun: len bytes past the buffer's end, nothing restored. */
    ov.hit = s1;
    ov.len = len;
    for (size_t i = 0; i < len; i++) {
        s1[i] = (unsigned char)(ov_next() | 1u);
    }
    for (size_t i = 0; i < ov.nlive; i++) {
        ov.live[i].clobbered = ov.live[i].p < s1 + len && ov.live[i].p + ov.live[i].n > s1;
    }

    /* S2 empties, with ordinary frees, while S1's links are garbage. */
    const unsigned char* s2 = s1 + nb * UNIT_BS;
    for (size_t i = ov.nlive; i-- > 0;) {
        if (ov.live[i].p >= s2 && ov.live[i].p < s2 + nb * UNIT_BS) {
            ov_free(i);
        }
    }
    /* Then a random run: the class, any class, whole blocks, frees. */
    for (size_t op = 0; op < OV_RANDOM_OPS; op++) {
        size_t r = ov_below(100);
        if (r < 40) {
            ov_alloc(ov_size_in(kc, ci));
        } else if (r < 52) {
            ov_alloc(1 + ov_below(KCACHE_MAX_SIZE));
        } else if (r < 57) {
            ov_alloc(KCACHE_MAX_SIZE + 1 + ov_below(UNIT_BS - KCACHE_MAX_SIZE)); /* one block */
        } else if (ov.nlive > 0) {
            ov_free(ov_below(ov.nlive));
        }
    }

    /* Everything live is intact; the checker names nothing else. */
    for (size_t i = 0; i < ov.nlive; i++) {
        ov_verify(&ov.live[i]);
    }
    size_t bad = SIZE_MAX;
    if (api->check(&bad) != 0) {
        assert_true(bad < OV_BLOCKS);
        assert_true(ov_header_hit(ov.pool + bad * UNIT_BS));
    }
}

/* Under valgrind (UNIT_VALGRIND), ASan (5 times slower) and in unoptimised
 * builds (the coverage build: -O0 with atomic counters, some 50 times
 * slower), a sample. */
static bool ov_sample(void)
{
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
    return getenv("UNIT_VALGRIND") != NULL;
#else
    return true;
#endif
}

/* Every class, every length from 1 to a block + 64 (under valgrind: the
 * lengths that end in each header word, every 127th, and the last 72). */
static void test_overrun_every_length(void** state)
{
    size_t ci = *(const size_t*)*state;
    bool sample = ov_sample();
    for (size_t len = 1; len <= UNIT_BS + 64; len++) {
        if (!sample || len % 127 == 0 || len <= 8 * sizeof(uintptr_t) || len > UNIT_BS - 8) {
            ov_case_run(&ov_engine, ci, len, 0x9E3779B97F4A7C15ull ^ (ci << 20) ^ len);
        }
    }
    unit_heap_destroy(&ov_heap);
}

/* The same through the kernel heap (kmalloc_small, kfree, ksize,
 * kheap_check): each class with the lengths that reach each header word and
 * those that cross into the next block (a case maps a fresh heap). */
static void test_overrun_kernel_heap(void** state)
{
    (void)state;
    kheap_hosted_set_secret(true, 0x0BE4u);
    size_t words = ov_sample() ? 2 : 6;
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        for (size_t len = 1; len <= words * sizeof(uintptr_t); len++) {
            ov_case_run(&ov_kernel_heap, ci, len, 0x5EEDull ^ (ci << 20) ^ len);
        }
        ov_case_run(&ov_kernel_heap, ci, UNIT_BS + 8 * ci % 64 + 1, 0x5EEDull ^ ci);
    }
    kheap_hosted_set_secret(false, 0);
}

static size_t ov_classes[KCACHE_CLASSES];

int main(void)
{
    struct CMUnitTest tests[KCACHE_CLASSES + 1];
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        ov_classes[ci] = ci;
        struct CMUnitTest t = cmocka_unit_test_prestate(test_overrun_every_length, &ov_classes[ci]);
        tests[ci] = t;
    }
    struct CMUnitTest k = cmocka_unit_test(test_overrun_kernel_heap);
    tests[KCACHE_CLASSES] = k;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(ov_pool);
    return failed;
}
