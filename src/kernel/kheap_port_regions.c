/*
 * kheap_port_regions.c - the demo kernels' kheap_port_regions
 * (PEACHOS_KHEAP_REGIONS, set by mk/kernel.mk and mk/kernel64.mk): the
 * seed's region first (kheap_port.c: pool at 16 MiB, table at 0x7E00,
 * index at 0xE200; the boot checks refuse a machine where it does not
 * fit), then the available RAM of the multiboot memory map above the
 * seed's pool, as far as the kernel reaches: below 4 GiB on i686 (paging
 * off, 32-bit pointers), as far as boot64.S identity-maps on x86_64.
 *
 * Each extra region keeps its table at its own start and its pool right
 * after it, block-aligned, so the table is outside the pool; no index (the
 * linear scan). Everything below the seed's pool end (the kernel image,
 * its stack and page tables, the multiboot structures, the seed's table
 * and index) is left out. The map's available ranges are copied when the
 * kernel hands them over: the map lies where the seed's table goes.
 */
#include "kernel.h"

#include "../memory/heap/kheap.h"
#include "../memory/heap/kheap_port.h"
#include "multiboot.h"

#if PEACHOS_KHEAP_REGIONS
#define BS ((uint64_t)PEACHOS_HEAP_BLOCK_SIZE)
#define MIN_REGION_BLOCKS 16 /* smaller leftovers are not worth a region */
#define MAX_RANGES 32        /* available entries kept from the map */

#if defined(__x86_64__)
extern uint32_t boot64_mapped_gib; /* boot64.S */
static uint64_t reachable_end(void)
{
    return (uint64_t)boot64_mapped_gib << 30;
}
#else
/* Paging is off and pointers have 32 bits: the last block below 4 GiB. */
static uint64_t reachable_end(void)
{
    return (uint64_t)UINTPTR_MAX + 1 - BS;
}
#endif

static struct
{
    uint64_t base, end;
} ranges[MAX_RANGES];
static size_t range_count;

void kernel_regions_set_map(uintptr_t mmap_addr, size_t mmap_length)
{
    range_count = 0;
    for (const struct multiboot_mmap_entry* e = kernel_mmap_first(mmap_addr, mmap_length);
         e != NULL && range_count < MAX_RANGES; e = kernel_mmap_next(e, mmap_addr, mmap_length)) {
        if (e->type == MULTIBOOT_MMAP_AVAILABLE && e->length != 0) {
            ranges[range_count].base = e->base;
            ranges[range_count].end = e->base + e->length;
            range_count++;
        }
    }
}

/* Add [start, end) as regions[n] (table at its start); returns the new count. */
static size_t add_region(struct kheap_region* regions, size_t n, size_t max, uint64_t start, uint64_t end)
{
    start = (start + BS - 1) & ~(BS - 1);
    end &= ~(BS - 1);
    if (n >= max || end <= start) {
        return n;
    }
    uint64_t table = ((end - start) / BS + BS - 1) / BS * BS; /* one entry per block of the whole range */
    if (end - start <= table + MIN_REGION_BLOCKS * BS) {
        return n;
    }
    /* Every other field zero: no index, nothing else of the port's. */
    regions[n] = (struct kheap_region){ .table = (HEAP_BLOCK_TABLE_ENTRY*)(uintptr_t)start,
                                        .start = (void*)(uintptr_t)(start + table),
                                        .end = (void*)(uintptr_t)end };
    return n + 1;
}

int kheap_port_regions(struct kheap_region* regions, size_t max)
{
    int res = kheap_port_region(&regions[0]);
    if (res < 0) {
        return res;
    }
    size_t n = 1;
    uint64_t low = (uintptr_t)regions[0].end;
    uint64_t high = reachable_end();
    for (size_t k = 0; k < range_count; k++) {
        uint64_t start = ranges[k].base > low ? ranges[k].base : low;
        uint64_t end = ranges[k].end < high ? ranges[k].end : high;
        n = add_region(regions, n, max, start, end);
    }
    return (int)n;
}
#else
void kernel_regions_set_map(uintptr_t mmap_addr, size_t mmap_length)
{
    (void)mmap_addr;
    (void)mmap_length;
}
#endif
