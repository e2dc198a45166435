/*
 * test_heap_table.c - the word-at-a-time table loops (heap_table.c) agree
 * with their plain byte loops: fill, all-free and span, for every length
 * 1..80 at every offset 0..15 into a buffer with a guard on both sides, and
 * for span every position of the first differing byte. The guards prove
 * that neither version reads or writes outside [p, p + n).
 */
#include "unit.h"

#include "memory/heap/heap_table.h"

#define MAX_N 80
#define GUARD 16
#define BUF (GUARD + 16 + MAX_N + GUARD)

static void fill_pattern(unsigned char* buf, unsigned seed)
{
    for (size_t i = 0; i < BUF; i++) {
        buf[i] = (unsigned char)(0xA5 ^ (i * 31 + seed));
    }
}

static void test_fill_agrees(void** state)
{
    (void)state;
    unsigned char a[BUF];
    unsigned char b[BUF];
    for (size_t off = 0; off < 16; off++) {
        for (size_t n = 1; n <= MAX_N; n++) {
            fill_pattern(a, (unsigned)n);
            fill_pattern(b, (unsigned)n);
            heap_table_fill_words(a + GUARD + off, n, 0xC3);
            heap_table_fill_bytes(b + GUARD + off, n, 0xC3);
            assert_memory_equal(a, b, BUF); /* same run written, guards untouched */
            assert_int_equal(a[GUARD + off], 0xC3);
            assert_int_equal(a[GUARD + off + n - 1], 0xC3);
        }
    }
}

static void test_all_free_agrees(void** state)
{
    (void)state;
    unsigned char buf[BUF];
    for (size_t off = 0; off < 16; off++) {
        for (size_t n = 1; n <= MAX_N; n++) {
            memset(buf, 0xFF, BUF); /* guards taken: a read past the run would see them */
            unsigned char* p = buf + GUARD + off;
            memset(p, 0, n);
            assert_true(heap_table_all_free_words(p, n));
            assert_true(heap_table_all_free_bytes(p, n));
            for (size_t k = 0; k < n; k++) { /* one taken byte anywhere */
                p[k] = 0x41;
                assert_false(heap_table_all_free_words(p, n));
                assert_false(heap_table_all_free_bytes(p, n));
                p[k] = 0;
            }
        }
    }
}

static void test_span_agrees(void** state)
{
    (void)state;
    unsigned char buf[BUF];
    const unsigned char same = 0x81;
    for (size_t off = 0; off < 16; off++) {
        for (size_t n = 0; n <= MAX_N; n++) {
            memset(buf, same, BUF); /* the guards repeat the value: a read past n would count them */
            unsigned char* p = buf + GUARD + off;
            assert_int_equal(heap_table_span_words(p, n, same), n);
            assert_int_equal(heap_table_span_bytes(p, n, same), n);
            for (size_t k = 0; k < n; k++) {
                p[k] = 0x01; /* the chain's last block */
                assert_int_equal(heap_table_span_words(p, n, same), k);
                assert_int_equal(heap_table_span_bytes(p, n, same), k);
                p[k] = same;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_agrees),
        cmocka_unit_test(test_all_free_agrees),
        cmocka_unit_test(test_span_agrees),
    };
    return cmocka_run_group_tests_name("heap_table", tests, NULL, NULL);
}
