/*
 * tests/unit/test_kcache_table.c - kcache_check against the slab table
 * (struct kcache_slab, kcache.h): each field of a record made wrong in turn
 * on a heap whose layout the test knows, each giving -ECORRUPT with the
 * right block, and a clean check once it is put back:
 *
 *   - the shape: 0 on a slab's first block, a value naming no class, the
 *     other geometry of the class or another class whose length is not the
 *     allocation's in the block table;
 *   - inuse against the bitmap (one more, one less, a live bit cleared);
 *   - a padding bit (from the capacity to the end of the bitmap's words)
 *     cleared, in one-block and three-block slabs;
 *   - a nonzero word past the bitmap's `words`, in the slab's first record
 *     and in a later block's record;
 *   - the `unused` byte;
 *   - a nonzero field of a block that starts no slab: a free block (named
 *     itself), a slab's later block (named by the slab's first block);
 *   - list links: a full slab or the spare with a link, a partial slab's
 *     prev, a partial slab's next to a block that is not a slab of the
 *     class (free, of another class, past the heap);
 *   - the class's spare naming a slab that is not empty, a slab of another
 *     class, or no longer naming the empty slab.
 *
 * The pool is a fake address, never touched (no poison): kcache_check reads
 * the block table and the slab table only.
 */
#include "unit.h"

#include "memory/heap/kcache.h"

enum
{
    T_BLOCKS = 32,
    T_SMALL = 2,     /* class 2 (48 bytes): one-block slabs of 85, words 2 of 4 */
    T_LONG = 33,     /* class 33 (768 bytes): three-block slabs of 16, words 1 of 12 */
    T_SPARE = 0,     /* class 0 (16 bytes): one-block slabs of 256, its spare */
};

/* The heap: block 0 S1 and block 1 S2 (class T_SMALL, both partial: the
 * list S1 -> S2), blocks 2-4 F (class T_LONG, full), block 5 E (class
 * T_SPARE, empty: the spare), the rest free. */
struct t_env
{
    struct unit_heap u;
    struct kcache_slab* slabs;
    struct kcache kc;
    void* s1_objs[85];
    void* s2_obj;
    void* f_objs[16];
};

static struct t_env env;

#define S1 0u
#define S2 1u
#define F 2u
#define E 5u
#define FREE_BLOCK 9u

static int t_setup(void** state)
{
    (void)state;
    struct t_env* e = &env;
    memset(e, 0, sizeof(*e));
    unit_heap_make(&e->u, T_BLOCKS, false);
    size_t bytes = kcache_table_bytes(T_BLOCKS);
    e->slabs = unit_xmalloc(bytes);
    assert_int_equal(kcache_init(&e->kc, &e->u.heap, e->slabs, bytes, 0), 0);
    struct kcache* kc = &e->kc;
    /* The geometries the layout assumes. */
    assert_int_equal(kc->classes[T_SMALL].size, 48);
    assert_int_equal(kc->classes[T_SMALL].geometry[KCACHE_PREFERRED].blocks, 1);
    assert_int_equal(kc->classes[T_SMALL].geometry[KCACHE_PREFERRED].capacity, 85);
    assert_int_equal(kc->classes[T_SMALL].geometry[KCACHE_PREFERRED].words, 2);
    assert_int_equal(kc->classes[T_LONG].size, 768);
    assert_int_equal(kc->classes[T_LONG].geometry[KCACHE_PREFERRED].blocks, 3);
    assert_int_equal(kc->classes[T_LONG].geometry[KCACHE_PREFERRED].capacity, 16);
    assert_int_equal(kc->classes[T_LONG].geometry[KCACHE_PREFERRED].words, 1);
    assert_int_equal(KCACHE_BLOCK_WORDS, 4);

    for (size_t i = 0; i < 85; i++) {
        e->s1_objs[i] = kcache_alloc(kc, 48);
        assert_int_equal(unit_block_of(&e->u, (void*)((uintptr_t)e->s1_objs[i] & ~(uintptr_t)(UNIT_BS - 1))), S1);
    }
    e->s2_obj = kcache_alloc(kc, 48);
    assert_ptr_equal(e->s2_obj, unit_ptr(&e->u, S2));
    for (size_t i = 0; i < 16; i++) {
        e->f_objs[i] = kcache_alloc(kc, 768);
        assert_ptr_equal(e->f_objs[i], (unsigned char*)unit_ptr(&e->u, F) + i * 768);
    }
    void* x = kcache_alloc(kc, 16);
    assert_ptr_equal(x, unit_ptr(&e->u, E));
    kcache_free(kc, x);
    kcache_free(kc, e->s1_objs[84]); /* S1 partial again: the list's head */
    e->s1_objs[84] = NULL;
    assert_int_equal(kc->classes[T_SMALL].partial, S1);
    assert_int_equal(kc->slab_table[S1].next, S2);
    assert_int_equal(kc->slab_table[S2].prev, S1);
    assert_int_equal(kc->slab_table[S2].next, KCACHE_NONE);
    assert_int_equal(kc->classes[T_SPARE].spare, E);
    assert_int_equal(kc->slab_table[F].inuse, 16);
    assert_int_equal(e->u.heap.used_blocks, 6);
    size_t bad = 12345;
    assert_int_equal(kcache_check(kc, &bad), 0);
    return 0;
}

static int t_teardown(void** state)
{
    (void)state;
    unit_heap_destroy(&env.u);
    free(env.slabs);
    env.slabs = NULL;
    return 0;
}

static struct kcache_slab* rec(size_t b)
{
    return &env.kc.slab_table[b];
}

static void expect_bad_(size_t want, const char* what, const char* file, int line)
{
    size_t bad = 12345;
    int res = kcache_check(&env.kc, &bad);
    if (res != -ECORRUPT || bad != want) {
        print_error("%s: kcache_check %d at block %zu, want -ECORRUPT at %zu\n", what, res, bad, want);
        _fail(file, line);
    }
}
#define expect_bad(want, what) expect_bad_((want), (what), __FILE__, __LINE__)

static void expect_clean_(const char* file, int line)
{
    size_t bad = 12345;
    int res = kcache_check(&env.kc, &bad);
    if (res != 0) {
        print_error("after putting back: kcache_check %d at block %zu\n", res, bad);
        _fail(file, line);
    }
}
#define expect_clean() expect_clean_(__FILE__, __LINE__)

/* Change one record with `change`, expect block `want`, put it back. */
#define CORRUPT(block, change, want)                  \
    do {                                              \
        struct kcache_slab saved_ = *rec(block);      \
        struct kcache_slab* r = rec(block);           \
        change;                                       \
        expect_bad((want), #change);                  \
        *rec(block) = saved_;                         \
        expect_clean();                               \
    } while (0)

/* A bad next link in the record of `block`: kcache_check names that record. */
#define CORRUPT_LINK(block, change)                                                               \
    do {                                                                                          \
        struct kcache_slab saved_ = *rec(block);                                                  \
        struct kcache_slab* r = rec(block);                                                       \
        change;                                                                                   \
        size_t bad_ = 12345;                                                                      \
        assert_int_equal(kcache_check(&env.kc, &bad_), -ECORRUPT);                                \
        if (bad_ != (block)) {                                                                    \
            print_error("%s: kcache_check at block %zu, want %zu\n", #change, bad_, (size_t)(block)); \
            fail();                                                                               \
        }                                                                                         \
        *rec(block) = saved_;                                                                     \
        expect_clean();                                                                           \
    } while (0)

static uint8_t shape_of(size_t ci, size_t which)
{
    return (uint8_t)((ci << 1 | which) + 1);
}

static void test_shape(void** state)
{
    (void)state;
    CORRUPT(S1, r->shape = 0, S1);                                  /* the table has a slab, the record none */
    CORRUPT(S1, r->shape = (uint8_t)(2 * KCACHE_CLASSES + 1), S1);  /* names no class */
    CORRUPT(S2, r->shape = 0xFF, S2);
    CORRUPT(F, r->shape = 0, F);
    CORRUPT(F, r->shape = shape_of(T_LONG, KCACHE_SINGLE), F);      /* a one-block geometry, a 3-block slab */
    CORRUPT(F, r->shape = shape_of(T_SMALL, KCACHE_PREFERRED), F);  /* another class: 1 block */
    CORRUPT(S1, r->shape = shape_of(T_LONG, KCACHE_PREFERRED), S1); /* 3 blocks, a 1-block slab */
    CORRUPT(E, r->shape = shape_of(T_LONG, KCACHE_PREFERRED), E);
}

static void test_inuse_vs_bitmap(void** state)
{
    (void)state;
    CORRUPT(S1, r->inuse++, S1);                     /* one more than the bitmap holds */
    CORRUPT(S1, r->inuse--, S1);                     /* one less */
    CORRUPT(S2, r->bits[0] |= 2, S2);                /* a free object marked live */
    CORRUPT(S1, r->bits[0] &= ~(uintptr_t)1, S1);    /* a live object marked free */
    CORRUPT(F, r->inuse = 17, F);                    /* more than the capacity */
    CORRUPT(E, r->inuse = 1, E);                     /* the spare claims an object */
    CORRUPT(E, r->bits[3] = (uintptr_t)1 << 5, E);   /* ... or a live bit (class 0: 4 words, no padding) */
}

static void test_padding_bits(void** state)
{
    (void)state;
    size_t bits = sizeof(uintptr_t) * 8;
    /* Class 48: objects 0..84, padding 85..127 of words 0..1. */
    CORRUPT(S1, r->bits[1] &= ~((uintptr_t)1 << (85 - bits)), S1); /* the first padding bit */
    CORRUPT(S2, r->bits[1] &= ~((uintptr_t)1 << (bits - 1)), S2);  /* the last */
    /* Class 768 in 3 blocks: objects 0..15, padding 16..63 of word 0. */
    CORRUPT(F, r->bits[0] &= ~((uintptr_t)1 << 16), F);
    CORRUPT(F, r->bits[0] &= ~((uintptr_t)1 << (bits - 1)), F);
}

static void test_words_past_bitmap(void** state)
{
    (void)state;
    CORRUPT(S1, r->bits[2] = 1, S1); /* class 48: words 2 and 3 are past its 2 */
    CORRUPT(S2, r->bits[3] = (uintptr_t)1 << 63, S2);
    CORRUPT(F, r->bits[1] = 1, F);        /* class 768: only word 0 is its bitmap */
    CORRUPT(F + 1, r->bits[0] = 1, F);    /* its later blocks' words: 4 .. 11 */
    CORRUPT(F + 2, r->bits[3] = 4, F);
}

static void test_unused_byte(void** state)
{
    (void)state;
    CORRUPT(S1, r->unused = 1, S1);
    CORRUPT(F, r->unused = 0x80, F);
    CORRUPT(E, r->unused = 1, E);
}

static void test_records_of_no_slab(void** state)
{
    (void)state;
    /* A free block: every field and word 0. */
    CORRUPT(FREE_BLOCK, r->next = 1, FREE_BLOCK);
    CORRUPT(FREE_BLOCK, r->prev = KCACHE_NONE, FREE_BLOCK);
    CORRUPT(FREE_BLOCK, r->inuse = 1, FREE_BLOCK);
    CORRUPT(FREE_BLOCK, r->shape = shape_of(T_SMALL, KCACHE_PREFERRED), FREE_BLOCK); /* a slab the table lacks */
    CORRUPT(FREE_BLOCK, r->unused = 1, FREE_BLOCK);
    CORRUPT(FREE_BLOCK, r->bits[0] = 1, FREE_BLOCK);
    CORRUPT(FREE_BLOCK, r->bits[KCACHE_BLOCK_WORDS - 1] = 1, FREE_BLOCK);
    CORRUPT(T_BLOCKS - 1, r->bits[1] = 1, T_BLOCKS - 1); /* the last record */
    CORRUPT(E + 1, r->shape = 1, E + 1);                 /* just after a slab */
    /* A slab's later block: its fields are 0 (its words are the bitmap's). */
    CORRUPT(F + 1, r->shape = rec(F)->shape, F);
    CORRUPT(F + 1, r->next = KCACHE_NONE, F);
    CORRUPT(F + 2, r->prev = 1, F);
    CORRUPT(F + 2, r->inuse = 1, F);
    CORRUPT(F + 1, r->unused = 1, F);
}

static void test_list_links(void** state)
{
    (void)state;
    /* Slabs on no list have no links. */
    CORRUPT(F, r->next = S1, F);     /* full */
    CORRUPT(F, r->prev = S2, F);
    CORRUPT(E, r->next = E, E);      /* the spare */
    CORRUPT(E, r->prev = 0, E);
    /* The partial list S1 -> S2, its back links. */
    CORRUPT(S2, r->prev = KCACHE_NONE, S2);
    CORRUPT(S2, r->prev = S2, S2);
    CORRUPT(S1, r->prev = S2, S1);
    /* A next link to a block that is no partial slab of the class: the
     * record holding the link is the one that is wrong. */
    CORRUPT_LINK(S1, r->next = FREE_BLOCK);
    CORRUPT_LINK(S1, r->next = F);        /* a slab of another class */
    CORRUPT_LINK(S1, r->next = E);        /* another class's spare */
    CORRUPT_LINK(S1, r->next = F + 1);    /* inside a slab */
    CORRUPT_LINK(S1, r->next = T_BLOCKS); /* past the heap */
    CORRUPT_LINK(S2, r->next = S1);       /* back to the head: a loop */
}

static void test_spare(void** state)
{
    (void)state;
    struct kcache* kc = &env.kc;
    /* The spare naming a slab that is not empty: a partial one of its
     * class, a full one of another. */
    kc->classes[T_SMALL].spare = S2;
    expect_bad(S2, "spare = a partial slab");
    kc->classes[T_SMALL].spare = KCACHE_NONE;
    expect_clean();
    kc->classes[T_LONG].spare = F;
    expect_bad(F, "spare = a full slab");
    kc->classes[T_LONG].spare = KCACHE_NONE;
    expect_clean();
    /* Another class's empty slab. */
    kc->classes[T_SMALL].spare = E;
    expect_bad(E, "spare = another class's spare");
    kc->classes[T_SMALL].spare = KCACHE_NONE;
    expect_clean();
    /* A free block, a block inside a slab. */
    kc->classes[T_SMALL].spare = FREE_BLOCK;
    expect_bad(FREE_BLOCK, "spare = a free block");
    kc->classes[T_SMALL].spare = F + 1;
    expect_bad(F + 1, "spare = inside a slab");
    kc->classes[T_SMALL].spare = KCACHE_NONE;
    expect_clean();
    /* The empty slab no longer the spare. */
    kc->classes[T_SPARE].spare = KCACHE_NONE;
    expect_bad(E, "an empty slab that is not the spare");
    kc->classes[T_SPARE].spare = E;
    expect_clean();
}

/* Everything freed after the corruptions (each put back): the table is as
 * if nothing had happened. */
static void test_free_all_after(void** state)
{
    (void)state;
    struct kcache* kc = &env.kc;
    for (size_t i = 0; i < 85; i++) {
        kcache_free(kc, env.s1_objs[i]);
    }
    kcache_free(kc, env.s2_obj);
    for (size_t i = 0; i < 16; i++) {
        kcache_free(kc, env.f_objs[i]);
    }
    assert_int_equal(env.u.heap.rejected_frees, 0);
    expect_clean();
    kcache_trim(kc);
    assert_int_equal(env.u.heap.used_blocks, 0);
    for (size_t b = 0; b < T_BLOCKS; b++) {
        static const struct kcache_slab zero;
        assert_memory_equal(rec(b), &zero, sizeof(zero));
    }
    expect_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shape, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_inuse_vs_bitmap, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_padding_bits, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_words_past_bitmap, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_unused_byte, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_records_of_no_slab, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_list_links, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_spare, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_free_all_after, t_setup, t_teardown),
    };
    return cmocka_run_group_tests_name("kcache_table", tests, NULL, NULL);
}
