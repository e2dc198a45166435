/*
 * kernel.c - the PeachOS demo kernel: boot checks, the kernel heap at its
 * config.h addresses, the self-test, statistics and heap map, then exit
 * through isa-debug-exit (docs/kernel.md).
 */
#include "kernel.h"

#include "../memory/heap/kheap.h"
#include "print.h"
#include "selftest.h"

/* The start of the multiboot v1 information structure (we need no more). */
struct multiboot_info
{
    uint32_t flags;
    uint32_t mem_lower; /* KiB of conventional memory from 0 */
    uint32_t mem_upper; /* KiB of memory from 1 MiB up to the first hole */
};

/* Check what the loader gave us against what the heap needs. */
static void boot_checks(uint32_t magic, const struct multiboot_info* info)
{
    uint64_t upper_end = kernel_check_multiboot(magic, info->flags, info->mem_lower, info->mem_upper);
    kernel_check_heap_fits(upper_end, info->mem_lower);
}

void kernel_main(uint32_t magic, const struct multiboot_info* info)
{
    print_init();
    print("PeachOS kernel heap demo (i686, multiboot)\n");
    boot_checks(magic, info);

    kernel_print_layout("");

    kheap_init();
    if (!kheap_ready()) {
        /* Its own exit status: no self-test ran, so "a case failed" would lie. */
        print("boot: kheap_init failed\n");
        kernel_exit(KERNEL_EXIT_HEAP_INIT);
    }
    print("kheap: ready\n");

#ifdef SELFTEST_PANIC_PROBE
    /* The panic build of make test-boot: one bad free nobody announced. With
     * PEACHOS_HEAP_PANIC_ON_BAD_FREE=1 it never returns (exit 39). */
    selftest_panic_probe();
    print("probe: the bad free returned: PEACHOS_HEAP_PANIC_ON_BAD_FREE did not panic\n");
    kernel_exit(KERNEL_EXIT_FAILURE);
#endif

    int failures = selftest_run();
    selftest_print_state();
    kernel_selftest_done();
    if (failures != 0) {
        printk("kernel: %d self-test case(s) FAILED\n", failures);
        kernel_exit(KERNEL_EXIT_FAILURE);
    }
    print("kernel: self-test passed, exiting\n");
    kernel_exit(KERNEL_EXIT_SUCCESS);
}
