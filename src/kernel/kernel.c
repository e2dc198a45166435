/*
 * kernel.c - the PeachOS demo kernel: boot checks, the kernel heap at its
 * config.h addresses, the self-test, statistics and heap map, then exit
 * through isa-debug-exit (docs/kernel.md).
 */
#include "kernel.h"

#include <stdarg.h>

#include "../config.h"
#include "../memory/heap/heap_index.h"
#include "../memory/heap/kheap.h"
#include "io.h"
#include "print.h"
#include "selftest.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_INFO_MEMORY 0x00000001u /* mem_lower / mem_upper are valid */

/* The start of the multiboot v1 information structure (we need no more). */
struct multiboot_info
{
    uint32_t flags;
    uint32_t mem_lower; /* KiB of conventional memory from 0 */
    uint32_t mem_upper; /* KiB of memory from 1 MiB up to the first hole */
};

/* linker.ld */
extern char _kernel_start[];
extern char _kernel_end[];
extern char kernel_stack_bottom[];
extern char kernel_stack_top[];

#define HEAP_END ((uint64_t)PEACHOS_HEAP_ADDRESS + PEACHOS_HEAP_SIZE_BYTES)
#define HEAP_BLOCKS (PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE)

void kernel_exit(uint8_t value)
{
    __asm__ volatile("cli");
    outl(KERNEL_EXIT_PORT, value);
    /* No isa-debug-exit device (real hardware, other VM): stop here. */
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

void panic(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    print("PANIC: ");
    vprintk(format, &args);
    va_end(args);
    print("\n");
    kernel_exit(KERNEL_EXIT_PANIC);
}

/* noinline + a compiler barrier: a breakpoint here always hits, and the
 * call is never optimised away (make debug, tests/gdb). Its own page
 * (section .debugstop, linker.ld): QEMU runs code on a page with a
 * breakpoint one instruction per block, ten times slower. */
__attribute__((noinline, section(".debugstop"))) void kernel_selftest_done(void)
{
    __asm__ volatile("" : : : "memory");
}

static void refuse(const char* why)
{
    printk("boot: REFUSED: %s\n", why);
    kernel_exit(KERNEL_EXIT_REFUSED);
}

/* Check what the loader gave us against what the heap needs. */
static void boot_checks(uint32_t magic, const struct multiboot_info* info)
{
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        printk("boot: multiboot magic is 0x%08x, expected 0x%08x\n", magic, MULTIBOOT_BOOTLOADER_MAGIC);
        refuse("not started by a multiboot loader");
    }
    if (!(info->flags & MULTIBOOT_INFO_MEMORY)) {
        refuse("the loader gave no memory size (multiboot flags bit 0 clear)");
    }
    uint64_t upper_end = 0x100000ull + (uint64_t)info->mem_upper * 1024u;
    printk("boot: multiboot magic ok, lower memory %u KiB, upper memory %u KiB (ends at 0x%08llx)\n", info->mem_lower,
           info->mem_upper, upper_end);
    if (upper_end < HEAP_END) {
        printk("boot: the heap needs memory up to 0x%08llx (%u MiB at 0x%08x), this machine has %llu MiB\n",
               HEAP_END, (unsigned)(PEACHOS_HEAP_SIZE_BYTES >> 20), (unsigned)PEACHOS_HEAP_ADDRESS,
               upper_end >> 20);
        refuse("not enough memory for the kernel heap: give it at least 117 MiB (qemu -m 128M)");
    }
    uint64_t index_end = (uint64_t)PEACHOS_HEAP_INDEX_ADDRESS + PEACHOS_HEAP_INDEX_MAX_BYTES;
    if ((uint64_t)info->mem_lower * 1024u < index_end) {
        printk("boot: the heap table and index need conventional memory up to 0x%08llx\n", index_end);
        refuse("not enough conventional memory for the heap table and index");
    }
    if ((uintptr_t)_kernel_end > PEACHOS_HEAP_ADDRESS ||
        (uintptr_t)_kernel_start < PEACHOS_HEAP_INDEX_ADDRESS + PEACHOS_HEAP_INDEX_MAX_BYTES) {
        refuse("the kernel image overlaps the heap, its table or its index");
    }
}

void kernel_main(uint32_t magic, const struct multiboot_info* info)
{
    print_init();
    print("PeachOS kernel heap demo (i686, multiboot)\n");
    boot_checks(magic, info);

    size_t blocks = HEAP_BLOCKS;
    printk("layout: table  0x%08x..0x%08x (%zu bytes)\n", (unsigned)PEACHOS_HEAP_TABLE_ADDRESS,
           (unsigned)(PEACHOS_HEAP_TABLE_ADDRESS + blocks), blocks);
    printk("layout: index  0x%08x..0x%08x (%zu of %u bytes)\n", (unsigned)PEACHOS_HEAP_INDEX_ADDRESS,
           (unsigned)(PEACHOS_HEAP_INDEX_ADDRESS + heap_index_bytes(blocks)), heap_index_bytes(blocks),
           (unsigned)PEACHOS_HEAP_INDEX_MAX_BYTES);
    printk("layout: kernel 0x%08x..0x%08x (stack 0x%08x..0x%08x)\n", (unsigned)(uintptr_t)_kernel_start,
           (unsigned)(uintptr_t)_kernel_end, (unsigned)(uintptr_t)kernel_stack_bottom,
           (unsigned)(uintptr_t)kernel_stack_top);
    printk("layout: heap   0x%08x..0x%08llx (%zu blocks of %u bytes)\n", (unsigned)PEACHOS_HEAP_ADDRESS, HEAP_END,
           blocks, (unsigned)PEACHOS_HEAP_BLOCK_SIZE);

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
