/*
 * selftest_paging64.c - the x86_64 kernel's stand-in for selftest_paging.c.
 *
 * The paging cases build 32-bit two-level page tables, load them into CR3
 * and set and clear CR0.PG. In long mode paging is always on (clearing
 * CR0.PG leaves long mode) and CR3 takes a 4-level PML4, so those cases
 * cannot run here as written. They are not faked: one line says they were
 * skipped, and no case is counted as passed or failed.
 */
#include "../kernel/print.h"
#include "../kernel/selftest.h"
#include "vmalloc64.h"

/* The signature is selftest.h's; this stand-in counts nothing. */
void selftest_paging(int* passed, int* failed) // NOLINT(readability-non-const-parameter)
{
    print("SKIP paging: the 6 paging cases (selftest_paging.c: 32-bit page directories, CR0.PG off and on) "
          "cannot run in long mode; not run on x86_64\n");
    selftest_vmalloc64(passed, failed); /* the x86_64 kernel's own case: the kvmalloc window */
}
