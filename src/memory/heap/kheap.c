/*
 * kheap.c - the kernel heap on top of heap.c, as the seed describes it,
 * plus a lock hook and a clear failure mode.
 */
#include "kheap.h"

#include "../../config.h"
#include "../../status.h"
#include "../memory.h"
#include "heap_index.h"
#include "kheap_port.h"

struct heap kernel_heap;
struct heap_table kernel_heap_table;
static bool kernel_heap_ready;

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
    if (res < 0) {
        kheap_port_print("kheap: failed to create heap: kmalloc will return NULL\n");
    } else {
        heap_set_report(&kernel_heap, kheap_report, NULL);
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
    void* ptr = kernel_heap_ready ? heap_malloc(&kernel_heap, size) : NULL;
    kheap_port_unlock(state);
    return ptr;
}

void* kzalloc(size_t size)
{
    void* ptr = kmalloc(size);
    if (ptr != NULL) {
        memset(ptr, 0x00, size);
    }
    return ptr;
}

void kfree(void* ptr)
{
    uintptr_t state = kheap_port_lock();
    if (kernel_heap_ready) {
        heap_free(&kernel_heap, ptr);
    }
    kheap_port_unlock(state);
}
