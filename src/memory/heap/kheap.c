/*
 * kheap.c - the kernel heap on top of heap.c, as the seed describes it,
 * plus a lock hook and a clear failure mode, with the small-object caches
 * of kcache.c behind kmalloc.
 */
#include "kheap.h"

#include "../../config.h"
#include "../../status.h"
#include "../memory.h"
#include "heap_index.h"
#include "kcache.h"
#include "kheap_port.h"

/* Debug configuration: poison freed small objects (see kheap.h). */
#ifndef PEACHOS_KCACHE_POISON
#define PEACHOS_KCACHE_POISON 0
#endif

struct heap kernel_heap;
struct heap_table kernel_heap_table;
static struct kcache kernel_cache;
static bool kernel_heap_ready;
/* Kept here so that the hook survives kheap_init (which resets the caches). */
static kcache_fault_fn kernel_fault;
static void* kernel_fault_ctx;

/*
 * A secret for ports without a better one: the cycle counter where there is
 * one (differs every boot), mixed with a stack and a data address (they
 * differ only with address randomisation).
 */
uintptr_t kheap_default_secret(void)
{
    uintptr_t secret = (uintptr_t)&kernel_cache;
    volatile uintptr_t stack_slot = 0;
    secret ^= (uintptr_t)&stack_slot << 7;
#if defined(__i386__) || defined(__x86_64__)
    uint64_t tsc = __builtin_ia32_rdtsc();
    secret ^= (uintptr_t)tsc ^ (uintptr_t)(tsc >> 29);
#endif
    return secret;
}

/* Ports that do not define kheap_port_secret get the default: a weak alias,
 * so a port's own definition wins at link time. */
uintptr_t kheap_port_secret(void) __attribute__((weak, alias("kheap_default_secret")));

static void kheap_report(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    kheap_port_report(report);
}

static int kheap_create(void)
{
    struct kheap_region region;
    int res = kheap_port_region(&region);
    if (res < 0) {
        return res;
    }
    if (region.table == NULL || (uintptr_t)region.end < (uintptr_t)region.start) {
        return -EINVARG;
    }
    kernel_heap_table.entries = region.table;
    kernel_heap_table.total = ((uintptr_t)region.end - (uintptr_t)region.start) / PEACHOS_HEAP_BLOCK_SIZE;
    if (region.index == NULL) {
        return heap_create(&kernel_heap, region.start, region.end, &kernel_heap_table);
    }
    return heap_create_indexed(&kernel_heap, region.start, region.end, &kernel_heap_table, region.index,
                               region.index_bytes);
}

void kheap_init(void)
{
    uintptr_t state = kheap_port_lock();
    kernel_heap_ready = false;
    int res = kheap_create();
    if (res == PEACHOS_ALL_OK) {
        unsigned flags = PEACHOS_KCACHE_POISON ? KCACHE_FLAG_POISON : 0u;
        res = kcache_init(&kernel_cache, &kernel_heap, kheap_port_secret(), flags);
    }
    if (res < 0) {
        kheap_port_print("kheap: failed to create heap: kmalloc will return NULL\n");
    } else {
        heap_set_report(&kernel_heap, kheap_report, NULL);
        kcache_set_fault(&kernel_cache, kernel_fault, kernel_fault_ctx);
        kernel_heap_ready = true;
    }
    kheap_port_unlock(state);
}

bool kheap_ready(void)
{
    return kernel_heap_ready;
}

struct heap* kheap_get(void)
{
    return kernel_heap_ready ? &kernel_heap : NULL;
}

struct kcache* kheap_cache(void)
{
    return kernel_heap_ready ? &kernel_cache : NULL;
}

void kheap_set_fault(kcache_fault_fn fn, void* ctx)
{
    uintptr_t state = kheap_port_lock();
    kernel_fault = fn;
    kernel_fault_ctx = ctx;
    if (kernel_heap_ready) {
        kcache_set_fault(&kernel_cache, fn, ctx);
    }
    kheap_port_unlock(state);
}

uintptr_t kheap_lock(void)
{
    return kheap_port_lock();
}

void kheap_unlock(uintptr_t state)
{
    kheap_port_unlock(state);
}

void* kmalloc(size_t size)
{
    uintptr_t state = kheap_port_lock();
    void* ptr = kernel_heap_ready ? kcache_alloc(&kernel_cache, size) : NULL;
    kheap_port_unlock(state);
    return ptr;
}

void* kpalloc(size_t size)
{
    uintptr_t state = kheap_port_lock();
    void* ptr = kernel_heap_ready ? kcache_palloc(&kernel_cache, size) : NULL;
    kheap_port_unlock(state);
    return ptr;
}

void* kzalloc(size_t size)
{
    void* ptr = kmalloc(size);
    if (ptr != NULL) {
        memset(ptr, 0x00, size); /* the memory is ours: no lock needed */
    }
    return ptr;
}

void* kcalloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    return kzalloc(n * size);
}

void* krealloc(void* ptr, size_t size)
{
    uintptr_t state = kheap_port_lock();
    void* moved = kernel_heap_ready ? kcache_realloc(&kernel_cache, ptr, size) : NULL;
    kheap_port_unlock(state);
    return moved;
}

size_t ksize(const void* ptr)
{
    uintptr_t state = kheap_port_lock();
    size_t size = kernel_heap_ready ? kcache_size(&kernel_cache, ptr) : 0;
    kheap_port_unlock(state);
    return size;
}

void kfree(void* ptr)
{
    uintptr_t state = kheap_port_lock();
    if (kernel_heap_ready) {
        kcache_free(&kernel_cache, ptr);
    }
    kheap_port_unlock(state);
}

int kheap_check(size_t* bad)
{
    uintptr_t state = kheap_port_lock();
    int res = kernel_heap_ready ? kcache_check(&kernel_cache, bad) : -EINVARG;
    kheap_port_unlock(state);
    return res;
}

size_t kheap_trim(void)
{
    uintptr_t state = kheap_port_lock();
    size_t freed = kernel_heap_ready ? kcache_trim(&kernel_cache) : 0;
    kheap_port_unlock(state);
    return freed;
}
