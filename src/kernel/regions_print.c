/*
 * regions_print.c - the heap regions on the console (PEACHOS_KHEAP_REGIONS):
 * the list kheap_init built, and at the end of the self-test one section
 * per region - a `HEAPMAP region` line with its addresses, its statistics
 * and its map in heap_dump_map's format - so that tools/heapmap and the GDB
 * commands can show every region, not just the first. With a kvmalloc
 * window (PEACHOS_KHEAP_VMALLOC, the x86_64 kernel) a window section
 * follows: a `HEAPMAP window` line, the window heap's statistics and map,
 * and `HEAPMAP backing` lines that name the region blocks behind each
 * window allocation (docs/kvmalloc.md, "The window on the console").
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

#if PEACHOS_KHEAP_VMALLOC
#define RUNS_PER_LINE 16u

/* One `HEAPMAP backing` line's runs: window blocks [window, window +
 * blocks) are backed by `count` runs, run i being region[i]'s blocks
 * block[i] .. block[i] + length[i] - 1, in window order. */
struct backing_line
{
    size_t alloc, window, blocks, count;
    size_t region[RUNS_PER_LINE], block[RUNS_PER_LINE], length[RUNS_PER_LINE];
};

static void backing_flush(struct backing_line* l, size_t* lines)
{
    if (l->count == 0) {
        return;
    }
    printk("HEAPMAP backing alloc=%zu window=%zu blocks=%zu runs=%zu", l->alloc, l->window, l->blocks, l->count);
    for (size_t i = 0; i < l->count; i++) {
        printk(" %zu:%zu+%zu", l->region[i], l->block[i], l->length[i]);
    }
    print("\n");
    l->window += l->blocks;
    l->blocks = 0;
    l->count = 0;
    (*lines)++;
}

/* Region k and block b of a backing address; false when no region holds
 * it. The window's sources are the kernel heap's regions, both lowest
 * first, so a source's rank is its region's number. */
static bool backing_place(const struct kvmalloc* kv, const void* at, size_t* k, size_t* b)
{
    *k = kvmalloc_source_rank(kv, at);
    if (*k == SIZE_MAX) {
        return false;
    }
    *b = (size_t)(((uintptr_t)at - (uintptr_t)kv->source[*k]->saddr) / BS);
    return true;
}

/*
 * One line per window allocation (more when it has more than
 * RUNS_PER_LINE runs, each line the next window blocks): `HEAPMAP backing
 * alloc=A window=W blocks=N runs=R K:B+C ...`, allocation A (1 = the
 * lowest in the window), window blocks W..W+N-1 backed by region K's
 * blocks B..B+C-1, run after run; then `HEAPMAP backing end ...`.
 */
static void print_backing(const struct kvmalloc* kv)
{
    const struct heap_table* t = kv->window.table;
    struct backing_line l = { 0 };
    size_t allocations = 0, blocks = 0, runs = 0, lines = 0, strays = 0;
    for (size_t w = 0; w < t->total; w++) {
        HEAP_BLOCK_TABLE_ENTRY e = t->entries[w];
        if ((e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) == 0) {
            continue;
        }
        if ((e & HEAP_BLOCK_IS_FIRST) != 0 || l.alloc == 0) {
            backing_flush(&l, &lines);
            l.alloc = ++allocations;
            l.window = w;
        }
        size_t k = 0, b = 0;
        if (!backing_place(kv, kv->backing[w], &k, &b)) {
            strays++; /* in no region: kvmalloc_check's V3 names it; the next line starts after it */
            backing_flush(&l, &lines);
            l.window = w + 1;
            continue;
        }
        blocks++;
        size_t last = l.count - 1;
        if (l.count > 0 && l.region[last] == k && l.block[last] + l.length[last] == b) {
            l.length[last]++;
            l.blocks++;
            continue;
        }
        if (l.count == RUNS_PER_LINE) {
            backing_flush(&l, &lines);
        }
        l.region[l.count] = k;
        l.block[l.count] = b;
        l.length[l.count++] = 1;
        l.blocks++;
        runs++;
    }
    backing_flush(&l, &lines);
    printk("HEAPMAP backing end allocations=%zu blocks=%zu runs=%zu lines=%zu outside_regions=%zu\n", allocations,
           blocks, runs, lines, strays);
}

/* Under the lock: the window's section (its map one block per character). */
static void print_window(const struct kvmalloc* kv)
{
    const struct heap* h = &kv->window;
    struct heap_stats s;
    printk("HEAPMAP window range=0x%016llx..0x%016llx table=0x%016llx backing=0x%016llx blocks=%zu sources=%zu\n",
           (ull)(uintptr_t)h->saddr, (ull)pool_end(h), (ull)(uintptr_t)h->table->entries,
           (ull)(uintptr_t)kv->backing, h->table->total, kv->sources);
    heap_get_stats(h, &s);
    printk("kheap window: total=%zu used=%zu free=%zu largest_free=%zu allocations=%zu rejected_frees=%zu "
           "failed_allocs=%zu backing=%zu map_failures=%zu\n",
           s.total_blocks, s.used_blocks, s.free_blocks, s.largest_free_run, s.live_allocations, s.rejected_frees,
           kv->failed_allocs, kv->blocks, kv->map_failures);
    heap_dump_map(h, print_writer, NULL, 1, 128, 0);
    print_backing(kv);
}
#endif

void kernel_regions_print_state(void)
{
    struct multiheap* mh = kheap_regions();
    if (mh == NULL) {
        return;
    }
    print("heap map: every region, one section each (HEAPMAP region lines give the addresses)\n");
    uintptr_t state = kheap_lock();
    print_sections(mh);
#if PEACHOS_KHEAP_VMALLOC
    const struct kvmalloc* kv = kheap_window();
    if (kv != NULL) {
        print("heap map: the kvmalloc window (HEAPMAP window line: its range; HEAPMAP backing lines: the region "
              "blocks behind each window allocation)\n");
        print_window(kv);
    }
#endif
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
