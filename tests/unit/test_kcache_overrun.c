/*
 * tests/unit/test_kcache_overrun.c - "no byte of the pool is allocator
 * state" (kcache.h, docs/kcache.md), as a stray write makes it matter.
 *
 * For every small-object class, on a heap with its caches: a one-block
 * buffer, then three slabs of the class S1, S2, S3 right above it, each
 * with one free slot, so that the partial list is S3 -> S2 -> S1. The
 * buffer is overrun by every length from 1 to a block + 64 bytes: the write
 * runs over S1's first objects (a slab starts with its object 0), its free
 * slot, and past S1's first block (into S2 for one-block slabs). Nothing is
 * restored. Then only ordinary calls: every object of S2 is freed (S2
 * becomes the spare), then a seeded random run of kmalloc_small and kfree
 * of the class, of other classes and of whole blocks.
 *
 * The slab table and the block table are outside the pool, so the overrun
 * must change nothing the allocator decides: each case is compared with a
 * reference run of the same seed without the overrun (a reference per
 * class and seed, OV_SEEDS seeds). A case passes only if:
 *   - the overrun leaves the block table, the slab table and struct kcache
 *     byte for byte as they were;
 *   - every allocation returns exactly what it returned in the reference
 *     (the same offset in the pool, or NULL at the same step), overlapping
 *     no live allocation (a shadow map of the pool, 16-byte granules);
 *   - no free is refused and nothing is reported, ever;
 *   - no byte of the pool changes but those the test wrote: the pool is
 *     compared with an image of every pattern and overrun byte written
 *     (each object at its free, the whole pool at the end);
 *   - at the end the checker (kcache_check, kheap_check) is clean, and the
 *     block table, the slab table, the classes and the counters equal the
 *     reference's.
 *
 * About 166,000 cases; under valgrind (UNIT_VALGRIND), ASan and at -O0 (the
 * coverage build) every 127th length, the first 64 and the last 72 are run.
 */
#include "unit.h"
#include "unit_kheap.h"

#define OV_BLOCKS 64                               /* heap size of each case */
#define OV_POOL_BYTES (OV_BLOCKS * UNIT_BS)
#define OV_GRANULE 16                              /* shadow map resolution: KCACHE_ALIGN */
#define OV_GRANULES (OV_POOL_BYTES / OV_GRANULE)
#define OV_MAX_LIVE 4096
#define OV_RANDOM_OPS 100
#define OV_MAX_TRACE (3 * UNIT_BS / KCACHE_ALIGN + OV_RANDOM_OPS + 8) /* allocations of a case */

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
    size_t n;      /* bytes owned: ksize */
    uint64_t seed; /* pattern */
};

/* Everything the allocator decides from, and its counters: after a case,
 * the same with and without the overrun. Block numbers only, no address,
 * so that two mappings of the kernel heap compare equal. */
struct ov_state
{
    HEAP_BLOCK_TABLE_ENTRY entries[OV_BLOCKS];
    unsigned char slab_table[OV_BLOCKS * sizeof(struct kcache_slab)];
    struct kcache_class classes[KCACHE_CLASSES];
    size_t counters[9];
};

struct ov_case
{
    const struct ov_api* api;
    struct kcache* kc;
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
    struct heap_report first_report;
    uint64_t rng;  /* the operations */
    uint64_t orng; /* the overrun's bytes (not drawn in the reference) */
    bool reference;     /* this run records *ref, else it compares with it */
    struct ov_ref* ref;
    size_t ntrace;      /* allocations so far */
};

/* A reference run: each allocation's offset in the pool (SIZE_MAX: NULL),
 * and the state at the end. */
struct ov_ref
{
    size_t trace[OV_MAX_TRACE];
    size_t ntrace;
    struct ov_state state;
};

static struct ov_case ov;

/* What the pool must hold: every byte the test wrote, where it wrote it
 * (patterns and the overrun); the allocator writes none (no poison). */
static _Alignas(16) unsigned char ov_image[OV_POOL_BYTES];

static uint64_t ov_xorshift(uint64_t* s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t ov_next(void)
{
    return ov_xorshift(&ov.rng);
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

static size_t ov_offset(const void* p)
{
    return (size_t)((const unsigned char*)p - ov.pool);
}

/* Nothing may be reported: the overrun changed no allocator state, so no
 * free is refused and nothing is found corrupt. Checked after each call (a
 * failure inside the hook would leave the kernel heap's lock taken). */
static void ov_record(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    if (ov.reports++ == 0) {
        ov.first_report = *report;
    }
}

static void ov_assert_no_report(void)
{
    if (ov.reports != 0) {
        print_error("%zu reports, the first kind %d ptr %p block %zu; overrun of %zu at %p\n", ov.reports,
                    (int)ov.first_report.kind, ov.first_report.ptr, ov.first_report.block, ov.len,
                    (const void*)ov.hit);
        fail();
    }
}

/* The pool's bytes [off, off + n) are the image's (off and n multiples of
 * 8; word loads: the library's memcmp, linked here, goes byte by byte). */
static void ov_assert_image(size_t off, size_t n, const char* what)
{
    const uint64_t* a = (const uint64_t*)(ov.pool + off);
    const uint64_t* b = (const uint64_t*)(ov_image + off);
    uint64_t diff = 0;
    for (size_t i = 0; i < n / 8; i++) {
        diff |= a[i] ^ b[i];
    }
    if (diff == 0) {
        return;
    }
    size_t i = 0;
    while (ov.pool[off + i] == ov_image[off + i]) {
        i++;
    }
    print_error("%s: pool byte %zu is %02X, the test wrote %02X; overrun of %zu at %p (%s run)\n", what, off + i,
                ov.pool[off + i], ov_image[off + i], ov.len, (const void*)ov.hit,
                ov.reference ? "reference" : "overrun");
    fail();
}

static void ov_shadow(size_t index, uint16_t owner)
{
    const struct ov_object* o = &ov.live[index];
    size_t g0 = ov_offset(o->p) / OV_GRANULE;
    for (size_t g = g0; g < g0 + o->n / OV_GRANULE; g++) {
        ov.shadow[g] = owner;
        ov.shadow_gen[g] = ov.gen;
    }
}

/* An allocation: what the reference got; overlapping nothing live, filled
 * with its pattern (pool and image), tracked. */
static void ov_alloc(size_t size)
{
    unsigned char* p = ov.api->alloc(size);
    ov_assert_no_report();
    size_t off = p == NULL ? SIZE_MAX : ov_offset(p);
    assert_true(ov.ntrace < OV_MAX_TRACE);
    if (ov.reference) {
        ov.ref->trace[ov.ntrace] = off;
    } else if (ov.ref->trace[ov.ntrace] != off) {
        print_error("allocation %zu (size %zu) at offset %zd, without the overrun %zd; overrun of %zu at %p\n",
                    ov.ntrace, size, (ssize_t)off, (ssize_t)ov.ref->trace[ov.ntrace], ov.len, (const void*)ov.hit);
        fail();
    }
    ov.ntrace++;
    if (p == NULL) {
        return; /* a small heap fills up: the reference did too */
    }
    size_t n = ov.api->size(p);
    assert_true(n >= size && n % OV_GRANULE == 0);
    assert_true(p >= ov.pool && off + n <= OV_POOL_BYTES);
    assert_int_equal((uintptr_t)p % OV_GRANULE, 0);
    assert_true(ov.nlive < OV_MAX_LIVE);
    size_t g0 = off / OV_GRANULE;
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
    for (size_t i = 0; i < n / 8; i++) {
        uint64_t w = ov_word(o->seed, i);
        memcpy(p + 8 * i, &w, 8);
        memcpy(ov_image + off + 8 * i, &w, 8);
    }
    ov.nlive++;
    ov_shadow(ov.nlive - 1, (uint16_t)ov.nlive);
}

/* Index in live[] of the object at p. */
static size_t ov_find(const unsigned char* p)
{
    for (size_t i = 0; i < ov.nlive; i++) {
        if (ov.live[i].p == p) {
            return i;
        }
    }
    fail_msg("no live object at %p", (const void*)p);
    return SIZE_MAX;
}

/* Verify (against the image: the pattern but for what the overrun wrote)
 * and free live[index]. Never refused, never reported. */
static void ov_free(size_t index)
{
    struct ov_object* o = &ov.live[index];
    ov_assert_image(ov_offset(o->p), o->n, "object at its free");
    size_t rejected = ov.heap->rejected_frees;
    ov.api->free(o->p);
    ov_assert_no_report();
    assert_int_equal(ov.heap->rejected_frees, rejected);
    ov_shadow(index, 0);
    ov.nlive--;
    if (index != ov.nlive) {
        ov.live[index] = ov.live[ov.nlive];
        ov_shadow(index, (uint16_t)(index + 1));
    }
}

static void ov_state_take(struct ov_state* s)
{
    const struct kcache* kc = ov.kc;
    const struct heap* heap = ov.heap;
    memset(s, 0, sizeof(*s));
    assert_int_equal(heap->table->total, OV_BLOCKS);
    assert_int_equal(kc->blocks, OV_BLOCKS);
    memcpy(s->entries, heap->table->entries, OV_BLOCKS);
    memcpy(s->slab_table, kc->slab_table, sizeof(s->slab_table));
    memcpy(s->classes, kc->classes, sizeof(s->classes));
    size_t counters[] = { kc->slabs, kc->slab_blocks, kc->corruptions, kc->use_after_free, kc->forced_failures,
                          heap->used_blocks, heap->live_allocations, heap->rejected_frees, heap->failed_allocs };
    _Static_assert(sizeof(counters) == sizeof(s->counters), "every counter");
    memcpy(s->counters, counters, sizeof(counters));
}

/* The engine on a heap of the test's own, over one pool for every case. */
static struct unit_heap ov_heap;
static struct kcache ov_kc;
static unsigned char* ov_pool;
static struct kcache_slab* ov_slab_table;

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

/* A fresh heap of OV_BLOCKS blocks with its caches, for api; the image is
 * the pool as it is (the allocator writes none of it). */
static void ov_heap_make(const struct ov_api* api)
{
    if (api == &ov_kernel_heap) {
        struct kheap_hosted_config config = { OV_POOL_BYTES, false, false, true };
        kheap_hosted_configure(&config);
        kheap_init();
        assert_true(kheap_ready());
        ov.heap = kheap_get();
        ov.pool = pool();
        ov.kc = kheap_cache();
        heap_set_report(ov.heap, ov_record, NULL);
        memcpy(ov_image, ov.pool, OV_POOL_BYTES); /* a fresh mapping each time */
    } else {
        if (ov_pool == NULL) {
            ov_pool = aligned_alloc(UNIT_BS, OV_POOL_BYTES);
            assert_non_null(ov_pool);
            memset(ov_pool, 0, OV_POOL_BYTES);
            memset(ov_image, 0, OV_POOL_BYTES); /* from now on the previous case leaves them equal */
            ov_slab_table = unit_xmalloc(kcache_table_bytes(OV_BLOCKS));
        }
        unit_heap_destroy(&ov_heap);
        unit_heap_make_at(&ov_heap, OV_BLOCKS, false, (uintptr_t)ov_pool);
        heap_set_report(&ov_heap.heap, ov_record, NULL);
        assert_int_equal(kcache_init(&ov_kc, &ov_heap.heap, ov_slab_table, kcache_table_bytes(OV_BLOCKS), 0), 0);
        ov.heap = &ov_heap.heap;
        ov.pool = ov_pool;
        ov.kc = &ov_kc;
    }
    assert_int_equal(ov.heap->table->total, OV_BLOCKS);
    assert_int_equal(ov.kc->flags, 0); /* with poison an overrun of a free object is reported: not this test */
    /* The slab table shares no byte with the pool. */
    uintptr_t t = (uintptr_t)ov.kc->slab_table;
    assert_true(t + kcache_table_bytes(OV_BLOCKS) <= (uintptr_t)ov.pool || t >= (uintptr_t)ov.pool + OV_POOL_BYTES);
}

/* Sizes of class ci: (previous class size, its size]. */
static size_t ov_size_in(const struct kcache* kc, size_t ci)
{
    size_t low = ci == 0 ? 0 : kc->classes[ci - 1].size;
    return low + 1 + ov_below(kc->classes[ci].size - low);
}

/* One run of a case: len 0 is the reference, recorded in *ref; else the
 * run must do what *ref did. */
static void ov_case_run(const struct ov_api* api, size_t ci, size_t len, uint64_t seed, struct ov_ref* ref)
{
    ov.api = api;
    ov_heap_make(api);
    struct kcache* kc = ov.kc;
    ov.gen++;
    ov.nlive = 0;
    ov.reports = 0;
    ov.hit = NULL;
    ov.len = 0;
    ov.rng = seed;
    ov.orng = seed * 0xD1B54A32D192ED03ull + 1;
    ov.reference = len == 0;
    ov.ref = ref;
    ov.ntrace = 0;

    /* The buffer, then S1, S2, S3 of class ci: object j of slab k at
     * s1 + k * nb blocks + j * size, the slab's first byte its object 0. */
    ov_alloc(UNIT_BS);
    assert_ptr_equal(ov.live[0].p, ov.pool);
    const struct kcache_class* c = &kc->classes[ci];
    size_t cap = c->geometry[KCACHE_PREFERRED].capacity;
    size_t nb = c->geometry[KCACHE_PREFERRED].blocks;
    assert_int_equal(cap, nb * UNIT_BS / c->size);
    unsigned char* s1 = ov.pool + UNIT_BS;
    for (size_t i = 0; i < 3 * cap; i++) {
        ov_alloc(c->size);
        assert_int_equal(ov.nlive, i + 2);
        assert_ptr_equal(ov.live[i + 1].p, s1 + i / cap * nb * UNIT_BS + i % cap * c->size);
    }
    for (size_t k = 0; k < 3; k++) {
        ov_free(ov_find(s1 + k * nb * UNIT_BS + ov_below(cap) * c->size));
    }
    /* The partial list S3 -> S2 -> S1, in the slab table. */
    uint32_t b1 = 1;
    uint32_t b2 = (uint32_t)(1 + nb);
    uint32_t b3 = (uint32_t)(1 + 2 * nb);
    assert_int_equal(c->partial, b3);
    assert_int_equal(c->partial_slabs, 3);
    assert_int_equal(kc->slab_table[b3].next, b2);
    assert_int_equal(kc->slab_table[b2].next, b1);
    assert_int_equal(kc->slab_table[b1].next, KCACHE_NONE);
    assert_int_equal(kc->slab_table[b1].prev, b2);
    assert_int_equal(kc->slab_table[b1].inuse, cap - 1);
    assert_int_equal(kc->slab_table[b1].shape, (ci << 1 | KCACHE_PREFERRED) + 1);

    /* The overrun: len bytes past the buffer's end, nothing restored. It
     * changes no allocator state: not a byte of either table or of *kc. */
    if (len != 0) {
        static struct ov_state before;
        static struct kcache kc_before;
        ov_state_take(&before);
        kc_before = *kc;
        ov.hit = s1;
        ov.len = len;
        for (size_t i = 0; i < len; i++) {
            s1[i] = (unsigned char)(ov_xorshift(&ov.orng) | 1u);
            ov_image[UNIT_BS + i] = s1[i];
        }
        static struct ov_state after;
        ov_state_take(&after);
        assert_memory_equal(&before, &after, sizeof(before));
        assert_memory_equal(&kc_before, kc, sizeof(kc_before));
    }

    /* S2 empties (the spare), with ordinary frees. */
    const unsigned char* s2 = s1 + nb * UNIT_BS;
    for (size_t i = ov.nlive; i-- > 0;) {
        if (ov.live[i].p >= s2 && ov.live[i].p < s2 + nb * UNIT_BS) {
            ov_free(i);
        }
    }
    assert_int_equal(c->spare, b2);
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

    /* No byte changed but those the test wrote; the checker is clean; and
     * the allocator ends where the reference ended. */
    ov_assert_image(0, OV_POOL_BYTES, "the pool at the end");
    size_t bad = 12345;
    int res = api->check(&bad);
    if (res != 0) {
        print_error("check: %d at block %zu; overrun of %zu\n", res, bad, len);
    }
    assert_int_equal(res, 0);
    ov_assert_no_report();
    if (ov.reference) {
        ref->ntrace = ov.ntrace;
        ov_state_take(&ref->state);
    } else {
        static struct ov_state now;
        ov_state_take(&now);
        assert_int_equal(ov.ntrace, ref->ntrace);
        assert_memory_equal(&now, &ref->state, sizeof(now));
    }
}

/* The references of the seeds of a class (the seed of a length is one of
 * OV_SEEDS: a reference per seed, not per length). */
#define OV_SEEDS 32
static struct ov_ref ov_refs[OV_SEEDS];

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

/* Every class, every length from 1 to a block + 64 (sampled: every 127th,
 * the first 64, the ends of the first object, the last 72). */
static void test_overrun_every_length(void** state)
{
    size_t ci = *(const size_t*)*state;
    bool sample = ov_sample();
    for (size_t k = 0; k < OV_SEEDS; k++) {
        ov_case_run(&ov_engine, ci, 0, 0x9E3779B97F4A7C15ull ^ (ci << 20) ^ k, &ov_refs[k]);
    }
    size_t size = ov_kc.classes[ci].size;
    for (size_t len = 1; len <= UNIT_BS + 64; len++) {
        bool edge = len <= 64 || len > UNIT_BS - 8 || len % 127 == 0 || len == size || len == size + 1;
        if (!sample || edge) {
            size_t k = len % OV_SEEDS;
            ov_case_run(&ov_engine, ci, len, 0x9E3779B97F4A7C15ull ^ (ci << 20) ^ k, &ov_refs[k]);
        }
    }
    unit_heap_destroy(&ov_heap);
}

/* The same through the kernel heap (kmalloc_small, kfree, ksize,
 * kheap_check): each class with a few lengths, into the first object, to
 * its end and one past, to the end of the block and across it (a case maps
 * a fresh heap, twice). */
static void test_overrun_kernel_heap(void** state)
{
    (void)state;
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        size_t size = kheap_cache() != NULL ? kheap_cache()->classes[ci].size : 16;
        size_t lens[] = { 1, 7, size, size + 1, UNIT_BS - 1, UNIT_BS, UNIT_BS + 1 + 8 * ci % 64 };
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            if (!ov_sample() || k == 0 || k == 3 || k == 6) {
                uint64_t seed = 0x5EEDull ^ (ci << 20) ^ lens[k];
                ov_case_run(&ov_kernel_heap, ci, 0, seed, &ov_refs[0]);
                ov_case_run(&ov_kernel_heap, ci, lens[k], seed, &ov_refs[0]);
            }
        }
    }
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
    free(ov_slab_table);
    return failed;
}
