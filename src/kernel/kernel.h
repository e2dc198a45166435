/*
 * kernel.h - what the kernel's parts share: exit codes, panic, and the
 * bare-metal heap port's extras (report counting for the self-test).
 */
#ifndef PEACHOS_KERNEL_H
#define PEACHOS_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * isa-debug-exit (-device isa-debug-exit,iobase=0xf4,iosize=0x04): writing
 * v to port 0xf4 makes QEMU exit with status (v << 1) | 1. QEMU exits 0 on a
 * triple fault with -no-reboot, so no kernel outcome maps to 0 or 1.
 */
#define KERNEL_EXIT_PORT 0xf4
#define KERNEL_EXIT_SUCCESS 0x10  /* qemu exit 33: self-test passed */
#define KERNEL_EXIT_FAILURE 0x11   /* qemu exit 35: a self-test case failed */
#define KERNEL_EXIT_REFUSED 0x12   /* qemu exit 37: boot checks refused (memory, magic) */
#define KERNEL_EXIT_PANIC 0x13     /* qemu exit 39: panic (e.g. bad free with PANIC_ON_BAD_FREE) */
#define KERNEL_EXIT_HEAP_INIT 0x14 /* qemu exit 41: kheap_init failed (the port refused the region) */

/* Leave QEMU with `value` (see above); halts forever if there is no such device. */
void kernel_exit(uint8_t value) __attribute__((noreturn));

/* Print "PANIC: " and the printk-formatted message on one line, then exit
 * with KERNEL_EXIT_PANIC. */
void panic(const char* format, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * Where the self-test stops for a debugger (make debug, make test-gdb):
 * called once the self-test has finished and printed its statistics and map,
 * with live allocations of every kind left in the heap.
 */
void kernel_selftest_done(void);

/* boot_common.c, shared by the i686 and x86_64 kernels. Refuse to boot:
 * print why and exit with KERNEL_EXIT_REFUSED. */
void kernel_refuse(const char* why) __attribute__((noreturn));
/* The multiboot magic and memory fields: refuse without them; print them;
 * return where upper memory ends. */
uint64_t kernel_check_multiboot(uint32_t magic, uint32_t flags, uint32_t mem_lower, uint32_t mem_upper);
/* Refuse unless the fixed layout fits: the pool below upper_end, the table
 * and index in conventional memory, the kernel image apart from them. */
void kernel_check_heap_fits(uint64_t upper_end, uint32_t mem_lower);
/* The table, index, kernel and heap lines; `stack_note` ends the kernel's. */
void kernel_print_layout(const char* stack_note);

/* kheap_init, or exit (KERNEL_EXIT_HEAP_INIT) if it failed; print the
 * regions; with several, the self-test starts in first-only mode. */
void kernel_heap_start(void);

/* Run the self-test, print the heap's state, stop at the debugger's
 * breakpoint, and exit QEMU with the verdict. */
void kernel_run_selftest(void) __attribute__((noreturn));

/* The heap regions (PEACHOS_KHEAP_REGIONS; these do nothing without it).
 * kheap_port_regions.c: keep the multiboot map's available ranges for
 * kheap_port_regions (call before kheap_init). regions_print.c: the list of
 * regions kheap_init built; one section per region (addresses, statistics,
 * map) at the end of the self-test. */
void kernel_regions_set_map(uintptr_t mmap_addr, size_t mmap_length);
void kernel_regions_print(void);
void kernel_regions_print_state(void);

struct heap_report;
/* Bare-metal port (kheap_port.c): print one line for a report, `note`
 * appended (the self-test marks the reports it causes on purpose). */
void kernel_heap_print_report(const struct heap_report* report, const char* note);

#endif /* PEACHOS_KERNEL_H */
