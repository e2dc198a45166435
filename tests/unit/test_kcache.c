/*
 * tests/unit/test_kcache.c - the small-object caches (kcache.c) on heaps of
 * their own, over real memory, with their slab tables beside them.
 *
 * Covers: classes and geometry, exact table bytes of slabs (43, C3 03,
 * C3 83 03) and whole blocks (41, C1 01), allocation and free of every
 * class, every kind of bad free (interior, wrong offset, slab tail, double
 * free, never allocated, free block, outside) with "nothing changed"
 * checked byte for byte over the pool, the table, the slab table and the
 * counters, the slab table (records of slabs, of their other blocks and of
 * blocks of no slab; nothing of the caches in the pool: writing every byte
 * of every free object changes no decision), hysteresis and trim, the
 * one-block fallback, kcache_check against each invariant, poison, stats,
 * krealloc (every case), ksize, kpalloc and fault injection at every site.
 * The kheap wrappers (kmalloc & co.) are in test_kcache_kheap.c; more
 * kcache_check cases on the records are in test_kcache_table.c.
 */
#include "unit.h"

#include "memory/heap/kcache.h"

/* ------------------------------------------------------------- helpers */

/* Slab table bytes per block: a record, and with the magazines the live
 * bitmap's words (kcache.h). */
#define KC_TABLE_BLOCK_BYTES                                                                                    \
    (sizeof(struct kcache_slab) + PEACHOS_KCACHE_MAGAZINES * KCACHE_BLOCK_WORDS * sizeof(uintptr_t))
#define KC_WORD_BITS (sizeof(uintptr_t) * 8u)

/* A heap over real memory with its caches and their slab table. The pool
 * starts as garbage (0xCD), the slab table too (kcache_init clears it). */
struct kc_env
{
    struct unit_heap u;
    unsigned char* pool;
    size_t blocks;
    struct kcache_slab* slabs;
    struct kcache kc;
};

static void kc_env_make(struct kc_env* e, size_t blocks, unsigned flags)
{
    memset(e, 0, sizeof(*e));
    e->blocks = blocks;
    e->pool = aligned_alloc(UNIT_BS, blocks * UNIT_BS);
    assert_non_null(e->pool);
    memset(e->pool, 0xCD, blocks * UNIT_BS);
    e->slabs = unit_xmalloc(kcache_table_bytes(blocks));
    memset(e->slabs, 0xEE, kcache_table_bytes(blocks));
    unit_heap_make_at(&e->u, blocks, blocks % 2 == 0, (uintptr_t)e->pool);
    assert_int_equal(kcache_init(&e->kc, &e->u.heap, e->slabs, kcache_table_bytes(blocks), flags), 0);
}

static void kc_env_destroy(struct kc_env* e)
{
    unit_heap_destroy(&e->u);
    free(e->pool);
    free(e->slabs);
    e->pool = NULL;
    e->slabs = NULL;
}

/* The record of block b. */
static struct kcache_slab* kc_rec(struct kc_env* e, size_t b)
{
    return &e->slabs[b];
}

/* Capacity of a slab of k blocks for `size`: objects only, from byte 0. */
static size_t kc_capacity(size_t size, size_t k)
{
    return k * UNIT_BS / size;
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
    unsigned char* slabs;
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
    s->slabs = unit_xmalloc(kcache_table_bytes(e->blocks));
    memcpy(s->slabs, e->slabs, kcache_table_bytes(e->blocks));
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
    bool pool_same = memcmp(s->pool, e->pool, e->blocks * UNIT_BS) == 0 &&
                     memcmp(s->slabs, e->slabs, kcache_table_bytes(e->blocks)) == 0;
    bool table_same = memcmp(s->table, e->u.heap.table->entries, e->blocks) == 0;
    bool heap_same = memcmp(&heap, &e->u.heap, sizeof(heap)) == 0;
    bool kc_same = memcmp(&kc, &e->kc, sizeof(kc)) == 0;
    free(s->pool);
    free(s->slabs);
    s->pool = NULL;
    s->slabs = NULL;
    if (!(pool_same && table_same && heap_same && kc_same)) {
        print_error("changed: pool or slab table %d table %d heap %d caches %d (rejected_frees %zu -> %zu, corruptions %zu -> %zu)\n",
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
    size_t need = kcache_table_bytes(4);
    assert_int_equal(need, 4 * KC_TABLE_BLOCK_BYTES);
    uintptr_t* mem = unit_xmalloc(need + 2 * sizeof(uintptr_t));
    memset(mem, 0x77, need + 2 * sizeof(uintptr_t));
    void* t = mem + 1;
    assert_int_equal(kcache_init(NULL, &e.u.heap, t, need, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, NULL, t, need, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, NULL, need, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, t, need, 0x2), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, t, need, ~0u), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, t, need - 1, 0), -EINVARG);   /* too small */
    assert_int_equal(kcache_init(&kc, &e.u.heap, (char*)t + 1, need, 0), -EINVARG); /* misaligned */
    assert_int_equal(kcache_init(&kc, &e.u.heap, e.pool, need, 0), -EINVARG); /* the pool */
    assert_int_equal(kcache_init(&kc, &e.u.heap, e.pool + 4 * UNIT_BS - 8, need, 0), -EINVARG); /* its last bytes */
    assert_int_equal(kcache_init(&kc, &e.u.heap, (void*)((uintptr_t)e.pool - need + sizeof(uintptr_t)), need, 0),
                     -EINVARG); /* runs into its first bytes */
    assert_int_equal(kcache_init(&kc, &e.u.heap, e.u.heap.table->entries, need, 0), -EINVARG); /* the table */
    assert_int_equal(kcache_init(&kc, &e.u.heap, &kc, sizeof(kc), 0), -EINVARG); /* the cache itself */
    assert_int_equal(kcache_init(&kc, &e.u.heap, &e.u.heap, need, 0), -EINVARG);  /* the heap descriptor */
    assert_int_equal(kcache_init(&kc, &e.u.heap, (void*)(UINTPTR_MAX - need / 2 + 1), need, 0), -EINVARG); /* wraps */
    assert_memory_equal(&kc, &before, sizeof(kc));
    assert_int_equal(mem[1], (uintptr_t)0x7777777777777777ull); /* nothing written */
    struct heap huge = e.u.heap; /* too many blocks for 32-bit links */
    struct heap_table huge_table = { e.u.heap.table->entries, (size_t)UINT32_MAX };
    huge.table = &huge_table;
    assert_int_equal(kcache_table_bytes((size_t)UINT32_MAX), 0);
    assert_int_equal(kcache_init(&kc, &huge, t, need, 0), -EINVARG);
    assert_int_equal(kcache_init(&kc, &e.u.heap, t, need, KCACHE_FLAG_POISON), 0);
    assert_int_equal(kc.flags, KCACHE_FLAG_POISON);
    assert_ptr_equal(kc.heap, &e.u.heap);
    assert_ptr_equal(kc.slab_table, t);
    for (size_t b = 0; b < 4; b++) { /* cleared: no slab anywhere */
        assert_int_equal(kc.slab_table[b].shape, 0);
        assert_int_equal(kc.slab_table[b].next, 0);
        assert_int_equal(kc.slab_table[b].inuse, 0);
        assert_int_equal(kc.slab_table[b].bits[0], 0);
    }
    assert_int_equal(mem[need / sizeof(uintptr_t) + 1], (uintptr_t)0x7777777777777777ull); /* nothing past it */
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        assert_int_equal(kc.classes[ci].partial, KCACHE_NONE);
        assert_int_equal(kc.classes[ci].spare, KCACHE_NONE);
    }
    free(mem);
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

/* Geometry: objects fill the slab from byte 0, one more would not fit, the
 * bitmap has a bit for each and fits the slab's records; the preferred slab
 * wastes at most 2% or is the least wasteful. */
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
            assert_true(g->words <= g->blocks * KCACHE_BLOCK_WORDS);
            assert_true((size_t)g->capacity * c->size <= bytes);
            assert_true(((size_t)g->capacity + 1) * c->size > bytes);
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
    size_t c160 = kcache_class_of(160);
    size_t c304 = kcache_class_of(304);
    assert_int_equal(e.kc.classes[0].geometry[0].blocks, 1);
    assert_int_equal(e.kc.classes[c160].geometry[0].blocks, 2);
    assert_int_equal(e.kc.classes[c304].geometry[0].blocks, 3);

    unsigned char* a = kcache_alloc(&e.kc, 1);
    assert_ptr_equal(a, e.pool); /* no header: the first object is the slab's first byte */
    assert_int_equal(kc_rec(&e, 0)->shape, 1);     /* class 0, preferred: (0 << 1 | 0) + 1 */
    assert_int_equal(kc_rec(&e, 0)->inuse, 1);
    assert_int_equal(kc_rec(&e, 0)->bits[0], 1);
    unit_assert_table(&e.u.heap, "43 00 00 00 00 00 00 00 00 00 00 00");
    unsigned char* b = kcache_alloc(&e.kc, 160);
    unit_assert_table(&e.u.heap, "43 C3 03 00 00 00 00 00 00 00 00 00");
    assert_ptr_equal(b, e.pool + UNIT_BS);
    assert_int_equal(kc_rec(&e, 1)->shape, (c160 << 1) + 1);
    assert_int_equal(kc_rec(&e, 2)->shape, 0); /* the slab's second block: its bitmap words only */
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
        assert_ptr_equal(p[i], e.pool + i * 16);
    }
    assert_int_equal(e.kc.classes[0].partial, KCACHE_NONE); /* full: on no list */
    assert_int_equal(kc_rec(&e, 0)->next, KCACHE_NONE);
    assert_int_equal(kc_rec(&e, 0)->prev, KCACHE_NONE);
    assert_int_equal(kc_rec(&e, 0)->inuse, n);
    assert_int_equal(e.kc.classes[0].partial_slabs, 0);
    kc_assert_clean(&e);
    p[n] = kcache_alloc(&e.kc, 16); /* second slab */
    assert_ptr_equal(p[n], e.pool + UNIT_BS);
    unit_assert_table(&e.u.heap, "43 43 00 00");
    kcache_free(&e.kc, p[5]); /* full -> partial, pushed to the head */
    assert_int_equal(e.kc.classes[0].partial, 0);
    assert_int_equal(kc_rec(&e, 0)->next, 1);
    assert_int_equal(kc_rec(&e, 1)->prev, 0);
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
    assert_ptr_equal(a, slab);
    kc_assert_refused(&e, slab + 8, HEAP_REPORT_CACHE_BAD_FREE);          /* inside the first object */
    kc_assert_refused(&e, b + 48, HEAP_REPORT_CACHE_BAD_FREE);            /* valid start, never allocated */
    kc_assert_refused(&e, slab + ((size_t)g->capacity - 1) * 48, HEAP_REPORT_CACHE_BAD_FREE); /* last slot */
    kc_assert_refused(&e, slab + (size_t)g->capacity * 48, HEAP_REPORT_CACHE_BAD_FREE); /* the tail past it */
    kc_assert_refused(&e, slab + UNIT_BS - 1, HEAP_REPORT_CACHE_BAD_FREE); /* last byte of the slab */
    /* Non-cache pointers keep the heap's kinds. */
    kc_assert_refused(&e, big + 8, HEAP_REPORT_FREE_UNALIGNED);
    kc_assert_refused(&e, big + UNIT_BS, HEAP_REPORT_FREE_INTERIOR);
    kc_assert_refused(&e, e.pool + 7 * UNIT_BS, HEAP_REPORT_FREE_NOT_ALLOCATED);
    kc_assert_refused(&e, &local, HEAP_REPORT_FREE_OUTSIDE);
    kc_assert_refused(&e, e.pool + 8 * UNIT_BS, HEAP_REPORT_FREE_OUTSIDE);
    kc_assert_refused(&e, e.pool - 16, HEAP_REPORT_FREE_OUTSIDE);

    /* The tail after the last object of a slab that has one (160 bytes: 2 blocks). */
    unsigned char* t = kcache_alloc(&e.kc, 160);
    unsigned char* tslab = e.pool + 4 * UNIT_BS;
    const struct kcache_geometry* tg = &e.kc.classes[kcache_class_of(160)].geometry[0];
    size_t tail = (size_t)tg->capacity * 160;
    assert_ptr_equal(t, tslab);
    assert_true(tail < tg->blocks * UNIT_BS);
    kc_assert_refused(&e, tslab + tail, HEAP_REPORT_CACHE_BAD_FREE);
    kc_assert_refused(&e, tslab + tg->blocks * UNIT_BS - 16, HEAP_REPORT_CACHE_BAD_FREE);
    size_t later = (UNIT_BS + 159) / 160; /* first slot starting in the slab's second block */
    kc_assert_refused(&e, tslab + later * 160, HEAP_REPORT_CACHE_BAD_FREE); /* never allocated */
    kcache_free(&e.kc, t);

    kcache_free(&e.kc, a);
    kc_assert_refused(&e, a, HEAP_REPORT_CACHE_BAD_FREE); /* double free */
    kc_assert_clean(&e);
    kcache_free(&e.kc, b); /* the slab empties: it is the spare now */
    kc_assert_refused(&e, b, HEAP_REPORT_CACHE_BAD_FREE); /* double free into the spare */
    assert_int_equal(e.u.heap.rejected_frees, 19);
    kcache_free(&e.kc, big);
    kcache_free(&e.kc, NULL); /* nothing at all */
    assert_int_equal(e.u.heap.rejected_frees, 19);
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
    assert_int_equal(e.kc.classes[0].spare, 0);
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
    assert_ptr_equal(q, e.pool);
    assert_int_equal(e.kc.classes[0].spare, KCACHE_NONE);
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
    size_t ci = kcache_class_of(160);
    const struct kcache_geometry* single = &e.kc.classes[ci].geometry[KCACHE_SINGLE];
    unsigned char* p = kcache_alloc(&e.kc, 160);
    assert_ptr_equal(p, e.pool + UNIT_BS);
    assert_int_equal(kc_rec(&e, 1)->shape, (ci << 1 | KCACHE_SINGLE) + 1);
    unit_assert_table(&e.u.heap, "41 43 41 00");
    assert_int_equal(e.u.heap.failed_allocs, 1); /* the 2-block attempt */
    void** q = unit_xmalloc(2u * single->capacity * sizeof(*q));
    size_t n = 0;
    while (n < 2u * single->capacity && (q[n] = kcache_alloc(&e.kc, 160)) != NULL) {
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


/* ------------------------------------------------------ the slab table */

/*
 * Nothing of the caches lives in the pool. Two heaps run the same seeded
 * kmalloc/kfree sequence; in the second, before every call, every byte of
 * every slab that is not a live object (free objects, slab tails) is
 * overwritten with random bytes, as a stray write or an overrun could. The
 * caches must decide exactly the same in both: the same offsets handed
 * out, the same table, the same slab table, no report, kcache_check clean.
 */
static void kc_scribble_free_bytes(struct kc_env* e, uint64_t* rng)
{
    for (size_t b = 0; b < e->blocks; b++) {
        const struct kcache_slab* r = kc_rec(e, b);
        if (r->shape == 0) {
            continue;
        }
        const struct kcache_class* c = &e->kc.classes[(r->shape - 1) >> 1];
        const struct kcache_geometry* g = &c->geometry[(r->shape - 1) & 1];
        for (size_t off = 0; off < g->blocks * UNIT_BS; off++) {
            size_t slot = off / c->size;
            bool live = slot < g->capacity &&
                        ((e->slabs[b + slot / KC_WORD_BITS / KCACHE_BLOCK_WORDS]
                              .bits[slot / KC_WORD_BITS % KCACHE_BLOCK_WORDS] >>
                          (slot % KC_WORD_BITS)) & 1u);
            if (!live) {
                e->pool[b * UNIT_BS + off] = (unsigned char)unit_rand(rng);
            }
        }
    }
}

static void test_pool_holds_no_state(void** state)
{
    (void)state;
    struct kc_env plain, scribbled;
    kc_env_make(&plain, 48, 0);
    kc_env_make(&scribbled, 48, 0);
    enum { SLOTS = 160 };
    unsigned char* p[2][SLOTS] = { { 0 } };
    uint64_t rng = 7, noise = 99;
    for (size_t op = 0; op < 20000; op++) {
        size_t i = unit_rand(&rng) % SLOTS;
        uint32_t r = unit_rand(&rng);
        kc_scribble_free_bytes(&scribbled, &noise);
        if (p[0][i] != NULL) {
            kcache_free(&plain.kc, p[0][i]);
            kcache_free(&scribbled.kc, p[1][i]);
            p[0][i] = p[1][i] = NULL;
        } else {
            size_t size = r % 16 == 0 ? 1 + r % (2 * UNIT_BS) : 1 + r % KCACHE_MAX_SIZE;
            p[0][i] = kcache_alloc(&plain.kc, size);
            p[1][i] = kcache_alloc(&scribbled.kc, size);
            assert_int_equal(p[0][i] == NULL, p[1][i] == NULL);
            if (p[0][i] != NULL) {
                assert_int_equal(p[0][i] - plain.pool, p[1][i] - scribbled.pool);
            }
        }
        assert_memory_equal(plain.u.heap.table->entries, scribbled.u.heap.table->entries, 48);
        assert_memory_equal(plain.slabs, scribbled.slabs, kcache_table_bytes(48));
    }
    kc_assert_clean(&scribbled);
    assert_int_equal(scribbled.u.reports.count, 0);
    assert_int_equal(scribbled.u.heap.rejected_frees, 0);
    kc_env_destroy(&plain);
    kc_env_destroy(&scribbled);
}

/* A record whose geometry is shorter than its slab in the table (the slab
 * table written by someone else): a pointer past the record's length is
 * refused as a bad free, and kcache_check names the slab. */
static void test_free_past_record_length(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    size_t c160 = kcache_class_of(160);
    assert_int_equal(e.kc.classes[c160].geometry[KCACHE_PREFERRED].blocks, 2);
    size_t n = (UNIT_BS + 159) / 160 + 1; /* the first object starting in the second block, and one more */
    unsigned char* p[64];
    for (size_t i = 0; i < n; i++) {
        p[i] = kcache_alloc(&e.kc, 160);
    }
    unsigned char* late = p[n - 1];
    assert_true(late >= e.pool + UNIT_BS);
    uint8_t shape = kc_rec(&e, 0)->shape;
    kc_rec(&e, 0)->shape = (uint8_t)((c160 << 1 | KCACHE_SINGLE) + 1); /* one block, the table says two */
    kc_assert_corrupt_at(&e, 0);
    struct kc_snapshot s;
    kc_snapshot_take(&e, &s);
    kcache_free(&e.kc, late);
    kc_assert_unchanged(&e, &s, 1, 0);
    assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_CACHE_BAD_FREE);
    kc_rec(&e, 0)->shape = shape;
    kc_assert_clean(&e);
    for (size_t i = 0; i < n; i++) {
        kcache_free(&e.kc, p[i]);
    }
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* The records through a slab's life: made, filled, emptied (the spare),
 * given back (every record and word of its blocks 0 again). */
static void test_slab_records(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 6, 0);
    size_t c300 = kcache_class_of(300);
    const struct kcache_geometry* g = &e.kc.classes[c300].geometry[KCACHE_PREFERRED];
    assert_int_equal(g->blocks, 3);
    unsigned char* pad = kcache_palloc(&e.kc, 1);
    void** p = unit_xmalloc(g->capacity * sizeof(*p));
    for (size_t i = 0; i < g->capacity; i++) {
        p[i] = kcache_alloc(&e.kc, 300);
        assert_ptr_equal(p[i], e.pool + UNIT_BS + i * 304);
    }
    const struct kcache_slab* r = kc_rec(&e, 1);
    assert_int_equal(r->shape, (c300 << 1) + 1);
    assert_int_equal(r->inuse, g->capacity);
    assert_int_equal(r->next, KCACHE_NONE);
    assert_int_equal(r->prev, KCACHE_NONE);
    /* The bitmap: a bit per object, then padding bits to the word's end. */
    size_t bits = (size_t)g->words * KC_WORD_BITS;
    for (size_t bit = 0; bit < bits; bit++) {
        assert_true((r->bits[bit / KC_WORD_BITS] >> (bit % KC_WORD_BITS)) & 1u);
    }
    for (size_t w = g->words; w < KCACHE_BLOCK_WORDS; w++) {
        assert_int_equal(r->bits[w], 0);
    }
    for (size_t b = 2; b <= 3; b++) { /* the slab's other blocks: nothing */
        assert_int_equal(kc_rec(&e, b)->shape, 0);
        assert_int_equal(kc_rec(&e, b)->bits[0], 0);
    }
    kcache_free(&e.kc, p[1]);
    assert_int_equal(r->bits[0] & 2u, 0);
    assert_int_equal(e.kc.classes[c300].partial, 1);
    for (size_t i = 0; i < g->capacity; i++) {
        if (i != 1) {
            kcache_free(&e.kc, p[i]);
        }
    }
    assert_int_equal(e.kc.classes[c300].spare, 1);
    assert_int_equal(e.kc.classes[c300].partial, KCACHE_NONE);
    assert_int_equal(r->inuse, 0);
    kc_assert_clean(&e);
    assert_int_equal(kcache_trim(&e.kc), 3);
    static const struct kcache_slab zero;
    for (size_t b = 0; b < 6; b++) {
        assert_memory_equal(kc_rec(&e, b), &zero, sizeof(zero));
    }
    kcache_free(&e.kc, pad);
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* A slab whose record names no class (the slab table written by someone
 * else): a free into it is refused as FREE_CORRUPT and counted, nothing
 * else changes; kcache_check names the slab. */
static void test_free_into_unnamed_slab(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    unsigned char* a = kcache_alloc(&e.kc, 64);
    unsigned char* b = kcache_alloc(&e.kc, 64);
    static const uint8_t shapes[] = { 0, 2 * KCACHE_CLASSES + 1, 0xFF };
    for (size_t k = 0; k < sizeof(shapes); k++) {
        uint8_t saved = kc_rec(&e, 0)->shape;
        kc_rec(&e, 0)->shape = shapes[k];
        kc_assert_corrupt_at(&e, 0);
        struct kc_snapshot s;
        kc_snapshot_take(&e, &s);
        kcache_free(&e.kc, b);
        kc_assert_unchanged(&e, &s, 1, 1);
        assert_int_equal(e.u.reports.last.kind, HEAP_REPORT_FREE_CORRUPT);
        assert_ptr_equal(e.u.reports.last.ptr, b);
        assert_int_equal(kcache_size(&e.kc, b), 0);
        kc_rec(&e, 0)->shape = saved;
        kc_assert_clean(&e);
    }
    assert_int_equal(e.kc.corruptions, 3);
    kcache_free(&e.kc, a);
    kcache_free(&e.kc, b);
    kc_assert_clean(&e);
    kc_env_destroy(&e);
}

/* ------------------------------------------------------- kcache_check */

/* n full 16-byte slabs at blocks 0..n-1, then one object freed in each in
 * `order` (slot freed[k] = 3 + 2k of slab k): the partial list is
 * order[n-1] -> ... -> order[0]. The objects, slab by slab. */
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
    assert_int_equal(e->kc.classes[0].partial, order[n - 1]);
    assert_int_equal(e->kc.classes[0].partial_slabs, n);
    kc_assert_clean(e);
    return p;
}

static void expect_corrupt_(struct kc_env* e, size_t want_bad, const char* file, int line)
{
    size_t bad = 12345;
    int res = kcache_check(&e->kc, &bad);
    if (res != -ECORRUPT || bad != want_bad || kcache_check(&e->kc, NULL) != -ECORRUPT) {
        print_error("kcache_check: %d at block %zu, want -ECORRUPT at %zu\n", res, bad, want_bad);
        _fail(file, line);
    }
}
#define expect_corrupt(e, want_bad) expect_corrupt_((e), (want_bad), __FILE__, __LINE__)

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
    uint32_t saved;

    saved = c0->partial; /* partial list naming a free block, past the heap, a full slab, another class */
    assert_int_equal(saved, 1);
    c0->partial = 5; /* a bad head: the block it names */
    expect_corrupt(&e, 5);
    c0->partial = 8;
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = 0x10000;
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = 0;
    expect_corrupt(&e, 0);
    c0->partial = 2;
    expect_corrupt(&e, 2);
    c0->partial = saved;
    kc_rec(&e, 1)->next = 5; /* a bad forward link: slab 1 holds it */
    expect_corrupt(&e, 1);
    kc_rec(&e, 1)->next = 2; /* a slab of another class */
    expect_corrupt(&e, 1);
    kc_rec(&e, 1)->next = 0x10000; /* past the heap */
    expect_corrupt(&e, 1);
    kc_rec(&e, 1)->next = KCACHE_NONE;
    kc_assert_clean(&e);
    c0->partial = KCACHE_NONE; /* a partial slab on no list */
    expect_corrupt(&e, SIZE_MAX);
    c0->partial = saved;
    kc_assert_clean(&e);

    /* A list that loops on itself. */
    struct kcache_slab* s1 = kc_rec(&e, 1);
    s1->next = 1;
    expect_corrupt(&e, 1);
    s1->next = KCACHE_NONE;
    kc_assert_clean(&e);
    /* A full slab with links. */
    struct kcache_slab* s0 = kc_rec(&e, 0);
    s0->prev = 1;
    expect_corrupt(&e, 0);
    s0->prev = KCACHE_NONE;
    kc_assert_clean(&e);

    saved = c2->spare; /* the spare: gone, a free block, a partial slab, another class */
    assert_int_equal(saved, 3);
    c2->spare = KCACHE_NONE;
    expect_corrupt(&e, 3);
    c2->spare = 6;
    expect_corrupt(&e, 3);
    c2->spare = 1;
    expect_corrupt(&e, 3);
    c2->spare = saved;
    e.kc.classes[1].spare = saved;
    expect_corrupt(&e, 3);
    e.kc.classes[1].spare = KCACHE_NONE;
    c0->spare = 1; /* a partial slab as spare */
    expect_corrupt(&e, 1);
    c0->spare = 9; /* past the heap */
    expect_corrupt(&e, SIZE_MAX);
    c0->spare = KCACHE_NONE;
    kc_assert_clean(&e);

    /* A CACHE allocation that is no slab. */
    unsigned char* foreign = heap_malloc_blocks_typed(&e.u.heap, 1, HEAP_BLOCK_TYPE_CACHE);
    assert_ptr_equal(foreign, e.pool + 4 * UNIT_BS);
    expect_corrupt(&e, 4); /* its record names no class */
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
    struct kcache_slab* s0 = kc_rec(&e, 0);
    assert_int_equal(s0->prev, 1);
    s0->prev = 2;
    expect_corrupt(&e, 0);
    s0->prev = 1;
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
    assert_int_equal(c->partial, 0);
    assert_int_equal(c->spare, 1);
    kc_assert_clean(&e);
    c->partial = c->spare; /* one member, one partial slab: counts agree */
    expect_corrupt(&e, 1);
    c->partial = 0;
    kc_assert_clean(&e);
    for (size_t i = 1; i < cap; i++) {
        kcache_free(&e.kc, p[i]);
    }
    kc_assert_clean(&e);
    free(p);
    kc_env_destroy(&e);
}

/* Records that break an invariant, field by field: kcache_check finds each. */
static void test_check_record_lies(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 8, 0);
    void* a = kcache_alloc(&e.kc, 16);
    void* b = kcache_alloc(&e.kc, 160); /* 2-block slab at 1 */
    struct kcache_slab* s = kc_rec(&e, 0);
    struct kcache_slab* s2 = kc_rec(&e, 1);
    kc_assert_clean(&e);

    s->inuse = 2; /* bitmap says 1 */
    expect_corrupt(&e, 0);
    s->inuse = 1;
    kc_assert_clean(&e);

    size_t c160 = kcache_class_of(160);
    size_t words = e.kc.classes[c160].geometry[0].words;
    uintptr_t last = s2->bits[words - 1];
    s2->bits[words - 1] &= ~((uintptr_t)1 << (KC_WORD_BITS - 1)); /* a padding bit */
    expect_corrupt(&e, 1);
    s2->bits[words - 1] = last;
    kc_assert_clean(&e);
    if (words < KCACHE_BLOCK_WORDS) {
        s2->bits[words] = 4; /* a word past the bitmap */
        expect_corrupt(&e, 1);
        s2->bits[words] = 0;
        kc_assert_clean(&e);
    }
    kc_rec(&e, 2)->bits[0] = 1; /* the slab's second block: its words belong to no bitmap here */
    expect_corrupt(&e, 1);
    kc_rec(&e, 2)->bits[0] = 0;
    kc_rec(&e, 2)->inuse = 1; /* ... and its fields are 0 */
    expect_corrupt(&e, 1);
    kc_rec(&e, 2)->inuse = 0;
    kc_assert_clean(&e);

    s2->shape = (uint8_t)((c160 << 1 | KCACHE_SINGLE) + 1); /* 1 block, table says 2 */
    expect_corrupt(&e, 1);
    s2->shape = (uint8_t)((c160 << 1 | KCACHE_PREFERRED) + 1);
    kc_assert_clean(&e);
    s2->unused = 1;
    expect_corrupt(&e, 1);
    s2->unused = 0;

    s->shape = (1 << 1) + 1; /* class 1 (32 bytes): counters of classes 0 and 1 disagree */
    expect_corrupt(&e, 0); /* the partial head of class 0 is now a class-1 slab */
    s->shape = 1;
    kc_assert_clean(&e);

    /* Records of blocks of no slab: every field and word must be 0. */
    struct kcache_slab* free_rec = kc_rec(&e, 5);
    free_rec->bits[KCACHE_BLOCK_WORDS - 1] = 8;
    expect_corrupt(&e, 5);
    free_rec->bits[KCACHE_BLOCK_WORDS - 1] = 0;
    free_rec->next = 3;
    expect_corrupt(&e, 5);
    free_rec->next = 0;
    free_rec->prev = 3;
    expect_corrupt(&e, 5);
    free_rec->prev = 0;
    free_rec->shape = 1;
    expect_corrupt(&e, 5);
    free_rec->shape = 0;
    kc_rec(&e, 7)->unused = 1; /* after the last slab */
    expect_corrupt(&e, 7);
    kc_rec(&e, 7)->unused = 0;
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
            assert_int_equal(e.pool[slot * 64 + i], KCACHE_POISON_BYTE);
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
    assert_int_equal(st.table_bytes, 16 * KC_TABLE_BLOCK_BYTES);
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
    kc_assert_realloc_refused(&e, p + 47, HEAP_REPORT_CACHE_BAD_FREE);
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
    assert_int_equal(kcache_size(&e.kc, e.pool + 8), 0); /* inside the first object */
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

/* Table chains of slabs broken by a stray write: a pointer in a later block
 * is not taken for a small object (the heap refuses it). */
static void test_broken_cache_chain(void** state)
{
    (void)state;
    struct kc_env e;
    kc_env_make(&e, 4, 0);
    unsigned char* a = kcache_alloc(&e.kc, 160); /* C3 03 */
    size_t later = (UNIT_BS + 159) / 160;
    unsigned char* b = NULL;
    for (size_t i = 1; i <= later; i++) {
        b = kcache_alloc(&e.kc, 160);
    }
    assert_ptr_equal(b, e.pool + later * 160); /* in the second block */
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
        kcache_free(&e.kc, a + i * 160);
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
        cmocka_unit_test(test_pool_holds_no_state),
        cmocka_unit_test(test_slab_records),
        cmocka_unit_test(test_free_into_unnamed_slab),
        cmocka_unit_test(test_free_past_record_length),
        cmocka_unit_test(test_check_counters),
        cmocka_unit_test(test_check_lists),
        cmocka_unit_test(test_check_list_links),
        cmocka_unit_test(test_check_record_lies),
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
        cmocka_unit_test(test_broken_cache_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}