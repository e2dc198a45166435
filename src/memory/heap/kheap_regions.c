/*
 * kheap_regions.c - the kernel heap over several memory regions
 * (PEACHOS_KHEAP_REGIONS > 0, heap_config.h; empty otherwise, so that the
 * default kernel heap never links multiheap.c).
 *
 * The port's regions (kheap_port_regions) become one multiheap: whole
 * blocks go to the first fit by address across the regions. The port's
 * first region also carries the small-object caches (kcache_init on its
 * heap), so a pointer inside one of its CACHE blocks is the caches' to
 * free, resize or measure; every other pointer is the multiheap's (which
 * refuses and reports one that lies in no region).
 *
 * First-only mode (kheap_regions_first_only): every allocation, every
 * pointer of the first region and every pointer in no region go through
 * the first region's own allocator, exactly as the single-region kheap
 * does (the same reports, counted in its heap); the other regions only
 * take back what they already hold. For tests that need the first
 * region's known size.
 */
#include "kheap_regions.h"

#if PEACHOS_KHEAP_REGIONS
#include "../memory.h"
#include "heap_status.h"
#include "kheap.h"
#include "multiheap.h"

_Static_assert(PEACHOS_KHEAP_REGIONS <= MULTIHEAP_MAX_REGIONS, "PEACHOS_KHEAP_REGIONS exceeds MULTIHEAP_MAX_REGIONS");

static struct multiheap kernel_regions;
static struct heap* kernel_first;
static bool kernel_first_only;

int kheap_default_regions(struct kheap_region* regions, size_t max)
{
    (void)max;
    int res = kheap_port_region(&regions[0]);
    return res < 0 ? res : 1;
}

int kheap_port_regions(struct kheap_region* regions, size_t max) __attribute__((weak, alias("kheap_default_regions")));

int kheap_regions_create(void)
{
    struct kheap_region regions[PEACHOS_KHEAP_REGIONS];
    kernel_first = NULL;
    multiheap_init(&kernel_regions);
    memset(regions, 0, sizeof(regions)); /* a port that knows nothing of a field leaves it NULL */
    int count = kheap_port_regions(regions, PEACHOS_KHEAP_REGIONS);
    if (count < 0) {
        return count;
    }
    if (count == 0 || count > PEACHOS_KHEAP_REGIONS) {
        return -EINVARG;
    }
    kheap_place_cache_table(&regions[0]);
    for (int k = 0; k < count; k++) {
        const struct kheap_region* r = &regions[k];
        void* index = PEACHOS_KHEAP_INDEX ? r->index : NULL;
        if (r->table == NULL ||
            multiheap_add_region(&kernel_regions, r->start, r->end, r->table, index, index ? r->index_bytes : 0) < 0) {
            return -EINVARG;
        }
    }
    kernel_first = multiheap_get_heap_for_address(&kernel_regions, regions[0].start);
    return PEACHOS_ALL_OK;
}

struct heap* kheap_regions_first(void)
{
    return kernel_first;
}

void kheap_regions_set_report(heap_report_fn fn)
{
    multiheap_set_report(&kernel_regions, fn, NULL);
}

struct multiheap* kheap_regions(void)
{
    return kheap_ready() ? &kernel_regions : NULL;
}

bool kheap_regions_first_only_now(void)
{
    return kernel_first_only;
}

bool kheap_regions_first_only(bool on)
{
    uintptr_t state = kheap_port_lock();
    bool was = kernel_first_only;
    kernel_first_only = on;
    kheap_port_unlock(state);
    return was;
}

/* The first region's own allocator: its caches, or its heap without them. */
#if PEACHOS_KHEAP_CACHES
#define FIRST_BLOCKS(kc, size) kcache_palloc((kc), (size))
#define FIRST_FREE(kc, ptr) kcache_free((kc), (ptr))
#define FIRST_REALLOC(kc, ptr, size) kcache_realloc((kc), (ptr), (size))
#define FIRST_SIZE(kc, ptr) kcache_size((kc), (ptr))
#define FIRST_CACHED(entry) (((entry) & HEAP_BLOCK_TYPE_MASK) == HEAP_BLOCK_TYPE_CACHE)
#else
#define FIRST_BLOCKS(kc, size) ((void)(kc), heap_malloc(kernel_first, (size)))
#define FIRST_FREE(kc, ptr) ((void)(kc), heap_free(kernel_first, (ptr)))
#define FIRST_REALLOC(kc, ptr, size) ((void)(kc), heap_realloc(kernel_first, (ptr), (size)))
#define FIRST_SIZE(kc, ptr) ((void)(kc), heap_allocation_size(kernel_first, (ptr)))
#define FIRST_CACHED(entry) ((void)(entry), false) /* no caches, no CACHE blocks */
#endif

/* Is ptr the first region's own allocator's: inside one of its CACHE blocks
 * (in first-only mode: anywhere in it, or in no region at all, so that the
 * first region refuses and reports it as the one-region heap does)? */
static bool kheap_regions_first_owns(const void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - (uintptr_t)kernel_first->saddr;
    if ((uintptr_t)ptr < (uintptr_t)kernel_first->saddr ||
        offset / PEACHOS_HEAP_BLOCK_SIZE >= kernel_first->table->total) {
        return kernel_first_only && !multiheap_is_address_within_heap(&kernel_regions, ptr);
    }
    HEAP_BLOCK_TABLE_ENTRY entry = kernel_first->table->entries[offset / PEACHOS_HEAP_BLOCK_SIZE];
    return kernel_first_only || FIRST_CACHED(entry);
}

void* kheap_regions_blocks(struct kcache* kc, size_t size)
{
    if (kernel_first_only) {
        return FIRST_BLOCKS(kc, size);
    }
    void* ptr = multiheap_malloc(&kernel_regions, size);
#if PEACHOS_KHEAP_CACHES
    if (ptr == NULL && size != 0 && kcache_trim(kc) > 0) {
        ptr = multiheap_malloc(&kernel_regions, size); /* the caches' spare slabs were in the way */
    }
#endif
    return ptr;
}

#if PEACHOS_KHEAP_CACHES
void* kheap_regions_small(struct kcache* kc, size_t size)
{
    return size <= KCACHE_MAX_SIZE ? kcache_alloc(kc, size) : kheap_regions_blocks(kc, size);
}
#endif

void kheap_regions_free(struct kcache* kc, void* ptr)
{
    if (ptr != NULL && kheap_regions_first_owns(ptr)) {
        FIRST_FREE(kc, ptr);
    } else {
        multiheap_free(&kernel_regions, ptr);
    }
}

void* kheap_regions_realloc(struct kcache* kc, void* ptr, size_t size)
{
    if (kheap_regions_first_owns(ptr)) {
        return FIRST_REALLOC(kc, ptr, size);
    }
    return multiheap_realloc(&kernel_regions, ptr, size);
}

size_t kheap_regions_size(const struct kcache* kc, const void* ptr)
{
    if (ptr != NULL && kheap_regions_first_owns(ptr)) {
        return FIRST_SIZE(kc, ptr);
    }
    return multiheap_allocation_size(&kernel_regions, ptr);
}
#endif
