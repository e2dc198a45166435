/*
 * kheap_init.c - the kernel heap's state and its creation: kheap_init asks
 * the port for its region(s), creates the heap (indexed when the port gives
 * index memory), places the caches' slab table and sets up the caches, and
 * installs the report hook; kheap_ready, kheap_get, kheap_cache and the
 * fault hook read or change that state. kheap.c is the kmalloc family on it.
 */
#include "kheap_internal.h"
#include "heap_status.h"

#include "../memory.h"
#if PEACHOS_KHEAP_INDEX
#include "heap_index.h"
#endif

struct heap kernel_heap;
struct heap_table kernel_heap_table;
bool kheap_is_ready;
#if PEACHOS_KHEAP_CACHES
struct kcache kheap_kcache;
/* Kept here so that the hook survives kheap_init (which resets the caches). */
static kcache_fault_fn kernel_fault;
static void* kernel_fault_ctx;
static void* kernel_cache_table; /* kheap_place_cache_table */
static size_t kernel_cache_table_bytes;
#endif

static void kheap_report(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    kheap_port_report(report);
}

/*
 * Where the caches' slab table goes: the port's memory if it gives some,
 * else the top of the region, which shrinks to the blocks whose records
 * fit beside them. Outside the pool either way, but memory of the port's
 * own, away from the pool, is better: nothing runs into it from the last
 * block. Without the caches there is nothing to place.
 */
#if !PEACHOS_KHEAP_REGIONS
static /* else kheap_regions.c calls it for its first region */
#endif
void kheap_place_cache_table(struct kheap_region* region)
{
#if PEACHOS_KHEAP_CACHES
    uintptr_t start = (uintptr_t)region->start;
    uintptr_t end = (uintptr_t)region->end;
    if (region->cache_table == NULL && end > start) {
        size_t blocks = (end - start) / (PEACHOS_HEAP_BLOCK_SIZE + kcache_table_bytes(1));
        region->end = (void*)(start + blocks * PEACHOS_HEAP_BLOCK_SIZE);
        region->cache_table = region->end;
        region->cache_table_bytes = kcache_table_bytes(blocks);
    }
    kernel_cache_table = region->cache_table;
    kernel_cache_table_bytes = region->cache_table_bytes;
#else
    (void)region;
#endif
}

static int kheap_create(void)
{
#if PEACHOS_KHEAP_REGIONS
    return kheap_regions_create();
#else
    struct kheap_region region;
    memset(&region, 0, sizeof(region)); /* a port that knows nothing of a field leaves it NULL */
    int res = kheap_port_region(&region);
    if (res < 0) {
        return res;
    }
    if (region.table == NULL || (uintptr_t)region.end < (uintptr_t)region.start) {
        return -EINVARG;
    }
    kheap_place_cache_table(&region);
    kernel_heap_table.entries = region.table;
    kernel_heap_table.total = ((uintptr_t)region.end - (uintptr_t)region.start) / PEACHOS_HEAP_BLOCK_SIZE;
#if PEACHOS_KHEAP_INDEX
    if (region.index != NULL) {
        return heap_create_indexed(&kernel_heap, region.start, region.end, &kernel_heap_table, region.index,
                                   region.index_bytes);
    }
#endif
    return heap_create(&kernel_heap, region.start, region.end, &kernel_heap_table);
#endif
}

/* Set up the caches over the new heap (nothing to do without them). */
static int kheap_create_caches(void)
{
#if PEACHOS_KHEAP_CACHES
    unsigned flags = PEACHOS_KCACHE_POISON ? KCACHE_FLAG_POISON : 0u;
    int res = kcache_init(&kheap_kcache, KHEAP_MAIN, kernel_cache_table, kernel_cache_table_bytes, flags);
    if (res == PEACHOS_ALL_OK) {
        kcache_set_fault(&kheap_kcache, kernel_fault, kernel_fault_ctx);
#if PEACHOS_KCACHE_MAGAZINES
        kcache_set_busy(&kheap_kcache, kheap_port_cpus_busy);
#endif
    }
    return res;
#else
    return PEACHOS_ALL_OK;
#endif
}

void kheap_init(void)
{
    uintptr_t state = kheap_port_lock();
    kheap_is_ready = false;
#if PEACHOS_KCACHE_MAGAZINES
    memset(&kheap_kcache, 0, sizeof(kheap_kcache)); /* the magazine paths, which skip the ready flag, see nothing */
#endif
    int res = kheap_create();
    if (res == PEACHOS_ALL_OK) {
        res = kheap_create_caches();
    }
    if (res < 0) {
        kheap_port_print("kheap: failed to create heap: kmalloc will return NULL\n");
    } else {
#if PEACHOS_KHEAP_REGIONS
        kheap_regions_set_report(kheap_report);
#else
        heap_set_report(&kernel_heap, kheap_report, NULL);
#endif
        kheap_is_ready = true;
#if PEACHOS_KHEAP_VMALLOC
        kheap_vm_create(kheap_report);
#endif
    }
    kheap_port_unlock(state);
}

bool kheap_ready(void)
{
    return kheap_is_ready;
}

struct heap* kheap_get(void)
{
    return kheap_is_ready ? KHEAP_MAIN : NULL;
}

#if PEACHOS_KHEAP_CACHES
struct kcache* kheap_cache(void)
{
    return kheap_is_ready ? &kheap_kcache : NULL;
}

void kheap_set_fault(kcache_fault_fn fn, void* ctx)
{
    uintptr_t state = kheap_port_lock();
    kernel_fault = fn;
    kernel_fault_ctx = ctx;
    if (kheap_is_ready) {
        kcache_set_fault(&kheap_kcache, fn, ctx);
    }
    kheap_port_unlock(state);
}
#endif

