/*
 * test_kvmalloc.c - virtually contiguous allocations (kvmalloc.h) over a
 * simulated page table.
 *
 * Two source heaps share one arena of real memory: A (24 blocks) above B
 * (16 blocks), so B is the lower one and must be drawn on first. The window
 * is a fake virtual range that nobody dereferences; the map hook
 * (sim_pagetable.h, shared with tests/model/kvmalloc_model.c) records
 * window page -> block in sim.pte[] (refusing a page mapped twice, an
 * unmap of a page not mapped, a block outside the arena), and every byte
 * written "through the window" goes through sim_translate(), as the MMU
 * would translate it. Fault injection: the map hook can refuse its n-th
 * call.
 */
#include "unit.h"

#include "memory/heap/heap_internal.h"
#include "memory/heap/kvmalloc.h"
#include "sim_pagetable.h"

#define A_BLOCKS 24
#define B_BLOCKS 16
#define W_BLOCKS 64
#define WINDOW ((uintptr_t)0x7f0000000000ull)

static struct sim_pt sim; /* tests/unit/sim_pagetable.h */
static void* pte[W_BLOCKS];
static unsigned char* arena; /* B, then A */
static struct kvmalloc_ops sim_ops;

static void sim_misuse(const char* what)
{
    fail_msg("page table hook misused: %s", what);
}

/* What the MMU would do: the byte behind window address v. */
static unsigned char* sim_translate(const void* v)
{
    return sim_pt_translate(&sim, v);
}

/* Everything a test needs: the sources, the window, its record. */
struct fix
{
    struct heap a, b;
    struct heap_table ta, tb;
    HEAP_BLOCK_TABLE_ENTRY ea[A_BLOCKS], eb[B_BLOCKS], ew[W_BLOCKS];
    void* backing[W_BLOCKS];
    struct kvmalloc kv;
    struct unit_reports reports;
};

static struct fix* fx;

static void fix_make(bool indexed_window)
{
    fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    arena = aligned_alloc(UNIT_BS, (A_BLOCKS + B_BLOCKS) * UNIT_BS);
    assert_non_null(arena);
    sim_pt_init(&sim, WINDOW, pte, W_BLOCKS, arena, (A_BLOCKS + B_BLOCKS) * UNIT_BS, sim_misuse);
    sim_ops = sim_pt_ops(&sim);
    unsigned char* pb = arena; /* B lower, A above it */
    unsigned char* pa = arena + B_BLOCKS * UNIT_BS;
    fx->ta = (struct heap_table){ fx->ea, A_BLOCKS };
    fx->tb = (struct heap_table){ fx->eb, B_BLOCKS };
    assert_int_equal(heap_create(&fx->a, pa, pa + A_BLOCKS * UNIT_BS, &fx->ta), 0);
    assert_int_equal(heap_create(&fx->b, pb, pb + B_BLOCKS * UNIT_BS, &fx->tb), 0);
    void* index = indexed_window ? unit_xmalloc(heap_index_bytes(W_BLOCKS)) : NULL;
    assert_int_equal(kvmalloc_init(&fx->kv, (void*)WINDOW, (void*)(WINDOW + W_BLOCKS * UNIT_BS), fx->ew, index,
                                   index ? heap_index_bytes(W_BLOCKS) : 0, fx->backing, &sim_ops),
                     0);
    assert_int_equal(kvmalloc_add_source(&fx->kv, &fx->a), 0); /* added out of order: kept by address */
    assert_int_equal(kvmalloc_add_source(&fx->kv, &fx->b), 0);
    kvmalloc_set_report(&fx->kv, unit_record_report, &fx->reports);
    heap_set_report(&fx->a, unit_record_report, &fx->reports);
}

static int setup(void** state)
{
    (void)state;
    fix_make(false);
    return 0;
}

static int setup_indexed(void** state)
{
    (void)state;
    fix_make(true);
    return 0;
}

static int teardown(void** state)
{
    (void)state;
    free(fx->kv.window.index);
    free(arena);
    free(fx);
    return 0;
}

static void assert_all_sound(void)
{
    size_t bad = 12345;
    assert_int_equal(heap_check(&fx->a, NULL), 0);
    assert_int_equal(heap_check(&fx->b, NULL), 0);
    int res = kvmalloc_check(&fx->kv, &bad);
    if (res != 0) {
        print_error("kvmalloc_check: %d at window block %zu\n", res, bad);
    }
    assert_int_equal(res, 0);
}

/* Fill both sources with one-block allocations, then free every other one
 * (odd blocks stay taken): 20 free blocks, no run longer than 1. */
static void fragment(void)
{
    for (size_t i = 0; i < A_BLOCKS + B_BLOCKS; i++) {
        assert_non_null(heap_malloc(i < B_BLOCKS ? &fx->b : &fx->a, 1));
    }
    for (size_t i = 0; i < B_BLOCKS; i += 2) {
        heap_free(&fx->b, arena + i * UNIT_BS);
    }
    for (size_t i = 0; i < A_BLOCKS; i += 2) {
        heap_free(&fx->a, arena + (B_BLOCKS + i) * UNIT_BS);
    }
}

static void pattern_write(unsigned char* v, size_t bytes, unsigned seed)
{
    for (size_t i = 0; i < bytes; i++) {
        *sim_translate(v + i) = (unsigned char)(i * 31 + seed);
    }
}

static void pattern_check(unsigned char* v, size_t bytes, unsigned seed)
{
    for (size_t i = 0; i < bytes; i++) {
        assert_int_equal(*sim_translate(v + i), (unsigned char)(i * 31 + seed));
    }
}

static void test_scattered_blocks_mapped_in_order(void** state)
{
    (void)state;
    fragment();
    assert_null(heap_malloc(&fx->a, 2 * UNIT_BS)); /* no contiguous run anywhere */
    assert_null(heap_malloc(&fx->b, 2 * UNIT_BS));
    unsigned char* v = kvmalloc_alloc(&fx->kv, 20 * UNIT_BS - 5); /* every free block */
    assert_ptr_equal(v, (void*)WINDOW);
    assert_int_equal(kvmalloc_size(&fx->kv, v), 20 * UNIT_BS);
    assert_int_equal(sim.mapped, 20);
    for (size_t i = 0; i < 20; i++) { /* B's even blocks, then A's: address order */
        unsigned char* want = arena + 2 * i * UNIT_BS;
        assert_ptr_equal(kvmalloc_backing(&fx->kv, v + i * UNIT_BS + 7), want);
        assert_ptr_equal(sim.pte[i], want);
    }
    unit_assert_table(&fx->b, "45 41 45 41 45 41 45 41 45 41 45 41 45 41 45 41");
    assert_all_sound();
    pattern_write(v, 20 * UNIT_BS, 3);
    pattern_check(v, 20 * UNIT_BS, 3);
    assert_int_equal(arena[2 * UNIT_BS + 1], (unsigned char)((UNIT_BS + 1) * 31 + 3)); /* window block 1 */
    assert_null(kvmalloc_alloc(&fx->kv, 1)); /* no free block left */
    assert_int_equal(fx->kv.failed_allocs, 1);
    kvmalloc_free(&fx->kv, v);
    v = kvmalloc_alloc_from(&fx->kv, 12 * UNIT_BS, &fx->a); /* A alone: 12 free blocks */
    assert_ptr_equal(kvmalloc_backing(&fx->kv, v), arena + B_BLOCKS * UNIT_BS);
    assert_null(kvmalloc_alloc_from(&fx->kv, 9 * UNIT_BS, &fx->b)); /* B has 8 */
    assert_non_null(kvmalloc_alloc_from(&fx->kv, 8 * UNIT_BS, &fx->b));
    assert_int_equal(fx->kv.failed_allocs, 2);
    assert_all_sound();
    kvmalloc_free(&fx->kv, (void*)(WINDOW + 12 * UNIT_BS));
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(sim.mapped, 0);
    assert_int_equal(fx->a.used_blocks + fx->b.used_blocks, 20);
    assert_int_equal(fx->kv.blocks, 0);
    assert_int_equal(fx->reports.count, 0);
    assert_all_sound();
}

static void test_backing_refused_by_its_heap(void** state)
{
    (void)state;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 3 * UNIT_BS);
    void* block = kvmalloc_backing(&fx->kv, v + UNIT_BS);
    assert_ptr_equal(block, arena + UNIT_BS); /* B's second block */
    heap_free(&fx->b, block); /* no report hook on B: counted */
    assert_int_equal(fx->b.rejected_frees, 1);
    heap_set_report(&fx->b, unit_record_report, &fx->reports);
    heap_free(&fx->b, block);
    assert_int_equal(fx->reports.last.kind, HEAP_REPORT_FREE_WRONG_OWNER);
    assert_int_equal(heap_allocation_size(&fx->b, block), 0);
    assert_all_sound();
    kvmalloc_free(&fx->kv, v);
    assert_all_sound();
}

/* Every bad pointer into the window is refused with its kind; nothing changes. */
static void test_bad_frees(void** state)
{
    (void)state;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 3 * UNIT_BS);
    unsigned char* w = kvmalloc_alloc(&fx->kv, UNIT_BS);
    struct
    {
        void* ptr;
        enum heap_report_kind kind;
    } bad[] = {
        { v + UNIT_BS, HEAP_REPORT_FREE_INTERIOR },
        { v + 8, HEAP_REPORT_FREE_UNALIGNED },
        { v + 5 * UNIT_BS, HEAP_REPORT_FREE_NOT_ALLOCATED },
        { (void*)(WINDOW + W_BLOCKS * UNIT_BS), HEAP_REPORT_FREE_OUTSIDE },
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        size_t reports = fx->reports.count;
        if (k % 2 == 0) {
            kvmalloc_free(&fx->kv, bad[k].ptr);
        } else {
            assert_null(kvmalloc_realloc(&fx->kv, bad[k].ptr, 2 * UNIT_BS));
        }
        assert_int_equal(fx->reports.count, reports + 1);
        assert_int_equal(fx->reports.last.kind, bad[k].kind);
        assert_ptr_equal(fx->reports.last.ptr, bad[k].ptr);
        assert_int_equal(kvmalloc_size(&fx->kv, bad[k].ptr), 0);
    }
    assert_false(kvmalloc_owns(&fx->kv, bad[3].ptr));
    assert_true(kvmalloc_owns(&fx->kv, v + 5 * UNIT_BS));
    assert_int_equal(sim.mapped, 4);
    assert_int_equal(fx->kv.window.rejected_frees, 4);
    kvmalloc_free(&fx->kv, w);
    kvmalloc_free(&fx->kv, w); /* double free */
    assert_int_equal(fx->reports.last.kind, HEAP_REPORT_FREE_NOT_ALLOCATED);
    kvmalloc_free(&fx->kv, NULL);
    kvmalloc_free(NULL, v);
    assert_int_equal(fx->reports.count, 5);
    assert_all_sound();
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(sim.mapped, 0);
    assert_all_sound();
}

/* A broken record (V3, V4) is refused as WINDOW_CORRUPT and found by the check. */
static void test_corrupt_record(void** state)
{
    (void)state;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 3 * UNIT_BS);
    size_t bad = 0;
    void* saved = fx->backing[1];
    void* cases[] = { fx->backing[0], arena + 5 * UNIT_BS, arena + UNIT_BS + 8, NULL, (void*)WINDOW };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        fx->backing[1] = cases[k]; /* a repeat, a taken plain block, unaligned, none, outside every source */
        size_t reports = fx->reports.count;
        if (k % 2 == 0) {
            kvmalloc_free(&fx->kv, v);
        } else {
            assert_null(kvmalloc_realloc(&fx->kv, v, UNIT_BS));
        }
        assert_int_equal(fx->reports.count, reports + 1);
        assert_int_equal(fx->reports.last.kind, HEAP_REPORT_WINDOW_CORRUPT);
        assert_int_equal(fx->reports.last.block, 0);
        assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
        assert_int_equal(bad, 1);
    }
    fx->backing[1] = saved;
    void* first = fx->backing[0];
    fx->backing[0] = fx->backing[2];
    fx->backing[2] = first; /* the right blocks, out of order */
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(fx->reports.last.kind, HEAP_REPORT_WINDOW_CORRUPT);
    fx->backing[2] = fx->backing[0];
    fx->backing[0] = first;
    assert_int_equal(sim.mapped, 3);
    assert_all_sound();
    kvmalloc_free(&fx->kv, v);
    assert_all_sound();
}

/* What kvmalloc_check finds beyond the record of one allocation. */
static void test_check_finds(void** state)
{
    (void)state;
    size_t bad = 0;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 2 * UNIT_BS);
    assert_int_equal(kvmalloc_check(NULL, &bad), -EINVARG);
    fx->backing[5] = arena; /* a free window block names a block */
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, 5);
    fx->backing[5] = NULL;
    sim.pte[6] = arena; /* a free window block is mapped */
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, 6);
    sim.pte[6] = NULL;
    void* saved = sim.pte[1];
    sim.pte[1] = arena + 7 * UNIT_BS; /* mapped elsewhere than the record says */
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    sim.pte[1] = saved;
    fx->kv.fingerprint ^= 1;
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, SIZE_MAX);
    fx->kv.fingerprint ^= 1;
    void* orphan = NULL; /* a VMAP block no record names */
    assert_int_equal(heap_take_blocks(&fx->a, 1, HEAP_BLOCK_TYPE_VMAP, &orphan), 1);
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    heap_free_typed(&fx->a, orphan, HEAP_BLOCK_TYPE_VMAP);
    fx->ew[0] |= HEAP_BLOCK_TYPE_CACHE; /* a window allocation of the wrong type */
    fx->ew[1] |= HEAP_BLOCK_TYPE_CACHE;
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, 0);
    fx->ew[1] = HEAP_BLOCK_TABLE_ENTRY_TAKEN | 0x10; /* the window's own chain broken */
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, 1);
    fx->ew[0] = HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_HAS_NEXT;
    fx->ew[1] = HEAP_BLOCK_TABLE_ENTRY_TAKEN;
    fx->kv.ops.lookup = NULL; /* no lookup hook: the mapping is not checked */
    sim.pte[6] = arena;
    assert_all_sound();
    sim.pte[6] = NULL;
    kvmalloc_free(&fx->kv, v);
    assert_all_sound();
}

/* The map hook refusing its n-th call, for every n: NULL, nothing changed. */
static void test_map_failure_changes_nothing(void** state)
{
    (void)state;
    fragment();
    unsigned char before_a[A_BLOCKS], before_b[B_BLOCKS], before_w[W_BLOCKS];
    memcpy(before_a, fx->ea, A_BLOCKS);
    memcpy(before_b, fx->eb, B_BLOCKS);
    memcpy(before_w, fx->ew, W_BLOCKS);
    size_t used = fx->a.used_blocks + fx->b.used_blocks;
    for (size_t n = 0; n < 12; n++) {
        sim.calls = 0;
        sim.fail_at = n;
        assert_null(kvmalloc_alloc(&fx->kv, 12 * UNIT_BS));
        assert_int_equal(fx->kv.map_failures, n + 1);
        assert_int_equal(sim.mapped, 0);
        assert_memory_equal(before_a, fx->ea, A_BLOCKS);
        assert_memory_equal(before_b, fx->eb, B_BLOCKS);
        assert_memory_equal(before_w, fx->ew, W_BLOCKS);
        assert_int_equal(fx->a.used_blocks + fx->b.used_blocks, used);
        assert_all_sound();
    }
    sim.calls = 0;
    sim.fail_at = 12;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 12 * UNIT_BS); /* the 13th call is never made */
    assert_non_null(v);
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(fx->kv.failed_allocs, 12);
    assert_all_sound();
}

static void test_no_room(void** state)
{
    (void)state;
    assert_null(kvmalloc_alloc(&fx->kv, 0));
    assert_null(kvmalloc_alloc(NULL, UNIT_BS));
    assert_null(kvmalloc_alloc(&fx->kv, (A_BLOCKS + B_BLOCKS + 1) * UNIT_BS)); /* more than the sources hold */
    assert_null(kvmalloc_alloc(&fx->kv, (W_BLOCKS + 1) * UNIT_BS)); /* more than the window holds */
    assert_int_equal(fx->kv.failed_allocs, 2);
    void* all = kvmalloc_alloc(&fx->kv, (A_BLOCKS + B_BLOCKS) * UNIT_BS);
    assert_non_null(all);
    assert_null(kvmalloc_alloc(&fx->kv, UNIT_BS));
    assert_int_equal(fx->a.used_blocks + fx->b.used_blocks, A_BLOCKS + B_BLOCKS);
    assert_all_sound();
    kvmalloc_free(&fx->kv, all);
    void* pieces[W_BLOCKS];
    for (size_t i = 0; i < A_BLOCKS + B_BLOCKS; i++) { /* the window fills before the sources do... */
        pieces[i] = kvmalloc_alloc(&fx->kv, UNIT_BS);
        assert_non_null(pieces[i]);
    }
    for (size_t i = 0; i < A_BLOCKS + B_BLOCKS; i += 2) {
        kvmalloc_free(&fx->kv, pieces[i]);
    }
    /* ...and a window with 20 scattered free blocks has no run of 2 below block 40 */
    void* two = kvmalloc_alloc(&fx->kv, 2 * UNIT_BS);
    assert_ptr_equal(two, (void*)(WINDOW + (A_BLOCKS + B_BLOCKS) * UNIT_BS));
    kvmalloc_free(&fx->kv, two);
    for (size_t i = 1; i < A_BLOCKS + B_BLOCKS; i += 2) {
        kvmalloc_free(&fx->kv, pieces[i]);
    }
    assert_all_sound();
}

static void test_resize(void** state)
{
    (void)state;
    assert_null(kvmalloc_realloc(NULL, NULL, UNIT_BS));
    unsigned char* v = kvmalloc_realloc(&fx->kv, NULL, 4 * UNIT_BS);
    assert_ptr_equal(v, (void*)WINDOW);
    pattern_write(v, 4 * UNIT_BS, 9);
    unsigned char* blocker = kvmalloc_alloc(&fx->kv, UNIT_BS); /* window block 4: v cannot stay */
    unsigned char* s = kvmalloc_realloc(&fx->kv, v, 2 * UNIT_BS + 1); /* 3 blocks: shrunk in place */
    assert_ptr_equal(s, v);
    assert_int_equal(kvmalloc_size(&fx->kv, v), 3 * UNIT_BS);
    assert_int_equal(sim.mapped, 4);
    assert_null(sim.pte[3]);
    assert_ptr_equal(kvmalloc_realloc(&fx->kv, v, 3 * UNIT_BS), v); /* as many: nothing to do */
    assert_all_sound();
    unsigned char* g = kvmalloc_realloc(&fx->kv, v, 6 * UNIT_BS); /* grows: moves */
    assert_ptr_equal(g, (void*)(WINDOW + 5 * UNIT_BS));
    pattern_check(g, 3 * UNIT_BS, 9);
    assert_int_equal(kvmalloc_size(&fx->kv, v), 0);
    assert_all_sound();
    assert_null(kvmalloc_realloc(&fx->kv, g, (A_BLOCKS + B_BLOCKS) * UNIT_BS)); /* no room: untouched */
    pattern_check(g, 3 * UNIT_BS, 9);
    assert_int_equal(kvmalloc_size(&fx->kv, g), 6 * UNIT_BS);
    assert_null(kvmalloc_realloc(&fx->kv, g, 0)); /* frees */
    assert_int_equal(kvmalloc_size(&fx->kv, g), 0);
    kvmalloc_free(&fx->kv, blocker);
    assert_int_equal(sim.mapped, 0);
    assert_int_equal(fx->kv.blocks, 0);
    assert_all_sound();
}

/* The window is a heap: its map and statistics, and the sources' map shows V. */
static void test_window_is_a_heap(void** state)
{
    (void)state;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 3 * UNIT_BS);
    struct heap_stats st;
    heap_get_stats(&fx->kv.window, &st);
    assert_int_equal(st.total_blocks, W_BLOCKS);
    assert_int_equal(st.used_blocks, 3);
    assert_int_equal(st.largest_free_run, W_BLOCKS - 3);
    unit_assert_table(&fx->b, "45 45 45 00 00 00 00 00 00 00 00 00 00 00 00 00");
    kvmalloc_free(&fx->kv, v);
    assert_all_sound();
}

/* heap_take_blocks itself: fewer free blocks than asked, index kept. */
static void test_take_blocks(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 8, true);
    assert_non_null(heap_malloc(&u.heap, 2 * UNIT_BS));
    assert_non_null(heap_malloc(&u.heap, UNIT_BS));
    heap_free(&u.heap, unit_ptr(&u, 0));
    void* out[8];
    assert_int_equal(heap_take_blocks(&u.heap, 0, HEAP_BLOCK_TYPE_VMAP, NULL), 0);
    assert_int_equal(heap_take_blocks(&u.heap, 8, HEAP_BLOCK_TYPE_VMAP, out), 7);
    unit_assert_table(&u.heap, "45 45 41 45 45 45 45 45");
    assert_ptr_equal(out[0], unit_ptr(&u, 0));
    assert_ptr_equal(out[2], unit_ptr(&u, 3));
    assert_int_equal(u.heap.used_blocks, 8);
    assert_int_equal(u.heap.live_allocations, 8);
    assert_int_equal(heap_check(&u.heap, NULL), 0);
    heap_free_typed(&u.heap, out[1], HEAP_BLOCK_TYPE_VMAP);
    heap_free(&u.heap, out[2]);
    assert_int_equal(u.reports.last.kind, HEAP_REPORT_FREE_WRONG_OWNER);
    assert_int_equal(heap_check(&u.heap, NULL), 0);
    assert_ptr_equal(heap_malloc(&u.heap, UNIT_BS), unit_ptr(&u, 1));
    unit_heap_destroy(&u);
}

/* kvmalloc_init and kvmalloc_add_source refuse what they must, writing nothing. */
static void test_refused_setups(void** state)
{
    (void)state;
    static struct kvmalloc kv, before;
    HEAP_BLOCK_TABLE_ENTRY table[8];
    void* backing[8];
    void* w = (void*)WINDOW;
    void* end = (void*)(WINDOW + 8 * UNIT_BS);
    struct kvmalloc_ops no_map = { NULL, sim_pt_unmap, NULL, &sim };
    struct kvmalloc_ops no_unmap = { sim_pt_map, NULL, NULL, &sim };
    memset(&kv, 0x5A, sizeof(kv));
    memcpy(&before, &kv, sizeof(kv));
    assert_int_equal(kvmalloc_init(NULL, w, end, table, NULL, 0, backing, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, NULL, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, backing, NULL), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, backing, &no_map), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, backing, &no_unmap), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, (char*)end - 1, table, NULL, 0, backing, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, (void**)table, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, backing, 64, backing, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, (void**)&kv, &sim_ops), -EINVARG);
    assert_int_equal(kvmalloc_init(&kv, (void*)arena, arena + UNIT_BS, table, NULL, 0,
                                   (void**)(arena + 8), &sim_ops), -EINVARG); /* record in the window */
    assert_memory_equal(&kv, &before, sizeof(kv));
    assert_int_equal(kvmalloc_add_source(NULL, &fx->a), -EINVARG);
    assert_int_equal(kvmalloc_add_source(&fx->kv, NULL), -EINVARG);
    assert_int_equal(kvmalloc_add_source(&fx->kv, &fx->a), -EINVARG); /* twice */
    static struct heap h;
    static struct heap_table t;
    t = (struct heap_table){ table, 8 };
    unsigned char* over = (unsigned char*)fx->backing - 2 * UNIT_BS;
    over -= (uintptr_t)over % UNIT_BS;
    assert_int_equal(heap_create(&h, w, end, &t), 0); /* over the window */
    assert_int_equal(kvmalloc_add_source(&fx->kv, &h), -EINVARG);
    assert_int_equal(heap_create(&h, over, over + 8 * UNIT_BS, &t), 0); /* over the record and *kv */
    assert_int_equal(kvmalloc_add_source(&fx->kv, &h), -EINVARG);
    void* idx = unit_xmalloc(heap_index_bytes(8) + UNIT_BS);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, idx, heap_index_bytes(8), backing, &sim_ops), 0);
    unsigned char* near = (unsigned char*)idx + UNIT_BS - (uintptr_t)idx % UNIT_BS - 8 * UNIT_BS;
    assert_int_equal(heap_create(&h, near, near + 8 * UNIT_BS, &t), 0); /* over the window's index */
    assert_int_equal(kvmalloc_add_source(&kv, &h), -EINVARG);
    unsigned char* tnear = (unsigned char*)table - (uintptr_t)table % UNIT_BS;
    static HEAP_BLOCK_TABLE_ENTRY t2e[2];
    static struct heap_table t2 = { t2e, 2 };
    assert_int_equal(heap_create(&h, tnear, tnear + 2 * UNIT_BS, &t2), 0); /* over the window's table */
    assert_int_equal(kvmalloc_add_source(&kv, &h), -EINVARG);
    static struct heap many[KVMALLOC_MAX_SOURCES + 1];
    static HEAP_BLOCK_TABLE_ENTRY me[KVMALLOC_MAX_SOURCES + 1];
    static struct heap_table mt[KVMALLOC_MAX_SOURCES + 1];
    for (size_t k = 0; k <= KVMALLOC_MAX_SOURCES; k++) {
        mt[k] = (struct heap_table){ &me[k], 1 };
        void* at = (void*)(UNIT_POOL + (KVMALLOC_MAX_SOURCES - k) * UNIT_BS); /* descending */
        assert_int_equal(heap_create(&many[k], at, (char*)at + UNIT_BS, &mt[k]), 0);
        assert_int_equal(kvmalloc_add_source(&kv, &many[k]), k < KVMALLOC_MAX_SOURCES ? 0 : -EINVARG);
    }
    for (size_t k = 1; k < KVMALLOC_MAX_SOURCES; k++) {
        assert_true((uintptr_t)kv.source[k - 1]->saddr < (uintptr_t)kv.source[k]->saddr);
    }
    kvmalloc_set_report(NULL, unit_record_report, NULL);
    assert_false(kvmalloc_owns(NULL, w));
    assert_null(kvmalloc_backing(&kv, (void*)UNIT_POOL));
    free(idx);
}

/* What the checker and the refusals do at their edges: no place for the
 * bad block, no report hook, a record-less kv, counters and the window's
 * own table descriptor overwritten. */
static void test_check_edges(void** state)
{
    (void)state;
    unsigned char* v = kvmalloc_alloc(&fx->kv, 3 * UNIT_BS);
    size_t bad = 0;
    assert_int_equal(kvmalloc_size(NULL, v), 0);
    assert_int_equal(kvmalloc_size(&fx->kv, NULL), 0);
    fx->kv.blocks++; /* V5: the count */
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, SIZE_MAX);
    assert_int_equal(kvmalloc_check(&fx->kv, NULL), -ECORRUPT);
    fx->kv.blocks--;
    struct heap_table copy = fx->kv.window_table; /* V1: the window heap names another descriptor */
    fx->kv.window.table = &copy;
    assert_int_equal(kvmalloc_check(&fx->kv, &bad), -ECORRUPT);
    assert_int_equal(bad, SIZE_MAX);
    fx->kv.window.table = &fx->kv.window_table;
    kvmalloc_set_report(&fx->kv, NULL, NULL); /* a corrupt record with no hook: only counted */
    void* saved = fx->backing[2];
    fx->backing[2] = NULL;
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(fx->kv.window.rejected_frees, 1);
    assert_int_equal(fx->reports.count, 0);
    fx->backing[2] = saved;
    assert_all_sound();
    kvmalloc_free(&fx->kv, v);
    assert_int_equal(sim.mapped, 0);
    assert_all_sound();
}

/* A source whose pool holds only the window's record, or only its index:
 * refused; and an empty or reversed window range. */
static void test_source_over_record_or_index(void** state)
{
    (void)state;
    static struct kvmalloc kv;
    static struct heap h;
    static HEAP_BLOCK_TABLE_ENTRY table[8], one[1];
    static struct heap_table t = { one, 1 };
    void* w = (void*)WINDOW;
    void* end = (void*)(WINDOW + 8 * UNIT_BS);
    unsigned char* block = aligned_alloc(UNIT_BS, 2 * UNIT_BS);
    void* record[8];
    assert_non_null(block);
    assert_int_equal(kvmalloc_init(&kv, end, w, table, NULL, 0, record, &sim_ops), -EINVARG); /* reversed */
    assert_int_equal(kvmalloc_init(&kv, w, w, table, NULL, 0, record, &sim_ops), -EINVARG);   /* empty */
    assert_int_equal(kvmalloc_init(&kv, w, end, table, NULL, 0, (void**)block, &sim_ops), 0);
    assert_int_equal(heap_create(&h, block, block + UNIT_BS, &t), 0);
    assert_int_equal(kvmalloc_add_source(&kv, &h), -EINVARG); /* the record is in its pool */
    assert_true(heap_index_bytes(8) <= UNIT_BS);
    assert_int_equal(kvmalloc_init(&kv, w, end, table, block, heap_index_bytes(8), record, &sim_ops), 0);
    assert_int_equal(kvmalloc_add_source(&kv, &h), -EINVARG); /* the index is in its pool */
    assert_int_equal(kv.sources, 0);
    assert_int_equal(heap_create(&h, block + UNIT_BS, block + 2 * UNIT_BS, &t), 0);
    assert_int_equal(kvmalloc_add_source(&kv, &h), 0); /* the block after them: apart */
    free(block);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scattered_blocks_mapped_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scattered_blocks_mapped_in_order, setup_indexed, teardown),
        cmocka_unit_test_setup_teardown(test_backing_refused_by_its_heap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_failure_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_room, setup_indexed, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_is_a_heap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_setups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_edges, setup_indexed, teardown),
        cmocka_unit_test_setup_teardown(test_source_over_record_or_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
