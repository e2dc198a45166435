/*
 * selftest_vmalloc64.c - the x86_64 kernel's self-test case of virtually
 * contiguous allocations (PEACHOS_KHEAP_VMALLOC, kheap_window64.c).
 *
 * The self-test runs in first-only mode (kernel64.c), so kmalloc places in
 * the first region alone. The case takes every block of that region one by
 * one and frees every other one: its longest free run is one block. Then
 * kmalloc of 32 MiB, far more than that run, must come from the window:
 * 8,192 scattered blocks of the first region, in address order, mapped one
 * after the other. Every byte is written through the window and read back
 * through it, the first and last word of every page also through the
 * identity map of the block behind it; an interior pointer into the window
 * is refused; kheap_check (which walks the window's page tables) is clean
 * before and after the free, and every block goes back.
 *
 * Then, for the map at the end (regions_print.c's window section), window
 * allocations are left live: one backed by the lowest free blocks of the
 * first region - the holes the earlier cases left live allocations
 * around, so its backing is scattered over several runs - one backed by
 * the highest region (above 4 GiB at -m 6G), and between them a freed
 * one: a hole in the window.
 */
#include "vmalloc64.h"

#include "../kernel/print.h"
#include "../memory/heap/kheap.h"

#if PEACHOS_KHEAP_VMALLOC
#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define WANT_BLOCKS 8192u
#define PATTERN 0x5EED0F0A11BEEF00ull
#define LIVE_LOW_BLOCKS 48u  /* left live, backed by the first region's holes */
#define LIVE_GAP_BLOCKS 16u  /* allocated, then freed: a hole in the window */
#define LIVE_HIGH_BLOCKS 32u /* left live, backed by the highest region */

static uint64_t pattern_at(const volatile uint64_t* p)
{
    return PATTERN ^ ((uintptr_t)p * 0x9E3779B97F4A7C15ull);
}

/* Take every block of the first region; free the even ones. Returns the
 * kept (odd) blocks chained through their first word. */
static void** fragment(const struct heap* first, size_t* freed)
{
    void** all = NULL;
    void** kept = NULL;
    void** p;
    while ((p = kpalloc(1)) != NULL) {
        *p = all;
        all = p;
    }
    while (all != NULL) {
        void** next = *all;
        if (((uintptr_t)all - (uintptr_t)first->saddr) / BS % 2 == 0) {
            kfree(all);
            (*freed)++;
        } else {
            *all = kept;
            kept = all;
        }
        all = next;
    }
    return kept;
}

/* Every word through the window, then the pages' ends through the blocks. */
static size_t write_and_verify(volatile uint64_t* v, size_t bytes)
{
    size_t words = bytes / sizeof(uint64_t), differ = 0;
    for (size_t i = 0; i < words; i++) {
        v[i] = pattern_at(&v[i]);
    }
    for (size_t i = 0; i < words; i++) {
        differ += v[i] != pattern_at(&v[i]);
    }
    for (size_t b = 0; b < bytes / BS; b++) {
        const volatile uint64_t* block = kvmalloc_backing(kheap_window(), (const char*)v + b * BS);
        const volatile uint64_t* page = &v[b * BS / sizeof(uint64_t)];
        differ += block == NULL || block[0] != pattern_at(page) ||
                  block[BS / sizeof(uint64_t) - 1] != pattern_at(&page[BS / sizeof(uint64_t) - 1]);
    }
    return differ;
}

/* The backing blocks: all in `first`, rising. */
static bool backing_in_order(const struct heap* first, const char* v, size_t blocks)
{
    uintptr_t prev = 0, lo = (uintptr_t)first->saddr, hi = lo + first->table->total * BS;
    for (size_t b = 0; b < blocks; b++) {
        uintptr_t at = (uintptr_t)kvmalloc_backing(kheap_window(), v + b * BS);
        if (at <= prev || at < lo || at >= hi) {
            return false;
        }
        prev = at;
    }
    return true;
}

/* A window allocation of `blocks` blocks whose backing comes from `only`
 * (kvmalloc_alloc_from, under the lock: kmalloc would find them
 * contiguous in a region and never reach the window). */
static volatile uint64_t* window_alloc_from(const struct heap* only, size_t blocks)
{
    uintptr_t state = kheap_lock();
    void* v = kvmalloc_alloc_from(kheap_window(), blocks * BS, only);
    kheap_unlock(state);
    return v;
}

/* How many runs of consecutive blocks back the allocation at v, and in how
 * many distinct sources; *sources_out the number of sources. */
static size_t backing_runs(const char* v, size_t blocks, size_t* sources_out)
{
    const struct kvmalloc* kv = kheap_window();
    size_t runs = 0, sources = 0;
    size_t prev_source = SIZE_MAX; /* the rank of no source */
    uintptr_t prev = 0;
    for (size_t b = 0; b < blocks; b++) {
        uintptr_t at = (uintptr_t)kvmalloc_backing(kv, v + b * BS);
        size_t source = kvmalloc_source_rank(kv, (const void*)at);
        runs += at != prev + BS || source != prev_source;
        sources += source != prev_source;
        prev = at;
        prev_source = source;
    }
    *sources_out = sources;
    return runs;
}

/* Window allocations left live for the map, written and read back. */
static bool leave_live(struct heap* first)
{
#if PEACHOS_KHEAP_REGIONS
    struct multiheap* mh = kheap_regions();
    const struct heap* high = mh != NULL ? multiheap_region(mh, mh->count - 1) : first;
    size_t high_k = mh != NULL ? mh->count - 1 : 0;
#else
    const struct heap* high = first;
    size_t high_k = 0;
#endif
    size_t bad = 0, low_sources = 0, high_sources = 0;
    volatile uint64_t* low = window_alloc_from(first, LIVE_LOW_BLOCKS);
    volatile uint64_t* gap = window_alloc_from(first, LIVE_GAP_BLOCKS);
    volatile uint64_t* top = window_alloc_from(high, LIVE_HIGH_BLOCKS);
    bool ok = low != NULL && gap != NULL && top != NULL;
    size_t differ = ok ? write_and_verify(low, LIVE_LOW_BLOCKS * BS) + write_and_verify(top, LIVE_HIGH_BLOCKS * BS)
                       : 0;
    kfree((void*)gap);
    size_t low_runs = ok ? backing_runs((const char*)low, LIVE_LOW_BLOCKS, &low_sources) : 0;
    size_t high_runs = ok ? backing_runs((const char*)top, LIVE_HIGH_BLOCKS, &high_sources) : 0;
    ok = ok && differ == 0 && low_runs > 1 && low_sources == 1 && high_sources == 1 && kheap_check(&bad) == 0 &&
         ksize((void*)low) == LIVE_LOW_BLOCKS * BS && ksize((void*)top) == LIVE_HIGH_BLOCKS * BS &&
         kheap_window()->blocks == LIVE_LOW_BLOCKS + LIVE_HIGH_BLOCKS;
    printk("vmalloc: left live in the window for the map: 0x%llx (%u blocks, backed by %zu runs of region 0), "
           "0x%llx (%u blocks, backed by %zu run(s) of region %zu), a hole of %u blocks between; %zu words differ\n",
           (unsigned long long)(uintptr_t)low, LIVE_LOW_BLOCKS, low_runs, (unsigned long long)(uintptr_t)top,
           LIVE_HIGH_BLOCKS, high_runs, high_k, LIVE_GAP_BLOCKS, differ);
    return ok;
}

void selftest_vmalloc64(int* passed, int* failed)
{
    struct heap* first = kheap_get();
    size_t before = first->used_blocks, freed = 0, bad = 0; /* the cases before leave some live */
    void** kept = fragment(first, &freed);
    struct heap_stats s;
    heap_get_stats(first, &s);
    size_t size = WANT_BLOCKS * BS;
    volatile uint64_t* v = kmalloc(size);
    bool ok = s.largest_free_run == 1 && freed >= WANT_BLOCKS && v != NULL && kvmalloc_owns(kheap_window(), (void*)v);
    size_t differ = ok ? write_and_verify(v, size) : 0;
    ok = ok && differ == 0 && backing_in_order(first, (const char*)v, WANT_BLOCKS) && kheap_check(&bad) == 0;
    size_t rejected = kheap_window() != NULL ? kheap_window()->window.rejected_frees : 0;
    kfree((char*)v + BS); /* an interior pointer into the window: refused */
    ok = ok && kheap_window()->window.rejected_frees == rejected + 1 && ksize((void*)v) == size;
    printk("vmalloc: first region fragmented (%zu single free blocks, longest run %zu); kmalloc(%zu) = 0x%llx "
           "in the window at 0x%llx; %zu bytes written and read back, %zu words differ\n",
           freed, s.largest_free_run, size, (unsigned long long)(uintptr_t)v, (unsigned long long)VMALLOC64_BASE,
           v != NULL ? size : 0, differ);
    size_t used = first->used_blocks;
    kfree((void*)v);
    ok = ok && first->used_blocks == used - WANT_BLOCKS && kheap_check(&bad) == 0;
    while (kept != NULL) {
        void** next = *kept;
        kfree(kept);
        kept = next;
    }
    ok = ok && first->used_blocks == before && kheap_check(&bad) == 0;
    printk("%s kheap vmalloc: more than the longest free run, from scattered blocks in address order mapped in the "
           "window, every byte written and read back, freed, kheap_check clean\n", ok ? "PASS" : "FAIL");
    *(ok ? passed : failed) += 1;
    ok = leave_live(first);
    printk("%s kheap vmalloc: window allocations left live for the map, backed by scattered blocks of the first "
           "region and by the highest region, kheap_check clean\n", ok ? "PASS" : "FAIL");
    *(ok ? passed : failed) += 1;
}
#else
void selftest_vmalloc64(int* passed, int* failed)
{
    (void)passed;
    (void)failed;
    print("SKIP kheap vmalloc: built without PEACHOS_KHEAP_VMALLOC\n");
}
#endif
