/*
 * tests/unit/test_check_edges.c - edge cases found by the coverage report
 * (make coverage, issue 6): branches of the library that no other test took.
 *
 *   - the placement index asked for 0 blocks (through its ops, as heap.c
 *     never does) or more than the largest run, or told to mark a range
 *     with the state it already has;
 *   - the heap map of a table with no blocks;
 *   - ksize / krealloc of pointers kfree would refuse for reasons only a
 *     corrupt table or a slab's tail gives: the slot after a slab's last
 *     object, a block chain with a reserved bit, a chain running off the end
 *     of the table, a block of unknown type;
 *   - kheap_check against corrupt cache bookkeeping in struct kcache: a list
 *     pointer or spare past the pool, the spare also on the partial list, a
 *     full slab on the partial list;
 *   - a slab whose shape word names no geometry, met on every path that
 *     reads a header: kmalloc, kfree, ksize, krealloc, refill from the spare,
 *     kheap_trim, kheap_check. Each is reported; kfree, ksize and krealloc
 *     change nothing, kmalloc (from the list or the spare) and kheap_trim
 *     quarantine the slab once and the class goes on in another slab;
 *   - headers forged with a valid seal (computed from the keys, as only
 *     someone who knew the secret could) but impossible contents: a partial
 *     slab claiming to be full (quarantined by kmalloc), more objects than
 *     the slab holds, a full slab with a list link.
 */
#include "unit.h"
#include "unit_kheap.h"

/* Recompute a header's check as kcache.c does (docs/kcache.md: key_final *
 * (address + 1) + the sum of word_i * keys[i]), to forge a header that
 * passes its seal - as only someone who knew the secret could. */
static void reseal(struct unit_slab_mirror* s)
{
    const struct kcache* kc = kheap_cache();
    const struct kcache_geometry* g = &kc->classes[s->shape >> 1].geometry[s->shape & 1];
    uintptr_t sum = kc->key_final * ((uintptr_t)s + 1);
    sum += s->next * kc->keys[1] + s->prev * kc->keys[2] + s->shape * kc->keys[3] + s->inuse * kc->keys[4];
    for (size_t i = 0; i < g->words; i++) {
        sum += s->bitmap[i] * kc->keys[5 + i];
    }
    s->check = sum;
}

static void init_heap(size_t blocks)
{
    struct kheap_hosted_config config = { blocks * UNIT_BS, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_true(kheap_ready());
}

static size_t block_of(const void* p)
{
    return heap_address_to_block(kheap_get(), p);
}

static HEAP_BLOCK_TABLE_ENTRY* entry(size_t block)
{
    return &kheap_get()->table->entries[block];
}

static void expect_kheap_check(int res, size_t block)
{
    size_t bad = 12345;
    assert_int_equal(kheap_check(&bad), res);
    if (res != 0) {
        assert_int_equal(bad, block);
    }
}

/* Everything is freed and trimmed: the heap is empty and sound. */
static void expect_empty(void)
{
    kheap_trim();
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_int_equal(kheap_get()->live_allocations, 0);
    expect_kheap_check(0, 0);
}

/* ------------------------------------------------------------------ index */

static void test_index_find_bounds(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 128, true);
    assert_int_equal(u.heap.index_ops->find(&u.heap, 0), SIZE_MAX);
    assert_int_equal(u.heap.index_ops->find(&u.heap, 129), SIZE_MAX);
    assert_int_equal(u.heap.index_ops->find(&u.heap, 128), 0);
    /* Marking a range of several words with the state it already has (the
     * heap never does): no leaf changes, nothing above is recomputed. */
    u.heap.index_ops->mark(&u.heap, 10, 100, false);
    unit_assert_clean(&u.heap);
    assert_int_equal(u.heap.index_ops->find(&u.heap, 128), 0);
    unit_heap_destroy(&u);
}

/* -------------------------------------------------------------------- map */

struct text
{
    char buf[256];
    size_t len;
};

static void text_write(void* ctx, const char* s, size_t n)
{
    struct text* t = (struct text*)ctx;
    assert_true(t->len + n < sizeof(t->buf));
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void test_map_of_empty_table(void** state)
{
    (void)state;
    HEAP_BLOCK_TABLE_ENTRY none[1] = { 0 };
    struct heap_table table = { none, 0 };
    struct heap heap;
    memset(&heap, 0, sizeof(heap));
    heap.table = &table;
    struct text t = { { 0 }, 0 };
    heap_dump_map(&heap, text_write, &t, 0, 0, 0); /* blocks per char chosen: at least 1 */
    assert_string_equal(t.buf, "HEAPMAP v1 blocks=0 per_char=1 width=64\n"
                               "HEAPMAP end used=0 free=0 largest_free=0 allocations=0 rejected_frees=0\n");
}

/* ---------------------------------------------------------- ksize/krealloc */

/* The slot just past the last object of a slab (inside the slab's blocks):
 * no object starts there. */
static void test_lookup_slab_tail(void** state)
{
    (void)state;
    init_heap(32);
    const struct kcache* kc = kheap_cache();
    size_t tested = 0;
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        const struct kcache_class* c = &kc->classes[ci];
        const struct kcache_geometry* g = &c->geometry[KCACHE_PREFERRED];
        size_t tail = g->offset + (size_t)g->capacity * c->size;
        if (tail >= (size_t)g->blocks * UNIT_BS) {
            continue; /* no tail in this class's slab */
        }
        unsigned char* obj = kmalloc_small(c->size);
        assert_non_null(obj);
        unsigned char* slab = pool() + block_of(obj) * UNIT_BS;
        size_t rejected = kheap_get()->rejected_frees;
        assert_int_equal(ksize(slab + tail), 0);
        assert_null(krealloc(slab + tail, 1)); /* refused as kfree refuses it */
        assert_int_equal(kheap_get()->rejected_frees, rejected + 1);
        assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_BAD_FREE);
        kfree(obj);
        tested++;
    }
    assert_true(tested > 10);
    expect_empty();
}

/* A block allocation whose chain kfree would refuse: ksize says 0 and
 * krealloc refuses it, whatever heap_allocation_blocks counts. */
static void test_lookup_corrupt_chain(void** state)
{
    (void)state;
    init_heap(16);
    unsigned char* p = kpalloc(2 * UNIT_BS);
    unsigned char* q = kpalloc(UNIT_BS);
    assert_non_null(p);
    assert_non_null(q);
    size_t b = block_of(p);
    size_t bq = block_of(q);
    assert_int_equal(ksize(p), 2 * UNIT_BS);

    /* A reserved bit on the chain's second block. */
    HEAP_BLOCK_TABLE_ENTRY saved = *entry(b + 1);
    *entry(b + 1) = (HEAP_BLOCK_TABLE_ENTRY)(saved | 0x10);
    assert_int_equal(ksize(p), 0);
    size_t rejected = kheap_get()->rejected_frees;
    assert_null(krealloc(p, 3 * UNIT_BS));
    assert_int_equal(kheap_get()->rejected_frees, rejected + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT); /* the chain is broken */
    assert_ptr_equal(kheap_hosted_last_report().ptr, p);
    *entry(b + 1) = saved;
    assert_int_equal(ksize(p), 2 * UNIT_BS);

    /* The last block of the table says the chain goes on. */
    unsigned char* end = kpalloc(13 * UNIT_BS);
    assert_ptr_equal(end, pool() + 3 * UNIT_BS); /* blocks 3 .. 15: the end of the table */
    saved = *entry(15);
    *entry(15) = (HEAP_BLOCK_TABLE_ENTRY)(saved | HEAP_BLOCK_HAS_NEXT);
    assert_int_equal(ksize(end), 0);
    assert_null(krealloc(end, UNIT_BS));
    assert_int_equal(kheap_get()->rejected_frees, rejected + 2);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT);
    *entry(15) = saved;
    kfree(end);

    /* A first block of a type that is neither plain nor cache. */
    saved = *entry(bq);
    *entry(bq) = (HEAP_BLOCK_TABLE_ENTRY)(saved | 0x04);
    assert_int_equal(ksize(q), 0);
    assert_null(krealloc(q, 2 * UNIT_BS));
    assert_int_equal(kheap_get()->rejected_frees, rejected + 3);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_WRONG_OWNER); /* not the caller's */
    kfree(q);
    assert_int_equal(kheap_get()->rejected_frees, rejected + 4);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_WRONG_OWNER);
    assert_ptr_equal(kheap_hosted_last_report().ptr, q);
    *entry(bq) = saved;
    assert_int_equal(ksize(q), UNIT_BS);

    kfree(p);
    kfree(q);
    expect_empty();
}

/* ------------------------------------------------------ cache bookkeeping */

static void test_check_list_pointers(void** state)
{
    (void)state;
    init_heap(64);
    struct kcache* kc = kheap_cache();

    /* A partial list that points past the pool (block-aligned). */
    struct kcache_slab* saved = kc->classes[5].partial;
    assert_null(saved);
    kc->classes[5].partial = (struct kcache_slab*)(void*)(pool() + 64 * UNIT_BS);
    expect_kheap_check(-ECORRUPT, SIZE_MAX);
    kc->classes[5].partial = saved;
    expect_kheap_check(0, 0);

    /* The spare also on the partial list: listed slabs are never empty. */
    void* a = kmalloc_small(16);
    kfree(a);
    struct kcache_slab* spare = kc->classes[0].spare;
    assert_non_null(spare);
    /* A spare pointer past the pool (in a class without slabs). */
    kc->classes[5].spare = (struct kcache_slab*)(void*)(pool() + 64 * UNIT_BS);
    expect_kheap_check(-ECORRUPT, SIZE_MAX);
    kc->classes[5].spare = NULL;
    expect_kheap_check(0, 0);
    assert_null(kc->classes[0].partial);
    kc->classes[0].partial = spare;
    expect_kheap_check(-ECORRUPT, block_of(spare));
    kc->classes[0].partial = NULL;
    expect_kheap_check(0, 0);

    /* A full slab on the partial list: listed slabs are never full. */
    size_t ci = KCACHE_CLASSES - 1;
    size_t capacity = kc->classes[ci].geometry[KCACHE_PREFERRED].capacity;
    void* objs[64];
    assert_true(capacity <= 64);
    for (size_t i = 0; i < capacity; i++) {
        objs[i] = kmalloc_small(kc->classes[ci].size);
        assert_non_null(objs[i]);
    }
    assert_null(kc->classes[ci].partial); /* full: on no list */
    struct kcache_slab* full = (struct kcache_slab*)(void*)(pool() + block_of(objs[0]) * UNIT_BS);
    kc->classes[ci].partial = full;
    expect_kheap_check(-ECORRUPT, block_of(full));
    kc->classes[ci].partial = NULL;
    expect_kheap_check(0, 0);
    for (size_t i = 0; i < capacity; i++) {
        kfree(objs[i]);
    }
    expect_empty();
}

/* The cache's counters now. */
static struct kcache_stats cache_stats(void)
{
    struct kcache_stats st;
    kcache_get_stats(kheap_cache(), &st);
    return st;
}

/* kmalloc_small(size) meets the corrupt slab s: one report naming it, one more
 * corruption and quarantined slab; the object is elsewhere. */
static void* kmalloc_past_corrupt(size_t size, const struct unit_slab_mirror* s)
{
    struct kcache_stats before = cache_stats();
    size_t reports = kheap_hosted_report_count();
    unsigned char* p = kmalloc_small(size);
    struct kcache_stats after = cache_stats();
    assert_non_null(p);
    assert_int_equal(kheap_hosted_report_count(), reports + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_CACHE_QUARANTINE);
    assert_ptr_equal(kheap_hosted_last_report().ptr, s);
    assert_int_equal(after.corruptions, before.corruptions + 1);
    assert_int_equal(after.quarantined_slabs, before.quarantined_slabs + 1);
    assert_int_equal(after.list_rebuilds, before.list_rebuilds + 1);
    assert_true(block_of(p) != block_of(s));
    return p;
}

/* A shape word that names no geometry: every path that reads the header
 * reports it (never follows it); kfree, ksize and krealloc change nothing,
 * kmalloc and trim quarantine the slab and the class goes on. */
static void test_bad_shape_every_path(void** state)
{
    (void)state;
    init_heap(64);

    /* A partial slab of the 32-byte class. */
    unsigned char* a = kmalloc_small(32);
    unsigned char* b = kmalloc_small(32);
    assert_non_null(a);
    assert_non_null(b);
    struct unit_slab_mirror* s = (struct unit_slab_mirror*)(void*)(pool() + block_of(a) * UNIT_BS);
    uintptr_t shape = s->shape;
    s->shape = 0x7FFF;
    size_t used = kheap_get()->used_blocks;
    size_t rejected = kheap_get()->rejected_frees;
    unsigned char* c = kmalloc_past_corrupt(32, s); /* alloc: header refused, quarantined */
    assert_int_equal(kheap_get()->used_blocks, used + 1); /* a new one-block slab */
    assert_int_equal(kheap_get()->rejected_frees, rejected);
    kfree(a); /* free: refused as corrupt */
    assert_int_equal(kheap_get()->rejected_frees, rejected + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT);
    assert_int_equal(ksize(a), 0);
    assert_null(krealloc(b, 1000));
    assert_int_equal(kheap_get()->rejected_frees, rejected + 2);
    expect_kheap_check(-ECORRUPT, block_of(a));
    assert_int_equal(kheap_get()->used_blocks, used + 1);
    /* Put back: sound, but missing from its class's list. */
    s->shape = shape;
    expect_kheap_check(-ECORRUPT, SIZE_MAX);
    assert_int_equal(ksize(a), 32);
    kfree(a);
    kfree(b); /* emptied off the list: the spare */
    kfree(c); /* c's slab emptied: given back */
    expect_kheap_check(0, 0);

    /* The spare: refill meets it, quarantines it, makes a new slab. */
    assert_null(kheap_cache()->classes[1].partial);
    assert_ptr_equal(kheap_cache()->classes[1].spare, s);
    s->shape = 0x7FFF;
    unsigned char* d = kmalloc_past_corrupt(32, s);
    assert_null(kheap_cache()->classes[1].spare);
    expect_kheap_check(-ECORRUPT, block_of(s));
    kfree(d); /* d's slab: the spare */
    struct unit_slab_mirror* t = (struct unit_slab_mirror*)(void*)(pool() + block_of(d) * UNIT_BS);
    assert_ptr_equal(kheap_cache()->classes[1].spare, t);

    /* Trim meets a corrupt spare: reported once, quarantined, not freed. */
    t->shape = 0x7FFF;
    struct kcache_stats st = cache_stats();
    size_t reports = kheap_hosted_report_count();
    assert_int_equal(kheap_trim(), 0);
    assert_int_equal(kheap_trim(), 0);
    assert_int_equal(kheap_hosted_report_count(), reports + 1);
    assert_ptr_equal(kheap_hosted_last_report().ptr, t);
    struct kcache_stats now = cache_stats();
    assert_int_equal(now.corruptions, st.corruptions + 1);
    assert_int_equal(now.quarantined_slabs, st.quarantined_slabs + 1);
    assert_int_equal(now.spare_slabs, 0);
    assert_int_equal(now.slabs, 2); /* both quarantined slabs stay allocated */
    expect_kheap_check(-ECORRUPT, block_of(s) < block_of(t) ? block_of(s) : block_of(t));
}

/* Headers forged with a valid seal but impossible contents: caught by the
 * invariants behind the seal. */
static void test_forged_headers(void** state)
{
    (void)state;
    init_heap(64);
    struct kcache_stats st;

    /* A partial slab whose inuse claims it is full: kmalloc refuses it. */
    unsigned char* a = kmalloc_small(32);
    assert_non_null(a);
    struct unit_slab_mirror* s = (struct unit_slab_mirror*)(void*)(pool() + block_of(a) * UNIT_BS);
    const struct kcache_geometry* g = &kheap_cache()->classes[1].geometry[s->shape & 1];
    uintptr_t inuse = s->inuse;
    s->inuse = g->capacity;
    reseal(s);
    unsigned char* b = kmalloc_past_corrupt(32, s); /* quarantined: the rebuild finds the bitmap wrong too */
    kcache_get_stats(kheap_cache(), &st);
    assert_int_equal(st.rebuild_corrupt_slabs, 1);
    expect_kheap_check(-ECORRUPT, block_of(s));
    s->inuse = (uintptr_t)g->capacity + 1; /* more than the slab holds */
    reseal(s);
    expect_kheap_check(-ECORRUPT, block_of(s));
    s->inuse = inuse;
    reseal(s);
    expect_kheap_check(-ECORRUPT, SIZE_MAX); /* sound, off its class's list */
    kfree(a); /* emptied: the spare */
    kfree(b);
    expect_kheap_check(0, 0);

    /* A full slab (on no list) whose next link is set. */
    size_t ci = KCACHE_CLASSES - 1;
    size_t capacity = kheap_cache()->classes[ci].geometry[KCACHE_PREFERRED].capacity;
    void* objs[64];
    assert_true(capacity <= 64);
    for (size_t i = 0; i < capacity; i++) {
        objs[i] = kmalloc_small(kheap_cache()->classes[ci].size);
        assert_non_null(objs[i]);
    }
    struct unit_slab_mirror* full = (struct unit_slab_mirror*)(void*)(pool() + block_of(objs[0]) * UNIT_BS);
    assert_int_equal(full->inuse, capacity);
    full->next = (uintptr_t)s;
    reseal(full);
    expect_kheap_check(-ECORRUPT, block_of(full));
    full->next = 0;
    reseal(full);
    expect_kheap_check(0, 0);
    for (size_t i = 0; i < capacity; i++) {
        kfree(objs[i]);
    }
    expect_empty();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_find_bounds),
        cmocka_unit_test(test_map_of_empty_table),
        cmocka_unit_test(test_lookup_slab_tail),
        cmocka_unit_test(test_lookup_corrupt_chain),
        cmocka_unit_test(test_check_list_pointers),
        cmocka_unit_test(test_bad_shape_every_path),
        cmocka_unit_test(test_forged_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
