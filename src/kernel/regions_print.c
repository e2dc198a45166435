/*
 * regions_print.c - the heap regions on the console (PEACHOS_KHEAP_REGIONS):
 * the list kheap_init built, and at the end of the self-test one section
 * per region - a `HEAPMAP region` line with its addresses, its statistics
 * and its map in heap_dump_map's format - so that tools/heapmap and the GDB
 * commands can show every region, not just the first.
 */
#include "kernel.h"

#include "../memory/heap/kheap.h"
#include "print.h"

#if PEACHOS_KHEAP_REGIONS
#define BS ((uint64_t)PEACHOS_HEAP_BLOCK_SIZE)
#define GIB (1ull << 30)

typedef unsigned long long ull; /* printk's %llx, whatever uint64_t is */

static uint64_t pool_end(const struct heap* h)
{
    return (uintptr_t)h->saddr + (uint64_t)h->table->total * BS;
}

void kernel_regions_print(void)
{
    struct multiheap* mh = kheap_regions();
    if (mh == NULL) {
        return;
    }
    size_t blocks = 0;
    for (size_t k = 0; k < mh->count; k++) {
        const struct heap* h = multiheap_region(mh, k);
        uint64_t start = (uintptr_t)h->saddr, end = pool_end(h);
        printk("kheap: region %zu: pool 0x%016llx..0x%016llx (%zu blocks, %llu MiB), table at 0x%llx%s%s\n", k,
               (ull)start, (ull)end, h->table->total, (ull)((end - start) >> 20), (ull)(uintptr_t)h->table->entries,
               h == kheap_get() ? " - the seed's, the caches' home" : "", start >= 4 * GIB ? " - above 4 GiB" : "");
        blocks += h->table->total;
    }
    printk("kheap: %zu regions, %zu blocks (%llu MiB), first fit by address across them\n", mh->count, blocks,
           (ull)((uint64_t)blocks * BS >> 20));
}

static void print_stats(const char* what, const struct heap_stats* s)
{
    printk("%s total=%zu used=%zu free=%zu largest_free=%zu allocations=%zu rejected_frees=%zu failed_allocs=%zu\n",
           what, s->total_blocks, s->used_blocks, s->free_blocks, s->largest_free_run, s->live_allocations,
           s->rejected_frees, s->failed_allocs);
}

/* Under the lock: every region's section, then the totals. */
static void print_sections(struct multiheap* mh)
{
    struct heap_stats s;
    for (size_t k = 0; k < mh->count; k++) {
        const struct heap* h = multiheap_region(mh, k);
        printk("HEAPMAP region %zu of %zu pool=0x%016llx..0x%016llx table=0x%016llx blocks=%zu\n", k, mh->count,
               (ull)(uintptr_t)h->saddr, (ull)pool_end(h), (ull)(uintptr_t)h->table->entries, h->table->total);
        heap_get_stats(h, &s);
        printk("kheap region %zu:", k);
        print_stats("", &s);
        heap_dump_map(h, print_writer, NULL, 0, 64, 16);
    }
    struct multiheap_stats all;
    multiheap_get_stats(mh, &all, NULL, 0);
    printk("kheap regions: %zu regions,", all.regions);
    print_stats("", &all.total);
}

void kernel_regions_print_state(void)
{
    struct multiheap* mh = kheap_regions();
    if (mh == NULL) {
        return;
    }
    print("heap map: every region, one section each (HEAPMAP region lines give the addresses)\n");
    uintptr_t state = kheap_lock();
    print_sections(mh);
    kheap_unlock(state);
}
#else
void kernel_regions_print(void)
{
}

void kernel_regions_print_state(void)
{
}
#endif
