/*
 * selftest_reports.c - the self-test's own report hook, wrapped around the
 * port's: it counts every report, and the ones a case causes on purpose
 * (announced with selftest_expect_reports) are printed as expected and not
 * passed on, so a panic build does not halt on them. Any other report goes
 * to the port's hook as usual. The port knows nothing of the self-test.
 */
#include "selftest.h"

#include "../memory/heap/kheap.h"
#include "kernel.h"

static heap_report_fn st_next_report;
static void* st_next_ctx;
static size_t st_reports;
static size_t st_expected;

static void st_report(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    st_reports++;
    if (st_expected > 0) {
        st_expected--;
        kernel_heap_print_report(report, " [expected by the self-test]");
        return;
    }
    if (st_next_report != NULL) {
        st_next_report(st_next_ctx, report);
    }
}

void selftest_reports_install(void)
{
    struct heap* heap = kheap_get();
    if (heap == NULL || heap->report == st_report) {
        return;
    }
    uintptr_t state = kheap_lock();
    st_next_report = heap->report;
    st_next_ctx = heap->report_ctx;
    heap_set_report(heap, st_report, NULL);
    kheap_unlock(state);
}

size_t selftest_reports(void)
{
    return st_reports;
}

void selftest_expect_reports(size_t count)
{
    st_expected = count;
}
