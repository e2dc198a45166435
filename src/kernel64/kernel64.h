/*
 * kernel64.h - what the x86_64 demo kernel's files share: the multiboot
 * memory map entry, the heap port's view of the map (kheap_port64.c) and
 * the multi-region self-test case (selftest_regions64.c).
 */
#ifndef PEACHOS_KERNEL64_H
#define PEACHOS_KERNEL64_H

#include <stddef.h>
#include <stdint.h>

#define MULTIBOOT_MMAP_AVAILABLE 1u
#define KERNEL64_GIB (1ull << 30)

/* One multiboot memory map entry; `size` does not count itself, entries may be longer. */
struct multiboot_mmap_entry
{
    uint32_t size;
    uint64_t base;
    uint64_t length;
    uint32_t type;
} __attribute__((packed));

/* boot64.S: GiB identity-mapped from 0. */
extern uint32_t boot64_mapped_gib;

/* Hand the multiboot memory map to the heap port (before kheap_init). */
void kheap_port64_set_map(uintptr_t mmap_addr, size_t mmap_length);

/* Print the regions kheap_init built (kernel64.c, after kheap_init). */
void kheap_port64_print_regions(void);

/* The self-test case of the regions (x86_64 only): an allocation larger
 * than the first region, above 4 GiB when there is RAM there. */
void selftest_regions64(int* passed, int* failed);

#endif /* PEACHOS_KERNEL64_H */
