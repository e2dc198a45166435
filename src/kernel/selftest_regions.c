/*
 * selftest_regions.c - the self-test case of the heap regions
 * (PEACHOS_KHEAP_REGIONS, kheap_port_regions.c), i686 and x86_64. The
 * other cases run in first-only mode (the kernel sets it: they count on
 * the seed's 25,600 blocks); this one lets the heap use every region: it
 * fills every region but the highest, then asks for a run that only the
 * highest can give - one block more than the first region holds, or the
 * highest region's largest free run if that is smaller - which first fit
 * by address must place there (above 4 GiB when the machine has RAM
 * there). It writes and reads back every byte, frees everything, and
 * kheap_check must be clean and the used blocks back to what they were.
 * With one region it says SKIP.
 */
#include "../memory/heap/kheap.h"
#include "print.h"
#include "selftest.h"

#if PEACHOS_KHEAP_REGIONS
#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define PATTERN 0xA5C3F00D12345678ull
#define GIB (1ull << 30)

typedef unsigned long long ull;

static struct heap_stats region_stats(const struct heap* h)
{
    struct heap_stats s;
    uintptr_t state = kheap_lock();
    heap_get_stats(h, &s);
    kheap_unlock(state);
    return s;
}

/* Take every free run of every region but the highest, largest first,
 * chained through their first word; returns the chain (*count runs). */
static void** fill_lower(struct multiheap* mh, size_t* count, bool* ok)
{
    void** chain = NULL;
    for (size_t k = 0; k + 1 < mh->count; k++) {
        struct heap* h = multiheap_region(mh, k);
        for (size_t run = region_stats(h).largest_free_run; run != 0; run = region_stats(h).largest_free_run) {
            void** p = kpalloc(run * BS);
            if (p == NULL || multiheap_get_heap_for_address(mh, p) != h) {
                *ok = false; /* first fit must take it in this region */
                kfree(p);
                break;
            }
            *p = chain;
            chain = p;
            (*count)++;
        }
    }
    return chain;
}

static void free_chain(void** chain)
{
    while (chain != NULL) {
        void** next = *chain;
        kfree(chain);
        chain = next;
    }
}

static size_t used_blocks(struct multiheap* mh)
{
    struct multiheap_stats stats;
    uintptr_t state = kheap_lock();
    multiheap_get_stats(mh, &stats, NULL, 0);
    kheap_unlock(state);
    return stats.total.used_blocks;
}

/* Every word written with a pattern of its address, then read back. */
static size_t write_read_back(volatile uint64_t* p, size_t size)
{
    size_t words = size / sizeof(uint64_t), differ = 0;
    for (size_t i = 0; i < words; i++) {
        p[i] = PATTERN ^ ((uint64_t)(uintptr_t)&p[i] * 0x9E3779B97F4A7C15ull);
    }
    for (size_t i = 0; i < words; i++) {
        differ += p[i] != (PATTERN ^ ((uint64_t)(uintptr_t)&p[i] * 0x9E3779B97F4A7C15ull));
    }
    return differ;
}

static bool regions_case(struct multiheap* mh, struct heap* high)
{
    bool ok = true;
    size_t before = used_blocks(mh), runs = 0;
    void** chain = fill_lower(mh, &runs, &ok);
    size_t blocks = kheap_get()->table->total + 1; /* more than the first region holds */
    size_t high_run = region_stats(high).largest_free_run;
    blocks = high_run < blocks ? high_run : blocks;
    volatile uint64_t* big = kpalloc(blocks * BS);
    size_t differ = big != NULL ? write_read_back(big, blocks * BS) : 0;
    printk("regions: %zu runs filled the %zu region(s) below the highest; kpalloc(%zu) = 0x%llx (region %zu at "
           "0x%llx%s); %zu bytes written and read back, %zu words differ\n",
           runs, mh->count - 1, blocks * BS, (ull)(uintptr_t)big, mh->count - 1, (ull)(uintptr_t)high->saddr,
           (uint64_t)(uintptr_t)high->saddr >= 4 * GIB ? ", above 4 GiB" : "", big != NULL ? blocks * BS : 0, differ);
    ok = ok && big != NULL && multiheap_get_heap_for_address(mh, (void*)big) == high && differ == 0;
    kfree((void*)big);
    free_chain(chain);
    size_t bad = 0;
    return ok && kheap_check(&bad) == 0 && used_blocks(mh) == before;
}

void selftest_regions(int* passed, int* failed)
{
    struct multiheap* mh = kheap_regions();
    if (mh == NULL || mh->count < 2) {
        print("SKIP kheap regions: the heap has one region on this machine\n");
        return;
    }
    bool was = kheap_regions_first_only(false);
    bool ok = regions_case(mh, multiheap_region(mh, mh->count - 1));
    kheap_regions_first_only(was);
    printk("%s kheap regions: a run the lower regions cannot give lands in the highest region, every byte "
           "written and read back, freed, kheap_check clean\n",
           ok ? "PASS" : "FAIL");
    ++*(ok ? passed : failed);
}
#else
/* The signature is selftest.h's; with one region nothing is counted. */
void selftest_regions(int* passed, int* failed) // NOLINT(readability-non-const-parameter)
{
    (void)passed;
    (void)failed;
    print("SKIP kheap regions: built with one region (PEACHOS_KHEAP_REGIONS=0)\n");
}
#endif
