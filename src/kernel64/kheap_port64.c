/*
 * kheap_port64.c - the x86_64 demo kernel's kheap_port_regions
 * (PEACHOS_KHEAP_REGIONS, set by mk/kernel64.mk): the seed's region first
 * (src/kernel/kheap_port.c: pool at 16 MiB, table at 0x7E00, index at
 * 0xE200; boot_checks refuses a machine where it does not fit), then the
 * available RAM of the multiboot memory map above the seed's pool - below
 * and above 4 GiB - as far as boot64.S identity-maps it. Each extra region
 * keeps its table at its own start and its pool right after it,
 * block-aligned, so the table is outside the pool; no index (the linear
 * scan). Everything below the seed's pool end (the kernel image, its
 * stack and page tables, the multiboot structures, the seed's table and
 * index) is left out.
 */
#include "kernel64.h"

#include "../kernel/print.h"
#include "../memory/heap/kheap.h"
#include "../memory/heap/kheap_port.h"

#if PEACHOS_KHEAP_REGIONS
#define BS ((uint64_t)PEACHOS_HEAP_BLOCK_SIZE)
#define MIN_REGION_BLOCKS 16 /* smaller leftovers are not worth a region */

typedef unsigned long long ull;

static uintptr_t map_addr;
static size_t map_length;

void kheap_port64_set_map(uintptr_t mmap_addr, size_t mmap_length)
{
    map_addr = mmap_addr;
    map_length = mmap_length;
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
    regions[n].table = (HEAP_BLOCK_TABLE_ENTRY*)(uintptr_t)start;
    regions[n].start = (void*)(uintptr_t)(start + table);
    regions[n].end = (void*)(uintptr_t)end;
    regions[n].index = NULL;
    regions[n].index_bytes = 0;
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
    uint64_t mapped = (uint64_t)boot64_mapped_gib * KERNEL64_GIB;
    for (uintptr_t at = map_addr; at + sizeof(struct multiboot_mmap_entry) <= map_addr + map_length;) {
        const struct multiboot_mmap_entry* e = (const struct multiboot_mmap_entry*)at;
        uint64_t start = e->base > low ? e->base : low;
        uint64_t end = e->base + e->length < mapped ? e->base + e->length : mapped;
        if (e->type == MULTIBOOT_MMAP_AVAILABLE) {
            n = add_region(regions, n, max, start, end);
        }
        at += (uintptr_t)e->size + sizeof(e->size);
    }
    return (int)n;
}

void kheap_port64_print_regions(void)
{
    struct multiheap* mh = kheap_regions();
    if (mh == NULL) {
        return;
    }
    size_t blocks = 0;
    for (size_t k = 0; k < mh->count; k++) {
        const struct heap* h = multiheap_region(mh, k);
        uint64_t start = (uintptr_t)h->saddr, end = start + (uint64_t)h->table->total * BS;
        printk("kheap: region %zu: pool 0x%016llx..0x%016llx (%zu blocks, %llu MiB), table at 0x%llx%s%s\n", k,
               (ull)start, (ull)end, h->table->total, (ull)((end - start) >> 20), (ull)(uintptr_t)h->table->entries,
               h == kheap_get() ? " - the seed's, the caches' home" : "", start >= 4 * KERNEL64_GIB ? " - above 4 GiB" : "");
        blocks += h->table->total;
    }
    printk("kheap: %zu regions, %zu blocks (%llu MiB), first fit by address across them\n", mh->count, blocks,
           (ull)((uint64_t)blocks * BS >> 20));
}
#else
void kheap_port64_set_map(uintptr_t mmap_addr, size_t mmap_length)
{
    (void)mmap_addr;
    (void)mmap_length;
}

void kheap_port64_print_regions(void)
{
}
#endif
