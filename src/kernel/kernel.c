/*
 * kernel.c - the PeachOS demo kernel: boot checks, the multiboot memory
 * map, the kernel heap at its config.h addresses plus the RAM the map
 * offers above it (PEACHOS_KHEAP_REGIONS), the self-test, statistics and
 * heap maps, then exit through isa-debug-exit (docs/kernel.md).
 */
#include "kernel.h"

#include "../config.h"
#include "../memory/heap/kheap.h"
#include "multiboot.h"
#include "print.h"
#include "selftest.h"

#define HEAP_START ((uint64_t)PEACHOS_HEAP_ADDRESS)
#define HEAP_END ((uint64_t)PEACHOS_HEAP_ADDRESS + PEACHOS_HEAP_SIZE_BYTES)

/* Check what the loader gave us against what the heap needs. Without a
 * memory map the heap is the seed's region alone (mem_upper vouches for
 * it); with one, the map is printed and must hold the seed's pool. */
static void boot_checks(uint32_t magic, const struct multiboot_info* info)
{
    uint64_t upper_end = kernel_check_multiboot(magic, info->flags, info->mem_lower, info->mem_upper);
    bool has_map = (info->flags & MULTIBOOT_INFO_MMAP) != 0;
    struct kernel_mmap_summary map = { 0, 0, true };
    if (has_map) {
        map = kernel_print_mmap(info->mmap_addr, info->mmap_length, HEAP_START, HEAP_END, NULL);
        if (map.top > 1ull << 32) {
            print("mmap: RAM from 4 GiB up is out of reach of this 32-bit kernel (paging off, no PAE): not used\n");
        }
    } else {
        print("mmap: the loader gave no memory map (multiboot flags bit 6 clear): the heap is the seed's region "
              "only\n");
    }
    kernel_check_heap_fits(upper_end, info->mem_lower);
    if (!map.holds) {
        kernel_refuse("the memory map has no available entry holding the whole heap pool");
    }
    if (has_map) {
        kernel_regions_set_map(info->mmap_addr, info->mmap_length);
    }
}

void kernel_main(uint32_t magic, const struct multiboot_info* info)
{
    print_init();
    print("PeachOS kernel heap demo (i686, multiboot)\n");
    boot_checks(magic, info);

    kernel_print_layout("");

    kernel_heap_start();

#ifdef SELFTEST_PANIC_PROBE
    /* The panic build of make test-boot: one bad free nobody announced. With
     * PEACHOS_HEAP_PANIC_ON_BAD_FREE=1 it never returns (exit 39). */
    selftest_panic_probe();
    print("probe: the bad free returned: PEACHOS_HEAP_PANIC_ON_BAD_FREE did not panic\n");
    kernel_exit(KERNEL_EXIT_FAILURE);
#endif

    kernel_run_selftest();
}
