/*
 * test_heap_report.c - the words every port prints for a report
 * (heap_report.c): each kind has its own reason, and the two kinds that
 * come from an allocation are the only ones not called a refused free
 * (a corrupt kvmalloc record, HEAP_REPORT_WINDOW_CORRUPT, is one: kvfree
 * refuses it).
 */
#include "unit.h"

static void test_every_kind_described(void** state)
{
    (void)state;
    const char* seen[HEAP_REPORT_WINDOW_CORRUPT + 1] = { 0 };
    for (int k = HEAP_REPORT_FREE_OUTSIDE; k <= HEAP_REPORT_WINDOW_CORRUPT; k++) { /* the last kind */
        enum heap_report_kind kind = (enum heap_report_kind)k;
        const char* reason = heap_report_reason(kind);
        assert_string_not_equal(reason, "unknown");
        for (int j = HEAP_REPORT_FREE_OUTSIDE; j < k; j++) {
            assert_string_not_equal(reason, seen[j]); /* one reason per kind */
        }
        seen[k] = reason;
        bool from_alloc = kind == HEAP_REPORT_CACHE_USE_AFTER_FREE || kind == HEAP_REPORT_INDEX_MISMATCH;
        assert_int_equal(heap_report_is_free(kind), !from_alloc);
        assert_int_equal(strcmp(heap_report_action(kind), "refused free of") == 0, !from_alloc);
    }
    assert_string_equal(heap_report_action(HEAP_REPORT_CACHE_USE_AFTER_FREE), "write after free of");
    assert_string_equal(heap_report_action(HEAP_REPORT_INDEX_MISMATCH), "index named");
    assert_true(heap_report_is_free(HEAP_REPORT_WINDOW_CORRUPT));
    assert_string_equal(heap_report_action(HEAP_REPORT_WINDOW_CORRUPT), "refused free of");
    assert_string_equal(heap_report_reason(HEAP_REPORT_WINDOW_CORRUPT),
                        "record of the window allocation's backing blocks corrupt");
    assert_string_equal(heap_report_reason((enum heap_report_kind)(HEAP_REPORT_WINDOW_CORRUPT + 1)), "unknown");
    assert_string_equal(heap_report_reason((enum heap_report_kind)0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_described),
    };
    return cmocka_run_group_tests_name("heap_report", tests, NULL, NULL);
}
