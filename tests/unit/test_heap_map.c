/*
 * test_heap_map.c - heap_dump_map: the exact text for small heaps, one block
 * per character and grouped, automatic per_char, width limits.
 */
#include "unit.h"

struct capture
{
    char text[8192];
    size_t len;
    size_t calls;
};

static void capture_write(void* ctx, const char* text, size_t len)
{
    struct capture* c = (struct capture*)ctx;
    assert_non_null(c);
    assert_true(c->len + len < sizeof(c->text));
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->calls++;
}

static void assert_map_(const struct heap* heap, size_t per_char, size_t width, size_t max_lines, const char* want,
                        const char* file, int line)
{
    struct capture c;
    memset(&c, 0, sizeof(c));
    heap_dump_map(heap, capture_write, &c, per_char, width, max_lines);
    if (strcmp(c.text, want) != 0) {
        print_error("heap map mismatch\n--- want:\n%s--- got:\n%s---\n", want, c.text);
        _fail(file, line);
    }
}
#define assert_map(heap, per_char, width, max_lines, want) \
    assert_map_((heap), (per_char), (width), (max_lines), (want), __FILE__, __LINE__)

/* A plain heap whose table and counters are set directly. */
static void make_table(struct unit_heap* u, const char* hex, size_t used, size_t live)
{
    size_t blocks = (strlen(hex) + 1) / 3;
    unit_heap_make(u, blocks, false);
    unit_set_table(&u->heap, hex);
    u->heap.used_blocks = used;
    u->heap.live_allocations = live;
}

static void test_map_one_block_per_char(void** state)
{
    (void)state;
    for (int indexed = 0; indexed < 2; indexed++) {
        struct unit_heap u;
        unit_heap_make(&u, 8, indexed != 0);
        assert_non_null(heap_malloc(&u.heap, 1));
        assert_non_null(heap_malloc(&u.heap, 3 * UNIT_BS));
        assert_non_null(heap_malloc_blocks_typed(&u.heap, 1, HEAP_BLOCK_TYPE_CACHE));
        assert_non_null(heap_malloc_blocks_typed(&u.heap, 2, HEAP_BLOCK_TYPE_CACHE));
        unit_assert_table(&u.heap, "41 C1 81 01 43 C3 03 00");
        assert_map(&u.heap, 1, 64, 0,
                   "HEAPMAP v1 blocks=8 per_char=1 width=64\n"
                   "00000000 ##==CCc.\n"
                   "HEAPMAP end used=7 free=1 largest_free=1 allocations=4 rejected_frees=0\n");
        heap_free(&u.heap, unit_ptr(&u, 1));
        heap_free(&u.heap, unit_ptr(&u, 2)); /* refused */
        heap_free(&u.heap, unit_ptr(&u, 4)); /* refused: cache */
        assert_map(&u.heap, 1, 64, 0,
                   "HEAPMAP v1 blocks=8 per_char=1 width=64\n"
                   "00000000 #...CCc.\n"
                   "HEAPMAP end used=4 free=4 largest_free=3 allocations=3 rejected_frees=2\n");
        unit_heap_destroy(&u);
    }
}

/* '?' for entries heap_check rejects on their own: no TAKEN, reserved bits, unknown type. */
static void test_map_bad_entries(void** state)
{
    (void)state;
    struct unit_heap u;
    make_table(&u, "80 40 42 51 47 4F F1 00 41 02", 1, 1);
    assert_map(&u.heap, 1, 64, 0,
               "HEAPMAP v1 blocks=10 per_char=1 width=64\n"
               "00000000 ???????.#?\n"
               "HEAPMAP end used=1 free=9 largest_free=1 allocations=1 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

static void test_map_several_lines(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 10, false);
    assert_non_null(heap_malloc(&u.heap, 2 * UNIT_BS));
    assert_non_null(heap_malloc(&u.heap, 5 * UNIT_BS));
    assert_map(&u.heap, 1, 4, 0,
               "HEAPMAP v1 blocks=10 per_char=1 width=4\n"
               "00000000 #=#=\n"
               "00000004 ===.\n"
               "00000008 ..\n"
               "HEAPMAP end used=7 free=3 largest_free=3 allocations=2 rejected_frees=0\n");
    /* Exactly filled lines: no empty line at the end. */
    assert_map(&u.heap, 1, 5, 0,
               "HEAPMAP v1 blocks=10 per_char=1 width=5\n"
               "00000000 #=#==\n"
               "00000005 ==...\n"
               "HEAPMAP end used=7 free=3 largest_free=3 allocations=2 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* Line numbers are hexadecimal block numbers. */
static void test_map_hex_line_numbers(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 600, false);
    struct capture c;
    memset(&c, 0, sizeof(c));
    heap_dump_map(&u.heap, capture_write, &c, 1, 100, 0);
    assert_non_null(strstr(c.text, "\n00000000 "));
    assert_non_null(strstr(c.text, "\n00000064 ")); /* block 100 */
    assert_non_null(strstr(c.text, "\n000001f4 ")); /* block 500 */
    assert_null(strstr(c.text, "\n00000258 "));     /* block 600 is past the end */
    unit_heap_destroy(&u);
}

/* k > 1: '.' all free, '#' all taken, tenths rounded up, partial last group. */
static void test_map_grouped(void** state)
{
    (void)state;
    struct unit_heap u;
    make_table(&u, "00 00 00 00 00 41 00 00 00 C1 01 00 00 C1 81 01 C1 81 81 01 00 41", 11, 5);
    assert_map(&u.heap, 4, 64, 0,
               "HEAPMAP v1 blocks=22 per_char=4 width=64\n"
               "00000000 .358#5\n"
               "HEAPMAP end used=11 free=11 largest_free=5 allocations=5 rejected_frees=0\n");
    /* Groups over several lines: 3 groups of 4 blocks per line. */
    assert_map(&u.heap, 4, 3, 0,
               "HEAPMAP v1 blocks=22 per_char=4 width=3\n"
               "00000000 .35\n"
               "0000000c 8#5\n"
               "HEAPMAP end used=11 free=11 largest_free=5 allocations=5 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* Taken share: 1/20 -> '1', 10/20 -> '5', 11/20 -> '6', 19/20 -> '9' (not 10). */
static void test_map_grouped_tenths(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 80, false);
    /* 1-block allocations: group 0 has 1 taken, group 1 10, group 2 11, group 3 19. */
    size_t used = 0;
    size_t live = 0;
    static const size_t taken[4] = { 1, 10, 11, 19 };
    for (size_t g = 0; g < 4; g++) {
        for (size_t i = 0; i < taken[g]; i++) {
            u.table.entries[g * 20 + i] = 0x41;
            used++;
            live++;
        }
    }
    u.heap.used_blocks = used;
    u.heap.live_allocations = live;
    unit_assert_clean(&u.heap);
    assert_map(&u.heap, 20, 64, 0,
               "HEAPMAP v1 blocks=80 per_char=20 width=64\n"
               "00000000 1569\n"
               "HEAPMAP end used=41 free=39 largest_free=19 allocations=41 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* One bad entry makes its group '?', whatever else is in it. */
static void test_map_grouped_bad(void** state)
{
    (void)state;
    struct unit_heap u;
    make_table(&u, "41 41 41 80 00 00 00 00 41 41 41 41 00 00 20 00", 7, 7);
    assert_map(&u.heap, 4, 64, 0,
               "HEAPMAP v1 blocks=16 per_char=4 width=64\n"
               "00000000 ?.#?\n"
               "HEAPMAP end used=7 free=9 largest_free=4 allocations=7 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* blocks_per_char 0: the smallest k that fits in max_lines lines (0 = 1 line). */
static void test_map_auto_per_char(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 40, false);
    assert_map(&u.heap, 0, 8, 2,
               "HEAPMAP v1 blocks=40 per_char=3 width=8\n"
               "00000000 ........\n"
               "00000018 ......\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    assert_map(&u.heap, 0, 8, 0,
               "HEAPMAP v1 blocks=40 per_char=5 width=8\n"
               "00000000 ........\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    assert_map(&u.heap, 0, 8, 1,
               "HEAPMAP v1 blocks=40 per_char=5 width=8\n"
               "00000000 ........\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    assert_map(&u.heap, 0, 8, 5,
               "HEAPMAP v1 blocks=40 per_char=1 width=8\n"
               "00000000 ........\n"
               "00000008 ........\n"
               "00000010 ........\n"
               "00000018 ........\n"
               "00000020 ........\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    /* More lines than needed: still one block per character. */
    assert_map(&u.heap, 0, 64, 4,
               "HEAPMAP v1 blocks=40 per_char=1 width=64\n"
               "00000000 ........................................\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    /* width * max_lines would wrap: saturates, one block per character. */
    assert_map(&u.heap, 0, 64, SIZE_MAX,
               "HEAPMAP v1 blocks=40 per_char=1 width=64\n"
               "00000000 ........................................\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    assert_map(&u.heap, 0, 64, ((size_t)1 << (sizeof(size_t) * 8 - 6)),
               "HEAPMAP v1 blocks=40 per_char=1 width=64\n"
               "00000000 ........................................\n"
               "HEAPMAP end used=0 free=40 largest_free=40 allocations=0 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* Width 0 or above 256 means 64; 1..256 are taken as given. */
static void test_map_width_limits(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 300, false);
    static const size_t defaults[] = { 0, 257, 1000, SIZE_MAX };
    for (size_t k = 0; k < sizeof(defaults) / sizeof(defaults[0]); k++) {
        struct capture c;
        memset(&c, 0, sizeof(c));
        heap_dump_map(&u.heap, capture_write, &c, 1, defaults[k], 0);
        assert_non_null(strstr(c.text, "HEAPMAP v1 blocks=300 per_char=1 width=64\n"));
        /* 300 = 4 full lines of 64 and one of 44. */
        assert_non_null(strstr(c.text, "\n00000100 ............................................\n"));
        assert_non_null(strstr(c.text, "\n000000c0 ................................................................\n"));
    }
    struct capture c;
    memset(&c, 0, sizeof(c));
    heap_dump_map(&u.heap, capture_write, &c, 1, 256, 0);
    char want[1024];
    size_t n = (size_t)snprintf(want, sizeof(want), "HEAPMAP v1 blocks=300 per_char=1 width=256\n00000000 ");
    memset(want + n, '.', 256);
    n += 256;
    n += (size_t)snprintf(want + n, sizeof(want) - n, "\n00000100 ");
    memset(want + n, '.', 44);
    n += 44;
    snprintf(want + n, sizeof(want) - n,
             "\nHEAPMAP end used=0 free=300 largest_free=300 allocations=0 rejected_frees=0\n");
    assert_string_equal(c.text, want);
    /* Width 1. */
    struct unit_heap small;
    unit_heap_make(&small, 2, false);
    assert_non_null(heap_malloc(&small.heap, 1));
    assert_map(&small.heap, 1, 1, 0,
               "HEAPMAP v1 blocks=2 per_char=1 width=1\n"
               "00000000 #\n"
               "00000001 .\n"
               "HEAPMAP end used=1 free=1 largest_free=1 allocations=1 rejected_frees=0\n");
    unit_heap_destroy(&small);
    unit_heap_destroy(&u);
}

/* A group size larger than the heap: one group with everything. */
static void test_map_group_larger_than_heap(void** state)
{
    (void)state;
    struct unit_heap u;
    unit_heap_make(&u, 3, false);
    assert_non_null(heap_malloc(&u.heap, 1));
    assert_map(&u.heap, 100, 64, 0,
               "HEAPMAP v1 blocks=3 per_char=100 width=64\n"
               "00000000 4\n"
               "HEAPMAP end used=1 free=2 largest_free=2 allocations=1 rejected_frees=0\n");
    unit_heap_destroy(&u);
}

/* NULL heap, NULL writer, heap without a table: nothing is written. */
static void test_map_invalid_args(void** state)
{
    (void)state;
    struct capture c;
    memset(&c, 0, sizeof(c));
    heap_dump_map(NULL, capture_write, &c, 1, 64, 0);
    assert_int_equal(c.calls, 0);
    struct unit_heap u;
    unit_heap_make(&u, 4, false);
    heap_dump_map(&u.heap, NULL, &c, 1, 64, 0);
    struct heap no_table = u.heap;
    no_table.table = NULL;
    heap_dump_map(&no_table, capture_write, &c, 1, 64, 0);
    assert_int_equal(c.calls, 0);
    unit_heap_destroy(&u);
}

/* Indexed and plain heaps give the same map after the same operations. */
static void test_map_indexed_equals_plain(void** state)
{
    (void)state;
    struct unit_heap a;
    struct unit_heap b;
    unit_heap_make(&a, 130, false);
    unit_heap_make(&b, 130, true);
    uint64_t rng = 99;
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + unit_rand(&rng) % 9;
        size_t at = unit_rand(&rng) % 130;
        if (unit_rand(&rng) % 3 != 0) {
            assert_ptr_equal(heap_malloc(&a.heap, n * UNIT_BS), heap_malloc(&b.heap, n * UNIT_BS));
        } else {
            heap_free(&a.heap, unit_ptr(&a, at));
            heap_free(&b.heap, unit_ptr(&b, at));
        }
    }
    for (size_t k = 1; k < 12; k += 5) {
        struct capture ca;
        struct capture cb;
        memset(&ca, 0, sizeof(ca));
        memset(&cb, 0, sizeof(cb));
        heap_dump_map(&a.heap, capture_write, &ca, k, 32, 0);
        heap_dump_map(&b.heap, capture_write, &cb, k, 32, 0);
        assert_string_equal(ca.text, cb.text);
    }
    unit_heap_destroy(&a);
    unit_heap_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_one_block_per_char),
        cmocka_unit_test(test_map_bad_entries),
        cmocka_unit_test(test_map_several_lines),
        cmocka_unit_test(test_map_hex_line_numbers),
        cmocka_unit_test(test_map_grouped),
        cmocka_unit_test(test_map_grouped_tenths),
        cmocka_unit_test(test_map_grouped_bad),
        cmocka_unit_test(test_map_auto_per_char),
        cmocka_unit_test(test_map_width_limits),
        cmocka_unit_test(test_map_group_larger_than_heap),
        cmocka_unit_test(test_map_invalid_args),
        cmocka_unit_test(test_map_indexed_equals_plain),
    };
    return cmocka_run_group_tests_name("heap_map", tests, NULL, NULL);
}
