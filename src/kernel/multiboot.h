/*
 * multiboot.h - the parts of the multiboot v1 information structure the
 * demo kernels read (i686 and x86_64 alike: the loader hands both the
 * same 32-bit structure), and the memory map's walk and print (mmap.c).
 */
#ifndef PEACHOS_KERNEL_MULTIBOOT_H
#define PEACHOS_KERNEL_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MULTIBOOT_INFO_MEMORY 0x00000001u /* mem_lower / mem_upper are valid */
#define MULTIBOOT_INFO_MMAP 0x00000040u   /* mmap_addr / mmap_length are valid */
#define MULTIBOOT_MMAP_AVAILABLE 1u

/* The multiboot v1 information structure, up to the memory map. */
struct multiboot_info
{
    uint32_t flags;
    uint32_t mem_lower; /* KiB of conventional memory from 0 */
    uint32_t mem_upper; /* KiB of memory from 1 MiB up to the first hole */
    /* boot_device, cmdline, mods_count, mods_addr, syms[4]: skipped, never read. */
    // cppcheck-suppress unusedStructMember
    uint32_t not_read[8];
    uint32_t mmap_length; /* bytes of entries at mmap_addr */
    uint32_t mmap_addr;
};
_Static_assert(offsetof(struct multiboot_info, mmap_length) == 44, "multiboot v1: mmap_length at offset 44");

/* One memory map entry; `size` does not count itself, entries may be longer. */
struct multiboot_mmap_entry
{
    uint32_t size;
    uint64_t base;
    uint64_t length;
    uint32_t type;
} __attribute__((packed));

/* Walk the map at [addr, addr + length): the first entry, then the one
 * after e; NULL when no whole entry is left.
 *   for (e = kernel_mmap_first(addr, len); e != NULL; e = kernel_mmap_next(e, addr, len)) */
const struct multiboot_mmap_entry* kernel_mmap_first(uintptr_t addr, size_t length);
const struct multiboot_mmap_entry* kernel_mmap_next(const struct multiboot_mmap_entry* e, uintptr_t addr,
                                                    size_t length);

/* What kernel_print_mmap found. */
struct kernel_mmap_summary
{
    uint64_t available; /* bytes of available entries */
    uint64_t top;       /* end of the highest available entry */
    bool holds;         /* [start, end) lies inside one available entry */
};

/* Called for every available entry while the map is printed (x86_64: the
 * probe of RAM above 4 GiB); NULL for none. */
typedef void (*kernel_mmap_probe_fn)(uint64_t base, uint64_t end);

/* Print every entry of the map (base, end, length, type, size), then the
 * available total and the highest available address; say whether
 * [start, end) lies inside one available entry. */
struct kernel_mmap_summary kernel_print_mmap(uintptr_t addr, size_t length, uint64_t start, uint64_t end,
                                             kernel_mmap_probe_fn probe);

#endif /* PEACHOS_KERNEL_MULTIBOOT_H */
