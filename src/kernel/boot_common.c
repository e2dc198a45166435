/*
 * boot_common.c - what the i686 and the x86_64 demo kernels share around the
 * self-test: the exit through isa-debug-exit, panic, the debugger's stop,
 * the boot checks that the fixed heap layout needs and the layout lines.
 */
#include <stdarg.h>

#include "../config.h"
#include "../memory/heap/heap_index.h"
#include "../memory/heap/kheap.h"
#include "io.h"
#include "kernel.h"
#include "multiboot.h"
#include "print.h"
#include "selftest.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define HEAP_END ((uint64_t)PEACHOS_HEAP_ADDRESS + PEACHOS_HEAP_SIZE_BYTES)
#define INDEX_END ((uint64_t)PEACHOS_HEAP_INDEX_ADDRESS + PEACHOS_HEAP_INDEX_MAX_BYTES)

typedef unsigned long long ull; /* printk's %llx, whatever uint64_t is */

/* linker.ld / linker64.ld and the boot code */
extern char _kernel_start[];
extern char _kernel_end[];
extern char kernel_stack_bottom[];
extern char kernel_stack_top[];

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
 * (section .debugstop, in both linker scripts): QEMU runs code on a page
 * with a breakpoint one instruction per block, ten times slower. */
__attribute__((noinline, section(".debugstop"))) void kernel_selftest_done(void)
{
    __asm__ volatile("" : : : "memory");
}

void kernel_refuse(const char* why)
{
    printk("boot: REFUSED: %s\n", why);
    kernel_exit(KERNEL_EXIT_REFUSED);
}

uint64_t kernel_check_multiboot(uint32_t magic, uint32_t flags, uint32_t mem_lower, uint32_t mem_upper)
{
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        printk("boot: multiboot magic is 0x%08x, expected 0x%08x\n", magic, MULTIBOOT_BOOTLOADER_MAGIC);
        kernel_refuse("not started by a multiboot loader");
    }
    if (!(flags & MULTIBOOT_INFO_MEMORY)) {
        kernel_refuse("the loader gave no memory size (multiboot flags bit 0 clear)");
    }
    uint64_t upper_end = 0x100000ull + (uint64_t)mem_upper * 1024u;
    printk("boot: multiboot magic ok, lower memory %u KiB, upper memory %u KiB (ends at 0x%08llx)\n", mem_lower,
           mem_upper, (ull)upper_end);
    return upper_end;
}

void kernel_check_heap_fits(uint64_t upper_end, uint32_t mem_lower)
{
    if (upper_end < HEAP_END) {
        printk("boot: the heap needs memory up to 0x%08llx (%u MiB at 0x%08x), this machine has %llu MiB\n",
               (ull)HEAP_END, (unsigned)(PEACHOS_HEAP_SIZE_BYTES >> 20), (unsigned)PEACHOS_HEAP_ADDRESS,
               (ull)(upper_end >> 20));
        kernel_refuse("not enough memory for the kernel heap: give it at least 117 MiB (qemu -m 128M)");
    }
    if ((uint64_t)mem_lower * 1024u < INDEX_END) {
        printk("boot: the heap table and index need conventional memory up to 0x%08llx\n", (ull)INDEX_END);
        kernel_refuse("not enough conventional memory for the heap table and index");
    }
    if ((uintptr_t)_kernel_end > PEACHOS_HEAP_ADDRESS || (uintptr_t)_kernel_start < INDEX_END) {
        kernel_refuse("the kernel image overlaps the heap, its table or its index");
    }
}

void kernel_print_layout(const char* stack_note)
{
    size_t blocks = PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE;
    printk("layout: table  0x%08x..0x%08x (%zu bytes)\n", (unsigned)PEACHOS_HEAP_TABLE_ADDRESS,
           (unsigned)(PEACHOS_HEAP_TABLE_ADDRESS + blocks), blocks);
    printk("layout: index  0x%08x..0x%08x (%zu of %u bytes)\n", (unsigned)PEACHOS_HEAP_INDEX_ADDRESS,
           (unsigned)(PEACHOS_HEAP_INDEX_ADDRESS + heap_index_bytes(blocks)), heap_index_bytes(blocks),
           (unsigned)PEACHOS_HEAP_INDEX_MAX_BYTES);
    printk("layout: kernel 0x%08x..0x%08x (stack 0x%08x..0x%08x%s)\n", (unsigned)(uintptr_t)_kernel_start,
           (unsigned)(uintptr_t)_kernel_end, (unsigned)(uintptr_t)kernel_stack_bottom,
           (unsigned)(uintptr_t)kernel_stack_top, stack_note);
#if PEACHOS_KHEAP_CACHES
    printk("layout: slabs  0x%08x..0x%08x (%zu of %u bytes: the caches' slab table)\n",
           (unsigned)KERNEL_SLAB_TABLE_ADDRESS, (unsigned)(KERNEL_SLAB_TABLE_ADDRESS + kcache_table_bytes(blocks)),
           kcache_table_bytes(blocks), (unsigned)KERNEL_SLAB_TABLE_MAX_BYTES);
#endif
    printk("layout: heap   0x%08x..0x%08llx (%zu blocks of %u bytes)\n", (unsigned)PEACHOS_HEAP_ADDRESS,
           (ull)HEAP_END, blocks, (unsigned)PEACHOS_HEAP_BLOCK_SIZE);
}

void kernel_heap_start(void)
{
    kheap_init();
    if (!kheap_ready()) {
        /* Its own exit status: no self-test ran, so "a case failed" would lie. */
        print("boot: kheap_init failed\n");
        kernel_exit(KERNEL_EXIT_HEAP_INIT);
    }
    print("kheap: ready\n");
    kernel_regions_print();
#if PEACHOS_KHEAP_REGIONS
    /* The self-test's cases count on the first region's 25,600 blocks:
     * they run in first-only mode; selftest_regions uses every region. */
    kheap_regions_first_only(true);
#endif
}

void kernel_run_selftest(void)
{
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
