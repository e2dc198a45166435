/*
 * selftest.h - the in-kernel self-test of the heap (docs/kernel.md): the parts
 * of the host test suite that make sense on bare metal, run on the real
 * kernel heap at its config.h addresses.
 */
#ifndef PEACHOS_KERNEL_SELFTEST_H
#define PEACHOS_KERNEL_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>

/* Run every case, printing "PASS name" / "FAIL name" per case and then
 * "selftest: N passed, N failed". Leaves some live allocations of every
 * kind (small objects, whole blocks, kpalloc) in the kernel heap so that
 * the map is worth looking at. Returns the number of failed cases. */
int selftest_run(void);

/* In a case: a failed condition is printed with where it is, and the case
 * (whose verdict is the local `ok`) fails. */
#define SELFTEST_EXPECT(cond)                                                     \
    do {                                                                          \
        if (!(cond)) {                                                            \
            printk("  check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);   \
            ok = false;                                                           \
        }                                                                         \
    } while (0)

/* kheap_check is clean (else it prints what it found); the kernel heap's
 * statistics, read under the lock. For every case file. */
bool kheap_clean(void);
struct heap_stats;
void kheap_stats_now(struct heap_stats* stats);

/* The self-test's report hook (selftest_reports.c), installed by
 * selftest_run around the kernel heap's: reports counted since it was
 * installed; the next `count` reports are expected (printed as such, not
 * passed to the port). */
void selftest_reports_install(void);
size_t selftest_reports(void);
void selftest_expect_reports(size_t count);

/* The paging consumer (selftest_paging.c): kmalloc-family buffers mapped
 * into a user page directory the way PeachOS maps them. Prints its cases
 * and adds them to *passed / *failed. */
void selftest_paging(int* passed, int* failed);
/* The paging cases themselves (selftest_paging.c, over paging.h on either
 * architecture); i686's selftest_paging is just these. */
void selftest_paging_cases(int* passed, int* failed);

/* The regions case (selftest_regions.c, PEACHOS_KHEAP_REGIONS): a run that
 * only the highest region can give lands there. Adds to *passed / *failed;
 * prints SKIP with one region. */
void selftest_regions(int* passed, int* failed);

/* Print the kernel heap's statistics, the cache statistics and the heap map
 * (a detailed map of the first blocks and a compressed map of the whole heap). */
void selftest_print_state(void);

/* The panic probe (kernel built with -DSELFTEST_PANIC_PROBE, make test-boot):
 * one block allocated, written, read back and freed twice. The second free is
 * not announced as expected, so with PEACHOS_HEAP_PANIC_ON_BAD_FREE=1 the port
 * panics there; otherwise it is refused and reported, and the probe returns. */
void selftest_panic_probe(void);

#endif /* PEACHOS_KERNEL_SELFTEST_H */
