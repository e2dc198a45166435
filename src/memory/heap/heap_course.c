/*
 * heap_course.c - the PeachOS 64-bit course's names over this library
 * (heap_course.h). Each is a few lines over heap.h or multiheap.h.
 */
#include "heap_course.h"

#include "heap_status.h"
#if PEACHOS_KHEAP_VMALLOC
#include "kheap.h"
#endif

#define BS ((uintptr_t)PEACHOS_HEAP_BLOCK_SIZE)

size_t heap_total_size(const struct heap* heap)
{
    return heap->table->total * PEACHOS_HEAP_BLOCK_SIZE;
}

size_t heap_total_used(const struct heap* heap)
{
    return heap->used_blocks * PEACHOS_HEAP_BLOCK_SIZE;
}

size_t heap_total_available(const struct heap* heap)
{
    return heap_total_size(heap) - heap_total_used(heap);
}

void* heap_eaddr(const struct heap* heap)
{
    return (char*)heap->saddr + heap_total_size(heap);
}

bool heap_is_address_within_heap(const struct heap* heap, const void* ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    return p >= (uintptr_t)heap->saddr && p < (uintptr_t)heap_eaddr(heap);
}

uintptr_t heap_align_value_to_upper(uintptr_t val)
{
    uintptr_t down = heap_align_value_to_lower(val);
    return down == val || down > UINTPTR_MAX - BS ? down : down + BS;
}

uintptr_t heap_align_value_to_lower(uintptr_t val)
{
    return val & ~(BS - 1);
}

void* multiheap_alloc(struct multiheap* mh, size_t size)
{
    return multiheap_malloc(mh, size);
}

int multiheap_add(struct multiheap* mh, void* saddr, void* eaddr, int flags)
{
    uintptr_t start = (uintptr_t)saddr, end = (uintptr_t)eaddr;
    if ((flags & ~MULTIHEAP_HEAP_FLAG_DEFRAGMENT_WITH_PAGING) != 0 || heap_align_value_to_lower(start) != start ||
        heap_align_value_to_lower(end) != end || end <= start) {
        return -EINVARG;
    }
    uintptr_t blocks = (end - start) / BS;
    uintptr_t table_bytes = heap_align_value_to_upper(blocks); /* one byte per block, whole blocks of it */
    if (table_bytes >= end - start) {
        return -EINVARG; /* no block left for the pool */
    }
    return multiheap_add_region(mh, (void*)(start + table_bytes), eaddr, (HEAP_BLOCK_TABLE_ENTRY*)saddr, NULL, 0);
}

void kheap_post_paging(void)
{
#if PEACHOS_KHEAP_VMALLOC
    kheap_window_paging_on();
#endif
}
