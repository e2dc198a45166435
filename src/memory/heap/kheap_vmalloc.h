/*
 * kheap_vmalloc.h - kheap.c's window part (kheap_vmalloc.c), used only when
 * PEACHOS_KHEAP_VMALLOC = 1 (heap_config.h). Private to kheap.c and
 * kheap_check.c; kheap.h has the public side (kvmalloc, kvfree,
 * kheap_window). Every function but kheap_window_alloc runs with the
 * kernel heap's lock held.
 */
#ifndef PEACHOS_KHEAP_VMALLOC_H
#define PEACHOS_KHEAP_VMALLOC_H

#include <stddef.h>

#include "heap.h"
#include "kheap_port.h"

#if PEACHOS_KHEAP_VMALLOC
/* The weak default of kheap_port_window: no paging, no window. */
int kheap_default_window(struct kheap_window* window);

/* Ask the port for a window over the heap just created (its regions are
 * the sources); without one, or with one kvmalloc_init refuses (said
 * through kheap_port_print), kmalloc never falls back. */
void kheap_vm_create(heap_report_fn report);

/* The kmalloc family's operations on window pointers. */
bool kheap_vm_owns(const void* ptr);
void* kheap_vm_alloc(size_t size);
void kheap_vm_free(void* ptr);
size_t kheap_vm_size(const void* ptr);
void* kheap_vm_realloc(void* ptr, size_t size);
int kheap_vm_check(size_t* bad);

/* kheap_vm_alloc under the lock: kmalloc's fallback. */
void* kheap_window_alloc(size_t size);
#endif

#endif /* PEACHOS_KHEAP_VMALLOC_H */
