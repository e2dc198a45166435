/*
 * tests/unit/test_kcache.c - the small-object caches (kcache.c) on heaps of
 * their own, over real memory (slab headers live in the pool).
 *
 * Covers: classes and geometry, exact table bytes of slabs (43, C3 03,
 * C3 83 03) and whole blocks (41, C1 01), allocation and free of every
 * class, every kind of bad free (interior, wrong offset, header, slab tail,
 * double free, never allocated, free block, outside) with "nothing changed"
 * checked byte for byte over the pool, the table and the counters, sealed
 * headers (corruption caught on alloc, free, refill, trim and check; a
 * corrupt neighbour stays corrupt), quarantine (a corrupt partial-list
 * head, spare or mid-list slab is reported once and abandoned, the class's
 * list rebuilt from the table and its other slabs reused; a header put back
 * later is safe), hysteresis and trim, the one-block
 * fallback, kcache_check against each invariant, poison, stats, secrets,
 * krealloc (every case), ksize, kpalloc and fault injection at every site.
 * The kheap wrappers (kmalloc & co.) are in test_kcache_kheap.c.
 */
#include "unit.h"

#include "memory/heap/kcache.h"

/* ------------------------------------------------------------- helpers */

#define KC_WORD_BITS (sizeof(uintptr_t) * 8u)
#define KC_HEADER_WORDS_FIXED 5u /* check, next, prev, shape, inuse (docs/kcache.md) */

/* A heap over real memory (the caches write their headers into the pool),
 * with its caches. The pool starts as garbage (0xCD). */
struct kc_env
{
    struct unit_heap u;
    unsigned char* pool;
    size_t blocks;
    struct kcache kc;
};

static void kc_env_make(struct kc_env* e, size_t blocks, unsigned flags)
{
    memset(e, 0, sizeof(*e));
    e->blocks = blocks;
    e->pool = aligned_alloc(UNIT_BS, blocks * UNIT_BS);
    assert_non_null(e->pool);
    memset(e->pool, 0xCD, blocks * UNIT_BS);
    unit_heap_make_at(&e->u, blocks, blocks % 2 == 0, (uintptr_t)e->pool);
    assert_int_equal(kcache_init(&e->kc, &e->u.heap, 0x5EC2E7u + blocks, flags), 0);
}

static void kc_env_destroy(struct kc_env* e)
{
    unit_heap_destroy(&e->u);
    free(e->pool);
    e->pool = NULL;
}

/* Capacity of a slab of k blocks for `size`, from the documented layout. */
static size_t kc_capacity(size_t size, size_t k)
{
    size_t bytes = k * UNIT_BS;
    for (size_t cap = bytes / size; cap > 0; cap--) {
        size_t words = (cap + KC_WORD_BITS - 1) / KC_WORD_BITS;
        size_t offset = ((KC_HEADER_WORDS_FIXED + words) * sizeof(uintptr_t) + 15) / 16 * 16;
        if (offset + cap * size <= bytes) {
            return cap;
        }
    }
    return 0;
}

/* Seal a header as someone knowing the secret would (docs/kcache.md):
 * check = key_final * (address + 1) + sum(word_i * keys[i]). */
static void kc_reseal(const struct kcache* kc, struct unit_slab_mirror* s)
{
    const struct kcache_geometry* g = &kc->classes[s->shape >> 1].geometry[s->shape & 1];
    const uintptr_t* w = (const uintptr_t*)(const void*)s;
    uintptr_t sum = kc->key_final * ((uintptr_t)s + 1);
    for (size_t i = 1; i < KC_HEADER_WORDS_FIXED + g->words; i++) {
        sum += w[i] * kc->keys[i];
    }
    s->check = sum;
}

#define kc_assert_clean(e)                                                        \
    do {                                                                          \
        size_t kc_bad_ = 12345;                                                   \
        int kc_res_ = kcache_check(&(e)->kc, &kc_bad_);                           \
        if (kc_res_ != 0) {                                                       \
            print_error("kcache_check: %d at block %zu\n", kc_res_, kc_bad_);    \
        }                                                                         \
        assert_int_equal(kc_res_, 0);                                             \
    } while (0)

/* kcache_check fails, naming `block` (SIZE_MAX: a counter or list). */
#define kc_assert_corrupt_at(e, block)                                            \
    do {                                                                          \
        size_t kc_bad_ = 12345;                                                   \
        assert_int_equal(kcache_check(&(e)->kc, &kc_bad_), -ECORRUPT);            \
        assert_int_equal(kc_bad_, (block));                                       \
    } while (0)

/* Everything an operation that is refused must leave unchanged. */
struct kc_snapshot
{
    unsigned char* pool;
    unsigned char table[4096];
    struct heap heap;
    struct kcache kc;
    size_t reports;
};

static void kc_snapshot_take(const struct kc_env* e, struct kc_snapshot* s)
{
    assert_true(e->blocks <= sizeof(s->table));
    s->pool = unit_xmalloc(e->blocks * UNIT_BS);
    memcpy(s->pool, e->pool, e->blocks * UNIT_BS);
    memcpy(s->table, e->u.heap.table->entries, e->blocks);
    memcpy(&s->heap, &e->u.heap, sizeof(s->heap));
    memcpy(&s->kc, &e->kc, sizeof(s->kc));
    s->reports = e->u.reports.count;
}

/* Pool, table, heap and caches exactly as in the snapshot, except
 * rejected_frees + rejected and corruptions + corruptions. */
static void kc_assert_unchanged_(const struct kc_env* e, struct kc_snapshot* s, size_t rejected, size_t corruptions,
                                 const char* file, int line)
{
    struct heap heap;
    struct kcache kc;
    memcpy(&heap, &s->heap, sizeof(heap));
    memcpy(&kc, &s->kc, sizeof(kc));
    heap.rejected_frees += rejected;
    kc.corruptions += corruptions;
    bool pool_same = memcmp(s->pool, e->pool, e->blocks * UNIT_BS) == 0;
    bool table_same = memcmp(s->table, e->u.heap.table->entries, e->blocks) == 0;
    bool heap_same = memcmp(&heap, &e->u.heap, sizeof(heap)) == 0;
    bool kc_same = memcmp(&kc, &e->kc, sizeof(kc)) == 0;
    free(s->pool);
    s->pool = NULL;
    if (!(pool_same && table_same && heap_same && kc_same)) {
        print_error("changed: pool %d table %d heap %d caches %d (rejected_frees %zu -> %zu, corruptions %zu -> %zu)\n",
                    !pool_same, !table_same, !heap_same, !kc_same, s->heap.rejected_frees, e->u.heap.rejected_frees,
                    s->kc.corruptions, e->kc.corruptions);
        _fail(file, line);
    }
}
#define kc_assert_unchanged(e, s, rejected, corruptions) \
    kc_assert_unchanged_((e), (s), (rejected), (corruptions), __FILE__, __LINE__)

/* kcache_free(ptr) is refused: nothing changed, one report {kind, ptr, block}. */
static void kc_assert_refused_(struct kc_env* e, void* ptr, enum heap_report_kind kind, const char* file, int line)
{
    struct kc_snapshot s;
    kc_snapshot_take(e, &s);
    memset(&e->u.reports.last, 0xA5, sizeof(e->u.reports.last));
    kcache_free(&e->kc, ptr);
    kc_assert_unchanged_(e, &s, 1, 0, file, line);
    uintptr_t offset = (uintptr_t)ptr - (uintptr_t)e->pool;
    size_t block = offset / UNIT_BS < e->blocks ? offset / UNIT_BS : SIZE_MAX;
    if (e->u.reports.count != s.reports + 1 || e->u.reports.last.kind != kind || e->u.reports.last.ptr != ptr ||
        e->u.reports.last.block != block) {
        print_error("kfree(%p): want kind %d block %zu; got %zu reports, kind %d ptr %p block %zu\n", ptr, (int)kind,
                    block, e->u.reports.count - s.reports, (int)e->u.reports.last.kind, e->u.reports.last.ptr,
                    e->u.reports.last.block);
        _fail(file, line);
    }
}
#define kc_assert_refused(e, ptr, kind) kc_assert_refused_((e), (ptr), (kind), __FILE__, __LINE__)

/* ------------------------------------------------------------------ init */

static void test_init_rejects(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    struct kcache kc;
    memset(&kc, 0xAB, sizeof(kc));
    struct kcache before = kc;
    assert_int_equal(kcache_init(NULL, &e.u.heap, 1, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, NULL, 1, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, 1, 0x2), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, 1, ~0u), -EINVARG);
    assert_memory_equal(&kc, &before, sizeof(kc));
    assert_int_equal(kcache_init(&kc, &e.u.heap, 1, KCACHE_FLAG_POISON), 0);
    assert_int_equal(kc.flags, KCACHE_FLAG_POISON);
    assert_ptr_equal(kc.heap, &e.u.heap);
    assert_int_equal(kcache_check(NULL, NULL), -EINVARG);
    kc.heap = NULL;
    assert_int_equal(kcache_check(&kc, NULL), -EINVARG);
    kc_env_destroy(&e);
}

/* NULL cache: every entry point is harmless. */
static void test_null_cache(void** state)
{
    (void)state;
    assert_null(kcache_alloc(NULL, 16));
    assert_null(kcache_palloc(NULL, 16));
    assert_null(kcache_realloc(NULL, NULL, 16));
    assert_int_equal(kcache_size(NULL, (void*)16), 0);
    assert_int_equal(kcache_trim(NULL), 0);
    kcache_free(NULL, (void*)16);
    kcache_set_fault(NULL, NULL, NULL);
}

/* --------------------------------------------------------------- classes */

static void test_class_boundaries(void** state)
{
    (void)state;
    assert_int_equal(kcache_class_of(0), KCACHE_CLASSES);
    assert_int_equal(kcache_class_of(1), 0);
    assert_int_equal(kcache_class_of(16), 0);
    assert_int_equal(kcache_class_of(17), 1);
    assert_int_equal(kcache_class_of(512), 31);
    assert_int_equal(kcache_class_of(513), 32);
    assert_int_equal(kcache_class_of(640), 32);
    assert_int_equal(kcache_class_of(641), 33);
    assert_int_equal(kcache_class_of(1024), 35);
    assert_int_equal(kcache_class_of(1025), 36);
    assert_int_equal(kcache_class_of(2048), 39);
    assert_int_equal(kcache_class_of(2049), KCACHE_CLASSES);
    assert_int_equal(kcache_class_of(SIZE_MAX), KCACHE_CLASSES);
}

static void test_class_sizes(void** state)
{
    (void)state;
    static const uint32_t big[] = { 640, 768, 896, 1024, 1280, 1536, 1792, 2048 };
    struct kc_env e;
    kc_env_make(&e, 1, 0);
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        uint32_t want = ci < 32 ? (uint32_t)(16 * (ci + 1)) : big[ci - 32];
        assert_int_equal(e.kc.classes[ci].size, want);
        assert_int_equal(e.kc.classes[ci].size % KCACHE_ALIGN, 0);
    }
    /* Every size goes to the smallest class that holds it. */
    for (size_t size = 1; size <= KCACHE_MAX_SIZE; size++) {
        size_t ci = kcache_class_of(size);
        assert_true(ci < KCACHE_CLASSES);
        assert_true(e.kc.classes[ci].size >= size);
        if (ci > 0) {
            assert_true(e.kc.classes[ci - 1].size < size);
        }
    }
    kc_env_destroy(&e);
}

/* Geometry: objects fit after the header and bitmap, one more would not;
 * the preferred slab wastes at most 2% or is the least wasteful. */
static void test_geometry(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 1, 0);
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        const struct kcache_class* c = &e.kc.classes[ci];
        for (size_t which = 0; which < 2; which++) {
            const struct kcache_geometry* g = &c->geometry[which];
            size_t bytes = g->blocks * UNIT_BS;
            assert_true(g->blocks >= 1 && g->blocks <= KCACHE_MAX_SLAB_BLOCKS);
            assert_true(g->capacity >= 1);
            assert_int_equal(g->words, (g->capacity + KC_WORD_BITS - 1) / KC_WORD_BITS);
            assert_int_equal(g->offset % KCACHE_ALIGN, 0);
            assert_true(g->offset >= KC_HEADER_WORDS_FIXED * sizeof(uintptr_t) + g->words * sizeof(uintptr_t));
            assert_true(g->offset < KC_HEADER_WORDS_FIXED * sizeof(uintptr_t) + g->words * sizeof(uintptr_t) + 16);
            assert_true(g->offset + (size_t)g->capacity * c->size <= bytes);
            size_t more = g->capacity + 1u;
            size_t more_offset = (KC_HEADER_WORDS_FIXED * sizeof(uintptr_t) +
                                  (more + KC_WORD_BITS - 1) / KC_WORD_BITS * sizeof(uintptr_t) + 15) / 16 * 16;
            assert_true(more_offset + more * c->size > bytes);
        }
        assert_int_equal(c->geometry[KCACHE_SINGLE].blocks, 1);
        const struct kcache_geometry* p = &c->geometry[KCACHE_PREFERRED];
        size_t waste = p->blocks * UNIT_BS - (size_t)p->capacity * c->size;
        if (waste * 50 > p->blocks * UNIT_BS) { /* then no length does better */
            for (size_t k = 1; k <= KCACHE_MAX_SLAB_BLOCKS; k++) {
                size_t cap = kc_capacity(c->size, k);
                assert_true(waste * k <= (k * UNIT_BS - cap * c->size) * p->blocks);
            }
        } else { /* and no shorter slab is within 2% */
            for (size_t k = 1; k < p->blocks; k++) {
                size_t cap = kc_capacity(c->size, k);
                assert_true((k * UNIT_BS - cap * c->size) * 50 > k * UNIT_BS);
            }
        }
    }
    kc_env_destroy(&e);
}

/* ----------------------------------------------------------- table bytes */

static void test_table_bytes(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 12, 0);
    size_t c80 = kcache_class_of(80);
    size_t c304 = kcache_class_of(304);
    assert_int_equal(e.kc.classes[0].geometry[0].blocks, 1);
    assert_int_equal(e.kc.classes[c80].geometry[0].blocks, 2);
    assert_int_equal(e.kc.classes[c304].geometry[0].blocks, 3);

    unsigned char* a = kcache_alloc(&e.kc, 1);
    assert_ptr_equal(a, e.pool + e.kc.classes[0].geometry[0].offset);
    unit_assert_table(&e.u.heap, "43 00 00 00 00 00 00 00 00 00 00 00");
    unsigned char* b = kcache_alloc(&e.kc, 80);
    unit_assert_table(&e.u.heap, "43 C3 03 00 00 00 00 00 00 00 00 00");
    unsigned char* c = kcache_alloc(&e.kc, 300);
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 00 00 00 00 00 00");
    unsigned char* d = kcache_alloc(&e.kc, KCACHE_MAX_SIZE + 1); /* whole blocks, seed encoding */
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 41 00 00 00 00 00");
    assert_ptr_equal(d, e.pool + 6 * UNIT_BS);
    unsigned char* f = kcache_alloc(&e.kc, UNIT_BS + 1);
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 41 C1 01 00 00 00");
    unsigned char* g = kcache_palloc(&e.kc, 1); /* block-aligned, any size */
    assert_ptr_equal(g, e.pool + 9 * UNIT_BS);
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 41 C1 01 41 00 00");
    kc_assert_clean(&e);

    kcache_free(&e.kc, g);
    kcache_free(&e.kc, f);
    kcache_free(&e.kc, d);
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 00 00 00 00 00 00");
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b);
    kcache_free(&e.kc, c);
    /* Each emptied slab is its class's spare: still there. */
    unit_assert_table(&e.u.heap, "43 C3 03 C3 83 03 00 00 00 00 00 00");
    kc_assert_clean(&e);
    assert_int_equal(kcache_trim(&e.kc), 6);
    unit_assert_table(&e.u.heap, "00 00 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(e.u.heap.rejected_frees, 0);
    assert_int_equal(e.u.reports.count, 0);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------- alloc and free */

/* Every size 1..KCACHE_MAX_SIZE: aligned, inside a slab of its class, no overlap. */
static void test_every_size(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 1024, 0);
    static unsigned char* p[KCACHE_MAX_SIZE + 1];
    for (size_t size = 1; size <= KCACHE_MAX_SIZE; size++) {
        p[size] = kcache_alloc(&e.kc, size);
        assert_non_null(p[size]);
        assert_int_equal((uintptr_t)p[size] % KCACHE_ALIGN, 0);
        assert_int_equal(kcache_size(&e.kc, p[size]), e.kc.classes[kcache_class_of(size)].size);
        memset(p[size], (int)(size & 0xFF), size);
    }
    kc_assert_clean(&e);
    for (size_t size = 1; size <= KCACHE_MAX_SIZE; size++) {
        for (size_t i = 0; i < size; i++) {
            assert_int_equal(p[size][i], size & 0xFF);
        }
        kcache_free(&e.kc, p[size]);
    }
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.object_bytes, 0);
    assert_int_equal(st.spare_slabs, st.slabs); /* only spares left */
    assert_true(st.slabs <= KCACHE_CLASSES);
    assert_int_equal(e.u.heap.rejected_frees, 0);
    kc_assert_clean(&e);
    kcache_trim(&e.kc);
    assert_int_equal(e.u.heap.used_blocks, 0);
    kc_env_destroy(&e);
}

/* Objects are handed out lowest slot first; a full slab leaves the list. */
static void test_slots_in_order(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    size_t n = g->capacity;
    unsigned char** p = unit_xmalloc((n + 1) * sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p[i] = kcache_alloc(&e.kc, 16);
        assert_ptr_equal(p[i], e.pool + g->offset + i * 16);
    }
    assert_null(e.kc.classes[0].partial); /* full: on no list */
    assert_int_equal(e.kc.classes[0].partial_slabs, 0);
    kc_assert_clean(&e);
    p[n] = kcache_alloc(&e.kc, 16); /* second slab */
    assert_ptr_equal(p[n], e.pool + UNIT_BS + g->offset);
    unit_assert_table(&e.u.heap, "43 43 00 00");
    kcache_free(&e.kc, p[5]); /* full -> partial, pushed to the head */
    assert_ptr_equal(e.kc.classes[0].partial, e.pool);
    assert_int_equal(e.kc.classes[0].partial_slabs, 2);
    kc_assert_clean(&e);
    assert_ptr_equal(kcache_alloc(&e.kc, 16), p[5]); /* the hole is reused */
    kc_assert_clean(&e);
    for (size_t i = 0; i <= n; i++) {
        kcache_free(&e.kc, p[i]);
    }
    unit_assert_table(&e.u.heap, "43 00 00 00"); /* one spare kept, the other released */
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* Objects of multi-block slabs that straddle or sit in later blocks. */
static void test_multi_block_slab_objects(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t ci = kcache_class_of(300);
    const struct kcache_geometry* g = &e.kc.classes[ci].geometry[0];
    assert_int_equal(g->blocks, 3);
    unsigned char** p = unit_xmalloc(g->capacity * sizeof(*p));
    for (size_t i = 0; i < g->capacity; i++) {
        p[i] = kcache_alloc(&e.kc, 300);
        memset(p[i], 0x30 + (int)(i % 64), 304);
    }
    unit_assert_table(&e.u.heap, "C3 83 03 00 00 00 00 00");
    kc_assert_clean(&e);
    /* Free from the last block backwards: every pointer is found. */
    for (size_t i = g->capacity; i-- > 0;) {
        for (size_t j = 0; j < 304; j++) {
            assert_int_equal(p[i][j], 0x30 + (int)(i % 64));
        }
        kcache_free(&e.kc, p[i]);
    }
    assert_int_equal(e.u.heap.rejected_frees, 0);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------------- bad frees */

static void test_bad_frees_small(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    const struct kcache_geometry* g = &e.kc.classes[2].geometry[0]; /* 48-byte objects */
    assert_int_equal(g->blocks, 1);
    unsigned char* a = kcache_alloc(&e.kc, 48);
    unsigned char* b = kcache_alloc(&e.kc, 48);
    assert_ptr_equal(b, a + 48);
    unsigned char* slab = e.pool;
    unsigned char* big = kcache_alloc(&e.kc, 3 * UNIT_BS);
    int local = 0;

    kc_assert_refused(&e, a + 1, HEAP_REPORT_CACHE_BAD_FREE);             /* interior */
    kc_assert_refused(&e, a + 16, HEAP_REPORT_CACHE_BAD_FREE);            /* interior, 16-aligned */
    kc_assert_refused(&e, b + 47, HEAP_REPORT_CACHE_BAD_FREE);            /* last byte */
    kc_assert_refused(&e, slab, HEAP_REPORT_CACHE_BAD_FREE);              /* the header */
    kc_assert_refused(&e, slab + 8, HEAP_REPORT_CACHE_BAD_FREE);          /* inside the header */
    kc_assert_refused(&e, slab + g->offset - 16, HEAP_REPORT_CACHE_BAD_FREE); /* header padding */
    kc_assert_refused(&e, b + 48, HEAP_REPORT_CACHE_BAD_FREE);            /* valid start, never allocated */
    kc_assert_refused(&e, slab + g->offset + ((size_t)g->capacity - 1) * 48, HEAP_REPORT_CACHE_BAD_FREE); /* last slot */
    kc_assert_refused(&e, slab + UNIT_BS - 1, HEAP_REPORT_CACHE_BAD_FREE); /* last byte of the slab */
    /* Non-cache pointers keep the heap's kinds. */
    kc_assert_refused(&e, big + 8, HEAP_REPORT_FREE_UNALIGNED);
    kc_assert_refused(&e, big + UNIT_BS, HEAP_REPORT_FREE_INTERIOR);
    kc_assert_refused(&e, e.pool + 7 * UNIT_BS, HEAP_REPORT_FREE_NOT_ALLOCATED);
    kc_assert_refused(&e, &local, HEAP_REPORT_FREE_OUTSIDE);
    kc_assert_refused(&e, e.pool + 8 * UNIT_BS, HEAP_REPORT_FREE_OUTSIDE);
    kc_assert_refused(&e, e.pool - 16, HEAP_REPORT_FREE_OUTSIDE);

    /* The tail after the last object of a slab that has one (80 bytes: 2 blocks). */
    unsigned char* t = kcache_alloc(&e.kc, 80);
    unsigned char* tslab = e.pool + 4 * UNIT_BS;
    const struct kcache_geometry* tg = &e.kc.classes[kcache_class_of(80)].geometry[0];
    size_t tail = tg->offset + (size_t)tg->capacity * 80;
    assert_ptr_equal(t, tslab + tg->offset);
    assert_true(tail < tg->blocks * UNIT_BS);
    kc_assert_refused(&e, tslab + tail, HEAP_REPORT_CACHE_BAD_FREE);
    kc_assert_refused(&e, tslab + tg->blocks * UNIT_BS - 16, HEAP_REPORT_CACHE_BAD_FREE);
    size_t later = (UNIT_BS - tg->offset + 79) / 80; /* first slot starting in the slab's second block */
    kc_assert_refused(&e, tslab + tg->offset + later * 80, HEAP_REPORT_CACHE_BAD_FREE); /* never allocated */
    kcache_free(&e.kc, t);

    kcache_free(&e.kc, a);
    kc_assert_refused(&e, a, HEAP_REPORT_CACHE_BAD_FREE); /* double free */
    kc_assert_clean(&e);
    kcache_free(&e.kc, b); /* the slab empties: it is the spare now */
    kc_assert_refused(&e, b, HEAP_REPORT_CACHE_BAD_FREE); /* double free into the spare */
    assert_int_equal(e.u.heap.rejected_frees, 20);
    kcache_free(&e.kc, big);
    kcache_free(&e.kc, NULL); /* nothing at all */
    assert_int_equal(e.u.heap.rejected_frees, 20);
    kc_assert_clean(&e);
    /* Once the slab went back to the heap, a stale pointer is a free block. */
    assert_int_equal(kcache_trim(&e.kc), 1 + tg->blocks);
    kc_assert_refused(&e, b, HEAP_REPORT_FREE_UNALIGNED); /* the heap's own first check */
    kc_assert_refused(&e, e.pool, HEAP_REPORT_FREE_NOT_ALLOCATED);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* A free with no report hook: counted all the same, nothing changed. */
static void test_bad_free_without_hook(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    heap_set_report(&e.u.heap, NULL, NULL);
    unsigned char* a = kcache_alloc(&e.kc, 100);
    kcache_free(&e.kc, a + 4);
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, a);
    assert_int_equal(e.u.heap.rejected_frees, 2);
    assert_int_equal(e.u.reports.count, 0);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ----------------------------------------------------------- hysteresis */

static void test_hysteresis(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 16, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    size_t n = 3 * cap;
    void** p = unit_xmalloc(n * sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p[i] = kcache_alloc(&e.kc, 10);
    }
    unit_assert_table(&e.u.heap, "43 43 43 00 00 00 00 00 00 00 00 00 00 00 00 00");
    /* Empty the first slab: kept as the spare. */
    for (size_t i = 0; i < cap; i++) {
        kcache_free(&e.kc, p[i]);
    }
    unit_assert_table(&e.u.heap, "43 43 43 00 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_ptr_equal(e.kc.classes[0].spare, e.pool);
    kc_assert_clean(&e);
    /* Empty the other two: released, the spare stays. */
    for (size_t i = cap; i < n; i++) {
        kcache_free(&e.kc, p[i]);
    }
    unit_assert_table(&e.u.heap, "43 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_int_equal(e.kc.classes[0].slabs, 1);
    kc_assert_clean(&e);
    /* The spare is used before any new slab. */
    void* q = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(q, e.pool + e.kc.classes[0].geometry[0].offset);
    assert_null(e.kc.classes[0].spare);
    kcache_free(&e.kc, q);
    /* A burst over every class leaves at most one slab per class. */
    for (size_t round = 0; round < 3; round++) {
        void* burst[KCACHE_CLASSES][4];
        for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
            for (size_t k = 0; k < 4; k++) {
                burst[ci][k] = kcache_alloc(&e.kc, e.kc.classes[ci].size);
            }
        }
        for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
            for (size_t k = 0; k < 4; k++) {
                kcache_free(&e.kc, burst[ci][k]);
            }
        }
        kc_assert_clean(&e);
    }
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_true(st.slabs <= KCACHE_CLASSES);
    assert_int_equal(st.spare_slabs, st.slabs);
    assert_int_equal(kcache_trim(&e.kc), st.slab_blocks);
    assert_int_equal(e.u.heap.used_blocks, 0);
    assert_int_equal(kcache_trim(&e.kc), 0);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* A full heap gives the spares back and tries once more. */
static void test_full_heap_trims(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 3, 0);
    void* a = kcache_alloc(&e.kc, 16);
    void* b = kcache_alloc(&e.kc, 32);
    void* c = kcache_alloc(&e.kc, 48);
    unit_assert_table(&e.u.heap, "43 43 43");
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b); /* two spares */
    void* big = kcache_alloc(&e.kc, 2 * UNIT_BS);
    assert_ptr_equal(big, e.pool); /* both spares released, then the run was found */
    unit_assert_table(&e.u.heap, "C1 01 43");
    assert_int_equal(e.u.heap.failed_allocs, 1);
    kcache_free(&e.kc, big);
    void* d = kcache_alloc(&e.kc, 64); /* new slab in the freed space */
    assert_non_null(d);
    kcache_free(&e.kc, c); /* spare */
    kcache_free(&e.kc, d); /* spare */
    unit_assert_table(&e.u.heap, "43 00 43");
    void* s = kcache_alloc(&e.kc, 200); /* needs a slab: a spare of another class makes room */
    assert_non_null(s);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* No run of the preferred length: a one-block slab. */
static void test_single_block_fallback(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    void* blocks[4];
    for (size_t i = 0; i < 4; i++) {
        blocks[i] = kcache_palloc(&e.kc, 1);
    }
    kcache_free(&e.kc, blocks[1]);
    kcache_free(&e.kc, blocks[3]);
    unit_assert_table(&e.u.heap, "41 00 41 00");
    size_t ci = kcache_class_of(80);
    const struct kcache_geometry* single = &e.kc.classes[ci].geometry[KCACHE_SINGLE];
    unsigned char* p = kcache_alloc(&e.kc, 80);
    assert_ptr_equal(p, e.pool + UNIT_BS + single->offset);
    unit_assert_table(&e.u.heap, "41 43 41 00");
    assert_int_equal(e.u.heap.failed_allocs, 1); /* the 2-block attempt */
    void** q = unit_xmalloc(2u * single->capacity * sizeof(*q));
    size_t n = 0;
    while (n < 2u * single->capacity && (q[n] = kcache_alloc(&e.kc, 80)) != NULL) {
        n++;
    }
    assert_int_equal(n, 2u * single->capacity - 1); /* both single slabs, then full */
    unit_assert_table(&e.u.heap, "41 43 41 43");
    kc_assert_clean(&e);
    for (size_t i = 0; i < n; i++) {
        kcache_free(&e.kc, q[i]);
    }
    kcache_free(&e.kc, p);
    kc_assert_clean(&e);
    free(q);
    kc_env_destroy(&e);
}

/* Out of memory: NULL, nothing changed but failed_allocs. */
static void test_out_of_memory(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    void* a = kcache_palloc(&e.kc, 2 * UNIT_BS);
    assert_non_null(a);
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_alloc(&e.kc, 16));
    assert_null(kcache_alloc(&e.kc, 3000));
    assert_null(kcache_palloc(&e.kc, 1));
    assert_null(kcache_alloc(&e.kc, SIZE_MAX));
    assert_null(kcache_palloc(&e.kc, SIZE_MAX));
    assert_null(kcache_alloc(&e.kc, 0));
    assert_null(kcache_palloc(&e.kc, 0));
    e.u.heap.failed_allocs = s.heap.failed_allocs; /* the only counter allowed to move */
    kc_assert_unchanged(&e, &s, 0, 0);
    kcache_free(&e.kc, a);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------ sealed headers */

/* The documented checksum formula is the one the code uses. */
static void test_seal_formula(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci += 7) {
        kcache_alloc(&e.kc, e.kc.classes[ci].size);
    }
    for (size_t b = 0; b < 8; b++) {
        if ((e.u.heap.table->entries[b] & (HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_MASK)) ==
            (HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_CACHE)) {
            struct unit_slab_mirror* slab = (struct unit_slab_mirror*)(e.pool + b * UNIT_BS);
            uintptr_t check = slab->check;
            kc_reseal(&e.kc, slab);
            assert_true(slab->check == check);
        }
    }
    kc_env_destroy(&e);
}

/* Different secrets give different keys and checks; the same secret the same. */
static void test_secrets(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    struct kcache a, b, c;
    assert_int_equal(kcache_init(&a, &e.u.heap, 1, 0), 0);
    assert_int_equal(kcache_init(&b, &e.u.heap, 2, 0), 0);
    assert_int_equal(kcache_init(&c, &e.u.heap, 1, 0), 0);
    assert_memory_equal(a.keys, c.keys, sizeof(a.keys));
    assert_true(a.key_final == c.key_final);
    assert_memory_not_equal(a.keys, b.keys, sizeof(a.keys));
    for (size_t i = 0; i < KCACHE_HEADER_WORDS; i++) {
        assert_int_equal(a.keys[i] & 1u, 1);
    }
    /* A slab sealed under one secret is corrupt under another. */
    void* p = kcache_alloc(&a, 16);
    assert_int_equal(kcache_check(&a, NULL), 0);
    size_t bad = 0;
    b.slabs = a.slabs;
    b.slab_blocks = a.slab_blocks;
    assert_int_equal(kcache_check(&b, &bad), -ECORRUPT);
    assert_int_equal(bad, 0);
    kcache_free(&a, p);
    kc_env_destroy(&e);
}

/*
 * kcache_alloc(size) meets the corrupt slab `bad` of n blocks: exactly one
 * report {FREE_CORRUPT, bad, its block}, corruptions + 1, one more slab
 * quarantined and one more list rebuilt, no free refused; the object it
 * returns is not inside `bad`.
 */
static unsigned char* kc_alloc_past_corrupt(struct kc_env* e, size_t size, const void* bad, size_t n)
{
    struct kcache_stats before;
    struct kcache_stats after;
    kcache_get_stats(&e->kc, &before);
    size_t reports = e->u.reports.count;
    size_t rejected = e->u.heap.rejected_frees;
    unsigned char* p = kcache_alloc(&e->kc, size);
    kcache_get_stats(&e->kc, &after);
    assert_non_null(p);
    assert_int_equal(e->u.reports.count, reports + 1);
    assert_int_equal(e->u.reports.last.kind, HEAP_REPORT_CACHE_QUARANTINE);
    assert_ptr_equal(e->u.reports.last.ptr, bad);
    assert_int_equal(e->u.reports.last.block, (size_t)((const unsigned char*)bad - e->pool) / UNIT_BS);
    assert_int_equal(after.corruptions, before.corruptions + 1);
    assert_int_equal(after.quarantined_slabs, before.quarantined_slabs + 1);
    assert_int_equal(after.list_rebuilds, before.list_rebuilds + 1);
    assert_int_equal(e->u.heap.rejected_frees, rejected);
    assert_true(p + size <= (const unsigned char*)bad || p >= (const unsigned char*)bad + n * UNIT_BS);
    return p;
}

/* kfree(ptr) into a slab whose header fails its check: refused, counted as
 * a refused free and a corruption, reported with ptr; nothing else changes. */
static void kc_assert_refused_corrupt(struct kc_env* e, void* ptr)
{
    struct kc_snapshot s;
    kc_snapshot_take(e, &s);
    kcache_free(&e->kc, ptr);
    kc_assert_unchanged(e, &s, 1, 1);
    assert_int_equal(e->u.reports.count, s.reports + 1);
    assert_int_equal(e->u.reports.last.kind, HEAP_REPORT_FREE_CORRUPT);
    assert_ptr_equal(e->u.reports.last.ptr, ptr);
}

/*
 * Corrupt one header word of a class's only slab (partial, the list head).
 * kfree, krealloc and ksize refuse it as before; kmalloc reports it once,
 * quarantines it and goes on in a new slab, and the class keeps working
 * without another report; kcache_check keeps naming the slab. Put back, the
 * header is sound again: a slab on no list (kcache_check says so), whose
 * objects can be freed without its stale links being followed; empty, it
 * becomes the spare and the heap is sound.
 */
static void corrupt_word_case(size_t word, uintptr_t value)
{
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    unsigned char* a = kcache_alloc(&e.kc, 16);
    unsigned char* b = kcache_alloc(&e.kc, 16);
    struct unit_slab_mirror* slab = (struct unit_slab_mirror*)e.pool;
    uintptr_t* w = (uintptr_t*)(void*)slab;
    uintptr_t saved = w[word];
    w[word] = value;

    /* kfree: refused as FREE_CORRUPT, counted twice (rejected, corruption). */
    kc_assert_refused_corrupt(&e, a);
    assert_int_equal(e.u.reports.last.block, 0);

    /* kmalloc of that class: reported once, quarantined, a new slab. Nothing
     * is read from or written to the corrupt header (word 1 is a wild next). */
    uintptr_t corrupt[KC_HEADER_WORDS_FIXED + 4];
    memcpy(corrupt, slab, sizeof(corrupt));
    unsigned char* c = kc_alloc_past_corrupt(&e, 16, slab, 1);
    assert_memory_equal(corrupt, slab, sizeof(corrupt));
    assert_ptr_equal(c, e.pool + UNIT_BS + g->offset);
    unit_assert_table(&e.u.heap, "43 43 00 00");
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 1);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    assert_int_equal(st.slabs, 2);   /* the quarantined slab stays allocated */
    assert_int_equal(st.objects, 3); /* and its objects stay live */
    assert_int_equal(e.kc.classes[0].quarantined, 1);
    assert_ptr_equal(e.kc.classes[0].partial, e.pool + UNIT_BS);
    assert_int_equal(e.kc.classes[0].partial_slabs, 1);

    /* The class goes on with no further report; kfree into the quarantined
     * slab stays refused, ksize and krealloc do not trust it either. */
    size_t reports = e.u.reports.count;
    unsigned char* d = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(d, c + 16);
    assert_int_equal(e.u.reports.count, reports);
    kc_assert_refused_corrupt(&e, b);
    assert_int_equal(kcache_size(&e.kc, a), 0);
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_realloc(&e.kc, a, 1000));
    kc_assert_unchanged(&e, &s, 1, 1);

    /* kcache_check names the slab; other classes are unaffected. */
    kc_assert_corrupt_at(&e, 0);
    void* other = kcache_alloc(&e.kc, 100);
    assert_non_null(other);
    kcache_free(&e.kc, other);
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 1);

    /* Put the word back: a sound partial slab its class's list lacks. */
    w[word] = saved;
    kc_assert_corrupt_at(&e, SIZE_MAX);
    assert_int_equal(kcache_size(&e.kc, a), 16);
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b); /* empty: off the list, links cleared, the spare */
    assert_ptr_equal(e.kc.classes[0].spare, slab);
    assert_int_equal(slab->next, 0);
    assert_int_equal(slab->prev, 0);
    assert_ptr_equal(e.kc.classes[0].partial, e.pool + UNIT_BS); /* untouched */
    kc_assert_clean(&e);
    kcache_free(&e.kc, c);
    kcache_free(&e.kc, d); /* released: the class has its spare */
    unit_assert_table(&e.u.heap, "43 00 43 00"); /* block 2: the 112-byte class's spare */
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

static void test_corrupt_header_words(void** state)
{
    (void)state;
    corrupt_word_case(0, 0);                   /* check */
    corrupt_word_case(1, 0x1000);              /* next */
    corrupt_word_case(2, 0x2000);              /* prev */
    corrupt_word_case(3, 2);                   /* shape: another valid class */
    corrupt_word_case(3, 2 * KCACHE_CLASSES);  /* shape: no class */
    corrupt_word_case(3, UINTPTR_MAX);         /* shape: wild */
    corrupt_word_case(4, 1);                   /* inuse */
    corrupt_word_case(5, 0);                   /* bitmap: objects "freed" */
    corrupt_word_case(5, UINTPTR_MAX);         /* bitmap: "allocated" */
    corrupt_word_case(6, 0x10);                /* a later bitmap word */
}

/* A linear overrun from the block below the slab hits the check first. */
static void test_overrun_into_slab(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    unsigned char* below = kcache_palloc(&e.kc, 1);
    unsigned char* obj = kcache_alloc(&e.kc, 64);
    memset(below, 0x41, UNIT_BS + 24); /* 24 bytes too far */
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    kcache_free(&e.kc, obj);
    kc_assert_unchanged(&e, &s, 1, 1);
    assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_FREE_CORRUPT);
    size_t bad = 0;
    assert_int_equal(kcache_check(&e.kc, &bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    kc_env_destroy(&e);
}

/*
 * A corrupt spare met by kmalloc (refill): reported once, quarantined (no
 * longer the spare, never freed), and the class makes a new slab. Met by
 * trim: reported once and quarantined too; later trims do not see it.
 */
static void test_corrupt_spare(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    struct unit_slab_mirror* slab0 = (struct unit_slab_mirror*)e.pool;
    struct unit_slab_mirror* slab1 = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    void* a = kcache_alloc(&e.kc, 16);
    kcache_free(&e.kc, a);
    assert_ptr_equal(e.kc.classes[0].spare, slab0);
    slab0->inuse = 7;
    unsigned char* b = kc_alloc_past_corrupt(&e, 16, slab0, 1);
    assert_ptr_equal(b, e.pool + UNIT_BS + g->offset);
    assert_null(e.kc.classes[0].spare);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.spare_slabs, 0);
    assert_int_equal(st.slabs, 2);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    kc_assert_corrupt_at(&e, 0);

    /* The new slab becomes the spare; trim frees it, never slab 0. */
    kcache_free(&e.kc, b);
    assert_ptr_equal(e.kc.classes[0].spare, slab1);
    assert_int_equal(kcache_trim(&e.kc), 1);
    unit_assert_table(&e.u.heap, "43 00 00 00");

    /* trim meets a corrupt spare: one report, quarantined, not freed. */
    b = kcache_alloc(&e.kc, 16); /* no partial slab, no spare: a new slab, no rebuild */
    assert_ptr_equal(b, e.pool + UNIT_BS + g->offset);
    kcache_free(&e.kc, b);
    assert_ptr_equal(e.kc.classes[0].spare, slab1);
    slab1->bitmap[0] ^= 0x10;
    size_t reports = e.u.reports.count;
    assert_int_equal(kcache_trim(&e.kc), 0);
    assert_int_equal(e.u.reports.count, reports + 1);
    assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_CACHE_QUARANTINE);
    assert_ptr_equal(e.u.reports.last.ptr, slab1);
    assert_null(e.kc.classes[0].spare);
    assert_int_equal(kcache_trim(&e.kc), 0);
    assert_int_equal(e.u.reports.count, reports + 1); /* not met again */
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 2);
    assert_int_equal(st.corruptions, 2);
    assert_int_equal(st.list_rebuilds, 1); /* trim rebuilds nothing */
    unit_assert_table(&e.u.heap, "43 43 00 00");
    kc_assert_corrupt_at(&e, 0);
    kc_env_destroy(&e);
}

/*
 * Quarantined slabs whose headers are put back are sound again; a later
 * rebuild of their class takes them back: an empty one becomes the spare
 * when the class has none (and is used before any new slab), another empty
 * one goes back to the heap, a partial one is relinked (here found by the
 * refill, after its corrupt spare).
 */
static void test_rebuild_takes_back_sound_slabs(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    unsigned char* slab[4];
    for (size_t i = 0; i < 4; i++) {
        slab[i] = e.pool + i * UNIT_BS;
    }
    struct unit_slab_mirror* s0 = (struct unit_slab_mirror*)slab[0];
    struct unit_slab_mirror* s1 = (struct unit_slab_mirror*)slab[1];
    struct unit_slab_mirror* s2 = (struct unit_slab_mirror*)slab[2];

    /* Two empty slabs quarantined by trim (slab 0, then slab 1), then put back. */
    void* a = kcache_alloc(&e.kc, 16);
    kcache_free(&e.kc, a);
    s0->check ^= 1;
    assert_int_equal(kcache_trim(&e.kc), 0);
    a = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(a, slab[1] + g->offset);
    kcache_free(&e.kc, a);
    s1->check ^= 1;
    assert_int_equal(kcache_trim(&e.kc), 0);
    s0->check ^= 1;
    s1->check ^= 1;
    kc_assert_corrupt_at(&e, 0); /* an empty slab that is not its class's spare */

    /* A partial slab 2 whose header is hit: the rebuild keeps slab 0 as the
     * spare, gives slab 1 back, and the object comes from slab 0. */
    a = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(a, slab[2] + g->offset);
    s2->inuse = 5;
    unsigned char* b = kc_alloc_past_corrupt(&e, 16, s2, 1);
    assert_ptr_equal(b, slab[0] + g->offset);
    unit_assert_table(&e.u.heap, "43 00 43 00");
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 3);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    assert_int_equal(st.slabs, 2);
    assert_int_equal(st.objects, 2);
    kc_assert_corrupt_at(&e, 2);

    /* Slab 2 put back (partial, off the list); slab 0 emptied becomes the
     * spare, then is hit: the refill quarantines it, the rebuild relinks
     * slab 2, and the object comes from slab 2. */
    s2->inuse = 1;
    kcache_free(&e.kc, b);
    assert_ptr_equal(e.kc.classes[0].spare, s0);
    assert_null(e.kc.classes[0].partial);
    s0->bitmap[1] ^= 0x100;
    unsigned char* c = kc_alloc_past_corrupt(&e, 16, s0, 1);
    assert_ptr_equal(c, slab[2] + g->offset + 16);
    assert_ptr_equal(e.kc.classes[0].partial, s2);
    assert_int_equal(e.kc.classes[0].partial_slabs, 1);
    assert_null(e.kc.classes[0].spare);
    kc_assert_corrupt_at(&e, 0);
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, c); /* slab 2 empty and on the list: the spare */
    assert_ptr_equal(e.kc.classes[0].spare, s2);
    s0->bitmap[1] ^= 0x100;
    kc_assert_corrupt_at(&e, 0); /* slab 0: empty, not the spare */
    kc_env_destroy(&e);
}

/* A quarantine on a full heap: the class has no other slab and there is no
 * room for a new one, so kmalloc returns NULL (after one report) - as it
 * would for lack of room; once there is room, the class works again. */
static void test_quarantine_out_of_memory(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    void* a = kcache_alloc(&e.kc, 16);
    void* block = kcache_palloc(&e.kc, 1);
    unit_assert_table(&e.u.heap, "43 41");
    struct unit_slab_mirror* slab = (struct unit_slab_mirror*)e.pool;
    slab->prev = 0x5A5A; /* a wild link, never followed */
    size_t reports = e.u.reports.count;
    size_t failed = e.u.heap.failed_allocs;
    assert_null(kcache_alloc(&e.kc, 16));
    assert_int_equal(e.u.reports.count, reports + 1);
    assert_ptr_equal(e.u.reports.last.ptr, slab);
    assert_true(e.u.heap.failed_allocs > failed); /* a new slab was tried */
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 1);
    assert_int_equal(st.slabs, 1);
    assert_null(e.kc.classes[0].partial);
    assert_null(kcache_alloc(&e.kc, 16)); /* no room, and no second report */
    assert_int_equal(e.u.reports.count, reports + 1);
    kcache_free(&e.kc, block);
    unsigned char* b = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(b, e.pool + UNIT_BS + e.kc.classes[0].geometry[0].offset);
    kc_assert_refused_corrupt(&e, a);
    kc_assert_corrupt_at(&e, 0);
    kc_env_destroy(&e);
}

/* n full one-block slabs of class 0 (blocks 0..n-1), then one object
 * freed in each slab of `order` in turn (each pushed to the list head): the
 * list is order[n-1], ..., order[0]. Returns the objects; slot `freed[k]`
 * of slab k was freed. */
static void** kc_partial_slabs(struct kc_env* e, size_t n, const size_t* order, size_t* freed)
{
    size_t cap = e->kc.classes[0].geometry[0].capacity;
    void** p = unit_xmalloc(n * cap * sizeof(*p));
    for (size_t i = 0; i < n * cap; i++) {
        p[i] = kcache_alloc(&e->kc, 16);
        assert_non_null(p[i]);
    }
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(e->u.heap.table->entries[k], 0x43);
    }
    for (size_t k = 0; k < n; k++) {
        freed[order[k]] = 3 + 2 * order[k];
        kcache_free(&e->kc, p[order[k] * cap + freed[order[k]]]);
    }
    assert_ptr_equal(e->kc.classes[0].partial, e->pool + order[n - 1] * UNIT_BS);
    assert_int_equal(e->kc.classes[0].partial_slabs, n);
    kc_assert_clean(e);
    return p;
}

/* The headers of the slabs in blocks 0 .. n-1. */
static void kc_mirrors(const struct kc_env* e, struct unit_slab_mirror** s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        s[k] = (struct unit_slab_mirror*)(e->pool + k * UNIT_BS);
    }
}

/*
 * The partial-list head is corrupt while the class has other partial slabs:
 * the rebuild relinks them (table order) and the allocations go into their
 * free slots, with no new slab; kfree into the corrupt one stays refused.
 */
static void test_quarantine_reuses_partial_slabs(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    static const size_t order[3] = { 0, 1, 2 };
    size_t freed[3];
    void** p = kc_partial_slabs(&e, 3, order, freed);
    struct unit_slab_mirror* head = (struct unit_slab_mirror*)(e.pool + 2 * UNIT_BS);
    head->bitmap[0] ^= 0x1; /* a stray write: slot 0 "freed" behind the cache's back */

    unsigned char* q = kc_alloc_past_corrupt(&e, 16, head, 1);
    assert_ptr_equal(q, p[freed[0]]); /* slab 0's free slot */
    assert_ptr_equal(e.kc.classes[0].partial, e.pool + UNIT_BS); /* slab 0 full: off the list */
    assert_int_equal(e.kc.classes[0].partial_slabs, 1);
    size_t reports = e.u.reports.count;
    unsigned char* r = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(r, p[cap + freed[1]]); /* slab 1's free slot */
    assert_int_equal(e.u.reports.count, reports);
    assert_null(e.kc.classes[0].partial);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.slabs, 3); /* no new slab */
    assert_int_equal(st.quarantined_slabs, 1);
    assert_int_equal(st.list_rebuilds, 1);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    assert_int_equal(st.corruptions, 1);
    unit_assert_table(&e.u.heap, "43 43 43 00 00 00 00 00");
    kc_assert_refused_corrupt(&e, p[2 * cap]);
    kc_assert_corrupt_at(&e, 2);
    /* The next one needs a new slab: the corrupt one is never used. */
    unsigned char* n = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(n, e.pool + 3 * UNIT_BS + e.kc.classes[0].geometry[0].offset);
    free(p);
    kc_env_destroy(&e);
}

/*
 * A corrupt slab in the middle of the list is not met until it becomes the
 * head (the head fills and leaves the list; its link is written without
 * trusting the header, which stays exactly as corrupt); then it takes the
 * same path: one report, quarantine, rebuild, the next sound slab used.
 * Put back, its stale links are not followed when it empties. A rebuild
 * skips every corrupt slab: two corrupt ones, one report, both counted.
 */
static void test_quarantine_mid_list(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    static const size_t order[3] = { 2, 1, 0 }; /* list: slab 0, slab 1, slab 2 */
    size_t freed[3];
    void** p = kc_partial_slabs(&e, 3, order, freed);
    struct unit_slab_mirror* mid = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    struct unit_slab_mirror* tail = (struct unit_slab_mirror*)(e.pool + 2 * UNIT_BS);
    assert_int_equal(mid->next, (uintptr_t)tail);
    mid->check += 0x40;

    size_t reports = e.u.reports.count;
    unsigned char* x = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(x, p[freed[0]]); /* slab 0 fills and leaves the list */
    assert_int_equal(e.u.reports.count, reports); /* the corrupt slab not met yet */
    assert_ptr_equal(e.kc.classes[0].partial, mid);
    unsigned char* y = kc_alloc_past_corrupt(&e, 16, mid, 1);
    assert_ptr_equal(y, p[2 * cap + freed[2]]); /* slab 2, no new slab */
    assert_null(e.kc.classes[0].partial);
    assert_int_equal(e.kc.classes[0].slabs, 3);
    assert_int_equal(tail->prev, 0); /* relinked by the rebuild (now full) */
    kc_assert_refused_corrupt(&e, p[cap]);
    kc_assert_corrupt_at(&e, 1);

    /* Put back: sound, partial, off the list, next still naming slab 2. */
    mid->check -= 0x40;
    kc_assert_corrupt_at(&e, SIZE_MAX);
    assert_int_equal(mid->next, (uintptr_t)tail);
    uintptr_t tail_prev = tail->prev;
    for (size_t i = 0; i < cap; i++) {
        if (i != freed[1]) {
            kcache_free(&e.kc, p[cap + i]);
        }
    }
    assert_int_equal(tail->prev, tail_prev); /* slab 2 not written through the stale link */
    assert_ptr_equal(e.kc.classes[0].spare, mid);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);

    /* Head and middle both corrupt: one report (the head), both skipped. */
    kc_env_make(&e, 8, 0);
    p = kc_partial_slabs(&e, 3, order, freed);
    struct unit_slab_mirror* head = (struct unit_slab_mirror*)e.pool;
    mid = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    head->shape ^= 2;
    mid->inuse ^= 1;
    unsigned char* z = kc_alloc_past_corrupt(&e, 16, head, 1);
    assert_ptr_equal(z, p[2 * cap + freed[2]]);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 1);  /* the one the class met */
    assert_int_equal(st.rebuild_corrupt_slabs, 2); /* both skipped */
    assert_int_equal(st.corruptions, 1);
    kc_assert_corrupt_at(&e, 0);
    kc_assert_refused_corrupt(&e, p[cap]);
    /* The middle one put back: its prev (the corrupt head, untouched) still
     * links to it, its next (slab 2, relinked) does not: off the list, so
     * emptying it writes through neither link. */
    mid->inuse ^= 1;
    struct unit_slab_mirror* last = (struct unit_slab_mirror*)(e.pool + 2 * UNIT_BS);
    uintptr_t saved[KC_HEADER_WORDS_FIXED];
    memcpy(saved, head, sizeof(saved));
    assert_int_equal(mid->prev, (uintptr_t)head);
    assert_int_equal(head->next, (uintptr_t)mid);
    assert_int_equal(mid->next, (uintptr_t)last);
    assert_int_equal(last->prev, 0);
    for (size_t i = 0; i < cap; i++) {
        if (i != freed[1]) {
            kcache_free(&e.kc, p[cap + i]);
        }
    }
    assert_memory_equal(saved, head, sizeof(saved));
    assert_int_equal(last->prev, 0);
    assert_ptr_equal(e.kc.classes[0].spare, mid);
    assert_int_equal(mid->next, 0);
    assert_int_equal(mid->prev, 0);
    kc_assert_corrupt_at(&e, 0);
    free(p);
    kc_env_destroy(&e);
}

/*
 * A slab dropped by a rebuild (corrupt then) whose prev is a sound slab the
 * rebuild relinked elsewhere: put back, the prev does not link to it, so it
 * is off the list and emptying it writes through neither stale link. The
 * list: slab 0 (corrupt head) -> slab 1 -> slab 2 (corrupt) -> slab 3.
 */
static void test_quarantine_stale_prev(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    static const size_t order[4] = { 3, 2, 1, 0 };
    size_t freed[4];
    void** p = kc_partial_slabs(&e, 4, order, freed);
    struct unit_slab_mirror* s[4];
    kc_mirrors(&e, s, 4);
    s[0]->check ^= 0x8;
    s[2]->bitmap[0] ^= 0x2;
    unsigned char* x = kc_alloc_past_corrupt(&e, 16, s[0], 1);
    assert_ptr_equal(x, p[cap + freed[1]]); /* slab 1 (now full), then slab 3 */
    assert_ptr_equal(e.kc.classes[0].partial, s[3]);
    assert_int_equal(e.kc.classes[0].partial_slabs, 1);
    assert_int_equal(s[1]->next, 0); /* full: on no list */
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.rebuild_corrupt_slabs, 2);

    s[2]->bitmap[0] ^= 0x2; /* put back: prev = slab 1, next = slab 3, both stale */
    assert_int_equal(s[2]->prev, (uintptr_t)s[1]);
    assert_int_equal(s[2]->next, (uintptr_t)s[3]);
    uintptr_t s1[KC_HEADER_WORDS_FIXED];
    uintptr_t s3[KC_HEADER_WORDS_FIXED];
    memcpy(s1, s[1], sizeof(s1));
    memcpy(s3, s[3], sizeof(s3));
    for (size_t i = 0; i < cap; i++) {
        if (i != freed[2]) {
            kcache_free(&e.kc, p[2 * cap + i]);
        }
    }
    assert_memory_equal(s1, s[1], sizeof(s1));
    assert_memory_equal(s3, s[3], sizeof(s3));
    assert_ptr_equal(e.kc.classes[0].spare, s[2]);
    assert_ptr_equal(e.kc.classes[0].partial, s[3]);
    kc_assert_corrupt_at(&e, 0);
    free(p);
    kc_env_destroy(&e);
}

/*
 * The rebuild meets the class's sound spare and keeps it; the object comes
 * from it (with poison on: the recovery checks the poison too).
 */
static void test_quarantine_keeps_sound_spare(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, KCACHE_FLAG_POISON);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    size_t cap = g->capacity;
    void** p = unit_xmalloc((cap + 1) * sizeof(*p));
    for (size_t i = 0; i <= cap; i++) {
        p[i] = kcache_alloc(&e.kc, 16);
    }
    struct unit_slab_mirror* s0 = (struct unit_slab_mirror*)e.pool;
    struct unit_slab_mirror* s1 = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    kcache_free(&e.kc, p[cap]); /* slab 1 empty: the spare */
    kcache_free(&e.kc, p[4]);   /* slab 0 partial: the head */
    assert_ptr_equal(e.kc.classes[0].spare, s1);
    assert_ptr_equal(e.kc.classes[0].partial, s0);
    s0->shape ^= 1; /* the other geometry: the seal no longer matches */
    unsigned char* q = kc_alloc_past_corrupt(&e, 16, s0, 1);
    assert_ptr_equal(q, (unsigned char*)s1 + g->offset);
    assert_null(e.kc.classes[0].spare);
    assert_ptr_equal(e.kc.classes[0].partial, s1);
    assert_int_equal(e.kc.use_after_free, 0);
    kc_assert_corrupt_at(&e, 0);
    free(p);
    kc_env_destroy(&e);
}

/*
 * Two slabs that fail in one kmalloc: the corrupt head, then a spare forged
 * with a valid seal whose bitmap is full while inuse is 0 (the rebuild
 * cannot vouch for it, the refill's check passes, no slot): both reported
 * and quarantined, then a new slab.
 */
static void test_quarantine_forged_spare(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    const struct kcache_geometry* g = &e.kc.classes[0].geometry[0];
    size_t cap = g->capacity;
    void** p = unit_xmalloc((cap + 1) * sizeof(*p));
    for (size_t i = 0; i <= cap; i++) {
        p[i] = kcache_alloc(&e.kc, 16);
    }
    struct unit_slab_mirror* s0 = (struct unit_slab_mirror*)e.pool;
    struct unit_slab_mirror* s1 = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    kcache_free(&e.kc, p[cap]); /* slab 1: the spare */
    kcache_free(&e.kc, p[0]);   /* slab 0: the head */
    memset(s1->bitmap, 0xFF, g->words * sizeof(uintptr_t));
    kc_reseal(&e.kc, s1);
    s0->inuse ^= 0x10;
    size_t reports = e.u.reports.count;
    unsigned char* q = kcache_alloc(&e.kc, 16);
    assert_ptr_equal(q, e.pool + 2 * UNIT_BS + g->offset);
    assert_int_equal(e.u.reports.count, reports + 2);
    assert_ptr_equal(e.u.reports.last.ptr, s1);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.quarantined_slabs, 2);
    assert_int_equal(st.list_rebuilds, 2);
    assert_int_equal(st.rebuild_corrupt_slabs, 2);
    assert_int_equal(st.corruptions, 2);
    assert_null(e.kc.classes[0].spare);
    unit_assert_table(&e.u.heap, "43 43 43 00");
    kc_assert_corrupt_at(&e, 0);
    free(p);
    kc_env_destroy(&e);
}

/* Full -> partial writes the list head's link without trusting it: a corrupt
 * head stays exactly as corrupt, and is caught on its next use. */
static void test_corrupt_neighbour_stays_corrupt(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    void** p = unit_xmalloc((cap + 1) * sizeof(*p));
    for (size_t i = 0; i <= cap; i++) {
        p[i] = kcache_alloc(&e.kc, 16);
    }
    struct unit_slab_mirror* first = (struct unit_slab_mirror*)e.pool;                /* full */
    struct unit_slab_mirror* second = (struct unit_slab_mirror*)(e.pool + UNIT_BS);   /* partial, the head */
    assert_ptr_equal(e.kc.classes[0].partial, second);
    second->bitmap[1] ^= 0x4; /* corrupt the head */
    kcache_free(&e.kc, p[0]); /* first: full -> partial, pushed before the head */
    assert_ptr_equal(e.kc.classes[0].partial, first);
    assert_ptr_equal(second->prev, first);
    size_t bad = 0;
    assert_int_equal(kcache_check(&e.kc, &bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    second->bitmap[1] ^= 0x4; /* undo: the link update was exact */
    kc_assert_clean(&e);
    for (size_t i = 1; i <= cap; i++) {
        kcache_free(&e.kc, p[i]);
    }
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/*
 * The neighbour check when a slab empties (kcache.c, kcache_link_of): each
 * half of it decides on its own. The list is slab 3 -> 2 -> 1 -> 0 (class
 * 0); slab 2 (or the tail, slab 0) empties with its last kfree after one
 * header was changed as the case says (sealed with the secret unless it is
 * meant to be corrupt). Then: unlinked (both neighbours sound, of the class,
 * linking back), left alone as off the list (a neighbour that links
 * elsewhere, is no slab, is of another class, or a NULL prev while it is not
 * the head), or the corrupt neighbour quarantined and the list rebuilt.
 */
enum kc_neighbour_case
{
    KC_NB_LINKED,          /* nothing changed: unlinked */
    KC_NB_TAIL,            /* slab 0 (next NULL) empties: unlinked */
    KC_NB_NEXT_ELSEWHERE,  /* slab 1's prev names slab 0 */
    KC_NB_PREV_ELSEWHERE,  /* slab 3's next names slab 0 */
    KC_NB_PREV_NULL,       /* slab 2's prev is NULL, but slab 3 is the head */
    KC_NB_NEXT_NOT_A_SLAB, /* slab 2's next names a plain allocation */
    KC_NB_NEXT_OTHER_CLASS,/* slab 2's next names a class-1 slab whose prev names slab 2 */
    KC_NB_NEXT_CORRUPT,    /* slab 1's check broken */
    KC_NB_PREV_CORRUPT,    /* slab 3's check broken */
    KC_NB_BOTH_CORRUPT,    /* both */
    KC_NB_CORRUPT_AND_ELSEWHERE, /* slab 3 broken, slab 1's prev names slab 0 */
};

static void neighbour_case(enum kc_neighbour_case how)
{
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    static const size_t order[4] = { 0, 1, 2, 3 };
    size_t freed[4];
    void** p = kc_partial_slabs(&e, 4, order, freed);
    struct unit_slab_mirror* s[4];
    kc_mirrors(&e, s, 4);
    unsigned char* other = kcache_alloc(&e.kc, 32); /* slab 4, class 1 */
    unsigned char* plain = kcache_alloc(&e.kc, 3000); /* block 5 */
    struct unit_slab_mirror* s4 = (struct unit_slab_mirror*)(e.pool + 4 * UNIT_BS);
    assert_ptr_equal(plain, e.pool + 5 * UNIT_BS);
    size_t m = how == KC_NB_TAIL ? 0 : 2; /* the slab that empties */
    for (size_t i = 1; i < cap; i++) {
        if (i != freed[m]) {
            kcache_free(&e.kc, p[m * cap + i]);
        }
    }
    switch (how) {
    case KC_NB_NEXT_ELSEWHERE:
    case KC_NB_CORRUPT_AND_ELSEWHERE:
        s[1]->prev = (uintptr_t)s[0];
        kc_reseal(&e.kc, s[1]);
        s[3]->check ^= (how == KC_NB_CORRUPT_AND_ELSEWHERE) ? 1u : 0u;
        break;
    case KC_NB_PREV_ELSEWHERE:
        s[3]->next = (uintptr_t)s[0];
        kc_reseal(&e.kc, s[3]);
        break;
    case KC_NB_PREV_NULL:
        s[2]->prev = 0;
        kc_reseal(&e.kc, s[2]);
        break;
    case KC_NB_NEXT_NOT_A_SLAB:
        s[2]->next = (uintptr_t)plain;
        kc_reseal(&e.kc, s[2]);
        break;
    case KC_NB_NEXT_OTHER_CLASS:
        s[2]->next = (uintptr_t)s4;
        kc_reseal(&e.kc, s[2]);
        s4->prev = (uintptr_t)s[2];
        kc_reseal(&e.kc, s4);
        break;
    case KC_NB_NEXT_CORRUPT:
    case KC_NB_PREV_CORRUPT:
    case KC_NB_BOTH_CORRUPT:
        s[1]->check ^= how != KC_NB_PREV_CORRUPT ? 1u : 0u;
        s[3]->check ^= how != KC_NB_NEXT_CORRUPT ? 1u : 0u;
        break;
    default:
        break;
    }
    uintptr_t before[6][KC_HEADER_WORDS_FIXED];
    for (size_t k = 0; k < 4; k++) {
        memcpy(before[k], s[k], sizeof(before[k]));
    }
    memcpy(before[4], s4, sizeof(before[4]));
    memcpy(before[5], plain, sizeof(before[5]));
    struct kcache_class* c = &e.kc.classes[0];
    size_t reports = e.u.reports.count;
    kcache_free(&e.kc, p[m * cap]); /* the last object: slab m is empty */
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(e.u.heap.rejected_frees, 0);
    assert_ptr_equal(c->spare, s[m]);
    assert_int_equal(s[m]->next, 0);
    assert_int_equal(s[m]->prev, 0);
    assert_memory_equal(before[4] + 3, (uintptr_t*)s4 + 3, 2 * sizeof(uintptr_t)); /* slab 4 */
    assert_memory_equal(before[5], plain, sizeof(before[5]));                       /* never written */
    switch (how) {
    case KC_NB_LINKED:
        assert_int_equal(s[3]->next, (uintptr_t)s[1]);
        assert_int_equal(s[1]->prev, (uintptr_t)s[3]);
        assert_int_equal(c->partial_slabs, 3);
        kc_assert_clean(&e);
        break;
    case KC_NB_TAIL:
        assert_int_equal(s[1]->next, 0);
        assert_int_equal(c->partial_slabs, 3);
        kc_assert_clean(&e);
        break;
    case KC_NB_NEXT_CORRUPT:
    case KC_NB_PREV_CORRUPT:
    case KC_NB_BOTH_CORRUPT: {
        size_t bad = how == KC_NB_PREV_CORRUPT ? 3 : 1;
        size_t n = how == KC_NB_BOTH_CORRUPT ? 2 : 1;
        assert_int_equal(e.u.reports.count, reports + n);
        assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_CACHE_QUARANTINE);
        assert_ptr_equal(e.u.reports.last.ptr, how == KC_NB_PREV_CORRUPT ? s[3] : s[1]);
        assert_int_equal(st.quarantined_slabs, n);
        assert_int_equal(st.corruptions, n);
        assert_int_equal(st.list_rebuilds, 1);
        assert_int_equal(st.rebuild_corrupt_slabs, n);
        assert_int_equal(c->partial_slabs, 3 - n); /* rebuilt: the sound partial slabs, table order */
        assert_ptr_equal(c->partial, s[0]);
        assert_memory_equal(before[bad], s[bad], sizeof(before[bad])); /* nothing written to a corrupt header */
        kc_assert_corrupt_at(&e, 1 + (how == KC_NB_PREV_CORRUPT ? 2 : 0));
        break;
    }
    default: /* off the list: neither neighbour written, nothing reported */
        assert_int_equal(e.u.reports.count, reports);
        assert_int_equal(st.list_rebuilds, 0);
        assert_int_equal(c->partial_slabs, 4);
        assert_ptr_equal(c->partial, s[3]);
        for (size_t k = 0; k < 4; k++) {
            if (k != m) {
                assert_memory_equal(before[k], s[k], sizeof(before[k]));
            }
        }
        break;
    }
    free(p);
    (void)other;
    kc_env_destroy(&e);
}

static void test_neighbour_checks(void** state)
{
    (void)state;
    for (int how = KC_NB_LINKED; how <= KC_NB_CORRUPT_AND_ELSEWHERE; how++) {
        neighbour_case((enum kc_neighbour_case)how);
    }
}

/* ------------------------------------------------------- kcache_check */

static void expect_corrupt(struct kc_env* e, size_t want_bad)
{
    size_t bad = 12345;
    assert_int_equal(kcache_check(&e->kc, &bad), -ECORRUPT);
    assert_int_equal(bad, want_bad);
    assert_int_equal(kcache_check(&e->kc, NULL), -ECORRUPT);
}

static void test_check_counters(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    void* a = kcache_alloc(&e.kc, 16);
    void* b = kcache_alloc(&e.kc, 600);
    (void)a;
    (void)b;
    kc_assert_clean(&e);
    size_t* counters[] = { &e.kc.slabs, &e.kc.slab_blocks, &e.kc.classes[0].slabs, &e.kc.classes[0].objects,
                           &e.kc.classes[0].partial_slabs, &e.kc.classes[32].objects };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        (*counters[i])++;
        expect_corrupt(&e, SIZE_MAX);
        (*counters[i])--;
        kc_assert_clean(&e);
    }
    uintptr_t pool = e.kc.pool; /* the copies of the heap's geometry */
    e.kc.pool += UNIT_BS;
    expect_corrupt(&e, SIZE_MAX);
    e.kc.pool = pool;
    e.kc.blocks--;
    expect_corrupt(&e, SIZE_MAX);
    e.kc.blocks++;
    HEAP_BLOCK_TABLE_ENTRY* entries = e.kc.entries;
    e.kc.entries = NULL;
    expect_corrupt(&e, SIZE_MAX);
    e.kc.entries = entries;
    kc_assert_clean(&e);
    e.u.heap.used_blocks++; /* heap_check runs first */
    expect_corrupt(&e, SIZE_MAX);
    e.u.heap.used_blocks--;
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

static void test_check_lists(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    void** p = unit_xmalloc(cap * sizeof(*p));
    for (size_t i = 0; i < cap; i++) {
        p[i] = kcache_alloc(&e.kc, 16); /* slab 0: full */
    }
    void* q = kcache_alloc(&e.kc, 16); /* slab 1: partial */
    void* r = kcache_alloc(&e.kc, 32); /* slab 2: class 1, partial */
    kcache_free(&e.kc, kcache_alloc(&e.kc, 48)); /* slab 3: class 2 spare */
    unit_assert_table(&e.u.heap, "43 43 43 43 00 00 00 00");
    kc_assert_clean(&e);
    struct kcache_class* c0 = &e.kc.classes[0];
    struct kcache_class* c2 = &e.kc.classes[2];
    struct kcache_slab* saved;

    saved = c0->partial; /* partial list pointing at garbage, a full slab, another class */
    c0->partial = (struct kcache_slab*)(e.pool + 5 * UNIT_BS);
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = (struct kcache_slab*)(e.pool + 8);
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = (struct kcache_slab*)(uintptr_t)0x10;
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = (struct kcache_slab*)e.pool;
    expect_corrupt(&e, 0);
    c0->partial = (struct kcache_slab*)(e.pool + 2 * UNIT_BS);
    expect_corrupt(&e, 2);
    c0->partial = NULL; /* a partial slab on no list */
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = saved;
    kc_assert_clean(&e);

    /* A list that loops on itself (sealed properly, as with the secret). */
    struct unit_slab_mirror* s1 = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    s1->next = (uintptr_t)s1;
    kc_reseal(&e.kc, s1);
    expect_corrupt(&e, 1);
    s1->next = 0;
    kc_reseal(&e.kc, s1);
    kc_assert_clean(&e);
    /* A full slab with links. */
    struct unit_slab_mirror* s0 = (struct unit_slab_mirror*)e.pool;
    s0->prev = (uintptr_t)s1;
    kc_reseal(&e.kc, s0);
    expect_corrupt(&e, 0);
    s0->prev = 0;
    kc_reseal(&e.kc, s0);
    kc_assert_clean(&e);

    saved = c2->spare; /* the spare: gone, garbage, a partial slab, another class */
    c2->spare = NULL;
    expect_corrupt(&e, 3);
    c2->spare = (struct kcache_slab*)(e.pool + 6 * UNIT_BS);
    expect_corrupt(&e, 3);
    c2->spare = (struct kcache_slab*)(e.pool + UNIT_BS);
    expect_corrupt(&e, 3);
    c2->spare = saved;
    e.kc.classes[1].spare = saved;
    expect_corrupt(&e, 3);
    e.kc.classes[1].spare = NULL;
    c0->spare = (struct kcache_slab*)(e.pool + UNIT_BS); /* a partial slab as spare */
    expect_corrupt(&e, 1);
    c0->spare = NULL;
    kc_assert_clean(&e);

    /* A CACHE allocation that is no slab. */
    unsigned char* foreign = heap_malloc_blocks_typed(&e.u.heap, 1, HEAP_BLOCK_TYPE_CACHE);
    assert_ptr_equal(foreign, e.pool + 4 * UNIT_BS);
    memset(foreign, 0, UNIT_BS);
    expect_corrupt(&e, 4);
    heap_free_typed(&e.u.heap, foreign, HEAP_BLOCK_TYPE_CACHE);
    kc_assert_clean(&e);

    for (size_t i = 0; i < cap; i++) {
        kcache_free(&e.kc, p[i]);
    }
    kcache_free(&e.kc, q);
    kcache_free(&e.kc, r);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}


/*
 * The list walk of kcache_check, half by half: a prev that names another
 * slab of the list (not NULL, not the one before), and an empty slab (the
 * spare) made the list's only member while the real partial slab is off it
 * with the same count (so only the walk's inuse test can tell).
 */
static void test_check_list_links(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    static const size_t order[3] = { 0, 1, 2 }; /* list: slab 2, 1, 0 */
    size_t freed[3];
    void** p = kc_partial_slabs(&e, 3, order, freed);
    struct unit_slab_mirror* s0 = (struct unit_slab_mirror*)e.pool;
    struct unit_slab_mirror* s2 = (struct unit_slab_mirror*)(e.pool + 2 * UNIT_BS);
    assert_int_equal(s0->prev, (uintptr_t)(e.pool + UNIT_BS));
    s0->prev = (uintptr_t)s2;
    kc_reseal(&e.kc, s0);
    expect_corrupt(&e, 0);
    s0->prev = (uintptr_t)(e.pool + UNIT_BS);
    kc_reseal(&e.kc, s0);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);

    kc_env_make(&e, 4, 0);
    size_t cap = e.kc.classes[0].geometry[0].capacity;
    p = unit_xmalloc((cap + 1) * sizeof(*p));
    for (size_t i = 0; i <= cap; i++) {
        p[i] = kcache_alloc(&e.kc, 16);
    }
    kcache_free(&e.kc, p[cap]); /* slab 1 empty: the spare */
    kcache_free(&e.kc, p[0]);   /* slab 0 partial: the list, alone */
    struct kcache_class* c = &e.kc.classes[0];
    assert_ptr_equal(c->partial, e.pool);
    assert_ptr_equal(c->spare, e.pool + UNIT_BS);
    kc_assert_clean(&e);
    c->partial = c->spare; /* one member, one partial slab: counts agree */
    expect_corrupt(&e, 1);
    c->partial = (struct kcache_slab*)e.pool;
    kc_assert_clean(&e);
    for (size_t i = 1; i < cap; i++) {
        kcache_free(&e.kc, p[i]);
    }
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* Headers that pass the checksum (as forged with the secret) but break an
 * invariant: kcache_check still finds them. */
static void test_check_sealed_lies(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    void* a = kcache_alloc(&e.kc, 16);
    void* b = kcache_alloc(&e.kc, 80); /* 2-block slab at 1 */
    struct unit_slab_mirror* s = (struct unit_slab_mirror*)e.pool;
    struct unit_slab_mirror* s2 = (struct unit_slab_mirror*)(e.pool + UNIT_BS);
    kc_assert_clean(&e);

    s->inuse = 2; /* bitmap says 1 */
    kc_reseal(&e.kc, s);
    expect_corrupt(&e, 0);
    s->inuse = 1;
    kc_reseal(&e.kc, s);
    kc_assert_clean(&e);

    size_t words = e.kc.classes[0].geometry[0].words;
    uintptr_t last = s->bitmap[words - 1];
    s->bitmap[words - 1] &= ~((uintptr_t)1 << (KC_WORD_BITS - 1)); /* a padding bit */
    kc_reseal(&e.kc, s);
    expect_corrupt(&e, 0);
    s->bitmap[words - 1] = last;
    kc_reseal(&e.kc, s);
    kc_assert_clean(&e);

    size_t offset = e.kc.classes[0].geometry[0].offset;
    if (offset > sizeof(struct unit_slab_mirror) + words * sizeof(uintptr_t)) {
        e.pool[offset - 1] = 1; /* the gap before object 0 (not sealed: checked apart) */
        expect_corrupt(&e, 0);
        e.pool[offset - 1] = 0;
        kc_assert_clean(&e);
    }

    s2->shape = (uintptr_t)(kcache_class_of(80) << 1 | KCACHE_SINGLE); /* 1 block, table says 2 */
    kc_reseal(&e.kc, s2);
    expect_corrupt(&e, 1);
    s2->shape = (uintptr_t)(kcache_class_of(80) << 1 | KCACHE_PREFERRED);
    kc_reseal(&e.kc, s2);
    kc_assert_clean(&e);

    s->shape = 1 << 1; /* class 1 (32 bytes): counters of classes 0 and 1 disagree */
    kc_reseal(&e.kc, s);
    expect_corrupt(&e, 0); /* the partial head of class 0 is now a class-1 slab */
    s->shape = 0;
    kc_reseal(&e.kc, s);
    kc_assert_clean(&e);

    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ---------------------------------------------------------------- poison */

static void test_poison(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, KCACHE_FLAG_POISON);
    const struct kcache_geometry* g = &e.kc.classes[3].geometry[0]; /* 64 bytes */
    unsigned char* a = kcache_alloc(&e.kc, 64);
    unsigned char* b = kcache_alloc(&e.kc, 64);
    /* A new slab's free objects are poisoned. */
    for (size_t slot = 2; slot < g->capacity; slot++) {
        for (size_t i = 0; i < 64; i++) {
            assert_int_equal(e.pool[g->offset + slot * 64 + i], KCACHE_POISON_BYTE);
        }
    }
    memset(a, 0, 64);
    memset(b, 0, 64);
    kcache_free(&e.kc, a);
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(a[i], KCACHE_POISON_BYTE);
    }
    kc_assert_clean(&e);
    /* A write after free: kcache_check sees it, the next allocation reports it. */
    a[40] = 0;
    size_t bad = 0;
    assert_int_equal(kcache_check(&e.kc, &bad), -ECORRUPT);
    assert_int_equal(bad, 0);
    size_t reports = e.u.reports.count;
    unsigned char* again = kcache_alloc(&e.kc, 64);
    assert_ptr_equal(again, a); /* handed out all the same, after the report */
    assert_int_equal(e.u.reports.count, reports + 1);
    assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_CACHE_USE_AFTER_FREE);
    assert_ptr_equal(e.u.reports.last.ptr, a);
    assert_int_equal(e.u.reports.last.block, 0);
    assert_int_equal(e.kc.use_after_free, 1);
    assert_int_equal(e.u.heap.rejected_frees, 0);
    kc_assert_clean(&e);
    /* Untouched poison: no report. */
    kcache_free(&e.kc, b);
    assert_ptr_equal(kcache_alloc(&e.kc, 64), b);
    assert_int_equal(e.u.reports.count, reports + 1);
    /* A write after free into a later block of a multi-block slab. */
    unsigned char* m = kcache_alloc(&e.kc, 300);
    kcache_free(&e.kc, m);
    m[303] ^= 1;
    assert_int_equal(kcache_check(&e.kc, &bad), -ECORRUPT);
    assert_int_equal(bad, (size_t)(m + 303 - e.pool) / UNIT_BS);
    m[303] ^= 1;
    kc_assert_clean(&e);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.use_after_free, 1);
    kc_env_destroy(&e);
}

/* Without the flag freed objects keep their bytes. */
static void test_no_poison_by_default(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    unsigned char* a = kcache_alloc(&e.kc, 64);
    kcache_alloc(&e.kc, 64);
    memset(a, 0x11, 64);
    kcache_free(&e.kc, a);
    assert_int_equal(a[10], 0x11);
    a[10] = 0;
    kc_assert_clean(&e);
    assert_ptr_equal(kcache_alloc(&e.kc, 64), a);
    assert_int_equal(e.u.reports.count, 0);
    kc_env_destroy(&e);
}

/* ----------------------------------------------------------------- stats */

static void test_stats(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 16, 0);
    void* a = kcache_alloc(&e.kc, 10);
    void* b = kcache_alloc(&e.kc, 20);
    void* c = kcache_alloc(&e.kc, 700);
    void* d = kcache_alloc(&e.kc, 5000);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    size_t c700 = kcache_class_of(700);
    assert_int_equal(st.objects, 3);
    assert_int_equal(st.object_bytes, 16 + 32 + 768);
    assert_int_equal(st.slabs, 3);
    assert_int_equal(st.slab_blocks, 2 + e.kc.classes[c700].geometry[0].blocks);
    assert_int_equal(st.spare_slabs, 0);
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(st.forced_failures, 0);
    assert_int_equal(st.quarantined_slabs, 0);
    assert_int_equal(st.list_rebuilds, 0);
    assert_int_equal(st.rebuild_corrupt_slabs, 0);
    kcache_free(&e.kc, a);
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.spare_slabs, 1);
    assert_int_equal(st.objects, 2);
    kcache_free(&e.kc, b);
    kcache_free(&e.kc, c);
    kcache_free(&e.kc, d);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------ a random workout */

/* Seeded random mixed workload on a small heap, contents checked. */
static void test_random_workout(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 64, KCACHE_FLAG_POISON);
    enum { SLOTS = 256 };
    unsigned char* p[SLOTS] = { 0 };
    size_t len[SLOTS] = { 0 };
    uint64_t rng = 42;
    for (size_t op = 0; op < 60000; op++) {
        size_t i = unit_rand(&rng) % SLOTS;
        if (p[i] != NULL) {
            for (size_t j = 0; j < len[i]; j++) {
                assert_int_equal(p[i][j], (unsigned char)(i ^ j));
            }
            kcache_free(&e.kc, p[i]);
            p[i] = NULL;
            continue;
        }
        uint32_t r = unit_rand(&rng);
        len[i] = r % 8 == 0 ? 1 + r % (3 * UNIT_BS) : 1 + r % 600;
        p[i] = kcache_alloc(&e.kc, len[i]);
        if (p[i] != NULL) {
            for (size_t j = 0; j < len[i]; j++) {
                p[i][j] = (unsigned char)(i ^ j);
            }
        }
        if (op % 4096 == 0) {
            kc_assert_clean(&e);
        }
    }
    for (size_t i = 0; i < SLOTS; i++) {
        kcache_free(&e.kc, p[i]);
    }
    assert_int_equal(e.u.heap.rejected_frees, 0);
    assert_int_equal(e.u.reports.count, 0);
    kc_assert_clean(&e);
    kcache_trim(&e.kc);
    assert_int_equal(e.u.heap.used_blocks, 0);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------------- krealloc */

static void test_realloc_null_and_zero(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    unsigned char* p = kcache_realloc(&e.kc, NULL, 100); /* = kcache_alloc */
    assert_non_null(p);
    assert_int_equal(kcache_size(&e.kc, p), 112);
    assert_null(kcache_realloc(&e.kc, p, 0)); /* frees */
    assert_int_equal(kcache_size(&e.kc, p), 0);
    assert_int_equal(e.kc.classes[kcache_class_of(100)].objects, 0);
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_realloc(&e.kc, NULL, 0));
    kc_assert_unchanged(&e, &s, 0, 0);
    unsigned char* b = kcache_realloc(&e.kc, NULL, 5000);
    assert_ptr_equal(b, e.pool + UNIT_BS);
    assert_null(kcache_realloc(&e.kc, b, 0));
    unit_assert_table(&e.u.heap, "43 00 00 00");
    assert_int_equal(e.u.heap.rejected_frees, 0);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

static void test_realloc_small(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    unsigned char* p = kcache_alloc(&e.kc, 20);
    for (size_t i = 0; i < 32; i++) {
        p[i] = (unsigned char)(0xA0 + i);
    }
    assert_ptr_equal(kcache_realloc(&e.kc, p, 32), p); /* the class still fits */
    assert_ptr_equal(kcache_realloc(&e.kc, p, 1), p);  /* never moves to shrink */
    assert_int_equal(kcache_size(&e.kc, p), 32);
    unsigned char* q = kcache_realloc(&e.kc, p, 33);   /* next class: moves */
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    assert_int_equal(kcache_size(&e.kc, q), 48);
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(q[i], 0xA0 + i);
    }
    assert_int_equal(kcache_size(&e.kc, p), 0); /* the old one was freed */
    kc_assert_refused(&e, p, HEAP_REPORT_CACHE_BAD_FREE);
    for (size_t i = 32; i < 48; i++) {
        q[i] = (unsigned char)(0xA0 + i);
    }
    unsigned char* big = kcache_realloc(&e.kc, q, 5000); /* small -> whole blocks */
    assert_non_null(big);
    assert_int_equal((uintptr_t)(big - e.pool) % UNIT_BS, 0);
    assert_int_equal(kcache_size(&e.kc, big), 2 * UNIT_BS);
    for (size_t i = 0; i < 48; i++) {
        assert_int_equal(big[i], 0xA0 + i);
    }
    assert_int_equal(kcache_size(&e.kc, q), 0);
    kcache_free(&e.kc, big);
    assert_int_equal(e.u.heap.rejected_frees, 1);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

static void fill(unsigned char* p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed + i * 7);
    }
}

static void assert_filled(const unsigned char* p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed + i * 7)) {
            fail_msg("byte %zu differs", i);
        }
    }
}

static void test_realloc_blocks(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 10, 0);
    unsigned char* a = kcache_palloc(&e.kc, 3 * UNIT_BS);
    fill(a, 3 * UNIT_BS, 1);
    unit_assert_table(&e.u.heap, "C1 81 01 00 00 00 00 00 00 00");
    assert_ptr_equal(kcache_realloc(&e.kc, a, 2 * UNIT_BS), a); /* shrink in place */
    unit_assert_table(&e.u.heap, "C1 01 00 00 00 00 00 00 00 00");
    assert_ptr_equal(kcache_realloc(&e.kc, a, 2 * UNIT_BS - 1), a); /* same blocks */
    assert_ptr_equal(kcache_realloc(&e.kc, a, 1), a); /* stays whole blocks: kpalloc memory stays aligned */
    unit_assert_table(&e.u.heap, "41 00 00 00 00 00 00 00 00 00");
    assert_filled(a, UNIT_BS, 1);
    fill(a, UNIT_BS, 2);
    assert_ptr_equal(kcache_realloc(&e.kc, a, 3 * UNIT_BS), a); /* grow in place */
    unit_assert_table(&e.u.heap, "C1 81 01 00 00 00 00 00 00 00");
    assert_filled(a, UNIT_BS, 2);
    fill(a, 3 * UNIT_BS, 3);
    unsigned char* b = kcache_palloc(&e.kc, 1);
    assert_ptr_equal(b, e.pool + 3 * UNIT_BS);
    unsigned char* m = kcache_realloc(&e.kc, a, 4 * UNIT_BS); /* blocked: moves */
    assert_ptr_equal(m, e.pool + 4 * UNIT_BS);
    unit_assert_table(&e.u.heap, "00 00 00 41 C1 81 81 01 00 00");
    assert_filled(m, 3 * UNIT_BS, 3);
    kc_assert_refused(&e, a, HEAP_REPORT_FREE_NOT_ALLOCATED);
    /* Grow in place up to the end of the heap, not beyond. */
    assert_ptr_equal(kcache_realloc(&e.kc, m, 6 * UNIT_BS), m);
    unit_assert_table(&e.u.heap, "00 00 00 41 C1 81 81 81 81 01");
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_realloc(&e.kc, m, 7 * UNIT_BS)); /* nowhere to go */
    assert_null(kcache_realloc(&e.kc, m, SIZE_MAX));
    e.u.heap.failed_allocs = s.heap.failed_allocs;
    kc_assert_unchanged(&e, &s, 0, 0);
    kcache_free(&e.kc, m);
    kcache_free(&e.kc, b);
    unit_assert_table(&e.u.heap, "00 00 00 00 00 00 00 00 00 00");
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* A failed move leaves the small object where it was, intact. */
static void test_realloc_small_out_of_memory(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    unsigned char* p = kcache_alloc(&e.kc, 64);
    fill(p, 64, 9);
    void* rest = kcache_palloc(&e.kc, 1);
    assert_non_null(rest);
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_realloc(&e.kc, p, 65));   /* needs a new slab: none */
    assert_null(kcache_realloc(&e.kc, p, 3000)); /* needs a block: none */
    assert_null(kcache_realloc(&e.kc, p, SIZE_MAX));
    e.u.heap.failed_allocs = s.heap.failed_allocs;
    kc_assert_unchanged(&e, &s, 0, 0);
    assert_filled(p, 64, 9);
    kcache_free(&e.kc, p);
    kcache_free(&e.kc, rest);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* krealloc of a pointer kfree would refuse: refused the same way, NULL. */
static void kc_assert_realloc_refused_(struct kc_env* e, void* ptr, enum heap_report_kind kind, const char* file,
                                       int line)
{
    struct kc_snapshot s;
    kc_snapshot_take(e, &s);
    void* r = kcache_realloc(&e->kc, ptr, 100);
    size_t corruptions = kind == HEAP_REPORT_FREE_CORRUPT && e->kc.corruptions != s.kc.corruptions;
    kc_assert_unchanged_(e, &s, 1, corruptions, file, line);
    if (r != NULL || e->u.reports.count != s.reports + 1 || e->u.reports.last.kind != kind ||
        e->u.reports.last.ptr != ptr) {
        print_error("krealloc(%p): got %p, %zu reports, kind %d\n", ptr, r, e->u.reports.count - s.reports,
                    (int)e->u.reports.last.kind);
        _fail(file, line);
    }
    if (kcache_size(&e->kc, ptr) != 0) {
        print_error("ksize(%p) of a refused pointer is not 0\n", ptr);
        _fail(file, line);
    }
}
#define kc_assert_realloc_refused(e, ptr, kind) kc_assert_realloc_refused_((e), (ptr), (kind), __FILE__, __LINE__)

static void test_realloc_bad_pointers(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    unsigned char* p = kcache_alloc(&e.kc, 48);
    unsigned char* q = kcache_alloc(&e.kc, 48);
    unsigned char* b = kcache_palloc(&e.kc, 2 * UNIT_BS);
    int local = 0;
    kc_assert_realloc_refused(&e, p + 16, HEAP_REPORT_CACHE_BAD_FREE);
    kc_assert_realloc_refused(&e, e.pool, HEAP_REPORT_CACHE_BAD_FREE);
    kc_assert_realloc_refused(&e, q + 48, HEAP_REPORT_CACHE_BAD_FREE);
    kc_assert_realloc_refused(&e, b + 8, HEAP_REPORT_FREE_UNALIGNED);
    kc_assert_realloc_refused(&e, b + UNIT_BS, HEAP_REPORT_FREE_INTERIOR);
    kc_assert_realloc_refused(&e, e.pool + 6 * UNIT_BS, HEAP_REPORT_FREE_NOT_ALLOCATED);
    kc_assert_realloc_refused(&e, &local, HEAP_REPORT_FREE_OUTSIDE);
    kcache_free(&e.kc, p);
    kc_assert_realloc_refused(&e, p, HEAP_REPORT_CACHE_BAD_FREE); /* freed */
    /* A plain chain broken in the table: refused as heap_free refuses it. */
    HEAP_BLOCK_TABLE_ENTRY* t = e.u.heap.table->entries;
    assert_int_equal(t[1], 0xC1);
    assert_int_equal(t[2], 0x01);
    static const HEAP_BLOCK_TABLE_ENTRY broken[] = {
        0x41, /* the last block claims to be a first block */
        0x03, /* the last block belongs to the caches */
        0x81, /* the chain runs on into the free block 3 */
        0x11, /* a reserved bit */
    };
    for (size_t i = 0; i < sizeof(broken); i++) {
        t[2] = broken[i];
        kc_assert_realloc_refused(&e, b, HEAP_REPORT_FREE_CORRUPT);
    }
    t[2] = 0x01;
    kc_assert_clean(&e);
    kcache_free(&e.kc, q);
    kcache_free(&e.kc, b);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------------ ksize */

static void test_size(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    unsigned char* p = kcache_alloc(&e.kc, 1);
    unsigned char* q = kcache_alloc(&e.kc, 2000);
    unsigned char* b = kcache_alloc(&e.kc, 2049);
    unsigned char* c = kcache_palloc(&e.kc, 1);
    int local = 0;
    assert_int_equal(kcache_size(&e.kc, NULL), 0);
    assert_int_equal(kcache_size(&e.kc, p), 16);
    assert_int_equal(kcache_size(&e.kc, q), 2048);
    assert_int_equal(kcache_size(&e.kc, b), UNIT_BS);
    assert_int_equal(kcache_size(&e.kc, c), UNIT_BS);
    assert_int_equal(kcache_size(&e.kc, p + 1), 0);
    assert_int_equal(kcache_size(&e.kc, p + 16), 0); /* free slot */
    assert_int_equal(kcache_size(&e.kc, e.pool), 0);  /* header */
    assert_int_equal(kcache_size(&e.kc, b + 16), 0);
    assert_int_equal(kcache_size(&e.kc, &local), 0);
    assert_int_equal(kcache_size(&e.kc, e.pool + 7 * UNIT_BS), 0);
    size_t reports = e.u.reports.count;
    kcache_free(&e.kc, p);
    assert_int_equal(kcache_size(&e.kc, p), 0);
    assert_int_equal(e.u.reports.count, reports); /* ksize never reports */
    kcache_free(&e.kc, q);
    kcache_free(&e.kc, b);
    kcache_free(&e.kc, c);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------ fault injection */

struct fault
{
    unsigned mask;      /* sites (1 << site) that fail */
    size_t calls[8];    /* attempts seen per site */
};

static bool fault_fn(void* ctx, enum kcache_fault_site site)
{
    struct fault* f = (struct fault*)ctx;
    f->calls[site]++;
    return (f->mask & (1u << site)) != 0;
}

/* A forced failure: NULL, one forced_failures more, nothing else changed. */
#define assert_forced_null(e, s, expr)                 \
    do {                                               \
        kc_snapshot_take((e), (s));                    \
        assert_null(expr);                             \
        (s)->kc.forced_failures++;                     \
        kc_assert_unchanged((e), (s), 0, 0);           \
    } while (0)

static void test_fault_slab_and_blocks(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    struct fault f = { 1u << KCACHE_FAULT_SLAB, { 0 } };
    kcache_set_fault(&e.kc, fault_fn, &f);
    struct kc_snapshot s;
    assert_forced_null(&e, &s, kcache_alloc(&e.kc, 16)); /* cache growth fails */
    assert_int_equal(f.calls[KCACHE_FAULT_SLAB], 1);
    void* big = kcache_alloc(&e.kc, 3000); /* whole blocks are another site */
    assert_non_null(big);
    assert_int_equal(f.calls[KCACHE_FAULT_BLOCKS], 1);

    f.mask = 0;
    void* a = kcache_alloc(&e.kc, 16);
    void* b = kcache_alloc(&e.kc, 16);
    f.mask = 1u << KCACHE_FAULT_SLAB;
    size_t calls = f.calls[KCACHE_FAULT_SLAB];
    void* c = kcache_alloc(&e.kc, 16); /* room in the slab: no growth, no hook */
    assert_non_null(c);
    assert_int_equal(f.calls[KCACHE_FAULT_SLAB], calls);
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b);
    kcache_free(&e.kc, c); /* the slab is the spare now */
    assert_non_null(c = kcache_alloc(&e.kc, 16)); /* the spare needs no growth either */
    assert_int_equal(f.calls[KCACHE_FAULT_SLAB], calls);
    kcache_free(&e.kc, c);

    f.mask = 1u << KCACHE_FAULT_BLOCKS;
    assert_forced_null(&e, &s, kcache_alloc(&e.kc, 3000));
    assert_forced_null(&e, &s, kcache_palloc(&e.kc, 1));
    assert_non_null(c = kcache_alloc(&e.kc, 100));
    kcache_free(&e.kc, c);

    kcache_set_fault(&e.kc, NULL, NULL);
    assert_non_null(c = kcache_palloc(&e.kc, 1));
    kcache_free(&e.kc, c);
    kcache_free(&e.kc, big);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.forced_failures, 3);
    kc_assert_clean(&e);
    kcache_trim(&e.kc); /* nothing leaked */
    assert_int_equal(e.u.heap.used_blocks, 0);
    kc_env_destroy(&e);
}

static void test_fault_realloc(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    struct fault f = { 0, { 0 } };
    kcache_set_fault(&e.kc, fault_fn, &f);
    struct kc_snapshot s;

    /* GROW forced: the next blocks are free, but it moves instead. */
    unsigned char* a = kcache_palloc(&e.kc, UNIT_BS);
    fill(a, UNIT_BS, 4);
    f.mask = 1u << KCACHE_FAULT_GROW;
    unsigned char* m = kcache_realloc(&e.kc, a, 2 * UNIT_BS);
    assert_ptr_equal(m, e.pool + UNIT_BS);
    unit_assert_table(&e.u.heap, "00 C1 01 00 00 00 00 00");
    assert_filled(m, UNIT_BS, 4);
    assert_int_equal(f.calls[KCACHE_FAULT_GROW], 1);
    assert_int_equal(f.calls[KCACHE_FAULT_MOVE], 1);

    /* GROW and MOVE forced: NULL, the allocation intact where it was. */
    f.mask = 1u << KCACHE_FAULT_GROW | 1u << KCACHE_FAULT_MOVE;
    kc_snapshot_take(&e, &s);
    assert_null(kcache_realloc(&e.kc, m, 3 * UNIT_BS));
    s.kc.forced_failures += 2; /* GROW, then MOVE */
    kc_assert_unchanged(&e, &s, 0, 0);
    assert_int_equal(e.kc.forced_failures, 3);
    assert_filled(m, UNIT_BS, 4);
    f.mask = 1u << KCACHE_FAULT_MOVE;
    void* filler = kcache_palloc(&e.kc, 1);
    void* blocker = kcache_palloc(&e.kc, 1);
    assert_ptr_equal(filler, e.pool);
    assert_ptr_equal(blocker, e.pool + 3 * UNIT_BS);
    assert_forced_null(&e, &s, kcache_realloc(&e.kc, m, 3 * UNIT_BS)); /* cannot grow: must move */
    unit_assert_table(&e.u.heap, "41 C1 01 41 00 00 00 00");

    /* Small objects: the move fails, the object stays. */
    unsigned char* p = kcache_alloc(&e.kc, 40);
    fill(p, 48, 5);
    assert_forced_null(&e, &s, kcache_realloc(&e.kc, p, 100));
    assert_filled(p, 48, 5);
    assert_ptr_equal(kcache_realloc(&e.kc, p, 48), p); /* in place: no allocation, no hook */
    /* MOVE allowed but the new class cannot grow. */
    f.mask = 1u << KCACHE_FAULT_SLAB;
    assert_forced_null(&e, &s, kcache_realloc(&e.kc, p, 100));
    assert_filled(p, 48, 5);
    f.mask = 1u << KCACHE_FAULT_BLOCKS; /* moving to blocks from a small object goes through kmalloc */
    assert_forced_null(&e, &s, kcache_realloc(&e.kc, p, 5000));
    f.mask = 0;
    unsigned char* moved = kcache_realloc(&e.kc, p, 100);
    assert_non_null(moved);
    assert_filled(moved, 48, 5);

    kcache_free(&e.kc, moved);
    kcache_free(&e.kc, m);
    kcache_free(&e.kc, blocker);
    kcache_free(&e.kc, filler);
    assert_int_equal(e.u.heap.rejected_frees, 0);
    kc_assert_clean(&e);
    kcache_trim(&e.kc); /* nothing leaked */
    assert_int_equal(e.u.heap.used_blocks, 0);
    assert_int_equal(e.u.heap.live_allocations, 0);
    kc_env_destroy(&e);
}

/* A forged header whose bitmap is full while inuse says otherwise: no
 * slot, so kmalloc quarantines it (the rebuild finds the bitmap wrong too)
 * and uses a new slab. */
static void test_sealed_full_bitmap(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 2, 0);
    void* a = kcache_alloc(&e.kc, 16);
    struct unit_slab_mirror* s = (struct unit_slab_mirror*)e.pool;
    size_t words = e.kc.classes[0].geometry[0].words;
    uintptr_t saved[64];
    memcpy(saved, s->bitmap, words * sizeof(uintptr_t));
    memset(s->bitmap, 0xFF, words * sizeof(uintptr_t));
    kc_reseal(&e.kc, s);
    unsigned char* b = kc_alloc_past_corrupt(&e, 16, s, 1);
    assert_ptr_equal(b, e.pool + UNIT_BS + e.kc.classes[0].geometry[0].offset);
    struct kcache_stats st;
    kcache_get_stats(&e.kc, &st);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    kc_assert_corrupt_at(&e, 0);
    memcpy(s->bitmap, saved, words * sizeof(uintptr_t));
    kc_reseal(&e.kc, s);
    kcache_free(&e.kc, a); /* sound again, off the list: emptied, the spare */
    kcache_free(&e.kc, b); /* on the list: unlinked and released */
    unit_assert_table(&e.u.heap, "43 00");
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* Table chains of slabs broken by a stray write: a pointer in a later block
 * is not taken for a small object (the heap refuses it). */
static void test_broken_cache_chain(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    unsigned char* a = kcache_alloc(&e.kc, 80); /* C3 03 */
    const struct kcache_geometry* g = &e.kc.classes[kcache_class_of(80)].geometry[0];
    size_t later = (UNIT_BS - g->offset + 79) / 80;
    unsigned char* b = NULL;
    for (size_t i = 1; i <= later; i++) {
        b = kcache_alloc(&e.kc, 80);
    }
    assert_ptr_equal(b, e.pool + g->offset + later * 80); /* in the second block */
    unit_assert_table(&e.u.heap, "C3 03 00 00");
    HEAP_BLOCK_TABLE_ENTRY* t = e.u.heap.table->entries;
    t[0] = 0x43; /* chain cut: block 1 is an orphan continuation */
    kc_assert_refused(&e, b, HEAP_REPORT_FREE_UNALIGNED);
    kc_assert_refused(&e, e.pool + UNIT_BS, HEAP_REPORT_FREE_INTERIOR); /* block-aligned: the heap's kind */
    t[0] = 0xC1; /* plain first block, cache continuation */
    kc_assert_refused(&e, b, HEAP_REPORT_FREE_UNALIGNED);
    kc_assert_refused(&e, e.pool + UNIT_BS, HEAP_REPORT_FREE_INTERIOR);
    kc_assert_refused(&e, e.pool, HEAP_REPORT_FREE_CORRUPT); /* a plain chain ending in a cache block */
    t[0] = 0xC3;
    kc_assert_clean(&e);
    for (size_t i = 0; i < later; i++) {
        kcache_free(&e.kc, a + i * 80);
    }
    kcache_free(&e.kc, b);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects),
        cmocka_unit_test(test_null_cache),
        cmocka_unit_test(test_class_boundaries),
        cmocka_unit_test(test_class_sizes),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_table_bytes),
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_slots_in_order),
        cmocka_unit_test(test_multi_block_slab_objects),
        cmocka_unit_test(test_bad_frees_small),
        cmocka_unit_test(test_bad_free_without_hook),
        cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_full_heap_trims),
        cmocka_unit_test(test_single_block_fallback),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_seal_formula),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_corrupt_header_words),
        cmocka_unit_test(test_overrun_into_slab),
        cmocka_unit_test(test_corrupt_spare),
        cmocka_unit_test(test_rebuild_takes_back_sound_slabs),
        cmocka_unit_test(test_quarantine_reuses_partial_slabs),
        cmocka_unit_test(test_quarantine_out_of_memory),
        cmocka_unit_test(test_quarantine_stale_prev),
        cmocka_unit_test(test_quarantine_keeps_sound_spare),
        cmocka_unit_test(test_quarantine_forged_spare),
        cmocka_unit_test(test_quarantine_mid_list),
        cmocka_unit_test(test_corrupt_neighbour_stays_corrupt),
        cmocka_unit_test(test_neighbour_checks),
        cmocka_unit_test(test_check_counters),
        cmocka_unit_test(test_check_lists),
        cmocka_unit_test(test_check_list_links),
        cmocka_unit_test(test_check_sealed_lies),
        cmocka_unit_test(test_poison),
        cmocka_unit_test(test_no_poison_by_default),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_random_workout),
        cmocka_unit_test(test_realloc_null_and_zero),
        cmocka_unit_test(test_realloc_small),
        cmocka_unit_test(test_realloc_blocks),
        cmocka_unit_test(test_realloc_small_out_of_memory),
        cmocka_unit_test(test_realloc_bad_pointers),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_fault_slab_and_blocks),
        cmocka_unit_test(test_fault_realloc),
        cmocka_unit_test(test_sealed_full_bitmap),
        cmocka_unit_test(test_broken_cache_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
