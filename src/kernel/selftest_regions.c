/*
 * selftest_regions64.c - the x86_64 kernel's self-test case of the heap
 * regions (PEACHOS_KHEAP_REGIONS, kheap_port64.c). The other cases run in
 * first-only mode (kernel64.c sets it: they count on the seed's 25,600
 * blocks); this one lets the heap use every region: it fills the regions
 * below 4 GiB, then asks for more than the first region can hold, which
 * must land above 4 GiB; writes and reads back every byte of it, frees
 * everything, and kheap_check must be clean. Without RAM above 4 GiB
 * (qemu -m 128M; QEMU puts RAM above 4 GiB from -m 3584M) it says SKIP.
 */
#include "kernel64.h"

#include "../kernel/print.h"
#include "../memory/heap/kheap.h"

#if PEACHOS_KHEAP_REGIONS
#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define PATTERN 0xA5C3F00D12345678ull

static struct heap* region_above_4g(struct multiheap* mh)
{
    for (size_t k = 0; k < mh->count; k++) {
        if ((uintptr_t)multiheap_region(mh, k)->saddr >= 4 * KERNEL64_GIB) {
            return multiheap_region(mh, k);
        }
    }
    return NULL;
}

/* Take every free run of the regions below 4 GiB, largest first, chained
 * through their first word; returns the chain (*count runs). */
static void** fill_below_4g(struct multiheap* mh, size_t* count, bool* ok)
{
    void** chain = NULL;
    for (size_t k = 0; k < mh->count && (uintptr_t)multiheap_region(mh, k)->saddr < 4 * KERNEL64_GIB; k++) {
        struct heap* h = multiheap_region(mh, k);
        for (;;) {
            struct heap_stats s;
            uintptr_t state = kheap_lock();
            heap_get_stats(h, &s);
            kheap_unlock(state);
            if (s.largest_free_run == 0) {
                break;
            }
            void** run = kpalloc(s.largest_free_run * BS);
            if (run == NULL || multiheap_get_heap_for_address(mh, run) != h) {
                *ok = false; /* first fit must take it in this region */
                kfree(run);
                break;
            }
            *run = chain;
            chain = run;
            (*count)++;
        }
    }
    return chain;
}

static size_t used_blocks(struct multiheap* mh)
{
    struct multiheap_stats stats;
    uintptr_t state = kheap_lock();
    multiheap_get_stats(mh, &stats, NULL, 0);
    kheap_unlock(state);
    return stats.total.used_blocks;
}

void selftest_regions64(int* passed, int* failed)
{
    struct multiheap* mh = kheap_regions();
    struct heap* high = mh != NULL ? region_above_4g(mh) : NULL;
    if (high == NULL) {
        print("SKIP kheap regions: no heap region beyond 4 GiB on this machine (qemu -m 6G has one)\n");
        return;
    }
    bool was = kheap_regions_first_only(false);
    bool ok = true;
    size_t before = used_blocks(mh), runs = 0;
    void** chain = fill_below_4g(mh, &runs, &ok);
    size_t size = (kheap_get()->table->total + 1) * BS; /* more than the first region holds */
    volatile uint64_t* big = kpalloc(size);
    size_t differ = 0;
    if (big != NULL) {
        size_t words = size / sizeof(uint64_t);
        for (size_t i = 0; i < words; i++) {
            big[i] = PATTERN ^ ((uintptr_t)&big[i] * 0x9E3779B97F4A7C15ull);
        }
        for (size_t i = 0; i < words; i++) {
            differ += big[i] != (PATTERN ^ ((uintptr_t)&big[i] * 0x9E3779B97F4A7C15ull));
        }
    }
    printk("regions: %zu runs filled the regions below 4 GiB; kpalloc(%zu) = 0x%llx (region at 0x%llx); "
           "%zu bytes written and read back, %zu words differ\n",
           runs, size, (unsigned long long)(uintptr_t)big, (unsigned long long)(uintptr_t)high->saddr,
           big != NULL ? size : 0, differ);
    ok = ok && big != NULL && (uintptr_t)big >= 4 * KERNEL64_GIB && multiheap_get_heap_for_address(mh, (void*)big) == high &&
         differ == 0;
    kfree((void*)big);
    while (chain != NULL) {
        void** next = *chain;
        kfree(chain);
        chain = next;
    }
    size_t bad = 0;
    ok = ok && kheap_check(&bad) == 0 && used_blocks(mh) == before;
    kheap_regions_first_only(was);
    printk("%s kheap regions: more than the first region holds lands above 4 GiB, every byte written and read "
           "back, freed, kheap_check clean\n", ok ? "PASS" : "FAIL");
    if (ok) {
        (*passed)++;
    } else {
        (*failed)++;
    }
}
#else
void selftest_regions64(int* passed, int* failed)
{
    (void)passed;
    (void)failed;
}
#endif
