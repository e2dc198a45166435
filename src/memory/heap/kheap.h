/*
 * kheap.h - the kernel heap: one global heap at the config.h addresses (or
 * wherever the platform's kheap_port puts it), safe to call from any
 * context the port's lock hook protects against.
 */
#ifndef PEACHOS_KHEAP_H
#define PEACHOS_KHEAP_H

#include <stddef.h>

#include "heap.h"

/* Create the kernel heap. On failure it prints "kheap: failed to create heap"
 * through the port, and every later kmalloc returns NULL. Calling it again
 * re-creates the heap, forgetting every allocation. */
void kheap_init(void);

/* True once kheap_init has succeeded. */
bool kheap_ready(void);

/* Allocate `size` bytes (whole blocks, block-aligned); NULL if size is 0,
 * the heap is not ready or out of memory. */
void* kmalloc(size_t size);

/* kmalloc, then zero the memory. */
void* kzalloc(size_t size);

/* Free memory from kmalloc/kzalloc. NULL does nothing; a bad pointer is
 * reported through the port and changes nothing. */
void kfree(void* ptr);

/* The kernel heap, for heap_get_stats, heap_check and heap_dump_map (read
 * them under kheap_lock/kheap_unlock if other contexts may allocate).
 * NULL before a successful kheap_init. */
struct heap* kheap_get(void);

/* Take / release the kernel heap's lock (the port's hook). */
uintptr_t kheap_lock(void);
void kheap_unlock(uintptr_t state);

#endif /* PEACHOS_KHEAP_H */
