/*
 * test_heap_create.c - heap_create: every invalid argument returns -EINVARG
 * and writes nothing at all (the heap struct, the table struct and the
 * entries keep a canary pattern); success clears every entry.
 */
#include "unit.h"

#define BLOCKS 8
#define POOL UNIT_POOL
#define END (POOL + BLOCKS * UNIT_BS)
#define HEAP_CANARY 0xA5
#define ENTRY_CANARY 0x5A
#define GUARD_BYTES 16

/* Entries live in the middle of `buf`, with guard bytes on both sides. */
struct fixture
{
    struct heap heap;
    struct heap heap_before;
    struct heap_table table;
    unsigned char buf[GUARD_BYTES + BLOCKS + GUARD_BYTES];
};

static void fixture_init(struct fixture* f)
{
    memset(&f->heap, HEAP_CANARY, sizeof(f->heap));
    memset(&f->heap_before, HEAP_CANARY, sizeof(f->heap_before));
    memset(f->buf, ENTRY_CANARY, sizeof(f->buf));
    f->table.entries = f->buf + GUARD_BYTES;
    f->table.total = BLOCKS;
}

/* heap_create(args) must return -EINVARG and change nothing. */
static void assert_rejected(struct fixture* f, struct heap* heap, uintptr_t ptr, uintptr_t end, struct heap_table* table)
{
    struct heap_table table_before = f->table;
    assert_int_equal(heap_create(heap, (void*)ptr, (void*)end, table), -EINVARG);
    assert_memory_equal(&f->heap, &f->heap_before, sizeof(f->heap));
    assert_ptr_equal(f->table.entries, table_before.entries);
    assert_int_equal(f->table.total, table_before.total);
    for (size_t i = 0; i < sizeof(f->buf); i++) {
        assert_int_equal(f->buf[i], ENTRY_CANARY);
    }
}

static void test_create_null_heap(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    assert_rejected(&f, NULL, POOL, END, &f.table);
}

static void test_create_null_ptr(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    /* ptr NULL with an end and total that would otherwise match (0 is aligned). */
    assert_rejected(&f, &f.heap, 0, BLOCKS * UNIT_BS, &f.table);
}

static void test_create_null_end(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    assert_rejected(&f, &f.heap, POOL, 0, &f.table);
}

static void test_create_null_table(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    assert_rejected(&f, &f.heap, POOL, END, NULL);
}

static void test_create_null_entries(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.table.entries = NULL;
    assert_int_equal(heap_create(&f.heap, (void*)POOL, (void*)END, &f.table), -EINVARG);
    assert_memory_equal(&f.heap, &f.heap_before, sizeof(f.heap));
    assert_null(f.table.entries);
    assert_int_equal(f.table.total, BLOCKS);
}

static void test_create_unaligned_ptr(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    static const uintptr_t offsets[] = { 1, 2, 8, 2048, UNIT_BS - 1 };
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        /* Same byte count, and a total that matches the rounded block count. */
        assert_rejected(&f, &f.heap, POOL + offsets[k], END + offsets[k], &f.table);
        assert_rejected(&f, &f.heap, POOL + offsets[k], END, &f.table);
    }
}

static void test_create_unaligned_end(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    static const uintptr_t offsets[] = { 1, 17, 2048, UNIT_BS - 1 };
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        /* (end - ptr) / block size is still BLOCKS here: only alignment is wrong. */
        assert_rejected(&f, &f.heap, POOL, END + offsets[k], &f.table);
        assert_rejected(&f, &f.heap, POOL, END - offsets[k], &f.table);
    }
}

static void test_create_end_equals_ptr(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.table.total = 0;
    assert_rejected(&f, &f.heap, POOL, POOL, &f.table);
}

static void test_create_end_below_ptr(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    /* total as large as the true (positive) distance ... */
    assert_rejected(&f, &f.heap, END, POOL, &f.table);
    /* ... or as the distance computed with wrap-around, which a check of the
     * total alone would accept. */
    f.table.total = (size_t)(((uintptr_t)POOL - (uintptr_t)END) / UNIT_BS);
    assert_rejected(&f, &f.heap, END, POOL, &f.table);
    f.table.total = 0;
    assert_rejected(&f, &f.heap, END, POOL, &f.table);
}

static void test_create_wrong_total(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    static const size_t totals[] = { 0, 1, BLOCKS - 1, BLOCKS + 1, 2 * BLOCKS, SIZE_MAX };
    for (size_t k = 0; k < sizeof(totals) / sizeof(totals[0]); k++) {
        f.table.total = totals[k];
        assert_rejected(&f, &f.heap, POOL, END, &f.table);
    }
}

static void test_create_success_clears_table(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    assert_int_equal(heap_create(&f.heap, (void*)POOL, (void*)END, &f.table), 0);
    for (size_t i = 0; i < GUARD_BYTES; i++) {
        assert_int_equal(f.buf[i], ENTRY_CANARY); /* nothing before the table */
        assert_int_equal(f.buf[GUARD_BYTES + BLOCKS + i], ENTRY_CANARY); /* nor after */
    }
    unit_assert_table(&f.heap, "00 00 00 00 00 00 00 00");
    assert_ptr_equal(f.heap.table, &f.table);
    assert_ptr_equal(f.heap.saddr, (void*)POOL);
    assert_ptr_equal(f.table.entries, f.buf + GUARD_BYTES);
    assert_int_equal(f.table.total, BLOCKS);
    /* Every member we added starts at zero / NULL, whatever was there. */
    assert_int_equal(f.heap.used_blocks, 0);
    assert_int_equal(f.heap.live_allocations, 0);
    assert_int_equal(f.heap.rejected_frees, 0);
    assert_int_equal(f.heap.failed_allocs, 0);
    assert_null(f.heap.report);
    assert_null(f.heap.report_ctx);
    assert_null(f.heap.index);
    assert_null(f.heap.index_ops);
    unit_assert_clean(&f.heap);
    assert_ptr_equal(heap_malloc(&f.heap, 1), (void*)POOL);
}

static void test_create_one_block(void** state)
{
    (void)state;
    unsigned char entry = 0xFF;
    struct heap_table table = { &entry, 1 };
    struct heap heap;
    assert_int_equal(heap_create(&heap, (void*)POOL, (void*)(POOL + UNIT_BS), &table), 0);
    assert_int_equal(entry, 0x00);
    assert_ptr_equal(heap_malloc(&heap, UNIT_BS), (void*)POOL);
    assert_int_equal(entry, 0x41);
    assert_null(heap_malloc(&heap, 1));
}

/* Re-creating a heap forgets every allocation and every counter. */
static void test_create_again_resets(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    assert_non_null(heap_malloc(&u.heap, 3 * UNIT_BS));
    heap_free(&u.heap, unit_ptr(&u, 1)); /* refused: interior */
    assert_null(heap_malloc(&u.heap, 2 * UNIT_BS));
    unit_assert_table(&u.heap, "C1 81 01 00");
    assert_int_equal(heap_create(&u.heap, (void*)POOL, (void*)(POOL + 4 * UNIT_BS), &u.table), 0);
    unit_assert_table(&u.heap, "00 00 00 00");
    assert_int_equal(u.heap.used_blocks, 0);
    assert_int_equal(u.heap.live_allocations, 0);
    assert_int_equal(u.heap.rejected_frees, 0);
    assert_int_equal(u.heap.failed_allocs, 0);
    assert_null(u.heap.report);
    unit_heap_destroy(&u);
}

/* A failed heap_create on a live heap leaves that heap fully usable. */
static void test_create_failure_keeps_existing_heap(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 0));
    struct heap before = u.heap;
    u.table.total = 5; /* wrong */
    assert_int_equal(heap_create(&u.heap, (void*)POOL, (void*)(POOL + 4 * UNIT_BS), &u.table), -EINVARG);
    u.table.total = 4;
    assert_memory_equal(&u.heap, &before, sizeof(before));
    unit_assert_table(&u.heap, "41 00 00 00");
    assert_ptr_equal(heap_malloc(&u.heap, 1), unit_ptr(&u, 1));
    unit_heap_destroy(&u);
}

/* ------------------------------------------------- metadata apart */

static void test_ranges_overlap(void** state)
{
    (void)state;
    char buf[16] = { 0 }; /* only its addresses are used */
    assert_false(heap_ranges_overlap(buf, 4, buf + 4, 4)); /* adjacent, both orders */
    assert_false(heap_ranges_overlap(buf + 4, 4, buf, 4));
    assert_true(heap_ranges_overlap(buf, 5, buf + 4, 4)); /* one byte shared */
    assert_true(heap_ranges_overlap(buf + 4, 4, buf, 5));
    assert_true(heap_ranges_overlap(buf, 16, buf + 7, 1)); /* inside, both orders */
    assert_true(heap_ranges_overlap(buf + 7, 1, buf, 16));
    assert_true(heap_ranges_overlap(buf, 8, buf, 8)); /* the same range */
    assert_false(heap_ranges_overlap(buf, 0, buf, 8)); /* empty ranges share nothing */
    assert_false(heap_ranges_overlap(buf + 4, 0, buf, 8));
    assert_false(heap_ranges_overlap(buf, 8, buf + 4, 0));
    /* Ranges that end at the very top of the address space: no end is
     * computed, so nothing wraps to 0. */
    const void* top = (const void*)(UINTPTR_MAX - 9); /* 10 bytes to the top */
    assert_true(heap_ranges_overlap(top, 10, (const void*)UINTPTR_MAX, 1));
    assert_true(heap_ranges_overlap((const void*)UINTPTR_MAX, 1, top, 10));
    assert_false(heap_ranges_overlap(top, 10, (const void*)0, 16));
    assert_false(heap_ranges_overlap((const void*)0, 16, top, 10));
}

/*
 * A real pool of 4 blocks in the middle of an arena (a block on each side),
 * so that metadata can be put into it, across its edges, or right next to
 * it. heap_create never touches pool memory, so a refusal must leave the
 * whole arena as it was.
 */
enum
{
    ARENA_BLOCKS = 6,
    POOL_BLOCKS = 4,
    ARENA_FILL = 0xEE,
};

struct arena
{
    unsigned char* mem; /* ARENA_BLOCKS blocks, block-aligned */
    unsigned char* pool;
    unsigned char* end;
    unsigned char* copy;
};

static void arena_make(struct arena* a)
{
    a->mem = aligned_alloc(UNIT_BS, ARENA_BLOCKS * UNIT_BS);
    a->copy = malloc(ARENA_BLOCKS * UNIT_BS);
    assert_non_null(a->mem);
    assert_non_null(a->copy);
    memset(a->mem, ARENA_FILL, ARENA_BLOCKS * UNIT_BS);
    a->pool = a->mem + UNIT_BS;
    a->end = a->pool + POOL_BLOCKS * UNIT_BS;
}

static void arena_snapshot(struct arena* a)
{
    memcpy(a->copy, a->mem, ARENA_BLOCKS * UNIT_BS);
}

/* heap_create(heap, pool, end, table) is refused and the arena unchanged. */
static void arena_refused(struct arena* a, struct heap* heap, struct heap_table* table)
{
    arena_snapshot(a);
    assert_int_equal(heap_create(heap, a->pool, a->end, table), -EINVARG);
    assert_memory_equal(a->mem, a->copy, ARENA_BLOCKS * UNIT_BS);
}

static void arena_destroy(struct arena* a)
{
    free(a->mem);
    free(a->copy);
}

static void test_create_entries_in_pool(void** state)
{
    (void)state;
    struct arena a;
    arena_make(&a);
    struct heap heap;
    memset(&heap, HEAP_CANARY, sizeof(heap));
    struct heap before = heap;
    struct heap_table table = { NULL, POOL_BLOCKS };
    unsigned char* refused[] = { a.pool, a.pool + 100, a.end - 1, a.pool - 3 /* straddles the start */ };
    for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
        table.entries = refused[k];
        arena_refused(&a, &heap, &table);
        assert_memory_equal(&heap, &before, sizeof(heap));
    }
    /* Right before the pool, and right after it: accepted, and only the
     * entries are written. */
    unsigned char* apart[] = { a.pool - POOL_BLOCKS, a.end };
    for (size_t k = 0; k < 2; k++) {
        table.entries = apart[k];
        arena_snapshot(&a);
        assert_int_equal(heap_create(&heap, a.pool, a.end, &table), 0);
        memset(a.copy + (apart[k] - a.mem), 0, POOL_BLOCKS);
        assert_memory_equal(a.mem, a.copy, ARENA_BLOCKS * UNIT_BS);
        assert_ptr_equal(heap_malloc(&heap, UNIT_BS), a.pool);
        memset(apart[k], ARENA_FILL, POOL_BLOCKS);
    }
    arena_destroy(&a);
}

static void test_create_heap_or_table_in_pool(void** state)
{
    (void)state;
    struct arena a;
    arena_make(&a);
    unsigned char entries[POOL_BLOCKS];
    memset(entries, ENTRY_CANARY, sizeof(entries));
    struct heap_table table = { entries, POOL_BLOCKS };
    /* *heap inside the pool, and across its end */
    arena_refused(&a, (struct heap*)(void*)(a.pool + 256), &table);
    arena_refused(&a, (struct heap*)(void*)(a.end - 8), &table);
    /* *table inside the pool */
    struct heap heap;
    struct heap_table* in_pool = (struct heap_table*)(void*)(a.pool + 512);
    *in_pool = table;
    arena_refused(&a, &heap, in_pool);
    for (size_t i = 0; i < sizeof(entries); i++) {
        assert_int_equal(entries[i], ENTRY_CANARY);
    }
    arena_destroy(&a);
}

/* Clearing the entries must not clear *heap or *table. */
static void test_create_entries_over_heap_or_table(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    unsigned char* heap_bytes = (unsigned char*)&f.heap;
    struct heap_table table = { heap_bytes + 8, BLOCKS };
    assert_rejected(&f, &f.heap, POOL, END, &table);
    table.entries = heap_bytes + sizeof(f.heap) - 1; /* first entry on the heap's last byte */
    assert_rejected(&f, &f.heap, POOL, END, &table);
    /* entries over their own descriptor */
    struct
    {
        struct heap_table table;
        unsigned char after[BLOCKS];
    } blob;
    blob.table.entries = (HEAP_BLOCK_TABLE_ENTRY*)(void*)&blob.table + 1;
    blob.table.total = BLOCKS;
    assert_int_equal(heap_create(&f.heap, (void*)POOL, (void*)END, &blob.table), -EINVARG);
    assert_ptr_equal(blob.table.entries, (HEAP_BLOCK_TABLE_ENTRY*)(void*)&blob.table + 1);
    assert_int_equal(blob.table.total, BLOCKS);
    assert_memory_equal(&f.heap, &f.heap_before, sizeof(f.heap));
}

/* *table overlapping *heap: clearing *heap would change the table's entries
 * and size under heap_create's feet (it then cleared about `pool` bytes). */
static void test_create_table_over_heap(void** state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    unsigned char entries[BLOCKS];
    union
    {
        struct heap heap;
        struct heap_table table;
    } both;
    memset(&both, 0, sizeof(both));
    both.table.entries = entries;
    both.table.total = BLOCKS;
    memset(entries, 0x5A, sizeof(entries));
    assert_int_equal(heap_create(&both.heap, (void*)POOL, (void*)END, &both.table), -EINVARG);
    for (size_t i = 0; i < sizeof(entries); i++) {
        assert_int_equal(entries[i], 0x5A); /* nothing written */
    }
    /* Overlapping by one word: *table starts at *heap's last word. */
    uintptr_t words[(sizeof(struct heap) + sizeof(struct heap_table)) / sizeof(uintptr_t) + 1];
    struct heap* heap = (struct heap*)(void*)words;
    struct heap_table* shifted = (struct heap_table*)(void*)((unsigned char*)words + sizeof(struct heap) - sizeof(uintptr_t));
    shifted->entries = entries;
    shifted->total = BLOCKS;
    assert_int_equal(heap_create(heap, (void*)POOL, (void*)END, shifted), -EINVARG);
    assert_int_equal(entries[0], 0x5A);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_null_heap),
        cmocka_unit_test(test_create_null_ptr),
        cmocka_unit_test(test_create_null_end),
        cmocka_unit_test(test_create_null_table),
        cmocka_unit_test(test_create_null_entries),
        cmocka_unit_test(test_create_unaligned_ptr),
        cmocka_unit_test(test_create_unaligned_end),
        cmocka_unit_test(test_create_end_equals_ptr),
        cmocka_unit_test(test_create_end_below_ptr),
        cmocka_unit_test(test_create_wrong_total),
        cmocka_unit_test(test_create_success_clears_table),
        cmocka_unit_test(test_create_one_block),
        cmocka_unit_test(test_create_again_resets),
        cmocka_unit_test(test_create_failure_keeps_existing_heap),
        cmocka_unit_test(test_ranges_overlap),
        cmocka_unit_test(test_create_entries_in_pool),
        cmocka_unit_test(test_create_heap_or_table_in_pool),
        cmocka_unit_test(test_create_entries_over_heap_or_table),
        cmocka_unit_test(test_create_table_over_heap),
    };
    return cmocka_run_group_tests_name("heap_create", tests, NULL, NULL);
}
