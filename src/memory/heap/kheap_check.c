/*
 * kheap_check.c - kheap_check: the checker over the kernel heap, in a file
 * of its own so that a kernel that never calls it can leave it, and
 * heap_check.c (and kcache_check), out of its image.
 */
#include "kheap.h"
#include "heap_status.h"
#if PEACHOS_KHEAP_VMALLOC
#include "kheap_vmalloc.h"
#endif

#if PEACHOS_KHEAP_REGIONS
/* Every region and the multiheap's invariants, then the caches. */
static int kheap_check_regions(size_t* bad)
{
    int res = kheap_regions() != NULL ? multiheap_check(kheap_regions(), NULL, bad) : -EINVARG;
#if PEACHOS_KHEAP_CACHES
    if (res == 0) {
        res = kcache_check(kheap_cache(), bad);
    }
#endif
    return res;
}
#define KHEAP_CHECK(bad) kheap_check_regions(bad)
#elif PEACHOS_KHEAP_CACHES
#define KHEAP_CHECK(bad) (kheap_cache() != NULL ? kcache_check(kheap_cache(), (bad)) : -EINVARG)
#else
#define KHEAP_CHECK(bad) (kheap_get() != NULL ? heap_check(kheap_get(), (bad)) : -EINVARG)
#endif

int kheap_check(size_t* bad)
{
    uintptr_t state = kheap_lock();
    int res = KHEAP_CHECK(bad);
#if PEACHOS_KHEAP_VMALLOC
    if (res == 0) {
        res = kheap_vm_check(bad); /* the window, its record, the VMAP blocks */
    }
#endif
    kheap_unlock(state);
    return res;
}
