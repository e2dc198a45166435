/*
 * selftest_paging64.c - the x86_64 kernel's selftest_paging: the paging
 * cases of selftest_paging.c, run over paging64.c's 4-level tables (the
 * same six cases as on i686; paging.h says what differs in long mode),
 * then the x86_64 kernel's own case, the kvmalloc window.
 */
#include "../kernel/selftest.h"
#include "vmalloc64.h"

void selftest_paging(int* passed, int* failed)
{
    selftest_paging_cases(passed, failed);
    selftest_vmalloc64(passed, failed); /* the x86_64 kernel's own case: the kvmalloc window */
}
