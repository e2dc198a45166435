/*
 * kernel64.c - the x86_64 demo kernel. src/boot64/boot64.S has entered long
 * mode with RAM identity-mapped by 2 MiB pages; here, as src/kernel/kernel.c
 * does on i686: boot checks, the multiboot memory map, the kernel heap at its
 * config.h addresses, the self-test, statistics and map, then exit through
 * isa-debug-exit with the same codes (docs/kernel.md, "The 64-bit kernel").
 */
#include <stddef.h>

#include "../config.h"
#include "../kernel/io.h"
#include "../kernel/kernel.h"
#include "../kernel/multiboot.h"
#include "../kernel/print.h"
#include "../kernel/selftest.h"
#include "../memory/heap/kheap.h"
#include "kernel64.h"

#define GIB (1ull << 30)
#define BOOT64_PROBES 72 /* words probed per region: 64 GiB (boot64.S's most) + the last + spare */

/* linker64.ld and boot64.S */
extern char boot64_pml4[], boot64_pdpt[], boot64_pd[];

#define HEAP_START ((uint64_t)PEACHOS_HEAP_ADDRESS)
#define HEAP_END ((uint64_t)PEACHOS_HEAP_ADDRESS + PEACHOS_HEAP_SIZE_BYTES)

typedef unsigned long long ull; /* printk's %llx, whatever uint64_t is */

static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

/* Say what the CPU says, not what boot64.S meant to do. */
static void print_mode(void)
{
    uint64_t cr0, cr3, cr4;
    uint16_t cs;
    __asm__ volatile("mov %%cr0, %0; mov %%cr3, %1; mov %%cr4, %2; mov %%cs, %3"
                     : "=r"(cr0), "=r"(cr3), "=r"(cr4), "=r"(cs));
    uint64_t efer = rdmsr(0xC0000080u);
    bool lma = (efer & (1u << 10)) != 0;
    printk("boot: %s: EFER 0x%llx (LME %d, LMA %d), CR0.PG %d, CR4.PAE %d, CS 0x%x, CR3 0x%llx\n",
           lma ? "long mode" : "NOT in long mode", (ull)efer, (int)(efer >> 8 & 1), (int)lma,
           (int)(cr0 >> 31 & 1), (int)(cr4 >> 5 & 1), (unsigned)cs, (ull)cr3);
    if (!lma) {
        kernel_refuse("long mode is not active");
    }
    printk("paging: identity map 0x0..0x%llx (%u GiB) in 2 MiB pages: PML4 at 0x%llx, PDPT at 0x%llx, "
           "%u page directories from 0x%llx\n",
           (ull)boot64_mapped_gib * GIB, (unsigned)boot64_mapped_gib, (ull)(uintptr_t)boot64_pml4,
           (ull)(uintptr_t)boot64_pdpt, (unsigned)boot64_mapped_gib, (ull)(uintptr_t)boot64_pd);
}

/* RAM above 4 GiB, through the page directories boot64.S added for it: a
 * word at each GiB boundary in [base, end) and the last word, all written,
 * then all read back (a wrong directory would alias two of them). Few
 * words on purpose: QEMU allocates guest RAM as it is touched, often 2 MiB
 * at a time, so a word per 2 MiB page would cost gigabytes of host memory. */
static bool probe_high_ram(uint64_t base, uint64_t end)
{
    uint64_t words[BOOT64_PROBES];
    size_t n = 0, bad = 0;
    for (uint64_t a = base < 4 * GIB ? 4 * GIB : base; a < end - 8 && n < BOOT64_PROBES - 1; a += GIB) {
        words[n++] = a;
    }
    words[n++] = end - 8;
    for (size_t i = 0; i < n; i++) {
        *(volatile uint64_t*)(uintptr_t)words[i] = words[i] ^ 0x5A5A5A5A5A5A5A5Aull;
    }
    for (size_t i = 0; i < n; i++) {
        bad += *(volatile uint64_t*)(uintptr_t)words[i] != (words[i] ^ 0x5A5A5A5A5A5A5A5Aull);
    }
    printk("mmap:   above 4 GiB: %zu words (one per GiB from 0x%llx, and the last at 0x%llx) written and read back, "
           "%zu differ\n",
           n, (ull)words[0], (ull)words[n - 1], bad);
    return bad == 0;
}

/* kernel_print_mmap's probe: RAM above 4 GiB that boot64.S mapped must
 * read back what was written. */
static void probe_entry(uint64_t base, uint64_t end)
{
    if (end > 4 * GIB && end <= (uint64_t)boot64_mapped_gib * GIB && !probe_high_ram(base, end)) {
        kernel_refuse("RAM above 4 GiB does not read back what was written (page tables?)");
    }
}

/* The same checks as kernel.c's, and the memory map must agree; the map is
 * printed before any refusal about memory sizes. */
static void boot_checks(uint32_t magic, const struct multiboot_info* info)
{
    uint64_t upper_end = kernel_check_multiboot(magic, info->flags, info->mem_lower, info->mem_upper);
    if (!(info->flags & MULTIBOOT_INFO_MMAP)) {
        kernel_refuse("the loader gave no memory map (multiboot flags bit 6 clear)");
    }
    struct kernel_mmap_summary map = kernel_print_mmap(info->mmap_addr, info->mmap_length, HEAP_START, HEAP_END,
                                                       probe_entry);
    if (map.top > (uint64_t)boot64_mapped_gib * GIB) {
        printk("paging: RAM from 0x%llx up is not mapped (boot64.S maps at most BOOT64_MAX_GIB)\n",
               (ull)boot64_mapped_gib * GIB);
    }
    kernel_check_heap_fits(upper_end, info->mem_lower);
    if (!map.holds) {
        kernel_refuse("the memory map has no available entry holding the whole heap pool");
    }
}

void kernel64_main(uint32_t magic, uint32_t info_address)
{
    const struct multiboot_info* info = (const struct multiboot_info*)(uintptr_t)info_address;
    print_init();
    print("PeachOS kernel heap demo (x86_64, long mode, multiboot)\n");
    print_mode();
    boot_checks(magic, info);

    kernel_print_layout(", page tables in .bss");

    kernel_regions_set_map(info->mmap_addr, info->mmap_length);
    kernel_heap_start();

    kernel_run_selftest();
}
