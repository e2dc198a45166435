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
 *     head or spare past the heap, the spare also on the partial list, a
 *     full slab on the partial list;
 *   - a slab whose slab-table record names no class (the record written by
 *     someone else), met by kfree, ksize, krealloc and kheap_check: kfree
 *     and krealloc refuse with HEAP_REPORT_FREE_CORRUPT and change nothing,
 *     ksize says 0, kheap_check names the slab; the rest of the class goes
 *     on;
 *   - records with impossible contents: a partial slab claiming to be full,
 *     more objects than the slab holds, a full slab with a list link.
 */
#include "unit.h"
#include "unit_kheap.h"

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
        size_t tail = (size_t)g->capacity * c->size; /* object 0 at the slab's first byte */
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

    /* A partial list head past the heap's last block. */
    assert_int_equal(kc->classes[5].partial, KCACHE_NONE);
    kc->classes[5].partial = 64;
    expect_kheap_check(-ECORRUPT, SIZE_MAX);
    kc->classes[5].partial = KCACHE_NONE;
    expect_kheap_check(0, 0);

    /* The spare also on the partial list: listed slabs are never empty. */
    void* a = kmalloc_small(16);
    kfree(a);
    uint32_t spare = kc->classes[0].spare;
    assert_int_equal(spare, block_of(a));
    /* A spare past the heap (in a class without slabs). */
    kc->classes[5].spare = 64;
    expect_kheap_check(-ECORRUPT, SIZE_MAX);
    kc->classes[5].spare = KCACHE_NONE;
    expect_kheap_check(0, 0);
    assert_int_equal(kc->classes[0].partial, KCACHE_NONE);
    kc->classes[0].partial = spare;
    expect_kheap_check(-ECORRUPT, spare);
    kc->classes[0].partial = KCACHE_NONE;
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
    assert_int_equal(kc->classes[ci].partial, KCACHE_NONE); /* full: on no list */
    uint32_t full = (uint32_t)block_of(objs[0]);
    kc->classes[ci].partial = full;
    expect_kheap_check(-ECORRUPT, full);
    kc->classes[ci].partial = KCACHE_NONE;
    expect_kheap_check(0, 0);
    for (size_t i = 0; i < capacity; i++) {
        kfree(objs[i]);
    }
    expect_empty();
}

/* A record whose shape names no class: kfree, ksize and krealloc, which
 * decide from the record, refuse the slab's objects and change nothing;
 * kheap_check names the slab. The class's other slabs go on. */
static void test_bad_shape_refused(void** state)
{
    (void)state;
    init_heap(64);
    struct kcache* kc = kheap_cache();

    /* Two slabs of the 2048-byte class (two objects each): the first full. */
    size_t ci = KCACHE_CLASSES - 1;
    assert_int_equal(kc->classes[ci].geometry[KCACHE_PREFERRED].capacity, 2);
    unsigned char* a = kmalloc_small(2048);
    unsigned char* b = kmalloc_small(2048);
    unsigned char* c = kmalloc_small(2048);
    assert_int_equal(block_of(a), block_of(b));
    assert_int_not_equal(block_of(a), block_of(c));
    struct kcache_slab* rec = &kc->slab_table[block_of(a)];
    uint8_t shape = rec->shape;
    rec->shape = 0xFF;
    size_t used = kheap_get()->used_blocks;
    size_t rejected = kheap_get()->rejected_frees;
    size_t reports = kheap_hosted_report_count();
    kfree(a); /* refused as corrupt */
    assert_int_equal(kheap_get()->rejected_frees, rejected + 1);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT);
    assert_ptr_equal(kheap_hosted_last_report().ptr, a);
    assert_int_equal(kheap_hosted_last_report().block, block_of(a));
    assert_int_equal(ksize(a), 0);
    assert_int_equal(ksize(b), 0);
    assert_null(krealloc(b, 4000)); /* refused as kfree refuses it */
    assert_int_equal(kheap_get()->rejected_frees, rejected + 2);
    assert_int_equal(kheap_hosted_last_report().kind, HEAP_REPORT_FREE_CORRUPT);
    assert_int_equal(kheap_hosted_report_count(), reports + 2);
    assert_int_equal(kc->corruptions, 2);
    assert_int_equal(rec->inuse, 2); /* nothing changed */
    assert_int_equal(kheap_get()->used_blocks, used);
    expect_kheap_check(-ECORRUPT, block_of(a));
    /* The class's other slab is untouched: c is freed, one more comes. */
    assert_int_equal(ksize(c), 2048);
    kfree(c);
    c = kmalloc_small(2048);
    assert_int_equal(kheap_hosted_report_count(), reports + 2);
    /* Put back: sound again; everything is freed. */
    rec->shape = shape;
    expect_kheap_check(0, 0);
    assert_int_equal(ksize(a), 2048);
    kfree(a);
    kfree(b);
    kfree(c);
    assert_int_equal(kheap_get()->rejected_frees, rejected + 2);
    expect_empty();
}

/* Records with impossible contents: named by kheap_check. */
static void test_impossible_records(void** state)
{
    (void)state;
    init_heap(64);
    struct kcache* kc = kheap_cache();

    /* A partial slab whose inuse claims it is full, or more than it holds. */
    unsigned char* a = kmalloc_small(32);
    assert_non_null(a);
    struct kcache_slab* s = &kc->slab_table[block_of(a)];
    const struct kcache_geometry* g = &kc->classes[1].geometry[(s->shape - 1) & 1];
    uint16_t inuse = s->inuse;
    s->inuse = g->capacity;
    expect_kheap_check(-ECORRUPT, block_of(a));
    s->inuse = (uint16_t)(g->capacity + 1);
    expect_kheap_check(-ECORRUPT, block_of(a));
    s->inuse = inuse;
    expect_kheap_check(0, 0);
    kfree(a); /* emptied: the spare */
    expect_kheap_check(0, 0);

    /* A full slab (on no list) whose next link is set. */
    size_t ci = KCACHE_CLASSES - 1;
    size_t capacity = kc->classes[ci].geometry[KCACHE_PREFERRED].capacity;
    void* objs[64];
    assert_true(capacity <= 64);
    for (size_t i = 0; i < capacity; i++) {
        objs[i] = kmalloc_small(kc->classes[ci].size);
        assert_non_null(objs[i]);
    }
    struct kcache_slab* full = &kc->slab_table[block_of(objs[0])];
    assert_int_equal(full->inuse, capacity);
    full->next = (uint32_t)block_of(a);
    expect_kheap_check(-ECORRUPT, block_of(objs[0]));
    full->next = KCACHE_NONE;
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
        cmocka_unit_test(test_bad_shape_refused),
        cmocka_unit_test(test_impossible_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
