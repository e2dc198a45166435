/*
 * vmalloc64.h - the x86_64 kernel's window of virtually contiguous
 * allocations (kheap_window64.c: kheap_port_window over 4 KiB pages at
 * 512 GiB) and its self-test case (selftest_vmalloc64.c).
 */
#ifndef PEACHOS_VMALLOC64_H
#define PEACHOS_VMALLOC64_H

#include <stdint.h>

/* The window: PML4 entry 1, above every byte of RAM boot64.S maps (at most 64 GiB). */
#define VMALLOC64_BASE (512ull << 30)
#define VMALLOC64_BLOCKS 16384u /* 64 MiB of 4 KiB pages: 32 page tables */

/* The self-test case: fragment the first region, allocate more than its
 * largest free run, every byte through the window. Prints SKIP without
 * PEACHOS_KHEAP_VMALLOC. */
void selftest_vmalloc64(int* passed, int* failed);

#endif /* PEACHOS_VMALLOC64_H */
