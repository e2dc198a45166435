/*
 * mmap.c - the multiboot memory map, walked and printed the same way by
 * the i686 and the x86_64 kernel (the loader gives both the same 32-bit
 * structure). The map lies in low memory that the heap's first table may
 * cover (QEMU puts it at 0x9000): read it before kheap_init, never after.
 */
#include "multiboot.h"
#include "print.h"

typedef unsigned long long ull; /* printk's %llx, whatever uint64_t is */

static const struct multiboot_mmap_entry* mmap_entry_at(uintptr_t at, uintptr_t addr, size_t length)
{
    uintptr_t stop = addr + length;
    return at >= addr && at + sizeof(struct multiboot_mmap_entry) <= stop ? (const struct multiboot_mmap_entry*)at
                                                                         : NULL;
}

const struct multiboot_mmap_entry* kernel_mmap_first(uintptr_t addr, size_t length)
{
    return mmap_entry_at(addr, addr, length);
}

const struct multiboot_mmap_entry* kernel_mmap_next(const struct multiboot_mmap_entry* e, uintptr_t addr,
                                                    size_t length)
{
    return mmap_entry_at((uintptr_t)e + e->size + sizeof(e->size), addr, length);
}

static const char* mmap_type(uint32_t type)
{
    static const char* const names[] = { "?", "available", "reserved", "ACPI reclaimable", "ACPI NVS", "bad RAM" };
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

/* A size in MiB, or KiB when below 1 MiB. */
static void print_size(uint64_t bytes)
{
    if (bytes < (1u << 20)) {
        printk("%llu KiB", (ull)(bytes >> 10));
    } else {
        printk("%llu MiB", (ull)(bytes >> 20));
    }
}

struct kernel_mmap_summary kernel_print_mmap(uintptr_t addr, size_t length, uint64_t start, uint64_t end,
                                             kernel_mmap_probe_fn probe)
{
    struct kernel_mmap_summary sum = { 0, 0, false };
    printk("mmap: %u bytes of entries at 0x%x (base, end, length, type)\n", (unsigned)length, (unsigned)addr);
    for (const struct multiboot_mmap_entry* e = kernel_mmap_first(addr, length); e != NULL;
         e = kernel_mmap_next(e, addr, length)) {
        uint64_t e_end = e->base + e->length;
        printk("mmap: 0x%016llx..0x%016llx length 0x%011llx type %u %s (", (ull)e->base, (ull)e_end,
               (ull)e->length, (unsigned)e->type, mmap_type(e->type));
        print_size(e->length);
        print(")\n");
        if (e->type == MULTIBOOT_MMAP_AVAILABLE) {
            sum.available += e->length;
            sum.top = e_end > sum.top ? e_end : sum.top;
            sum.holds = sum.holds || (e->base <= start && end <= e_end);
            if (probe != NULL) {
                probe(e->base, e_end);
            }
        }
    }
    printk("mmap: %llu MiB available, highest available address 0x%llx\n", (ull)(sum.available >> 20),
           (ull)sum.top);
    return sum;
}
